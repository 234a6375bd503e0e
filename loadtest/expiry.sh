#!/usr/bin/env bash
# Expiry at scale, Libellule and redis-server side by side: loads N keys (default 1M)
# that all expire at the same instant (SET ... PXAT), then while they expire runs a
# concurrent GET load (redis-benchmark, 50 clients) and reports its p99 against a
# baseline taken before the TTL passed, how
# long the active expire cycle took to reclaim every key (DBSIZE reaching 0, polled
# every 10 ms), in ms and in `--hz` periods, and used_memory / RSS before the load,
# after it, and after expiry. The last line of each server is a summary: periods to
# reclaim and the GET p99 ratio (while expiring / before).
#
# The GET load while expiring is sized to last about DURING_MS at the baseline's rate
# (so that its p99 covers the reclaim window rather than mostly the time after it).
#
# Knobs: N [1000000], TTL_MS [30000] (from the start of the load to the instant every
# key expires), DURING_MS [500], HZ [10], LIB_PORT [17391], REDIS_PORT [17392],
# LIBELLULE_BIN, SERVER_CPU [0], CLIENT_CPU [1], SERVERS ["libellule redis"].
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)
N=${N:-1000000}
TTL_MS=${TTL_MS:-30000}
DURING_MS=${DURING_MS:-500}
HZ=${HZ:-10}
LIB_PORT=${LIB_PORT:-17391}
REDIS_PORT=${REDIS_PORT:-17392}
BIN="${LIBELLULE_BIN:-$ROOT/target/release/libellule}"
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
SERVERS=${SERVERS:-libellule redis}
OUT=$(mktemp -d)
PID=""
trap 'rm -rf "$OUT"; [ -n "$PID" ] && kill "$PID" 2>/dev/null || true' EXIT

field() { redis-cli -p "$1" info "$2" | tr -d '\r' | awk -F: -v f="$3" '$1 == f { print $2 }'; }
rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }
now_ms() { date +%s%3N; }

# SET key:<i> v PXAT <at> for every key, as RESP: every key expires at the same instant.
gen() {
    awk -v n="$N" -v at="$1" 'BEGIN {
        for (i = 0; i < n; i++) {
            k = sprintf("key:%012d", i)
            printf "*5\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$16\r\nvvvvvvvvvvvvvvvv\r\n$4\r\nPXAT\r\n$%d\r\n%s\r\n",
                length(k), k, length(at ""), at
        }
    }' > "$OUT/load.resp"
}

p99() {
    # p99 (ms) and rps of a GET load over random keys of the loaded range.
    taskset -c "$CLIENT_CPU" redis-benchmark -p "$1" -t get -c 50 -n "$2" -r "$N" --csv 2>/dev/null |
        awk -F'","' '/^"GET"/ { gsub(/"/, "", $7); gsub(/"/, "", $2); print $7 " " $2 }'
}

run() {
    local name=$1 port=$2
    shift 2
    taskset -c "$SERVER_CPU" "$@" > "$OUT/$name.log" 2>&1 &
    PID=$!
    for _ in $(seq 100); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.05; done
    local used0 rss0 used1 rss1 t0 base during t1 used2 rss2 left
    used0=$(field "$port" memory used_memory); rss0=$(rss_kb "$PID")
    local texp
    texp=$(( $(now_ms) + TTL_MS ))
    gen "$texp"
    redis-cli -p "$port" --pipe < "$OUT/load.resp" > /dev/null
    used1=$(field "$port" memory used_memory); rss1=$(rss_kb "$PID")
    base=$(p99 "$port" 50000)
    # Wait for the keys' expiry time, then load the server while they are reclaimed.
    local wait=$(( texp - $(now_ms) ))
    if [ "$wait" -gt 0 ]; then
        sleep "$(awk -v w="$wait" 'BEGIN { print w / 1000 }')"
    else
        echo "warning: load and baseline took longer than TTL_MS" >&2
    fi
    # The GET load runs while the keys expire; meanwhile, the time until every key is
    # reclaimed (DBSIZE polled every 10 ms).
    local n_during
    n_during=$(awk -v b="$base" -v ms="$DURING_MS" 'BEGIN { split(b, x, " "); n = int(x[2] * ms / 1000); print (n < 5000 ? 5000 : n) }')
    p99 "$port" "$n_during" > "$OUT/during" &
    local bench=$!
    while true; do
        left=$(redis-cli -p "$port" dbsize)
        [ "$left" -eq 0 ] && break
        [ $(( $(now_ms) - texp )) -gt 60000 ] && break
        sleep 0.01
    done
    t1=$(( $(now_ms) - texp ))
    wait "$bench"
    during=$(cat "$OUT/during")
    sleep 1
    used2=$(field "$port" memory used_memory); rss2=$(rss_kb "$PID")
    printf '%-10s GET p99 before %s ms (%s rps), while expiring %s ms (%s rps); all %s keys gone %s ms after the TTL (left %s); used_memory %s -> %s -> %s; RSS %s -> %s -> %s KiB\n' \
        "$name" ${base} ${during} "$N" "$t1" "$left" "$used0" "$used1" "$used2" "$rss0" "$rss1" "$rss2"
    awk -v b="$base" -v d="$during" -v t="$t1" -v hz="$HZ" -v n="$name" 'BEGIN {
        split(b, x, " "); split(d, y, " ");
        printf "%-10s reclaimed in %.1f hz periods; GET p99 ratio while expiring / before: %.2f\n",
            n, t * hz / 1000, y[1] / x[1] }'
    redis-cli -p "$port" shutdown nosave >/dev/null 2>&1 || kill "$PID"
    wait "$PID" 2>/dev/null || true
    PID=""
}

echo "# $N keys, TTL ${TTL_MS} ms, hz $HZ; servers on CPU $SERVER_CPU, load on CPU $CLIENT_CPU"
if [[ " $SERVERS " == *" libellule "* ]]; then
    run libellule "$LIB_PORT" "$BIN" --port "$LIB_PORT" --io_threads 1 --hz "$HZ" --save "" --dir "$OUT"
fi
if [[ " $SERVERS " == *" redis "* ]]; then
    run redis "$REDIS_PORT" redis-server --port "$REDIS_PORT" --hz "$HZ" --save "" --appendonly no --dir "$OUT"
fi
