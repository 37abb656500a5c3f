"""Options whose trouble shows only when a run uses them: refused by train() before any batch, naming the option;
and the values the original accepted (checkpoint_name=None among them) still run."""

from __future__ import annotations

import os

import pytest
import torch

from compat.errors import ConfigError
from lernomatic.infer.inferrer import Inferrer
from lernomatic.train.options import CHECKPOINT_NAME_MAX_BYTES
from lernomatic.train.trainer import Trainer

from conftest import ON_CUDA, TEST_DEVICE_ID
from helpers import CountedReads, state_dicts_equal


def refused_before_work(make_trainer, fixture_data, message: str, **options) -> None:
    data = CountedReads(fixture_data.make(200, 11))
    trainer = make_trainer(train_dataset=data, **options)
    weights = {k: v.clone() for k, v in trainer.get_model_params().items()}
    with pytest.raises(ConfigError, match=message):
        trainer.train()
    assert data.reads == 0 and trainer.loss_iter == 0 and trainer.cur_epoch == 0  # not one batch, not the check's
    assert state_dicts_equal(weights, trainer.get_model_params())


# ---- checkpoint_name=None, as the original's own test_inferrer passes it
def test_checkpoint_name_none_runs_as_in_the_original(make_trainer, tmp_path):
    """Kept as None and never used: a run that writes no file named after it trains; the user's own save works."""
    trainer = make_trainer(checkpoint_name=None, save_every=0, save_hist=False, num_epochs=2)
    assert trainer.checkpoint_name is None
    trainer.train()
    assert trainer.cur_epoch == 2 and trainer.get_acc_history() is not None
    assert [p.name for p in (tmp_path / 'checkpoint').glob('*.pkl')] == []  # nothing named 'None...'
    trainer.save_checkpoint(str(tmp_path / 'infer_save_load_test.pkl'))
    inferrer = Inferrer(device_id=TEST_DEVICE_ID)
    inferrer.load_model(str(tmp_path / 'infer_save_load_test.pkl'))
    assert state_dicts_equal(trainer.model.get_net_state_dict(), inferrer.model.get_net_state_dict())


@pytest.mark.parametrize('options, named', [
    (dict(save_hist=True, save_every=0), 'save_hist=True: the history file'),
    (dict(save_hist=False, save_every=4), 'save_every=4: a checkpoint every 4 iterations'),
    (dict(save_hist=False, save_every=0, save_best=True), 'save_best=True: the best checkpoint'),
    (dict(save_hist=False, save_every=-1), r'save_every=9'),  # the original's once an epoch: len(train_loader) - 1
])
def test_checkpoint_name_none_where_a_file_needs_it_is_refused_before_work(make_trainer, fixture_data, options, named):
    """The original failed there at its first save, after an epoch's work, with a TypeError."""
    refused_before_work(make_trainer, fixture_data, rf'checkpoint_name=None, but this run writes files named after '
                                                    rf'it \(.*{named}', checkpoint_name=None, **options)


# ---- checkpoint_dir: what cannot be written is found before the first batch
@pytest.mark.parametrize('folder', ['/proc/lernomatic-x', '/sys/lernomatic-x'])
def test_an_unwritable_checkpoint_dir_is_refused_before_work(make_trainer, fixture_data, folder):
    """Folders no process may create (as root too): formerly a raw OSError at the first save, after an epoch."""
    refused_before_work(make_trainer, fixture_data, rf"checkpoint_dir='{folder}' cannot hold its files: .*"
                                                    'Choose a folder you can write to', checkpoint_dir=folder,
                        save_every=5)


def test_tensorboard_logs_alone_need_a_writable_checkpoint_dir(make_trainer, fixture_data):
    refused_before_work(make_trainer, fixture_data, r"cannot hold its TensorBoard logs \(logger=True\)",
                        checkpoint_dir='/proc/lernomatic-x', save_hist=False, save_every=0)


def test_a_run_that_writes_nothing_needs_no_writable_folder(make_trainer):
    """As in the original: a folder is only a problem for a run that writes into it."""
    trainer = make_trainer(checkpoint_dir='/proc/lernomatic-x', save_hist=False, save_every=0, logger=False,
                           num_epochs=1)
    trainer.train()
    assert trainer.cur_epoch == 1 and not os.path.exists('/proc/lernomatic-x')


def test_a_missing_checkpoint_dir_is_made_and_no_probe_is_left(make_trainer, tmp_path):
    folder = tmp_path / 'not' / 'yet'
    make_trainer(checkpoint_dir=str(folder), num_epochs=1, save_every=5).train()
    assert sorted(p.name for p in folder.iterdir() if p.is_file()) == [
        'best_ck.pkl', 'ck_epoch_0_iter_10.pkl', 'ck_epoch_0_iter_5.pkl', 'ck_history.pkl']


# ---- checkpoint_name: refused at construction where no file could carry it; the longest allowed one is written
@pytest.mark.parametrize('name, message', [
    ('ck\0x', 'checkpoint_name=.* holds a NUL character'),
    ('n' * (CHECKPOINT_NAME_MAX_BYTES + 1), rf'checkpoint_name is {CHECKPOINT_NAME_MAX_BYTES + 1} bytes long; at most '
                                            rf'{CHECKPOINT_NAME_MAX_BYTES} fit'),
    ('é' * (CHECKPOINT_NAME_MAX_BYTES // 2 + 1), 'bytes long'),  # the limit is in bytes, not characters
    ('\ud800', 'cannot be written as a file name'),
])
def test_a_checkpoint_name_no_file_can_carry_is_refused_at_construction(name, message, tmp_path):
    with pytest.raises(ConfigError, match=message):
        Trainer(None, checkpoint_name=name, checkpoint_dir=str(tmp_path))


def test_the_longest_checkpoint_name_allowed_is_written(make_trainer, tmp_path):
    name = 'n' * CHECKPOINT_NAME_MAX_BYTES
    trainer = make_trainer(checkpoint_name=name, num_epochs=1, save_every=5, logger=False)
    trainer.train()
    written = sorted(p.name for p in (tmp_path / 'checkpoint').iterdir())
    assert written == [f'best_{name}.pkl', f'{name}_epoch_0_iter_10.pkl', f'{name}_epoch_0_iter_5.pkl',
                       f'{name}_history.pkl']


@pytest.mark.parametrize('folder, message', [
    ('ck\0dir', 'checkpoint_dir=.* holds a NUL character'),
    ('d' * 300, 'checkpoint_dir=.* cannot be used: File name too long'),
])
def test_a_checkpoint_dir_no_file_system_accepts_is_refused_at_construction(folder, message, tmp_path):
    with pytest.raises(ConfigError, match=message):
        Trainer(None, checkpoint_dir=str(tmp_path / folder))


# ---- accelerator, devices, precision: Lightning's verdict, before the first-batch check
@pytest.mark.parametrize('options, message', [
    (dict(precision='17'), r"^precision='17': Lightning refuses it on this machine \(Precision '17' is invalid.*"
                           r'change precision$'),
    (dict(accelerator='cpu', devices=0), r"accelerator='cpu', devices=0: Lightning refuses them .* change accelerator "
                                         'or devices'),
    (dict(accelerator='abacus'), r"accelerator='abacus': Lightning refuses it .*abacus"),
    (dict(accelerator='gpu', devices=torch.cuda.device_count() + 1), r"accelerator='gpu', devices=\d+: Lightning "
                                                                    'refuses them'),
])
def test_placement_lightning_refuses_is_refused_before_work(make_trainer, fixture_data, options, message):
    refused_before_work(make_trainer, fixture_data, message, **options)


@pytest.mark.parametrize('options', [
    dict(precision='bf16-mixed'), dict(precision='32-true'), dict(precision=32),
    dict(accelerator='gpu' if ON_CUDA else 'cpu', devices=1), dict(devices='auto'),
])
def test_placement_lightning_accepts_still_trains(make_trainer, options):
    trainer = make_trainer(num_epochs=1, **options)
    trainer.train()
    assert trainer.cur_epoch == 1 and trainer.loss_iter == 10


@pytest.mark.parametrize('options, message', [
    (dict(precision=True), 'precision must be None or a Lightning precision'),
    (dict(precision=16.0), 'precision must be None or a Lightning precision'),
    (dict(accelerator=0), 'accelerator must be None, a name'),
    (dict(devices=1.5), 'devices must be None, a count, a list of device indices'),
    (dict(devices=[0, True]), 'devices must be None, a count'),
])
def test_placement_of_the_wrong_type_is_refused_at_construction(options, message, tmp_path):
    with pytest.raises(ConfigError, match=message):
        Trainer(None, checkpoint_dir=str(tmp_path), **options)
