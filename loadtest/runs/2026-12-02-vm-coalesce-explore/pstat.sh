#!/bin/bash
# pstat.sh NAME PORT SECS [dnsperf args]: dnsperf's syscalls and switches per query
name=$1; port=$2; secs=$3; shift 3
taskset -c 0 perf stat -x, -e syscalls:sys_enter_poll,syscalls:sys_enter_recvfrom,syscalls:sys_enter_sendto,syscalls:sys_enter_futex,context-switches,task-clock -o /tmp/exp/pstat-$name.csv -- dnsperf -s 127.0.0.1 -p $port -d /tmp/exp/queries.txt -c 4 -T 1 -q 500 -l $secs "$@" > /tmp/exp/pout-$name.txt 2>&1
q=$(grep "Queries completed" /tmp/exp/pout-$name.txt | awk '{print $3}')
qps=$(grep "Queries per second" /tmp/exp/pout-$name.txt | awk '{print $4}')
awk -F, -v q=$q -v qps=$qps -v n=$name 'NF>2 && $1 ~ /^[0-9.]+$/ {split($3,e,":"); ev=e[length(e)]; v[ev]=$1} END {printf "%-6s qps %8.0f  per query: poll %.3f recvfrom %.3f sendto %.3f futex %.3f ctxsw %.3f cpu-us %.2f\n", n, qps, v["sys_enter_poll"]/q, v["sys_enter_recvfrom"]/q, v["sys_enter_sendto"]/q, v["sys_enter_futex"]/q, v["context-switches"]/q, v["task-clock"]/q/1000}' /tmp/exp/pstat-$name.csv
