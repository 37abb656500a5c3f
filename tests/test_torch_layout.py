"""The pre-scan walks the bytes torch will unpickle (issue 24, finding 2), each stranger's file built here.

torch finds `archive/data.PKL` as well as `archive/data.pkl`; it tells a zip by its first four
bytes, so an old-format pickle with a zip appended is read as the pickle; and a dict whose keys
collide, or whose key is exponentially costly to hash, never finishes unpickling. Each hostile file
is loaded in a child under an address-space limit and a timeout (`guarded.py`), and must be refused
with the file named, before torch reads it, leaving every file outside the child's folder as it was.
"""

from __future__ import annotations

import io
import pickle
import struct
import tarfile
import zipfile

import numpy as np
import pytest
import torch
from guarded import guarded_load, snapshot
from test_hostile_state import original_checkpoint

from compat.codec.prescan import prescan
from compat.codec.safe_load import safe_load
from compat.errors import CheckpointError

from conftest import ORIGINAL

PLACEHOLDER = 'REDTEAM_PLACEHOLDER_VALUE'
COLLIDING_KEYS = 100_000  # ints k * (2**61 - 1) share one hash: a dict of them takes minutes to build (quadratic)


def original_history():
    return torch.load(ORIGINAL / 'mlp_history.pkl')


def _binunicode(text):
    return b'X' + struct.pack('<I', len(text)) + text.encode()


def tuple_hash_bomb(depth=60):
    """Pickle ops leaving a tuple ((0, 0), (0, 0)) ... `depth` deep: 2**depth steps to hash."""
    slot = struct.pack('<I', 1_000_000)
    return b'K\x00' + (b'r' + slot + b'j' + slot + b'\x86') * depth


def tuple_key_dict(depth=60):
    """Pickle ops leaving {tuple_hash_bomb: 0}: the unpickler hashes the key to insert it."""
    return b'}' + tuple_hash_bomb(depth) + b'K\x00s'


def colliding_dict(count=COLLIDING_KEYS):
    """Pickle ops leaving a dict of `count` integer keys that all hash alike (multiples of 2**61 - 1)."""
    keys = []
    for k in range(1, count + 1):
        value = k * (2 ** 61 - 1)
        raw = value.to_bytes((value.bit_length() + 8) // 8, 'little', signed=True)
        keys.append(b'\x8a' + bytes([len(raw)]) + raw + b'K\x00')
    return b'}(' + b''.join(keys) + b'u'


def with_value(data, payload, path, legacy=False):
    """torch.save `data` with one more key whose value's pickle ops are `payload` (spliced in by hand)."""
    data = dict(data)
    data['redteam'] = PLACEHOLDER
    torch.save(data, path, _use_new_zipfile_serialization=not legacy)
    old = _binunicode(PLACEHOLDER)
    if legacy:
        content = path.read_bytes()
        assert content.count(old) == 1
        path.write_bytes(content.replace(old, payload))
        return path
    with zipfile.ZipFile(path) as archive:
        entries = [(info.filename, archive.read(info)) for info in archive.infolist()]
    with zipfile.ZipFile(path, 'w') as archive:
        for name, content in entries:
            archive.writestr(name, content.replace(old, payload) if name.endswith('/data.pkl') else content)
    return path


def rename_members(path, rename):
    with zipfile.ZipFile(path) as archive:
        entries = [(info.filename, archive.read(info)) for info in archive.infolist()]
    with zipfile.ZipFile(path, 'w') as archive:
        for name, content in entries:
            for new_name in rename(name):
                archive.writestr(new_name, content)
    return path


def small_zip():
    buffer = io.BytesIO()
    torch.save({'a': 1}, buffer)
    return buffer.getvalue()


def assert_refused(result, path, *fragments):
    assert result['outcome'] == 'refused', result
    assert path.name in result['message'], result['message'][:300]
    for fragment in fragments:
        assert fragment in result['message'], result['message'][:300]
    assert len(result['message']) < 2_000
    assert result['torch_load_reached'] == [], result['torch_load_reached']


@pytest.fixture
def stranger(tmp_path):
    """A folder for the stranger's files, and one for the run that loads them."""
    (tmp_path / 'files').mkdir()
    return tmp_path / 'files', tmp_path / 'run'


# ---- 2a: members matched as torch matches them
def test_torch_finds_data_pkl_in_any_case_so_the_pre_scan_walks_it(stranger):
    files, _ = stranger
    upper = rename_members(with_value(original_history(), _binunicode('plain'), files / 'upper.pkl'),
                           lambda name: [name.replace('data.pkl', 'data.PKL')])
    assert torch.load(upper, weights_only=True)['redteam'] == 'plain'  # torch's reader ignores case
    assert safe_load(upper)['redteam'] == 'plain'


@pytest.mark.parametrize('layout', ['upper', 'both'])
def test_a_bomb_in_an_uppercase_data_pkl_is_refused(stranger, layout):
    files, run = stranger
    path = with_value(original_checkpoint(), tuple_key_dict(), files / f'{layout}.pkl')
    with zipfile.ZipFile(path) as archive:
        bomb = next(archive.read(info) for info in archive.infolist() if info.filename.endswith('data.pkl'))
    rename_members(path, lambda name: [name.replace('data.pkl', 'DATA.PKL')])
    if layout == 'both':  # a harmless data.pkl beside the bomb: torch's lookup may land on either, so both are walked
        harmless = files / 'harmless.pkl'
        torch.save(original_checkpoint(), harmless)
        with zipfile.ZipFile(harmless) as archive:
            entries = [(info.filename, archive.read(info)) for info in archive.infolist()]
        prefix = entries[0][0].split('/')[0]
        with zipfile.ZipFile(path, 'w') as archive:
            for name, content in entries:
                archive.writestr(name.replace(prefix, 'archive', 1), content)
            archive.writestr('archive/Data.Pkl', bomb)
    before = snapshot(files)
    assert_refused(guarded_load('checkpoint', path, run), path)
    assert snapshot(files) == before


# ---- 2b: the format told by the first bytes, as torch tells it
def test_an_old_format_pickle_with_a_zip_appended_is_read_as_the_pickle(stranger):
    files, _ = stranger
    path = with_value(original_history(), _binunicode('the pickle'), files / 'appended.pkl', legacy=True)
    path.write_bytes(path.read_bytes() + small_zip())
    assert zipfile.is_zipfile(path)  # the trap: zipfile finds the appended archive
    assert torch.load(path, weights_only=True)['redteam'] == 'the pickle'  # torch reads the pickle
    assert safe_load(path)['redteam'] == 'the pickle'


@pytest.mark.parametrize('mode', ['checkpoint', 'history', 'plot'])
def test_a_hash_bomb_pickle_with_a_zip_appended_is_refused(stranger, mode):
    files, run = stranger
    data = original_checkpoint() if mode == 'checkpoint' else original_history()
    path = with_value(data, tuple_key_dict(), files / f'appended_{mode}.pkl', legacy=True)
    path.write_bytes(path.read_bytes() + small_zip())
    assert path.stat().st_size < 50_000
    before = snapshot(files)
    result = guarded_load(mode, path, run)
    if mode == 'plot':
        assert result['status'] == 2 and path.name in result['stderr'], result
        assert len(result['stderr'].strip().splitlines()) == 1 and result['torch_load_reached'] == []
        assert not (run / 'plot.png').exists()
    else:
        assert_refused(result, path)
    assert snapshot(files) == before


def test_torchs_tar_format_is_refused_before_torch_unpacks_it(stranger):
    files, run = stranger
    path = files / 'old.tar'
    with tarfile.open(path, 'w:', format=tarfile.PAX_FORMAT) as archive:
        for name in ('storages', 'tensors', 'pickle'):
            content = pickle.dumps({'a': 1}, protocol=2)
            info = tarfile.TarInfo(name)
            info.size = len(content)
            archive.addfile(info, io.BytesIO(content))
    before = snapshot(files)
    assert_refused(guarded_load('history', path, run), path, 'tar format')  # guarded: its TMPDIR stays empty
    assert snapshot(files) == before


def test_a_second_central_directory_is_refused(stranger):
    """zipfile reads the directory just before the end record, torch's reader the one the end record points at."""
    files, _ = stranger
    path = with_value(original_history(), _binunicode('plain'), files / 'two_directories.pkl')
    content = path.read_bytes()
    end = content.rindex(b'PK\x05\x06')
    directory_size, directory_offset = struct.unpack('<LL', content[end + 12:end + 20])
    directory = content[directory_offset:directory_offset + directory_size]
    # the same directory again, after the first: zipfile now reads the copy, the end record still names the first
    path.write_bytes(content[:end] + directory + content[end:end + 12]
                     + struct.pack('<LL', directory_size, directory_offset) + content[end + 20:])
    with pytest.raises(CheckpointError, match='central directory'):
        safe_load(path)


# ---- 2c: time bounded as well as memory
@pytest.mark.parametrize('bomb', ['tuple-key', 'colliding-keys'])
def test_a_hash_bomb_dict_is_refused_not_waited_for(stranger, bomb):
    files, run = stranger
    payload = tuple_key_dict() if bomb == 'tuple-key' else colliding_dict()
    path = with_value(original_checkpoint(), payload, files / f'{bomb}.pkl')
    assert path.stat().st_size < 2 * 2 ** 20
    before = snapshot(files)
    # the tuple key passes the parts budget long before its key is met; the colliding keys are each small
    assert_refused(guarded_load('checkpoint', path, run), path, 'parts' if bomb == 'tuple-key' else 'dict key')
    assert snapshot(files) == before


def test_an_ordered_dict_built_from_arguments_is_refused(tmp_path):
    class Pairs:
        def __reduce__(self):
            from collections import OrderedDict
            return OrderedDict, ([((1, 2), 3)],)

    path = tmp_path / 'pairs.pkl'
    torch.save({'state': Pairs()}, path)
    with pytest.raises(CheckpointError, match='OrderedDict built from arguments'):
        safe_load(path)


def test_what_lernomatic_files_hold_still_passes(tmp_path):
    """Both sides: the original's files, and torch.save files of every kind of key these formats use."""
    for original in ORIGINAL.glob('*.pkl'):
        prescan(original)
    optimizer = torch.optim.Adam([torch.nn.Parameter(torch.zeros(3))])
    optimizer.zero_grad()
    optimizer.param_groups[0]['params'][0].grad = torch.ones(3)
    optimizer.step()
    record = {'optim': optimizer.state_dict(), 'net': torch.nn.Linear(2, 2).state_dict(), 'counts': {0: 1, -5: 2},
              'hist': np.zeros(4), 'flags': {None: True, True: 1.5, 'x': b'raw'}}
    for legacy in (False, True):
        path = tmp_path / f'kinds_{legacy}.pkl'
        torch.save(record, path, _use_new_zipfile_serialization=not legacy)
        loaded = safe_load(path)
        assert loaded['counts'] == {0: 1, -5: 2} and 0 in loaded['optim']['state']
