"""An old Lernomatic checkout, run unchanged through LERNOMATIC_PATH exactly as a user would.

The tree in tests/data/legacy_tree is written the way the original's zoo was: its own models
(`lernomatic.models.cifar_like`), a GAN trainer with two models and its own files
(`lernomatic.train.gan.dcgan_trainer`), an autoencoder trainer with its own `train()`, a trainer that
pops its kwargs and passes unknown ones on, an inferrer subclass, utilities in a subpackage this
project does not have (`lernomatic.util`), old copies of modules this project replaces, and a module
that no longer imports. It is copied out of the repository (a user's checkout lives elsewhere) and
its own tests and scripts run in their own processes.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from conftest import REPO

TREE = Path(__file__).resolve().parent / 'data' / 'legacy_tree'


@pytest.fixture(scope='module')
def checkout(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp('old') / 'lernomatic-checkout'
    shutil.copytree(TREE, folder, ignore=shutil.ignore_patterns('__pycache__'))
    return folder


def run(args: list[str], cwd: Path, legacy: Path | None, **extra_env: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ('LERNOMATIC_PATH', 'LERNOMATIC_TRUSTED_MODULES')}
    if legacy is not None:
        env['LERNOMATIC_PATH'] = str(legacy)
    env.update(extra_env)
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


# Commands run from beside the checkout, not inside it: `python -m ...` puts the working directory first on
# sys.path, where the checkout's own lernomatic/ folder would stand in front of this package (docs/migration.md).
def test_the_old_checkouts_own_tests_pass(checkout):
    result = run([sys.executable, '-m', 'pytest', '-q', '-p', 'no:cacheprovider', str(checkout / 'test')],
                 checkout.parent, checkout)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert '11 passed' in result.stdout


def test_without_the_path_the_old_code_does_not_import(checkout):
    result = run([sys.executable, '-c', 'import lernomatic.train.gan.dcgan_trainer'], checkout.parent, None)
    assert result.returncode != 0 and "No module named 'lernomatic.train.gan'" in result.stderr


def test_old_scripts_write_and_read_checkpoints_naming_tree_modules(checkout, tmp_path):
    train = run([sys.executable, str(checkout / 'tools' / 'train_cifar_like.py'), '--checkpoint-dir', str(tmp_path)],
                checkout, checkout)
    assert train.returncode == 0, train.stderr[-3000:]
    saved = torch.load(tmp_path / 'best_cifar_like.pkl')
    assert saved['model']['model_import_path'] == 'lernomatic.models.cifar_like'
    # a fresh process that imported nothing of the tree: the checkpoint names it, the tree is trusted
    infer = run([sys.executable, 'tools/infer_cifar_like.py', str(tmp_path / 'best_cifar_like.pkl')], checkout,
                checkout)
    assert infer.returncode == 0, infer.stderr[-3000:]
    assert 'model SmallConvNetModel module SmallConvNet channels 6' in infer.stdout  # rebuilt with the stored args


def test_the_projects_modules_win_over_the_trees_copies(checkout):
    code = ('import lernomatic.models.common as c, lernomatic.train.trainer as t; '
            'import lernomatic.models.cifar_like as m; print(c.__file__); print(t.__file__); print(m.__file__)')
    result = run([sys.executable, '-c', code], checkout.parent, checkout)
    assert result.returncode == 0, result.stderr[-2000:]
    common, trainer, cifar = result.stdout.split()
    assert Path(common).is_relative_to(REPO) and Path(trainer).is_relative_to(REPO)
    assert Path(cifar).is_relative_to(checkout)


def test_extend_path_at_run_time(checkout):
    code = (f'import lernomatic; lernomatic.extend_path({str(checkout)!r}); '
            'from lernomatic.util import math_util; '
            'print(math_util.running_mean([1, 2, 3, 4, 5, 6], 3).round(6).tolist())')
    result = run([sys.executable, '-c', code], checkout.parent, None)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == '[2.0, 3.0, 4.0, 5.0]'


def test_doctor_lists_what_comes_from_the_tree(checkout):
    result = run([sys.executable, '-m', 'lernomatic', 'doctor'], checkout.parent, checkout)
    lines = result.stdout.splitlines()
    assert result.returncode == 1, result.stderr  # one module fails: a non-zero exit for scripts and CI

    def status(name: str) -> str:
        return next(line.split()[0] for line in lines if f' {name} ' in f' {line} ')

    assert status('lernomatic.models.cifar_like') == 'tree'
    assert status('lernomatic.train.gan.dcgan_trainer') == 'tree'
    assert status('lernomatic.train.autoencoder.ae_trainer') == 'tree'
    assert status('lernomatic.models.common') == 'replaced'
    assert status('lernomatic.train.trainer') == 'replaced'
    assert status('lernomatic.util.crf_util') == 'fails'
    assert any("No module named 'pydensecrf'" in line for line in lines)
    assert lines[-1].startswith('13 modules: 10 from the tree, 2 replaced by this project, 1 failing')


def test_doctor_without_a_tree_says_how_to_set_one(tmp_path):
    result = run([sys.executable, '-m', 'lernomatic', 'doctor'], tmp_path, None)
    assert result.returncode == 0 and 'LERNOMATIC_PATH is not set' in result.stdout


def test_doctor_refuses_a_path_that_does_not_exist(tmp_path):
    result = run([sys.executable, '-m', 'lernomatic', 'doctor'], tmp_path, Path('/nonexistent'))
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stdout == ''
    assert result.stderr.splitlines() == [
        "lernomatic doctor: LERNOMATIC_PATH entry '/nonexistent' does not exist: set LERNOMATIC_PATH to the root of an "
        f"old Lernomatic checkout (the folder that holds lernomatic/), several joined by {os.pathsep!r}"]


def test_doctor_names_each_entry_that_is_no_checkout_and_lists_nothing(checkout, tmp_path):
    a_file = tmp_path / 'notes.txt'
    a_file.write_text('not a checkout')
    no_tree = tmp_path / 'empty'
    no_tree.mkdir()
    entries = [checkout, tmp_path / 'missing', a_file, no_tree, REPO]  # the first is fine, the others are not
    result = run([sys.executable, '-m', 'lernomatic', 'doctor', '--no-import'], tmp_path,
                 Path(os.pathsep.join(str(entry) for entry in entries)))
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stdout == ''  # nothing listed: the path has to be fixed first
    lines = result.stderr.splitlines()
    problems = ['does not exist', 'is not a folder', 'holds no lernomatic/ folder',
                'is this project (lernomatic-lightning), not an old checkout']
    assert len(lines) == len(problems), result.stderr
    for line, entry, problem in zip(lines, entries[1:], problems, strict=True):
        assert line.startswith(f'lernomatic doctor: LERNOMATIC_PATH entry {str(entry)!r} {problem}: set ')
    assert 'not set' not in result.stderr and 'Traceback' not in result.stderr


def test_a_script_hears_of_a_refused_entry_when_an_import_from_the_tree_fails(tmp_path):
    said = run([sys.executable, '-c', 'import lernomatic.models.cifar_like'], tmp_path, Path('/nonexistent'))
    assert said.returncode == 1 and "No module named 'lernomatic.models.cifar_like'" in said.stderr
    assert said.stderr.splitlines()[0].startswith("LERNOMATIC_PATH entry '/nonexistent' does not exist: set ")
    # the project's own modules need no tree: nothing to say
    quiet = run([sys.executable, '-c', 'import lernomatic.cli.paths'], tmp_path, Path('/nonexistent'))
    assert quiet.returncode == 0 and quiet.stderr == ''
