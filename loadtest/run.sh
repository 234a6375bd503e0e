#!/usr/bin/env bash
# Side-by-side load test: Libellule (--io_threads 1) vs redis-server, each
# pinned to the same CPU, driven by a load generator pinned to another CPU.
# See loadtest/README.md for the scenarios and how to read the output.
#
# Environment knobs (defaults in brackets):
#   ROUNDS [3]          rounds; servers alternate within each round
#   REQUESTS [1000000]  requests per redis-benchmark test
#   CLIENTS [50]        concurrent connections
#   KEYSPACE [1000000]  distinct keys (also the prefill size)
#   TEST_TIME [20]      seconds per memtier_benchmark run
#   MT_REQUESTS []      memtier: requests per client instead of TEST_TIME (short runs)
#   SERVER_CPU [1]      CPU both servers are pinned to
#   CLIENT_CPU [0]      CPU the load generator is pinned to
#   LIB_PORT [16379]    REDIS_PORT [16380]
#   LIB_ARGS []         extra flags for Libellule
#   TOOL [auto]         memtier | redis-benchmark (auto: memtier if on PATH)
#   SCENARIOS [all]     subset, e.g. "P1_d3 P16_d3". GET/SET scenarios are named
#                       P<pipeline>_d<value bytes>[_r<sets>-<gets>][_x<min>-<max>]:
#                       _r is the SET:GET ratio (default 1-1; memtier --ratio), _x
#                       an expiry range in seconds for the SETs (memtier
#                       --expiry-range); the default list differs by tool (see
#                       loadtest/README.md). Under redis-benchmark, _r1-0 runs SET
#                       only, _r0-1 GET only, other ratios SET then GET, and _x
#                       scenarios are skipped (it cannot set expiries). Besides
#                       those, command scenarios (always redis-benchmark,
#                       50 clients, pipeline 1): EVALSHA (the Directus rate-limiter
#                       script), PUBLISH (fan-out to SUBSCRIBERS subscribers), and the
#                       collection pairs LIST (LPUSH then LPOP), HASH (HSET then HGET),
#                       ZSET (ZADD then ZRANGE 0 9), SET (SADD then SISMEMBER), each
#                       pair against one server instance
#   SUBSCRIBERS [10]    subscribers of the PUBLISH scenario
#   LIBELLULE_BIN []    use this binary instead of building target/release
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)

ROUNDS=${ROUNDS:-3}
REQUESTS=${REQUESTS:-1000000}
CLIENTS=${CLIENTS:-50}
KEYSPACE=${KEYSPACE:-1000000}
TEST_TIME=${TEST_TIME:-20}
SERVER_CPU=${SERVER_CPU:-1}
CLIENT_CPU=${CLIENT_CPU:-0}
LIB_PORT=${LIB_PORT:-16379}
REDIS_PORT=${REDIS_PORT:-16380}
LIB_ARGS=${LIB_ARGS:-}
TOOL=${TOOL:-auto}
MT_REQUESTS=${MT_REQUESTS:-}
SUBSCRIBERS=${SUBSCRIBERS:-10}

# The rate limiter script of rate-limiter-flexible, as Directus runs it.
RATE_LIMIT_LUA="redis.call('set', KEYS[1], 0, 'EX', ARGV[2], 'NX') local consumed = redis.call('incrby', KEYS[1], ARGV[1]) local ttl = redis.call('pttl', KEYS[1]) if ttl == -1 then redis.call('expire', KEYS[1], ARGV[2]) ttl = 1000 * ARGV[2] end return {consumed, ttl}"

BIN="${LIBELLULE_BIN:-$ROOT/target/release/libellule}"
STAMP=$(date +%Y%m%d-%H%M%S)
OUT="$ROOT/loadtest/results/$STAMP"
mkdir -p "$OUT"
RESULTS="$OUT/results.tsv"
printf 'server\tround\tscenario\top\trps\tp99_ms\n' > "$RESULTS"

log() { printf '[loadtest] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

for tool in redis-server redis-cli; do
    command -v "$tool" >/dev/null || die "$tool not found (apt-get install redis-server redis-tools)"
done
if [ "$TOOL" = auto ]; then
    if command -v memtier_benchmark >/dev/null; then TOOL=memtier; else TOOL=redis-benchmark; fi
fi
case "$TOOL" in
    memtier) command -v memtier_benchmark >/dev/null || die "memtier_benchmark not found" ;;
    redis-benchmark) command -v redis-benchmark >/dev/null || die "redis-benchmark not found" ;;
    *) die "TOOL must be memtier or redis-benchmark" ;;
esac
if [ "$TOOL" = memtier ]; then
    # The published memtier shapes (Redis's and Dragonfly's) scaled to this machine:
    # SET:GET 1:10 with 100 and 1024-byte values at pipeline 1 and 16, write-only and
    # read-only runs, and SETs with short expiries (keys expire during the run).
    DEFAULT_SCENARIOS="P1_d3 P16_d3 P1_d100_r1-10 P16_d100_r1-10 P1_d1024_r1-10
        P16_d1024_r1-10 P1_d100_r1-0 P16_d100_r1-0 P1_d100_r0-1 P16_d100_r0-1
        P1_d100_r1-10_x1-10 P16_d1024_r1-10_x1-10 EVALSHA PUBLISH"
else
    DEFAULT_SCENARIOS="P1_d3 P16_d3 P1_d100 P16_d100 EVALSHA PUBLISH"
fi
SCENARIOS=$(echo ${SCENARIOS:-$DEFAULT_SCENARIOS})

# CPU pinning: needs taskset and at least two CPUs.
SERVER_PIN=()
CLIENT_PIN=()
if command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then
    SERVER_PIN=(taskset -c "$SERVER_CPU")
    CLIENT_PIN=(taskset -c "$CLIENT_CPU")
else
    log "warning: no taskset or fewer than 2 CPUs: running unpinned"
fi

if [ -z "${LIBELLULE_BIN:-}" ]; then
    log "building release binary (no-op when up to date)"
    cargo build --release >&2
fi
[ -x "$BIN" ] || die "$BIN missing after build"

{
    echo "date: $(date -Is)"
    echo "host: $(uname -a)"
    echo "cpus: $(nproc)"
    grep -m1 'model name' /proc/cpuinfo 2>/dev/null || true
    echo "libellule: $("$BIN" --version 2>&1 | head -1)"
    echo "redis: $(redis-server --version)"
    echo "tool: $TOOL"
    echo "rounds=$ROUNDS requests=$REQUESTS clients=$CLIENTS keyspace=$KEYSPACE test_time=$TEST_TIME mt_requests=$MT_REQUESTS"
    echo "server_cpu=$SERVER_CPU client_cpu=$CLIENT_CPU lib_args=$LIB_ARGS"
    echo "scenarios: $SCENARIOS"
} > "$OUT/environment.txt"

SERVER_PID=""
cleanup() {
    if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
}
trap cleanup EXIT INT TERM

port_of() { if [ "$1" = libellule ]; then echo "$LIB_PORT"; else echo "$REDIS_PORT"; fi; }

wait_ready() {
    local port=$1 i
    for i in $(seq 1 200); do
        if [ "$(redis-cli -p "$port" ping 2>/dev/null)" = PONG ]; then return 0; fi
        if ! kill -0 "$SERVER_PID" 2>/dev/null; then return 1; fi
        sleep 0.1
    done
    return 1
}

start_server() {
    local name=$1 round=$2 port data
    port=$(port_of "$name")
    if redis-cli -p "$port" ping >/dev/null 2>&1; then
        die "something already listens on port $port"
    fi
    data="$OUT/data-$name-$round"
    mkdir -p "$data"
    if [ "$name" = libellule ]; then
        # shellcheck disable=SC2086
        "${SERVER_PIN[@]}" "$BIN" --port "$port" --bind 127.0.0.1 --io_threads 1 \
            --dir "$data" --save "" $LIB_ARGS > "$OUT/$name-$round.log" 2>&1 &
    else
        "${SERVER_PIN[@]}" redis-server --port "$port" --bind 127.0.0.1 --save '' \
            --appendonly no --daemonize no --dir "$data" > "$OUT/$name-$round.log" 2>&1 &
    fi
    SERVER_PID=$!
    wait_ready "$port" || { cat "$OUT/$name-$round.log" >&2; die "$name did not start"; }
}

stop_server() {
    cleanup
    SERVER_PID=""
}

# Prefill: every key of the keyspace exists before the GET tests.
# redis-benchmark's -r keys are "key:%012d"; memtier's are "memtier-%d".
make_prefill() {
    local size=$1
    [ -s "$OUT/prefill-$size.resp" ] && return 0
    log "generating prefill protocol ($KEYSPACE keys of $size bytes)"
    awk -v n="$KEYSPACE" -v size="$size" 'BEGIN {
        v = ""; for (i = 0; i < size; i++) v = v "x";
        for (i = 0; i < n; i++) {
            k = sprintf("key:%012d", i);
            printf "*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n", length(k), k, size, v;
        }
    }' > "$OUT/prefill-$size.resp"
}

prefill() {
    local port=$1 log=$2
    if [ "$TOOL" = memtier ]; then
        "${CLIENT_PIN[@]}" memtier_benchmark -s 127.0.0.1 -p "$port" --protocol=redis \
            -t 1 -c 10 --pipeline=64 --ratio=1:0 --key-pattern=P:P \
            --key-minimum=1 --key-maximum="$KEYSPACE" --data-size="$3" \
            --requests=allkeys --hide-histogram > "$log" 2>&1
    else
        "${CLIENT_PIN[@]}" redis-cli -p "$port" --pipe < "$OUT/prefill-$3.resp" > "$log" 2>&1
        grep -q "errors: 0" "$log" || die "prefill failed, see $log"
    fi
}

# A field of a GET/SET scenario name: P (pipeline), d (value bytes), r (SET-GET ratio,
# default 1-1), x (expiry range in seconds, empty when none).
scen_field() {
    local part parts
    IFS=_ read -ra parts <<< "$1"
    for part in "${parts[@]}"; do
        case "$part" in "$2"*) echo "${part#"$2"}"; return 0 ;; esac
    done
    [ "$2" = r ] && echo 1-1
    return 0
}

# Dies unless a GET/SET scenario name is well formed.
check_scenario() {
    local scen=$1
    [[ "$scen" =~ ^P[0-9]+_d[0-9]+(_r[0-9]+-[0-9]+)?(_x[0-9]+-[0-9]+)?$ ]] \
        || die "bad scenario name $scen (want P<pipeline>_d<bytes>[_r<sets>-<gets>][_x<min>-<max>])"
    [ "$(scen_field "$scen" r)" != 0-0 ] || die "$scen: ratio 0-0 sends nothing"
}

# True when the tool can run this GET/SET scenario (redis-benchmark sets no expiries).
runnable() { [ "$TOOL" = memtier ] || [ -z "$(scen_field "$1" x)" ]; }

# One scenario against one server; appends rows to $RESULTS.
# CPU time the hypervisor gave to others ("steal", /proc/stat) during a run, in percent
# of the machine's time: rounds with a high figure measured the neighbours, not the
# servers (loadtest/steal.tsv beside results.tsv).
cpu_ticks() { awk '/^cpu / { print $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9, $9 }' /proc/stat; }
steal_pct() {
    awk -v a="$1" -v b="$2" 'BEGIN {
        split(a, x, " "); split(b, y, " "); t = y[1] - x[1];
        printf "%.1f", (t > 0 ? 100 * (y[2] - x[2]) / t : 0)
    }'
}

run_scenario() {
    local name=$1 round=$2 scen=$3 port pipeline size ratio expiry raw
    port=$(port_of "$name")
    pipeline=$(scen_field "$scen" P)
    size=$(scen_field "$scen" d)
    ratio=$(scen_field "$scen" r)
    expiry=$(scen_field "$scen" x)
    raw="$OUT/$name-$round-$scen"
    if [ "$TOOL" = memtier ]; then
        local extra=()
        if [ -n "$MT_REQUESTS" ]; then extra+=(--requests="$MT_REQUESTS")
        else extra+=(--test-time="$TEST_TIME"); fi
        [ -z "$expiry" ] || extra+=(--expiry-range="$expiry")
        "${CLIENT_PIN[@]}" memtier_benchmark -s 127.0.0.1 -p "$port" --protocol=redis \
            -t 1 -c "$CLIENTS" --pipeline="$pipeline" --ratio="${ratio/-/:}" --key-pattern=R:R \
            --key-minimum=1 --key-maximum="$KEYSPACE" --data-size="$size" \
            "${extra[@]}" --hide-histogram > "$raw.txt" 2>&1 \
            || { cat "$raw.txt" >&2; die "memtier failed"; }
        # Header: "Type Ops/sec Hits/sec Misses/sec Avg. Latency p50 Latency
        # p99 Latency ..." (columns located by name, they vary by version).
        awk -v srv="$name" -v rnd="$round" -v scen="$scen" '
            /Ops\/sec/ && !hdr {
                line = $0; gsub(/Avg\. Latency/, "Avg.Latency", line);
                gsub(/ Latency/, "_Latency", line);
                n = split(line, h, /[ \t]+/);
                for (i = 1; i <= n; i++) { if (h[i] == "Ops/sec") ops = i; if (h[i] == "p99_Latency") p99 = i; }
                hdr = 1; next
            }
            hdr && ($1 == "Sets" || $1 == "Gets" || $1 == "Totals") && ops && $ops + 0 > 0 {
                op = ($1 == "Sets") ? "SET" : ($1 == "Gets") ? "GET" : "TOTAL";
                printf "%s\t%s\t%s\t%s\t%s\t%s\n", srv, rnd, scen, op, $ops, (p99 ? $p99 : "NA");
            }' "$raw.txt" >> "$RESULTS"
    else
        local tests=set,get
        case "$ratio" in 0-*) tests=get ;; *-0) tests=set ;; esac
        "${CLIENT_PIN[@]}" redis-benchmark -h 127.0.0.1 -p "$port" -c "$CLIENTS" \
            -n "$REQUESTS" -r "$KEYSPACE" -d "$size" -P "$pipeline" -t "$tests" --csv \
            > "$raw.csv" 2> "$raw.err" || { cat "$raw.err" >&2; die "redis-benchmark failed"; }
        # "test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms",
        # "p95_latency_ms","p99_latency_ms","max_latency_ms"
        awk -F, -v srv="$name" -v rnd="$round" -v scen="$scen" '
            { gsub(/"/, "") }
            NR == 1 { for (i = 1; i <= NF; i++) { if ($i == "rps") r = i; if ($i == "p99_latency_ms") p = i }; next }
            r { printf "%s\t%s\t%s\t%s\t%s\t%s\n", srv, rnd, scen, $1, $r, (p ? $p : "NA") }
        ' "$raw.csv" >> "$RESULTS"
    fi
}

# A command scenario: redis-benchmark running one command line; the op is the
# scenario's name.
SUB_PIDS=()
run_command_scenario() {
    local name=$1 round=$2 scen=$3 port raw sha payload
    port=$(port_of "$name")
    raw="$OUT/$name-$round-$scen"
    local cmd=()
    case "$scen" in
        EVALSHA)
            sha=$(redis-cli -p "$port" SCRIPT LOAD "$RATE_LIMIT_LUA")
            cmd=(EVALSHA "$sha" 1 "rl:__rand_int__" 1 60)
            ;;
        PUBLISH)
            for _ in $(seq 1 "$SUBSCRIBERS"); do
                "${CLIENT_PIN[@]}" redis-cli -p "$port" SUBSCRIBE bench:channel > /dev/null 2>&1 &
                SUB_PIDS+=($!)
            done
            # Wait until every subscriber is registered.
            for _ in $(seq 1 100); do
                [ "$(redis-cli -p "$port" PUBSUB NUMSUB bench:channel | tail -1)" = "$SUBSCRIBERS" ] && break
                sleep 0.05
            done
            payload=$(head -c 100 /dev/zero | tr '\0' x)
            cmd=(PUBLISH bench:channel "$payload")
            ;;
        LIST|HASH|ZSET|SET)
            local write read
            case "$scen" in
                LIST) write="LPUSH list:__rand_int__ element"; read="LPOP list:__rand_int__" ;;
                HASH) write="HSET hash:__rand_int__ field:__rand_int__ value"; read="HGET hash:__rand_int__ field:__rand_int__" ;;
                ZSET) write="ZADD zset:__rand_int__ __rand_int__ member:__rand_int__"; read="ZRANGE zset:__rand_int__ 0 9" ;;
                SET) write="SADD set:__rand_int__ member:__rand_int__"; read="SISMEMBER set:__rand_int__ member:__rand_int__" ;;
            esac
            # Collections over 1,000 keys (so they grow), write then read.
            for op in write read; do
                local line
                if [ "$op" = write ]; then line=$write; else line=$read; fi
                # shellcheck disable=SC2086
                "${CLIENT_PIN[@]}" redis-benchmark -h 127.0.0.1 -p "$port" -c "$CLIENTS" \
                    -n "$REQUESTS" -r 1000 --csv $line > "$raw-$op.csv" 2> "$raw-$op.err" \
                    || { cat "$raw-$op.err" >&2; die "redis-benchmark failed"; }
                awk -F, -v srv="$name" -v rnd="$round" -v scen="$scen" -v op="${line%% *}" '
                    { gsub(/"/, "") }
                    NR == 1 { for (i = 1; i <= NF; i++) { if ($i == "rps") r = i; if ($i == "p99_latency_ms") p = i }; next }
                    r { printf "%s\t%s\t%s\t%s\t%s\t%s\n", srv, rnd, scen, op, $r, (p ? $p : "NA") }
                ' "$raw-$op.csv" >> "$RESULTS"
            done
            return 0
            ;;
        *) die "unknown scenario $scen" ;;
    esac
    "${CLIENT_PIN[@]}" redis-benchmark -h 127.0.0.1 -p "$port" -c "$CLIENTS" \
        -n "$REQUESTS" -r "$KEYSPACE" --csv "${cmd[@]}" > "$raw.csv" 2> "$raw.err" \
        || { cat "$raw.err" >&2; die "redis-benchmark failed"; }
    if [ "${#SUB_PIDS[@]}" -gt 0 ]; then
        kill "${SUB_PIDS[@]}" 2>/dev/null || true
        wait "${SUB_PIDS[@]}" 2>/dev/null || true
        SUB_PIDS=()
    fi
    awk -F, -v srv="$name" -v rnd="$round" -v scen="$scen" '
        { gsub(/"/, "") }
        NR == 1 { for (i = 1; i <= NF; i++) { if ($i == "rps") r = i; if ($i == "p99_latency_ms") p = i }; next }
        r { printf "%s\t%s\t%s\t%s\t%s\t%s\n", srv, rnd, scen, scen, $r, (p ? $p : "NA") }
    ' "$raw.csv" >> "$RESULTS"
}

is_command_scenario() { case "$1" in P*_d*) return 1 ;; *) return 0 ;; esac; }

for scen in $SCENARIOS; do
    if is_command_scenario "$scen"; then continue; fi
    check_scenario "$scen"
    runnable "$scen" || log "warning: $scen needs memtier_benchmark (expiries): skipped"
done

for round in $(seq 1 "$ROUNDS"); do
    # Alternate which server goes first, so slow drift (thermal, noisy
    # neighbours) hits both alike.
    if [ $((round % 2)) = 1 ]; then order="libellule redis"; else order="redis libellule"; fi
    for name in $order; do
        for scen in $SCENARIOS; do
            log "round $round/$ROUNDS: $name $scen"
            if is_command_scenario "$scen"; then
                start_server "$name" "$round-$scen"
                run_command_scenario "$name" "$round" "$scen"
                stop_server
                continue
            fi
            runnable "$scen" || continue
            size=$(scen_field "$scen" d)
            if [ "$TOOL" = redis-benchmark ]; then make_prefill "$size"; fi
            start_server "$name" "$round-$scen"
            prefill "$(port_of "$name")" "$OUT/$name-$round-$scen.prefill.log" "$size"
            before=$(cpu_ticks)
            run_scenario "$name" "$round" "$scen"
            printf '%s\t%s\t%s\t%s\n' "$name" "$round" "$scen" \
                "$(steal_pct "$before" "$(cpu_ticks)")" >> "$OUT/steal.tsv"
            stop_server
        done
    done
done
rm -f "$OUT"/prefill-*.resp
rm -rf "$OUT"/data-*

# Medians per (scenario, op, server), then the side-by-side table.
median() { sort -g | awk '{ a[NR] = $1 } END { if (NR == 0) print "NA"; else if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
col() { awk -F'\t' -v s="$1" -v sc="$2" -v op="$3" -v c="$4" 'NR > 1 && $1 == s && $3 == sc && $4 == op && $c != "NA" { print $c }' "$RESULTS"; }

SUMMARY="$OUT/summary.txt"
{
    printf 'Medians of %s rounds (%s, %s clients). Ratios are libellule / redis:\n' "$ROUNDS" "$TOOL" "$CLIENTS"
    printf 'throughput ratio > 1 means Libellule is faster; p99 ratio < 1 means Libellule has lower tail latency.\n\n'
    printf '%-22s %-6s %14s %14s %8s %12s %12s %8s\n' scenario op "lib rps" "redis rps" ratio "lib p99 ms" "redis p99" "p99 ratio"
    for scen in $SCENARIOS; do
        for op in $(awk -F'\t' -v sc="$scen" 'NR > 1 && $3 == sc { print $4 }' "$RESULTS" | sort -u); do
            lr=$(col libellule "$scen" "$op" 5 | median)
            rr=$(col redis "$scen" "$op" 5 | median)
            lp=$(col libellule "$scen" "$op" 6 | median)
            rp=$(col redis "$scen" "$op" 6 | median)
            awk -v sc="$scen" -v op="$op" -v lr="$lr" -v rr="$rr" -v lp="$lp" -v rp="$rp" 'BEGIN {
                ratio = (rr + 0 > 0 && lr != "NA") ? sprintf("%.2f", lr / rr) : "NA";
                pr = (rp + 0 > 0 && lp != "NA") ? sprintf("%.2f", lp / rp) : "NA";
                printf "%-22s %-6s %14s %14s %8s %12s %12s %8s\n", sc, op, lr, rr, ratio, lp, rp, pr
            }'
        done
    done
    if [ -s "$OUT/steal.tsv" ]; then
        awk -F'\t' '$4 + 0 >= 5 { n++; l = l sprintf("  %s round %s %s: %s%%\n", $1, $2, $3, $4) }
            END { if (n) printf "\nRounds with 5%% or more CPU steal (the host ran others; read those with care):\n%s", l }' \
            "$OUT/steal.tsv"
    fi
} | tee "$SUMMARY"
log "raw outputs and summary in ${OUT#"$ROOT"/}"
