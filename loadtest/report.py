#!/usr/bin/env python3
"""Summaries for loadtest/run.sh.

  report.py latency VERBOSE_OUT   percentiles and a histogram of the per-query latencies in
                                  a `dnsperf -v` output (lines "> RCODE name type seconds");
                                  dnsperf 2.10 has no latency-histogram option, so the
                                  fixed-rate run is made with -v and summarised here
  report.py readme RUN_DIR        writes RUN_DIR/README.md from the files run.sh left there
                                  (machine.txt, params.env, commands.txt, SERVER/*.txt)
"""

import math
import os
import re
import sys

SERVER_TITLES = {
    "null": "null responder (recvmmsg/sendmmsg, no answer section)",
    "null-coalesce": "null responder coalescing as mesos-dns does (--coalesce-us)",
    "mesos-w1": "mesos-dns, workers=1 (pinned)",
    "mesos-w2": "mesos-dns, workers=2",
    "mesos-alt": "mesos-dns from ALT_BIN (the other build of an A/B), workers=1 (pinned)",
    "nsd": "NSD (server-count 1, rrl-ratelimit 0)",
    "knot": "Knot (1 UDP worker)",
}


def percentile(sorted_vals, q):
    if not sorted_vals:
        return float("nan")
    i = max(0, min(len(sorted_vals) - 1, math.ceil(q * len(sorted_vals)) - 1))
    return sorted_vals[i]


def latency(path):
    vals = []
    rcodes = {}
    with open(path, errors="replace") as f:
        for line in f:
            if line.startswith("> "):
                parts = line.split()
                try:
                    vals.append(float(parts[-1]) * 1e6)
                except ValueError:
                    continue
                rcodes[parts[1]] = rcodes.get(parts[1], 0) + 1
    vals.sort()
    out = ["responses %d" % len(vals)]
    if vals:
        out.append("avg_us %.1f" % (sum(vals) / len(vals)))
        for name, q in (("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("p999", 0.999)):
            out.append("%s_us %.0f" % (name, percentile(vals, q)))
        out.append("max_us %.0f" % vals[-1])
    out.append("rcodes " + " ".join("%s=%d" % kv for kv in sorted(rcodes.items())))
    out.append("")
    out.append("# histogram: upper bound (us) and count, log2 buckets")
    bound, i = 8, 0
    while i < len(vals):
        n = 0
        while i < len(vals) and vals[i] <= bound:
            n += 1
            i += 1
        if n:
            out.append("<=%d %d" % (bound, n))
        bound *= 2
    print("\n".join(out))


def kv_file(path):
    out = {}
    try:
        with open(path) as f:
            for line in f:
                if "=" in line and not line.startswith("#"):
                    k, v = line.rstrip("\n").split("=", 1)
                    out[k.strip()] = v.strip()
    except OSError:
        pass
    return out


def dnsperf_summary(path):
    """The figures of a dnsperf output file."""
    try:
        text = open(path, errors="replace").read()
    except OSError:
        return {}
    out = {}
    pats = {
        "sent": r"Queries sent:\s+(\d+)",
        "completed": r"Queries completed:\s+(\d+)",
        "lost": r"Queries lost:\s+(\d+)",
        "qps": r"Queries per second:\s+([\d.]+)",
        "avg_s": r"Average Latency \(s\):\s+([\d.]+)",
        "stddev_s": r"Latency StdDev \(s\):\s+([\d.]+)",
        "runtime_s": r"Run time \(s\):\s+([\d.]+)",
    }
    for k, pat in pats.items():
        m = re.search(pat, text)
        if m:
            out[k] = float(m.group(1))
    m = re.search(r"Response codes:\s+(.*)", text)
    if m:
        out["rcodes"] = m.group(1).strip()
    # -S interval lines: "<unix time>: <qps>"
    out["intervals"] = [float(x) for x in re.findall(r"^\d+\.\d+:\s+([\d.]+)\s*$", text, re.M)]
    return out


def num(d, k, default=0.0):
    try:
        return float(d.get(k, default))
    except (TypeError, ValueError):
        return default


def fmt_int(x):
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else "{:,}".format(int(round(x)))


def readme(run_dir):
    params = kv_file(os.path.join(run_dir, "params.env"))
    machine = open(os.path.join(run_dir, "machine.txt")).read().rstrip()
    commands = open(os.path.join(run_dir, "commands.txt")).read().rstrip()
    servers = params.get("SERVERS", "").split()
    clk_tck = num(params, "CLK_TCK", 100)
    rows = {}
    for s in servers:
        d = os.path.join(run_dir, s)
        m = kv_file(os.path.join(d, "metrics.txt"))
        peak = dnsperf_summary(os.path.join(d, "peak.txt"))
        fixed = dnsperf_summary(os.path.join(d, "fixed.txt"))
        lat = {}
        for line in open(os.path.join(d, "fixed-latency.txt")) if os.path.exists(
                os.path.join(d, "fixed-latency.txt")) else []:
            p = line.split(None, 1)
            if len(p) == 2 and not line.startswith("#"):
                lat[p[0]] = p[1].strip()
        r = {"m": m, "peak": peak, "fixed": fixed, "lat": lat}
        if fixed.get("completed"):
            q = fixed["completed"]
            r["cpu_us_q"] = (num(m, "fixed_ticks_after") - num(m, "fixed_ticks_before")) \
                * 1e6 / clk_tck / q
            r["sched_us_q"] = (num(m, "fixed_ns_after") - num(m, "fixed_ns_before")) / 1e3 / q
        if peak.get("runtime_s"):
            r["peak_cpu_pct"] = (num(m, "peak_ns_after") - num(m, "peak_ns_before")) / 1e9 \
                / peak["runtime_s"] * 100
        ru = kv_file(os.path.join(d, "peak-rusage.txt"))
        if ru and peak.get("completed"):
            q = peak["completed"]
            r["gen_us_q"] = (num(ru, "utime_s") + num(ru, "stime_s")) * 1e6 / q
            r["gen_cs_q"] = (num(ru, "nvcsw") + num(ru, "nivcsw")) / q
        r["rcvbuf"] = (num(m, "peak_rcvbuf_after") - num(m, "peak_rcvbuf_before"),
                       num(m, "fixed_rcvbuf_after") - num(m, "fixed_rcvbuf_before"))
        rows[s] = r
    null_qps = rows.get("null", {}).get("peak", {}).get("qps")
    coalesce_qps = rows.get("null-coalesce", {}).get("peak", {}).get("qps")

    L = []
    label = params.get("LABEL", "")
    L.append("# Load-test run %s%s" % (os.path.basename(run_dir.rstrip("/")),
                                       " (%s)" % label if label else ""))
    L.append("")
    if params.get("NOTE"):
        L.append("> " + params["NOTE"])
        L.append("")
    L.append("Written by `loadtest/run.sh`; see `loadtest/README.md` for how to read it. Every "
             "server ran on CPU %s (`taskset -c %s`), dnsperf on CPU %s (`taskset -c %s`), one "
             "server after the other in this one run, on 127.0.0.1."
             % (params.get("SERVER_CPU"), params.get("SERVER_CPU"),
                params.get("GEN_CPU"), params.get("GEN_CPU")))
    L.append("")
    L.append("## Machine")
    L.append("")
    L.append("```")
    L.append(machine)
    L.append("```")
    L.append("")
    L.append("## Inputs")
    L.append("")
    L.append("- state: `mesos-dns-gen-state --tasks %s --seed %s` (%s bytes); zone: %s records "
             "(+ SOA, NS); queries: %s lines, mix `%s`, seed %s"
             % (params.get("TASKS"), params.get("SEED"), params.get("STATE_BYTES"),
                params.get("ZONE_RECORDS"), params.get("COUNT"), params.get("MIX"),
                params.get("SEED")))
    L.append("- query file: %s" % params.get("QUERY_COUNTS", ""))
    L.append("- sha256: state `%s`, zone `%s`, queries `%s`"
             % (params.get("STATE_SHA", "")[:16], params.get("ZONE_SHA", "")[:16],
                params.get("QUERIES_SHA", "")[:16]))
    L.append("- peak: `-l %s -c %s -T 1 -q %s` after a %s s warm-up; fixed rate: `-Q %s -l %s` "
             "with `-v` (per-query latencies → p99)"
             % (params.get("DURATION"), params.get("CLIENTS"), params.get("OUTSTANDING"),
                params.get("WARMUP"), params.get("RATE"), params.get("FIXED")))
    L.append("")
    L.append("## Results")
    L.append("")
    L.append("| server | peak QPS | ratio to null | ratio to null-coalesce | lost (peak) | "
             "avg latency (peak) | server CPU at peak | dnsperf CPU µs/query (peak) | "
             "dnsperf context switches/query (peak) | lost (fixed) | avg latency (fixed) | "
             "p99 (fixed) | CPU µs/query (fixed, stat) | CPU µs/query (fixed, schedstat) | "
             "RcvbufErrors (peak / fixed) | answers checked |")
    L.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for s in servers:
        r = rows[s]
        peak, fixed, lat, m = r["peak"], r["fixed"], r["lat"], r["m"]
        qps = peak.get("qps")
        ratio = "%.2f" % (qps / null_qps) if qps and null_qps else "–"
        ratio_c = "%.2f" % (qps / coalesce_qps) if qps and coalesce_qps else "–"
        L.append("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | "
                 "%s / %s | %s |" % (
            SERVER_TITLES.get(s, s),
            fmt_int(qps) if qps else "FAILED",
            ratio,
            ratio_c,
            fmt_int(peak.get("lost")),
            "%.0f µs" % (peak["avg_s"] * 1e6) if "avg_s" in peak else "–",
            "%.0f%%" % r["peak_cpu_pct"] if "peak_cpu_pct" in r else "–",
            "%.2f" % r["gen_us_q"] if "gen_us_q" in r else "–",
            "%.3f" % r["gen_cs_q"] if "gen_cs_q" in r else "–",
            fmt_int(fixed.get("lost")),
            "%.0f µs" % (fixed["avg_s"] * 1e6) if "avg_s" in fixed else "–",
            "%s µs" % lat["p99_us"] if "p99_us" in lat else "–",
            "%.2f" % r["cpu_us_q"] if "cpu_us_q" in r else "–",
            "%.2f" % r["sched_us_q"] if "sched_us_q" in r else "–",
            fmt_int(r["rcvbuf"][0]), fmt_int(r["rcvbuf"][1]),
            m.get("check", "–") + ("" if m.get("check_after", "ok") == "ok"
                                   else "; after the load: " + m["check_after"]),
        ))
    L.append("")
    L.append("Response codes (peak run) and memory:")
    L.append("")
    for s in servers:
        r = rows[s]
        L.append("- %s: %s; fixed-rate p50/p90/p99/p99.9/max %s/%s/%s/%s/%s µs; RSS after "
                 "the runs %s KiB; %s; still running at the end: %s" % (
                     s, r["peak"].get("rcodes", "–"),
                     r["lat"].get("p50_us", "–"), r["lat"].get("p90_us", "–"),
                     r["lat"].get("p99_us", "–"), r["lat"].get("p999_us", "–"),
                     r["lat"].get("max_us", "–"), r["m"].get("rss_kib", "–"),
                     r["m"].get("affinity", "affinity not recorded"),
                     r["m"].get("alive_after", "–")))
    L.append("")
    L.append("Columns: *peak QPS*, *lost (peak)* and *avg latency (peak)* are dnsperf's summary "
             "of the peak run; *server CPU at peak* is the server's run time (schedstat) over "
             "the run's wall time (100%% = the whole of its core: the server was the "
             "bottleneck). *dnsperf CPU µs/query* and *dnsperf context switches/query* are the "
             "load generator's own utime+stime and voluntary+involuntary context switches "
             "(`proc_cpu.py rusage` around dnsperf) over the queries it completed in the peak "
             "run: what each server's reply pattern costs the generator, whose core is the limit "
             "when the server's is not full. *ratio to null-coalesce*: to the null responder "
             "that coalesces its receives as mesos-dns does. "
             "The fixed-rate columns come from the `-Q` run: *p99* from the "
             "per-query latencies of `-v`, *CPU µs/query* = server CPU time during the run / "
             "queries completed, once from utime+stime of `/proc/PID/stat` (%d Hz ticks: "
             "coarse) and once from the threads' `schedstat` run time (ns). CPU is summed over "
             "the server's whole process tree. *RcvbufErrors* is the system-wide delta of "
             "`Udp: RcvbufErrors` in `/proc/net/snmp` during each run (drops at a full socket "
             "receive buffer). *answers checked*: `check_answers.py` against sample A, SRV and "
             "NXDOMAIN names before the load (the null responder only has to say NOERROR)."
             % clk_tck)
    L.append("")
    L.append("## Commands")
    L.append("")
    L.append("`$WORK` is the run's temporary directory (state, zone, queries, server configs; "
             "the configs are copied into each server's directory here).")
    L.append("")
    L.append("```")
    L.append(commands)
    L.append("```")
    L.append("")
    L.append("## Files")
    L.append("")
    L.append("Per server `SERVER/`: `warmup.txt`, `peak.txt`, `fixed.txt` (raw dnsperf output; "
             "`*-rusage.txt` beside each: dnsperf's own CPU and context switches; "
             "the fixed run without its per-query lines), `fixed-latency.txt` (percentiles and "
             "histogram), `metrics.txt` (/proc readings), `check.txt`, `affinity-at-start.txt` "
             "(every server thread's CPU list as the server set it) and `affinity.txt` (after "
             "run.sh pinned them all and the runs), `stderr.txt` and the server's config. "
             "`samples.json`: the names checked.")
    L.append("")
    with open(os.path.join(run_dir, "README.md"), "w") as f:
        f.write("\n".join(L))


def main(argv):
    if len(argv) == 3 and argv[1] == "latency":
        latency(argv[2])
    elif len(argv) == 3 and argv[1] == "readme":
        readme(argv[2])
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
