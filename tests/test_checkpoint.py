"""The checkpoint format: we read what the original wrote, it reads what we write, errors name the problem."""

from __future__ import annotations

import collections

import pytest
import torch

from compat.codec.checkpoint import read_checkpoint
from compat.errors import CheckpointError, ConfigError
from lernomatic.train.trainer import Trainer

from conftest import ADAM_STATE_TOLERANCE, WEIGHT_TOLERANCE
from helpers import original_style_load, signature, state_dicts_equal


@pytest.fixture
def original_checkpoint(original_dir):
    return torch.load(original_dir / 'mlp_trainer_ck.pkl')


@pytest.fixture
def trained(make_trainer):
    trainer = make_trainer()
    trainer.train()
    return trainer


def test_written_checkpoint_matches_original_layout_and_values(trained, original_checkpoint, tmp_path, reference):
    fname = tmp_path / 'ours.pkl'
    trained.save_checkpoint(str(fname))
    ours = torch.load(fname)
    assert list(ours) == ['model', 'optim', 'trainer_params', 'rng_state', 'resume']  # the original's, then ours
    del ours['rng_state'], ours['resume']
    assert signature(ours) == signature(original_checkpoint)
    assert ours['trainer_params'] == original_checkpoint['trainer_params']
    # the seed-exact run ends with the plain loop's very weights and Adam state (bit for bit, same
    # process); the original's, computed on another CPU, agree within the tolerances of tests/conftest.py
    assert state_dicts_equal(ours['model']['model_state_dict'], reference[3]['state_dict'])
    theirs = original_checkpoint['model']['model_state_dict']
    for key, value in theirs.items():
        torch.testing.assert_close(ours['model']['model_state_dict'][key].cpu(), value, **WEIGHT_TOLERANCE)
    for index, state in original_checkpoint['optim']['state'].items():
        for key, value in state.items():
            assert torch.equal(ours['optim']['state'][index][key], reference[3]['optim_state'][index][key])
            torch.testing.assert_close(ours['optim']['state'][index][key].cpu(), value, **ADAM_STATE_TOLERANCE)


def test_original_reader_reads_what_we_write(trained, tmp_path):
    fname = tmp_path / 'ours.pkl'
    trained.save_checkpoint(str(fname))
    wrapper, optimizer, params = original_style_load(fname)
    assert state_dicts_equal(wrapper.net.state_dict(), trained.model.get_net_state_dict())
    assert optimizer.state_dict()['state'][0]['step'].item() == 30
    assert params['cur_epoch'] == 3


def test_trainer_none_loads_original_checkpoint(original_dir, original_checkpoint):
    trainer = Trainer(None, verbose=False)
    assert trainer.optimizer is None and trainer.train_loader is None
    trainer.load_checkpoint(str(original_dir / 'mlp_trainer_ck.pkl'))
    assert type(trainer.model).__name__ == 'MLPModel'
    assert trainer.get_trainer_params() == original_checkpoint['trainer_params']
    assert trainer.cur_epoch == 3 and trainer.num_epochs == 3 and trainer.get_learning_rate() == 0.003
    assert state_dicts_equal(trainer.get_model_params(), original_checkpoint['model']['model_state_dict'])
    assert trainer.optimizer.state_dict()['state'][0]['step'].item() == 30


def test_trainer_none_holds_no_histories_until_load_history(original_dir, expected):
    """As in the original: a checkpoint holds no histories; the history file written beside it does (README)."""
    trainer = Trainer(None, verbose=False)
    trainer.load_checkpoint(str(original_dir / 'mlp_trainer_ck.pkl'))
    assert trainer.loss_history is None and trainer.get_loss_history() is None and trainer.get_acc_history() is None
    trainer.load_history(str(original_dir / 'mlp_history.pkl'))
    assert trainer.get_loss_history().tolist() == expected['loss_history']
    assert trainer.get_acc_history().tolist() == expected['acc_history']


def test_counters_without_arrays_point_to_load_history(make_trainer, tmp_path):
    """Our checkpoints carry the run's counters: the getters that need the arrays say which file holds them."""
    trained = make_trainer(num_epochs=1)
    trained.train()
    trained.save_checkpoint(str(tmp_path / 'ck.pkl'))
    trained.save_history(str(tmp_path / 'ck_history.pkl'))
    resumed = Trainer(None, verbose=False)
    resumed.load_checkpoint(str(tmp_path / 'ck.pkl'))
    assert resumed.loss_iter == 10 and resumed.loss_history is None and resumed.get_loss_history() is None
    with pytest.raises(ConfigError, match=r'loss_history is None: a checkpoint holds no histories.*call '
                                          r"load_history\(\) with the run's <checkpoint_name>_history.pkl"):
        resumed.get_cur_loss()
    resumed.load_history(str(tmp_path / 'ck_history.pkl'))
    assert resumed.get_loss_history().tolist() == trained.get_loss_history().tolist()
    assert resumed.get_cur_acc() == trained.get_cur_acc()


def test_load_model_checkpoint_leaves_trainer_params(original_dir, make_trainer):
    trainer = make_trainer(num_epochs=7, learning_rate=0.5)
    trainer.load_model_checkpoint(str(original_dir / 'mlp_trainer_ck.pkl'))
    assert trainer.num_epochs == 7 and trainer.learning_rate == 0.5
    assert type(trainer.model).__name__ == 'MLPModel'


def test_resume_from_original_files_and_train_on(original_dir, expected, fixture_data, tmp_path):
    trainer = Trainer(None, verbose=False, num_workers=0, checkpoint_dir=str(tmp_path))
    trainer.load_checkpoint(str(original_dir / 'mlp_trainer_ck.pkl'))
    trainer.set_train_dataset(fixture_data.make(200, 11))
    trainer.set_val_dataset(fixture_data.make(60, 12))
    trainer._init_history()
    trainer.load_history(str(original_dir / 'mlp_history.pkl'))
    trainer.set_num_epochs(5)
    assert len(trainer.loss_history) == 50 and len(trainer.acc_history) == 15
    trainer.train()
    assert trainer.cur_epoch == 5 and trainer.loss_iter == 50 and trainer.acc_iter == 5
    assert trainer.get_loss_history()[:30].tolist() == expected['loss_history']
    assert trainer.get_acc_history()[:3].tolist() == expected['acc_history']
    assert trainer.get_acc_history()[-1] > 0.5
    assert (tmp_path / 'ck_history.pkl').is_file()


def test_checkpoint_with_model_args_round_trips(tmp_path):
    import extra_nets
    trainer = Trainer(extra_nets.TinyWithArgs(num_in=6, num_out=2), verbose=False)
    fname = tmp_path / 'args.pkl'
    trainer.save_checkpoint(str(fname))
    restored = Trainer(None, verbose=False)
    restored.load_checkpoint(str(fname))
    assert restored.model.net.fc1.in_features == 6
    assert state_dicts_equal(restored.get_model_params(), trainer.get_model_params())


@pytest.mark.parametrize('content, message', [
    ({'state_dict': {}, 'pytorch-lightning_version': '2.6.6', 'loops': {}}, 'a Lightning .ckpt'),
    (collections.OrderedDict(weight=torch.zeros(2)), 'a bare state dict'),
    ([1, 2, 3], 'a list, not a dict'),
    ({'model': {}, 'optim': {}}, 'missing trainer_params'),
])
def test_not_a_checkpoint_says_what_it_is(tmp_path, content, message):
    fname = tmp_path / 'other.pkl'
    torch.save(content, fname)
    with pytest.raises(CheckpointError, match=message):
        read_checkpoint(fname)
    with pytest.raises(CheckpointError, match=message):
        Trainer(None, verbose=False).load_checkpoint(str(fname))


def test_missing_model_key_is_named(original_checkpoint, tmp_path):
    del original_checkpoint['model']['module_name']
    fname = tmp_path / 'no_module_name.pkl'
    torch.save(original_checkpoint, fname)
    with pytest.raises(CheckpointError, match='missing key.*module_name'):
        Trainer(None, verbose=False).load_checkpoint(str(fname))


def test_unimportable_model_names_the_path(original_checkpoint, tmp_path):
    original_checkpoint['model']['model_import_path'] = 'no_such_package.nets'
    fname = tmp_path / 'moved.pkl'
    torch.save(original_checkpoint, fname)
    with pytest.raises(CheckpointError, match=r"\['model'\]\['model_import_path'\].*would import module "
                                              "'no_such_package.nets', which this program has not imported"):
        Trainer(None, verbose=False).load_checkpoint(str(fname))
    with pytest.raises(CheckpointError, match="cannot import module 'no_such_package.nets'"):  # trusted, yet absent
        Trainer(None, verbose=False).load_checkpoint(str(fname), trusted_modules=['no_such_package'])


def test_state_dict_mismatch_names_tensors(original_checkpoint, tmp_path):
    original_checkpoint['model']['model_state_dict']['body.2.weight'] = torch.zeros(5, 24)
    fname = tmp_path / 'mismatch.pkl'
    torch.save(original_checkpoint, fname)
    with pytest.raises(CheckpointError, match=r'body\.2\.weight: file \(5, 24\) vs model \(3, 24\)'):
        Trainer(None, verbose=False).load_checkpoint(str(fname))


def test_a_failed_load_leaves_the_trainer_as_it_was(make_trainer, original_checkpoint, tmp_path):
    trainer = make_trainer(num_epochs=7)
    model, optimizer = trainer.model, trainer.optimizer
    original_checkpoint['model']['model_state_dict']['body.2.weight'] = torch.zeros(5, 24)
    original_checkpoint['trainer_params']['num_epochs'] = 99
    fname = tmp_path / 'mismatch.pkl'
    torch.save(original_checkpoint, fname)
    with pytest.raises(CheckpointError):
        trainer.load_checkpoint(str(fname))
    assert trainer.model is model and trainer.optimizer is optimizer and trainer.num_epochs == 7


def test_the_originals_bare_torch_load_reads_our_checkpoint(trained, tmp_path):
    """On torch >= 2.6 the original's `torch.load(fname)` is weights-only and allows no numpy: our extra keys
    (rng_state, resume) must hold tensors and plain values only, so the original still reads the file."""
    import subprocess
    import sys
    fname = tmp_path / 'ours.pkl'
    trained.save_checkpoint(str(fname))
    code = ('import sys, torch; data = torch.load(sys.argv[1]); '
            'print(sorted(data), "numpy" in sys.modules and "lernomatic" in sys.modules)')
    run = subprocess.run([sys.executable, '-c', code, str(fname)], capture_output=True, text=True, cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.split('] ')[0] == "['model', 'optim', 'resume', 'rng_state', 'trainer_params'"
    assert run.stdout.strip().endswith('False')  # lernomatic was not imported: nothing registered numpy
