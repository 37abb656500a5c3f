"""Shared fixtures: the original Lernomatic's files, and trainers configured as they were written."""

from __future__ import annotations

import importlib
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
TEST_DATA = Path(__file__).resolve().parent / 'data'
# Files the original Lernomatic wrote (a checkpoint, a history file, the numbers it produced), with
# the user module they name and the data recipe, both written here.
ORIGINAL = TEST_DATA / 'original'

# tests/data holds users' code and files, run in their own processes (the legacy tree's old-style tests too)
collect_ignore = ['data']

for folder in (ORIGINAL, TEST_DATA):
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))

# The users' model modules the test files name, imported as a user's script imports its models before
# loading their checkpoints (a checkpoint may only name modules already imported or trusted:
# docs/reliability.md). Tests of the refusal use modules nobody imported.
importlib.import_module('fixture_nets')
importlib.import_module('extra_nets')


@pytest.fixture(scope='session')
def original_dir() -> Path:
    return ORIGINAL


@pytest.fixture(scope='session')
def expected() -> dict[str, Any]:
    return json.loads((ORIGINAL / 'expected.json').read_text())


@pytest.fixture(scope='session')
def fixture_nets() -> Any:
    return importlib.import_module('fixture_nets')


@pytest.fixture(scope='session')
def fixture_data() -> Any:
    return importlib.import_module('fixture_data')


# LERNOMATIC_TEST_DEVICE=cuda (the tox 'gpu' env) trains the whole suite on the first GPU.
ON_CUDA = os.environ.get('LERNOMATIC_TEST_DEVICE', 'cpu') == 'cuda'
if ON_CUDA and not torch.cuda.is_available():
    raise RuntimeError('LERNOMATIC_TEST_DEVICE=cuda but torch sees no CUDA GPU')
TEST_DEVICE_ID = 0 if ON_CUDA else -1
TEST_DEVICE = torch.device('cuda:0' if ON_CUDA else 'cpu')

# The fixture's numbers were computed on the machine the original ran on. Float rounding depends on
# the CPU's vector width and BLAS build (an ulp in the first step, which training carries on), so no
# test compares with them bit for bit: only with the plain loop run in this process (`reference`).
# tools/fixture_drift.py measures the drift (docs/gpu.md lists the runs: at most 2.1e-7 relative in
# the losses, 1.1e-7 absolute in the weights, 1.5e-8 absolute in Adam's state); these tolerances give
# it a margin of 10-50x and still fail on any change of the algorithm (one step more, another
# learning rate or batch order moves the losses by 1e-3 or more). A GPU's kernels differ more.
FIXTURE_RTOL = 1e-4 if ON_CUDA else 1e-5
WEIGHT_TOLERANCE = dict(rtol=1e-3, atol=1e-4) if ON_CUDA else dict(rtol=1e-4, atol=2e-6)
ADAM_STATE_TOLERANCE = dict(rtol=1e-3, atol=1e-4) if ON_CUDA else dict(rtol=1e-3, atol=2e-7)


@pytest.fixture(scope='session')
def reference(expected: dict[str, Any], fixture_nets: Any, fixture_data: Any) -> dict[str, Any]:
    """The fixture's run redone as a plain PyTorch loop on this machine (3 and 4 epochs)."""
    from helpers import plain_pytorch_run
    return {epochs: plain_pytorch_run(fixture_nets, fixture_data, expected, epochs, TEST_DEVICE) for epochs in (3, 4)}


@pytest.fixture
def make_trainer(tmp_path: Path, expected: dict[str, Any], fixture_nets: Any, fixture_data: Any) -> Callable[..., Any]:
    """A factory for a Trainer set up exactly as the one that wrote the fixtures (overridable per test)."""
    from lernomatic.train.trainer import Trainer

    def make(trainer_class: type = Trainer, model: Any = 'fixture', **overrides: Any) -> Any:
        torch.manual_seed(expected['torch_seed_before_model'])
        if model == 'fixture':
            model = fixture_nets.MLPModel()
        options = dict(num_epochs=expected['num_epochs'], batch_size=expected['batch_size'],
                       shuffle=expected['shuffle'], learning_rate=expected['learning_rate'],
                       train_dataset=fixture_data.make(200, 11), val_dataset=fixture_data.make(60, 12),
                       save_every=0, print_every=1000, num_workers=0, verbose=False,
                       checkpoint_dir=str(tmp_path / 'checkpoint'), device_id=TEST_DEVICE_ID)
        options.update(overrides)
        return trainer_class(model, **options)

    return make


# A user's model module, kept in a folder of its own (as examples/digits_cnn.py is): nothing on the
# test process's path names it, so only the folder given to the command can make it importable.
_USER_NETS = '''
import torch.nn as nn

from lernomatic.models import common


class TinyNet(nn.Module):
    def __init__(self, width=8):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(4, width), nn.ReLU(), nn.Linear(width, 2))

    def forward(self, x):
        return self.body(x)


class TinyNetModel(common.LernomaticModel):
    def __init__(self, **kwargs):
        self.model_args = {'width': kwargs.pop('width', 8)}
        self.net = TinyNet(**self.model_args)
        self.import_path = 'tiny_user_nets'
        self.module_import_path = 'tiny_user_nets'
        self.model_name = 'TinyNetModel'
        self.module_name = 'TinyNet'

    def get_model_args(self):
        return dict(self.model_args)
'''

_USER_RUN = '''
import sys

import torch
from torch.utils.data import TensorDataset

from lernomatic.train.trainer import Trainer
from tiny_user_nets import TinyNetModel

torch.manual_seed(0)
x = torch.randn(64, 4)
y = (x.sum(1) > 0).long()
trainer = Trainer(TinyNetModel(), train_dataset=TensorDataset(x, y), val_dataset=TensorDataset(x[:16], y[:16]),
                  num_epochs=2, batch_size=16, learning_rate=0.01, num_workers=0, device_id=-1, verbose=0,
                  checkpoint_dir=sys.argv[1], checkpoint_name='tiny', save_best=True)
trainer.train()
'''


@pytest.fixture(scope='session')
def user_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A run of the real Trainer in its own process, its model module in a folder off every path.

    Returns the folder of the model module ('models'), the checkpoint directory ('checkpoint': the
    best checkpoint, the history file and the Lightning logger's TensorBoard events) and the
    best checkpoint ('best').
    """
    import subprocess

    root = tmp_path_factory.mktemp('user_run')
    models, checkpoint = root / 'models', root / 'checkpoint'
    models.mkdir()
    (models / 'tiny_user_nets.py').write_text(_USER_NETS)
    (root / 'run.py').write_text(_USER_RUN)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(models), str(REPO)]))
    done = subprocess.run([sys.executable, str(root / 'run.py'), str(checkpoint)], cwd=root, env=env,
                          capture_output=True, text=True, timeout=600)  # a hang guard, far beyond the ~10 s it takes
    assert done.returncode == 0, done.stderr[-3000:]
    return {'models': models, 'checkpoint': checkpoint, 'best': checkpoint / 'best_tiny.pkl'}
