"""The `lernomatic` command, run as a user runs it: a subprocess per command."""

from __future__ import annotations

import ctypes
import os
import shutil
import subprocess
import sys
import zipfile
from importlib.metadata import version
from pathlib import Path

import lightning
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from compat.adapter import LernomaticModule
from lernomatic import __version__
from lernomatic.train.trainer import Trainer

from conftest import ORIGINAL, REPO
from helpers import signature, state_dicts_equal

CHECKPOINT = ORIGINAL / 'mlp_trainer_ck.pkl'
TRUST = ('--trusted-modules', 'fixture_nets')  # the fixture's model module, which a converted file names
HISTORY = ORIGINAL / 'mlp_history.pkl'
HEAVY = ('torch', 'numpy', 'lightning', 'matplotlib', 'tensorboard')


def cli_env() -> dict[str, str]:
    paths = [str(REPO), str(ORIGINAL), os.environ.get('PYTHONPATH', '')]  # keep the env's own (the gpu env's)
    return dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in paths if p))


def _drop_file_permission_override() -> None:
    """In the child, before exec: root loses CAP_DAC_OVERRIDE / CAP_DAC_READ_SEARCH, so mode 000 binds it too."""
    libc = ctypes.CDLL(None, use_errno=True)
    for capability in (1, 2):  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH
        if libc.prctl(24, capability, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
            raise OSError(ctypes.get_errno(), 'prctl(PR_CAPBSET_DROP)')


def lernomatic(*args, check=True, timeout=300, as_plain_user=False, cwd=None, env=None):
    """`python -m lernomatic ARGS` in a subprocess; `timeout` is a hang check, not a speed target."""
    run = subprocess.run([sys.executable, '-m', 'lernomatic', *map(str, args)], capture_output=True, text=True,
                         env={**cli_env(), **(env or {})}, timeout=timeout, cwd=cwd,
                         preexec_fn=_drop_file_permission_override if as_plain_user and os.geteuid() == 0 else None)
    if check:
        assert run.returncode == 0, run.stderr[-3000:]
    return run


def assert_user_error(run, *fragments):
    """Exit status 2, nothing on stdout, one line on stderr holding every fragment, no traceback."""
    lines = run.stderr.strip().splitlines()
    assert run.returncode == 2, (run.returncode, run.stderr[-2000:])
    assert len(lines) == 1 and 'Traceback' not in run.stderr, run.stderr[-2000:]
    for fragment in fragments:
        assert str(fragment) in lines[0], lines[0]
    assert run.stdout == ''
    return lines[0]


# ---- start-up
def _modules_loaded_by(argv: list[str]) -> list[str]:
    code = ('import sys\nfrom lernomatic.cli import main\ntry:\n    main(sys.argv[1:])\nexcept SystemExit:\n    pass\n'
            f'print(sorted({{m.split(".")[0] for m in sys.modules}} & {set(HEAVY)!r}))')
    run = subprocess.run([sys.executable, '-c', code, *argv], capture_output=True, text=True, env=cli_env(),
                         timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    return run.stdout.strip().splitlines()[-1]


@pytest.mark.parametrize('argv', [['--help'], ['--version'], ['inspect', '--help'], ['convert', '--help'],
                                  ['plot', '--help'], ['tensorboard', '--help']])
def test_help_and_version_import_no_heavy_module(argv):
    assert _modules_loaded_by(argv) == '[]'


def test_a_bad_path_is_reported_before_torch_is_imported(tmp_path):
    assert _modules_loaded_by(['plot', str(tmp_path / 'missing.pkl')]) == '[]'


@pytest.mark.parametrize('command', ['inspect', 'convert', 'plot', 'tensorboard'])
def test_every_command_has_help(command):
    assert 'usage: lernomatic ' + command in lernomatic(command, '--help').stdout
    assert 'COMMAND' in lernomatic('--help').stdout


def test_version_is_the_installed_distributions():
    assert lernomatic('--version').stdout == f'lernomatic {version("lernomatic-lightning")}\n'
    assert __version__ == version('lernomatic-lightning')


def test_the_installed_script_and_both_module_forms_run():
    script = Path(sys.executable).with_name('lernomatic')
    for argv in ([str(script)], [sys.executable, '-m', 'lernomatic'], [sys.executable, '-m', 'lernomatic.cli']):
        run = subprocess.run([*argv, '--version'], capture_output=True, text=True, env=cli_env(), timeout=120)
        assert run.returncode == 0 and run.stdout.startswith('lernomatic '), (argv, run.stderr)


def test_importing_the_main_modules_runs_nothing():
    code = 'import lernomatic.__main__, lernomatic.cli.__main__; print("imported")'
    run = subprocess.run([sys.executable, '-c', code, 'inspect', '/nonexistent'], capture_output=True, text=True,
                         env=cli_env(), timeout=120)
    assert (run.returncode, run.stdout, run.stderr) == (0, 'imported\n', '')


# ---- numpy registration without an import of torch at `import lernomatic`
def _bare_torch_load(imports: str) -> subprocess.CompletedProcess:
    code = (f'{imports}\nimport sys\nprint("torch" in sys.modules)\nimport torch\n'
            f'print(type(torch.load({str(HISTORY)!r})["loss_history"]).__name__)')
    return subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, env=cli_env(), timeout=120)


def test_import_lernomatic_alone_does_not_import_torch():
    run = _bare_torch_load('import lernomatic')
    assert run.stdout.splitlines()[0] == 'False'


def test_import_lernomatic_after_torch_allows_numpy_in_bare_torch_load():
    run = _bare_torch_load('import torch\nimport lernomatic')
    assert run.stdout.splitlines() == ['True', 'ndarray'], run.stderr[-2000:]


@pytest.mark.parametrize('subpackage', ['models', 'model', 'train', 'infer', 'param'])
def test_every_torch_subpackage_allows_numpy_in_bare_torch_load(subpackage):
    run = _bare_torch_load(f'import lernomatic.{subpackage}')
    assert run.stdout.splitlines() == ['True', 'ndarray'], run.stderr[-2000:]


def test_bare_torch_load_of_a_history_file_is_refused_without_lernomatic():
    """What the registration is for: torch alone refuses numpy arrays (the test above could not pass vacuously)."""
    run = _bare_torch_load('')
    assert run.returncode != 0 and 'numpy' in run.stderr


# ---- user errors: exit 2, one line naming the file
def test_missing_output_directory_is_not_created(tmp_path):
    target = tmp_path / 'missing_dir' / 'x.png'
    assert_user_error(lernomatic('plot', HISTORY, '-o', target, check=False), target, 'does not exist')
    target = tmp_path / 'nonexistent' / 'dir' / 'x.ckpt'
    assert_user_error(lernomatic('convert', CHECKPOINT, target, check=False), target, 'does not exist')
    assert list(tmp_path.iterdir()) == []


def test_output_that_is_a_directory(tmp_path):
    assert_user_error(lernomatic('convert', CHECKPOINT, tmp_path, check=False), tmp_path, 'is a directory')


@pytest.mark.parametrize('command', ['inspect', 'plot'])  # tensorboard reads a directory's runs (test_cli_tensorboard)
def test_input_that_is_a_directory(tmp_path, command):
    assert_user_error(lernomatic(command, tmp_path, check=False), tmp_path, 'is a directory, not a file')


def test_fifo_input_is_refused_without_waiting_for_a_writer(tmp_path):
    fifo = tmp_path / 'pipe.pkl'
    os.mkfifo(fifo)
    assert_user_error(lernomatic('inspect', fifo, check=False, timeout=60), fifo, 'is not a regular file')


def test_missing_input(tmp_path):
    assert_user_error(lernomatic('inspect', tmp_path / 'nope.pkl', check=False), tmp_path / 'nope.pkl', 'no such file')


def test_unreadable_input(tmp_path):
    secret = tmp_path / 'secret.pkl'
    shutil.copy(HISTORY, secret)
    secret.chmod(0)
    for args in (('inspect', secret), ('plot', secret, '-o', tmp_path / 'x.png')):
        assert_user_error(lernomatic(*args, check=False, as_plain_user=True), secret, 'permission denied')


def test_unwritable_output_directory(tmp_path):
    locked = tmp_path / 'locked'
    locked.mkdir(mode=0o555)
    run = lernomatic('plot', HISTORY, '-o', locked / 'x.png', check=False, as_plain_user=True)
    assert_user_error(run, locked / 'x.png', 'permission denied')


@pytest.mark.parametrize('content, problem', [(b'', 'is empty'), (b'loss,acc\n1.0,0.5\n', 'not a Lernomatic file'),
                                              (b'PK\x03\x04 not really a zip', 'truncated or not a torch.save file')])
def test_not_a_torch_file(tmp_path, content, problem):
    bogus = tmp_path / 'bogus.pkl'
    bogus.write_bytes(content)
    for command in ('inspect', 'plot', 'tensorboard'):
        assert_user_error(lernomatic(command, bogus, check=False), bogus, problem)


def test_torch_files_of_the_wrong_kind(tmp_path):
    tensor = tmp_path / 'tensor.pt'
    torch.save(torch.zeros(3), tensor)
    assert_user_error(lernomatic('plot', tensor, check=False), tensor, 'not a Lernomatic history file')
    assert_user_error(lernomatic('convert', HISTORY, tmp_path / 'x.ckpt', check=False), HISTORY,
                      'a Lernomatic history file (use lernomatic plot')
    assert_user_error(lernomatic('plot', CHECKPOINT, check=False), CHECKPOINT, 'not a Lernomatic history file')


@pytest.mark.parametrize('argv', [['plot'], ['inspect', 'x', '--max-level', '1000'], ['frobnicate'], []])
def test_usage_errors_are_one_line(argv):
    line = assert_user_error(lernomatic(*argv, check=False))
    assert line.startswith('lernomatic') and '--help' in line


def test_inspect_refuses_hostile_files(tmp_path):
    hostile = tmp_path / 'hostile.pkl'
    torch.save({'x': os.system}, hostile)
    assert_user_error(lernomatic('inspect', hostile, check=False), hostile, 'refused to unpickle', 'trusted')


# ---- what the commands do
def test_inspect_prints_the_tree():
    out = lernomatic('inspect', CHECKPOINT, '--max-level', '2').stdout
    assert "    'model': dict (5 keys)" in out and "        'model_name': str = 'MLPModel'" in out
    assert "'body.0.weight'" not in out  # below --max-level
    deep = lernomatic('inspect', CHECKPOINT, '--max-level', '3', '--show-data').stdout
    weights = torch.load(CHECKPOINT)['model']['model_state_dict']['body.0.weight'].flatten()[:6].tolist()
    assert f"'body.0.weight': Tensor float32 (24, 12) on cpu = [{', '.join(map(repr, weights))}]" in deep
    history = lernomatic('inspect', HISTORY).stdout
    assert "'acc_history': ndarray float64 (9,)" in history


def test_convert_checks_the_classes_as_a_loader_would(tmp_path):
    """A file naming code is refused, not carried into the .ckpt; the user's own module needs trusting, as loading."""
    data = torch.load(CHECKPOINT)
    data['model'].update(module_import_path='subprocess', module_name='Popen', model_args={'args': 'true'})
    torch.save(data, tmp_path / 'hostile.pkl')
    run = lernomatic('convert', tmp_path / 'hostile.pkl', tmp_path / 'out.ckpt', *TRUST, check=False)
    assert_user_error(run, tmp_path / 'hostile.pkl', "subprocess.Popen is a class subprocess.Popen, not a subclass")
    untrusted = lernomatic('convert', CHECKPOINT, tmp_path / 'out.ckpt', check=False)
    assert_user_error(untrusted, CHECKPOINT, "would import module 'fixture_nets', which this program has not imported")
    assert not (tmp_path / 'out.ckpt').exists()
    lernomatic('convert', CHECKPOINT, tmp_path / 'out.ckpt', env={'LERNOMATIC_TRUSTED_MODULES': 'fixture_nets'})
    assert (tmp_path / 'out.ckpt').is_file()


def test_convert_prints_no_lightning_banner(tmp_path):
    run = lernomatic('convert', CHECKPOINT, tmp_path / 'mlp.ckpt', *TRUST)
    assert run.stdout == f'wrote Lightning checkpoint {tmp_path / "mlp.ckpt"}\n' and run.stderr == ''


def test_convert_round_trip_loses_nothing(tmp_path):
    lernomatic('convert', CHECKPOINT, tmp_path / 'mlp.ckpt', *TRUST)
    lernomatic('convert', tmp_path / 'mlp.ckpt', tmp_path / 'back.pkl', *TRUST)
    original, back = torch.load(CHECKPOINT), torch.load(tmp_path / 'back.pkl')
    assert signature(back) == signature(original)
    assert back['trainer_params'] == original['trainer_params']
    assert state_dicts_equal(back['model']['model_state_dict'], original['model']['model_state_dict'])
    assert back['optim']['param_groups'] == original['optim']['param_groups']


def test_converted_ckpt_resumes_in_plain_lightning(tmp_path, fixture_nets, fixture_data):
    lernomatic('convert', CHECKPOINT, tmp_path / 'mlp.ckpt', *TRUST)
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
    lernomatic('convert', tmp_path / 'run.ckpt', tmp_path / 'run.pkl', *TRUST)
    loaded = Trainer(None, verbose=False)
    loaded.load_checkpoint(str(tmp_path / 'run.pkl'))
    assert loaded.optim_function == 'SGD' and loaded.cur_epoch == 2 and loaded.learning_rate == 0.05
    assert state_dicts_equal(loaded.get_model_params(), module.net.state_dict())


def test_plot_writes_a_png(tmp_path):
    lernomatic('plot', HISTORY, '-o', tmp_path / 'hist.png')
    png = (tmp_path / 'hist.png').read_bytes()
    assert png[:8] == b'\x89PNG\r\n\x1a\n' and len(png) > 10_000


def test_legacy_torch_save_format_and_missing_validation_curves(tmp_path):
    """Files from torch < 1.6 (the original's days) are pickle streams, not zip archives; no val_loader: None arrays."""
    history = tmp_path / 'legacy.pkl'
    torch.save({'loss_iter': 2, 'val_loss_iter': 0, 'acc_iter': 0, 'cur_epoch': 1, 'iter_per_epoch': 2,
                'loss_history': np.array([1.0, 0.5]), 'val_loss_history': None, 'acc_history': None},
               history, _use_new_zipfile_serialization=False)
    assert history.read_bytes()[:1] == b'\x80'
    run = lernomatic('plot', history, '-o', tmp_path / 'legacy.png')
    assert run.stderr == '' and (tmp_path / 'legacy.png').read_bytes()[:4] == b'\x89PNG'
    assert "'loss_history': ndarray float64 (2,)" in lernomatic('inspect', history).stdout


@pytest.mark.parametrize('name, problem', [('out.txt', '.txt is not an image format plot writes'),
                                           ('out', 'has no extension')])
def test_plot_refuses_an_output_format_it_cannot_write_before_reading(tmp_path, name, problem):
    notes = tmp_path / 'notes.txt'  # not even a torch file: the output's name is refused first
    notes.write_text('loss\n')
    line = assert_user_error(lernomatic('plot', notes, '-o', tmp_path / name, check=False),
                             f'-o/--output: {tmp_path / name}: {problem}', '.png', '.pdf', '.svg')
    assert 'notes.txt' not in line.replace(str(tmp_path / name), '')
    assert sorted(p.name for p in tmp_path.iterdir()) == ['notes.txt']


def test_plot_writes_the_format_its_extension_names(tmp_path):
    help_text = lernomatic('plot', '--help').stdout
    assert 'the PNG' not in help_text and 'pdf' in help_text and 'svg' in help_text
    lernomatic('plot', HISTORY, '-o', tmp_path / 'hist.PDF')
    assert (tmp_path / 'hist.PDF').read_bytes()[:5] == b'%PDF-'


def test_every_listed_plot_format_is_one_matplotlib_writes(tmp_path):
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    from lernomatic.cli import PLOT_FORMATS
    fig = plt.figure(figsize=(1, 1))
    try:
        assert set(PLOT_FORMATS) <= set(fig.canvas.get_supported_filetypes())
        for extension in PLOT_FORMATS:
            fig.savefig(tmp_path / f'x.{extension}')
            assert (tmp_path / f'x.{extension}').stat().st_size > 0
    finally:
        plt.close(fig)


def test_plot_default_output_is_beside_the_history(tmp_path):
    shutil.copy(HISTORY, tmp_path / 'run.pkl')
    assert lernomatic('plot', 'run.pkl', cwd=tmp_path).stdout == 'wrote run.png\n'
    assert (tmp_path / 'run.png').read_bytes()[:4] == b'\x89PNG'


def test_wheel_carries_the_py_typed_markers(tmp_path):
    for name in ('pyproject.toml', 'README.md', 'pytest_lernomatic.py', 'lernomatic', 'compat'):
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, tmp_path / name, ignore=shutil.ignore_patterns('__pycache__'))
        else:
            shutil.copy(source, tmp_path / name)
    subprocess.run([sys.executable, '-m', 'pip', 'wheel', '-q', '--no-deps', '--no-build-isolation', '-w',
                    str(tmp_path / 'dist'), str(tmp_path)], check=True, capture_output=True, timeout=300)
    (wheel,) = (tmp_path / 'dist').glob('*.whl')
    names = zipfile.ZipFile(wheel).namelist()
    assert {'lernomatic/py.typed', 'compat/py.typed', 'lernomatic/__main__.py', 'lernomatic/cli/__init__.py',
            'pytest_lernomatic.py'} <= {*names}  # the plugin too: see test_pytest_lernomatic
