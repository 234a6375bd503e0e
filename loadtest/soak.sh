#!/usr/bin/env bash
# Soak test (not part of `cargo test`): starts Libellule with a raised descriptor limit,
# runs loadtest/soak.py against it (10,000 held connections, a mixed pipelined load from
# several client processes, connection churn), prints the figures as JSON and exits
# non-zero when a check fails. See docs/reliability.md.
#
# Environment knobs (defaults in brackets):
#   DURATION [120]       seconds of load
#   HOLD [10000]         connections held open for the whole run
#   WORKERS [4]          load processes (each CONNS connections, PIPELINE deep)
#   CONNS [8]  PIPELINE [32]
#   PORT [16379]
#   IO_THREADS [0]       Libellule shards (0 = one per CPU)
#   SERVER_CPU []        pin the server with taskset (e.g. 0); CLIENT_CPU [] likewise
#   LIBELLULE_BIN []     use this binary instead of building target/release
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-120}
HOLD=${HOLD:-10000}
WORKERS=${WORKERS:-4}
CONNS=${CONNS:-8}
PIPELINE=${PIPELINE:-32}
PORT=${PORT:-16379}
IO_THREADS=${IO_THREADS:-0}

BIN=${LIBELLULE_BIN:-}
if [ -z "$BIN" ]; then
    cargo build --release --quiet
    BIN=target/release/libellule
fi

# Server and clients each need a descriptor per connection.
NEED=$((HOLD + 2000))
HARD=$(ulimit -Hn)
if [ "$HARD" != "unlimited" ] && [ "$HARD" -lt "$NEED" ]; then
    echo "soak: the hard descriptor limit ($HARD) is below $NEED; raise it (ulimit -Hn) or lower HOLD" >&2
    exit 2
fi
ulimit -n "$NEED"

pin() { if [ -n "${1:-}" ]; then echo "taskset -c $1"; fi; }

DIR=$(mktemp -d)
LOG="$DIR/server.log"
$(pin "${SERVER_CPU:-}") "$BIN" --port "$PORT" --bind 127.0.0.1 --save "" --dir "$DIR" \
    --io_threads "$IO_THREADS" --maxclients $((HOLD + 1000)) >"$LOG" 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null; wait $PID 2>/dev/null; rm -rf "$DIR"' EXIT
for _ in $(seq 100); do
    if redis-cli -p "$PORT" ping >/dev/null 2>&1; then break; fi
    sleep 0.1
done

set +e
$(pin "${CLIENT_CPU:-}") python3 loadtest/soak.py --port "$PORT" --pid "$PID" --duration "$DURATION" \
    --hold "$HOLD" --workers "$WORKERS" --conns "$CONNS" --pipeline "$PIPELINE"
RC=$?
set -e
if ! kill -0 "$PID" 2>/dev/null; then
    echo "soak: the server died; its log:" >&2
    tail -50 "$LOG" >&2
    exit 1
fi
grep -E "WARN|ERROR" "$LOG" | sort | uniq -c | sort -rn | head -20 >&2 || true
exit $RC
