"""Fuzzing the loaders with mutated and truncated real files: a well-formed result or CheckpointError, nothing else."""

from __future__ import annotations

import io
import zipfile

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from compat.codec.checkpoint import read_checkpoint
from compat.codec.history_file import read_history
from compat.errors import CheckpointError

from conftest import ORIGINAL

SOURCES = {name: (ORIGINAL / name).read_bytes() for name in ('mlp_trainer_ck.pkl', 'mlp_history.pkl')}
READERS = {'mlp_trainer_ck.pkl': read_checkpoint, 'mlp_history.pkl': read_history}
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
seen = {'loaded': 0, 'refused': 0}


def pickled_part(data: bytes) -> tuple[int, int]:
    """Where the pickle (data.pkl) lies inside the zip, so mutations can aim at it as well as anywhere."""
    archive = zipfile.ZipFile(io.BytesIO(data))
    info = next(i for i in archive.infolist() if i.filename.endswith('data.pkl'))
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    return start, start + info.file_size


def check(reader, path) -> None:
    try:
        result = reader(path)
    except CheckpointError:
        seen['refused'] += 1
        return
    assert isinstance(result, dict)  # well-formed: the documented keys were checked by the reader
    seen['loaded'] += 1


@FUZZ
@given(name=st.sampled_from(sorted(SOURCES)), edits=st.lists(st.tuples(st.floats(0, 1), st.integers(0, 255)),
                                                             min_size=1, max_size=8), aim=st.booleans())
def test_mutated_bytes(tmp_path_factory, name, edits, aim):
    data = bytearray(SOURCES[name])
    low, high = pickled_part(bytes(data)) if aim else (0, len(data))
    for where, byte in edits:
        data[low + int(where * (high - low - 1))] = byte
    path = tmp_path_factory.mktemp('fuzz') / name
    path.write_bytes(bytes(data))
    check(READERS[name], path)


@FUZZ
@given(name=st.sampled_from(sorted(SOURCES)), cut=st.floats(0, 1))
def test_truncated(tmp_path_factory, name, cut):
    data = SOURCES[name]
    path = tmp_path_factory.mktemp('cut') / name
    path.write_bytes(data[: int(cut * (len(data) - 1))])
    with pytest.raises(CheckpointError):
        READERS[name](path)


def test_fuzz_reached_both_outcomes():
    """Runs last in this file: the mutations both broke files and left some loadable."""
    assert seen['refused'] > 0 and seen['loaded'] > 0, seen


def test_wrong_types_inside_a_valid_file(tmp_path):
    data = torch.load(ORIGINAL / 'mlp_trainer_ck.pkl')
    data['model'] = ['not', 'a', 'dict']
    torch.save(data, tmp_path / 'odd.pkl')
    from lernomatic.train.trainer import Trainer
    with pytest.raises(CheckpointError, match='expected a model metadata dict, got list'):
        Trainer(None, verbose=False).load_checkpoint(str(tmp_path / 'odd.pkl'))


@FUZZ
@given(edits=st.lists(st.tuples(st.floats(0, 1), st.integers(0, 255)), min_size=1, max_size=4))
def test_mutated_checkpoint_through_the_trainer(tmp_path_factory, edits):
    """The whole load: trainer params, model rebuilt from its metadata, optimizer state."""
    from lernomatic.train.trainer import Trainer
    data = bytearray(SOURCES['mlp_trainer_ck.pkl'])
    low, high = pickled_part(bytes(data))
    for where, byte in edits:
        data[low + int(where * (high - low - 1))] = byte
    path = tmp_path_factory.mktemp('whole') / 'ck.pkl'
    path.write_bytes(bytes(data))
    trainer = Trainer(None, verbose=False)
    try:
        trainer.load_checkpoint(str(path))
    except CheckpointError:
        return
    assert trainer.model is not None and trainer.optimizer is not None
