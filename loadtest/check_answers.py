#!/usr/bin/env python3
"""Check that a DNS server answers the sample names of make_inputs.py --samples correctly.

For every sample it runs ``dig`` (UDP, falling back to TCP when truncated, like any resolver)
and compares the rcode and the answer set (order ignored, names case-insensitive) with the
expected ones. With ``--null`` every answer must instead be NOERROR with an empty answer
section (the null responder). Prints one line per sample and exits 1 on any mismatch.

Usage: check_answers.py --samples samples.json --port P [--server 127.0.0.1] [--null]
"""

import argparse
import json
import subprocess
import sys


def dig(server, port, name, rtype):
    out = subprocess.run(
        ["dig", "+norec", "+time=2", "+tries=2", "-p", str(port), "@" + server, name, rtype],
        capture_output=True, text=True, timeout=30,
    ).stdout
    rcode, answers, in_answer = None, [], False
    for line in out.splitlines():
        if "->>HEADER<<-" in line and "status:" in line:
            rcode = line.split("status:")[1].split(",")[0].strip()
        elif line.startswith(";; ANSWER SECTION"):
            in_answer = True
        elif not line.strip() or line.startswith(";"):
            in_answer = False
        elif in_answer:
            f = line.split()
            if len(f) >= 5 and f[3] == rtype:
                answers.append(" ".join(f[4:]).lower())
    return rcode, answers


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--samples", required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--server", default="127.0.0.1")
    p.add_argument("--null", action="store_true", help="expect NOERROR and no answers")
    args = p.parse_args(argv)
    with open(args.samples) as f:
        samples = json.load(f)
    bad = 0
    for s in samples:
        want_rcode = "NOERROR" if args.null else s["rcode"]
        want = [] if args.null else sorted(a.lower() for a in s["answers"])
        rcode, got = dig(args.server, args.port, s["name"], s["type"])
        ok = rcode == want_rcode and sorted(got) == want
        bad += not ok
        print("%s %s %s %s: %s, %d answers%s" % (
            "ok  " if ok else "FAIL", s["name"], s["type"], want_rcode, rcode, len(got),
            "" if ok else " (want %d: %s; got %s)" % (len(want), want[:4], sorted(got)[:4])))
    print("%d of %d samples answered correctly" % (len(samples) - bad, len(samples)))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
