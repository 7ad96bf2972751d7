#!/usr/bin/env python3
"""Writes the README.md of a refresh_p99.sh run (to stdout) from its per-run directories.

  refresh_p99_report.py OUT TASKS ROUNDS RATE DURATION "CASES"

Each OUT/<case>-<round>/ holds fixed-latency.txt (report.py latency), cpu.txt
("server_cpu_ns BEFORE AFTER") and stderr.txt (the server's log: raises are counted). The table
lists every run in the order run, then the median of each figure per case, and the ratio of each
case's median p99 to the base case's (issue 7's target: refresh/base <= 1.2).
"""

import os
import statistics
import sys


def kv(path):
    out = {}
    if not os.path.exists(path):
        return out
    for line in open(path):
        if line.startswith("#"):
            break
        parts = line.split(None, 1)
        if len(parts) == 2:
            out[parts[0]] = parts[1].strip()
    return out


def main():
    out, tasks, rounds, rate, duration, cases = sys.argv[1:7]
    cases = cases.split()
    rows = []
    for r in range(1, int(rounds) + 1):
        for c in cases:
            d = os.path.join(out, "%s-%d" % (c, r))
            lat = kv(os.path.join(d, "fixed-latency.txt"))
            cpu = open(os.path.join(d, "cpu.txt")).read().split() if os.path.exists(
                os.path.join(d, "cpu.txt")) else []
            responses = int(lat.get("responses", "0") or 0)
            cpu_us = None
            if len(cpu) == 3 and responses:
                cpu_us = (int(cpu[2]) - int(cpu[1])) / 1000.0 / responses
            raises = 0
            err = os.path.join(d, "stderr.txt")
            if os.path.exists(err):
                raises = sum(1 for l in open(err) if "raised to normal" in l)
            rows.append({
                "case": c, "round": r, "responses": responses,
                "p50": int(lat.get("p50_us", 0)), "p90": int(lat.get("p90_us", 0)),
                "p99": int(lat.get("p99_us", 0)), "p999": int(lat.get("p999_us", 0)),
                "max": int(lat.get("max_us", 0)), "avg": float(lat.get("avg_us", 0)),
                "cpu_us": cpu_us, "raises": raises,
            })
    print("# refresh_p99.sh: p99 with a %s-task state refreshed every second\n" % tasks)
    print("Written by `loadtest/refresh_p99.sh` (see its header). One worker; every server thread "
          "on one core, dnsperf on the other; %s queries/s for %s s per run. In every run "
          "the state file is switched between two %s-task states (every 10th task killed in "
          "the second) every second (`flip_state.py`); `base` = no refresh during the run, "
          "`refresh` = refreshSeconds 1, `normal` = the same with refreshPriority "
          "\"normal\". Rounds interleave the cases.\n"
          % (rate, duration, tasks))
    print("## Machine\n\n```")
    print(open(os.path.join(out, "machine.txt")).read().rstrip())
    print("```\n\n## Every run\n")
    print("| case | round | responses | avg µs | p50 µs | p90 µs | p99 µs | p99.9 µs | max µs | "
          "server CPU µs/query | refreshes raised |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for x in rows:
        print("| %s | %d | %d | %.1f | %d | %d | %d | %d | %d | %s | %d |" % (
            x["case"], x["round"], x["responses"], x["avg"], x["p50"], x["p90"], x["p99"],
            x["p999"], x["max"], "%.2f" % x["cpu_us"] if x["cpu_us"] is not None else "–",
            x["raises"]))
    print("\n## Medians per case\n")
    print("| case | runs | p50 µs | p90 µs | p99 µs | p99.9 µs | server CPU µs/query | "
          "p99 / base p99 |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    med = {}
    for c in cases:
        xs = [x for x in rows if x["case"] == c and x["responses"]]
        if not xs:
            continue
        m = {k: statistics.median(x[k] for x in xs) for k in ("p50", "p90", "p99", "p999")}
        cpus = [x["cpu_us"] for x in xs if x["cpu_us"] is not None]
        m["cpu"] = statistics.median(cpus) if cpus else None
        m["n"] = len(xs)
        med[c] = m
    for c, m in med.items():
        ratio = "%.2f" % (m["p99"] / med["base"]["p99"]) if "base" in med and med["base"]["p99"] else "–"
        print("| %s | %d | %g | %g | %g | %g | %s | %s |" % (
            c, m["n"], m["p50"], m["p90"], m["p99"], m["p999"],
            "%.2f" % m["cpu"] if m["cpu"] is not None else "–", ratio))
    print("\nEach run's directory holds `fixed.txt` (dnsperf's summary), `fixed-latency.txt` "
          "(percentiles and histogram of the per-query latencies), `cpu.txt` (server CPU ns "
          "before/after, from schedstat), `stderr.txt` and `config.json`. Commands: "
          "`commands.txt`.")


if __name__ == "__main__":
    main()
