#!/usr/bin/env bash
# loadtest/run.sh: measure mesos-dns side by side with a null responder, NSD and Knot.
#
# Builds the release binaries, generates a synthetic Mesos state, dumps mesos-dns's records,
# writes the same records as a zone file for NSD and Knot plus a dnsperf query file, then for
# each server in turn: starts it on CPU $SERVER_CPU (taskset), waits until it answers, checks
# sample answers, warms up, runs dnsperf on CPU $GEN_CPU for the peak QPS and then at a fixed
# rate (server CPU per query, p99 latency), and stops it. Results and raw outputs go to
# loadtest/runs/<YYYY-MM-DD>-<hostname>[-<label>]/ (README.md holds the table).
#
# Usage: loadtest/run.sh [options]
#   --tasks N            tasks in the synthetic state (default 1000)
#   --duration L         seconds of the peak run (default 20)
#   --rate Q             queries per second of the fixed-rate run (default 40000)
#   --fixed-duration S   seconds of the fixed-rate run (default 10)
#   --warmup S           seconds of warm-up before the peak run (default 3)
#   --count N            lines in the query file (default 100000)
#   --mix "ARGS"         make_inputs.py mix (default "--a 70 --srv 20 --nx 10 --fwd 0")
#   --seed S             seed for the state and the queries (default 1)
#   --servers "LIST"     subset/order of: null null-coalesce mesos-w1 mesos-w2 nsd knot
#                        (default: all), and mesos-alt: the mesos-dns binary at $ALT_BIN
#                        (another build, for an A/B of two builds side by side in one run),
#                        configured as mesos-w1. null-coalesce is the null responder with
#                        --coalesce-us $COALESCE_US: it waits as a busy mesos-dns worker does
#   --refresh S          mesos-dns refreshSeconds (default 3600: no refresh during the run)
#   --label TEXT         suffix of the output directory (e.g. smoke)
#   --note TEXT          a note printed at the top of the run's README
#   --out DIR            output directory (default loadtest/runs/<date>-<host>[-<label>])
#   --no-build           use the binaries already in target/release
# Environment: SERVER_CPU (default 1), GEN_CPU (default 0), CLIENTS (dnsperf -c, default 4),
# OUTSTANDING (dnsperf -q, default 500), NULL_THREADS (default 1), ALT_BIN (for mesos-alt),
# COALESCE_US (default 100, mesos-dns's default: udpCoalesceMicros of every mesos-* server and
# --coalesce-us of null-coalesce; 0 turns coalescing off),
# DNSPERF_EXTRA (more dnsperf options for every run, e.g. "-e": queries with EDNS(0), so
# replies up to the servers' EDNS size are sent whole; without it NSD answers an SRV query
# whose reply passes 512 bytes with an empty truncated reply, where mesos-dns, as the
# original, drops glue and then answers until it fits).
#
# Loopback only; every server started here is stopped on exit (trap), every dnsperf is bounded
# by `timeout`.

set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=loadtest/lib.sh
. "$ROOT/loadtest/lib.sh"
LT="$ROOT/loadtest"
BIN="$ROOT/target/release"

TASKS=1000 DURATION=20 RATE=40000 FIXED=10 WARMUP=3 COUNT=100000 SEED=1
MIX="--a 70 --srv 20 --nx 10 --fwd 0"
SERVERS="null null-coalesce mesos-w1 mesos-w2 nsd knot"
REFRESH=3600 LABEL="" NOTE="" OUT="" BUILD=1
SERVER_CPU=${SERVER_CPU:-1} GEN_CPU=${GEN_CPU:-0}
CLIENTS=${CLIENTS:-4} OUTSTANDING=${OUTSTANDING:-500} NULL_THREADS=${NULL_THREADS:-1}
DNSPERF_EXTRA=${DNSPERF_EXTRA:-}
COALESCE_US=${COALESCE_US:-100}

while [ $# -gt 0 ]; do
    case "$1" in
        --tasks) TASKS=$2; shift 2 ;;
        --duration) DURATION=$2; shift 2 ;;
        --rate) RATE=$2; shift 2 ;;
        --fixed-duration) FIXED=$2; shift 2 ;;
        --warmup) WARMUP=$2; shift 2 ;;
        --count) COUNT=$2; shift 2 ;;
        --mix) MIX=$2; shift 2 ;;
        --seed) SEED=$2; shift 2 ;;
        --servers) SERVERS=$2; shift 2 ;;
        --refresh) REFRESH=$2; shift 2 ;;
        --label) LABEL=$2; shift 2 ;;
        --note) NOTE=$2; shift 2 ;;
        --out) OUT=$2; shift 2 ;;
        --no-build) BUILD=0; shift ;;
        -h|--help) usage ;;
        *) echo "run.sh: unknown argument $1" >&2; usage ;;
    esac
done
for s in $SERVERS; do
    case "$s" in null|null-coalesce|mesos-w1|mesos-w2|nsd|knot) ;;
        mesos-alt) [ -x "${ALT_BIN:-}" ] || { echo "run.sh: mesos-alt needs ALT_BIN=<a mesos-dns binary>" >&2; exit 2; } ;;
        *) echo "run.sh: unknown server $s" >&2; exit 2 ;; esac
done
for tool in dnsperf dig taskset timeout python3; do
    command -v "$tool" >/dev/null || { echo "run.sh: $tool not found (apt-get install -y dnsperf bind9-dnsutils)" >&2; exit 2; }
done
case " $SERVERS " in *" nsd "*) command -v nsd >/dev/null || { echo "run.sh: nsd not found" >&2; exit 2; } ;; esac
case " $SERVERS " in *" knot "*) command -v knotd >/dev/null || { echo "run.sh: knotd not found" >&2; exit 2; } ;; esac

HOST=$(hostname -s 2>/dev/null || hostname)
[ -n "$OUT" ] || OUT="$LT/runs/$(date +%F)-$HOST${LABEL:+-$LABEL}"
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
WORK=$(mktemp -d /tmp/mesos-dns-loadtest.XXXXXX)
CMDS="$OUT/commands.txt"
: > "$CMDS"

# --- cleanup: stop every server this script started (by pid, with its process tree) --------
SERVER_PID=""
stop_server() {
    local pid=$1 pids p i
    [ -n "$pid" ] || return 0
    pids=$(python3 "$LT/proc_cpu.py" tree "$pid" 2>/dev/null || true)
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 50); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    for p in $pids; do kill -KILL "$p" 2>/dev/null || true; done
    wait "$pid" 2>/dev/null || true
}
cleanup() {
    stop_server "$SERVER_PID"
    SERVER_PID=""
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log() { printf '[run.sh %s] %s\n' "$(date +%T)" "$*" >&2; }

# --- machine facts -----------------------------------------------------------------------
machine_facts > "$OUT/machine.txt"
log "output: $OUT"

# --- build, state, dump, inputs ----------------------------------------------------------
if [ "$BUILD" = 1 ]; then
    log "building release binaries"
    (cd "$ROOT" && run cargo build --release --bin mesos-dns --bin mesos-dns-gen-state --bin mesos-dns-null-responder)
fi
run "$BIN/mesos-dns-gen-state" --tasks "$TASKS" --seed "$SEED" --out "$WORK/state.json"

mesos_config() { # FILE PORT WORKERS PIN
    cat > "$1" <<EOF
{
  "stateFile": "$WORK/state.json",
  "port": $2,
  "listener": "127.0.0.1",
  "httpon": false,
  "externalon": false,
  "refreshSeconds": $REFRESH,
  "workers": $3,
  "pinWorkers": $4,
  "udpCoalesceMicros": $COALESCE_US
}
EOF
}
mesos_config "$WORK/dump-config.json" 53 1 false
record "$BIN/mesos-dns" -config "$WORK/dump-config.json" --dump-records ">" "$WORK/dump.json"
"$BIN/mesos-dns" -config "$WORK/dump-config.json" --dump-records > "$WORK/dump.json"
# shellcheck disable=SC2086
run python3 "$LT/make_inputs.py" --dump "$WORK/dump.json" --zone "$WORK/mesos.zone" \
    --queries "$WORK/queries.txt" --samples "$OUT/samples.json" $MIX --count "$COUNT" --seed "$SEED" \
    2> "$WORK/make_inputs.log"
cat "$WORK/make_inputs.log" >&2
ZONE_RECORDS=$(grep -c ' IN \(A\|AAAA\|SRV\) ' "$WORK/mesos.zone" || true)
QUERY_COUNTS=$(sed -n 's/.*queries.txt: //p' "$WORK/make_inputs.log")
cat > "$OUT/params.env" <<EOF
TASKS=$TASKS
SEED=$SEED
DURATION=$DURATION
RATE=$RATE
FIXED=$FIXED
WARMUP=$WARMUP
COUNT=$COUNT
MIX=$MIX
SERVERS=$SERVERS
REFRESH=$REFRESH
SERVER_CPU=$SERVER_CPU
GEN_CPU=$GEN_CPU
CLIENTS=$CLIENTS
OUTSTANDING=$OUTSTANDING
DNSPERF_EXTRA=$DNSPERF_EXTRA
COALESCE_US=$COALESCE_US
NULL_THREADS=$NULL_THREADS
CLK_TCK=$(getconf CLK_TCK)
LABEL=$LABEL
NOTE=$NOTE
STATE_BYTES=$(stat -c %s "$WORK/state.json")
ZONE_RECORDS=$ZONE_RECORDS
QUERY_COUNTS=$QUERY_COUNTS
STATE_SHA=$(sha256sum "$WORK/state.json" | cut -d' ' -f1)
ZONE_SHA=$(sha256sum "$WORK/mesos.zone" | cut -d' ' -f1)
QUERIES_SHA=$(sha256sum "$WORK/queries.txt" | cut -d' ' -f1)
EOF

# --- helpers -----------------------------------------------------------------------------
# Runs dnsperf pinned to GEN_CPU, bounded in time; extra args follow. dnsperf's own CPU time
# and context switches go to RUSAGEFILE (proc_cpu.py rusage): what the server's replies cost
# the load generator.
dnsperf_run() { # OUTFILE RUSAGEFILE SECONDS PORT ARGS...
    local out=$1 ru=$2 secs=$3 port=$4
    shift 4
    record timeout $((secs + 60)) taskset -c "$GEN_CPU" python3 "$LT/proc_cpu.py" rusage "${ru/$OUT\//}" -- \
        dnsperf -s 127.0.0.1 -p "$port" -d "$WORK/queries.txt" \
        -l "$secs" -c "$CLIENTS" -T 1 -q "$OUTSTANDING" $DNSPERF_EXTRA "$@" ">" "${out/$OUT\//}"
    # shellcheck disable=SC2086 # DNSPERF_EXTRA is a list of options
    timeout $((secs + 60)) taskset -c "$GEN_CPU" python3 "$LT/proc_cpu.py" rusage "$ru" -- \
        dnsperf -s 127.0.0.1 -p "$port" -d "$WORK/queries.txt" \
        -l "$secs" -c "$CLIENTS" -T 1 -q "$OUTSTANDING" $DNSPERF_EXTRA "$@" > "$out" 2>&1 || true
}

start_server() { # NAME PORT DIR -> SERVER_PID
    local name=$1 port=$2 dir=$3 cfg
    case "$name" in
        null)
            record taskset -c "$SERVER_CPU" "$BIN/mesos-dns-null-responder" --port "$port" --threads "$NULL_THREADS" "&"
            taskset -c "$SERVER_CPU" "$BIN/mesos-dns-null-responder" --port "$port" --threads "$NULL_THREADS" \
                2> "$dir/stderr.txt" &
            ;;
        null-coalesce)
            record taskset -c "$SERVER_CPU" "$BIN/mesos-dns-null-responder" --port "$port" --threads "$NULL_THREADS" \
                --coalesce-us "$COALESCE_US" "&"
            taskset -c "$SERVER_CPU" "$BIN/mesos-dns-null-responder" --port "$port" --threads "$NULL_THREADS" \
                --coalesce-us "$COALESCE_US" 2> "$dir/stderr.txt" &
            ;;
        mesos-w1|mesos-w2|mesos-alt)
            cfg="$WORK/$name.json"
            local bin="$BIN/mesos-dns"
            if [ "$name" = mesos-w2 ]; then mesos_config "$cfg" "$port" 2 false; else mesos_config "$cfg" "$port" 1 true; fi
            if [ "$name" = mesos-alt ]; then
                bin=$ALT_BIN
                record "# ALT_BIN=$ALT_BIN ($("$ALT_BIN" -version 2>&1 | head -1))"
            fi
            cp "$cfg" "$dir/mesos-dns.json"
            record taskset -c "$SERVER_CPU" "$bin" -config "$cfg" "&"
            taskset -c "$SERVER_CPU" "$bin" -config "$cfg" 2> "$dir/stderr.txt" &
            ;;
        nsd)
            mkdir -p "$WORK/nsd"
            cp "$WORK/mesos.zone" "$WORK/nsd/mesos.zone"
            cat > "$WORK/nsd/nsd.conf" <<EOF
server:
    server-count: 1
    ip-address: 127.0.0.1
    port: $port
    do-ip6: no
    username: ""
    chroot: ""
    zonesdir: "$WORK/nsd"
    database: ""
    zonelistfile: "$WORK/nsd/zone.list"
    xfrdfile: "$WORK/nsd/xfrd.state"
    xfrdir: "$WORK/nsd"
    pidfile: "$WORK/nsd/nsd.pid"
    verbosity: 1
    rrl-ratelimit: 0
    rrl-whitelist-ratelimit: 0
remote-control:
    control-enable: no
zone:
    name: mesos
    zonefile: mesos.zone
EOF
            cp "$WORK/nsd/nsd.conf" "$dir/nsd.conf"
            record taskset -c "$SERVER_CPU" nsd -d -c "$WORK/nsd/nsd.conf" "&"
            taskset -c "$SERVER_CPU" nsd -d -c "$WORK/nsd/nsd.conf" 2> "$dir/stderr.txt" &
            ;;
        knot)
            mkdir -p "$WORK/knot/db"
            cp "$WORK/mesos.zone" "$WORK/knot/mesos.zone"
            cat > "$WORK/knot/knot.conf" <<EOF
server:
    rundir: "$WORK/knot"
    listen: 127.0.0.1@$port
    udp-workers: 1
    tcp-workers: 1
    background-workers: 1
log:
  - target: stderr
    any: notice
database:
    storage: "$WORK/knot/db"
control:
    listen: "$WORK/knot/knot.sock"
template:
  - id: default
    storage: "$WORK/knot"
    zonefile-sync: -1
    zonefile-load: whole
    journal-content: none
zone:
  - domain: mesos
    file: "$WORK/knot/mesos.zone"
EOF
            cp "$WORK/knot/knot.conf" "$dir/knot.conf"
            record taskset -c "$SERVER_CPU" knotd -c "$WORK/knot/knot.conf" "&"
            taskset -c "$SERVER_CPU" knotd -c "$WORK/knot/knot.conf" 2> "$dir/stderr.txt" &
            ;;
    esac
    SERVER_PID=$!
}

# --- the servers, one after the other ----------------------------------------------------
for name in $SERVERS; do
    dir="$OUT/$name"
    rm -rf "$dir"
    mkdir -p "$dir"
    port=$(free_port)
    log "$name: starting on 127.0.0.1:$port (CPU $SERVER_CPU)"
    record "# --- $name"
    start_server "$name" "$port" "$dir"
    pid=$SERVER_PID
    M="$dir/metrics.txt"
    echo "port=$port" > "$M"
    if ! wait_answering "$port" "$pid"; then
        log "$name: did not answer within 30 s; see $dir/stderr.txt"
        echo "start=failed" >> "$M"
        stop_server "$pid"
        SERVER_PID=""
        continue
    fi
    # Pin every thread of the server to SERVER_CPU: taskset at start only sets the initial mask,
    # and Knot re-pins its UDP worker i to CPU i itself (which would put it next to dnsperf).
    python3 "$LT/proc_cpu.py" affinity "$pid" > "$dir/affinity-at-start.txt" || true
    record "for p in \$(python3 loadtest/proc_cpu.py tree $pid); do taskset -a -p -c $SERVER_CPU \$p; done"
    for p in $(python3 "$LT/proc_cpu.py" tree "$pid"); do taskset -a -p -c "$SERVER_CPU" "$p" > /dev/null || true; done
    check_args=()
    case "$name" in null|null-coalesce) check_args=(--null) ;; esac
    record python3 "$LT/check_answers.py" --samples "$OUT/samples.json" --port "$port" "${check_args[@]}"
    if python3 "$LT/check_answers.py" --samples "$OUT/samples.json" --port "$port" "${check_args[@]}" \
        > "$dir/check.txt" 2>&1; then
        echo "check=$(tail -1 "$dir/check.txt" | sed 's/ answered correctly//')" >> "$M"
    else
        echo "check=FAILED: $(tail -1 "$dir/check.txt")" >> "$M"
        log "$name: WRONG ANSWERS, see $dir/check.txt"
    fi

    log "$name: warm-up ${WARMUP}s"
    dnsperf_run "$dir/warmup.txt" "$dir/warmup-rusage.txt" "$WARMUP" "$port"

    log "$name: peak ${DURATION}s"
    read -r t n < <(python3 "$LT/proc_cpu.py" cpu "$pid")
    read -r rb ie sb < <(udp_counters)
    echo "peak_ticks_before=$t" >> "$M"; echo "peak_ns_before=$n" >> "$M"
    echo "peak_rcvbuf_before=$rb" >> "$M"; echo "peak_inerrors_before=$ie" >> "$M"; echo "peak_sndbuf_before=$sb" >> "$M"
    dnsperf_run "$dir/peak.txt" "$dir/peak-rusage.txt" "$DURATION" "$port"
    read -r t n < <(python3 "$LT/proc_cpu.py" cpu "$pid")
    read -r rb ie sb < <(udp_counters)
    echo "peak_ticks_after=$t" >> "$M"; echo "peak_ns_after=$n" >> "$M"
    echo "peak_rcvbuf_after=$rb" >> "$M"; echo "peak_inerrors_after=$ie" >> "$M"; echo "peak_sndbuf_after=$sb" >> "$M"

    log "$name: fixed rate $RATE qps ${FIXED}s"
    read -r t n < <(python3 "$LT/proc_cpu.py" cpu "$pid")
    read -r rb ie sb < <(udp_counters)
    echo "fixed_ticks_before=$t" >> "$M"; echo "fixed_ns_before=$n" >> "$M"
    echo "fixed_rcvbuf_before=$rb" >> "$M"; echo "fixed_inerrors_before=$ie" >> "$M"; echo "fixed_sndbuf_before=$sb" >> "$M"
    dnsperf_run "$WORK/fixed-verbose.txt" "$dir/fixed-rusage.txt" "$FIXED" "$port" -Q "$RATE" -v
    read -r t n < <(python3 "$LT/proc_cpu.py" cpu "$pid")
    read -r rb ie sb < <(udp_counters)
    echo "fixed_ticks_after=$t" >> "$M"; echo "fixed_ns_after=$n" >> "$M"
    echo "fixed_rcvbuf_after=$rb" >> "$M"; echo "fixed_inerrors_after=$ie" >> "$M"; echo "fixed_sndbuf_after=$sb" >> "$M"
    grep -v '^> ' "$WORK/fixed-verbose.txt" > "$dir/fixed.txt" || true
    python3 "$LT/report.py" latency "$WORK/fixed-verbose.txt" > "$dir/fixed-latency.txt"
    rm -f "$WORK/fixed-verbose.txt"
    echo "rss_kib=$(python3 "$LT/proc_cpu.py" rss "$pid")" >> "$M"
    if python3 "$LT/check_answers.py" --samples "$OUT/samples.json" --port "$port" "${check_args[@]}" \
        > "$dir/check-after.txt" 2>&1; then
        echo "check_after=ok" >> "$M"
    else
        echo "check_after=FAILED: $(tail -1 "$dir/check-after.txt")" >> "$M"
        log "$name: WRONG ANSWERS after the load, see $dir/check-after.txt"
    fi
    python3 "$LT/proc_cpu.py" affinity "$pid" > "$dir/affinity.txt" || true
    if awk -v c="$SERVER_CPU" '$NF != c { bad = 1 } END { exit bad }' "$dir/affinity.txt"; then
        echo "affinity=all threads on CPU $SERVER_CPU" >> "$M"
    else
        echo "affinity=NOT all threads on CPU $SERVER_CPU (see affinity.txt)" >> "$M"
    fi
    if kill -0 "$pid" 2>/dev/null; then echo "alive_after=yes" >> "$M"; else echo "alive_after=NO (crashed)" >> "$M"; log "$name: DIED during the run"; fi

    stop_server "$pid"
    SERVER_PID=""
    log "$name: $(grep -h 'Queries per second' "$dir/peak.txt" | tr -s ' ')"
done

echo "uptime after: $(uptime)" >> "$OUT/machine.txt"
python3 "$LT/report.py" readme "$OUT"
log "done: $OUT/README.md"
