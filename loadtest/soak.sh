#!/usr/bin/env bash
# loadtest/soak.sh: mesos-dns under steady load for a long time, with the state changing every
# second and a fault every minute; reports lost queries (goal 0), p99 latency per minute (drift)
# and RSS growth (goal: flat).
#
# Builds the release binaries, generates a synthetic state A and a variant B (every 10th task
# killed, every agent on another address), derives a dnsperf query file from A's records,
# starts mesos-dns (stateFile, refreshSeconds 1) on CPU $SERVER_CPU, measures the peak for 10 s
# (set up like the soak runs) unless --qps is given, then runs dnsperf on CPU $GEN_CPU at --qps
# (default 80% of that peak), one 60 s run per minute (dnsperf -S 10 -v: per-10-s rates,
# per-query latencies), while:
#   - the state file is replaced every second, alternating A and B (the zone really changes);
#   - every --fault-every seconds (first one half-way through the first period) a fault lasts
#     5 s, in turn: the file is corrupt (the first half of A), larger than stateMaxBytes, gone;
#   - RSS (/proc/PID/status VmRSS) is sampled every 10 s.
# At the end A is written back, sample answers are checked with dig, /metrics is saved, the
# server is stopped, and soak_report.py writes the run's README.md.
#
# Usage: loadtest/soak.sh [options]
#   --minutes M          minutes of load (default 10)
#   --qps N              query rate (default: --peak-fraction of a 10 s peak measured first)
#   --peak-fraction F    (default 0.8)
#   --tasks N            tasks in the synthetic state (default 1000)
#   --seed S             seed of the state and the queries (default 1)
#   --fault-every S      seconds between faults (default 60)
#   --workers N          mesos-dns workers (default 1)
#   --label TEXT         suffix of the output directory (default soak)
#   --note TEXT          a note printed at the top of the README
#   --out DIR            output directory (default loadtest/runs/<YYYY-MM-DD>-<host>-<label>)
#   --no-build           use the binaries already in target/release
# Environment: SERVER_CPU (default 1), GEN_CPU (default 0), CLIENTS (dnsperf -c, default 4),
# OUTSTANDING (dnsperf -q, default 500).
#
# Loopback only. Bounded: every dnsperf runs under `timeout`, the loops end on their own; the
# server and the background loops are stopped on exit (trap), by pid.

set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=loadtest/lib.sh
. "$ROOT/loadtest/lib.sh"
LT="$ROOT/loadtest"
BIN="$ROOT/target/release"

MINUTES=10 QPS="" FRACTION=0.8 TASKS=1000 SEED=1 FAULT_EVERY=60 WORKERS=1
LABEL=soak NOTE="" OUT="" BUILD=1
SERVER_CPU=${SERVER_CPU:-1} GEN_CPU=${GEN_CPU:-0}
CLIENTS=${CLIENTS:-4} OUTSTANDING=${OUTSTANDING:-500}
FAULT_SECONDS=5

INVOCATION="loadtest/soak.sh $*"
while [ $# -gt 0 ]; do
    case "$1" in
        --minutes) MINUTES=$2; shift 2 ;;
        --qps) QPS=$2; shift 2 ;;
        --peak-fraction) FRACTION=$2; shift 2 ;;
        --tasks) TASKS=$2; shift 2 ;;
        --seed) SEED=$2; shift 2 ;;
        --fault-every) FAULT_EVERY=$2; shift 2 ;;
        --workers) WORKERS=$2; shift 2 ;;
        --label) LABEL=$2; shift 2 ;;
        --note) NOTE=$2; shift 2 ;;
        --out) OUT=$2; shift 2 ;;
        --no-build) BUILD=0; shift ;;
        -h|--help) usage ;;
        *) echo "soak.sh: unknown argument $1" >&2; usage ;;
    esac
done
case "$MINUTES" in ''|*[!0-9]*) echo "soak.sh: --minutes must be a whole number" >&2; exit 2 ;; esac
[ "$MINUTES" -ge 1 ] || { echo "soak.sh: --minutes must be at least 1" >&2; exit 2; }
case "$FAULT_EVERY" in ''|*[!0-9]*) echo "soak.sh: --fault-every must be a whole number" >&2; exit 2 ;; esac
[ "$FAULT_EVERY" -ge $((2 * FAULT_SECONDS)) ] || { echo "soak.sh: --fault-every must be >= $((2 * FAULT_SECONDS))" >&2; exit 2; }
for tool in dnsperf dig taskset timeout python3 awk; do
    command -v "$tool" >/dev/null || { echo "soak.sh: $tool not found (apt-get install -y dnsperf bind9-dnsutils)" >&2; exit 2; }
done

HOST=$(hostname -s 2>/dev/null || hostname)
[ -n "$OUT" ] || OUT="$LT/runs/$(date +%F)-$HOST${LABEL:+-$LABEL}"
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
WORK=$(mktemp -d /tmp/mesos-dns-soak.XXXXXX)
CMDS="$OUT/commands.txt"
printf '%s\n' "$INVOCATION" > "$CMDS"

# --- cleanup -------------------------------------------------------------------------------
SERVER_PID="" DRIVER_PID="" SAMPLER_PID=""
stop_pid() { # PID: TERM, up to 5 s, then KILL
    local pid=$1 i
    [ -n "$pid" ] || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 50); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}
cleanup() {
    stop_pid "$DRIVER_PID"; DRIVER_PID=""
    stop_pid "$SAMPLER_PID"; SAMPLER_PID=""
    stop_pid "$SERVER_PID"; SERVER_PID=""
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log() { printf '[soak.sh %s] %s\n' "$(date +%T)" "$*" >&2; }
now_ns() { date +%s%N; }

# --- machine facts -----------------------------------------------------------------------
machine_facts > "$OUT/machine.txt"
log "output: $OUT"

# --- build and inputs ----------------------------------------------------------------------
if [ "$BUILD" = 1 ]; then
    log "building release binaries"
    (cd "$ROOT" && run cargo build --release --bin mesos-dns --bin mesos-dns-gen-state)
fi
run "$BIN/mesos-dns-gen-state" --tasks "$TASKS" --seed "$SEED" --out "$WORK/state-a.json"
record python3 "<variant B: every 10th task TASK_KILLED, every agent +1 on its last octet>"
python3 - "$WORK/state-a.json" "$WORK/state-b.json" <<'EOF'
import json, re, sys
doc = json.load(open(sys.argv[1]))
for fw in doc.get("frameworks", []):
    for i, t in enumerate(fw.get("tasks", [])):
        if i % 10 == 0:
            t["state"] = "TASK_KILLED"
def bump(m):
    return "%s.%d:" % (m.group(1), int(m.group(2)) % 250 + 1)
for s in doc.get("slaves", []):
    s["pid"] = re.sub(r"@(\d+\.\d+\.\d+)\.(\d+):", lambda m: "@" + bump(m), s["pid"])
    s["hostname"] = s["pid"].split("@")[1].split(":")[0]
json.dump(doc, open(sys.argv[2], "w"))
EOF
SIZE_A=$(stat -c %s "$WORK/state-a.json")
SIZE_B=$(stat -c %s "$WORK/state-b.json")
MAX_SIZE=$(( SIZE_A > SIZE_B ? SIZE_A : SIZE_B ))
STATE_MAX=$(( MAX_SIZE * 2 ))
# Fault inputs: the first half of A (truncated JSON), and A padded past stateMaxBytes.
head -c $(( SIZE_A / 2 )) "$WORK/state-a.json" > "$WORK/state-corrupt.json"
python3 - "$WORK/state-a.json" "$WORK/state-huge.json" "$(( STATE_MAX + STATE_MAX / 2 ))" <<'EOF'
import json, sys
doc = json.load(open(sys.argv[1]))
doc["padding"] = "x" * int(sys.argv[3])
json.dump(doc, open(sys.argv[2], "w"))
EOF
record "head -c $(( SIZE_A / 2 )) \$WORK/state-a.json > \$WORK/state-corrupt.json; A + a padding field of $(( STATE_MAX + STATE_MAX / 2 )) bytes > \$WORK/state-huge.json"

PORT=$(free_port)
HTTP_PORT=$(free_port)
STATE="$WORK/state.json"
cp "$WORK/state-a.json" "$STATE"
cat > "$WORK/mesos-dns.json" <<EOF
{
  "stateFile": "$STATE",
  "refreshSeconds": 1,
  "stateMaxBytes": $STATE_MAX,
  "port": $PORT,
  "listener": "127.0.0.1",
  "httpon": true,
  "httpport": $HTTP_PORT,
  "httplistener": "127.0.0.1",
  "externalon": false,
  "workers": $WORKERS
}
EOF
cp "$WORK/mesos-dns.json" "$OUT/mesos-dns.json"
record "$BIN/mesos-dns" -config "$WORK/mesos-dns.json" --dump-records ">" "$WORK/dump.json"
"$BIN/mesos-dns" -config "$WORK/mesos-dns.json" --dump-records > "$WORK/dump.json"
run python3 "$LT/make_inputs.py" --dump "$WORK/dump.json" --zone "$WORK/mesos.zone" \
    --queries "$WORK/queries.txt" --samples "$OUT/samples.json" --a 70 --srv 20 --nx 10 --fwd 0 \
    --count 100000 --seed "$SEED" 2> "$WORK/make_inputs.log"

# --- the server ----------------------------------------------------------------------------
wait_answering() { # until a query gets NOERROR, at most 30 s
    local i
    for i in $(seq 60); do
        kill -0 "$SERVER_PID" 2>/dev/null || return 1
        if dig +time=1 +tries=1 -p "$PORT" @127.0.0.1 leader.mesos A 2>/dev/null | grep -q 'status: NOERROR'; then
            return 0
        fi
        sleep 0.5
    done
    return 1
}
record taskset -c "$SERVER_CPU" "$BIN/mesos-dns" -config "$WORK/mesos-dns.json" "&"
taskset -c "$SERVER_CPU" "$BIN/mesos-dns" -config "$WORK/mesos-dns.json" 2> "$OUT/stderr.txt" &
SERVER_PID=$!
wait_answering || { log "mesos-dns did not answer within 30 s; see $OUT/stderr.txt"; exit 1; }
log "mesos-dns pid $SERVER_PID on 127.0.0.1:$PORT (CPU $SERVER_CPU), http $HTTP_PORT"

metrics() { # FILE: save /metrics
    python3 -c 'import sys, urllib.request; sys.stdout.write(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode())' \
        "http://127.0.0.1:$HTTP_PORT/metrics" > "$1" 2>/dev/null || echo "# /metrics unavailable" > "$1"
}
rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" 2>/dev/null || echo 0; }
udp_rcvbuf_errors() {
    awk '/^Udp:/ { if (!h) { for (i = 1; i <= NF; i++) n[$i] = i; h = 1 } else print $n["RcvbufErrors"] }' /proc/net/snmp
}
dnsperf_cmd=(dnsperf -s 127.0.0.1 -p "$PORT" -d "$WORK/queries.txt" -c "$CLIENTS" -T 1 -q "$OUTSTANDING")

# The aggregator: per-query lines of `dnsperf -v` ("> RCODE name type seconds") into 10 µs
# buckets (percentiles are bucket upper bounds); every other line goes to the run's file.
AGG='
/^> / {
    lat = $NF
    if (lat !~ /^[0-9.]+$/) { bad++; next }
    lat += 0; n++; sum += lat; b = int(lat * 100000); h[b]++
    if (b > maxb) maxb = b
    if (lat > mx) mx = lat
    rc[$2]++
    next
}
{ print > OUT }
END {
    printf "responses %d\n", n > LAT
    if (n > 0) {
        printf "avg_us %.1f\n", sum / n * 1e6 > LAT
        q[1] = 0.5; q[2] = 0.9; q[3] = 0.99; q[4] = 0.999
        nm[1] = "p50"; nm[2] = "p90"; nm[3] = "p99"; nm[4] = "p999"
        c = 0; qi = 1
        for (b = 0; b <= maxb && qi <= 4; b++) {
            c += h[b]
            while (qi <= 4 && c >= q[qi] * n) { printf "%s_us %d\n", nm[qi], (b + 1) * 10 > LAT; qi++ }
        }
        printf "max_us %d\n", mx * 1e6 > LAT
    }
    for (r in rc) printf "rcode %s %d\n", r, rc[r] > LAT
    printf "unparsed %d\n", bad > LAT
}'

# --- peak ----------------------------------------------------------------------------------
if [ -z "$QPS" ]; then
    # Measured the way the soak runs (with -v and the aggregator on the generator's CPU), so
    # the fraction is of what this set-up can actually carry.
    log "warm-up 3 s, then a 10 s peak run"
    timeout 60 taskset -c "$GEN_CPU" "${dnsperf_cmd[@]}" -l 3 > "$OUT/warmup.txt" 2>&1 || true
    record timeout 70 taskset -c "$GEN_CPU" "${dnsperf_cmd[@]}" -l 10 -v "|" awk "<aggregator>" ">" peak.txt
    { timeout 70 taskset -c "$GEN_CPU" "${dnsperf_cmd[@]}" -l 10 -v 2>&1 || true; } \
        | taskset -c "$GEN_CPU" awk -v OUT="$OUT/peak.txt" -v LAT="$OUT/peak-latency.txt" "$AGG"
    PEAK=$(sed -n 's/.*Queries per second:[[:space:]]*\([0-9.]*\).*/\1/p' "$OUT/peak.txt" | head -1)
    [ -n "$PEAK" ] || { log "no peak figure; see $OUT/peak.txt"; exit 1; }
    QPS=$(python3 -c "print(int(float('$PEAK') * float('$FRACTION')))")
    log "peak $PEAK qps; soak rate $QPS qps"
else
    PEAK=""
fi

# --- background: state rewrites and faults, RSS sampling -----------------------------------
TOTAL=$(( MINUTES * 60 ))
START_NS=$(now_ns)
FAULTS=(corrupt huge delete)
driver() {
    local i=0 phase k kind target left_ms
    local half=$(( FAULT_EVERY / 2 ))
    while [ "$i" -lt "$TOTAL" ]; do
        target=$(( START_NS + i * 1000000000 ))
        left_ms=$(( (target - $(now_ns)) / 1000000 ))
        [ "$left_ms" -gt 0 ] && sleep "$(printf '%d.%03d' $(( left_ms / 1000 )) $(( left_ms % 1000 )))"
        phase=$(( i % FAULT_EVERY ))
        k=$(( i / FAULT_EVERY ))
        kind=${FAULTS[$(( k % 3 ))]}
        if [ "$phase" -eq "$half" ]; then
            printf '%d\tfault %s start\n' "$i" "$kind" >> "$OUT/events.tsv"
            case "$kind" in
                corrupt) cp "$WORK/state-corrupt.json" "$STATE.tmp" && mv -f "$STATE.tmp" "$STATE" ;;
                huge) cp "$WORK/state-huge.json" "$STATE.tmp" && mv -f "$STATE.tmp" "$STATE" ;;
                delete) rm -f "$STATE" ;;
            esac
        elif [ "$phase" -gt "$half" ] && [ "$phase" -lt $(( half + FAULT_SECONDS )) ]; then
            : # the fault holds
        else
            if [ "$phase" -eq $(( half + FAULT_SECONDS )) ]; then
                printf '%d\tfault %s end\n' "$i" "$kind" >> "$OUT/events.tsv"
            fi
            if [ $(( i % 2 )) -eq 0 ]; then
                cp "$WORK/state-a.json" "$STATE.tmp"
            else
                cp "$WORK/state-b.json" "$STATE.tmp"
            fi
            mv -f "$STATE.tmp" "$STATE"
        fi
        i=$(( i + 1 ))
    done
}
sampler() {
    local i=0
    printf 'elapsed_s\trss_kib\tthreads\n' > "$OUT/rss.tsv"
    while [ "$i" -le "$TOTAL" ]; do
        printf '%d\t%s\t%s\n' "$i" "$(rss_kib "$SERVER_PID")" \
            "$(awk '/^Threads:/ { print $2 }' "/proc/$SERVER_PID/status" 2>/dev/null || echo 0)" >> "$OUT/rss.tsv"
        sleep 10
        i=$(( i + 10 ))
    done
}

cat > "$OUT/params.env" <<EOF
MINUTES=$MINUTES
QPS=$QPS
PEAK=$PEAK
FRACTION=$FRACTION
TASKS=$TASKS
SEED=$SEED
FAULT_EVERY=$FAULT_EVERY
FAULT_SECONDS=$FAULT_SECONDS
WORKERS=$WORKERS
SERVER_CPU=$SERVER_CPU
GEN_CPU=$GEN_CPU
CLIENTS=$CLIENTS
OUTSTANDING=$OUTSTANDING
STATE_A_BYTES=$SIZE_A
STATE_B_BYTES=$SIZE_B
STATE_MAX_BYTES=$STATE_MAX
QUERY_COUNTS=$(sed -n 's/.*queries.txt: //p' "$WORK/make_inputs.log")
LABEL=$LABEL
NOTE=$NOTE
EOF

: > "$OUT/events.tsv"
RCVBUF_BEFORE=$(udp_rcvbuf_errors)
metrics "$OUT/metrics-before.txt"
record "# every second: cp \$WORK/state-{a,b}.json \$WORK/state.json.tmp && mv -f \$WORK/state.json.tmp \$WORK/state.json (alternating);" \
    "every $FAULT_EVERY s from $(( FAULT_EVERY / 2 )) s on, for $FAULT_SECONDS s in turn: state-corrupt.json, state-huge.json, rm -f state.json"
record "# every 10 s: VmRSS and Threads of /proc/$SERVER_PID/status"
driver &
DRIVER_PID=$!
sampler &
SAMPLER_PID=$!
log "soak: $MINUTES min at $QPS qps; state rewritten every second; a fault every $FAULT_EVERY s"
for m in $(seq "$MINUTES"); do
    f=$(printf '%s/minute-%02d' "$OUT" "$m")
    record timeout 120 taskset -c "$GEN_CPU" "${dnsperf_cmd[@]}" -l 60 -Q "$QPS" -S 10 -v "|" awk "<aggregator>" ">" "${f/$OUT\//}.txt"
    { timeout 120 taskset -c "$GEN_CPU" "${dnsperf_cmd[@]}" -l 60 -Q "$QPS" -S 10 -v 2>&1 || true; } \
        | taskset -c "$GEN_CPU" awk -v OUT="$f.txt" -v LAT="$f-latency.txt" "$AGG"
    log "minute $m: $(grep -h 'Queries lost' "$f.txt" | tr -s ' ') p99 $(sed -n 's/^p99_us //p' "$f-latency.txt") us"
done
stop_pid "$DRIVER_PID"; DRIVER_PID=""
stop_pid "$SAMPLER_PID"; SAMPLER_PID=""
RCVBUF_AFTER=$(udp_rcvbuf_errors)
printf '%d\t%s\t%s\n' "$TOTAL" "$(rss_kib "$SERVER_PID")" \
    "$(awk '/^Threads:/ { print $2 }' "/proc/$SERVER_PID/status" 2>/dev/null || echo 0)" >> "$OUT/rss.tsv"

# --- after: state A back, answers checked, counters saved --------------------------------
cp "$WORK/state-a.json" "$STATE.tmp" && mv -f "$STATE.tmp" "$STATE"
sleep 3
{
    echo "rcvbuf_errors=$(( RCVBUF_AFTER - RCVBUF_BEFORE ))"
    if kill -0 "$SERVER_PID" 2>/dev/null; then echo "alive_after=yes"; else echo "alive_after=NO (crashed)"; fi
    record python3 "$LT/check_answers.py" --samples "$OUT/samples.json" --port "$PORT"
    if python3 "$LT/check_answers.py" --samples "$OUT/samples.json" --port "$PORT" > "$OUT/check-after.txt" 2>&1; then
        echo "check_after=$(tail -1 "$OUT/check-after.txt")"
    else
        echo "check_after=FAILED: $(tail -1 "$OUT/check-after.txt")"
    fi
    echo "refresh_failed_log_lines=$(grep -c 'state refresh failed' "$OUT/stderr.txt" || true)"
    echo "refresh_recovered_log_lines=$(grep -c 'state refresh recovered' "$OUT/stderr.txt" || true)"
} > "$OUT/after.env"
metrics "$OUT/metrics-after.txt"
stop_pid "$SERVER_PID"; SERVER_PID=""
echo "uptime after: $(uptime)" >> "$OUT/machine.txt"
python3 "$LT/soak_report.py" "$OUT"
log "done: $OUT/README.md"
