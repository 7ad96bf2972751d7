#!/usr/bin/env python3
"""Writes the README.md of a loadtest/soak.sh run from the files it left in RUN_DIR.

  soak_report.py RUN_DIR

Reads params.env, machine.txt, commands.txt, events.tsv (faults), rss.tsv (VmRSS every 10 s),
minute-NN.txt (dnsperf output without the per-query lines, with the -S 10 interval rates),
minute-NN-latency.txt (percentiles from the per-query lines), after.env, metrics-*.txt and
peak.txt. Reports lost queries (goal 0), p99 per minute (drift) and RSS growth (goal: flat).
"""

import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from report import dnsperf_summary, kv_file  # noqa: E402


def read(path, default=""):
    try:
        with open(path, errors="replace") as f:
            return f.read()
    except OSError:
        return default


def latency_file(path):
    out, rcodes = {}, []
    for line in read(path).splitlines():
        p = line.split()
        if len(p) == 2:
            out[p[0]] = p[1]
        elif len(p) == 3 and p[0] == "rcode":
            rcodes.append("%s %s" % (p[1], p[2]))
    out["rcodes"] = ", ".join(sorted(rcodes))
    return out


def metrics(path):
    out = {}
    for line in read(path).splitlines():
        if line.startswith("#") or " " not in line:
            continue
        k, v = line.rsplit(" ", 1)
        try:
            out[k] = float(v)
        except ValueError:
            pass
    return out


def fmt(x, spec="{:,.0f}"):
    return "–" if x is None else spec.format(x)


def main(run_dir):
    params = kv_file(os.path.join(run_dir, "params.env"))
    after = kv_file(os.path.join(run_dir, "after.env"))
    minutes = int(params.get("MINUTES", "0"))
    events = []
    for line in read(os.path.join(run_dir, "events.tsv")).splitlines():
        p = line.split("\t", 1)
        if len(p) == 2 and p[0].isdigit():
            events.append((int(p[0]), p[1]))
    rss = []
    for line in read(os.path.join(run_dir, "rss.tsv")).splitlines()[1:]:
        p = line.split("\t")
        if len(p) >= 2 and p[0].isdigit() and p[1].isdigit():
            rss.append((int(p[0]), int(p[1]), p[2] if len(p) > 2 else ""))

    rows = []
    for m in range(1, minutes + 1):
        base = os.path.join(run_dir, "minute-%02d" % m)
        s = dnsperf_summary(base + ".txt")
        lat = latency_file(base + "-latency.txt")
        faults = [e for t, e in events if (m - 1) * 60 <= t < m * 60 and e.endswith("start")]
        rows.append((m, s, lat, faults))

    total_sent = sum(r[1].get("sent", 0) for r in rows)
    total_lost = sum(r[1].get("lost", 0) for r in rows)
    p99s = [float(r[2]["p99_us"]) for r in rows if "p99_us" in r[2]]
    L = []
    L.append("# Soak run %s" % os.path.basename(run_dir.rstrip("/")))
    L.append("")
    if params.get("NOTE"):
        L.append("> " + params["NOTE"])
        L.append("")
    L.append("Written by `loadtest/soak.sh` (see its header for what it does). mesos-dns read a "
             "state file (`refreshSeconds` 1) that was replaced every second, alternating two "
             "states (B: every 10th task killed, every agent on another address), with a %s s "
             "fault every %s s in turn: the file corrupt (half a document), larger than "
             "`stateMaxBytes`, deleted. Server on CPU %s, dnsperf on CPU %s, 127.0.0.1 only."
             % (params.get("FAULT_SECONDS"), params.get("FAULT_EVERY"),
                params.get("SERVER_CPU"), params.get("GEN_CPU")))
    L.append("")
    L.append("## Result")
    L.append("")
    peak = params.get("PEAK")
    L.append("- rate: %s qps for %d min%s" % (
        params.get("QPS"), minutes,
        " (%.0f%% of the %s qps peak measured first with the same dnsperf -v set-up, `peak.txt`)"
        % (float(params.get("FRACTION", "0.8")) * 100, peak) if peak else " (given)"))
    L.append("- **lost queries: %s of %s** (goal 0: %s)" % (
        fmt(total_lost), fmt(total_sent), "met" if total_lost == 0 else "NOT met"))
    if p99s:
        L.append("- p99 latency per minute: first %.0f µs, last %.0f µs, highest %.0f µs "
                 "(drift last/first %.2f)" % (p99s[0], p99s[-1], max(p99s),
                                              p99s[-1] / p99s[0] if p99s[0] else float("nan")))
    if rss:
        first, last = rss[0][1], rss[-1][1]
        peak_rss = max(r[1] for r in rss)
        L.append("- RSS (VmRSS): first %s KiB (t=%d s), last %s KiB (t=%d s), highest %s KiB; "
                 "growth %+d KiB (%+.1f%%)" % (fmt(first), rss[0][0], fmt(last), rss[-1][0],
                                              fmt(peak_rss), last - first,
                                              (last - first) * 100.0 / first if first else 0))
        if len(rss) > 2:
            second = rss[1][1]
            L.append("  (from the second sample, after the first rewrites: %+d KiB, %+.1f%%)"
                     % (last - second, (last - second) * 100.0 / second if second else 0))
    L.append("- server alive at the end: %s; answers after the run (state A written back): %s"
             % (after.get("alive_after", "?"), after.get("check_after", "?")))
    L.append("- UDP RcvbufErrors during the soak (system-wide): %s" % after.get("rcvbuf_errors", "?"))
    mb, ma = metrics(os.path.join(run_dir, "metrics-before.txt")), metrics(
        os.path.join(run_dir, "metrics-after.txt"))

    def delta(k):
        return ma.get(k, 0) - mb.get(k, 0) if k in ma else None

    kinds = sorted(k for k in ma if k.startswith("mesos_dns_refresh_failures_total{"))
    L.append("- refreshes during the soak: %s good, %s failed (%s); \"state refresh failed\" "
             "log lines: %s, \"recovered\": %s" % (
                 fmt(delta('mesos_dns_refresh_total{result="ok"}')),
                 fmt(delta('mesos_dns_refresh_total{result="failed"}')),
                 ", ".join("%s %s" % (re.sub(r'.*kind="([^"]*)".*', r"\1", k), fmt(delta(k)))
                           for k in kinds) or "none",
                 after.get("refresh_failed_log_lines", "?"),
                 after.get("refresh_recovered_log_lines", "?")))
    L.append("- server counters: %s packets received, %s replies sent, %s dropped" % (
        fmt(delta("mesos_dns_packets_received_total")), fmt(delta("mesos_dns_replies_sent_total")),
        fmt(delta("mesos_dns_dropped_total"))))
    L.append("")
    L.append("## Per minute")
    L.append("")
    L.append("| minute | faults started | sent | lost | qps | 10-s rates (min–max) | avg | p50 | "
             "p99 | p99.9 | max | response codes |")
    L.append("|---:|---|---:|---:|---:|---|---:|---:|---:|---:|---:|---|")
    for m, s, lat, faults in rows:
        iv = s.get("intervals") or []
        L.append("| %d | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
            m, ", ".join(f.replace("fault ", "").replace(" start", "") for f in faults) or "–",
            fmt(s.get("sent")), fmt(s.get("lost")), fmt(s.get("qps")),
            "%s–%s" % (fmt(min(iv)), fmt(max(iv))) if iv else "–",
            "%s µs" % lat["avg_us"] if "avg_us" in lat else "–",
            "%s µs" % lat.get("p50_us", "–"), "%s µs" % lat.get("p99_us", "–"),
            "%s µs" % lat.get("p999_us", "–"), "%s µs" % lat.get("max_us", "–"),
            lat.get("rcodes", "") or s.get("rcodes", "–")))
    L.append("")
    L.append("Latency percentiles come from every per-query line of `dnsperf -v`, in 10 µs "
             "buckets (a percentile is its bucket's upper bound). NXDOMAIN answers are expected: "
             "10% of the queries ask for missing names, and state B lacks every 10th task.")
    L.append("")
    L.append("## RSS samples")
    L.append("")
    L.append("| t (s) | VmRSS (KiB) | threads |")
    L.append("|---:|---:|---:|")
    for t, kib, threads in rss:
        L.append("| %d | %s | %s |" % (t, fmt(kib), threads))
    L.append("")
    L.append("## Faults")
    L.append("")
    L.append("```")
    L.extend("%4d s  %s" % e for e in events)
    L.append("```")
    L.append("")
    L.append("## Machine")
    L.append("")
    L.append("```")
    L.append(read(os.path.join(run_dir, "machine.txt")).rstrip())
    L.append("```")
    L.append("")
    L.append("## Commands")
    L.append("")
    L.append("`$WORK` is the run's temporary directory (states, zone, queries); the server's "
             "config is `mesos-dns.json` here.")
    L.append("")
    L.append("```")
    L.append(read(os.path.join(run_dir, "commands.txt")).rstrip())
    L.append("```")
    L.append("")
    L.append("Files: `minute-NN.txt` (dnsperf output of minute NN without the per-query lines), "
             "`minute-NN-latency.txt`, `rss.tsv`, `events.tsv`, `metrics-before.txt` and "
             "`metrics-after.txt` (`/metrics`), `stderr.txt` (the server's log), "
             "`check-after.txt`, `samples.json`, `params.env`, `after.env`.")
    L.append("")
    with open(os.path.join(run_dir, "README.md"), "w") as f:
        f.write("\n".join(L))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    main(sys.argv[1])
