#!/usr/bin/env bash
# Run the tox 'gpu' env on a GPU machine with CUDA torch, Lightning and pytest installed but no network:
# tox and greenlet come from .whl/ (tools/fetch_gpu_wheels.sh), torch from the machine's own Python.
# Arguments go to pytest, e.g. tools/gpu_env.sh -x tests/test_gpu.py
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install -q --no-index --no-deps --upgrade --target /tmp/lernomatic-tox .whl/tox/*.whl
python3 -m pip install -q --no-index --no-deps --upgrade --target /tmp/lernomatic-site .whl/run/*.whl
torch_site=$(python3 -c 'import os, torch; print(os.path.dirname(os.path.dirname(torch.__file__)))')
export LERNOMATIC_SITE_PACKAGES="/tmp/lernomatic-site:$torch_site" NCCL_NVLS_ENABLE=0
PYTHONPATH=/tmp/lernomatic-tox python3 -m tox -e gpu -- "$@"
