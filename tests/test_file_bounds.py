"""Sizes a file may choose are bounded (issue 24, findings 4 and 5), each stranger's file built here.

`num_epochs=10**7` in an 18 KB checkpoint once cost 1.9 GB at load and more at the next
`save_history`; a `cur_epoch` past `num_epochs` loaded and `train()` then trained nothing without a
word. The bounds (docs/formats.md, "Bounds") refuse absurd values with a CheckpointError naming the
file and the field, and still accept the original's files and realistic long runs. Loads run in a
child under an address-space limit and a timeout (`guarded.py`).
"""

from __future__ import annotations

import logging

import pytest
import torch
from guarded import MEMORY_BOUND, guarded_load, snapshot
from test_hostile_state import original_checkpoint

from compat.codec.schema import MAX_EPOCHS, MAX_HISTORY_LENGTH

from conftest import ORIGINAL


def original_history():
    return torch.load(ORIGINAL / 'mlp_history.pkl')


@pytest.fixture
def stranger(tmp_path):
    (tmp_path / 'files').mkdir()
    return tmp_path / 'files', tmp_path / 'run'


def refused_in_child(mode, path, run, *fragments):
    before = snapshot(path.parent)
    result = guarded_load(mode, path, run)
    assert result['outcome'] == 'refused', result
    message = result['message']
    assert path.name in message and len(message) < 2_000, message[:300]
    for fragment in fragments:
        assert fragment in message, message[:300]
    assert snapshot(path.parent) == before
    assert not (run / 'history_after.pkl').exists()
    return message


@pytest.mark.parametrize('field, value', [('num_epochs', 10 ** 7), ('cur_epoch', 10 ** 12),
                                          ('iter_per_epoch', 10 ** 9)])
def test_an_absurd_epoch_count_in_a_checkpoint_is_refused(stranger, field, value):
    files, run = stranger
    data = original_checkpoint()
    data['trainer_params'][field] = value
    path = files / f'{field}.pkl'
    torch.save(data, path)
    assert path.stat().st_size < 50_000
    refused_in_child('trainer-checkpoint', path, run, f"['trainer_params']['{field}']", f'{value}')


def test_epochs_times_the_trainers_batches_are_bounded(stranger):
    """Within MAX_EPOCHS, but with batch_size 1 the trainer's loader has 200 batches: 2 * 10**8 values."""
    files, run = stranger
    data = original_checkpoint()
    data['trainer_params'].update(num_epochs=MAX_EPOCHS, batch_size=1, iter_per_epoch=0)
    path = files / 'long.pkl'
    torch.save(data, path)
    refused_in_child('trainer-checkpoint', path, run, "['trainer_params']['num_epochs']", 'loss_history',
                     'set_num_epochs')


def test_iter_per_epoch_is_checked_against_num_epochs(stranger):
    files, run = stranger
    data = original_checkpoint()
    data['trainer_params'].update(num_epochs=1000, iter_per_epoch=MAX_HISTORY_LENGTH)
    path = files / 'product.pkl'
    torch.save(data, path)
    refused_in_child('trainer-checkpoint', path, run, "['trainer_params']['iter_per_epoch']", 'num_epochs')


@pytest.mark.parametrize('field, value', [('cur_epoch', 10 ** 12), ('iter_per_epoch', 10 ** 9),
                                          ('loss_iter', MAX_HISTORY_LENGTH + 1)])
def test_an_absurd_counter_in_a_history_file_is_refused(stranger, field, value):
    files, run = stranger
    data = original_history()
    data[field] = value
    if field == 'loss_iter':
        data['loss_history'] = None  # no array to compare with: the bound alone decides
    path = files / f'history_{field}.pkl'
    torch.save(data, path)
    refused_in_child('trainer-history', path, run, field, f'{value}')


def test_a_realistic_long_run_still_loads(stranger):
    """1,000 epochs at batch_size 1: 200,000 values per history, well within the bounds and the memory guard."""
    files, run = stranger
    data = original_checkpoint()
    data['trainer_params'].update(num_epochs=1000, batch_size=1, iter_per_epoch=0, cur_epoch=999)
    path = files / 'realistic.pkl'
    torch.save(data, path)
    result = guarded_load('trainer-checkpoint', path, run)
    assert result['outcome'] == 'returned', result
    assert result['history_lengths'] == [200 * 1000, 3 * 1000]  # val_batch_size stays 20: 3 batches
    assert 200 * 1000 * 8 * 3 < MEMORY_BOUND


def test_the_originals_files_are_within_every_bound(stranger):
    files, run = stranger
    for mode, name in (('trainer-checkpoint', 'mlp_trainer_ck.pkl'), ('trainer-history', 'mlp_history.pkl')):
        result = guarded_load(mode, ORIGINAL / name, run)
        assert result['outcome'] == 'returned', result


# ---- finding 5: a finished run trains nothing, and says so
@pytest.mark.parametrize('cur_epoch', [5, MAX_EPOCHS])
def test_a_history_past_num_epochs_loads_and_train_says_why_it_trains_nothing(make_trainer, tmp_path, caplog,
                                                                             cur_epoch):
    data = original_history()
    data['cur_epoch'] = cur_epoch
    path = tmp_path / 'past.pkl'
    torch.save(data, path)
    trainer = make_trainer()
    trainer.load_history(str(path))
    caplog.set_level(logging.WARNING)
    trainer.train()
    assert trainer.loss_iter == 30 and trainer.cur_epoch == cur_epoch  # nothing trained, as in the original
    warnings = [record.getMessage() for record in caplog.records if 'nothing to train' in record.getMessage()]
    assert len(warnings) == 1 and 'set_num_epochs' in warnings[0] and f'cur_epoch is {cur_epoch}' in warnings[0]


def test_resuming_the_originals_finished_run_trains_nothing_and_says_so(make_trainer, caplog):
    """The original's checkpoint was written after its last epoch (cur_epoch 3 of 3)."""
    trainer = make_trainer()
    trainer.load_checkpoint(str(ORIGINAL / 'mlp_trainer_ck.pkl'))
    trainer.load_history(str(ORIGINAL / 'mlp_history.pkl'))
    caplog.set_level(logging.WARNING)
    trainer.train()
    assert trainer.loss_iter == 30
    assert any('nothing to train' in record.getMessage() and 'set_num_epochs' in record.getMessage()
               for record in caplog.records)
