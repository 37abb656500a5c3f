#!/usr/bin/env bash
# The CPU suite under several ATEN_CPU_CAPABILITY values side by side, with the fixture drift of each:
# for a machine without tox or network (the device tool's GPU machine, whose CPU differs from CI's).
# FULL: capabilities that run the whole 'cpu' selection (default: default); SUBSET: capabilities
# that run the files whose numbers depend on the CPU (SUBSET_FILES); the 'ddp-cpu' selection runs
# once. XDIST=N spreads each run over N workers (pytest-xdist from .whl/run). Results go to $OUT.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-cpu-matrix}
FULL=${FULL:-default}
SUBSET=${SUBSET:-avx2 $(grep -q avx512f /proc/cpuinfo && echo avx512)}
SUBSET_FILES=${SUBSET_FILES:-tests/test_trainer.py tests/test_checkpoint.py tests/test_history.py tests/test_resume.py
  tests/test_legacy_loops.py tests/test_zoo_trainers.py tests/test_lr_finder.py tests/test_lr_finder_epochs.py
  tests/test_schedule.py tests/test_step_modes.py tests/test_hostile_state.py tests/test_device_data.py
  tests/test_adapter.py tests/test_inferrer.py tests/test_models_common.py}
XDIST=${XDIST:-0}
mkdir -p "$OUT"
# a venv over the machine's own Python (its torch, Lightning, pytest, through a .pth), holding the wheels
# it lacks (greenlet, pytest-xdist from .whl/run) and this project: the tests' own subprocesses then
# find everything, as in tox. No pip inside the venv is needed (the machine's pip writes into it).
VENV=/tmp/cpu-matrix-venv
python3 -m venv --without-pip $VENV
VENV_SITE=$($VENV/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
python3 -c 'import site; print(site.getsitepackages()[0])' > "$VENV_SITE/machine.pth"
if ls .whl/run/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --target "$VENV_SITE" .whl/run/*.whl
fi
python3 -m pip install -q --no-index --no-deps --no-build-isolation --target "$VENV_SITE" . >/dev/null
cp -r "$VENV_SITE/bin/." $VENV/bin/ 2>/dev/null  # the console script pip put beside the packages
export PATH=$VENV/bin:$PATH
grep -m1 'model name' /proc/cpuinfo | tee "$OUT/cpu.txt"
grep -o 'avx512[a-z]*' /proc/cpuinfo | sort -u | tr '\n' ' ' | tee -a "$OUT/cpu.txt"; echo | tee -a "$OUT/cpu.txt"
python -c 'import torch; print("torch", torch.__version__)' | tee -a "$OUT/cpu.txt"
export OMP_NUM_THREADS=1 LERNOMATIC_TEST_DEVICE=cpu CUDA_VISIBLE_DEVICES=
workers=(); [ "$XDIST" -gt 0 ] && workers=(-n "$XDIST")
run() {  # capability, log name, pytest arguments...
  local cap=$1 name=$2; shift 2
  ( ATEN_CPU_CAPABILITY=$cap python -m pytest -q -p no:cacheprovider -rfE "$@" > "$OUT/$name.log" 2>&1
    echo "exit $?" >> "$OUT/$name.log" ) &
}
for cap in $FULL $SUBSET; do ATEN_CPU_CAPABILITY=$cap python tools/fixture_drift.py > "$OUT/drift_$cap.json" 2>&1; done
# TESTS='node ids' runs only those in the FULL capabilities (a rerun of what failed)
# shellcheck disable=SC2086
for cap in $FULL; do run "$cap" "cpu_$cap" "${workers[@]}" -m "not ddp and not slow" --basetemp="/tmp/cm-$cap" ${TESTS:-}; done
for cap in $SUBSET; do
  # shellcheck disable=SC2086
  run "$cap" "subset_$cap" "${workers[@]}" -m "not ddp and not slow" --basetemp="/tmp/cm-sub-$cap" $SUBSET_FILES
done
[ -z "${TESTS:-}" ] && run default ddp_default -m "ddp and not slow" --basetemp=/tmp/cm-ddp
wait
for log in "$OUT"/*.log; do echo "$(basename "$log"): $(grep -E '[0-9]+ (passed|failed)' "$log" | tail -1) ($(tail -1 "$log"))"; done
