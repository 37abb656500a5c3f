#!/usr/bin/env bash
# The CPU suite (the tox 'cpu' and 'ddp-cpu' selections) under each ATEN_CPU_CAPABILITY this CPU has,
# side by side, with the fixture drift of each: for a machine without tox or network (the device
# tool's GPU machine, whose CPU differs from CI's). Results go to $OUT (default: ./cpu-matrix).
# Usage: tools/cpu_matrix.sh [capability ...]   (default: default avx2, and avx512 where the CPU has it)
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-cpu-matrix}
mkdir -p "$OUT"
SITE=/tmp/cpu-matrix-site
if ls .whl/run/*.whl >/dev/null 2>&1; then  # wheels the offline machine lacks (greenlet)
  python3 -m pip install -q --no-index --no-deps --target $SITE .whl/run/*.whl
fi
# the project itself, for its console script, distribution metadata and pytest plugin; the tree stays first
python3 -m pip install -q --no-index --no-deps --no-build-isolation --target $SITE . >/dev/null
export PYTHONPATH=$PWD:$SITE PATH=$SITE/bin:$PATH
caps=("$@")
if [ ${#caps[@]} -eq 0 ]; then
  caps=(default avx2)
  grep -q avx512f /proc/cpuinfo && caps+=(avx512)
fi
grep -m1 'model name' /proc/cpuinfo | tee "$OUT/cpu.txt"
python3 -c 'import torch; print("torch", torch.__version__)' | tee -a "$OUT/cpu.txt"
threads=$(( $(nproc) / (${#caps[@]} + 1) )); [ "$threads" -lt 1 ] && threads=1
export OMP_NUM_THREADS=$threads LERNOMATIC_TEST_DEVICE=cpu CUDA_VISIBLE_DEVICES=
for cap in "${caps[@]}"; do
  ATEN_CPU_CAPABILITY=$cap python3 tools/fixture_drift.py > "$OUT/drift_$cap.json" 2>&1
  ( ATEN_CPU_CAPABILITY=$cap python3 -m pytest -q -p no:cacheprovider -m "not ddp and not slow" \
      --basetemp="/tmp/cpu-matrix-$cap" > "$OUT/cpu_$cap.log" 2>&1; echo "exit $?" >> "$OUT/cpu_$cap.log" ) &
done
( python3 -m pytest -q -p no:cacheprovider -m ddp --basetemp=/tmp/cpu-matrix-ddp > "$OUT/ddp_default.log" 2>&1
  echo "exit $?" >> "$OUT/ddp_default.log" ) &
wait
for log in "$OUT"/*.log; do echo "$log: $(grep -E '(passed|failed)' "$log" | tail -1) $(tail -1 "$log")"; done
