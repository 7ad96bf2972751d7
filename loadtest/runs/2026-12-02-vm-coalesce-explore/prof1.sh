#!/bin/bash
name=$1; port=$2
./exp.sh $name $port -l 10 &
sleep 3
perf record -q -C 1 -e cpu-clock -F 4999 -g -o /tmp/exp/perf1-$name.data -- sleep 5 2>/dev/null
wait
