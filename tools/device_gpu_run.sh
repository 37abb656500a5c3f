#!/usr/bin/env bash
# On the GPU machine (device tool): write the GPU checkpoint fixture, run the suite, run the main job.
# The fixtures travel in .devshared/ (git-ignored, named in `carry`).
set -uo pipefail
export LERNOMATIC_FIXTURES=$PWD/.devshared/original PYTHONPATH=$PWD PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
python3 -c 'import torch, lightning, torchmetrics, numpy; print("torch", torch.__version__, "lightning", lightning.__version__, "torchmetrics", torchmetrics.__version__, "numpy", numpy.__version__)'
python3 tools/make_gpu_checkpoint.py "$OUT/gpu_written_ck.pkl"
cp "$OUT/gpu_written_ck.pkl" tests/data/gpu_written_ck.pkl
python3 -m pytest -q -p no:cacheprovider tests 2>&1 | tee "$OUT/pytest_gpu.log" | tail -25
( time python3 examples/train_digits.py --quiet --out /tmp/digits ) 2>&1 | tail -5
