"""The benches run end to end on the CPU (`--quick` and few steps: their timings mean nothing here)."""

from __future__ import annotations

import json
import subprocess
import sys

from conftest import REPO


def test_step_throughput_quick(tmp_path):
    out = tmp_path / 'quick.json'
    run = subprocess.run([sys.executable, str(REPO / 'bench' / 'step_throughput.py'), '--quick', '--out', str(out)],
                         capture_output=True, text=True, timeout=900, cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    assert '| cifar |' in run.stdout and '| resnet |' in run.stdout
    assert '| default vs raw_item | cifar | >= 1.0x |' in run.stdout  # the targets are reported
    result = json.loads(out.read_text())
    rates = result['median']['cifar']
    assert set(rates) == {'raw', 'raw_item', 'lightning', 'default', 'legacy', 'fast'}
    assert rates.pop('fast') is None  # the CUDA-graph style says it cannot run on the CPU
    assert all(rate > 0 for rate in rates.values())


def test_profile_step_splits_the_step(tmp_path):
    out = tmp_path / 'profile.json'
    run = subprocess.run([sys.executable, str(REPO / 'bench' / 'profile_step.py'), '--steps', '40', '--warmup', '5',
                          '--batch', '16', '--device', 'cpu', '--out', str(out)],
                         capture_output=True, text=True, timeout=900, cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    split = json.loads(out.read_text())['profiled_us_per_step']
    for part in ('model forward', 'backward', 'optimizer step', 'Lernomatic bookkeeping'):
        assert split[part] > 0, part
    assert '| whole step | 100% |' in run.stdout
