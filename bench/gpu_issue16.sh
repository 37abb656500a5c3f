#!/usr/bin/env bash
# Issue 16's benchmark on the GPU machine (device tool, one H100) in one command, about 5-6 minutes:
# step_throughput.py for cifar (about 2-3 minutes: 10 styles x 2 rounds + a warm-up, one process
# each), sync_debug.py (about a minute), then resnet (about 3 minutes). Each model's second round
# starts only if it would end within its --budget-s, so the whole stays under the device tool's
# 10 minutes even if process start-up is slow there; every JSON is written after each run.
# Results, tables and logs go to $OUT (or ./bench_out). Carry .whl (greenlet, for the hand-written
# `legacy` loop; tools/fetch_gpu_wheels.sh).
#   bash bench/gpu_issue16.sh                 # everything
#   bash bench/gpu_issue16.sh cifar sync      # a part: any of cifar, resnet, sync
set -uo pipefail
export PYTHONUNBUFFERED=1
OUT=${OUT:-bench_out}
mkdir -p "$OUT"
if compgen -G '.whl/run/*.whl' >/dev/null; then
    python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/run/*.whl
fi
export PYTHONPATH=$PWD:/tmp/site
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
parts=("$@")
[ ${#parts[@]} -eq 0 ] && parts=(cifar sync resnet)
status=0
for part in "${parts[@]}"; do
    started=$SECONDS
    if [ "$part" = sync ]; then
        python3 bench/sync_debug.py --out "$OUT/sync_debug_h100_cifar.json" 2>"$OUT/sync_debug.stderr" \
            | tee "$OUT/sync_debug_h100_cifar.txt" || { status=1; tail -20 "$OUT/sync_debug.stderr"; }
    else
        python3 bench/step_throughput.py --models "$part" --budget-s 210 \
            --out "$OUT/step_throughput_h100_collated_$part.json" \
            2>"$OUT/step_throughput_$part.stderr" | tee "$OUT/step_throughput_h100_collated_$part.txt" \
            || { status=1; tail -20 "$OUT/step_throughput_$part.stderr"; }
    fi
    echo "== $part: $((SECONDS - started)) s"
done
exit $status
