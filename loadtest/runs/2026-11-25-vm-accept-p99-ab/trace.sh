#!/bin/bash
# trace.sh LABEL REFRESH(0/1) [ENV...]
B=${BIN:-/work/main/target/release}
L=$1; R=$2; shift 2
P=$((20000 + RANDOM % 10000))
RS=3600; [ "$R" != 0 ] && [ "$R" != F ] && RS=$R
FLIP=${FLIP:-$([ "$R" = 1 ] || [ "$R" = F ] && echo 1)}
cat > cfg-$L.json <<EOC
{"stateFile": "/tmp/rp/state.json", "port": $P, "listener": "127.0.0.1", "httpon": false, "externalon": false, "refreshSeconds": $RS, "workers": 1, "pinWorkers": false}
EOC
ln -sfn state-a.json state.json
env "$@" taskset -c 1 $B/mesos-dns -config cfg-$L.json 2>srv-$L.log & PID=$!
for i in $(seq 100); do dig +short +time=1 +tries=1 @127.0.0.1 -p $P leader.mesos >/dev/null 2>&1 && break; sleep 0.2; done
taskset -a -p -c 1 $PID >/dev/null
timeout 60 taskset -c 0 dnsperf -s 127.0.0.1 -p $P -d queries.txt -l 3 -c 4 -T 1 -q 500 >/dev/null 2>&1
FP=
if [ "$FLIP" = 1 ]; then
 if [ -n "$PYFLIP" ]; then chrt -i 0 python3 /tmp/rp/flip.py /tmp/rp & FP=$!; else
 (i=0; while :; do i=$((i+1)); if [ $((i%2)) = 1 ]; then n=state-b.json; else n=state-a.json; fi; ln -sfn $n s.next && mv -T s.next state.json; sleep 1; done) & FP=$!
 fi
 taskset -p -c 0 $FP >/dev/null
fi
sleep 3
c0=$(awk '{print $14+$15}' /proc/$PID/stat)
WT=$(grep -l "^dns-worker-0$" /proc/$PID/task/*/comm | head -1 | xargs dirname); w0=$(cat $WT/schedstat)
if [ -n "$PERF" ]; then (sleep 4; perf record $PERF -o perf-$L.data -- sleep 5 >/dev/null 2>&1) & PP=$!; fi
timeout 80 taskset -c 0 dnsperf -s 127.0.0.1 -p $P -d queries.txt -l ${DUR:-15} -c 4 -T 1 -q 500 -Q 40000 -v > fv-$L.txt 2>&1
c1=$(awk '{print $14+$15}' /proc/$PID/stat)
w1=$(cat $WT/schedstat)
[ -n "$PERF" ] && wait $PP
[ -n "$FP" ] && kill $FP
kill $PID; wait $PID 2>/dev/null
python3 /work/main/loadtest/report.py latency fv-$L.txt > lat-$L.txt
set -- $w0 $w1; WS="worker_run_ms=$((($4-$1)/1000000)) wait_ms=$((($5-$2)/1000000)) slices=$(($6-$3)) avg_wait_us=$((($5-$2)/($6-$3+1)/1000))"
echo "$L cpu_ticks=$((c1-c0)) $WS $(grep -E '^p50_us|^p99_us|^p999_us' lat-$L.txt | tr '\n' ' ')"
rm -f fv-$L.txt
