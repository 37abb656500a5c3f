"""Safe loading (weights-only, numpy allowed, hostile files refused) and crash-safe writing."""

from __future__ import annotations

import fractions
import os
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

import lernomatic  # noqa: F401 - importing it registers numpy's types for bare torch.load
from compat.errors import CheckpointError
from compat.serialization import atomic_save, safe_load


class _RunsCode:
    """Unpickling this runs a shell command: what a hostile checkpoint does."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f'touch {self.marker}',))


def test_bare_torch_load_reads_original_history_after_import(original_dir):
    history = torch.load(original_dir / 'mlp_history.pkl')  # weights_only=True is torch's default
    assert isinstance(history['loss_history'], np.ndarray)
    assert history['loss_history'].dtype == np.float64 and len(history['loss_history']) == 30


def test_numpy1_spelled_history_loads(original_dir, tmp_path):
    """Files written under numpy 1.x name 'numpy.core.multiarray'; they must load too."""
    source = zipfile.ZipFile(original_dir / 'mlp_history.pkl')
    target = tmp_path / 'numpy1_history.pkl'
    with zipfile.ZipFile(target, 'w', compression=zipfile.ZIP_STORED) as out:
        for info in source.infolist():
            data = source.read(info)
            if info.filename.endswith('data.pkl'):
                assert b'numpy._core.multiarray' in data
                data = data.replace(b'numpy._core.multiarray', b'numpy.core.multiarray')
            out.writestr(info, data)
    history = safe_load(target)
    np.testing.assert_array_equal(history['acc_history'][:3], [22 / 60, 29 / 60, 36 / 60])


def test_hostile_file_is_refused_and_runs_nothing(tmp_path):
    marker = tmp_path / 'pwned'
    hostile = tmp_path / 'hostile.pkl'
    torch.save({'model': _RunsCode(marker)}, hostile)
    with pytest.raises(CheckpointError, match=r'refused to unpickle .*system.*trusted=True'):
        safe_load(hostile)
    assert not marker.exists()


def test_trusted_loads_arbitrary_objects(tmp_path):
    fname = tmp_path / 'fraction.pkl'
    torch.save({'value': fractions.Fraction(1, 3)}, fname)
    with pytest.raises(CheckpointError, match='fractions.Fraction'):
        safe_load(fname)
    assert safe_load(fname, trusted=True)['value'] == fractions.Fraction(1, 3)


@pytest.mark.parametrize('content, message', [(b'', 'empty'), (b'PK\x03\x04garbage', 'truncated or not a torch.save')])
def test_unreadable_files_name_the_problem(tmp_path, content, message):
    fname = tmp_path / 'broken.pkl'
    fname.write_bytes(content)
    with pytest.raises(CheckpointError, match=message):
        safe_load(fname)


def test_truncated_checkpoint(original_dir, tmp_path):
    data = (original_dir / 'mlp_trainer_ck.pkl').read_bytes()
    fname = tmp_path / 'cut.pkl'
    fname.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=str(fname)):
        safe_load(fname)


def test_missing_file(tmp_path):
    with pytest.raises(CheckpointError, match='no such file'):
        safe_load(tmp_path / 'nope.pkl')


def test_atomic_save_replaces_and_leaves_no_temp(tmp_path):
    fname = tmp_path / 'sub' / 'ck.pkl'
    atomic_save({'a': 1}, fname)
    atomic_save({'a': 2}, fname)
    assert safe_load(fname) == {'a': 2}
    assert [p.name for p in fname.parent.iterdir()] == ['ck.pkl']


def test_failed_save_keeps_the_old_file(tmp_path):
    fname = tmp_path / 'ck.pkl'
    atomic_save({'a': 1}, fname)
    with pytest.raises((AttributeError, TypeError, pickle.PicklingError)):
        atomic_save({'a': lambda: None}, fname)  # lambdas cannot be pickled: fails mid-write
    assert safe_load(fname) == {'a': 1}
    assert [p.name for p in tmp_path.iterdir()] == ['ck.pkl']


def test_safe_load_allows_numpy_without_importing_lernomatic(original_dir):
    """The allow-list is explicit in every load, not a side effect of `import lernomatic`."""
    import subprocess
    import sys

    from conftest import REPO
    code = ('import sys; from compat.serialization import safe_load; '
            f'h = safe_load({str(original_dir / "mlp_history.pkl")!r}); '
            'print(type(h["loss_history"]).__name__, "lernomatic" in sys.modules)')
    run = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, cwd=REPO)
    assert run.stdout.split() == ['ndarray', 'False'], run.stderr[-2000:]
