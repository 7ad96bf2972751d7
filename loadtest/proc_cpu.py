#!/usr/bin/env python3
"""Read the CPU time, memory and CPU affinity of a process and all its descendants from /proc.

  proc_cpu.py cpu PID       -> "TICKS NS": utime+stime in clock ticks (/proc/P/stat, summed
                               over the process tree) and the scheduler's run time in
                               nanoseconds (/proc/P/task/T/schedstat, summed over every thread)
  proc_cpu.py rss PID       -> VmRSS of the tree in KiB
  proc_cpu.py affinity PID  -> one line per thread: pid tid comm Cpus_allowed_list
  proc_cpu.py tree PID      -> the pids of the tree, one per line
  proc_cpu.py rusage OUT -- CMD ARGS...
                            runs CMD and writes its own resource use to OUT, one key=value a
                            line: utime_s, stime_s (CPU seconds), nvcsw, nivcsw (voluntary and
                            involuntary context switches, every thread); exits with CMD's
                            status. run.sh wraps dnsperf in it: on these machines the load
                            generator's core is often the limit, and what a server's reply
                            pattern costs it shows here.

A process tree, because NSD serves from a forked child; threads, because mesos-dns, Knot and
the null responder serve from threads. Linux only.
"""

import os
import signal
import sys


def parents():
    """pid -> ppid for every process (from /proc/*/stat)."""
    out = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open("/proc/%s/stat" % name) as f:
                    out[int(name)] = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                pass
    return out


def tree(pid):
    ppid = parents()
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        if p in ppid:
            out.append(p)
            todo += [c for c, pp in ppid.items() if pp == p]
    return out


def stat_ticks(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            rest = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0
    # Fields 14 and 15 of stat (utime, stime); rest[0] is field 3.
    return int(rest[11]) + int(rest[12])


def sched_ns(pid):
    total = 0
    try:
        tids = os.listdir("/proc/%d/task" % pid)
    except OSError:
        return 0
    for tid in tids:
        try:
            with open("/proc/%d/task/%s/schedstat" % (pid, tid)) as f:
                total += int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            pass
    return total


def status_field(path, key):
    try:
        with open(path) as f:
            for line in f:
                if line.startswith(key + ":"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return ""


def rusage(out_path, cmd):
    """Runs cmd, writes its rusage to out_path, returns its exit status."""
    pid = os.fork()
    if pid == 0:
        try:
            os.execvp(cmd[0], cmd)
        finally:
            os._exit(127)
    # `timeout` stops this wrapper with TERM: pass it on so the command stops too.
    signal.signal(signal.SIGTERM, lambda *_: os.kill(pid, signal.SIGTERM))
    while True:
        try:
            _, status, ru = os.wait4(pid, 0)
            break
        except InterruptedError:
            continue
    with open(out_path, "w") as f:
        f.write("utime_s=%.6f\nstime_s=%.6f\nnvcsw=%d\nnivcsw=%d\n"
                % (ru.ru_utime, ru.ru_stime, ru.ru_nvcsw, ru.ru_nivcsw))
    return os.waitstatus_to_exitcode(status)


def main(argv):
    if len(argv) >= 5 and argv[1] == "rusage" and argv[3] == "--":
        return rusage(argv[2], argv[4:])
    if len(argv) != 3 or argv[1] not in ("cpu", "rss", "affinity", "tree"):
        print(__doc__, file=sys.stderr)
        return 2
    pids = tree(int(argv[2]))
    if argv[1] == "cpu":
        print(sum(stat_ticks(p) for p in pids), sum(sched_ns(p) for p in pids))
    elif argv[1] == "rss":
        kib = 0
        for p in pids:
            v = status_field("/proc/%d/status" % p, "VmRSS").split()
            kib += int(v[0]) if v else 0
        print(kib)
    elif argv[1] == "tree":
        print("\n".join(map(str, pids)))
    else:
        for p in pids:
            for tid in sorted(os.listdir("/proc/%d/task" % p), key=int):
                base = "/proc/%d/task/%s/status" % (p, tid)
                print(p, tid, status_field(base, "Name"), status_field(base, "Cpus_allowed_list"))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
