#!/usr/bin/env bash
# Snapshot benchmark: Libellule vs redis-server, same machine, same run.
#
#   loadtest/snapshot.sh            # N=1000000 keys
#   N=10000000 loadtest/snapshot.sh # 10M keys (needs several GB of RAM)
#
# For each server: fill N keys (key:<i>, 100-byte values, through redis-cli --pipe),
# then measure
#   - SAVE time (wall clock of the SAVE command),
#   - start-up load time (process start until INFO shows loading:0),
#   - peak memory during a BGSAVE under a steady SET load: the sum of the proportional
#     set size (Pss) of the server and its children (redis-server's fork child shares
#     pages until they are copied), sampled every 20 ms, against the same figure just
#     before the BGSAVE,
#   - p99 latency of a redis-benchmark GET/SET load without and during BGSAVEs.
# Servers are pinned to SERVER_CPU (default 0), the load generator to CLIENT_CPU
# (default 1). Libellule runs with --io_threads 1, so this is one core against one.
# Absolute figures depend on the machine; compare the ratios.
set -euo pipefail

N=${N:-1000000}
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
LIBELLULE=${LIBELLULE:-$(dirname "$0")/../target/release/libellule}
BENCH_N=${BENCH_N:-200000}
WORK=$(mktemp -d /tmp/snapbench.XXXXXX)
PORT_L=${PORT_L:-7611}
PORT_R=${PORT_R:-7612}
PIDS=()
cleanup() {
    for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT

now() { date +%s.%N; }
elapsed() { echo "$(now) - $1" | bc -l; }

start_server() { # name dir port -> pid
    local name=$1 dir=$2 port=$3
    if [ "$name" = libellule ]; then
        taskset -c "$SERVER_CPU" "$LIBELLULE" --port "$port" --io_threads 1 --dir "$dir" \
            --save "" >"$dir/log" 2>&1 &
    else
        taskset -c "$SERVER_CPU" redis-server --port "$port" --dir "$dir" --save "" \
            --appendonly no >"$dir/log" 2>&1 &
    fi
    echo $!
}

wait_loaded() { # port
    until [ "$(redis-cli -p "$1" info persistence 2>/dev/null | tr -d '\r' | grep '^loading:' | cut -d: -f2)" = "0" ]; do
        sleep 0.01
    done
}

pss_tree() { # pid -> kB of Pss of pid and its children
    local total=0 p
    for p in $1 $(pgrep -P "$1" || true); do
        local v
        v=$(awk '/^Pss:/ {print $2}' "/proc/$p/smaps_rollup" 2>/dev/null || echo 0)
        total=$((total + ${v:-0}))
    done
    echo $total
}

fill() { # port
    python3 - "$N" <<'EOF' | taskset -c "$CLIENT_CPU" redis-cli -p "$1" --pipe >/dev/null
import sys
n = int(sys.argv[1])
val = b"v" * 100
out = sys.stdout.buffer
buf = []
for i in range(n):
    k = b"key:%d" % i
    buf.append(b"*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$100\r\n%s\r\n" % (len(k), k, val))
    if len(buf) == 10000:
        out.write(b"".join(buf)); buf = []
out.write(b"".join(buf))
EOF
}

p99() { # csv line of redis-benchmark -> p99 ms
    tr -d '"' | awk -F, 'NR>1 {print $7}' | sort -n | tail -1
}

run_one() { # name port
    local name=$1 port=$2 dir="$WORK/$1"
    mkdir -p "$dir"
    local pid
    pid=$(start_server "$name" "$dir" "$port")
    PIDS+=("$pid")
    until redis-cli -p "$port" ping >/dev/null 2>&1; do sleep 0.05; done
    fill "$port"
    local keys
    keys=$(redis-cli -p "$port" dbsize)

    local t
    t=$(now)
    redis-cli -p "$port" save >/dev/null
    local save_s
    save_s=$(elapsed "$t")

    # p99 without a snapshot.
    local base_p99
    base_p99=$(taskset -c "$CLIENT_CPU" redis-benchmark -p "$port" -t set,get -n "$BENCH_N" \
        -r "$N" -d 100 -c 50 --csv 2>/dev/null | p99)

    # Peak memory during a BGSAVE under a SET load.
    taskset -c "$CLIENT_CPU" redis-benchmark -p "$port" -t set -n $((BENCH_N * 5)) -r "$N" \
        -d 100 -c 20 -q >/dev/null 2>&1 &
    local loadpid=$!
    sleep 0.5
    local before peak=0 v
    before=$(pss_tree "$pid")
    redis-cli -p "$port" bgsave >/dev/null
    sleep 0.05
    while [ "$(redis-cli -p "$port" info persistence | tr -d '\r' | grep '^rdb_bgsave_in_progress:' | cut -d: -f2)" = "1" ]; do
        v=$(pss_tree "$pid")
        [ "$v" -gt "$peak" ] && peak=$v
        sleep 0.02
    done
    v=$(pss_tree "$pid"); [ "$v" -gt "$peak" ] && peak=$v
    kill "$loadpid" 2>/dev/null || true
    wait "$loadpid" 2>/dev/null || true

    # p99 while BGSAVEs run back to back.
    (while true; do redis-cli -p "$port" bgsave >/dev/null 2>&1; sleep 0.1; done) &
    local saver=$!
    local save_p99
    save_p99=$(taskset -c "$CLIENT_CPU" redis-benchmark -p "$port" -t set,get -n "$BENCH_N" \
        -r "$N" -d 100 -c 50 --csv 2>/dev/null | p99)
    kill "$saver" 2>/dev/null || true
    wait "$saver" 2>/dev/null || true
    until [ "$(redis-cli -p "$port" info persistence | tr -d '\r' | grep '^rdb_bgsave_in_progress:' | cut -d: -f2)" = "0" ]; do sleep 0.05; done
    redis-cli -p "$port" save >/dev/null

    # Start-up load (after the old process is gone: it is not this shell's child).
    kill "$pid"
    while kill -0 "$pid" 2>/dev/null; do sleep 0.02; done
    t=$(now)
    pid=$(start_server "$name" "$dir" "$port")
    PIDS+=("$pid")
    until redis-cli -p "$port" info persistence >/dev/null 2>&1; do sleep 0.005; done
    wait_loaded "$port"
    local load_s
    load_s=$(elapsed "$t")
    local loaded
    loaded=$(redis-cli -p "$port" dbsize)
    local size
    size=$(stat -c %s "$dir/dump.rdb")
    kill "$pid"
    while kill -0 "$pid" 2>/dev/null; do sleep 0.02; done

    local growth
    growth=$(echo "($peak - $before) * 100 / $before" | bc -l)
    printf '%s keys=%s loaded=%s file=%s save_s=%.3f load_s=%.3f pss_before_kb=%s pss_peak_kb=%s growth_pct=%.1f p99_ms=%s p99_bgsave_ms=%s\n' \
        "$name" "$keys" "$loaded" "$size" "$save_s" "$load_s" "$before" "$peak" "$growth" "$base_p99" "$save_p99"
}

echo "N=$N (busy shared machine: compare ratios)"
L=$(run_one libellule "$PORT_L")
echo "$L"
R=$(run_one redis "$PORT_R")
echo "$R"
field() { echo "$1" | tr ' ' '\n' | grep "^$2=" | cut -d= -f2; }
echo "ratios libellule/redis:"
for f in save_s load_s growth_pct p99_ms p99_bgsave_ms; do
    printf '  %s: %s / %s\n' "$f" "$(field "$L" $f)" "$(field "$R" $f)"
done
printf '  libellule p99 during BGSAVE / without: %s\n' \
    "$(echo "$(field "$L" p99_bgsave_ms) / $(field "$L" p99_ms)" | bc -l | cut -c1-5)"
printf '  redis p99 during BGSAVE / without: %s\n' \
    "$(echo "$(field "$R" p99_bgsave_ms) / $(field "$R" p99_ms)" | bc -l | cut -c1-5)"
