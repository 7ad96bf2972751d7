#!/usr/bin/env python3
"""Turn a `mesos-dns --dump-records` JSON into load-test inputs.

Writes, from the dump (stdlib only, deterministic from --seed):

* ``--zone FILE``: an RFC 1035 master file for the dump's domain (``mesos.``) with SOA, NS
  (``ns1.<domain>.``) and every A, AAAA and SRV record, TTL from the dump. SRV records get
  priority 0 and weight ``--srv-weight`` (mesos-dns's ``srvRecordDefaultWeight``, default 1),
  the SOA timers mesos-dns's defaults (refresh 60, retry 600, expire 86400, minimum 60). NSD and
  Knot load it as is. Owner names with uppercase letters are left out: mesos-dns keeps the raw
  DiscoveryInfo name of the original's "LEGACY" records (e.g. ``ML.scheduler-20.marathon.mesos.``)
  but lowercases every query, so those names can never be answered (behaviour reference §3,
  "Task label"); NSD and Knot would answer them, so they are left out of the zone and the
  queries to keep every server doing the same work.
* ``--queries FILE``: a dnsperf data file (``name TYPE`` per line) of ``--count`` queries mixed
  by the percentages ``--a``, ``--srv``, ``--nx``, ``--fwd`` (and ``--aaaa``):
  A hits are drawn from the A names, SRV hits from the SRV names, NXDOMAIN names are random
  labels under the domain that are neither names nor empty non-terminals of the zone, and
  forwarded names are ``host-N.example.com.`` with N drawn uniformly from ``range(--fwd-pool)``
  (default: ``--count``). Counts are exact (largest remainder) and the lines are shuffled.
* ``--fwd-zone FILE`` (optional, with ``--queries``): a master file for ``example.com.`` (SOA,
  NS, and an A record for every forwarded name the query file uses, TTL ``--fwd-ttl``, address
  ``10.x.y.z`` from the 24 low bits of N (``fwd_addr``)), so that an upstream such as NSD
  answers every forwarded query.
* ``--samples FILE`` (optional): JSON list of a few names per kind with the expected answer,
  for ``check_answers.py``.

Usage:
  make_inputs.py --dump dump.json --zone mesos.zone --queries queries.txt \\
      [--a 70 --srv 20 --nx 10 --fwd 0 --aaaa 0] [--count 100000] [--seed 1]
"""

import argparse
import json
import random
import sys

SOA_REFRESH, SOA_RETRY, SOA_EXPIRE, SOA_MINTTL = 60, 600, 86400, 60

# Characters written verbatim in a master-file label; every other byte is written as \DDD.
_PLAIN = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_")


def zone_name(name):
    """`name` (absolute, dot-separated, as in the dump) escaped for a master file."""
    labels = fqdn(name)[:-1].split(".") if fqdn(name) != "." else []
    return "".join(
        "".join(chr(b) if chr(b) in _PLAIN else "\\%03d" % b for b in label.encode()) + "."
        for label in labels
    ) or "."


def fqdn(name):
    return name if name.endswith(".") else name + "."


def split_srv(target):
    """'host.mesos.:31000' -> ('host.mesos.', 31000)."""
    host, _, port = target.rpartition(":")
    return fqdn(host), int(port)


def served(name):
    """Whether mesos-dns can answer `name`: it lowercases queries, so only lowercase names."""
    return name == name.lower()


def records(dump, key):
    """The dump's `key` map ("As", "AAAAs", "SRVs") without the names mesos-dns never serves."""
    return {n: v for n, v in (dump["Records"].get(key) or {}).items() if served(n)}


def unique(seq):
    seen = set()
    return [x for x in seq if not (x in seen or seen.add(x))]


def write_zone(dump, path, srv_weight, ns_addr):
    domain = fqdn(dump.get("Domain") or "mesos")
    ttl = int(dump.get("TTL", 60))
    serial = int(dump.get("Serial", 1)) & 0xFFFFFFFF
    mname = fqdn(dump.get("Mname") or "ns1." + domain)
    rname = fqdn(dump.get("Rname") or "root.ns1." + domain)
    recs = {k: records(dump, k) for k in ("As", "AAAAs", "SRVs")}
    as_ = recs["As"]
    lines = [
        "; zone for %s written by loadtest/make_inputs.py from mesos-dns --dump-records" % domain,
        "$TTL %d" % ttl,
        "%s %d IN SOA %s %s %d %d %d %d %d"
        % (zone_name(domain), ttl, zone_name(mname), zone_name(rname), serial,
           SOA_REFRESH, SOA_RETRY, SOA_EXPIRE, SOA_MINTTL),
        "%s %d IN NS %s" % (zone_name(domain), ttl, zone_name("ns1." + domain)),
    ]
    n = 0
    if "ns1." + domain not in as_:
        # The NS target needs an address in the zone; mesos-dns always has one.
        lines.append("%s %d IN A %s" % (zone_name("ns1." + domain), ttl, ns_addr))
        n += 1
    for rtype, key in (("A", "As"), ("AAAA", "AAAAs")):
        for name in sorted(recs.get(key) or {}):
            for ip in unique(recs[key][name]):
                lines.append("%s %d IN %s %s" % (zone_name(name), ttl, rtype, ip))
                n += 1
    for name in sorted(recs.get("SRVs") or {}):
        for target in unique(recs["SRVs"][name]):
            host, port = split_srv(target)
            lines.append(
                "%s %d IN SRV 0 %d %d %s" % (zone_name(name), ttl, srv_weight, port, zone_name(host))
            )
            n += 1
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return n


def split_counts(count, weights):
    """Exact integer split of `count` by `weights` (largest remainder)."""
    total = sum(weights.values())
    if total <= 0:
        raise SystemExit("make_inputs.py: the mix percentages add up to 0")
    raw = {k: count * w / total for k, w in weights.items()}
    out = {k: int(v) for k, v in raw.items()}
    rest = count - sum(out.values())
    for k in sorted(raw, key=lambda k: (out[k] - raw[k], k))[:rest]:
        out[k] += 1
    return out


def all_names(recs):
    """Every owner name in the zone plus every empty non-terminal above one, lower case."""
    names = set()
    for key in ("As", "AAAAs", "SRVs"):
        for name in recs.get(key) or {}:
            labels = fqdn(name).lower()[:-1].split(".")
            for i in range(len(labels)):
                names.add(".".join(labels[i:]) + ".")
    return names


def nx_name(rng, domain, existing):
    parents = ["", "marathon.", "slave."]
    while True:
        label = "nx-%08x" % rng.getrandbits(32)
        name = "%s.%s%s" % (label, rng.choice(parents), domain)
        if name.lower() not in existing:
            return name


def fwd_addr(n):
    """The address of host-N.example.com. in the --fwd-zone: 10.0.0.0/8, unique per N."""
    return "10.%d.%d.%d" % ((n >> 16) & 0xFF, (n >> 8) & 0xFF, n & 0xFF)


def write_fwd_zone(path, numbers, ttl):
    """An example.com. master file with an A record for host-N for every N in `numbers`."""
    lines = [
        "; zone for example.com. written by loadtest/make_inputs.py --fwd-zone",
        "$TTL %d" % ttl,
        "example.com. %d IN SOA ns1.example.com. root.example.com. 1 %d %d %d %d"
        % (ttl, SOA_REFRESH, SOA_RETRY, SOA_EXPIRE, SOA_MINTTL),
        "example.com. %d IN NS ns1.example.com." % ttl,
        "ns1.example.com. %d IN A 127.0.0.1" % ttl,
    ]
    lines += ["host-%d.example.com. %d IN A %s" % (n, ttl, fwd_addr(n)) for n in sorted(numbers)]
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def write_queries(dump, path, mix, count, rng, fwd_pool=None, fwd_used=None):
    """Writes the query file; adds every forwarded host number used to `fwd_used` (a set)."""
    domain = fqdn(dump.get("Domain") or "mesos")
    recs = {k: records(dump, k) for k in ("As", "AAAAs", "SRVs")}
    pools = {
        "A": sorted(recs.get("As") or {}),
        "AAAA": sorted(recs.get("AAAAs") or {}),
        "SRV": sorted(recs.get("SRVs") or {}),
    }
    counts = split_counts(count, mix)
    existing = all_names(recs)
    lines = []
    for kind, n in sorted(counts.items()):
        if n == 0:
            continue
        if kind in pools:
            if not pools[kind]:
                raise SystemExit("make_inputs.py: the dump has no %s names for --%s" % (kind, kind.lower()))
            lines += ["%s %s" % (fqdn(rng.choice(pools[kind])), kind) for _ in range(n)]
        elif kind == "NX":
            lines += ["%s A" % nx_name(rng, domain, existing) for _ in range(n)]
        elif kind == "FWD":
            pool = max(count if fwd_pool is None else fwd_pool, 1)
            numbers = [rng.randrange(pool) for _ in range(n)]
            if fwd_used is not None:
                fwd_used.update(numbers)
            lines += ["host-%d.example.com. A" % k for k in numbers]
    rng.shuffle(lines)
    with open(path, "w") as f:
        f.write("\n".join(lines) + ("\n" if lines else ""))
    return counts


def write_samples(dump, path, rng, per_kind, srv_weight):
    domain = fqdn(dump.get("Domain") or "mesos")
    recs = {k: records(dump, k) for k in ("As", "AAAAs", "SRVs")}
    samples = []
    fixed = {"As": ["leader." + domain, "slave." + domain], "SRVs": ["_leader._tcp." + domain]}
    for rtype, key in (("A", "As"), ("AAAA", "AAAAs")):
        names = sorted(recs.get(key) or {})
        picked = [n for n in fixed.get(key, []) if n in recs[key]]
        for name in picked + rng.sample(names, min(per_kind, len(names))):
            samples.append({"name": fqdn(name), "type": rtype, "rcode": "NOERROR",
                            "answers": sorted(unique(recs[key][name]))})
    names = sorted(recs.get("SRVs") or {})
    picked = [n for n in fixed["SRVs"] if n in recs["SRVs"]]
    for name in picked + rng.sample(names, min(per_kind, len(names))):
        answers = []
        for t in unique(recs["SRVs"][name]):
            host, port = split_srv(t)
            answers.append("0 %d %d %s" % (srv_weight, port, host))
        samples.append({"name": fqdn(name), "type": "SRV", "rcode": "NOERROR",
                        "answers": sorted(answers)})
    existing = all_names(recs)
    for _ in range(per_kind):
        samples.append({"name": nx_name(rng, domain, existing), "type": "A",
                        "rcode": "NXDOMAIN", "answers": []})
    with open(path, "w") as f:
        json.dump(samples, f, indent=1)
        f.write("\n")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dump", required=True, help="mesos-dns --dump-records output (JSON)")
    p.add_argument("--zone", help="write the master file here")
    p.add_argument("--queries", help="write the dnsperf data file here")
    p.add_argument("--samples", help="write sample names with expected answers here (JSON)")
    p.add_argument("--a", type=float, default=70, help="percent A hits (default 70)")
    p.add_argument("--aaaa", type=float, default=0, help="percent AAAA hits (default 0)")
    p.add_argument("--srv", type=float, default=20, help="percent SRV hits (default 20)")
    p.add_argument("--nx", type=float, default=10, help="percent NXDOMAIN (default 10)")
    p.add_argument("--fwd", type=float, default=0, help="percent forwarded names (default 0)")
    p.add_argument("--fwd-pool", type=int, default=None,
                   help="forwarded names are host-N.example.com. with N < this (default: --count)")
    p.add_argument("--fwd-zone", help="write an example.com. zone with every forwarded name used")
    p.add_argument("--fwd-ttl", type=int, default=3600, help="TTL in the --fwd-zone (default 3600)")
    p.add_argument("--count", type=int, default=100000, help="queries to write (default 100000)")
    p.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    p.add_argument("--srv-weight", type=int, default=1, help="SRV weight (default 1)")
    p.add_argument("--samples-per-kind", type=int, default=5)
    p.add_argument("--ns-address", default="127.0.0.1",
                   help="address for ns1.<domain> if the dump has none")
    args = p.parse_args(argv)
    if min(args.a, args.aaaa, args.srv, args.nx, args.fwd) < 0 or args.count < 0:
        p.error("percentages and --count must not be negative")
    if args.fwd_pool is not None and args.fwd_pool < 1:
        p.error("--fwd-pool must be at least 1")
    if args.fwd_zone and not args.queries:
        p.error("--fwd-zone needs --queries (the zone holds the names the query file uses)")
    with open(args.dump) as f:
        dump = json.load(f)
    if args.zone:
        n = write_zone(dump, args.zone, args.srv_weight, args.ns_address)
        skipped = sum(1 for k in ("As", "AAAAs", "SRVs")
                      for name in dump["Records"].get(k) or {} if not served(name))
        print("make_inputs.py: %s: %d records + SOA + NS; %d names with uppercase left out"
              % (args.zone, n, skipped), file=sys.stderr)
    if args.queries:
        mix = {"A": args.a, "AAAA": args.aaaa, "SRV": args.srv, "NX": args.nx, "FWD": args.fwd}
        used = set()
        counts = write_queries(dump, args.queries, mix, args.count, random.Random(args.seed),
                               args.fwd_pool, used)
        print("make_inputs.py: %s: %s" % (args.queries, ", ".join(
            "%s %d" % kv for kv in sorted(counts.items()) if kv[1])), file=sys.stderr)
        if args.fwd_zone:
            write_fwd_zone(args.fwd_zone, used, args.fwd_ttl)
            print("make_inputs.py: %s: %d forwarded names, TTL %d"
                  % (args.fwd_zone, len(used), args.fwd_ttl), file=sys.stderr)
    if args.samples:
        write_samples(dump, args.samples, random.Random(args.seed + 1),
                      args.samples_per_kind, args.srv_weight)


if __name__ == "__main__":
    main()
