#!/usr/bin/env bash
# On the GPU machine (device tool): the whole suite on CUDA, the main job, and (with 2 GPUs) DDP on NCCL.
# TESTS='tests/test_a.py ...' runs only those files (device calls are limited to 10 minutes).
# Wheels the machine lacks (greenlet) travel in .whl/: git-ignored, named in `carry`.
set -uo pipefail
export PYTHONUNBUFFERED=1 NCCL_NVLS_ENABLE=0
python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/run/*.whl && export PYTHONPATH=$PWD:/tmp/site PATH=/tmp/site/bin:$PATH
# the project itself, for its distribution metadata (--version) and console script; the tree stays first on the path
python3 -m pip install -q --no-index --no-deps --no-build-isolation --target /tmp/site . >/dev/null
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
python3 -c 'import torch, lightning, torchmetrics, numpy, greenlet; print("torch", torch.__version__, "lightning", lightning.__version__, "torchmetrics", torchmetrics.__version__, "numpy", numpy.__version__, "greenlet", greenlet.__version__)'
python3 -m pytest -q -p no:cacheprovider -rs --durations=25 ${TESTS:-tests} "$@" 2>&1 | tee "$OUT/pytest_gpu.log" | tail -25
( time python3 examples/train_digits.py --quiet --out /tmp/digits ) 2>&1 | tail -4
