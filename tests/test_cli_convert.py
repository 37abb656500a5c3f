"""`lernomatic convert` on a real Trainer's checkpoint whose model lives in the user's own folder, and on
hostile files built here: the output carries only fields the converter checked, both ways."""

from __future__ import annotations

import os
import shutil

import pytest
import torch
from test_cli import CHECKPOINT, TRUST, assert_user_error, cli_env, lernomatic

from compat.codec.lightning_ckpt import NET_PREFIX
from lernomatic.train.trainer import Trainer

from helpers import state_dicts_equal

USER_TRUST = ('--trusted-modules', 'tiny_user_nets')


# ---- a user's model in a folder of its own (the main job's case: examples/digits_cnn.py)
def test_untrusted_module_error_suggests_the_commands_own_flags_first(user_run, tmp_path):
    line = assert_user_error(lernomatic('convert', user_run['best'], tmp_path / 'x.ckpt', check=False),
                             user_run['best'], "'tiny_user_nets'", '--trusted-modules tiny_user_nets',
                             '--import-path DIR')
    assert line.index('--trusted-modules') < line.index('LERNOMATIC_TRUSTED_MODULES')
    assert line.index('--import-path') < line.index('PYTHONPATH')
    assert 'trusted_modules=[' not in line and 'lernomatic.trust_modules' not in line  # Python-side fixes: not here
    assert not (tmp_path / 'x.ckpt').exists()


def test_a_trusted_module_not_found_suggests_import_path(user_run, tmp_path):
    line = assert_user_error(lernomatic('convert', user_run['best'], tmp_path / 'x.ckpt', *USER_TRUST, check=False),
                             "cannot import module 'tiny_user_nets': no such module", '--import-path DIR')
    assert line.index('--import-path') < line.index('PYTHONPATH')


def test_import_path_names_the_folder_of_the_users_model(user_run, tmp_path):
    run = lernomatic('convert', user_run['best'], tmp_path / 'x.ckpt', '--import-path', user_run['models'],
                     *USER_TRUST)
    assert run.stdout == f'wrote Lightning checkpoint {tmp_path / "x.ckpt"}\n' and run.stderr == ''
    source, converted = torch.load(user_run['best']), torch.load(tmp_path / 'x.ckpt')
    weights = {key[len(NET_PREFIX):]: value for key, value in converted['state_dict'].items()}
    assert state_dicts_equal(weights, source['model']['model_state_dict'])
    # its run position rides along, checked: a loader's reading of the way back gives the same
    assert converted['rng_state'].keys() == source['rng_state'].keys() and converted['resume'] == source['resume']
    lernomatic('convert', tmp_path / 'x.ckpt', tmp_path / 'back.pkl', '--import-path', user_run['models'],
               *USER_TRUST)
    back = torch.load(tmp_path / 'back.pkl')
    assert list(back) == list(source) and back['resume'] == source['resume']
    assert torch.equal(back['rng_state']['torch'], source['rng_state']['torch'])


def test_pythonpath_works_as_documented(user_run, tmp_path):
    env = {'PYTHONPATH': os.pathsep.join([str(user_run['models']), cli_env()['PYTHONPATH']])}
    lernomatic('convert', user_run['best'], tmp_path / 'x.ckpt', *USER_TRUST, env=env)
    assert (tmp_path / 'x.ckpt').is_file()


def test_import_path_must_be_a_directory(tmp_path):
    for folder, problem in ((tmp_path / 'nowhere', 'no such directory'), (CHECKPOINT, 'is not a directory')):
        assert_user_error(lernomatic('convert', CHECKPOINT, tmp_path / 'x.ckpt', '--import-path', folder, *TRUST,
                                     check=False), f'--import-path {folder}: {problem}')


def test_trust_error_quotes_the_module_path_as_the_file_holds_it(tmp_path):
    """The user guide wrote import paths with a '.py' suffix; the refusal quotes the file, not our reading of it."""
    data = torch.load(CHECKPOINT)
    data['model']['model_import_path'] = 'mypkg.new_network.py'
    torch.save(data, tmp_path / 'guide.pkl')
    assert_user_error(lernomatic('convert', tmp_path / 'guide.pkl', tmp_path / 'x.ckpt', check=False),
                      "['model']['model_import_path'] = 'mypkg.new_network.py':",
                      "would import module 'mypkg.new_network'", '--trusted-modules mypkg')
    with pytest.raises(Exception, match=r"= 'mypkg\.new_network\.py': .*trusted_modules=\['mypkg'\]"):
        Trainer(None, verbose=False).load_checkpoint(str(tmp_path / 'guide.pkl'))


# ---- hostile files: only what was checked is written
@pytest.fixture(scope='module')
def good_ckpt(tmp_path_factory):
    """The original's checkpoint converted to a .ckpt, for the tests to spoil copies of."""
    path = tmp_path_factory.mktemp('good') / 'good.ckpt'
    lernomatic('convert', CHECKPOINT, path, *TRUST)
    return path


def test_pkl_to_ckpt_writes_only_the_checked_fields(tmp_path):
    """A .pkl's other keys (Lightning's among them) are dropped, never copied over the converted ones."""
    data = torch.load(CHECKPOINT)
    popen = {**data['model'], 'module_import_path': 'subprocess', 'module_name': 'Popen',
             'model_args': {'args': ['touch', str(tmp_path / 'ran')]}}
    data.update({'state_dict': {NET_PREFIX + 'body.0.weight': torch.full((24, 12), float('nan'))},
                 'lernomatic_model': popen, 'loops': 'garbage', 'hyper_parameters': {'lr': 'x' * 100},
                 'epoch': -5, 'note': 'mine'})
    data['model']['evil'] = 'subprocess.Popen'
    torch.save(data, tmp_path / 'hostile.pkl')
    run = lernomatic('convert', tmp_path / 'hostile.pkl', tmp_path / 'out.ckpt', *TRUST)
    assert run.stderr.count('\n') == 1 and 'not converted' in run.stderr and "'note'" in run.stderr
    out, clean = torch.load(tmp_path / 'out.ckpt'), torch.load(CHECKPOINT)
    weights = {key[len(NET_PREFIX):]: value for key, value in out['state_dict'].items()}
    assert state_dicts_equal(weights, clean['model']['model_state_dict'])
    assert out['lernomatic_model']['module_import_path'] == clean['model']['module_import_path']
    assert 'evil' not in out['lernomatic_model'] and 'note' not in out and 'hyper_parameters' not in out
    assert isinstance(out['loops'], dict) and out['epoch'] >= 0
    assert not (tmp_path / 'ran').exists()


@pytest.mark.parametrize('key, value, fragment', [
    ('rng_state', {'torch': 'not a state'}, "['rng_state']"),
    ('rng_state', {'evil': 1}, "['rng_state']: unknown part(s) ['evil']"),
    ('resume', {'phase': 'idle', 'epoch': 10 ** 15, 'batches_done': 0}, "['resume']"),
    ('resume', {'phase': 'idle', 'epoch': 1, 'batches_done': 0, 'extra': 'x'}, "['resume']: unknown key(s)"),
    ('resume', {'phase': 'idle', 'epoch': 99, 'batches_done': 0}, "['resume']['epoch']: 99 is past the run's"),
])
def test_bad_run_position_is_refused_both_ways(tmp_path, good_ckpt, key, value, fragment):
    data = torch.load(CHECKPOINT)
    data[key] = value
    torch.save(data, tmp_path / 'bad.pkl')
    assert_user_error(lernomatic('convert', tmp_path / 'bad.pkl', tmp_path / 'out.ckpt', *TRUST, check=False),
                      tmp_path / 'bad.pkl', fragment)
    ckpt = torch.load(good_ckpt)
    ckpt[key] = value
    torch.save(ckpt, tmp_path / 'bad.ckpt')
    assert_user_error(lernomatic('convert', tmp_path / 'bad.ckpt', tmp_path / 'out.pkl', *TRUST, check=False),
                      tmp_path / 'bad.ckpt', fragment)
    assert not (tmp_path / 'out.ckpt').exists() and not (tmp_path / 'out.pkl').exists()


def test_ckpt_to_pkl_writes_only_the_checked_fields(tmp_path, good_ckpt):
    """A .ckpt's metadata cannot replace the weights, add model fields, or bring keys of its own."""
    ckpt = torch.load(good_ckpt)
    ckpt['lernomatic_model'].update(model_state_dict={'body.0.weight': torch.full((24, 12), float('nan'))},
                                    evil='subprocess.Popen')
    ckpt['lernomatic_trainer_params']['beta1'] = 0.5  # a subclass's own param: a plain value, kept
    ckpt['note'] = 'mine'
    torch.save(ckpt, tmp_path / 'odd.ckpt')
    lernomatic('convert', tmp_path / 'odd.ckpt', tmp_path / 'out.pkl', *TRUST)
    out, clean = torch.load(tmp_path / 'out.pkl'), torch.load(CHECKPOINT)
    assert list(out) == ['model', 'optim', 'trainer_params']
    assert state_dicts_equal(out['model']['model_state_dict'], clean['model']['model_state_dict'])
    assert 'evil' not in out['model'] and out['trainer_params']['beta1'] == 0.5


def test_a_subclass_param_that_is_not_a_plain_value_is_refused(tmp_path):
    data = torch.load(CHECKPOINT)
    data['trainer_params']['beta1'] = torch.zeros(3)
    torch.save(data, tmp_path / 'odd.pkl')
    assert_user_error(lernomatic('convert', tmp_path / 'odd.pkl', tmp_path / 'out.ckpt', *TRUST, check=False),
                      "['trainer_params']['beta1']", 'torch.Tensor')


def test_original_checkpoint_still_converts(tmp_path):
    shutil.copy(CHECKPOINT, tmp_path / 'ck.pkl')
    run = lernomatic('convert', tmp_path / 'ck.pkl', tmp_path / 'ck.ckpt', *TRUST)
    assert run.stderr == ''
