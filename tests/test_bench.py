"""The benches run end to end on the CPU (`--quick` and few steps: their timings mean nothing here)."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys

import pytest

from conftest import REPO


def bench_module(name: str):
    """A bench script imported as a module (bench/ is no package)."""
    spec = importlib.util.spec_from_file_location(f'bench_{name}', REPO / 'bench' / f'{name}.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_quick(tmp_path, *options: str) -> tuple[str, dict]:
    """`step_throughput.py --quick` with `options`: its stdout and its JSON."""
    out = tmp_path / 'quick.json'
    run = subprocess.run([sys.executable, str(REPO / 'bench' / 'step_throughput.py'), '--quick', '--out', str(out),
                          *options], capture_output=True, text=True, timeout=900, cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    return run.stdout, json.loads(out.read_text())


def test_step_throughput_quick_batches(tmp_path):
    stdout, result = run_quick(tmp_path, '--data', 'batches')
    assert '| cifar |' in stdout and '| resnet |' in stdout
    assert '| default vs raw_item | cifar | >= 1.0x |' in stdout  # issue 16's targets are reported
    assert 'Targets of issue 5' in stdout and '| legacy vs raw | resnet | >= 0.9x |' in stdout
    rates = result['median']['cifar']
    assert set(rates) == {'raw', 'raw_item', 'lightning', 'default', 'legacy', 'fast'}
    assert rates.pop('fast') is None  # the CUDA-graph style says it cannot run on the CPU
    assert all(rate > 0 for rate in rates.values())


def test_step_throughput_quick_collated_runs_every_style(tmp_path):
    stdout, result = run_quick(tmp_path, '--data', 'collated', '--models', 'cifar')
    rates = result['median']['cifar']
    graph_styles = {'fast', 'fast_device', 'fast_cyclic', 'graph'}
    assert set(rates) == {'raw', 'raw_item', 'lightning', 'default', 'default_device', 'legacy'} | graph_styles
    for style in graph_styles:  # their code ran (a note each), without a CUDA graph and so without a rate
        assert rates.pop(style) is None
        assert any(note.startswith(f'{style}:') for note in result['notes']), style
    assert all(rate > 0 for rate in rates.values())
    assert 'Targets of issue 16' in stdout and 'Targets of issue 5' not in stdout
    for target in ('default vs raw_item', 'fast vs graph', 'fast_device vs graph', 'default_device vs raw',
                   'fast_cyclic vs fast_device'):
        assert f'| {target} | cifar |' in stdout, target


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


def test_sync_debug_runs_its_trainers(tmp_path):
    """On the CPU there is no CUDA to watch: the script's trainers (schedule included) run through its window."""
    out = tmp_path / 'sync.json'
    run = subprocess.run([sys.executable, str(REPO / 'bench' / 'sync_debug.py'), '--styles', 'fast_cyclic',
                          '--steps', '14', '--batch', '16', '--first', '4', '--last', '12', '--out', str(out)],
                         capture_output=True, text=True, timeout=900, cwd=tmp_path)
    assert run.returncode == 0, run.stdout[-3000:]
    (result,) = json.loads(out.read_text())['results']
    assert result == {'style': 'fast_cyclic', 'synced': False, 'watched': 8, 'debug_mode': False}


def test_target_verdicts_from_made_up_rates():
    """The verdict arithmetic and the cells for failed or unmeasured styles (rates here are invented, not timed)."""
    bench = bench_module('step_throughput')
    runs = {'cifar': {'raw': [100.0, 120.0], 'raw_item': [100.0, 100.0], 'default': [90.0, 90.0],
                      'fast_device': [400.0, 400.0], 'fast_cyclic': [380.0, 300.0], 'graph': [None, None]}}
    rows = bench.target_rows(runs, bench.ISSUE16_TARGETS)
    assert '| default vs raw_item | cifar | >= 1.0x | 0.90x | missed by 10% |' in rows
    assert '| fast_cyclic vs fast_device | cifar | >= 0.9x | 0.85x | missed by 6% |' in rows  # median of 0.95, 0.75
    assert '| fast_device vs graph | cifar | >= 2.0x | n/a | not measured |' in rows
    assert not any(row.startswith('| fast vs') for row in rows)  # `fast` did not run
    assert bench.cyclic_twin({'fast': [], 'fast_cyclic': []}) == 'fast'
    cells = bench.table(runs, failed={('cifar', 'graph')}).splitlines()[2]
    assert cells.endswith('| FAILED |') and '| 90 (0.82x) |' in cells


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
