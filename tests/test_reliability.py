"""Exact resume, non-finite losses, dying data workers: what a run survives and how it says so."""

from __future__ import annotations

import os
import signal

import numpy as np
import pytest
import torch

from compat.errors import NonFiniteLossError
from lernomatic.train.trainer import Trainer

from helpers import state_dicts_equal


def resumable(make_trainer, **overrides):
    return make_trainer(shuffle=True, **overrides)


def finish(trainer):
    return {'params': trainer.get_model_params(), 'optim': trainer.optimizer.state_dict()['state'],
            'loss': trainer.get_loss_history().tolist(), 'acc': trainer.get_acc_history().tolist(),
            'val': trainer.get_val_loss_history().tolist()}


def assert_same_run(a, b):
    assert a['loss'] == b['loss'] and a['val'] == b['val'] and a['acc'] == b['acc']
    assert state_dicts_equal(a['params'], b['params'])
    for index, state in a['optim'].items():
        for key, value in state.items():
            assert torch.equal(value, b['optim'][index][key]), (index, key)


def stop_and_resume(make_trainer, fixture_data, tmp_path, epochs, restore_rng=True):
    """Train 2 epochs, save, then in a fresh trainer (its generator elsewhere) load and train to `epochs`."""
    first = resumable(make_trainer, num_epochs=2)
    first.train()
    first.save_checkpoint(str(tmp_path / 'stopped.pkl'))
    torch.manual_seed(12345)  # whatever the new process's generator holds, the checkpoint's comes back
    resumed = Trainer(None, train_dataset=fixture_data.make(200, 11), val_dataset=fixture_data.make(60, 12),
                      batch_size=20, shuffle=True, num_workers=0, verbose=False, save_every=0,
                      checkpoint_dir=str(tmp_path / 'resumed'), device_id=first.device_id)
    resumed.load_checkpoint(str(tmp_path / 'stopped.pkl'), restore_rng=restore_rng)
    resumed.load_history(str(tmp_path / 'checkpoint' / 'ck_history.pkl'))
    assert resumed.cur_epoch == 2 and resumed.loss_iter == 20
    resumed.set_num_epochs(epochs)
    resumed.train()
    return resumed


def test_resume_after_epoch_k_equals_an_uninterrupted_run(make_trainer, fixture_data, tmp_path):
    whole = resumable(make_trainer, num_epochs=4)
    whole.train()
    resumed = stop_and_resume(make_trainer, fixture_data, tmp_path, 4)
    assert_same_run(finish(whole), finish(resumed))


def test_resume_without_rng_state_differs(make_trainer, fixture_data, tmp_path):
    """The check above can fail: without the saved generator state the shuffled order differs."""
    whole = resumable(make_trainer, num_epochs=3)
    whole.train()
    resumed = stop_and_resume(make_trainer, fixture_data, tmp_path, 3, restore_rng=False)
    assert not state_dicts_equal(resumed.get_model_params(), whole.get_model_params())


def test_mid_epoch_checkpoint_replays_that_epoch_from_its_start(make_trainer, tmp_path):
    """A checkpoint saved at iteration 15 (epoch 1, batch 5) holds cur_epoch=1: resuming trains all of
    epoch 1 again from those weights, so batches 0-4 of epoch 1 are trained twice; the history file
    (written at the end of epoch 0) lets the counters continue where epoch 1 began."""
    run = make_trainer(save_every=5, num_epochs=3)
    run.train()
    folder = tmp_path / 'checkpoint'
    resumed = make_trainer(num_epochs=3, save_every=0, checkpoint_dir=str(tmp_path / 'again'))
    resumed.load_checkpoint(str(folder / 'ck_epoch_1_iter_15.pkl'))
    assert resumed.cur_epoch == 1 and resumed.optimizer.state_dict()['state'][0]['step'].item() == 15
    history = torch.load(folder / 'ck_history.pkl')  # the last one: end of epoch 2
    resumed.loss_iter, resumed.val_loss_iter, resumed.acc_iter = 10, 3, 1  # as written at the end of epoch 0
    resumed.loss_history[:10] = history['loss_history'][:10]
    resumed.train()
    assert resumed.cur_epoch == 3 and resumed.loss_iter == 30 and resumed.acc_iter == 3
    assert resumed.optimizer.state_dict()['state'][0]['step'].item() == 15 + 20  # 5 batches replayed


def nan_at(dataset, index):
    x, y = dataset.tensors
    x = x.clone()
    x[index, 0] = float('nan')
    return torch.utils.data.TensorDataset(x, y)


def test_nan_loss_stops_with_epoch_and_iteration(make_trainer, fixture_data, tmp_path):
    trainer = make_trainer(train_dataset=nan_at(fixture_data.make(200, 11), 45), save_every=1)  # batch 2
    with pytest.raises(NonFiniteLossError, match=r'loss is nan at iteration 2 \(epoch 0, batch 2\)'):
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
