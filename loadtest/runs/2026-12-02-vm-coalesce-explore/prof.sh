#!/bin/bash
# prof.sh NAME PORT: peak run 12 s; perf record on CPU0 (cpu-clock) for 6 s in the middle
name=$1; port=$2
./exp.sh $name $port -l 12 &
sleep 3
perf record -q -C 0 -e cpu-clock -F 4999 -g -o /tmp/exp/perf-$name.data -- sleep 6 2>/dev/null
wait
