#!/usr/bin/env bash
# Cost of per-command metrics on the hot path: the same Libellule process measured with
# `latency-tracking yes` (one clock read per command boundary, see docs/latency.md, and
# a histogram increment per command; the other counters are always on and shard-local)
# and `no`, alternating by CONFIG SET
# between rounds, so both settings see the same process, keys and machine state.
#
# Server pinned to SERVER_CPU, redis-benchmark to CLIENT_CPU. Prints the median
# requests/s and p99 of each setting and the on/off ratio per scenario, and the server's
# own CPU time per request (summed over its threads from /proc/<pid>/task/*/schedstat),
# which is what the clock reads cost and which other processes on a busy machine
# disturb much less than requests/s: "cpu ratio" is on/off of the median
# nanoseconds per request (above 1: tracking costs that much more CPU per request).
#
# Knobs: ROUNDS [3], REQUESTS [300000], CLIENTS [50], KEYSPACE [100000],
#        SERVER_CPU [1], CLIENT_CPU [0], PORT [16390], LIBELLULE_BIN.
set -euo pipefail

cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-3}
REQUESTS=${REQUESTS:-300000}
CLIENTS=${CLIENTS:-50}
KEYSPACE=${KEYSPACE:-100000}
SERVER_CPU=${SERVER_CPU:-1}
CLIENT_CPU=${CLIENT_CPU:-0}
PORT=${PORT:-16390}
BIN="${LIBELLULE_BIN:-$(pwd)/target/release/libellule}"
[ -n "${LIBELLULE_BIN:-}" ] || cargo build --release >&2
DIR=$(mktemp -d)
trap 'kill "$PID" 2>/dev/null || true; rm -rf "$DIR"' EXIT

# Never measure (or reconfigure) a server someone else left on this port.
if redis-cli -p "$PORT" ping > /dev/null 2>&1; then
    echo "metrics_overhead: something already listens on port $PORT (set PORT)" >&2
    exit 1
fi
taskset -c "$SERVER_CPU" "$BIN" --port "$PORT" --bind 127.0.0.1 --io_threads 1 \
    --dir "$DIR" --save "" > "$DIR/server.log" 2>&1 &
PID=$!
for _ in $(seq 1 100); do
    [ "$(redis-cli -p "$PORT" ping 2>/dev/null)" = PONG ] && break
    sleep 0.1
done
kill -0 "$PID" 2>/dev/null || { cat "$DIR/server.log" >&2; exit 1; }
taskset -c "$CLIENT_CPU" redis-benchmark -p "$PORT" -t set -n "$KEYSPACE" -r "$KEYSPACE" \
    -d 3 -c "$CLIENTS" -q > /dev/null

# Nanoseconds the server's threads have run on a CPU so far.
cpu_ns() { cat /proc/"$PID"/task/*/schedstat 2>/dev/null | awk '{ s += $1 } END { printf "%.0f", s }'; }

# One redis-benchmark run: "<requests/s> <p99 ms> <server cpu ns per request>".
run() {
    local test=$1 pipeline=$2 before out
    before=$(cpu_ns)
    out=$(taskset -c "$CLIENT_CPU" redis-benchmark -p "$PORT" -t "$test" -n "$REQUESTS" \
        -r "$KEYSPACE" -d 3 -c "$CLIENTS" -P "$pipeline" --csv 2>/dev/null |
        awk -F'","' 'NR == 2 { gsub(/"/, "", $2); gsub(/"/, "", $7); print $2, $7 }')
    echo "$out $(( ($(cpu_ns) - before) / REQUESTS ))"
}

median() { sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

declare -A RPS P99 CPU
for round in $(seq 1 "$ROUNDS"); do
    for setting in yes no; do
        redis-cli -p "$PORT" config set latency-tracking "$setting" > /dev/null
        for scen in "get 1" "set 1" "get 16" "set 16"; do
            read -r test pipeline <<< "$scen"
            read -r rps p99 cpu <<< "$(run "$test" "$pipeline")"
            key="$test P$pipeline $setting"
            RPS[$key]="${RPS[$key]:-} $rps"
            P99[$key]="${P99[$key]:-} $p99"
            CPU[$key]="${CPU[$key]:-} $cpu"
            echo "round $round latency-tracking=$setting $test P$pipeline: $rps req/s, p99 $p99 ms, server cpu $cpu ns/req" >&2
        done
    done
done

printf '%-8s %-4s %12s %12s %7s %9s %9s %10s %10s %9s\n' op pipe "on req/s" "off req/s" ratio \
    "on p99" "off p99" "on ns/req" "off ns/req" "cpu ratio"
for scen in "get 1" "set 1" "get 16" "set 16"; do
    read -r test pipeline <<< "$scen"
    on=$(tr ' ' '\n' <<< "${RPS[$test P$pipeline yes]}" | grep . | median)
    off=$(tr ' ' '\n' <<< "${RPS[$test P$pipeline no]}" | grep . | median)
    p_on=$(tr ' ' '\n' <<< "${P99[$test P$pipeline yes]}" | grep . | median)
    p_off=$(tr ' ' '\n' <<< "${P99[$test P$pipeline no]}" | grep . | median)
    c_on=$(tr ' ' '\n' <<< "${CPU[$test P$pipeline yes]}" | grep . | median)
    c_off=$(tr ' ' '\n' <<< "${CPU[$test P$pipeline no]}" | grep . | median)
    ratio=$(awk -v a="$on" -v b="$off" 'BEGIN { printf "%.3f", a / b }')
    c_ratio=$(awk -v a="$c_on" -v b="$c_off" 'BEGIN { printf "%.3f", a / b }')
    printf '%-8s %-4s %12s %12s %7s %9s %9s %10s %10s %9s\n' "$test" "P$pipeline" "$on" "$off" \
        "$ratio" "$p_on" "$p_off" "$c_on" "$c_off" "$c_ratio"
done
