"""An old model's own `set_params` imports what the file names: every name is checked before it runs.

The original's WideResnet, DCGAN, autoencoder and cycle-GAN models override `set_params`:
`importlib.import_module(params['module_import_path'])`, `getattr(.., params['module_name'])`, then
call it with `model_args`. Run from an old checkout (LERNOMATIC_PATH, whose modules are trusted as
`lernomatic.*`), a file naming `subprocess.Popen` would run a command through every loader. The
checkout and the attack run in their own process, as a user's would.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

OLD_MODEL = (Path(__file__).parent / 'data' / 'old_net_model.py').read_text()

# Writes a genuine checkpoint of the old model, then hostile variants; loads each through every loader.
SCRIPT = '''
import sys
import torch
from compat.errors import CheckpointError
from lernomatic.infer.inferrer import Inferrer
from lernomatic.models.old_net import OldNetModel
from lernomatic.train.trainer import Trainer

folder, marker = sys.argv[1], sys.argv[2]
Trainer(OldNetModel(width=6), verbose=False).save_checkpoint(folder + '/good.pkl')
good = torch.load(folder + '/good.pkl')
attacks = {
    'popen': {'module_import_path': 'subprocess', 'module_name': 'Popen',
              'model_args': {'args': ['touch', marker]}},
    'extra_pair': {'block_import_path': 'subprocess', 'block_name': 'Popen'},
    'lone_path': {'helper_import_path': 'subprocess'},
}
for name, fields in attacks.items():
    data = torch.load(folder + '/good.pkl')
    data['model'].update(fields)
    torch.save(data, f'{folder}/{name}.pkl')
loaders = {
    'load_checkpoint': lambda path: Trainer(None, verbose=False).load_checkpoint(path),
    'load_model_checkpoint': lambda path: Trainer(None, verbose=False).load_model_checkpoint(path),
    'Inferrer.load_model': lambda path: Inferrer().load_model(path),
    'model.load_checkpoint': lambda path: OldNetModel().load_checkpoint(path),
}
for loader, load in loaders.items():
    load(folder + '/good.pkl')
    print(loader, 'good', 'loaded')
    for name in attacks:
        try:
            load(f'{folder}/{name}.pkl')
            print(loader, name, 'LOADED')
        except CheckpointError as error:
            print(loader, name, 'refused:', error)
'''


@pytest.fixture(scope='module')
def attack_output(tmp_path_factory) -> tuple[str, Path]:
    root = tmp_path_factory.mktemp('doors')
    checkout = root / 'old-checkout'
    (checkout / 'lernomatic' / 'models').mkdir(parents=True)
    (checkout / 'lernomatic' / 'models' / 'old_net.py').write_text(textwrap.dedent(OLD_MODEL))
    work, marker = root / 'work', root / 'PWNED'
    work.mkdir()
    env = {**os.environ, 'LERNOMATIC_PATH': str(checkout)}
    env.pop('LERNOMATIC_TRUSTED_MODULES', None)
    result = subprocess.run([sys.executable, '-c', SCRIPT, str(work), str(marker)], cwd=work, env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout, marker


LOADERS = ['load_checkpoint', 'load_model_checkpoint', 'Inferrer.load_model', 'model.load_checkpoint']


@pytest.mark.parametrize('loader', LOADERS)
def test_the_old_models_own_checkpoint_still_loads(attack_output, loader):
    assert f'{loader} good loaded' in attack_output[0].splitlines()


@pytest.mark.parametrize('loader', LOADERS)
def test_a_file_naming_popen_runs_nothing(attack_output, loader):
    output, marker = attack_output
    assert f"{loader} popen refused: " in output
    line = next(line for line in output.splitlines() if line.startswith(f'{loader} popen'))
    assert "popen.pkl: ['model']['module_name'] = 'Popen': subprocess.Popen is a class subprocess.Popen, " \
           'not a subclass of torch.nn.modules.module.Module' in line
    assert not marker.exists()


@pytest.mark.parametrize('loader', LOADERS)
def test_every_other_class_the_file_names_is_checked_too(attack_output, loader):
    lines = attack_output[0].splitlines()
    pair = next(line for line in lines if line.startswith(f'{loader} extra_pair'))
    assert "['model']['block_name'] = 'Popen'" in pair and 'not a subclass of torch.nn' in pair
    lone = next(line for line in lines if line.startswith(f'{loader} lone_path'))
    assert "['model']['helper_import_path']: names a module without a class ('helper_name' is missing)" in lone
