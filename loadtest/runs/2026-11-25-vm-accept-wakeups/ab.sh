#!/bin/bash
# ab.sh LABEL BIN: per-thread CPU of mesos-dns over dnsperf -Q 40000 -l 10 (1k-task state)
L=$1; B=$2; P=$((20000 + RANDOM % 10000))
cat > cfg-$L.json <<EOC
{"stateFile": "/tmp/rp/s1k.json", "port": $P, "listener": "127.0.0.1", "httpon": false, "externalon": false, "refreshSeconds": 3600, "workers": 1, "pinWorkers": false}
EOC
taskset -c 1 $B/mesos-dns -config cfg-$L.json 2>/dev/null & PID=$!
for i in $(seq 100); do dig +short +time=1 +tries=1 @127.0.0.1 -p $P leader.mesos >/dev/null 2>&1 && break; sleep 0.2; done
taskset -a -p -c 1 $PID >/dev/null
timeout 60 taskset -c 0 dnsperf -s 127.0.0.1 -p $P -d q1k.txt -l 3 -c 4 -T 1 -q 500 >/dev/null 2>&1
sleep 1
snap() { for t in /proc/$PID/task/*; do echo "$(cat $t/comm) $(awk '{print $1, $2, $3}' $t/schedstat) $(awk '{print $14, $15}' $t/stat) $(grep -E '^(voluntary|nonvoluntary)' $t/status | awk '{print $2}' | tr '\n' ' ')"; done; }
snap > th0-$L
timeout 60 taskset -c 0 dnsperf -s 127.0.0.1 -p $P -d q1k.txt -l 10 -c 4 -T 1 -q 500 -Q 40000 > fx-$L.txt 2>&1
snap > th1-$L
kill $PID; wait $PID 2>/dev/null
paste th0-$L th1-$L | awk -v L=$L '{n=NF/2; printf "%s %-14s cpu_ms=%6.1f slices=%7d utime=%d stime=%d\n", L, $1, ($(n+2)-$2)/1e6, $(n+4)-$4, $(n+5)-$5, $(n+6)-$6}'
grep "Queries completed" fx-$L.txt
