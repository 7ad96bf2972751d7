#!/usr/bin/env python3
# fixed.py ROUNDS SECS RATE name:port:pid ... : interleaved fixed-rate runs; server CPU us/q, p50/p99 latency
import subprocess, sys, re, statistics, os, math
rounds=int(sys.argv[1]); secs=sys.argv[2]; rate=sys.argv[3]; servers=[a.split(':') for a in sys.argv[4:]]
def cpu(pid):
    s=0
    for t in os.listdir(f"/proc/{pid}/task"):
        try: s+=int(open(f"/proc/{pid}/task/{t}/schedstat").read().split()[0])
        except OSError: pass
    return s
def pct(v,q): return v[max(0,min(len(v)-1,math.ceil(q*len(v))-1))]
R={n:{"cpu":[],"p50":[],"p99":[],"gen":[]} for n,_,_ in servers}
for r in range(rounds):
    order = servers[r%len(servers):]+servers[:r%len(servers)]
    for n,p,pid in order:
        cmd=["taskset","-c","0","python3","/tmp/exp/rus.py","dnsperf","-s","127.0.0.1","-p",p,"-d","/tmp/exp100/queries.txt","-c","4","-T","1","-q","500","-l",secs,"-Q",rate,"-v"]
        c0=cpu(pid)
        out=subprocess.run(cmd,capture_output=True,text=True,timeout=int(secs)+60)
        c1=cpu(pid)
        lat=sorted(float(l.split()[-1])*1e6 for l in out.stdout.splitlines() if l.startswith("> "))
        done=int(re.search(r"Queries completed:\s+(\d+)",out.stdout).group(1))
        m=re.search(r"utime=([\d.]+) stime=([\d.]+)",out.stderr)
        R[n]["cpu"].append((c1-c0)/1000/done); R[n]["p50"].append(pct(lat,0.5)); R[n]["p99"].append(pct(lat,0.99))
        R[n]["gen"].append((float(m.group(1))+float(m.group(2)))*1e6/done)
    print(f"round {r}: "+"  ".join(f"{n}={R[n]['cpu'][-1]:.2f}us/{R[n]['p99'][-1]:.0f}" for n,_,_ in servers), flush=True)
md=statistics.median
print(f"{'server':10s} {'srv-us/q':>8s} {'gen-us/q':>8s} {'p50':>6s} {'p99':>6s}")
for n,_,_ in servers:
    print(f"{n:10s} {md(R[n]['cpu']):8.2f} {md(R[n]['gen']):8.2f} {md(R[n]['p50']):6.0f} {md(R[n]['p99']):6.0f}")
