"""Trainers that build their own optimizer, as the original's zoo did, and the files they write.

The original's `MNISTTrainer` and `CIFAR10Trainer` build SGD in `_init_optimizer` while
`trainer_params['optim_function']` keeps 'Adam': their checkpoints hold SGD's state. Every check on a
loaded file must accept them (and still refuse what no optimizer keeps).
"""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
from zoo_trainers import MNISTStyleTrainer, RMSpropStyleTrainer, original_save_checkpoint  # noqa: I001

from compat.errors import CheckpointError
from lernomatic.train.trainer import Trainer


@pytest.fixture
def zoo_options(tmp_path, fixture_data, expected):
    return dict(num_epochs=2, batch_size=20, learning_rate=0.01, momentum=0.9, shuffle=False,
                train_dataset=fixture_data.make(200, 11), val_dataset=fixture_data.make(60, 12),
                save_every=0, verbose=False, checkpoint_dir=str(tmp_path / 'checkpoint'))


def _trained(trainer_class, fixture_nets, options):
    torch.manual_seed(7)
    trainer = trainer_class(fixture_nets.MLPModel(), **options)
    trainer.train()
    return trainer


def _same_weights(a, b):
    return all(torch.equal(x, y) for x, y in zip(a.model.get_model_parameters(), b.model.get_model_parameters(),
                                                 strict=True))


@pytest.mark.parametrize('trainer_class, state_key', [(MNISTStyleTrainer, 'momentum_buffer'),
                                                      (RMSpropStyleTrainer, 'square_avg')])
@pytest.mark.parametrize('writer', ['original', 'ours'])
def test_a_zoo_checkpoint_loads_into_the_trainer_class_that_wrote_it(trainer_class, state_key, writer, fixture_nets,
                                                                     zoo_options, tmp_path):
    source = _trained(trainer_class, fixture_nets, zoo_options)
    fname = str(tmp_path / 'zoo.pkl')
    if writer == 'original':
        original_save_checkpoint(source, fname)
    else:
        source.save_checkpoint(fname)
    assert torch.load(fname)['trainer_params']['optim_function'] == 'Adam'  # the base default, as the zoo kept it
    loaded = trainer_class(None, verbose=False)
    loaded.load_checkpoint(fname)
    assert type(loaded.optimizer) is type(source.optimizer)
    assert _same_weights(loaded, source)
    theirs, ours = source.optimizer.state_dict(), loaded.optimizer.state_dict()
    for index, entry in theirs['state'].items():
        assert torch.equal(ours['state'][index][state_key], entry[state_key])
    assert ours['param_groups'][0]['momentum'] == theirs['param_groups'][0]['momentum']


def test_a_loaded_zoo_trainer_trains_on_like_the_uninterrupted_run(fixture_nets, zoo_options, tmp_path):
    """SGD's momentum carries over: two epochs, save the original way, load, one more = three at once."""
    whole = _trained(MNISTStyleTrainer, fixture_nets, {**zoo_options, 'num_epochs': 3})
    first = _trained(MNISTStyleTrainer, fixture_nets, zoo_options)
    original_save_checkpoint(first, str(tmp_path / 'two.pkl'))
    resumed = MNISTStyleTrainer(fixture_nets.MLPModel(), **{**zoo_options, 'num_epochs': 3})
    resumed.load_checkpoint(str(tmp_path / 'two.pkl'))
    resumed.set_num_epochs(3)
    assert resumed.cur_epoch == 2  # from the file's trainer_params
    resumed.train()
    # the histories were never in the checkpoint (the original kept them in the history file): the third
    # epoch's losses are the first this trainer records
    np.testing.assert_array_equal(resumed.get_loss_history(), whole.get_loss_history()[20:30])
    assert _same_weights(resumed, whole)


def test_a_zoo_checkpoint_loads_into_a_trainer_with_other_data(fixture_nets, fixture_data, zoo_options, tmp_path,
                                                              caplog):
    """The run's position does not fit a trainer with half the data: loaded as the original loaded, and said."""
    source = _trained(MNISTStyleTrainer, fixture_nets, zoo_options)
    source.save_checkpoint(str(tmp_path / 'zoo.pkl'))
    other = MNISTStyleTrainer(fixture_nets.MLPModel(), **{**zoo_options, 'train_dataset': fixture_data.make(100, 11)})
    with caplog.at_level(logging.WARNING, logger='lernomatic'):
        other.load_checkpoint(str(tmp_path / 'zoo.pkl'))
    assert _same_weights(other, source) and type(other.optimizer) is torch.optim.SGD
    assert "['resume']['counters']['loss_iter']: 20 is past the end of loss_history (10 values)" in caplog.text
    assert other.loss_iter == 0 and other._run_state.resume is None
    other.set_num_epochs(3)
    other.train()  # epoch 3 (cur_epoch came from the file), recorded from its own histories' start as the original did
    assert other.cur_epoch == 3 and len(other.get_loss_history()) == 5 and np.isfinite(other.get_loss_history()).all()


def test_a_zoo_checkpoint_in_a_base_trainer_loads_the_model_and_starts_adam_afresh(fixture_nets, zoo_options,
                                                                                  tmp_path, caplog):
    source = _trained(MNISTStyleTrainer, fixture_nets, zoo_options)
    original_save_checkpoint(source, str(tmp_path / 'zoo.pkl'))
    base = Trainer(None, verbose=False)
    with caplog.at_level(logging.WARNING, logger='lernomatic'):
        base.load_checkpoint(str(tmp_path / 'zoo.pkl'))
    assert _same_weights(base, source)
    assert type(base.optimizer) is torch.optim.Adam and base.optimizer.state_dict()['state'] == {}
    assert "SGD's state (momentum_buffer), but this trainer builds Adam" in caplog.text


def test_state_no_optimizer_keeps_is_still_refused(fixture_nets, zoo_options, tmp_path):
    source = _trained(MNISTStyleTrainer, fixture_nets, zoo_options)
    original_save_checkpoint(source, str(tmp_path / 'zoo.pkl'))
    data = torch.load(tmp_path / 'zoo.pkl')
    data['optim']['state'][0]['payload'] = torch.zeros(3)
    torch.save(data, tmp_path / 'evil.pkl')
    loaded = MNISTStyleTrainer(None, verbose=False)
    with pytest.raises(CheckpointError, match=r"\['optim'\]\['state'\]\[0\]\['payload'\]: SGD keeps no such state"):
        loaded.load_checkpoint(str(tmp_path / 'evil.pkl'))
    assert loaded.model is None and loaded.optimizer is None


def test_sgd_state_of_the_wrong_shape_is_refused_against_the_built_optimizer(fixture_nets, zoo_options, tmp_path):
    source = _trained(MNISTStyleTrainer, fixture_nets, zoo_options)
    original_save_checkpoint(source, str(tmp_path / 'zoo.pkl'))
    data = torch.load(tmp_path / 'zoo.pkl')
    data['optim']['state'][0]['momentum_buffer'] = torch.zeros(2, 2)
    torch.save(data, tmp_path / 'bad.pkl')
    with pytest.raises(CheckpointError, match=r"\['optim'\]\['state'\]\[0\]\['momentum_buffer'\]: shape \(2, 2\)"):
        MNISTStyleTrainer(None, verbose=False).load_checkpoint(str(tmp_path / 'bad.pkl'))


def test_a_file_does_not_turn_sgd_into_gradient_ascent(fixture_nets, zoo_options, tmp_path):
    source = _trained(MNISTStyleTrainer, fixture_nets, zoo_options)
    original_save_checkpoint(source, str(tmp_path / 'zoo.pkl'))
    data = torch.load(tmp_path / 'zoo.pkl')
    data['optim']['param_groups'][0]['maximize'] = True
    torch.save(data, tmp_path / 'ascent.pkl')
    with pytest.raises(CheckpointError, match=r"\['maximize'\]: True, but the trainer builds SGD with maximize=False"):
        MNISTStyleTrainer(None, verbose=False).load_checkpoint(str(tmp_path / 'ascent.pkl'))


def test_lernomatic_convert_keeps_a_zoo_checkpoints_sgd_state_both_ways(fixture_nets, zoo_options, tmp_path):
    """Converting is a change of format: the SGD state the zoo trainer wrote goes into the .ckpt and back."""
    from test_cli import TRUST, lernomatic
    source = _trained(MNISTStyleTrainer, fixture_nets, zoo_options)
    original_save_checkpoint(source, str(tmp_path / 'zoo.pkl'))
    lernomatic('convert', tmp_path / 'zoo.pkl', tmp_path / 'zoo.ckpt', *TRUST)
    lernomatic('convert', tmp_path / 'zoo.ckpt', tmp_path / 'back.pkl', *TRUST)
    back = MNISTStyleTrainer(None, verbose=False)
    back.load_checkpoint(str(tmp_path / 'back.pkl'))
    theirs = source.optimizer.state_dict()['state']
    assert all(torch.equal(back.optimizer.state_dict()['state'][i]['momentum_buffer'], theirs[i]['momentum_buffer'])
               for i in theirs)
    assert _same_weights(back, source)
