"""SIGKILL a training run at random moments while it saves every iteration: every file left loads.

CI kills a few runs; `pytest -m slow tests/test_kill.py` kills many (LERNOMATIC_KILLS, default 40).
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from compat.checkpoint import read_checkpoint, read_history

SCRIPT = Path(__file__).resolve().parent / 'kill' / 'save_often.py'


def kill_at_random(folder: Path, rng: random.Random) -> dict[str, int]:
    """One run: start, wait for its first checkpoint, kill it at a random moment; load everything it left."""
    process = subprocess.Popen([sys.executable, str(SCRIPT), str(folder)], stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while not any(folder.glob('*.pkl')):
        assert process.poll() is None, process.stderr.read().decode()[-2000:]
        assert time.monotonic() < deadline, 'the run wrote no checkpoint in 2 minutes'
        time.sleep(0.02)
    time.sleep(rng.uniform(0.0, 1.5))
    assert process.poll() is None, 'the run ended before it was killed'
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    counts = {'checkpoints': 0, 'histories': 0, 'temporaries': 0}
    for path in folder.iterdir():
        if path.name.endswith('.tmp'):
            counts['temporaries'] += 1  # an interrupted write: never under the target's name
        elif path.name.endswith('_history.pkl'):
            read_history(path)
            counts['histories'] += 1
        else:
            read_checkpoint(path)
            counts['checkpoints'] += 1
    return counts


def run_kills(tmp_path: Path, kills: int) -> dict[str, int]:
    rng = random.Random(20261124)
    totals = {'checkpoints': 0, 'histories': 0, 'temporaries': 0}
    for index in range(kills):
        folder = tmp_path / f'run{index}'
        folder.mkdir()
        for key, value in kill_at_random(folder, rng).items():
            totals[key] += value
        for path in folder.iterdir():
            path.unlink()
    return totals


def test_killed_runs_leave_only_loadable_files(tmp_path):
    totals = run_kills(tmp_path, 4)
    assert totals['checkpoints'] >= 4


@pytest.mark.slow
def test_many_kills(tmp_path):
    kills = int(os.environ.get('LERNOMATIC_KILLS', '40'))
    totals = run_kills(tmp_path, kills)
    print(f'{kills} kills: {totals}')
    assert totals['checkpoints'] >= kills
