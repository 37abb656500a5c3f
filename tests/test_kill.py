"""SIGKILL a training run at random moments, resume it from the files it left, compare bit for bit.

The run checkpoints every 3 iterations, shuffles, validates, has dropout and a noisy dataset read by
a DataLoader worker. After each kill: every file left loads, the resumed run (newest checkpoint plus
the history file, in a new process) ends with the uninterrupted run's weights, optimizer state and
histories exactly, and the killed save's temporary file is gone. CI kills a few runs;
`pytest -m slow tests/test_kill.py` many (LERNOMATIC_KILLS, default 40).
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from compat.codec.checkpoint import read_checkpoint
from compat.codec.history_file import read_history

SCRIPT = Path(__file__).resolve().parent / 'kill' / 'train_or_resume.py'


def start(mode: str, folder: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(SCRIPT), mode, str(folder)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def finish(process: subprocess.Popen) -> str:
    out, err = process.communicate(timeout=600)
    assert process.returncode == 0, err[-3000:]
    return out


def wait_for_first_checkpoint(process: subprocess.Popen, folder: Path) -> None:
    deadline = time.monotonic() + 120
    while not any(folder.glob('ck_epoch_*.pkl')):
        assert process.poll() is None, process.stderr.read()[-2000:]
        assert time.monotonic() < deadline, 'the run wrote no checkpoint in 2 minutes'
        time.sleep(0.01)


@pytest.fixture(scope='module')
def uninterrupted(tmp_path_factory) -> dict:
    """The whole run's results, and how long it runs after its first checkpoint (the window to kill it in)."""
    folder = tmp_path_factory.mktemp('uninterrupted')
    process = start('run', folder)
    wait_for_first_checkpoint(process, folder)
    first = time.monotonic()
    finish(process)
    return {**torch.load(folder / 'final.pt', weights_only=False), 'window': time.monotonic() - first}


def kill_at_random(folder: Path, rng: random.Random, window: float) -> dict[str, int]:
    """Start a run, wait for its first checkpoint, kill it at a random moment; load everything it left."""
    process = start('run', folder)
    wait_for_first_checkpoint(process, folder)
    time.sleep(rng.uniform(0.0, 0.8 * window))  # within the run on this machine, however fast it is
    assert process.poll() is None, 'the run ended before it was killed: make it longer'
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    counts = {'checkpoints': 0, 'temporaries': 0}
    for path in folder.iterdir():
        if path.name.endswith('.tmp'):
            counts['temporaries'] += 1  # an interrupted write, never under the target's name
        elif path.name.endswith('_history.pkl'):
            read_history(path)
        elif path.suffix == '.pkl':
            read_checkpoint(path)
            counts['checkpoints'] += 1
    return counts


def assert_same(a: dict, b: dict) -> None:
    for key in ('loss', 'val', 'acc'):
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    assert a['cur_epoch'] == b['cur_epoch'] and a['best_acc'] == b['best_acc']
    for name, tensor in a['params'].items():
        assert torch.equal(tensor, b['params'][name]), name
    for index, state in a['optim'].items():
        for key, value in state.items():
            assert torch.equal(value, b['optim'][index][key]), (index, key)


def kill_and_resume(tmp_path: Path, uninterrupted: dict, kills: int, seed: int) -> dict[str, int]:
    rng = random.Random(seed)
    totals = {'checkpoints': 0, 'temporaries': 0, 'resumed': 0, 'from best': 0, 'from mid-epoch': 0}
    for index in range(kills):
        folder = tmp_path / f'run{index}'
        folder.mkdir()
        for key, value in kill_at_random(folder, rng, uninterrupted['window']).items():
            totals[key] += value
        out = finish(start('resume', folder))
        assert out.startswith('resumed from ')  # a mid-epoch ck_epoch_E_iter_I.pkl, or best_ck.pkl
        totals['from best' if 'best_ck' in out else 'from mid-epoch'] += 1
        assert_same(uninterrupted, torch.load(folder / 'final.pt', weights_only=False))
        assert not list(folder.glob('.*.tmp')), 'the resumed run left a killed save\'s temporary file'
        totals['resumed'] += 1
    return totals


def test_killed_runs_resume_bit_for_bit(tmp_path, uninterrupted):
    totals = kill_and_resume(tmp_path, uninterrupted, 3, seed=20261125)
    assert totals['resumed'] == 3 and totals['checkpoints'] >= 3


@pytest.mark.slow
def test_many_kills(tmp_path, uninterrupted):
    kills = int(os.environ.get('LERNOMATIC_KILLS', '40'))
    totals = kill_and_resume(tmp_path, uninterrupted, kills, seed=1)
    print(f'{kills} kills: {totals}')
    assert totals['resumed'] == kills
