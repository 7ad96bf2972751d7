#!/usr/bin/env python3
# rot2.py ROUNDS SECS name:port:pid ... : interleaved peak runs; QPS, ratio to first, dnsperf ctxsw/q, server CPU us/q at peak
import subprocess, sys, re, statistics, os
rounds=int(sys.argv[1]); secs=sys.argv[2]; servers=[a.split(':') for a in sys.argv[3:]]
extra=os.environ.get("DPX","").split()
def cpu(pid):
    s=0
    for t in os.listdir(f"/proc/{pid}/task"):
        try: s+=int(open(f"/proc/{pid}/task/{t}/schedstat").read().split()[0])
        except OSError: pass
    return s
R={n:{"q":[],"cs":[],"scpu":[],"util":[],"lost":0} for n,_,_ in servers}
for r in range(rounds):
    order = servers[r%len(servers):]+servers[:r%len(servers)]
    for n,p,pid in order:
        cmd=["taskset","-c","0","python3","/tmp/exp/rus.py","dnsperf","-s","127.0.0.1","-p",p,"-d","/tmp/exp/queries.txt","-c","4","-T","1","-q","500","-l",secs]+extra
        c0=cpu(pid)
        out=subprocess.run(cmd,capture_output=True,text=True,timeout=int(float(secs))+60)
        c1=cpu(pid)
        q=float(re.search(r"Queries per second:\s+([\d.]+)",out.stdout).group(1))
        done=int(re.search(r"Queries completed:\s+(\d+)",out.stdout).group(1))
        R[n]["lost"]+=int(re.search(r"Queries lost:\s+(\d+)",out.stdout).group(1))
        m=re.search(r"nvcsw=(\d+) nivcsw=(\d+)",out.stderr)
        R[n]["q"].append(q); R[n]["cs"].append((int(m.group(1))+int(m.group(2)))/done)
        R[n]["scpu"].append((c1-c0)/1000/done); R[n]["util"].append((c1-c0)/1e9/float(secs))
    print(f"round {r}: "+"  ".join(f"{n}={R[n]['q'][-1]:.0f}" for n,_,_ in servers), flush=True)
base=servers[0][0]
print(f"{'server':10s} {'median':>8s} {'ratio':>6s} {'min':>6s} {'max':>6s} {'gen-cs/q':>8s} {'srv-us/q':>8s} {'srv-util':>8s} lost")
for n,_,_ in servers:
    ratios=[a/b for a,b in zip(R[n]["q"],R[base]["q"])]
    md=statistics.median
    print(f"{n:10s} {md(R[n]['q']):8.0f} {md(ratios):6.3f} {min(ratios):6.3f} {max(ratios):6.3f} {md(R[n]['cs']):8.3f} {md(R[n]['scpu']):8.2f} {md(R[n]['util'])*100:7.0f}% {R[n]['lost']}")
