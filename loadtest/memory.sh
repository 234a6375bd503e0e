#!/usr/bin/env bash
# Memory per element: loads the same data into a fresh Libellule (--io_threads 1) and a
# fresh redis-server, one scenario at a time, and compares the growth of each process's
# resident memory (VmRSS) per element, read after MEMORY PURGE (both use jemalloc) and
# two seconds of rest.
#
# Scenarios (SCENARIOS, default all):
#   list     one list of N elements ("element:<i>", RPUSH)
#   set      one set of N members ("member:<i>", SADD)
#   intset   one set of N integers (stays an intset in neither server past 512: a
#            hashtable of integers)
#   zset     one sorted set of N members with distinct scores (ZADD)
#   hash     one hash of N fields ("field:<i>" -> "value:<i>", HSET)
#   strings  N keys of 100-byte string values (SET)
#   hashes   N small hashes of 3 fields each (HSET, listpack-encoded in both)
#
# Knobs: N [1000000], SCENARIOS, LIB_PORT [16381], REDIS_PORT [16382], LIBELLULE_BIN,
# WARMUP [0]: 1 first sends each fresh server N elements of RPUSHX to a missing key (the
# same traffic as the list scenario, storing nothing) and takes the "before" reading
# after it, so that one-off costs of the first heavy traffic (buffers, allocator arenas:
# about 7 MB in Libellule, nothing in redis-server) are not counted per element.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)
N=${N:-1000000}
SCENARIOS=${SCENARIOS:-"list set intset zset hash strings hashes"}
LIB_PORT=${LIB_PORT:-16381}
REDIS_PORT=${REDIS_PORT:-16382}
BIN="${LIBELLULE_BIN:-$ROOT/target/release/libellule}"
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"; [ -n "${PID:-}" ] && kill "$PID" 2>/dev/null || true' EXIT

if [ -z "${LIBELLULE_BIN:-}" ]; then
    cargo build --release >&2
fi

rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }

# Protocol for one scenario, in commands of up to 1000 elements.
gen() {
    awk -v n="$N" -v scen="$1" '
    function bulk(s) { return sprintf("$%d\r\n%s\r\n", length(s), s) }
    BEGIN {
        batch = 1000
        if (scen == "warmup") {
            for (start = 0; start < n; start += batch) {
                end = start + batch; if (end > n) end = n
                printf "*%d\r\n$6\r\nRPUSHX\r\n%s", end - start + 2, bulk("nosuchlist")
                for (i = start; i < end; i++) printf "%s", bulk("element:" i)
            }
            exit
        }
        if (scen == "strings") {
            v = ""; for (i = 0; i < 100; i++) v = v "x"
            for (i = 0; i < n; i++) printf "*3\r\n$3\r\nSET\r\n%s%s", bulk("key:" i), bulk(v)
            exit
        }
        if (scen == "hashes") {
            for (i = 0; i < n; i++)
                printf "*8\r\n$4\r\nHSET\r\n%s%s%s%s%s%s%s", bulk("h:" i), bulk("name"), bulk("user" i),
                    bulk("email"), bulk("user" i "@example.com"), bulk("visits"), bulk(i % 1000)
            exit
        }
        for (start = 0; start < n; start += batch) {
            end = start + batch; if (end > n) end = n
            cnt = end - start
            if (scen == "list") {
                printf "*%d\r\n$5\r\nRPUSH\r\n%s", cnt + 2, bulk("biglist")
                for (i = start; i < end; i++) printf "%s", bulk("element:" i)
            } else if (scen == "set") {
                printf "*%d\r\n$4\r\nSADD\r\n%s", cnt + 2, bulk("bigset")
                for (i = start; i < end; i++) printf "%s", bulk("member:" i)
            } else if (scen == "intset") {
                printf "*%d\r\n$4\r\nSADD\r\n%s", cnt + 2, bulk("bigints")
                for (i = start; i < end; i++) printf "%s", bulk(i * 7)
            } else if (scen == "zset") {
                printf "*%d\r\n$4\r\nZADD\r\n%s", 2 * cnt + 2, bulk("bigzset")
                for (i = start; i < end; i++) printf "%s%s", bulk(i * 1.5), bulk("member:" i)
            } else if (scen == "hash") {
                printf "*%d\r\n$4\r\nHSET\r\n%s", 2 * cnt + 2, bulk("bighash")
                for (i = start; i < end; i++) printf "%s%s", bulk("field:" i), bulk("value:" i)
            }
        }
    }'
}

measure() {
    local name=$1 scen=$2 port before after
    if [ "$name" = libellule ]; then
        port=$LIB_PORT
        "$BIN" --port "$port" --bind 127.0.0.1 --io_threads 1 --save "" --dir "$OUT" > "$OUT/$name.log" 2>&1 &
    else
        port=$REDIS_PORT
        redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no --dir "$OUT" > "$OUT/$name.log" 2>&1 &
    fi
    PID=$!
    for _ in $(seq 1 100); do redis-cli -p "$port" ping > /dev/null 2>&1 && break; sleep 0.1; done
    sleep 0.5
    if [ "${WARMUP:-0}" = 1 ]; then
        redis-cli -p "$port" --pipe < "$OUT/warmup.resp" > /dev/null 2>&1
        sleep 1
    fi
    before=$(rss_kb "$PID")
    redis-cli -p "$port" --pipe < "$OUT/$scen.resp" > "$OUT/pipe.log" 2>&1
    grep -q "errors: 0" "$OUT/pipe.log" || { cat "$OUT/pipe.log" >&2; exit 1; }
    # Both servers use jemalloc: give freed pages (old hash tables left by growth) back
    # the same way in both before reading RSS, so that the figure is the data's.
    redis-cli -p "$port" memory purge > /dev/null
    sleep 2
    after=$(rss_kb "$PID")
    kill "$PID"; wait "$PID" 2>/dev/null || true; PID=""
    echo $(( (after - before) * 1024 ))
}

[ "${WARMUP:-0}" = 1 ] && gen warmup > "$OUT/warmup.resp"
printf '%-8s %10s %14s %14s %10s %10s %7s\n' scenario elements "lib bytes" "redis bytes" "lib B/el" "redis B/el" ratio
for scen in $SCENARIOS; do
    gen "$scen" > "$OUT/$scen.resp"
    lib=$(measure libellule "$scen")
    red=$(measure redis "$scen")
    awk -v s="$scen" -v n="$N" -v l="$lib" -v r="$red" 'BEGIN {
        printf "%-8s %10d %14d %14d %10.1f %10.1f %7.2f\n", s, n, l, r, l / n, r / n, (r > 0 ? l / r : 0)
    }'
    rm -f "$OUT/$scen.resp"
done
