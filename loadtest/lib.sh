# Shared shell helpers of the load-test scripts (run.sh, soak.sh, forward_mix.sh,
# refresh_p99.sh); sourced,
# never run. Each script sets ROOT, WORK and CMDS before calling record/run.

# Prints the script's header comment (its usage text) and exits 2.
usage() { sed -n '2,/^$/{s/^# \{0,1\}//;p}' "$0" >&2; exit 2; }

free_port() {
    python3 - <<'EOF'
import socket
while True:
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.bind(("127.0.0.1", 0))
    port = u.getsockname()[1]
    t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        t.bind(("127.0.0.1", port))
    except OSError:
        continue
    print(port)
    break
EOF
}

udp_counters() { # "RcvbufErrors InErrors SndbufErrors" from /proc/net/snmp
    awk '/^Udp:/ { if (!h) { for (i = 1; i <= NF; i++) n[$i] = i; h = 1 }
                   else print $n["RcvbufErrors"], $n["InErrors"], $n["SndbufErrors"] }' /proc/net/snmp
}

# Records a command (paths shortened) in commands.txt.
record() {
    local line="$*"
    line=${line//$WORK/\$WORK}
    line=${line//$ROOT\//}
    printf '%s\n' "$line" >> "$CMDS"
}
# Runs and records a command.
run() { record "$@"; "$@"; }

# Until NAME (default leader.mesos) A gets NOERROR from 127.0.0.1:PORT, at most 30 s; fails
# at once when PID is gone.
wait_answering() { # PORT PID [NAME]
    local i
    for i in $(seq 60); do
        kill -0 "$2" 2>/dev/null || return 1
        if dig +time=1 +tries=1 -p "$1" @127.0.0.1 "${3:-leader.mesos}" A 2>/dev/null | grep -q 'status: NOERROR'; then
            return 0
        fi
        sleep 0.5
    done
    return 1
}

# The machine facts every run records (machine.txt): host, CPU, kernel, socket buffer limits,
# tool versions, the mesos-dns commit, date and load. Needs ROOT.
machine_facts() {
    echo "hostname: $(hostname -s 2>/dev/null || hostname)"
    echo "nproc: $(nproc)"
    echo "cpu: $(lscpu | sed -n 's/^Model name:[[:space:]]*//p' | head -1)"
    echo "kernel: $(uname -r) ($(uname -v))"
    echo "net.core.rmem_max: $(cat /proc/sys/net/core/rmem_max), wmem_max: $(cat /proc/sys/net/core/wmem_max)"
    echo "dnsperf: $(dnsperf -h 2>&1 | sed -n 's/^Version //p')"
    if command -v nsd >/dev/null; then echo "nsd: $(nsd -v 2>&1 | head -1)"; fi
    if command -v knotd >/dev/null; then echo "knot: $(knotd -V 2>&1 | head -1)"; fi
    echo "rustc: $(rustc --version 2>/dev/null || echo '?')"
    echo "mesos-dns: git $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$( [ -n "$(git -C "$ROOT" status --porcelain -- src Cargo.toml Cargo.lock 2>/dev/null)" ] && echo ' (with uncommitted changes in src/ or Cargo.*)')"
    echo "date: $(date -u +%FT%TZ)"
    echo "uptime before: $(uptime)"
}
