#!/usr/bin/env python3
"""Compares the replies two DNS servers give to the queries of a dnsperf query file.

  reply_sizes.py --queries FILE --port-a PORT --port-b PORT [--edns SIZE]
                 [--label-a NAME] [--label-b NAME]

Sends every distinct (name, type) of FILE once to each server on 127.0.0.1 (UDP, one query
in flight, 1 s timeout) and prints, weighted by how often the query file asks it, per query
type (NXDOMAIN apart): the average reply size and how many replies had TC set and no answer.
Why: at the peak the load generator's core is the limit, and what it pays per reply grows with
the reply; two servers that answer the same queries with different replies (say, one of them
truncating to an empty reply) are not doing the same work for it. Loopback only; the number
of packets is twice the number of distinct queries.
"""

import argparse
import collections
import socket
import struct

QTYPES = {"A": 1, "AAAA": 28, "SRV": 33}


def ask(name, qtype, port, edns):
    header = struct.pack(">HHHHHH", 0x4D44, 0x0100, 1, 0, 0, 1 if edns else 0)
    qname = b"".join(bytes([len(label)]) + label.encode() for label in name.rstrip(".").split("."))
    pkt = header + qname + b"\0" + struct.pack(">HH", QTYPES[qtype], 1)
    if edns:
        pkt += b"\0" + struct.pack(">HHIH", 41, edns, 0, 0)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(1.0)
        s.sendto(pkt, ("127.0.0.1", port))
        return s.recv(65535)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--queries", required=True)
    ap.add_argument("--port-a", type=int, required=True)
    ap.add_argument("--port-b", type=int, required=True)
    ap.add_argument("--label-a", default="a")
    ap.add_argument("--label-b", default="b")
    ap.add_argument("--edns", type=int, default=0, help="EDNS UDP size (0: no EDNS)")
    args = ap.parse_args()

    weights = collections.Counter()
    with open(args.queries) as f:
        for line in f:
            parts = line.split()
            if len(parts) == 2 and parts[1] in QTYPES:
                weights[(parts[0], parts[1])] += 1

    # per kind: [queries, bytes a, bytes b, empty TC a, empty TC b]
    kinds = collections.defaultdict(lambda: [0, 0, 0, 0, 0])
    for (name, qtype), w in sorted(weights.items()):
        a = ask(name, qtype, args.port_a, args.edns)
        b = ask(name, qtype, args.port_b, args.edns)
        kind = qtype + (" NXDOMAIN" if a[3] & 0x0F == 3 else "")
        k = kinds[kind]
        k[0] += w
        k[1] += len(a) * w
        k[2] += len(b) * w
        k[3] += w * (a[2] & 0x02 != 0 and a[6:8] == b"\0\0")
        k[4] += w * (b[2] & 0x02 != 0 and b[6:8] == b"\0\0")

    la, lb = args.label_a, args.label_b
    print(f"EDNS: {args.edns or 'none'}; {sum(weights.values())} queries, {len(weights)} distinct")
    print(f"| query kind | queries | avg reply {la} | avg reply {lb} | empty TC {la} | empty TC {lb} |")
    print("|---|---:|---:|---:|---:|---:|")
    total = [0, 0, 0, 0, 0]
    for kind, k in sorted(kinds.items()):
        print(f"| {kind} | {k[0]} | {k[1] / k[0]:.1f} B | {k[2] / k[0]:.1f} B | {k[3]} | {k[4]} |")
        total = [t + v for t, v in zip(total, k)]
    print(f"| all | {total[0]} | {total[1] / total[0]:.1f} B | {total[2] / total[0]:.1f} B "
          f"| {total[3]} | {total[4]} |")


if __name__ == "__main__":
    main()
