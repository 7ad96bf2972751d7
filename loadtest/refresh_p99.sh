#!/usr/bin/env bash
# loadtest/refresh_p99.sh: mesos-dns's tail latency while a large state is refreshed every
# second, next to the same server without refreshes, in interleaved rounds (the p99 of this
# kind of machine drifts from minute to minute, so one pair of runs proves little).
#
# Builds the release binaries, generates a synthetic state A of --tasks tasks and its variant B
# (every 10th task of each framework killed: `mesos-dns-gen-state --kill-every 10`) and a query
# file from A's zone; then, each round, one run per case. In every case the stateFile symlink
# is switched between A and B every second (`loadtest/flip_state.py`: one process, no fork per
# switch, SCHED_IDLE on the load generator's core), so the cases differ only in the refresh:
#   base     refreshSeconds 3600: no refresh during the run
#   refresh  refreshSeconds 1: every refresh parses, builds and publishes a different zone
#   normal   (with --with-normal) as refresh, with "refreshPriority": "normal"
# Each run: one worker, every server thread on CPU $SERVER_CPU, dnsperf on CPU $GEN_CPU; a 3 s
# warm-up at full speed, a 3 s pause (a refresh the warm-up starved may have been raised: it
# ends before the measurement), then `-Q RATE -l DURATION -v`; p50/p90/p99/p99.9 from the
# per-query latencies. Results: loadtest/runs/<date>-<host>-refresh-p99/ (README.md: every
# run, the median per case and the ratios).
#
# Usage: loadtest/refresh_p99.sh [options]
#   --tasks N        tasks in the state (default 100000)
#   --rounds R       rounds of base/refresh[/normal] (default 3)
#   --rate Q         queries per second of the measured run (default 40000)
#   --duration S     seconds of the measured run (default 15)
#   --with-normal    also run the refreshPriority "normal" case
#   --label TEXT     output directory suffix (default refresh-p99)
#   --no-build       use the binaries already in target/release
# Environment: SERVER_CPU (default 1), GEN_CPU (default 0).
#
# Loopback only; every server is stopped on exit (trap); every dnsperf is bounded by `timeout`.

set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=loadtest/lib.sh
. "$ROOT/loadtest/lib.sh"
LT="$ROOT/loadtest"
BIN="$ROOT/target/release"

TASKS=100000 ROUNDS=3 RATE=40000 DURATION=15 WITH_NORMAL=0 LABEL=refresh-p99 BUILD=1
SERVER_CPU=${SERVER_CPU:-1} GEN_CPU=${GEN_CPU:-0}
while [ $# -gt 0 ]; do
    case "$1" in
        --tasks) TASKS=$2; shift 2 ;;
        --rounds) ROUNDS=$2; shift 2 ;;
        --rate) RATE=$2; shift 2 ;;
        --duration) DURATION=$2; shift 2 ;;
        --with-normal) WITH_NORMAL=1; shift ;;
        --label) LABEL=$2; shift 2 ;;
        --no-build) BUILD=0; shift ;;
        -h|--help) usage ;;
        *) echo "unknown option $1" >&2; usage ;;
    esac
done
for tool in dnsperf dig taskset chrt timeout python3; do
    command -v "$tool" >/dev/null || { echo "refresh_p99.sh needs $tool" >&2; exit 2; }
done

OUT="$ROOT/loadtest/runs/$(date +%F)-$(hostname -s)-$LABEL"
mkdir -p "$OUT"
WORK=$(mktemp -d /tmp/mesos-dns-refresh-p99.XXXXXX)
CMDS="$OUT/commands.txt"
: > "$CMDS"
SERVER_PID="" FLIP_PID=""
cleanup() {
    [ -n "$FLIP_PID" ] && kill "$FLIP_PID" 2>/dev/null
    [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT
log() { printf '[refresh_p99.sh %s] %s\n' "$(date +%T)" "$*" >&2; }
log "output: $OUT"

machine_facts > "$OUT/machine.txt"

if [ "$BUILD" = 1 ]; then
    log "building release binaries"
    (cd "$ROOT" && run cargo build --release --bin mesos-dns --bin mesos-dns-gen-state)
fi
run "$BIN/mesos-dns-gen-state" --tasks "$TASKS" --seed 1 --out "$WORK/state-a.json"
run "$BIN/mesos-dns-gen-state" --tasks "$TASKS" --seed 1 --kill-every 10 --out "$WORK/state-b.json"
ln -sfn "$WORK/state-a.json" "$WORK/state.json"
cat > "$WORK/dump-config.json" <<EOF
{"stateFile": "$WORK/state-a.json", "port": 53, "listener": "127.0.0.1", "httpon": false, "externalon": false}
EOF
record "$BIN/mesos-dns" -config "$WORK/dump-config.json" --dump-records ">" "$WORK/dump.json"
"$BIN/mesos-dns" -config "$WORK/dump-config.json" --dump-records > "$WORK/dump.json"
run python3 "$LT/make_inputs.py" --dump "$WORK/dump.json" --zone "$WORK/mesos.zone" \
    --queries "$WORK/queries.txt" --samples "$WORK/samples.json" --a 70 --srv 20 --nx 10 --fwd 0 \
    --count 100000 --seed 1 2> "$WORK/make_inputs.log"
cat "$WORK/make_inputs.log" >&2
rm -f "$WORK/dump.json" "$WORK/mesos.zone"

# One measured run: CASE ROUND
measure() {
    local case=$1 round=$2 refresh=3600 extra="" dir port
    dir="$OUT/$case-$round"
    mkdir -p "$dir"
    case "$case" in
        refresh) refresh=1 ;;
        normal) refresh=1 extra=', "refreshPriority": "normal"' ;;
    esac
    port=$(free_port)
    cat > "$dir/config.json" <<EOF
{"stateFile": "$WORK/state.json", "port": $port, "listener": "127.0.0.1", "httpon": false,
 "externalon": false, "refreshSeconds": $refresh, "workers": 1, "pinWorkers": false$extra}
EOF
    ln -sfn "$WORK/state-a.json" "$WORK/state.json"
    record "# $case round $round"
    record taskset -c "$SERVER_CPU" "$BIN/mesos-dns" -config "$dir/config.json" "&"
    taskset -c "$SERVER_CPU" "$BIN/mesos-dns" -config "$dir/config.json" 2> "$dir/stderr.txt" &
    SERVER_PID=$!
    if ! wait_answering "$port" "$SERVER_PID"; then
        log "$case-$round: mesos-dns did not answer; see $dir/stderr.txt"
        exit 1
    fi
    run taskset -a -p -c "$SERVER_CPU" "$SERVER_PID" > /dev/null
    record timeout 60 taskset -c "$GEN_CPU" dnsperf -s 127.0.0.1 -p "$port" -d "\$WORK/queries.txt" -l 3 -c 4 -T 1 -q 500 ">" /dev/null
    timeout 60 taskset -c "$GEN_CPU" dnsperf -s 127.0.0.1 -p "$port" -d "$WORK/queries.txt" -l 3 -c 4 -T 1 -q 500 > /dev/null 2>&1 || true
    record taskset -c "$GEN_CPU" chrt -i 0 python3 "\$LT/flip_state.py" "\$WORK" --limit $((DURATION + 120)) "&"
    taskset -c "$GEN_CPU" chrt -i 0 python3 "$LT/flip_state.py" "$WORK" --limit $((DURATION + 120)) &
    FLIP_PID=$!
    sleep 3
    local cpu0 cpu1
    cpu0=$(python3 "$LT/proc_cpu.py" cpu "$SERVER_PID" | awk '{print $2}')
    record timeout $((DURATION + 60)) taskset -c "$GEN_CPU" dnsperf -s 127.0.0.1 -p "$port" -d "\$WORK/queries.txt" -l "$DURATION" -c 4 -T 1 -q 500 -Q "$RATE" -v ">" "\$WORK/fixed-verbose.txt"
    timeout $((DURATION + 60)) taskset -c "$GEN_CPU" dnsperf -s 127.0.0.1 -p "$port" -d "$WORK/queries.txt" \
        -l "$DURATION" -c 4 -T 1 -q 500 -Q "$RATE" -v > "$WORK/fixed-verbose.txt" 2>&1 || true
    cpu1=$(python3 "$LT/proc_cpu.py" cpu "$SERVER_PID" | awk '{print $2}')
    echo "server_cpu_ns $cpu0 $cpu1" > "$dir/cpu.txt"
    if [ -n "$FLIP_PID" ]; then kill "$FLIP_PID" 2>/dev/null; wait "$FLIP_PID" 2>/dev/null || true; FLIP_PID=""; fi
    kill "$SERVER_PID" 2>/dev/null; wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=""
    grep -v '^> ' "$WORK/fixed-verbose.txt" > "$dir/fixed.txt" || true
    python3 "$LT/report.py" latency "$WORK/fixed-verbose.txt" > "$dir/fixed-latency.txt"
    rm -f "$WORK/fixed-verbose.txt"
    log "$case-$round: $(grep -E '^p99_us|^p999_us' "$dir/fixed-latency.txt" | tr '\n' ' ')$(grep -c 'raised to normal' "$dir/stderr.txt" || true) raises"
}

CASES="base refresh"
[ "$WITH_NORMAL" = 1 ] && CASES="$CASES normal"
for round in $(seq "$ROUNDS"); do
    for c in $CASES; do
        measure "$c" "$round"
    done
done
echo "uptime after: $(uptime)" >> "$OUT/machine.txt"
python3 "$LT/refresh_p99_report.py" "$OUT" "$TASKS" "$ROUNDS" "$RATE" "$DURATION" "$CASES" > "$OUT/README.md"
log "done: $OUT/README.md"
