"""Exact resume: a checkpoint plus the history file continue the run bit for bit, wherever it was written.

Every run here shuffles, has a validation set, a model with dropout, and a dataset that draws noise
in `__getitem__`; the random draws are what an inexact resume gets wrong.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lernomatic.train.trainer import Trainer

import extra_nets
from helpers import state_dicts_equal
from noisy_data import NoisyDataset


class HandWrittenSaving(Trainer):
    """An old-style loop that records and checkpoints itself, as zoo trainers did."""

    def train_epoch(self) -> None:
        self.model.set_train()
        for data, target in self.train_loader:
            data, target = data.to(self.device), target.to(self.device)
            loss = self.criterion(self.model.forward(data), target)
            self.optimizer.zero_grad()
            loss.backward()
            self.optimizer.step()
            self.loss_history[self.loss_iter] = loss.item()
            self.loss_iter += 1
            if self.save_every > 0 and self.loss_iter % self.save_every == 0:
                self.save_checkpoint(f'{self.checkpoint_dir}/{self.checkpoint_name}_epoch_{self.cur_epoch}'
                                     f'_iter_{self.loss_iter}.pkl')


def run(make_trainer, fixture_data, folder, trainer_class=Trainer, num_workers=1, **overrides):
    options = dict(shuffle=True, num_workers=num_workers, save_every=5, num_epochs=3, checkpoint_dir=str(folder),
                   train_dataset=NoisyDataset(fixture_data.make(200, 11)), model=extra_nets.DropoutMLPModel())
    options.update(overrides)
    return make_trainer(trainer_class, **options)


def outcome(trainer):
    return {'params': trainer.get_model_params(), 'optim': trainer.optimizer.state_dict()['state'],
            'loss': trainer.get_loss_history().tolist(), 'acc': trainer.get_acc_history().tolist(),
            'val': trainer.get_val_loss_history().tolist(), 'epoch': trainer.cur_epoch, 'best': trainer.best_acc}


def assert_same_run(a, b):
    assert a['loss'] == b['loss'] and a['val'] == b['val'] and a['acc'] == b['acc']
    assert a['epoch'] == b['epoch'] and a['best'] == b['best']
    assert state_dicts_equal(a['params'], b['params'])
    for index, state in a['optim'].items():
        for key, value in state.items():
            assert torch.equal(value, b['optim'][index][key]), (index, key)


def resume(make_trainer, fixture_data, folder, checkpoint, history, trainer_class=Trainer, **overrides):
    """A fresh trainer, its generators elsewhere, loading `checkpoint` and `history` and training on."""
    torch.manual_seed(12345)
    resumed = run(make_trainer, fixture_data, folder, trainer_class, **overrides)
    resumed.load_checkpoint(str(checkpoint))
    resumed.load_history(str(history))
    resumed.train()
    return resumed


@pytest.mark.parametrize('trainer_class, num_workers, checkpoint', [
    (Trainer, 1, 'ck_epoch_0_iter_5.pkl'), (Trainer, 1, 'ck_epoch_1_iter_15.pkl'),
    (Trainer, 0, 'ck_epoch_1_iter_15.pkl'), (HandWrittenSaving, 1, 'ck_epoch_0_iter_5.pkl'),
    (HandWrittenSaving, 1, 'ck_epoch_1_iter_15.pkl')])
def test_mid_epoch_checkpoint_resumes_exactly(make_trainer, fixture_data, tmp_path, trainer_class, num_workers,
                                              checkpoint):
    """From batch 5 of epoch 0 or 1, with the final history file: the same run, bit for bit. (Lightning makes
    epoch 0's data iterator earlier than later epochs': both must replay.)"""
    whole = run(make_trainer, fixture_data, tmp_path / 'whole', trainer_class, num_workers)
    whole.train()
    checkpoint = tmp_path / 'whole' / checkpoint
    data = torch.load(checkpoint)
    assert data['resume']['phase'] == 'train' and data['resume']['batches_done'] == 5
    resumed = resume(make_trainer, fixture_data, tmp_path / 'again', checkpoint, tmp_path / 'whole' / 'ck_history.pkl',
                     trainer_class, num_workers=num_workers)
    assert_same_run(outcome(whole), outcome(resumed))


def test_resume_from_the_best_checkpoint_after_validation(make_trainer, fixture_data, tmp_path):
    """best_ck.pkl is written after validation: the resumed run ends that epoch as the saved run did."""
    whole = run(make_trainer, fixture_data, tmp_path / 'whole', save_every=0, save_best=True, num_epochs=4)
    whole.train()
    best = torch.load(tmp_path / 'whole' / 'best_ck.pkl')
    assert best['resume']['phase'] == 'validated'
    resumed = resume(make_trainer, fixture_data, tmp_path / 'again', tmp_path / 'whole' / 'best_ck.pkl',
                     tmp_path / 'whole' / 'ck_history.pkl', save_every=0, save_best=True, num_epochs=4)
    assert_same_run(outcome(whole), outcome(resumed))


def test_resume_after_a_finished_train_call(make_trainer, fixture_data, tmp_path):
    """A checkpoint saved between train() calls resumes at the next epoch, with set_num_epochs."""
    whole = run(make_trainer, fixture_data, tmp_path / 'whole', save_every=0, num_epochs=4)
    whole.train()
    first = run(make_trainer, fixture_data, tmp_path / 'first', save_every=0, num_epochs=2)
    first.train()
    first.save_checkpoint(str(tmp_path / 'stopped.pkl'))
    resumed = resume(make_trainer, fixture_data, tmp_path / 'again', tmp_path / 'stopped.pkl',
                     tmp_path / 'first' / 'ck_history.pkl', save_every=0, num_epochs=2)
    assert resumed.cur_epoch == 2 and resumed.loss_iter == 20
    resumed.set_num_epochs(4)
    resumed.train()
    assert_same_run(outcome(whole), outcome(resumed))


def test_without_the_generators_the_resume_differs(make_trainer, fixture_data, tmp_path):
    """The checks above can fail: restore_rng=False replays the epoch from its start, as the original did."""
    whole = run(make_trainer, fixture_data, tmp_path / 'whole')
    whole.train()
    again = run(make_trainer, fixture_data, tmp_path / 'again')
    again.load_checkpoint(str(tmp_path / 'whole' / 'ck_epoch_1_iter_15.pkl'), restore_rng=False)
    assert again.cur_epoch == 1 and again.loss_iter == 0  # the original's semantics: counters from the history
    assert again.optimizer.state_dict()['state'][0]['step'].item() == 15
    again.loss_iter, again.val_loss_iter, again.acc_iter = 10, 3, 1  # as written at the end of epoch 0
    again.train()
    assert again.cur_epoch == 3 and again.loss_iter == 30
    assert again.optimizer.state_dict()['state'][0]['step'].item() == 15 + 20  # batches 0-4 of epoch 1 twice
    assert not state_dicts_equal(again.get_model_params(), whole.get_model_params())


def test_an_older_history_file_is_said_and_filled_with_zeros(make_trainer, fixture_data, tmp_path, caplog):
    whole = run(make_trainer, fixture_data, tmp_path / 'whole', num_workers=0)
    whole.train()
    early = run(make_trainer, fixture_data, tmp_path / 'early', num_workers=0, num_epochs=1, save_every=0)
    early.train()  # a history written at the end of epoch 0: loss_iter 10
    resumed = run(make_trainer, fixture_data, tmp_path / 'again', num_workers=0)
    resumed.load_checkpoint(str(tmp_path / 'whole' / 'ck_epoch_1_iter_15.pkl'))
    resumed.load_history(str(tmp_path / 'early' / 'ck_history.pkl'))
    assert resumed.loss_iter == 15 and resumed.cur_epoch == 1
    assert np.all(resumed.loss_history[10:15] == 0)
    assert any('loss_iter=10 but the checkpoint was written at 15' in r.getMessage() for r in caplog.records)
