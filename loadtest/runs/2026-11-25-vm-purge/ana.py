import sys, re, collections
# parse perf script blocks
blocks=[]; cur=None
for line in open(sys.argv[1]):
    if not line.strip():
        if cur: blocks.append(cur); cur=None
        continue
    if not line.startswith('\t') and not line.startswith(' '*8):
        m=re.match(r'\s*(.+?)\s+(\d+)\s+([\d.]+): (\S+): (.*)', line)
        if m: cur=dict(comm=m[1],tid=int(m[2]),t=float(m[3]),ev=m[4],tr=m[5],st=[])
    elif cur is not None:
        p=line.split()
        if len(p)>=2: cur['st'].append(p[1])
if cur: blocks.append(cur)
WORKER='dns-worker-0'
wake=None; delays=[]; bycause=collections.Counter(); bycount=collections.Counter(); total=collections.Counter()
for b in blocks:
    if b['ev']=='sched:sched_waking' and ('comm='+WORKER) in b['tr']:
        wake=b['t']
    elif b['ev']=='sched:sched_switch' and ('next_comm='+WORKER) in b['tr']:
        if wake is not None:
            d=(b['t']-wake)*1e6
            prev=re.search(r'prev_comm=(\S+)',b['tr'])[1]
            st=[s for s in b['st'] if s not in ('__schedule','schedule','__traceiter_sched_switch')]
            key=prev+' | '+' < '.join(st[:6])
            delays.append((d,prev))
            total[prev]+=1
            if d>float(sys.argv[2]):
                bycause[key]+=d; bycount[key]+=1
        wake=None
delays.sort()
n=len(delays)
print('wakeups',n,'p50 %.1f p99 %.1f p99.9 %.1f max %.1f'%(delays[n//2][0],delays[int(n*.99)][0],delays[int(n*.999)][0],delays[-1][0]))
print('by prev', total.most_common())
over=[d for d in delays if d[0]>float(sys.argv[2])]
print('over',sys.argv[2],'us:',len(over), collections.Counter(p for _,p in over).most_common())
for k,v in bycause.most_common(25):
    print('%8.0f us %5d  %s'%(v,bycount[k],k))
# worker on-cpu spans
on=None; spans=[]
for b in blocks:
    if b['ev']!='sched:sched_switch': continue
    if ('next_comm='+WORKER) in b['tr']: on=b['t']
    elif ('prev_comm='+WORKER) in b['tr'] and on is not None:
        spans.append((b['t']-on)*1e6); on=None
spans.sort(); n=len(spans)
print('worker spans',n,'sum %.0f ms p50 %.1f p90 %.1f p99 %.1f max %.1f'%(sum(spans)/1e3,spans[n//2],spans[int(n*.9)],spans[int(n*.99)],spans[-1]))
