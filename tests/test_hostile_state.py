"""Files whose values have the right types but would break the run that loads them (red-team findings).

Each is refused when loaded (or, where the fault only shows against the data, when train() starts,
before any batch trains), with the file and field named, and the trainer left as it was.
"""

from __future__ import annotations

import copy
import glob
import struct

import numpy as np
import pytest
import torch

from compat.errors import CheckpointError
from lernomatic.train.trainer import Trainer

from conftest import ORIGINAL


def write(tmp_path, name, data):
    path = tmp_path / name
    torch.save(data, path)
    return path


def original_checkpoint():
    return torch.load(ORIGINAL / 'mlp_trainer_ck.pkl')


def unchanged_after_refusal(trainer, load, pattern):
    """Run `load`, expect a CheckpointError matching `pattern`, and check the trainer kept its parts."""
    parts = {key: getattr(trainer, key) for key in ('model', 'optimizer', 'num_epochs', 'batch_size', 'loss_history',
                                                    'loss_iter', 'cur_epoch', 'train_loader')}
    generator = torch.get_rng_state()
    with pytest.raises(CheckpointError, match=pattern):
        load()
    assert all(getattr(trainer, key) is value or getattr(trainer, key) == value for key, value in parts.items())
    assert not trainer.loss_history[parts['loss_iter']:].any()
    assert torch.equal(torch.get_rng_state(), generator)


# ---- random generator states: torch's own check lets a state read past its array; degenerate ones hang
def _torch_state(left=None, seeded=None, position=None, words=None):
    raw = bytearray(torch.get_rng_state().numpy().tobytes())
    seed, old_left, old_seeded, old_next = struct.unpack_from('<QiiQ', raw, 0)
    struct.pack_into('<QiiQ', raw, 0, seed, old_left if left is None else left,
                     old_seeded if seeded is None else seeded, old_next if position is None else position)
    if words is not None:
        raw[24:24 + 624 * 8] = bytes(624 * 8)
    return torch.frombuffer(raw, dtype=torch.uint8).clone()


@pytest.mark.parametrize('state, pattern', [
    (_torch_state(left=624, position=624), r"'torch' is not a generator state torch wrote .*left=624, next=624"),
    (_torch_state(left=0), r'left=0'),
    (_torch_state(seeded=0), r'seeded=0'),
    (_torch_state(words='zero'), r'all zero'),
], ids=['reads past the array', 'left 0', 'not seeded', 'all-zero words'])
def test_torch_generator_states_torch_would_misuse_are_refused(make_trainer, tmp_path, state, pattern):
    data = original_checkpoint()
    data['rng_state'] = {'torch': state}
    trainer = make_trainer(num_epochs=7)
    path = write(tmp_path, 'rng.pkl', data)
    unchanged_after_refusal(trainer, lambda: trainer.load_checkpoint(str(path)), r"\['rng_state'\]: .*" + pattern)


def test_all_zero_numpy_and_python_states_are_refused(make_trainer, tmp_path):
    trainer = make_trainer(num_epochs=7)
    numpy_zero = {'algorithm': 'MT19937', 'keys': torch.zeros(624, dtype=torch.int64), 'pos': 624, 'has_gauss': 0,
                  'cached_gaussian': 0.0}
    for part, value in (('numpy', numpy_zero), ('python', (3, (0,) * 624 + (624,), None))):
        data = original_checkpoint()
        data['rng_state'] = {part: value}
        path = write(tmp_path, f'{part}.pkl', data)
        unchanged_after_refusal(trainer, lambda p=path: trainer.load_checkpoint(str(p)), f"'{part}'.*not all zero")


# ---- where to resume: within the run and the data
def _mid_epoch_checkpoint(make_trainer, tmp_path):
    make_trainer(save_every=3, num_epochs=3).train()
    return torch.load(sorted(glob.glob(str(tmp_path / 'checkpoint' / 'ck_epoch_0_iter_3*.pkl')))[0])


def test_a_resume_point_past_the_epoch_is_refused_before_training(make_trainer, tmp_path):
    data = _mid_epoch_checkpoint(make_trainer, tmp_path)
    data['resume']['batches_done'] = 10 ** 6
    trainer = make_trainer(num_epochs=3)
    trainer.load_checkpoint(str(write(tmp_path, 'skip.pkl', data)))
    weights = [p.detach().clone() for p in trainer.model.get_model_parameters()]
    with pytest.raises(CheckpointError, match='written after batch 1000000 of epoch 0, but the training loader '
                                              'has 10 batches'):
        trainer.train()
    assert all(torch.equal(a, b) for a, b in zip(weights, trainer.model.get_model_parameters(), strict=True))


def test_resume_counters_past_the_histories_are_not_applied(make_trainer, tmp_path, caplog):
    """A position this trainer cannot continue from (a stranger's counter, or a run on other data) is not
    restored: the model, optimizer and settings load as the original loaded them, and the log says why."""
    data = _mid_epoch_checkpoint(make_trainer, tmp_path)
    data['resume']['counters'] = {'loss_iter': 10 ** 12}
    trainer = make_trainer(num_epochs=3)
    path = write(tmp_path, 'counters.pkl', data)
    with caplog.at_level('WARNING', logger='lernomatic'):
        trainer.load_checkpoint(str(path))
    assert "['resume']['counters']['loss_iter']: 1000000000000 is past the end of loss_history" in caplog.text
    assert trainer.loss_iter == 0 and trainer._run_state.resume is None
    assert not torch.equal(torch.get_rng_state(), data['rng_state']['torch'])  # nor the file's generators


def test_trainer_params_that_leave_no_batches_are_refused(make_trainer, tmp_path):
    data = original_checkpoint()
    data['trainer_params'].update(batch_size=10 ** 9)
    trainer = make_trainer(num_epochs=7)
    path = write(tmp_path, 'batch.pkl', data)
    with pytest.raises(CheckpointError, match='no batches'):
        trainer.load_checkpoint(str(path))
    assert trainer.batch_size != 10 ** 9 and len(trainer.train_loader) > 0


def test_a_longer_run_in_the_file_gets_room_in_the_histories(make_trainer, tmp_path):
    data = original_checkpoint()
    data['trainer_params'].update(num_epochs=5, cur_epoch=0)
    trainer = make_trainer(num_epochs=2)
    trainer.load_checkpoint(str(write(tmp_path, 'longer.pkl', data)))
    assert trainer.num_epochs == 5 and len(trainer.loss_history) == 5 * len(trainer.train_loader)
    trainer.train()
    assert trainer.cur_epoch == 5 and np.isfinite(trainer.get_loss_history()).all()


# ---- history values: kept in the trainer's dtype, counters against the array that is kept
@pytest.mark.parametrize('dtype', [np.int64, np.bool_, np.float16])
def test_history_arrays_take_the_trainers_float_dtype(make_trainer, tmp_path, dtype):
    data = torch.load(ORIGINAL / 'mlp_history.pkl')
    data['loss_history'] = data['loss_history'].astype(dtype)
    trainer = make_trainer()
    trainer.load_history(str(write(tmp_path, 'dtype.pkl', data)))
    assert trainer.loss_history.dtype == np.float64  # an int array would hide a NaN from the stop rule


def test_a_counter_is_checked_against_the_array_the_trainer_keeps(make_trainer, tmp_path):
    data = torch.load(ORIGINAL / 'mlp_history.pkl')
    data.update(loss_history=None, loss_iter=10 ** 6)
    trainer = make_trainer()
    path = write(tmp_path, 'none.pkl', data)
    unchanged_after_refusal(trainer, lambda: trainer.load_history(str(path)),
                            r"'loss_iter' is 1000000 but 'loss_history' holds")


# ---- weights: copied into the model's own parameters, never assigned
def test_state_dict_metadata_cannot_make_a_file_tensor_a_live_parameter(make_trainer, tmp_path):
    data = original_checkpoint()
    weights = data['model']['model_state_dict']
    weights._metadata = {'': {'version': 1, 'assign_to_params_buffers': True}}
    trainer = make_trainer()
    parameters = list(trainer.model.get_net().parameters())
    trainer.model.set_params(data['model'])
    net = trainer.model.get_net()
    for name, tensor in net.state_dict().items():
        assert torch.equal(tensor, weights[name])
        assert tensor.data_ptr() != weights[name].data_ptr(), name  # copied, not the file's tensor
    del parameters


def test_complex_weights_for_a_real_model_are_refused(make_trainer, tmp_path):
    data = original_checkpoint()
    name = next(iter(data['model']['model_state_dict']))
    data['model']['model_state_dict'][name] = data['model']['model_state_dict'][name].to(torch.complex64)
    trainer = make_trainer()
    path = write(tmp_path, 'complex.pkl', data)
    with pytest.raises(CheckpointError, match=f'{name}.*complex64'):
        trainer.load_checkpoint(str(path))


def test_a_file_cannot_turn_minimising_into_maximising(make_trainer, tmp_path):
    data = original_checkpoint()
    data['optim']['param_groups'][0]['maximize'] = True
    trainer = make_trainer()
    path = write(tmp_path, 'maximize.pkl', data)
    unchanged_after_refusal(trainer, lambda: trainer.load_checkpoint(str(path)),
                            r"\['optim'\]\['param_groups'\]\[0\]\['maximize'\]: True")


def test_optimizer_hyperparameters_go_through_torchs_checks(make_trainer, tmp_path):
    for key, value, pattern in [('lr', -0.003, 'Invalid learning rate'), ('betas', (0.9,), 'not valid for Adam')]:
        data = original_checkpoint()
        data['optim']['param_groups'][0][key] = value
        trainer = make_trainer()
        path = write(tmp_path, f'{key}.pkl', data)
        unchanged_after_refusal(trainer, lambda p=path, t=trainer: t.load_checkpoint(str(p)), pattern)


def test_a_good_file_still_loads_and_resumes(make_trainer, tmp_path):
    """The refusals above are of hostile values: the same checkpoint unchanged resumes the run."""
    data = _mid_epoch_checkpoint(make_trainer, tmp_path)
    trainer = make_trainer(num_epochs=3)
    trainer.load_checkpoint(str(write(tmp_path, 'good.pkl', copy.deepcopy(data))))
    trainer.train()
    assert trainer.cur_epoch == 3


def test_original_checkpoint_into_a_bare_trainer(original_dir):
    Trainer(None, verbose=False).load_checkpoint(str(original_dir / 'mlp_trainer_ck.pkl'))
