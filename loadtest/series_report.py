#!/usr/bin/env python3
"""Summarises several run.sh runs of the same servers (one README.md table each) into one table
of medians, because one run's peak moves by a few percent from minute to minute here.

  series_report.py RUN_DIR [RUN_DIR ...] > SUMMARY.md

For each server it prints the peak QPS of every run, the median peak, the median of the
per-run ratios to the null responder's peak *in the same run* (the minimal responder, and the
one that coalesces when the runs have it), the median per-run ratio to NSD's peak and in how
many runs the server was above NSD, the lost queries (sum), and the median CPU µs/query at the
fixed rate (schedstat), with the median ratios to NSD.
"""

import os
import statistics
import sys


def table(run_dir):
    """server name -> {column: text} from the run's README.md results table."""
    rows, header = {}, None
    in_results = False
    for line in open(os.path.join(run_dir, "README.md")):
        if line.startswith("## Results"):
            in_results = True
            continue
        if in_results and line.startswith("## "):
            break
        if not in_results or not line.startswith("|"):
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if header is None:
            header = cells
        elif not set(cells[0]) <= set("-:"):
            rows[cells[0]] = dict(zip(header, cells))
    return rows


def num(text):
    try:
        return float(text.replace(",", ""))
    except (ValueError, AttributeError):
        return None


def main():
    runs = sys.argv[1:]
    tables = [(r, table(r)) for r in runs]
    servers = []
    for _, t in tables:
        for s in t:
            if s not in servers:
                servers.append(s)
    null = next((s for s in servers if s.startswith("null responder (")), None)
    null_c = next((s for s in servers if s.startswith("null responder coalescing")), None)
    nsd = next((s for s in servers if s.startswith("NSD")), None)
    print("| server | " + " | ".join("peak, %s" % os.path.basename(r) for r in runs) +
          " | median peak | median ratio to null (same run) | median ratio to null-coalesce "
          "(same run) | median ratio to NSD's peak (same run) | runs above NSD | "
          "lost (peak, all runs) | median CPU µs/query at the fixed rate | "
          "median CPU ratio to NSD (same run) |")
    print("|---|" + "---:|" * (len(runs) + 8))
    for s in servers:
        peaks, ratios, cpus, cpu_vs_nsd, lost, cells = [], [], [], [], 0, []
        ratios_c, vs_nsd = [], []
        for _, t in tables:
            row = t.get(s)
            if not row:
                cells.append("–")
                continue
            p = num(row.get("peak QPS"))
            cells.append("{:,.0f}".format(p))
            peaks.append(p)
            lost += int(num(row.get("lost (peak)")) or 0)
            if null and t.get(null):
                ratios.append(p / num(t[null]["peak QPS"]))
            if null_c and t.get(null_c):
                ratios_c.append(p / num(t[null_c]["peak QPS"]))
            if nsd and t.get(nsd):
                vs_nsd.append(p / num(t[nsd]["peak QPS"]))
            c = num(row.get("CPU µs/query (fixed, schedstat)"))
            if c is not None:
                cpus.append(c)
                if nsd and t.get(nsd):
                    cpu_vs_nsd.append(c / num(t[nsd]["CPU µs/query (fixed, schedstat)"]))
        print("| %s | %s | %s | %s | %s | %s | %s | %d | %s | %s |" % (
            s, " | ".join(cells),
            "{:,.0f}".format(statistics.median(peaks)) if peaks else "–",
            "%.3f" % statistics.median(ratios) if ratios else "–",
            "%.3f" % statistics.median(ratios_c) if ratios_c else "–",
            "%.3f" % statistics.median(vs_nsd) if vs_nsd else "–",
            "%d of %d" % (sum(1 for x in vs_nsd if x > 1), len(vs_nsd)) if vs_nsd else "–",
            lost,
            "%.2f" % statistics.median(cpus) if cpus else "–",
            "%.2f" % statistics.median(cpu_vs_nsd) if cpu_vs_nsd else "–"))


if __name__ == "__main__":
    main()
