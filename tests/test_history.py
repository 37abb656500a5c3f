"""Declared histories: buffered device values, resizing every `*_history`, the history file format."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from compat.state.device_buffer import BufferedHistory, flush_histories, push_history
from compat.state.histories import resize_histories
from compat.state.run_state import RunState
from lernomatic.train.trainer import Trainer

from conftest import FIXTURE_RTOL
from helpers import signature


class _Holder:
    """What the buffer needs of a trainer: a BufferedHistory attribute and a RunState to keep values in."""

    loss_history = BufferedHistory()

    def __init__(self) -> None:
        self._run_state = RunState()


def test_buffered_values_appear_when_read():
    holder = _Holder()
    holder.loss_history = np.zeros(4)
    push_history(holder, 'loss_history', 0, torch.tensor(1.5))
    push_history(holder, 'loss_history', 1, torch.tensor(2.5))
    assert holder.__dict__['loss_history'].tolist() == [0, 0, 0, 0]  # still on the device side
    assert holder.loss_history.tolist() == [1.5, 2.5, 0, 0]
    assert isinstance(holder.loss_history, np.ndarray) and holder.loss_history.dtype == np.float64


def test_flush_writes_every_buffered_history():
    holder = _Holder()
    holder.loss_history = np.zeros(2)
    push_history(holder, 'loss_history', 1, torch.tensor(3.0))
    flush_histories(holder)
    assert holder.__dict__['loss_history'].tolist() == [0.0, 3.0]


def test_assigning_a_new_array_drops_stale_buffered_values():
    holder = _Holder()
    holder.loss_history = np.zeros(2)
    push_history(holder, 'loss_history', 0, torch.tensor(9.0))
    holder.loss_history = np.ones(2)
    assert holder.loss_history.tolist() == [1.0, 1.0]


def test_push_past_the_end_says_why():
    holder = _Holder()
    holder.loss_history = np.zeros(1)
    push_history(holder, 'loss_history', 0, torch.tensor(1.0))
    with pytest.raises(IndexError, match='holds 1 values and index 1'):
        push_history(holder, 'loss_history', 1, torch.tensor(1.0))


class GanStyleTrainer(Trainer):
    """A subclass with its own histories, allocated in its own _init_history as old subclasses did."""

    def _init_history(self) -> None:
        super()._init_history()
        self.d_loss_iter = 0
        self.d_loss_history = np.zeros(len(self.train_loader) * self.num_epochs) if self.train_loader else None


def test_set_num_epochs_extends_subclass_histories(make_trainer):
    trainer = make_trainer(GanStyleTrainer)
    trainer.d_loss_history[:5] = np.arange(1, 6)
    trainer.d_loss_iter = 5
    trainer.loss_history[:3] = [7, 8, 9]
    trainer.loss_iter = 3
    trainer.extra_history = np.arange(6, dtype=np.float32)  # an array no _init_history knows: 2 per epoch
    trainer.set_num_epochs(5)
    assert len(trainer.d_loss_history) == 50 and trainer.d_loss_history[:5].tolist() == [1, 2, 3, 4, 5]
    assert len(trainer.loss_history) == 50 and trainer.loss_history[:3].tolist() == [7, 8, 9]
    assert len(trainer.val_loss_history) == 15 and len(trainer.acc_history) == 15
    assert trainer.extra_history.dtype == np.float32 and trainer.extra_history.tolist() == list(range(6)) + [0] * 4
    assert trainer.d_loss_iter == 5 and trainer.loss_iter == 3


def test_shrinking_num_epochs_keeps_arrays(make_trainer):
    trainer = make_trainer()
    trainer.set_num_epochs(2)
    assert trainer.num_epochs == 2 and len(trainer.loss_history) == 30


def test_resize_without_loaders_grows_by_per_epoch_length():
    holder = type('Bare', (), {})()
    holder.loss_history = np.ones(6)
    holder.loss_iter = 6
    resize_histories(holder, 3, 4, reinit=lambda: None)
    assert holder.loss_history.tolist() == [1] * 6 + [0] * 2 and holder.loss_iter == 6


def test_history_file_matches_the_original(make_trainer, original_dir, tmp_path):
    trainer = make_trainer()
    trainer.train()
    fname = tmp_path / 'hist.pkl'
    trainer.save_history(str(fname))
    ours, theirs = torch.load(fname), torch.load(original_dir / 'mlp_history.pkl')
    assert signature(ours) == signature(theirs)
    for key in theirs:
        # their numbers were computed on another CPU: within tolerance (tests/conftest.py); ours equal
        # the same-process plain loop bit for bit (test_trainer)
        np.testing.assert_allclose(ours[key], theirs[key], rtol=FIXTURE_RTOL, err_msg=key)


def test_history_is_written_each_epoch(make_trainer, tmp_path):
    trainer = make_trainer(num_epochs=2)
    trainer.train()
    history = torch.load(tmp_path / 'checkpoint' / 'ck_history.pkl')
    assert history['cur_epoch'] == 2 and history['loss_iter'] == 20  # agrees with its counters


def test_load_history_restores_counters_and_arrays(original_dir, make_trainer, expected):
    trainer = make_trainer()
    trainer.load_history(str(original_dir / 'mlp_history.pkl'))
    assert trainer.loss_iter == 30 and trainer.val_loss_iter == 9 and trainer.acc_iter == 3
    assert trainer.cur_epoch == 3 and trainer.iter_per_epoch == 3
    assert trainer.get_loss_history().tolist() == expected['loss_history']
    assert trainer.get_val_loss_history().tolist() == expected['val_loss_history']
    assert trainer.get_acc_history().tolist() == expected['acc_history']


def test_subclass_histories_are_saved_and_loaded(make_trainer, tmp_path):
    trainer = make_trainer(GanStyleTrainer)
    trainer.d_loss_history[:2] = [0.25, 0.5]
    trainer.d_loss_iter = 2
    fname = tmp_path / 'gan_hist.pkl'
    trainer.save_history(str(fname))
    data = torch.load(fname)
    assert list(data)[:8] == ['loss_iter', 'val_loss_iter', 'acc_iter', 'cur_epoch', 'iter_per_epoch',
                              'loss_history', 'val_loss_history', 'acc_history']
    assert data['d_loss_iter'] == 2
    fresh = make_trainer(GanStyleTrainer)
    fresh.load_history(str(fname))
    assert fresh.d_loss_history[:2].tolist() == [0.25, 0.5] and fresh.d_loss_iter == 2


def test_load_history_rejects_a_checkpoint(original_dir, make_trainer):
    from compat.errors import CheckpointError
    with pytest.raises(CheckpointError, match='not a Lernomatic history file, missing key'):
        make_trainer().load_history(str(original_dir / 'mlp_trainer_ck.pkl'))
