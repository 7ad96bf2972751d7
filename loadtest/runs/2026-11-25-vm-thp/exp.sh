#!/usr/bin/env bash
# exp.sh LABEL REFRESH(s) POLICY(normal|idle|batch) REFRESH_CPU ALTERNATE(0|1) [extra config json fragment]
set -u
LABEL=$1 REFRESH=$2 POLICY=$3 RCPU=$4 ALT=$5 EXTRA=${6:-}
B=${BIN:-/work/main/target/release}
cd /tmp/exp
ln -sfn state1.json state.json
PORT=$(( 20000 + RANDOM % 20000 ))
cat > cfg-$LABEL.json <<C
{"stateFile": "/tmp/exp/state.json", "port": $PORT, "listener":"127.0.0.1","httpon":false,"externalon":false,
 "refreshSeconds": $REFRESH, "workers": 1, "pinWorkers": false $EXTRA}
C
env ${MENV:-X=1} taskset -c 1 $B/mesos-dns -config cfg-$LABEL.json 2> err-$LABEL.txt &
PID=$!
trap 'kill $PID 2>/dev/null; [ -n "${APID:-}" ] && kill $APID 2>/dev/null' EXIT
for i in $(seq 1 60); do dig +short +time=1 +tries=1 @127.0.0.1 -p $PORT leader.mesos >/dev/null 2>&1 && dig +short @127.0.0.1 -p $PORT leader.mesos | grep -q . && break; sleep 1; done
taskset -a -p -c 1 $PID >/dev/null
for t in /proc/$PID/task/*; do
  if [ "$(cat $t/comm)" = refresh ]; then
    TID=$(basename $t)
    case $POLICY in idle) chrt -i -p 0 $TID ;; batch) chrt -b -p 0 $TID ;; esac
    taskset -p -c $RCPU $TID >/dev/null
  fi
done
timeout 30 taskset -c 0 dnsperf -s 127.0.0.1 -p $PORT -d queries.txt -l 3 -c 4 -T 1 -q 500 >/dev/null
sleep 3
if [ "$ALT" = 1 ]; then
  ( i=0; while :; do i=$((i+1)); if [ $((i%2)) = 0 ]; then ln -sfn state1.json st.tmp; else ln -sfn stateB.json st.tmp; fi; mv -T st.tmp state.json; sleep 1; done ) &
  APID=$!
  taskset -p -c 0 $APID >/dev/null
fi
if [ -n "${PERF:-}" ]; then (sleep 3; timeout 20 perf ${PERFCMD:-sched record} ${PERFCPU:--C 1} -o /tmp/exp/ps-$LABEL.data -- sleep 6 >/dev/null 2>&1) & fi
if [ -n "${HOG:-}" ]; then taskset -c 1 chrt -i 0 timeout 25 $HOG & fi
S0=$(awk '{print $14+$15}' /proc/$PID/stat)
timeout 40 taskset -c 0 dnsperf -s 127.0.0.1 -p $PORT -d queries.txt -l 15 -c 4 -T 1 -q 500 -Q 40000 -v > fixed-$LABEL.txt
S1=$(awk '{print $14+$15}' /proc/$PID/stat)
echo "== $LABEL refresh=$REFRESH policy=$POLICY rcpu=$RCPU alt=$ALT extra=$EXTRA cpu_ticks=$((S1-S0))"
python3 /work/main/loadtest/report.py latency fixed-$LABEL.txt | tr '\n' ' '; echo
grep -E "Queries lost|Queries completed" fixed-$LABEL.txt | tr -s ' ' | tr '\n' ' '; echo
grep -c "refresh" err-$LABEL.txt
