#!/usr/bin/env python3
"""Pools the interleaved base/refresh rounds of several refresh_p99.sh runs.

  refresh_p99_pool.py RUN_DIR [RUN_DIR ...]

Why: one run's p99 moves by tens of percent from minute to minute on these machines, so the
ratio of one run's medians scatters (1.1x to 1.4x for the same binary). Pooling the rounds of
several runs of the same binary gives a steadier figure. Reads each RUN_DIR/README.md's
per-round table (the rows `| base | N | ...` and `| refresh | N | ...`, as
refresh_p99_report.py writes them) and prints, per run and over all runs:
- the median p99 of each case and their ratio (refresh / base: issue 7's target is <= 1.2);
- the median of the per-round ratios (each refresh round over the base round just before it);
- how many rounds had a ratio above 1.2.
"""

import os
import statistics
import sys

P99_COLUMN = 6  # | case | round | responses | avg | p50 | p90 | p99 | ...
ROUND_COLUMNS = 11  # the per-round table's width; the medians table below it is narrower


def rounds(run_dir):
    """{case: {round: p99_us}} from a run's README table."""
    out = {}
    with open(os.path.join(run_dir, "README.md")) as f:
        for line in f:
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if len(cells) < ROUND_COLUMNS or cells[0] not in ("base", "refresh"):
                continue
            out.setdefault(cells[0], {})[int(cells[1])] = float(cells[P99_COLUMN])
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
