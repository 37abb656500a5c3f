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
