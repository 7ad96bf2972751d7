#!/usr/bin/env python3
"""Pools the interleaved base/refresh rounds of several refresh_p99.sh runs.

  refresh_p99_pool.py RUN_DIR [RUN_DIR ...]

Why: one run's p99 moves by tens of percent from minute to minute on these machines, so the
ratio of one run's medians scatters (1.1x to 1.4x for the same binary). Pooling the rounds of
several runs of the same binary gives a steadier figure. Reads each run's raw
RUN_DIR/<case>-<round>/fixed-latency.txt (with refresh_p99_report.py's reader, the file its
README is made from) and prints, per run and over all runs:
- the median p99 of each case and their ratio (refresh / base: issue 7's target is <= 1.2);
- the median of the per-round ratios (each refresh round over the base round of its round);
- how many rounds had a ratio above 1.2.
"""

import os
import re
import statistics
import sys

from refresh_p99_report import kv

ROUND_DIR = re.compile(r"^(base|refresh)-(\d+)$")


def rounds(run_dir):
    """{case: {round: p99_us}} from a run's per-round directories."""
    out = {}
    for name in sorted(os.listdir(run_dir)):
        m = ROUND_DIR.match(name)
        if not m:
            continue
        lat = kv(os.path.join(run_dir, name, "fixed-latency.txt"))
        if int(lat.get("responses", "0") or 0) == 0:
            continue
        out.setdefault(m.group(1), {})[int(m.group(2))] = float(lat["p99_us"])
    return out


def summary(label, base, refresh, pair_ratios):
    if not base or not refresh:
        return f"{label}: no base/refresh rounds"
    mb, mr = statistics.median(base), statistics.median(refresh)
    above = sum(1 for r in pair_ratios if r > 1.2)
    return (
        f"{label}: {len(base)} base, {len(refresh)} refresh rounds; median p99 base {mb:.0f} µs, "
        f"refresh {mr:.0f} µs, ratio {mr / mb:.2f}; median per-round ratio "
        f"{statistics.median(pair_ratios):.2f}; rounds above 1.2: {above} of {len(pair_ratios)}"
    )


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    all_base, all_refresh, all_pairs = [], [], []
    for run_dir in sys.argv[1:]:
        r = rounds(run_dir)
        base, refresh = r.get("base", {}), r.get("refresh", {})
        pairs = [refresh[k] / base[k] for k in sorted(base) if k in refresh and base[k] > 0]
        print(summary(os.path.basename(run_dir.rstrip("/")), list(base.values()),
                      list(refresh.values()), pairs))
        all_base += base.values()
        all_refresh += refresh.values()
        all_pairs += pairs
    if len(sys.argv) > 2:
        print(summary("pooled", all_base, all_refresh, all_pairs))


if __name__ == "__main__":
    main()
