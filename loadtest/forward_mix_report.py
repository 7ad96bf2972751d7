#!/usr/bin/env python3
"""Writes RUN_DIR/README.md for loadtest/forward_mix.sh.

  forward_mix_report.py RUN_DIR

Reads machine.txt, params.env, commands.txt and, per config directory (cache, nocache):
metrics.txt (ports, CPU ticks/ns of mesos-dns and NSD around each phase, checks), the dnsperf
outputs (warm.txt, peak.txt, fixed.txt, fixed-latency.txt) and the /metrics scrapes
metrics-0-start.txt .. metrics-4-fixed.txt, whose deltas per phase are tabulated.
"""

import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from report import dnsperf_summary, kv_file, num  # noqa: E402

CONFIG_TITLES = {
    "cache": "mesos-dns, workers=1, cacheSize %s",
    "nocache": "mesos-dns, workers=1, cacheSize 0 (no cache)",
}
# (phase, scrape before, scrape after, dnsperf output, prefix in metrics.txt)
PHASES = [
    ("warm", "metrics-0-start.txt", "metrics-1-warm.txt", "warm.txt", "warm"),
    ("peak", "metrics-2-before-peak.txt", "metrics-3-peak.txt", "peak.txt", "peak"),
    ("fixed", "metrics-3-peak.txt", "metrics-4-fixed.txt", "fixed.txt", "fixed"),
]
SERIES_RE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{[^}]*\})?)\s+(\S+)$")


def scrape(path):
    out = {}
    try:
        with open(path) as f:
            for line in f:
                m = SERIES_RE.match(line.strip())
                if m and not line.startswith("#"):
                    try:
                        out[m.group(1)] = float(m.group(2))
                    except ValueError:
                        pass
    except OSError:
        pass
    return out


def delta(a, b):
    """Changes from scrape a to scrape b, histogram buckets left out."""
    return {
        k: b[k] - a.get(k, 0.0)
        for k in sorted(b)
        if "_bucket{" not in k and b[k] != a.get(k, 0.0)
    }


def pick(d, prefix):
    return sum(v for k, v in d.items() if k == prefix or k.startswith(prefix + "{"))


def f1(x):
    return "–" if x is None else "%.1f" % x


def fint(x):
    return "–" if x is None else "{:,}".format(int(round(x)))


def phase_figures(run_dir, cfg, params):
    d = os.path.join(run_dir, cfg)
    m = kv_file(os.path.join(d, "metrics.txt"))
    tck = num(params, "CLK_TCK", 100) or 100
    rows = {}
    for phase, before, after, perf, pre in PHASES:
        s = dnsperf_summary(os.path.join(d, perf))
        md = delta(scrape(os.path.join(d, before)), scrape(os.path.join(d, after)))
        done = s.get("completed") or 0
        ticks = num(m, pre + "_after_ticks") - num(m, pre + "_before_ticks")
        ns = num(m, pre + "_after_ns") - num(m, pre + "_before_ns")
        nsd_ns = num(m, pre + "_after_nsd_ns") - num(m, pre + "_before_nsd_ns")
        runtime = s.get("runtime_s") or 0
        hits = pick(md, "mesos_dns_cache_hits_total")
        misses = pick(md, "mesos_dns_cache_misses_total")
        rows[phase] = {
            "perf": s,
            "metrics": md,
            "cpu_us_stat": ticks / tck * 1e6 / done if done else None,
            "cpu_us_sched": ns / 1e3 / done if done else None,
            "cpu_pct": ns / 1e9 / runtime * 100 if runtime else None,
            "nsd_pct": nsd_ns / 1e9 / runtime * 100 if runtime else None,
            "hit_ratio": hits / (hits + misses) if hits + misses else None,
            "hits": hits,
            "misses": misses,
            "upstream": pick(md, "mesos_dns_upstream_queries_total"),
            "queue_full": pick(md, "mesos_dns_forward_queue_full_total"),
            "servfail": md.get('mesos_dns_responses_total{rcode="SERVFAIL"}', 0.0),
            "rcvbuf": num(m, pre + "_after_rcvbuf") - num(m, pre + "_before_rcvbuf"),
        }
    lat = kv_file_space(os.path.join(d, "fixed-latency.txt"))
    return m, rows, lat


def kv_file_space(path):
    out = {}
    try:
        with open(path) as f:
            for line in f:
                if line.startswith("#") or not line.strip():
                    continue
                k, _, v = line.strip().partition(" ")
                out.setdefault(k, v)
    except OSError:
        pass
    return out


def read(path):
    try:
        with open(path, errors="replace") as f:
            return f.read().rstrip("\n")
    except OSError:
        return "(missing)"


def readme(run_dir):
    params = kv_file(os.path.join(run_dir, "params.env"))
    machine = read(os.path.join(run_dir, "machine.txt"))
    cfgs = [c for c in params.get("CONFIGS", "cache nocache").split() if os.path.isdir(os.path.join(run_dir, c))]
    data = {c: phase_figures(run_dir, c, params) for c in cfgs}
    L = []
    L.append("# forward mix: %s in-domain/forwarded, cache warm vs no cache" % "50/50")
    L.append("")
    L.append("Written by `loadtest/forward_mix.sh` (see `loadtest/README.md`, \"Forwarded names\").")
    if params.get("NOTE"):
        L.append("")
        L.append("Note: " + params["NOTE"])
    L.append("")
    L.append("## Machine")
    L.append("")
    L.append("```")
    L.append(machine)
    L.append("```")
    L.append("")
    L.append("## Inputs")
    L.append("")
    L.append("- state: `mesos-dns-gen-state --tasks %s --seed %s` (sha256 `%s`)"
             % (params.get("TASKS"), params.get("SEED"), params.get("STATE_SHA", "?")[:16]))
    L.append("- queries: %s lines, mix `%s` → %s; forwarded names `host-N.example.com.` A with N < %s: "
             "%s forwarded lines over %s distinct names (sha256 `%s`); first lines in `queries-head.txt`"
             % (params.get("COUNT"), params.get("MIX"), params.get("QUERY_COUNTS"), params.get("FWD_POOL"),
                params.get("FWD_LINES"), params.get("FWD_NAMES"), params.get("QUERIES_SHA", "?")[:16]))
    L.append("- upstream: NSD (`server-count: 1`, `rrl-ratelimit: 0`) serving `example.com.` with an A "
             "record `10.x.y.z` for each of those names, TTL %s s (longer than the whole run, so no "
             "cache entry expires), on CPU %s with dnsperf; config in `nsd.conf`"
             % (params.get("FWD_TTL"), params.get("GEN_CPU")))
    L.append("- mesos-dns: `workers: 1`, `externalon: true`, `resolvers: [NSD]`, default `forwarders` (2) "
             "and `forwardQueue` (1024), on CPU %s (every thread; see `*/affinity.txt`); config in "
             "`*/mesos-dns.json`" % params.get("SERVER_CPU"))
    L.append("- dnsperf on CPU %s: `-c %s -T 1 -q %s`; warm-up `-n 1 -Q %s` (the whole file once), "
             "peak `-l %s`, fixed rate `-Q %s -l %s -v`"
             % (params.get("GEN_CPU"), params.get("CLIENTS"), params.get("OUTSTANDING"),
                params.get("WARM_RATE"), params.get("DURATION"), params.get("RATE"), params.get("FIXED")))
    L.append("")
    L.append("## Results")
    L.append("")
    L.append("| config | peak QPS | lost (peak / fixed) | avg latency peak | avg / p99 fixed | "
             "CPU µs/query fixed (stat / schedstat) | server CPU at peak | NSD CPU at peak | "
             "cache hit ratio (peak / fixed) | upstream queries (peak / fixed) | queue full (peak) | "
             "SERVFAIL (peak / fixed) |")
    L.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for c in cfgs:
        m, rows, lat = data[c]
        title = CONFIG_TITLES[c] % m.get("cache_size", "?") if "%s" in CONFIG_TITLES[c] else CONFIG_TITLES[c]
        pk, fx = rows["peak"], rows["fixed"]
        hr = lambda r: "–" if r["hit_ratio"] is None else "%.4f" % r["hit_ratio"]  # noqa: E731
        L.append("| %s | %s | %s / %s | %s µs | %s / %s µs | %s / %s | %s%% | %s%% | %s / %s | %s / %s | %s | %s / %s |" % (
            title, fint(pk["perf"].get("qps")),
            fint(pk["perf"].get("lost")), fint(fx["perf"].get("lost")),
            fint(pk["perf"]["avg_s"] * 1e6) if "avg_s" in pk["perf"] else "–",
            lat.get("avg_us", "–"), lat.get("p99_us", "–"),
            f1(fx["cpu_us_stat"]) if fx["cpu_us_stat"] is not None else "–",
            "%.2f" % fx["cpu_us_sched"] if fx["cpu_us_sched"] is not None else "–",
            fint(pk["cpu_pct"]), fint(pk["nsd_pct"]),
            hr(pk), hr(fx), fint(pk["upstream"]), fint(fx["upstream"]),
            fint(pk["queue_full"]), fint(pk["servfail"]), fint(fx["servfail"])))
    L.append("")
    L.append("Response codes (dnsperf):")
    L.append("")
    for c in cfgs:
        _, rows, _ = data[c]
        for ph in ("warm", "peak", "fixed"):
            L.append("- %s %s: %s (%s completed of %s sent, %s lost)" % (
                c, ph, rows[ph]["perf"].get("rcodes", "?"), fint(rows[ph]["perf"].get("completed")),
                fint(rows[ph]["perf"].get("sent")), fint(rows[ph]["perf"].get("lost"))))
    L.append("")
    L.append("Checks (in-domain samples with `check_answers.py`; 8 forwarded names with `dig`, address "
             "and TTL ≤ zone TTL; cold = before any load, warm = after the warm-up, after = at the end):")
    L.append("")
    for c in cfgs:
        m = data[c][0]
        L.append("- %s: in-domain before: %s; after: %s; forwarded cold: %s; warm: %s; after: %s; "
                 "%s; alive after: %s; RSS %s KiB" % (
                     c, m.get("check", "?"), m.get("check_after", "?"), m.get("check_fwd_cold", "?"),
                     m.get("check_fwd_warm", "?"), m.get("check_fwd_after", "?"), m.get("affinity", "?"),
                     m.get("alive_after", "?"), m.get("rss_kib", "?")))
    L.append("")
    L.append("## /metrics deltas per phase")
    L.append("")
    L.append("Every series that changed (histogram buckets left out); the full scrapes are in "
             "`*/metrics-*.txt`.")
    for c in cfgs:
        _, rows, _ = data[c]
        for ph in ("warm", "peak", "fixed"):
            L.append("")
            L.append("### %s, %s (UDP RcvbufErrors +%s)" % (c, ph, fint(rows[ph]["rcvbuf"])))
            L.append("")
            L.append("```")
            for k, v in rows[ph]["metrics"].items():
                L.append("%s %s" % (k, ("%d" % v) if v == int(v) else ("%.6g" % v)))
            L.append("```")
    L.append("")
    L.append("## Raw dnsperf outputs")
    for c in cfgs:
        for f in ("warm.txt", "peak.txt", "fixed.txt", "fixed-latency.txt"):
            L.append("")
            L.append("### %s/%s" % (c, f))
            L.append("")
            L.append("```")
            L.append(read(os.path.join(run_dir, c, f)))
            L.append("```")
    L.append("")
    L.append("## Commands")
    L.append("")
    L.append("```")
    L.append(read(os.path.join(run_dir, "commands.txt")))
    L.append("```")
    with open(os.path.join(run_dir, "README.md"), "w") as f:
        f.write("\n".join(L) + "\n")


def main(argv):
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    readme(argv[1])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
