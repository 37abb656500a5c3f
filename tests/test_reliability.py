"""Non-finite losses and dying data workers: what a run survives and how it says so."""

from __future__ import annotations

import os
import signal

import numpy as np
import pytest
import torch

from compat.errors import NonFiniteLossError


def nan_at(dataset, index):
    x, y = dataset.tensors
    x = x.clone()
    x[index, 0] = float('nan')
    return torch.utils.data.TensorDataset(x, y)


def test_nan_loss_stops_with_epoch_and_iteration(make_trainer, fixture_data, tmp_path):
    trainer = make_trainer(train_dataset=nan_at(fixture_data.make(200, 11), 45), save_every=1)  # batch index 2
    with pytest.raises(NonFiniteLossError, match=r'loss is nan at iteration 2 \(epoch 1/\d+, batch 3\)'):
        trainer.train()
    written = sorted(p.name for p in (tmp_path / 'checkpoint').glob('ck_epoch_*.pkl'))
    assert written == ['ck_epoch_0_iter_1.pkl', 'ck_epoch_0_iter_2.pkl']  # none holds NaN weights


def test_nan_loss_can_be_trained_through(make_trainer, fixture_data):
    trainer = make_trainer(train_dataset=nan_at(fixture_data.make(200, 11), 45), stop_on_nonfinite=False,
                           num_epochs=1)
    trainer.train()
    assert trainer.loss_iter == 10 and np.isnan(trainer.loss_history[2])


class DiesInWorker(torch.utils.data.Dataset):
    def __len__(self):
        return 100

    def __getitem__(self, index):
        if torch.utils.data.get_worker_info() is not None and index == 30:
            os.kill(os.getpid(), signal.SIGKILL)
        return torch.zeros(12), 0


def test_dying_data_worker_raises_instead_of_hanging(make_trainer):
    trainer = make_trainer(train_dataset=DiesInWorker(), num_workers=1, num_epochs=1)
    with pytest.raises(RuntimeError, match='DataLoader worker .* (exited unexpectedly|killed)'):
        trainer.train()
