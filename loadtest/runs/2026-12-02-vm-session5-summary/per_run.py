#!/usr/bin/env python3
"""Per-run peak ratios of mesos-dns (workers=1) to NSD, Knot and the pre-change build (mesos-alt)
in the run.sh runs given, from each run's README table (each ratio within its own run)."""
import sys

def peaks(run_dir):
    txt = open(run_dir + "/README.md").read().split("## Results")[1]
    out = {}
    for line in txt.split("\n"):
        if line.startswith("| ") and not line.startswith("| server"):
            c = [x.strip() for x in line.strip().strip("|").split("|")]
            out[c[0]] = float(c[1].replace(",", ""))
    return out

W1 = "mesos-dns, workers=1 (pinned)"
OTHERS = [("NSD", "NSD (server-count 1, rrl-ratelimit 0)"), ("Knot", "Knot (1 UDP worker)"),
          ("mesos-alt", "mesos-dns from ALT_BIN (the other build of an A/B), workers=1 (pinned)")]
print("| run | mesos-dns w=1 | " + " | ".join("/ %s" % n for n, _ in OTHERS) + " |")
print("|---|---:|" + "---:|" * len(OTHERS))
for d in sys.argv[1:]:
    p = peaks(d)
    print("| %s | %s | %s |" % (d.rstrip("/").rsplit("/", 1)[-1], "{:,.0f}".format(p[W1]),
          " | ".join("%.3f" % (p[W1] / p[k]) if k in p else "–" for _, k in OTHERS)))
