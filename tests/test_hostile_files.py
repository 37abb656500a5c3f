"""Files from strangers: hostile checkpoints and history files, through every loader.

Each hostile file holds only strings, numbers, dicts and tensors, so it passes weights-only
loading: the attack is in what its fields name. For each one, through each entry point: no code
runs (the marker is never created), no file outside the run's folder changes, the error is a
CheckpointError naming the file and the field, and a trainer that refused the file is unchanged.
"""

from __future__ import annotations

import copy
import sys

import pytest
import torch

from compat.codec.lightning_ckpt import lightning_from_lernomatic
from compat.errors import CheckpointError
from lernomatic.infer.inferrer import Inferrer
from lernomatic.models.common import LernomaticModel
from lernomatic.train.trainer import Trainer

from conftest import ORIGINAL


@pytest.fixture
def victims(tmp_path):
    """A marker a payload would create, a file it would empty, a folder it would delete."""
    victim_file = tmp_path / 'victim.txt'
    victim_file.write_text('precious')
    victim_dir = tmp_path / 'victim_dir'
    victim_dir.mkdir()
    (victim_dir / 'keep.txt').write_text('keep')
    return {'marker': tmp_path / 'PWNED', 'file': victim_file, 'dir': victim_dir}


def nested(depth):
    value = [1]
    for _ in range(depth):
        value = [value]
    return value


def model_payloads(v):
    """(description, {model field: value}) for attacks on the model metadata."""
    shell = f'touch {v["marker"]}'
    return [
        ('subprocess.Popen shell', dict(module_import_path='subprocess', module_name='Popen',
                                        model_args={'args': shell, 'shell': True})),
        ('os.system', dict(module_import_path='os', module_name='system', model_args={'command': shell})),
        ('builtins.open empties a file', dict(module_import_path='builtins', module_name='open',
                                              model_args={'file': str(v['file']), 'mode': 'w'})),
        ('shutil.rmtree', dict(module_import_path='shutil', module_name='rmtree', model_args={'path': str(v['dir'])})),
        ('sys.exit', dict(module_import_path='sys', module_name='exit', model_args={})),
        ('os.fork', dict(module_import_path='os', module_name='fork')),
        ('breakpoint', dict(module_import_path='builtins', module_name='breakpoint')),
        ('wrapper is Popen', dict(model_import_path='subprocess', model_name='Popen')),
        ('wrapper is os.system', dict(model_import_path='os', model_name='system')),
        ('a file in the working directory', dict(module_import_path='evil.py', module_name='Net')),
        ('a not yet imported stdlib module', dict(module_import_path='antigravity', module_name='Net')),
        ('relative name', dict(module_import_path='..evil', module_name='Net')),
        ('path separators', dict(module_import_path='../../tmp/evil', module_name='Net')),
        ('absolute file path', dict(module_import_path=f'{v["marker"].parent}/evil.py', module_name='Net')),
        ('a __main__ module', dict(module_import_path='unittest.__main__', module_name='TestProgram')),
        ('a package __init__ as a module', dict(module_import_path='lernomatic.models.__init__',
                                                module_name='LernomaticModel')),
        ('dunder class name', dict(module_name='__class__')),
        ('not a class', dict(module_import_path='torch', module_name='load')),
        ('a class that is no nn.Module', dict(module_import_path='collections', module_name='OrderedDict')),
        ('an nn.Module the wrapper does not build', dict(
            module_import_path='torch.nn', module_name='Linear',
            model_args={'in_features': 10 ** 6, 'out_features': 10 ** 6})),
        ('model_args holds a tensor', dict(model_args={'num_in': torch.tensor(12)})),
        ('model_args not a dict', dict(model_args=[1, 2])),
        ('model_args too big', dict(model_args={f'k{i}': i for i in range(20_000)})),
        ('model_args nested deep', dict(model_args={'a': nested(40)})),
        ('module name not a string', dict(module_name=7)),
        ('state dict of strings', dict(model_state_dict={'body.0.weight': 'rm -rf /'})),
    ]


def write(tmp_path, name, data):
    path = tmp_path / 'files' / name
    path.parent.mkdir(exist_ok=True)
    torch.save(data, path)
    return path


def hostile_checkpoint(tmp_path, fields, index):
    data = torch.load(ORIGINAL / 'mlp_trainer_ck.pkl')
    data['model'].update(copy.deepcopy(fields))
    return write(tmp_path, f'model_attack_{index}.pkl', data)


@pytest.fixture
def evil_module_in_cwd(tmp_path, monkeypatch, victims):
    """An `evil.py` in the working directory, on sys.path as it is in `python -c` and notebooks."""
    (tmp_path / 'evil.py').write_text(f'open({str(victims["marker"])!r}, "w").close()\nimport torch\n'
                                      'class Net(torch.nn.Module):\n    pass\n')
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, 'evil', raising=False)


def entry_points(make_trainer, tmp_path):
    """Every way a checkpoint is read: each call must refuse the file."""
    def existing_trainer(path):
        trainer = make_trainer()
        before = (trainer.model, trainer.optimizer, trainer.get_trainer_params(), dict(vars(trainer)))
        with pytest.raises(CheckpointError) as refusal:
            trainer.load_checkpoint(str(path))
        assert trainer.model is before[0] and trainer.optimizer is before[1]
        assert trainer.get_trainer_params() == before[2] and set(vars(trainer)) == set(before[3])
        raise refusal.value

    def converted_ckpt(path):
        data = torch.load(path)
        ckpt = tmp_path / 'files' / (path.stem + '.ckpt')
        torch.save(lightning_from_lernomatic(data, path), ckpt)
        Inferrer().load_model(str(ckpt))

    return {
        'Trainer(None).load_checkpoint': lambda p: Trainer(None, verbose=False).load_checkpoint(str(p)),
        'trainer.load_checkpoint': existing_trainer,
        'trainer.load_model_checkpoint': lambda p: make_trainer().load_model_checkpoint(str(p)),
        'LernomaticModel.load_checkpoint': lambda p: LernomaticModel().load_checkpoint(str(p)),
        'Inferrer.load_model': lambda p: Inferrer().load_model(str(p)),
        'Inferrer.load_model(.ckpt)': converted_ckpt,
        'zoo-style torch.load + set_params': lambda p: type(make_trainer().model)().set_params(torch.load(p)['model']),
    }


def test_hostile_model_metadata_runs_nothing_through_every_loader(make_trainer, tmp_path, victims,
                                                                  evil_module_in_cwd):
    loaders = entry_points(make_trainer, tmp_path)
    for index, (what, fields) in enumerate(model_payloads(victims)):
        path = hostile_checkpoint(tmp_path, fields, index)
        for name, load in loaders.items():
            with pytest.raises(CheckpointError) as refusal:
                load(path)
            message = str(refusal.value)
            named = name.startswith('zoo') or path.stem in message  # a dict from the user's own torch.load: no file
            field = "['state_dict']" if name.endswith('(.ckpt)') and "['state_dict']" in message else "['model']"
            assert named and field in message, (what, name, message)  # a .ckpt's weights sit under state_dict
    assert not victims['marker'].exists(), 'a payload ran'
    assert victims['file'].read_text() == 'precious' and (victims['dir'] / 'keep.txt').is_file()
    assert 'evil' not in sys.modules and 'antigravity' not in sys.modules


def test_the_refusal_names_the_field_and_the_reason(tmp_path, victims):
    cases = {
        'subprocess.Popen shell': r"\['model'\]\['module_name'\].*subprocess\.Popen is a class "
                                  r'subprocess\.Popen, not a subclass of torch\.nn\.modules\.module\.Module',
        'a file in the working directory': r"\['model'\]\['module_import_path'\].*would import module 'evil'",
        'path separators': r"\['model'\]\['module_import_path'\].*path separators",
        'a __main__ module': r'a __main__ module runs a program',
        'a package __init__ as a module': r'__init__ is a package file, not a module',
        'an nn.Module the wrapper does not build': r'torch\.nn\.modules\.linear\.Linear is not the network of '
                                                   r'fixture_nets\.MLPModel',
        'model_args holds a tensor': r"\['model_args'\]\['num_in'\]: a torch\.Tensor",
    }
    payloads = dict(model_payloads(victims))
    for index, (what, pattern) in enumerate(cases.items()):
        path = hostile_checkpoint(tmp_path, payloads[what], 100 + index)
        with pytest.raises(CheckpointError, match=pattern):
            Trainer(None, verbose=False).load_checkpoint(str(path))


def test_trusting_a_module_does_not_skip_the_checks(tmp_path, victims):
    """Even with torch trusted, a Linear of a million by a million is refused before any memory is taken."""
    fields = dict(model_payloads(victims))['an nn.Module the wrapper does not build']
    path = hostile_checkpoint(tmp_path, fields, 200)
    with pytest.raises(CheckpointError, match=r'state dict does not fit Linear: missing weight, bias; unexpected'):
        Trainer(None, verbose=False).load_checkpoint(str(path), trusted_modules=['torch'])


def test_trusted_module_from_the_environment(tmp_path, monkeypatch):
    """A module nobody imported loads once trusted, and not before."""
    (tmp_path / 'my_nets_pkg').mkdir()
    (tmp_path / 'my_nets_pkg' / '__init__.py').write_text('')
    (tmp_path / 'my_nets_pkg' / 'nets.py').write_text((ORIGINAL / 'fixture_nets.py').read_text().replace(
        "'fixture_nets'", "'my_nets_pkg.nets'"))
    monkeypatch.syspath_prepend(str(tmp_path))
    data = torch.load(ORIGINAL / 'mlp_trainer_ck.pkl')
    data['model'].update(model_import_path='my_nets_pkg.nets', module_import_path='my_nets_pkg.nets')
    path = write(tmp_path, 'own_package.pkl', data)
    with pytest.raises(CheckpointError, match='my_nets_pkg.nets.*not imported.*LERNOMATIC_TRUSTED_MODULES=my_nets_pkg'):
        Trainer(None, verbose=False).load_checkpoint(str(path))
    assert 'my_nets_pkg.nets' not in sys.modules
    monkeypatch.setenv('LERNOMATIC_TRUSTED_MODULES', 'other_pkg,my_nets_pkg')
    trainer = Trainer(None, verbose=False)
    trainer.load_checkpoint(str(path))
    assert type(trainer.model).__module__ == 'my_nets_pkg.nets'
    monkeypatch.delitem(sys.modules, 'my_nets_pkg.nets')
    monkeypatch.delitem(sys.modules, 'my_nets_pkg')


@pytest.mark.parametrize('field, value, pattern', [
    ('learning_rate', 'x', r"\['trainer_params'\]\['learning_rate'\]: 'x' must be a finite number"),
    ('num_epochs', -1, r"\['num_epochs'\]: -1 must be an integer from 1 to 1,000,000"),
    ('loss_function', 'Linear', r"\['loss_function'\]: 'Linear' loss_function='Linear' is not a loss class"),
    ('optim_function', 'Optimizer', r"\['optim_function'\].*is not an optimizer"),
    ('cur_epoch', 1e20, r"\['cur_epoch'\]: 1e\+20 must be an integer from 0 to 1,000,000"),
    ('shuffle', 'yes', r"\['shuffle'\]: 'yes' must be True or False"),
])
def test_bad_trainer_params_are_refused_and_change_nothing(make_trainer, tmp_path, field, value, pattern):
    data = torch.load(ORIGINAL / 'mlp_trainer_ck.pkl')
    data['trainer_params'][field] = value
    path = write(tmp_path, f'params_{field}.pkl', data)
    trainer = make_trainer(num_epochs=7)
    model, optimizer = trainer.model, trainer.optimizer
    with pytest.raises(CheckpointError, match=pattern):
        trainer.load_checkpoint(str(path))
    assert trainer.model is model and trainer.optimizer is optimizer and trainer.num_epochs == 7


@pytest.mark.parametrize('rng_state, pattern', [
    ({'torch': 'x'}, r"\['rng_state'\].*'torch' must be a 1-d uint8 tensor"),
    ({'torch': torch.zeros(3, dtype=torch.uint8)}, r"'torch' holds 3 bytes"),
    ({'numpy': {'algorithm': 'MT19937', 'keys': torch.zeros(5, dtype=torch.int64), 'pos': 0, 'has_gauss': 0,
                'cached_gaussian': 0.0}}, r"'numpy' keys must be 624 integers"),
    ({'python': (3, (1, 2), None)}, r"'python' must be version 3 with 625 integers"),
    ({'evil': 1}, r"unknown part\(s\) \['evil'\]"),
    ('not a dict', r'must be a dict'),
])
def test_bad_rng_state_is_refused_before_anything_changes(make_trainer, tmp_path, rng_state, pattern):
    data = torch.load(ORIGINAL / 'mlp_trainer_ck.pkl')
    data['rng_state'] = rng_state
    path = write(tmp_path, 'bad_rng.pkl', data)
    trainer = make_trainer(num_epochs=7)
    model, optimizer, generator = trainer.model, trainer.optimizer, torch.get_rng_state()
    with pytest.raises(CheckpointError, match=pattern):
        trainer.load_checkpoint(str(path))
    assert trainer.model is model and trainer.optimizer is optimizer and trainer.num_epochs == 7
    assert torch.equal(torch.get_rng_state(), generator)


@pytest.mark.parametrize('mutate, pattern', [
    (lambda o: o['state'][0].update(exp_avg=torch.zeros(5, 5)), r"\['optim'\]\['state'\]\[0\]\['exp_avg'\]: shape"),
    (lambda o: o['param_groups'][0].update(lr=[torch.zeros(9)]), r"\['param_groups'\]\[0\]\['lr'\]"),
    (lambda o: o['param_groups'][0].update(params=[0, 1]), r"\['state'\]\[2\]: not the state of one of the"),
    (lambda o: o.update(state={99: {}}), r"\['state'\]\[99\]: not the state of one of the parameters"),
])
def test_bad_optimizer_state_is_refused(make_trainer, tmp_path, mutate, pattern):
    data = torch.load(ORIGINAL / 'mlp_trainer_ck.pkl')
    mutate(data['optim'])
    path = write(tmp_path, 'bad_optim.pkl', data)
    trainer = make_trainer()
    optimizer = trainer.optimizer
    with pytest.raises(CheckpointError, match=pattern):
        trainer.load_checkpoint(str(path))
    assert trainer.optimizer is optimizer


def test_history_sets_only_what_the_trainer_declares(make_trainer, tmp_path, caplog):
    """checkpoint_dir, save_every, stop_on_nonfinite, __dict__ ... in a history file are reported, never set."""
    data = torch.load(ORIGINAL / 'mlp_history.pkl')
    attacks = {'checkpoint_dir': str(tmp_path / 'elsewhere'), 'save_every': 1, 'stop_on_nonfinite': False,
               '__dict__': {}, 'optimizer': None, 'model': 'x', 'checkpoint_name': '../../escape',
               'tb_writer': None, 'd_loss_history': torch.zeros(3)}
    data.update(attacks)
    path = write(tmp_path, 'hostile_history.pkl', data)
    trainer = make_trainer()
    before = {key: getattr(trainer, key, None) for key in attacks if key != '__dict__'}
    trainer.load_history(str(path))
    assert {key: getattr(trainer, key, None) for key in before} == before
    assert trainer.loss_iter == 30 and trainer.stop_on_nonfinite is True
    warning = next(r.getMessage() for r in caplog.records if 'ignored key' in r.getMessage())
    assert all(key in warning for key in attacks)


@pytest.mark.parametrize('field, value, pattern', [
    ('loss_iter', 'x', r"'loss_iter' must be an integer"),
    ('loss_iter', 31, r"'loss_iter' is 31 but 'loss_history' holds 30 values"),
    ('loss_history', [1.0, 2.0], r"'loss_history' must be a numeric numpy array"),
    ('acc_history', torch.zeros(9), r"'acc_history' must be a numeric numpy array or None, got Tensor"),
    ('cur_epoch', -3, r"'cur_epoch' must be an integer from 0"),
])
def test_bad_history_values_are_refused_and_change_nothing(make_trainer, tmp_path, field, value, pattern):
    data = torch.load(ORIGINAL / 'mlp_history.pkl')
    data[field] = value
    path = write(tmp_path, 'bad_history.pkl', data)
    trainer = make_trainer()
    before = {key: getattr(trainer, key) for key in ('loss_iter', 'cur_epoch', 'loss_history', 'acc_history')}
    with pytest.raises(CheckpointError, match=f'{path.name}: {pattern}'):
        trainer.load_history(str(path))
    assert all(getattr(trainer, key) is before[key] for key in ('loss_history', 'acc_history'))
    assert trainer.loss_iter == before['loss_iter'] and trainer.cur_epoch == before['cur_epoch']


def test_original_files_still_load(make_trainer, original_dir, expected):
    """The checks refuse hostile files, not the original's."""
    trainer = Trainer(None, verbose=False)
    trainer.load_checkpoint(str(original_dir / 'mlp_trainer_ck.pkl'))
    trainer.load_history(str(original_dir / 'mlp_history.pkl'))
    assert trainer.get_loss_history().tolist() == expected['loss_history']
    Inferrer().load_model(str(original_dir / 'mlp_trainer_ck.pkl'))
