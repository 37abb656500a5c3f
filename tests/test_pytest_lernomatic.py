"""An old checkout's own tests, run with pytest from the checkout's root, use this project's Trainer.

As docs/migration.md tells users: `cd old-checkout && LERNOMATIC_PATH=$PWD python -m pytest`. The root
then stands first on sys.path, in front of this project. Its `lernomatic/` folder without
`__init__.py` (the original's layout) shadows an editable install (Python's path finder returns the
namespace package before the editable finder is asked); with an `__init__.py` it shadows any install.
The plugin (pytest_lernomatic.py) binds `lernomatic` to this project's package first. This project is
installed here twice, into two throwaway venvs that reuse the dependencies of the running one: editable
and not (a plain `pip install`), so the test holds whichever way the suite itself was installed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO

TREE = Path(__file__).resolve().parent / 'data' / 'legacy_tree'
SOURCES = ('pyproject.toml', 'README.md', 'pytest_lernomatic.py', 'lernomatic', 'compat')
TIMEOUT_S = 600  # a guard against a hung install or run, far above what either takes

# An old test in the original's style (unittest, print for progress): trains the checkout's own trainer
# subclass and says which files it got. The checkout's copy of lernomatic/train/trainer.py raises when
# imported, so a run that reached the checkout's Trainer fails loudly, and the files printed say the rest.
OLD_STYLE_TEST = '''
import os
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import data_util

from lernomatic.models import cifar_like
from lernomatic.train import cifar_like_trainer
from lernomatic.train import trainer


class TestTrainerHere(unittest.TestCase):
    def test_train(self):
        print('TRAINER_FILE %s' % trainer.__file__)
        print('MODEL_FILE %s' % cifar_like.__file__)
        tr = cifar_like_trainer.CifarLikeTrainer(
            cifar_like.SmallConvNetModel(num_classes=4),
            train_dataset=data_util.images(64), batch_size=16, num_epochs=1, learning_rate=3e-3,
            checkpoint_dir=tempfile.mkdtemp(), num_workers=0, verbose=False, save_every=0, logger=False)
        tr.train()
        self.assertEqual(1, tr.cur_epoch)
        self.assertIsInstance(tr, trainer.Trainer)
'''

WHICH_PACKAGE_TEST = '''
import lernomatic


def test_which():
    print('LERNOMATIC_PATHS %s' % list(lernomatic.__path__))
'''


def _site_dirs() -> list[str]:
    """The running interpreter's site folders: the throwaway venvs take torch, Lightning and pytest from them."""
    return [entry for entry in sys.path
            if Path(entry).name in ('site-packages', 'dist-packages') and Path(entry).is_dir()]


def _env(legacy: Path | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ('LERNOMATIC_PATH', 'PYTHONPATH', 'PYTEST_DISABLE_PLUGIN_AUTOLOAD', 'PYTEST_ADDOPTS')}
    if legacy is not None:
        env['LERNOMATIC_PATH'] = str(legacy)
    return env


def _run(args: list[str | Path], cwd: Path, legacy: Path | None) -> subprocess.CompletedProcess:
    return subprocess.run([str(a) for a in args], cwd=cwd, env=_env(legacy), capture_output=True, text=True,
                          timeout=TIMEOUT_S)


@pytest.fixture(scope='module')
def source(tmp_path_factory) -> Path:
    """A copy of what a package build reads, so installing it writes nothing into the repository."""
    folder = tmp_path_factory.mktemp('source') / 'lernomatic-lightning'
    folder.mkdir()
    for name in SOURCES:
        origin = REPO / name
        if origin.is_dir():
            shutil.copytree(origin, folder / name, ignore=shutil.ignore_patterns('__pycache__'))
        else:
            shutil.copy2(origin, folder / name)
    return folder


def _venv_with_this_project(folder: Path, source: Path, editable: bool) -> Path:
    """A venv at `folder` holding this project (editable or not) and reusing the running one's dependencies."""
    subprocess.run([sys.executable, '-m', 'venv', '--without-pip', str(folder)], check=True, timeout=TIMEOUT_S)
    python = folder / 'bin' / 'python'
    site = subprocess.run([str(python), '-c', 'import sysconfig; print(sysconfig.get_path("purelib"))'],
                          check=True, capture_output=True, text=True, timeout=TIMEOUT_S).stdout.strip()
    # a path file sorted after the editable install's own: it only adds folders, runs no code
    Path(site, 'zz_reuse_dependencies.pth').write_text(''.join(f'{entry}\n' for entry in _site_dirs()))
    install = [sys.executable, '-m', 'pip', '--python', str(python), 'install', '-q', '--no-deps', '--no-index',
               '--no-build-isolation', '--ignore-installed', *(['-e'] if editable else []), str(source)]
    result = subprocess.run(install, capture_output=True, text=True, timeout=TIMEOUT_S, env=_env(None))
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    return python


@pytest.fixture(scope='module')
def pythons(tmp_path_factory, source) -> dict[str, Path]:
    """The Python of each install: 'editable' (pip install -e) and 'regular' (pip install)."""
    root = tmp_path_factory.mktemp('venvs')
    return {kind: _venv_with_this_project(root / kind, source, editable=kind == 'editable')
            for kind in ('editable', 'regular')}


@pytest.fixture(scope='module')
def checkouts(tmp_path_factory) -> dict[str, Path]:
    """The old checkout twice: 'namespace' (lernomatic/ without __init__.py, as the original) and 'package'."""
    made = {}
    for layout in ('namespace', 'package'):
        folder = tmp_path_factory.mktemp(layout) / 'lernomatic-checkout'
        shutil.copytree(TREE, folder, ignore=shutil.ignore_patterns('__pycache__'))
        if layout == 'namespace':
            (folder / 'lernomatic' / '__init__.py').unlink()
        (folder / 'test' / 'test_trainer_here.py').write_text(OLD_STYLE_TEST)
        (folder / 'test' / 'test_which_package.py').write_text(WHICH_PACKAGE_TEST)
        made[layout] = folder
    return made


def _installed_package(python: Path, source: Path, kind: str) -> Path:
    """This project's lernomatic/ folder as the install `kind` provides it."""
    if kind == 'editable':
        return source / 'lernomatic'
    site = subprocess.run([str(python), '-c', 'import sysconfig; print(sysconfig.get_path("purelib"))'],
                          check=True, capture_output=True, text=True, timeout=TIMEOUT_S).stdout.strip()
    return Path(site) / 'lernomatic'


def _printed(stdout: str, key: str) -> Path:
    return Path(next(line.split(' ', 1)[1] for line in stdout.splitlines() if line.startswith(key + ' ')))


@pytest.mark.parametrize('layout', ['namespace', 'package'])
@pytest.mark.parametrize('kind', ['editable', 'regular'])
def test_the_checkouts_own_tests_from_its_root_use_this_projects_trainer(pythons, checkouts, source, kind, layout):
    checkout = checkouts[layout]
    result = _run([pythons[kind], '-m', 'pytest', '-q', '-s', '-p', 'no:cacheprovider', 'test/test_trainer_here.py'],
                  checkout, checkout)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert '1 passed' in result.stdout
    ours = _installed_package(pythons[kind], source, kind)
    assert _printed(result.stdout, 'TRAINER_FILE').resolve() == (ours / 'train' / 'trainer.py').resolve()
    tree_module = checkout / 'lernomatic' / 'models' / 'cifar_like.py'
    assert _printed(result.stdout, 'MODEL_FILE').resolve() == tree_module.resolve()


def test_without_lernomatic_path_the_plugin_leaves_the_checkout_alone(pythons, checkouts):
    # the original's own tests can still be run against the original: here the root's folder is what they get
    checkout = checkouts['namespace']
    result = _run([pythons['editable'], '-m', 'pytest', '-q', '-s', '-p', 'no:cacheprovider',
                   'test/test_which_package.py'], checkout, None)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert str(checkout / 'lernomatic') in result.stdout.split('LERNOMATIC_PATHS ', 1)[1].splitlines()[0]


def _doctor(python: Path, checkout: Path, *python_flags: str) -> subprocess.CompletedProcess:
    return _run([python, *python_flags, '-m', 'lernomatic', 'doctor', '--no-import'], checkout, checkout)


def test_doctor_in_the_root_says_the_folder_shadows_an_editable_install(pythons, checkouts):
    checkout = checkouts['namespace']
    result = _doctor(pythons['editable'], checkout, '-P')  # -P: this process itself keeps the root off sys.path
    assert result.returncode == 1, result.stdout + result.stderr
    shadowed = [line for line in result.stdout.splitlines() if line.startswith('shadowed ')]
    assert len(shadowed) == 1, result.stdout
    assert f'imports lernomatic from the folder {checkout / "lernomatic"} (no __init__.py' in shadowed[0]
    assert 'LERNOMATIC_PATH: ' in result.stdout  # the modules are listed all the same
    assert 'Traceback' not in result.stderr


def test_doctor_in_the_root_says_a_package_folder_shadows_a_regular_install(pythons, checkouts):
    checkout = checkouts['package']
    result = _doctor(pythons['regular'], checkout, '-P')
    assert result.returncode == 1, result.stdout + result.stderr
    assert f'imports lernomatic from {checkout / "lernomatic" / "__init__.py"}, not this project' in result.stdout


def test_doctor_in_the_root_of_a_namespace_checkout_with_a_regular_install_finds_nothing_shadowed(pythons, checkouts):
    # the installed package is a regular one: Python prefers it to any namespace folder, wherever that stands
    checkout = checkouts['namespace']
    result = _doctor(pythons['regular'], checkout, '-P')
    assert result.returncode == 0, result.stdout + result.stderr
    assert 'shadowed' not in result.stdout


def test_doctor_run_by_a_shadowed_python_says_so_and_lists_nothing(pythons, checkouts):
    # `python -m lernomatic` in the root of a namespace checkout with an editable install: this very process got
    # the checkout's folder as lernomatic (the editable finder still supplies lernomatic.__main__ and the CLI)
    checkout = checkouts['namespace']
    result = _doctor(pythons['editable'], checkout)
    assert result.returncode == 1, result.stdout + result.stderr
    assert f'this process imported lernomatic from the folder {checkout / "lernomatic"}' in result.stdout
    assert 'LERNOMATIC_PATH is not set' not in result.stdout and 'LERNOMATIC_PATH: ' not in result.stdout
