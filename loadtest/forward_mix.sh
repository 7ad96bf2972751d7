#!/usr/bin/env bash
# loadtest/forward_mix.sh: mesos-dns under a 50/50 in-domain/forwarded query mix, cache warm,
# with a real upstream (NSD serving example.com.), and the same queries with the cache off.
#
# Builds the release binaries (unless --no-build), generates a synthetic Mesos state, dumps
# mesos-dns's records, writes a dnsperf query file with the mix (default
# "--a 40 --srv 10 --nx 0 --fwd 50"; forwarded names host-N.example.com. with N < --fwd-pool)
# and an example.com. zone holding every forwarded name the file uses (TTL --fwd-ttl, so no
# cache entry expires during the run). Starts NSD for example.com. on CPU $GEN_CPU, then for
# each config in --configs (cache: cacheSize --cache-size; nocache: cacheSize 0): starts
# mesos-dns (externalon, resolvers [NSD], workers 1, HTTP on for /metrics) on CPU $SERVER_CPU,
# checks answers (in-domain with check_answers.py, forwarded with dig), warms the cache by
# sending the query file once at --warm-rate, runs the peak (dnsperf -l --duration) and the
# fixed-rate run (-Q --rate -l --fixed-duration -v) with the server's CPU read from /proc, and
# scrapes /metrics between the phases. Writes loadtest/runs/<YYYY-MM-DD>-<host>-forward-mix/.
#
# Usage: loadtest/forward_mix.sh [options]
#   --tasks N            tasks in the synthetic state (default 1000)
#   --count N            lines in the query file (default 100000)
#   --mix "ARGS"         make_inputs.py mix (default "--a 40 --srv 10 --nx 0 --fwd 50")
#   --fwd-pool N         distinct forwarded names to draw from (default 5000)
#   --fwd-ttl S          TTL of the forwarded names in NSD's zone (default 3600)
#   --cache-size N       cacheSize of the "cache" config (default 10000, mesos-dns's default)
#   --configs "LIST"     subset/order of: cache nocache (default "cache nocache")
#   --warm-rate Q        dnsperf -Q of the warm-up pass over the whole file (default 20000)
#   --duration L         seconds of the peak run (default 20)
#   --rate Q             queries per second of the fixed-rate run (default 40000)
#   --fixed-duration S   seconds of the fixed-rate run (default 10)
#   --seed S             seed for the state and the queries (default 1)
#   --label TEXT         suffix of the output directory (default forward-mix)
#   --note TEXT          a note printed at the top of the run's README
#   --out DIR            output directory (default loadtest/runs/<date>-<host>-<label>)
#   --no-build           use the binaries already in target/release
# Environment: SERVER_CPU (mesos-dns, default 1), GEN_CPU (dnsperf and NSD, default 0),
# CLIENTS (dnsperf -c, default 4), OUTSTANDING (dnsperf -q, default 500).
#
# Loopback only; mesos-dns and NSD are stopped on exit (trap), every dnsperf is bounded by
# `timeout`.

set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=loadtest/lib.sh
. "$ROOT/loadtest/lib.sh"
LT="$ROOT/loadtest"
BIN="$ROOT/target/release"

TASKS=1000 COUNT=100000 SEED=1 FWD_POOL=5000 FWD_TTL=3600 CACHE_SIZE=10000
MIX="--a 40 --srv 10 --nx 0 --fwd 50"
CONFIGS="cache nocache"
WARM_RATE=20000 DURATION=20 RATE=40000 FIXED=10
LABEL="forward-mix" NOTE="" OUT="" BUILD=1
SERVER_CPU=${SERVER_CPU:-1} GEN_CPU=${GEN_CPU:-0}
CLIENTS=${CLIENTS:-4} OUTSTANDING=${OUTSTANDING:-500}

while [ $# -gt 0 ]; do
    case "$1" in
        --tasks) TASKS=$2; shift 2 ;;
        --count) COUNT=$2; shift 2 ;;
        --mix) MIX=$2; shift 2 ;;
        --fwd-pool) FWD_POOL=$2; shift 2 ;;
        --fwd-ttl) FWD_TTL=$2; shift 2 ;;
        --cache-size) CACHE_SIZE=$2; shift 2 ;;
        --configs) CONFIGS=$2; shift 2 ;;
        --warm-rate) WARM_RATE=$2; shift 2 ;;
        --duration) DURATION=$2; shift 2 ;;
        --rate) RATE=$2; shift 2 ;;
        --fixed-duration) FIXED=$2; shift 2 ;;
        --seed) SEED=$2; shift 2 ;;
        --label) LABEL=$2; shift 2 ;;
        --note) NOTE=$2; shift 2 ;;
        --out) OUT=$2; shift 2 ;;
        --no-build) BUILD=0; shift ;;
        -h|--help) usage ;;
        *) echo "forward_mix.sh: unknown argument $1" >&2; usage ;;
    esac
done
for c in $CONFIGS; do
    case "$c" in cache|nocache) ;; *) echo "forward_mix.sh: unknown config $c" >&2; exit 2 ;; esac
done
for tool in dnsperf dig nsd curl taskset timeout python3; do
    command -v "$tool" >/dev/null || { echo "forward_mix.sh: $tool not found (apt-get install -y dnsperf nsd bind9-dnsutils curl)" >&2; exit 2; }
done

HOST=$(hostname -s 2>/dev/null || hostname)
[ -n "$OUT" ] || OUT="$LT/runs/$(date +%F)-$HOST${LABEL:+-$LABEL}"
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
WORK=$(mktemp -d /tmp/mesos-dns-fwdmix.XXXXXX)
CMDS="$OUT/commands.txt"
: > "$CMDS"

# --- cleanup: stop what this script started (by pid, with its process tree) -------------
SERVER_PID="" NSD_PID=""
stop_tree() {
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
    stop_tree "$SERVER_PID"; SERVER_PID=""
    stop_tree "$NSD_PID"; NSD_PID=""
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log() { printf '[forward_mix.sh %s] %s\n' "$(date +%T)" "$*" >&2; }

# --- machine ------------------------------------------------------------------------------
{
    machine_facts
    echo "binary: $(stat -c '%y' "$BIN/mesos-dns" 2>/dev/null || echo '?') (mtime of target/release/mesos-dns), build: $([ "$BUILD" = 1 ] && echo 'cargo build --release --bins' || echo 'none (--no-build)')"
} > "$OUT/machine.txt"
log "output: $OUT"

# --- build, state, dump, inputs -------------------------------------------------------------
if [ "$BUILD" = 1 ]; then
    log "building release binaries"
    (cd "$ROOT" && run cargo build --release --bins)
    sed -i "s|^binary: .*|binary: $(stat -c '%y' "$BIN/mesos-dns") (mtime of target/release/mesos-dns), build: cargo build --release --bins|" "$OUT/machine.txt"
fi
run "$BIN/mesos-dns-gen-state" --tasks "$TASKS" --seed "$SEED" --out "$WORK/state.json"
cat > "$WORK/cfg.json" <<EOF
{ "stateFile": "$WORK/state.json", "port": 53, "listener": "127.0.0.1", "httpon": false,
  "externalon": false, "refreshSeconds": 3600, "workers": 1 }
EOF
record "$BIN/mesos-dns" -config "$WORK/cfg.json" --dump-records ">" "$WORK/dump.json"
"$BIN/mesos-dns" -config "$WORK/cfg.json" --dump-records > "$WORK/dump.json"
# shellcheck disable=SC2086
run python3 "$LT/make_inputs.py" --dump "$WORK/dump.json" --queries "$WORK/queries.txt" \
    --samples "$OUT/samples.json" $MIX --count "$COUNT" --seed "$SEED" \
    --fwd-pool "$FWD_POOL" --fwd-zone "$WORK/example.com.zone" --fwd-ttl "$FWD_TTL" \
    2> "$WORK/make_inputs.log"
cat "$WORK/make_inputs.log" >&2
FWD_NAMES=$(grep -c ' IN A 10\.' "$WORK/example.com.zone" || true)
QUERY_COUNTS=$(sed -n 's/.*queries.txt: //p' "$WORK/make_inputs.log")
FWD_LINES=$(grep -c '\.example\.com\. ' "$WORK/queries.txt" || true)
cat > "$OUT/params.env" <<EOF
TASKS=$TASKS
SEED=$SEED
COUNT=$COUNT
MIX=$MIX
QUERY_COUNTS=$QUERY_COUNTS
FWD_POOL=$FWD_POOL
FWD_LINES=$FWD_LINES
FWD_NAMES=$FWD_NAMES
FWD_TTL=$FWD_TTL
CACHE_SIZE=$CACHE_SIZE
CONFIGS=$CONFIGS
WARM_RATE=$WARM_RATE
DURATION=$DURATION
RATE=$RATE
FIXED=$FIXED
SERVER_CPU=$SERVER_CPU
GEN_CPU=$GEN_CPU
CLIENTS=$CLIENTS
OUTSTANDING=$OUTSTANDING
CLK_TCK=$(getconf CLK_TCK)
NOTE=$NOTE
STATE_SHA=$(sha256sum "$WORK/state.json" | cut -d' ' -f1)
QUERIES_SHA=$(sha256sum "$WORK/queries.txt" | cut -d' ' -f1)
FWD_ZONE_SHA=$(sha256sum "$WORK/example.com.zone" | cut -d' ' -f1)
EOF
head -20 "$WORK/queries.txt" > "$OUT/queries-head.txt"
head -8 "$WORK/example.com.zone" > "$OUT/example.com.zone-head.txt"

# --- helpers ---------------------------------------------------------------------------------
dnsperf_run() { # OUTFILE TIMEOUT PORT ARGS...
    local out=$1 secs=$2 port=$3
    shift 3
    record timeout "$secs" taskset -c "$GEN_CPU" dnsperf -s 127.0.0.1 -p "$port" -d "$WORK/queries.txt" \
        -c "$CLIENTS" -T 1 -q "$OUTSTANDING" "$@" ">" "${out/$OUT\//}"
    timeout "$secs" taskset -c "$GEN_CPU" dnsperf -s 127.0.0.1 -p "$port" -d "$WORK/queries.txt" \
        -c "$CLIENTS" -T 1 -q "$OUTSTANDING" "$@" > "$out" 2>&1 || true
}
scrape() { # HTTPPORT OUTFILE
    curl -s --max-time 5 "http://127.0.0.1:$1/metrics" > "$2" || echo "# scrape failed" > "$2"
}
snap() { # PREFIX: server CPU, NSD CPU, UDP counters into $M
    local t n rb ie sb
    read -r t n < <(python3 "$LT/proc_cpu.py" cpu "$SERVER_PID")
    echo "${1}_ticks=$t" >> "$M"; echo "${1}_ns=$n" >> "$M"
    read -r t n < <(python3 "$LT/proc_cpu.py" cpu "$NSD_PID")
    echo "${1}_nsd_ticks=$t" >> "$M"; echo "${1}_nsd_ns=$n" >> "$M"
    read -r rb ie sb < <(udp_counters)
    echo "${1}_rcvbuf=$rb" >> "$M"; echo "${1}_inerrors=$ie" >> "$M"; echo "${1}_sndbuf=$sb" >> "$M"
}
# dig checks of forwarded names: the address must be fwd_addr(N), the TTL at most FWD_TTL.
check_fwd() { # PORT OUTFILE -> "ok N/M" or "FAILED ..." on stdout
    local port=$1 out=$2 ok=0 total=0 bad="" name n want got ttl status
    : > "$out"
    for name in $(grep -o 'host-[0-9]*\.example\.com\.' "$WORK/queries.txt" | head -2000 | sort -u | head -8); do
        n=${name#host-}; n=${n%%.*}
        want="10.$(( (n >> 16) & 255 )).$(( (n >> 8) & 255 )).$(( n & 255 ))"
        dig +time=2 +tries=1 -p "$port" @127.0.0.1 "$name" A > "$WORK/dig.txt" 2>&1 || true
        status=$(sed -n 's/.*status: \([A-Z]*\).*/\1/p' "$WORK/dig.txt" | head -1)
        # only the answer section (NSD's reply, relayed as is, has ns1.example.com. A in additional)
        got=$(awk '/^;; ANSWER SECTION:/ { a = 1; next } /^$/ { a = 0 } a && $4 == "A" { print $1, $5 }' \
            "$WORK/dig.txt" | sort | tr '\n' ' ')
        ttl=$(awk '/^;; ANSWER SECTION:/ { a = 1; next } /^$/ { a = 0 } a && $4 == "A" { print $2; exit }' "$WORK/dig.txt")
        total=$((total + 1))
        if [ "$status" = NOERROR ] && [ "$got" = "$name $want " ] && [ -n "$ttl" ] && [ "$ttl" -le "$FWD_TTL" ]; then
            ok=$((ok + 1)); echo "ok   $name A -> $want ttl=$ttl" >> "$out"
        else
            bad="$bad $name"; echo "FAIL $name A: status=$status answers='$got' ttl=$ttl (want $want)" >> "$out"
        fi
    done
    { echo; echo "# full dig output of the last name:"; cat "$WORK/dig.txt"; } >> "$out"
    if [ -z "$bad" ]; then echo "ok $ok/$total"; else echo "FAILED $ok/$total (wrong:$bad)"; fi
}

# --- NSD for example.com., on GEN_CPU ----------------------------------------------------------
NSD_PORT=$(free_port)
mkdir -p "$WORK/nsd"
cp "$WORK/example.com.zone" "$WORK/nsd/example.com.zone"
cat > "$WORK/nsd/nsd.conf" <<EOF
server:
    server-count: 1
    ip-address: 127.0.0.1
    port: $NSD_PORT
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
    name: example.com
    zonefile: example.com.zone
EOF
cp "$WORK/nsd/nsd.conf" "$OUT/nsd.conf"
log "nsd: starting on 127.0.0.1:$NSD_PORT (CPU $GEN_CPU)"
record taskset -c "$GEN_CPU" nsd -d -c "$WORK/nsd/nsd.conf" "&"
taskset -c "$GEN_CPU" nsd -d -c "$WORK/nsd/nsd.conf" 2> "$OUT/nsd-stderr.txt" &
NSD_PID=$!
FIRST_FWD=$(grep -o -m1 'host-[0-9]*\.example\.com\.' "$WORK/queries.txt")
if ! wait_answering "$NSD_PORT" "$NSD_PID" "$FIRST_FWD"; then
    log "nsd did not answer $FIRST_FWD within 30 s; see $OUT/nsd-stderr.txt"
    exit 1
fi
for p in $(python3 "$LT/proc_cpu.py" tree "$NSD_PID"); do taskset -a -p -c "$GEN_CPU" "$p" > /dev/null 2>&1 || true; done
check_fwd "$NSD_PORT" "$OUT/nsd-check.txt" > "$WORK/nsd-check.result"
log "nsd: forwarded names $(cat "$WORK/nsd-check.result")"

# --- mesos-dns, one config after the other -------------------------------------------------------
for name in $CONFIGS; do
    dir="$OUT/$name"
    rm -rf "$dir"
    mkdir -p "$dir"
    port=$(free_port)
    hport=$(free_port)
    if [ "$name" = cache ]; then cs=$CACHE_SIZE; else cs=0; fi
    cfg="$WORK/$name.json"
    cat > "$cfg" <<EOF
{
  "stateFile": "$WORK/state.json",
  "port": $port,
  "listener": "127.0.0.1",
  "httpon": true,
  "httplistener": "127.0.0.1",
  "httpport": $hport,
  "externalon": true,
  "resolvers": ["127.0.0.1:$NSD_PORT"],
  "cacheSize": $cs,
  "refreshSeconds": 3600,
  "workers": 1,
  "pinWorkers": false
}
EOF
    cp "$cfg" "$dir/mesos-dns.json"
    log "$name: mesos-dns on 127.0.0.1:$port, http $hport, cacheSize $cs (CPU $SERVER_CPU)"
    record "# --- $name"
    record taskset -c "$SERVER_CPU" "$BIN/mesos-dns" -config "$cfg" "&"
    taskset -c "$SERVER_CPU" "$BIN/mesos-dns" -config "$cfg" 2> "$dir/stderr.txt" &
    SERVER_PID=$!
    M="$dir/metrics.txt"
    echo "port=$port" > "$M"
    echo "cache_size=$cs" >> "$M"
    if ! wait_answering "$port" "$SERVER_PID" leader.mesos; then
        log "$name: did not answer within 30 s; see $dir/stderr.txt"
        echo "start=failed" >> "$M"
        stop_tree "$SERVER_PID"; SERVER_PID=""
        continue
    fi
    for p in $(python3 "$LT/proc_cpu.py" tree "$SERVER_PID"); do taskset -a -p -c "$SERVER_CPU" "$p" > /dev/null 2>&1 || true; done

    # answers before any load: in-domain samples, forwarded names (cold: relayed from NSD)
    record python3 "$LT/check_answers.py" --samples "$OUT/samples.json" --port "$port"
    if python3 "$LT/check_answers.py" --samples "$OUT/samples.json" --port "$port" > "$dir/check.txt" 2>&1; then
        echo "check=$(tail -1 "$dir/check.txt")" >> "$M"
    else
        echo "check=FAILED: $(tail -1 "$dir/check.txt")" >> "$M"; log "$name: WRONG in-domain answers, see $dir/check.txt"
    fi
    echo "check_fwd_cold=$(check_fwd "$port" "$dir/check-fwd-cold.txt")" >> "$M"

    scrape "$hport" "$dir/metrics-0-start.txt"
    log "$name: warm-up: the whole query file once at $WARM_RATE qps"
    snap warm_before
    dnsperf_run "$dir/warm.txt" 300 "$port" -n 1 -Q "$WARM_RATE"
    snap warm_after
    scrape "$hport" "$dir/metrics-1-warm.txt"
    echo "check_fwd_warm=$(check_fwd "$port" "$dir/check-fwd-warm.txt")" >> "$M"

    log "$name: peak ${DURATION}s"
    scrape "$hport" "$dir/metrics-2-before-peak.txt"
    snap peak_before
    dnsperf_run "$dir/peak.txt" $((DURATION + 60)) "$port" -l "$DURATION"
    snap peak_after
    scrape "$hport" "$dir/metrics-3-peak.txt"

    log "$name: fixed rate $RATE qps ${FIXED}s"
    snap fixed_before
    dnsperf_run "$WORK/fixed-verbose.txt" $((FIXED + 60)) "$port" -l "$FIXED" -Q "$RATE" -v
    snap fixed_after
    scrape "$hport" "$dir/metrics-4-fixed.txt"
    grep -v '^> ' "$WORK/fixed-verbose.txt" > "$dir/fixed.txt" || true
    python3 "$LT/report.py" latency "$WORK/fixed-verbose.txt" > "$dir/fixed-latency.txt"
    rm -f "$WORK/fixed-verbose.txt"

    echo "rss_kib=$(python3 "$LT/proc_cpu.py" rss "$SERVER_PID")" >> "$M"
    if python3 "$LT/check_answers.py" --samples "$OUT/samples.json" --port "$port" > "$dir/check-after.txt" 2>&1; then
        echo "check_after=$(tail -1 "$dir/check-after.txt")" >> "$M"
    else
        echo "check_after=FAILED: $(tail -1 "$dir/check-after.txt")" >> "$M"; log "$name: WRONG in-domain answers after the load"
    fi
    echo "check_fwd_after=$(check_fwd "$port" "$dir/check-fwd-after.txt")" >> "$M"
    python3 "$LT/proc_cpu.py" affinity "$SERVER_PID" > "$dir/affinity.txt" || true
    if awk -v c="$SERVER_CPU" '$NF != c { bad = 1 } END { exit bad }' "$dir/affinity.txt"; then
        echo "affinity=all threads on CPU $SERVER_CPU" >> "$M"
    else
        echo "affinity=NOT all threads on CPU $SERVER_CPU (see affinity.txt)" >> "$M"
    fi
    if kill -0 "$SERVER_PID" 2>/dev/null; then echo "alive_after=yes" >> "$M"; else echo "alive_after=NO (crashed)" >> "$M"; log "$name: DIED"; fi
    stop_tree "$SERVER_PID"; SERVER_PID=""
    log "$name: $(grep -h 'Queries per second' "$dir/peak.txt" | tr -s ' ')"
done

python3 "$LT/proc_cpu.py" affinity "$NSD_PID" > "$OUT/nsd-affinity.txt" || true
stop_tree "$NSD_PID"; NSD_PID=""
echo "uptime after: $(uptime)" >> "$OUT/machine.txt"
python3 "$LT/forward_mix_report.py" "$OUT"
log "done: $OUT/README.md"
