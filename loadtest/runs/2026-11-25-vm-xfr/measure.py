#!/usr/bin/env python3
"""Zone transfer figures for issue 10: transfer sizes of a 10k-task zone (AXFR vs IXFR after
~10 tasks moved) and the time from a state change at a (fake) master to NSD answering the new
record, with our server as primary (refreshSeconds 1, NOTIFY to NSD).

Usage (from the repo root, after `cargo build --release --bins`):
    python3 loadtest/runs/2026-11-25-vm-xfr/measure.py [--rounds N] [--tasks N]

Prints every raw number; writes nothing outside a temporary directory. Needs dig and nsd.
"""

import argparse
import http.server
import json
import os
import random
import re
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
BIN = os.path.join(ROOT, "target", "release", "mesos-dns")
GEN = os.path.join(ROOT, "target", "release", "mesos-dns-gen-state")
NSD = shutil.which("nsd") or "/usr/sbin/nsd"


def free_port():
    while True:
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        u.bind(("127.0.0.1", 0))
        port = u.getsockname()[1]
        t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            t.bind(("127.0.0.1", port))
            return port
        except OSError:
            continue
        finally:
            u.close()
            t.close()


def query(port, name, qtype=1, timeout=0.2):
    """One UDP query; returns (rcode, [A addresses], [SOA serials]) or None."""
    qid = random.randrange(65536)
    wire = b"".join(bytes([len(l)]) + l.encode() for l in name.rstrip(".").split(".")) + b"\0"
    pkt = struct.pack(">HHHHHH", qid, 0, 1, 0, 0, 0) + wire + struct.pack(">HH", qtype, 1)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(timeout)
    try:
        s.sendto(pkt, ("127.0.0.1", port))
        data, _ = s.recvfrom(65535)
    except OSError:
        return None
    finally:
        s.close()
    if len(data) < 12 or struct.unpack(">H", data[:2])[0] != qid:
        return None
    rcode = data[3] & 0xF
    an, ns = struct.unpack(">HH", data[6:10])
    pos = 12 + len(wire) + 4
    addrs, serials = [], []

    def skip_name(p):
        while True:
            l = data[p]
            if l & 0xC0 == 0xC0:
                return p + 2
            if l == 0:
                return p + 1
            p += 1 + l

    for _ in range(an + ns):
        pos = skip_name(pos)
        rtype, _, _, rdlen = struct.unpack(">HHIH", data[pos:pos + 10])
        rd = data[pos + 10:pos + 10 + rdlen]
        if rtype == 1:
            addrs.append(socket.inet_ntoa(rd))
        if rtype == 6:
            p = skip_name(skip_name(pos + 10))
            serials.append(struct.unpack(">I", data[p:p + 4])[0])
        pos += 10 + rdlen
    return rcode, addrs, serials


def serial(port):
    r = query(port, "mesos.", 6)
    return r[2][0] if r and r[2] else None


def dig(args):
    out = subprocess.run(["dig"] + args, capture_output=True, text=True).stdout
    m = re.search(r"XFR size: (\d+) records \(messages (\d+), bytes (\d+)\)", out)
    t = re.search(r"Query time: (\d+) msec", out)
    return (tuple(int(x) for x in m.groups()) if m else None), (int(t.group(1)) if t else None)


def start_server(tmp, config):
    path = os.path.join(tmp, "config.json")
    with open(path, "w") as f:
        json.dump(config, f)
    log = open(os.path.join(tmp, "mesos-dns.log"), "w")
    env = dict(os.environ, RUST_LOG="debug")
    p = subprocess.Popen([BIN, "-config", path], stdout=subprocess.DEVNULL, stderr=log, env=env)
    deadline = time.time() + 30
    while time.time() < deadline:
        if serial(config["port"]):
            return p
        time.sleep(0.05)
    p.kill()
    sys.exit("mesos-dns did not come up; see " + log.name)


def netinfo(t):
    """The first network_infos entry of a task's last status, or None."""
    cs = (t.get("statuses") or [{}])[-1].get("container_status") or {}
    nis = cs.get("network_infos") or []
    return nis[0] if nis and nis[0].get("ip_addresses") else None


def move_tasks(doc, n, base):
    """Moves the first n tasks (of the first framework) that have a network_infos IP to
    10.<base>.0.i."""
    moved = [t for t in doc["frameworks"][0]["tasks"] if netinfo(t)][:n]
    for i, t in enumerate(moved):
        netinfo(t)["ip_addresses"][0]["ip_address"] = "10.%d.0.%d" % (base, i + 1)
    return [t["name"] for t in moved]


def sizes(tasks, tmp):
    state = os.path.join(tmp, "state.json")
    subprocess.run([GEN, "--tasks", str(tasks), "--out", state], check=True)
    with open(state) as f:
        doc = json.load(f)
    port = free_port()
    cfg = {"stateFile": state, "refreshSeconds": 1, "port": port, "listener": "127.0.0.1",
           "httpon": False, "externalon": False, "transferAllowFrom": ["127.0.0.1"]}
    p = start_server(tmp, cfg)
    try:
        s0 = serial(port)
        base = ["-p", str(port), "@127.0.0.1", "mesos."]
        axfr0, ms0 = dig(base + ["AXFR"])
        print("zone: %d tasks, serial %d" % (tasks, s0))
        print("AXFR before change: records/messages/bytes %s, dig query time %s ms" % (axfr0, ms0))
        names = move_tasks(doc, 10, 99)
        print("moved tasks: %s" % ", ".join(names))
        with open(state + ".new", "w") as f:
            json.dump(doc, f)
        os.rename(state + ".new", state)
        deadline = time.time() + 10
        while serial(port) == s0 and time.time() < deadline:
            time.sleep(0.05)
        s1 = serial(port)
        ixfr, msi = dig(base + ["IXFR=%d" % s0])
        axfr1, ms1 = dig(base + ["AXFR"])
        print("after moving 10 tasks: serial %d" % s1)
        print("IXFR=%d: records/messages/bytes %s, dig query time %s ms" % (s0, ixfr, msi))
        print("AXFR after change: records/messages/bytes %s, dig query time %s ms" % (axfr1, ms1))
        # Uncompressed JSON, for comparison: what a replica polling the master downloads.
        print("state document: %d bytes" % os.path.getsize(state))
        with open(os.path.join(tmp, "mesos-dns.log")) as f:
            for line in f:
                if "journal:" in line or "xfr to" in line:
                    print("our log: " + line.strip())
    finally:
        p.kill()
        p.wait()


class Master:
    """A fake master serving a JSON document at /master/state."""

    def __init__(self, doc):
        self.body = json.dumps(doc).encode()
        master = self

        class H(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                body = master.body
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def set(self, doc):
        self.body = json.dumps(doc).encode()


def latency(tasks, rounds, tmp):
    state = os.path.join(tmp, "lat-state.json")
    subprocess.run([GEN, "--tasks", str(tasks), "--out", state], check=True)
    with open(state) as f:
        doc = json.load(f)
    master = Master(doc)
    doc["leader"] = "master@127.0.0.1:%d" % master.port
    master.set(doc)
    nsd_port = free_port()
    port = free_port()
    cfg = {"masters": ["127.0.0.1:%d" % master.port], "refreshSeconds": 1, "port": port,
           "listener": "127.0.0.1", "httpon": False, "externalon": False,
           "transferAllowFrom": ["127.0.0.1"], "notifyTargets": ["127.0.0.1:%d" % nsd_port]}
    p = start_server(tmp, cfg)
    d = os.path.join(tmp, "nsd")
    os.mkdir(d)
    conf = os.path.join(d, "nsd.conf")
    with open(conf, "w") as f:
        f.write(f"""server:
  ip-address: 127.0.0.1@{nsd_port}
  username: ""
  chroot: ""
  zonesdir: "{d}"
  pidfile: "{d}/nsd.pid"
  xfrdfile: "{d}/xfrd.state"
  zonelistfile: "{d}/zone.list"
  database: ""
  logfile: "{d}/nsd.log"
  verbosity: 2
  rrl-ratelimit: 0
  server-count: 1
remote-control:
  control-enable: no
zone:
  name: mesos
  request-xfr: 127.0.0.1@{port} NOKEY
  allow-notify: 127.0.0.1 NOKEY
""")
    nsd = subprocess.Popen([NSD, "-d", "-c", conf], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 30
        while serial(nsd_port) != serial(port) and time.time() < deadline:
            time.sleep(0.05)
        print("zone: %d tasks; nsd has serial %s" % (tasks, serial(nsd_port)))
        template = next(t for t in doc["frameworks"][0]["tasks"] if netinfo(t))
        got = []
        for i in range(rounds):
            time.sleep(random.uniform(0.3, 1.3))  # no phase lock with the refresh tick
            t = json.loads(json.dumps(template))
            t["id"] = "probe-%d.%d" % (i, random.randrange(1 << 30))
            t["name"] = "probe-%d" % i
            ip = "10.98.%d.%d" % (i // 250, i % 250 + 1)
            netinfo(t)["ip_addresses"][0]["ip_address"] = ip
            doc["frameworks"][0]["tasks"].append(t)
            master.set(doc)
            t0 = time.monotonic()
            name = "probe-%d.marathon.mesos." % i
            while True:
                r = query(nsd_port, name, 1, timeout=0.05)
                if r and ip in r[1]:
                    break
                if time.monotonic() - t0 > 30:
                    sys.exit("nsd never answered " + name)
                time.sleep(0.005)
            ms = (time.monotonic() - t0) * 1000
            got.append(ms)
            print("round %d: %s -> %s after %.0f ms" % (i, name, ip, ms))
        got.sort()
        n = len(got)
        print("latency ms: min %.0f median %.0f p90 %.0f max %.0f (n=%d)" % (
            got[0], got[n // 2], got[min(n - 1, int(n * 0.9))], got[-1], n))
        with open(os.path.join(tmp, "mesos-dns.log")) as f:
            kinds = re.findall(r"ixfr to \S+: .*\((\w+)\)", f.read())
        print("our log: IXFR outcomes %s" % {k: kinds.count(k) for k in set(kinds)})
    finally:
        nsd.kill()
        p.kill()
        nsd.wait()
        p.wait()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--tasks", type=int, default=10000)
    ap.add_argument("--small", type=int, default=100)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        print("== transfer sizes ==")
        sizes(a.tasks, tmp)
    for n in (a.small, a.tasks):
        with tempfile.TemporaryDirectory() as tmp:
            print("== change -> nsd answers, %d tasks ==" % n)
            latency(n, a.rounds, tmp)


if __name__ == "__main__":
    main()
