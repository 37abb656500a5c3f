"""Two real processes (gloo on the CPU) under strategy='ddp': the same parameters on both ranks, rank 0 writes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from helpers import state_dicts_equal

SCRIPT = Path(__file__).resolve().parent / 'ddp' / 'train_two_ranks.py'


def run_two_ranks(mode: str, out: Path, accelerator: str = 'cpu') -> list[dict]:
    env = dict(os.environ, PYTHONUNBUFFERED='1')
    run = subprocess.run([sys.executable, str(SCRIPT), mode, str(out), '--accelerator', accelerator],
                         capture_output=True, text=True, timeout=300, env=env, cwd=out)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-4000:]
    return [torch.load(out / f'params_rank{rank}.pt') for rank in (0, 1)]


@pytest.mark.ddp
@pytest.mark.parametrize('mode, checkpoint', [('default', 'ck_epoch_0_iter_5.pkl'),
                                              ('classifier', 'ck_history.pkl'),
                                              ('gan', 'ck_history.pkl')])
def test_two_ranks_end_identical_and_only_rank_zero_writes(tmp_path, mode, checkpoint):
    rank0, rank1 = run_two_ranks(mode, tmp_path)
    assert rank0['state'].keys() == rank1['state'].keys()
    for name in rank0['state']:
        assert state_dicts_equal(rank0['state'][name], rank1['state'][name]), name
    # each rank saw its half of the data: 200 samples / 20 a batch / 2 ranks = 5 batches an epoch
    assert rank0['loss_iter'] == rank1['loss_iter'] == 10 and rank0['cur_epoch'] == rank1['cur_epoch'] == 2
    assert (tmp_path / 'rank0' / checkpoint).is_file()
    assert [p for p in (tmp_path / 'rank1').rglob('*') if p.is_file()] == []  # nothing written by rank 1
