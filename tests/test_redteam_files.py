"""Hostile files from the red-team report (findings 1, 2, 11, 13, 17b, 19), built here and read by the public loaders.

Each file is small; what makes it hostile is what reading it would cost (a value whose repr or hash
is exponential, a zip entry or `bytearray` that inflates, a walk with no memo), what a probe of it
would skip, or what its key names would put on a terminal. The fixed loaders refuse it (or report
it, bounded) before paying that cost.
"""

from __future__ import annotations

import importlib
import logging
import signal
import struct
import sys
import tracemalloc
import zipfile

import pytest
import torch
from test_hostile_state import original_checkpoint, write

from compat.codec.safe_load import safe_load
from compat.errors import CheckpointError
from lernomatic.param.lr_common import lr_finder_auto_load
from lernomatic.train.trainer import Trainer

from conftest import ORIGINAL

MESSAGE_BOUND = 2_000  # characters: a refusal names the file, the field and the reason, never the whole value


def original_history():
    return torch.load(ORIGINAL / 'mlp_history.pkl')


def shared(depth, leaf=0, width=2, kind=list):
    """`width ** depth` leaves from `depth` objects: each level holds `width` references to the one below."""
    value = leaf
    for _ in range(depth):
        value = kind([value] * width)
    return value


def rezip(path, compression=zipfile.ZIP_STORED, replace=None):
    """Rewrite a torch.save zip entry by entry, compressed or not, with `replace` {name suffix: bytes}."""
    with zipfile.ZipFile(path) as archive:
        entries = [(info.filename, archive.read(info)) for info in archive.infolist()]
    with zipfile.ZipFile(path, 'w', compression=compression) as archive:
        for name, content in entries:
            for suffix, new in (replace or {}).items():
                content = new(content) if name.endswith(suffix) else content
            archive.writestr(name, content)
    return path


def spy_on_torch_load(monkeypatch):
    """From here on, every torch.load is recorded (and fails): a pre-scan refusal never reaches torch."""
    calls = []

    def spy(*args, **kwargs):
        calls.append(args)
        raise RuntimeError('torch.load reached')

    monkeypatch.setattr(torch, 'load', spy)
    return calls


class Hung(Exception):
    """A load still running after the hang guard's minute: the bomb went off."""


def _hang_guard(signum, frame):
    raise Hung('still loading after 60 s')


def refused(load, pattern=None, peak_bytes=None):
    """`load()` raises a CheckpointError with a bounded message (and, if given, within `peak_bytes` of Python
    memory: formatting a bomb in full, even cut afterwards, costs more); the message. A load still running
    after a minute is stopped (a hang guard, not a speed target: a refusal takes milliseconds)."""
    if peak_bytes is not None:
        tracemalloc.start()
    previous = signal.signal(signal.SIGALRM, _hang_guard)
    signal.alarm(60)
    try:
        with pytest.raises(CheckpointError) as refusal:
            load()
        peak = tracemalloc.get_traced_memory()[1] if peak_bytes is not None else 0
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
        if peak_bytes is not None:
            tracemalloc.stop()
    message = str(refusal.value)
    assert len(message) < MESSAGE_BOUND, (len(message), message[:300])
    if peak_bytes is not None:
        assert peak < peak_bytes, (f'{peak:,} bytes taken to refuse', message[:300])
    if pattern is not None:
        assert pattern in message, message[:300]
    return message


# ---- finding 1: a shared-reference value where a check refuses it; its repr has 2**depth leaves
REPR_TARGETS = {
    "trainer_params['num_epochs']": lambda data, v: data['trainer_params'].__setitem__('num_epochs', v),
    "trainer_params['loss_function']": lambda data, v: data['trainer_params'].__setitem__('loss_function', v),
    "model['model_import_path']": lambda data, v: data['model'].__setitem__('model_import_path', v),
    "resume['phase']": lambda data, v: data.__setitem__('resume', {'phase': v}),
    "rng_state['numpy']['algorithm']": lambda data, v: data.__setitem__('rng_state', {'numpy': {
        'algorithm': v, 'keys': 0, 'pos': 0, 'has_gauss': 0, 'cached_gaussian': 0.0}}),
}


@pytest.mark.parametrize('target', list(REPR_TARGETS))
def test_a_repr_bomb_is_refused_quickly_with_a_bounded_message(tmp_path, target):
    # 2**18 leaves: within the pre-scan's budget, so the check that refuses it must not format it in full
    data = original_checkpoint()
    REPR_TARGETS[target](data, shared(18))
    path = write(tmp_path, 'repr_18.pkl', data)
    trainer = Trainer(None, verbose=False)
    refused(lambda: trainer.load_checkpoint(str(path)), pattern=path.name, peak_bytes=2 ** 20)
    # 2**40 leaves in a file of a few KB: refused by the pre-scan (torch would build it cheaply; any repr never ends)
    data = original_checkpoint()
    REPR_TARGETS[target](data, shared(40))
    path = write(tmp_path, 'repr_40.pkl', data)
    assert path.stat().st_size < 50_000
    refused(lambda: safe_load(path), pattern='parts')
    refused(lambda: Trainer(None, verbose=False).load_checkpoint(str(path)), pattern=path.name)


def test_a_repr_bomb_history_counter_is_refused_with_a_bounded_message(tmp_path, make_trainer):
    for depth in (18, 40):
        data = original_history()
        data['loss_iter'] = shared(depth)
        path = write(tmp_path, f'history_repr_{depth}.pkl', data)
        if depth == 40:
            refused(lambda p=path: safe_load(p), pattern='parts')
        trainer = make_trainer()
        refused(lambda p=path, t=trainer: t.load_history(str(p)), pattern=path.name, peak_bytes=2 ** 20)
        assert trainer.loss_iter == 0


@pytest.mark.parametrize('kind', [list, dict, tuple], ids=['list', 'dict', 'tuple'])
def test_a_shared_reference_bomb_is_refused_by_the_pre_scan_whatever_holds_it(tmp_path, kind, monkeypatch):
    """A list or dict is memoized empty and filled afterwards: its shared references count in full all the same."""
    value = 0
    for _ in range(40):
        value = {'a': value, 'b': value} if kind is dict else kind([value, value])
    path = write(tmp_path, 'shared.pkl', {'x': value})
    torch_load_calls = spy_on_torch_load(monkeypatch)
    refused(lambda: safe_load(path), pattern='parts')
    assert torch_load_calls == []


# ---- finding 2: torch's reader inflates compressed entries; weights-only loading allows bytearray(N)
def test_compressed_zip_entries_are_refused_before_torch_reads_them(tmp_path, monkeypatch):
    plain = write(tmp_path, 'deflated.pkl', original_checkpoint())
    rezip(plain, zipfile.ZIP_DEFLATED)  # torch.save never compresses; torch's reader would inflate anything
    data = original_history()
    data['padding'] = torch.zeros(16 * 2 ** 20, dtype=torch.uint8)  # 16 MiB of zeros: a few KiB deflated
    bomb = rezip(write(tmp_path, 'deflated_bomb.pkl', data), zipfile.ZIP_DEFLATED)
    assert bomb.stat().st_size < 2 ** 20 // 4
    torch_load_calls = spy_on_torch_load(monkeypatch)
    for path in (plain, bomb):
        refused(lambda p=path: safe_load(p), pattern='compressed')
        refused(lambda p=path: Trainer(None, verbose=False).load_checkpoint(str(p)), pattern='compressed')
    assert torch_load_calls == []


class _Bytearray:
    """Pickles as `bytearray(size)`: a GLOBAL builtins.bytearray and a REDUCE, which allocate `size` bytes."""

    def __init__(self, size):
        self.size = size

    def __reduce__(self):
        return bytearray, (self.size,)


def test_a_bytearray_global_is_refused_before_torch_allocates(tmp_path, make_trainer, monkeypatch):
    data = original_history()
    data['note'] = [_Bytearray(2 ** 20) for _ in range(4)]  # small here: the refusal is of the global, at any size
    path = write(tmp_path, 'alloc.pkl', data)
    trainer = make_trainer()
    calls = spy_on_torch_load(monkeypatch)
    refused(lambda: safe_load(path), pattern='bytearray')
    refused(lambda: trainer.load_history(str(path)), pattern='bytearray')
    refused(lambda: lr_finder_auto_load(str(path)), pattern='bytearray')
    assert calls == [] and trainer.loss_iter == 0


# ---- finding 11: optimizer hyperparameters as shared or deep tuples
@pytest.mark.parametrize('betas, what', [
    (shared(4, leaf=0.9, width=16, kind=tuple), '16 ** 4 leaves (loaded, then broke training)'),
    (shared(8, leaf=0.9, width=16, kind=tuple), '16 ** 8 leaves (a walk without a memo: hours)'),
    (shared(8, leaf=0.9, width=16, kind=list), '16 ** 8 leaves, in lists'),
    (shared(200, leaf=0.9, width=1, kind=tuple), 'nested 200 deep'),
], ids=['shared-4', 'shared-8', 'shared-8-lists', 'deep'])
def test_exponential_or_deep_optimizer_hyperparameters_are_refused(make_trainer, tmp_path, betas, what):
    data = original_checkpoint()
    data['optim']['param_groups'][0]['betas'] = betas
    path = write(tmp_path, 'betas.pkl', data)
    assert path.stat().st_size < 50_000, what
    trainer = make_trainer(num_epochs=7)
    optimizer, model = trainer.optimizer, trainer.model
    refused(lambda: trainer.load_checkpoint(str(path)), pattern=path.name)
    assert trainer.optimizer is optimizer and trainer.model is model and trainer.num_epochs == 7
    assert optimizer.param_groups[0]['betas'] == (0.9, 0.999)


# ---- finding 13: a dict key whose hash has 2**depth steps, hashed by the unpickler itself
def hash_bomb(tmp_path, depth):
    """The original checkpoint with one more top-level key: ((0, 0), (0, 0)) ... nested `depth` deep.

    Written by hand (a Python dict would hash the key while the file is built): a placeholder key is
    swapped in data.pkl for BININT1 0 followed by `depth` times (LONG_BINPUT, LONG_BINGET of one memo
    slot, TUPLE2): each level a pair of references to the level below.
    """
    data = original_checkpoint()
    placeholder = 'REDTEAM_HASH_BOMB_KEY'
    data[placeholder] = 1
    path = write(tmp_path, f'hash_bomb_{depth}.pkl', data)
    old = b'X' + struct.pack('<I', len(placeholder)) + placeholder.encode()
    slot = struct.pack('<I', 1_000_000)  # far above the memo slots torch.save used
    new = b'K\x00' + (b'r' + slot + b'j' + slot + b'\x86') * depth

    def swap(pickle_bytes):
        assert pickle_bytes.count(old) == 1
        return pickle_bytes.replace(old, new)

    return rezip(path, replace={'/data.pkl': swap})


def test_a_hash_bomb_key_is_refused_by_the_pre_scan(tmp_path, monkeypatch):
    path = hash_bomb(tmp_path, 60)  # 2**60 hash steps: torch's unpickler would never return
    assert path.stat().st_size < 50_000
    torch_load_calls = spy_on_torch_load(monkeypatch)
    refused(lambda: safe_load(path))
    refused(lambda: Trainer(None, verbose=False).load_checkpoint(str(path)), pattern=path.name)
    assert torch_load_calls == []


def test_a_hash_bomb_within_reach_is_refused_too(tmp_path):
    """2**24 steps (a fraction of a second for torch) is already past the budget: no file of these formats needs it."""
    path = hash_bomb(tmp_path, 24)
    refused(lambda: Trainer(None, verbose=False).load_checkpoint(str(path)), pattern=path.name)


def test_the_hand_built_file_is_read_by_torch_and_its_short_key_refused_all_the_same(tmp_path):
    """The splice itself makes a file torch reads; a tuple key, even a short one, is refused (no Lernomatic file
    has one, and a key's kind, not its length, is what the pre-scan can bound: see test_torch_layout)."""
    path = hash_bomb(tmp_path, 3)
    assert (((0, 0), (0, 0)), ((0, 0), (0, 0))) in torch.load(path, weights_only=True)
    refused(lambda: safe_load(path), pattern='dict key')


# ---- finding 17b: a network that cannot be built on the meta device, from a file's own model_args
PROBE_MODULE = '''
import torch
import torch.nn as nn

from lernomatic.models import common


class ProbeNet(nn.Module):
    """Reads a value while it is built (.item()): it cannot be built on the meta device."""

    def __init__(self, pool=64, dim=12, num_classes=3):
        super().__init__()
        order = torch.randperm(pool)  # real memory for pool elements, whatever the file says pool is
        self.start = int(order[0].item()) % dim
        self.fc = nn.Linear(dim, num_classes)

    def forward(self, x):
        return self.fc(x)


class ProbeModel(common.LernomaticModel):
    def __init__(self, **kwargs):
        self.net = ProbeNet()
        self.import_path = self.module_import_path = __name__
        self.model_name, self.module_name = 'ProbeModel', 'ProbeNet'

    def get_model_args(self):
        return {'pool': 64, 'dim': 12, 'num_classes': 3}
'''


@pytest.fixture
def probe_nets(tmp_path, monkeypatch):
    """A user's model module (imported, as a script imports its models) with a network meta cannot build."""
    name = 'redteam_probe_nets'
    (tmp_path / f'{name}.py').write_text(PROBE_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield importlib.import_module(name)
    sys.modules.pop(name, None)


def probe_checkpoint(tmp_path, nets, name, **args):
    model = nets.ProbeModel()
    data = original_checkpoint()
    data['model'] = model.get_params()
    data['model']['model_args'].update(args)
    data['optim'] = torch.optim.Adam(model.get_model_parameters(), lr=1e-3, weight_decay=1e-5).state_dict()
    return write(tmp_path, name, data)


def test_foreign_model_args_for_a_network_meta_cannot_build_are_refused_unless_trusted(tmp_path, probe_nets):
    # a small pool here; the same file with pool=10**9 would take gigabytes before any shape is compared
    path = probe_checkpoint(tmp_path, probe_nets, 'foreign_args.pkl', pool=100_000)
    with pytest.raises(CheckpointError, match=r"\['model'\]\['model_args'\].*cannot be built on the meta device"):
        Trainer(None, verbose=False).load_checkpoint(str(path))
    wrapper = probe_nets.ProbeModel()
    net = wrapper.net
    with pytest.raises(CheckpointError, match=r"\['model_args'\].*meta device.*trusted=True"):
        wrapper.load_checkpoint(str(path))
    assert wrapper.net is net

    trainer = Trainer(None, verbose=False)
    trainer.load_checkpoint(str(path), trusted=True)  # the user vouches for the file: built as it asks
    assert isinstance(trainer.model.get_net(), probe_nets.ProbeNet)
    wrapper.load_checkpoint(str(path), trusted=True)
    assert wrapper.net is not net


def test_the_wrappers_own_model_args_load_without_a_probe(tmp_path, probe_nets):
    path = probe_checkpoint(tmp_path, probe_nets, 'own_args.pkl')
    trainer = Trainer(None, verbose=False)
    trainer.load_checkpoint(str(path))
    assert isinstance(trainer.model, probe_nets.ProbeModel)
    wrapper = probe_nets.ProbeModel()
    wrapper.load_checkpoint(str(path))
    assert isinstance(wrapper.net, probe_nets.ProbeNet)


# ---- finding 19: undeclared history keys in the warning
def test_undeclared_history_keys_are_reported_bounded_and_escaped(make_trainer, tmp_path, caplog):
    data = original_history()
    spoof = '\x1b[2J\x1b[H\x1b[31mlernomatic: checkpoint verified, signature OK\x1b[0m\n'
    huge = 'H' * 1_000_000
    data[spoof] = 0
    data[huge] = 0
    data.update({f'k{i:05d}': 0 for i in range(5_000)})
    path = write(tmp_path, 'keys.pkl', data)
    trainer = make_trainer()
    caplog.set_level(logging.WARNING)
    trainer.load_history(str(path))
    assert trainer.loss_iter == 30  # the declared values still load
    warnings = [record.getMessage() for record in caplog.records if 'ignored key' in record.getMessage()]
    assert len(warnings) == 1
    warning = warnings[0]
    assert len(warning) < MESSAGE_BOUND, len(warning)
    assert not any(ord(c) < 32 or ord(c) == 127 for c in warning), repr(warning[:300])  # no ESC, no newline
    assert 'HHHHHHHHHH' * 20 not in warning
    assert sum(f'k{i:05d}' in warning for i in range(5_000)) <= 10
    assert '5002 keys' in warning or 'and 4992 more' in warning, warning[-200:]
    assert path.name in warning
    assert '\\x1b[2J' in warning  # the spoofing key is named, escaped

