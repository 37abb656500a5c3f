"""The benches run end to end on the CPU (`--quick` and few steps: their timings mean nothing here)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

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


@pytest.mark.ddp
def test_ddp_speedup_quick_runs_both_loops_on_one_and_two_processes(tmp_path):
    out = tmp_path / 'ddp.json'
    run = subprocess.run([sys.executable, str(REPO / 'bench' / 'ddp_speedup.py'), '--quick', '--out', str(out),
                          '--scratch', str(tmp_path / 'scratch')], capture_output=True, text=True, timeout=900,
                         cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    assert '| default |' in run.stdout and '| hand-written |' in run.stdout
    result = json.loads(out.read_text())
    assert set(result['median']) == {'default x1', 'default x2', 'hand-written x1', 'hand-written x2'}
    assert all(rate > 0 for rate in result['median'].values())
    # the hand-written loop on 2 processes: every gradient averaged by DDP's reducer, none at the step
    assert result['fallback_params']['hand-written x2'] == 0
    assert result['fallback_params']['hand-written x1'] is None  # one process: no DDP at all
