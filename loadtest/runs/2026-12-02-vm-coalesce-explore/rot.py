#!/usr/bin/env python3
# rot.py ROUNDS SECS name:port ... : interleaved peak runs, per-round ratios to the first server
import subprocess, sys, re, statistics, os, resource
rounds=int(sys.argv[1]); secs=sys.argv[2]; servers=[a.split(':') for a in sys.argv[3:]]
extra=os.environ.get("DPX","").split()
res={n:[] for n,_ in servers}; cs={n:[] for n,_ in servers}
for r in range(rounds):
    order = servers[r%len(servers):]+servers[:r%len(servers)]
    for n,p in order:
        cmd=["taskset","-c","0","python3","/tmp/exp/rus.py","dnsperf","-s","127.0.0.1","-p",p,"-d","/tmp/exp/queries.txt","-c","4","-T","1","-q","500","-l",secs]+extra
        out=subprocess.run(cmd,capture_output=True,text=True,timeout=int(secs)+60)
        q=float(re.search(r"Queries per second:\s+([\d.]+)",out.stdout).group(1))
        lost=int(re.search(r"Queries lost:\s+(\d+)",out.stdout).group(1))
        m=re.search(r"nvcsw=(\d+) nivcsw=(\d+)",out.stderr)
        res[n].append(q); cs[n].append((int(m.group(1))+int(m.group(2)))/(q*float(secs)))
        if lost: print(f"  {n} lost {lost}")
    print(f"round {r}: "+"  ".join(f"{n}={res[n][-1]:.0f}" for n,_ in servers), flush=True)
base=servers[0][0]
for n,_ in servers:
    ratios=[a/b for a,b in zip(res[n],res[base])]
    print(f"{n:8s} median {statistics.median(res[n]):9.0f}  ratio-to-{base} median {statistics.median(ratios):.3f} min {min(ratios):.3f} max {max(ratios):.3f}  dnsperf ctxsw/query {statistics.median(cs[n]):.3f}")
