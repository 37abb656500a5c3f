"""The `lernomatic` command, run as a user runs it: a subprocess per command."""

from __future__ import annotations

import os
import subprocess
import sys

import lightning
import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from torch.utils.data import DataLoader

from compat.adapter import LernomaticModule
from lernomatic.train.trainer import Trainer

from conftest import ORIGINAL, REPO
from helpers import signature, state_dicts_equal

CHECKPOINT = ORIGINAL / 'mlp_trainer_ck.pkl'
HISTORY = ORIGINAL / 'mlp_history.pkl'


def lernomatic(*args, check=True):
    paths = [str(REPO), str(ORIGINAL), os.environ.get('PYTHONPATH', '')]  # keep the env's own (the gpu env's)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in paths if p))
    run = subprocess.run([sys.executable, '-m', 'lernomatic.cli', *map(str, args)], capture_output=True, text=True,
                         env=env, timeout=300)
    if check:
        assert run.returncode == 0, run.stderr[-3000:]
    return run


@pytest.mark.parametrize('command', ['inspect', 'convert', 'plot', 'tensorboard'])
def test_every_command_has_help(command):
    assert 'usage: lernomatic ' + command in lernomatic(command, '--help').stdout
    assert 'COMMAND' in lernomatic('--help').stdout


def test_cli_starts_without_lightning():
    code = 'import sys, lernomatic.cli; print(any(m.startswith("lightning") for m in sys.modules))'
    run = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, cwd=REPO)
    assert run.stdout.strip() == 'False', run.stderr


def test_inspect_prints_the_tree():
    out = lernomatic('inspect', CHECKPOINT, '--max-level', '2').stdout
    assert "    'model': dict (5 keys)" in out and "        'model_name': str = 'MLPModel'" in out
    assert "'body.0.weight'" not in out  # below --max-level
    deep = lernomatic('inspect', CHECKPOINT, '--max-level', '3', '--show-data').stdout
    assert "'body.0.weight': Tensor float32 (24, 12) on cpu = [" in deep
    history = lernomatic('inspect', HISTORY).stdout
    assert "'acc_history': ndarray float64 (9,)" in history


def test_inspect_refuses_hostile_files(tmp_path):
    hostile = tmp_path / 'hostile.pkl'
    torch.save({'x': os.system}, hostile)
    run = lernomatic('inspect', hostile, check=False)
    assert run.returncode == 2 and 'refused to unpickle' in run.stderr and 'trusted' in run.stderr


def test_convert_round_trip_loses_nothing(tmp_path):
    lernomatic('convert', CHECKPOINT, tmp_path / 'mlp.ckpt')
    lernomatic('convert', tmp_path / 'mlp.ckpt', tmp_path / 'back.pkl')
    original, back = torch.load(CHECKPOINT), torch.load(tmp_path / 'back.pkl')
    assert signature(back) == signature(original)
    assert back['trainer_params'] == original['trainer_params']
    assert state_dicts_equal(back['model']['model_state_dict'], original['model']['model_state_dict'])
    assert back['optim']['param_groups'] == original['optim']['param_groups']


def test_converted_ckpt_resumes_in_plain_lightning(tmp_path, fixture_nets, fixture_data):
    lernomatic('convert', CHECKPOINT, tmp_path / 'mlp.ckpt')
    trainer = lightning.Trainer(max_epochs=5, accelerator='cpu', logger=False, enable_progress_bar=False,
                                enable_model_summary=False, enable_checkpointing=False, default_root_dir=tmp_path)
    trainer.fit(LernomaticModule(fixture_nets.MLPModel(), learning_rate=0.003),
                DataLoader(fixture_data.make(200, 11), batch_size=20), ckpt_path=tmp_path / 'mlp.ckpt')
    assert trainer.current_epoch == 5 and trainer.global_step == 50  # epochs 3 and 4 only: resumed, not restarted
    assert trainer.optimizers[0].state_dict()['state'][0]['step'].item() == 50


def test_plain_lightning_ckpt_becomes_a_trainer_checkpoint(tmp_path, fixture_nets, fixture_data):
    trainer = lightning.Trainer(max_epochs=2, accelerator='cpu', logger=False, enable_progress_bar=False,
                                enable_model_summary=False, default_root_dir=tmp_path)
    module = LernomaticModule(fixture_nets.MLPModel(), optim_function='SGD', learning_rate=0.05)
    trainer.fit(module, DataLoader(fixture_data.make(200, 11), batch_size=20))
    trainer.save_checkpoint(tmp_path / 'run.ckpt')
    lernomatic('convert', tmp_path / 'run.ckpt', tmp_path / 'run.pkl')
    loaded = Trainer(None, verbose=False)
    loaded.load_checkpoint(str(tmp_path / 'run.pkl'))
    assert loaded.optim_function == 'SGD' and loaded.cur_epoch == 2 and loaded.learning_rate == 0.05
    assert state_dicts_equal(loaded.get_model_params(), module.net.state_dict())


def test_plot_writes_a_png(tmp_path):
    lernomatic('plot', HISTORY, '-o', tmp_path / 'hist.png')
    png = (tmp_path / 'hist.png').read_bytes()
    assert png[:8] == b'\x89PNG\r\n\x1a\n' and len(png) > 10_000


def test_tensorboard_export(tmp_path, expected):
    lernomatic('tensorboard', HISTORY, '--logdir', tmp_path / 'tb')
    events = EventAccumulator(str(tmp_path / 'tb'))
    events.Reload()
    assert [e.value for e in events.Scalars('acc/val')] == pytest.approx(expected['acc_history'])
    assert len(events.Scalars('loss/train')) == 30 and len(events.Scalars('loss/val')) == 9


def test_plot_of_a_checkpoint_says_what_it_is(tmp_path):
    run = lernomatic('plot', CHECKPOINT, check=False)
    assert run.returncode == 2 and 'not a Lernomatic history file' in run.stderr
