#!/usr/bin/env python3
"""Points DIR/state.json at DIR/state-b.json, then state-a.json, and so on, once a second.

Each switch makes a new symlink and renames it over state.json (atomic for the reader). One
long-running process with no fork per switch: the shell loop it replaces ran `ln`, `mv` and
`sleep` every second on the load generator's core, and those three fork+execs alone raised
dnsperf's p99 from about 135 to 150-260 us with no refresh at all
(loadtest/runs/2026-11-25-vm-flipper/). Stops after --limit seconds (default 3600).

Usage: flip_state.py DIR [--limit SECONDS]
"""

import argparse
import os
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("--limit", type=float, default=3600)
    args = ap.parse_args()
    target = os.path.join(args.dir, "state.json")
    tmp = os.path.join(args.dir, "state.next")
    started = time.monotonic()
    i = 0
    while time.monotonic() - started < args.limit:
        i += 1
        nxt = os.path.join(args.dir, "state-b.json" if i % 2 else "state-a.json")
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        os.symlink(nxt, tmp)
        os.replace(tmp, target)
        time.sleep(1)


if __name__ == "__main__":
    main()
