#!/bin/bash
# trace.sh NAME PORT : 0.2 s of sched + mmsg syscalls in the middle of a peak run
name=$1; port=$2
./exp.sh $name $port -l 6 > /tmp/exp/trace-$name.summary &
sleep 3
perf record -q -a -e sched:sched_switch,sched:sched_wakeup,syscalls:sys_enter_sendmmsg,syscalls:sys_exit_sendmmsg,syscalls:sys_enter_recvmmsg,syscalls:sys_exit_recvmmsg,syscalls:sys_enter_poll,syscalls:sys_exit_poll,syscalls:sys_enter_epoll_wait,syscalls:sys_exit_epoll_wait -o /tmp/exp/tr-$name.data -- sleep 0.2 2>/dev/null
wait
perf script -i /tmp/exp/tr-$name.data -F comm,tid,cpu,time,event,trace 2>/dev/null > /tmp/exp/tr-$name.txt
wc -l /tmp/exp/tr-$name.txt
