#!/usr/bin/env bash
# Runs fuzz targets one after the other, each until its fuzzing process has used a
# budget of CPU seconds (not wall-clock seconds: on a shared machine a niced fuzzer
# gets a fraction of a core, and libFuzzer's -max_total_time counts wall time).
#
#   cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz build -O     # once
#   ./run_budget.sh snapshot:600 resp:300                # target:cpu-seconds ...
#
# New inputs go to $SCRATCH/<target> (default /tmp/fz), the committed seeds in
# corpus/<target> are read only; crashes go to artifacts/<target>/. One line per target
# is appended to $SCRATCH/summary.txt: wall seconds, CPU seconds, executions (libFuzzer's
# stat::number_of_executed_units), scratch corpus size, artifacts.
set -u
cd "$(dirname "$0")"
SCRATCH=${SCRATCH:-/tmp/fz}
BIN=target/x86_64-unknown-linux-gnu/release
TCK=$(getconf CLK_TCK)
mkdir -p "$SCRATCH"
for spec in "$@"; do
    t=${spec%%:*}
    budget=${spec#*:}
    mkdir -p "$SCRATCH/$t" "artifacts/$t"
    log="$SCRATCH/$t.log"
    start=$(date +%s)
    nice -n 10 "$BIN/$t" -artifact_prefix="artifacts/$t/" -rss_limit_mb=2048 \
        -max_len=4096 -print_final_stats=1 "$SCRATCH/$t" "corpus/$t" >"$log" 2>&1 &
    pid=$!
    cpu=0
    while kill -0 "$pid" 2>/dev/null; do
        ticks=$(awk '{print $14 + $15}' "/proc/$pid/stat" 2>/dev/null || echo 0)
        cpu=$((ticks / TCK))
        if [ "$cpu" -ge "$budget" ]; then
            kill -INT "$pid"
            break
        fi
        sleep 5
    done
    wait "$pid"
    rc=$?
    wall=$(($(date +%s) - start))
    execs=$(grep -o 'stat::number_of_executed_units: [0-9]*' "$log" | tail -1 | awk '{print $2}')
    cov=$(grep -E '^#[0-9]+' "$log" | tail -1 | grep -oE 'cov: [0-9]+ ft: [0-9]+ corp: [0-9]+' || true)
    corpus=$(ls "$SCRATCH/$t" | wc -l)
    crashes=$(ls "artifacts/$t" | wc -l)
    echo "$t wall=${wall}s cpu=${cpu}s execs=${execs:-?} $cov scratch_corpus=$corpus artifacts=$crashes rc=$rc" \
        | tee -a "$SCRATCH/summary.txt"
done
