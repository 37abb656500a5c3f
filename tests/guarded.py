"""Load a stranger's file in a child process under guards: an address-space limit and a timeout.

The guards are bounds, not speed targets: a refusal takes milliseconds and a few megabytes, so a
child that reaches the limit or the timeout shows that the file's cost was paid. The child also
reports whether `torch.load` was reached, and runs in its own folder with its own TMPDIR, so a test
can show that no file outside the run's folder changed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from test_cli import cli_env

MEMORY_BOUND = 512 * 2 ** 20  # bytes of address space a load may add to the loaded program (torch, lernomatic)
TIME_BOUND = 60  # seconds before the child is stopped: a refusal takes milliseconds, a hash bomb never ends

_CHILD = r'''
import contextlib, io, json, os, resource, sys
mode, path, bound = sys.argv[1], sys.argv[2], int(sys.argv[3])
import torch
import matplotlib
matplotlib.use('Agg')
import matplotlib.pyplot  # what `plot` imports, before the limit: the bound is the file's cost alone
from compat.errors import CheckpointError
from lernomatic.infer.inferrer import Inferrer
from lernomatic.train.trainer import Trainer
import lernomatic.cli as cli
import fixture_data
import fixture_nets
real_load, reached = torch.load, []
def recording_load(*args, **kwargs):
    reached.append(str(args[0]))
    return real_load(*args, **kwargs)
torch.load = recording_load
size = int(open('/proc/self/status').read().split('VmSize:')[1].split()[0]) * 1024
resource.setrlimit(resource.RLIMIT_AS, (size + bound, size + bound))
result = {}
try:
    if mode == 'checkpoint':
        Trainer(None, verbose=False).load_checkpoint(path)
    elif mode == 'history':
        Trainer(None, verbose=False).load_history(path)
    elif mode.startswith('trainer-'):  # the fixture's trainer, with loaders: a file's epochs size its histories
        trainer = Trainer(fixture_nets.MLPModel(), num_epochs=3, batch_size=20,
                          train_dataset=fixture_data.make(200, 11), val_dataset=fixture_data.make(60, 12),
                          save_every=0, print_every=1000, verbose=False,
                          checkpoint_dir='checkpoint')
        (trainer.load_checkpoint if mode == 'trainer-checkpoint' else trainer.load_history)(path)
        trainer.save_history('history_after.pkl')  # the next save pays for what the load allowed
        result['history_lengths'] = [len(trainer.loss_history), len(trainer.val_loss_history)]
    elif mode == 'inferrer':
        Inferrer(None).load_model(path)
    elif mode == 'plot':
        errors = io.StringIO()
        with contextlib.redirect_stderr(errors):
            result['status'] = cli.main(['plot', path, '-o', 'plot.png'])
        result['stderr'] = errors.getvalue()
    result['outcome'] = 'returned'
except CheckpointError as error:
    result['outcome'], result['message'] = 'refused', str(error)
except MemoryError:
    result['outcome'] = 'MemoryError'
result['torch_load_reached'] = reached
print(json.dumps(result))
'''


def snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    """Every file under `folder` with its size and modification time."""
    return {str(path.relative_to(folder)): (path.stat().st_size, path.stat().st_mtime_ns)
            for path in sorted(folder.rglob('*')) if path.is_file()}


def guarded_load(mode: str, path: Path, run_dir: Path, bound: int = MEMORY_BOUND) -> dict[str, Any]:
    """Load `path` in a child under the guards; what happened.

    `mode`: checkpoint, history (an empty Trainer), trainer-checkpoint, trainer-history (the fixture's
    trainer, then save_history), inferrer, plot.

    Raises AssertionError when the child ran past `TIME_BOUND` or died.
    """
    run_dir.mkdir(exist_ok=True)
    temporary = run_dir / 'tmp'
    temporary.mkdir(exist_ok=True)
    env = {**cli_env(), 'TMPDIR': str(temporary), 'MALLOC_ARENA_MAX': '2'}
    try:
        child = subprocess.run([sys.executable, '-c', _CHILD, mode, str(path), str(bound)], capture_output=True,
                               text=True, env=env, cwd=run_dir, timeout=TIME_BOUND)
    except subprocess.TimeoutExpired:
        raise AssertionError(f'{mode} of {path.name} still running after {TIME_BOUND} s') from None
    assert child.returncode == 0, child.stderr[-3000:]
    result: dict[str, Any] = json.loads(child.stdout.strip().splitlines()[-1])
    assert os.listdir(temporary) == [], os.listdir(temporary)
    return result
