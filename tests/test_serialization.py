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
from compat.codec.atomic import atomic_save
from compat.codec.safe_load import safe_load
from compat.errors import CheckpointError


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
    code = ('import sys; from compat.codec.safe_load import safe_load; '
            f'h = safe_load({str(original_dir / "mlp_history.pkl")!r}); '
            'print(type(h["loss_history"]).__name__, "lernomatic" in sys.modules)')
    run = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, cwd=REPO)
    assert run.stdout.split() == ['ndarray', 'False'], run.stderr[-2000:]


def test_saved_files_get_the_mode_an_ordinary_write_gives(tmp_path):
    """Not mkstemp's 0600: 0666 less the umask for a new file, the old mode for a replaced one."""
    fname = tmp_path / 'ck.pkl'
    old_umask = os.umask(0o027)
    try:
        atomic_save({'a': 1}, fname)
    finally:
        os.umask(old_umask)
    assert fname.stat().st_mode & 0o777 == 0o640
    fname.chmod(0o604)
    atomic_save({'a': 2}, fname)
    assert fname.stat().st_mode & 0o777 == 0o604 and safe_load(fname) == {'a': 2}


def test_saving_through_a_symlink_replaces_the_file_it_points_to(tmp_path):
    real = tmp_path / 'runs' / 'ck.pkl'
    atomic_save({'a': 1}, real)
    link = tmp_path / 'latest.pkl'
    link.symlink_to(real)
    atomic_save({'a': 2}, link)
    assert link.is_symlink() and safe_load(real) == {'a': 2}


def test_a_folder_as_target_is_named(tmp_path):
    with pytest.raises(CheckpointError, match=f'{tmp_path}: is a folder: give a file name'):
        atomic_save({'a': 1}, tmp_path)
    with pytest.raises(CheckpointError, match='is a folder, not a checkpoint'):
        safe_load(tmp_path)


def test_a_killed_save_leaves_a_temporary_that_the_next_save_removes(tmp_path):
    """SIGKILL a process in the middle of torch.save; the next save into that folder cleans up after it."""
    import signal
    import subprocess
    import sys
    import time

    from conftest import REPO
    code = ('import sys, time, torch; from compat.codec import atomic as s\n'
            'class Slow:\n'
            '    def __reduce__(self):\n'
            '        print("writing", flush=True); time.sleep(60); return (dict, ())\n'
            f's.atomic_save({{"x": torch.zeros(10), "slow": Slow()}}, {str(tmp_path / "ck.pkl")!r})\n')
    process = subprocess.Popen([sys.executable, '-c', code], cwd=REPO, stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline().strip() == 'writing'
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    left = [p.name for p in tmp_path.iterdir()]
    assert len(left) == 1 and left[0].startswith('.ck.pkl.') and left[0].endswith('.tmp')
    time.sleep(0.01)
    atomic_save({'a': 1}, tmp_path / 'other.pkl')
    assert sorted(p.name for p in tmp_path.iterdir()) == ['other.pkl']


@pytest.mark.parametrize('pid', ['99999999999999999999', '9' * 200, '0', '4194305'])
def test_a_planted_temporary_name_neither_breaks_a_save_nor_is_removed(tmp_path, make_trainer, pid):
    """A name in the folder that looks like our temporaries but holds no pid of ours (issue 24, finding 6)."""
    from compat.codec.atomic import _WRITER_TAG
    planted = tmp_path / f'.x.{_WRITER_TAG}-{pid}-a.tmp'
    planted.write_bytes(b'someone else\'s')
    atomic_save({'a': 1}, tmp_path / 'ck.pkl')  # raised OverflowError ("signed integer is greater than maximum")
    assert safe_load(tmp_path / 'ck.pkl') == {'a': 1}
    trainer = make_trainer(checkpoint_dir=str(tmp_path))
    trainer.save_checkpoint(str(tmp_path / 'trainer.pkl'))
    trainer.save_history(str(tmp_path / 'history.pkl'))
    assert planted.read_bytes() == b'someone else\'s'  # not ours to remove
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([planted.name, 'ck.pkl', 'trainer.pkl',
                                                                 'history.pkl'])


def test_a_full_disk_is_named_and_the_previous_file_survives(tmp_path):
    """On a real, tiny file system (a tmpfs in a private mount namespace) or, where no namespace can be
    made, under a file-size limit: the error names the file and the cause, the old file is intact."""
    import subprocess
    import sys

    from conftest import REPO
    script = tmp_path / 'fill.py'
    script.write_text(
        'import sys, torch\n'
        'from compat.errors import CheckpointError\n'
        'from compat.codec.atomic import atomic_save\nfrom compat.codec.safe_load import safe_load\n'
        'target = sys.argv[1] + "/ck.pkl"\n'
        'atomic_save({"small": torch.zeros(4)}, target)\n'
        'try:\n'
        '    atomic_save({"big": torch.zeros(1_000_000)}, target)\n'
        'except CheckpointError as error:\n'
        '    print("REFUSED", error)\n'
        'import os\n'
        'print("LEFT", sorted(os.listdir(sys.argv[1])), safe_load(target)["small"].shape[0])\n')
    mount_point = tmp_path / 'tiny'
    mount_point.mkdir()
    command = (f'mount -t tmpfs -o size=256k none {mount_point} && '
               f'{sys.executable} {script} {mount_point}')
    run = subprocess.run(['unshare', '--user', '--map-root-user', '--mount', 'sh', '-c', command],
                         capture_output=True, text=True, cwd=REPO, env=dict(os.environ, PYTHONPATH=str(REPO)))
    if 'REFUSED' not in run.stdout:  # no mount namespace here: a file-size limit of 256 kB instead
        limited = ('import resource, signal, runpy, sys; signal.signal(signal.SIGXFSZ, signal.SIG_IGN); '
                   'resource.setrlimit(resource.RLIMIT_FSIZE, (256_000, 256_000)); '
                   f'sys.argv = [{str(script)!r}, {str(mount_point)!r}]; runpy.run_path({str(script)!r})')
        run = subprocess.run([sys.executable, '-c', limited], capture_output=True, text=True, cwd=REPO,
                             env=dict(os.environ, PYTHONPATH=str(REPO)))
    assert 'REFUSED' in run.stdout, run.stdout + run.stderr
    refusal = next(line for line in run.stdout.splitlines() if line.startswith('REFUSED'))
    assert 'ck.pkl: the disk is full' in refusal or 'ck.pkl: the file is larger than this process may write' in refusal
    assert 'the previous file (if any) is unchanged' in refusal
    assert "LEFT ['ck.pkl'] 4" in run.stdout  # no temporary left, the old contents intact
