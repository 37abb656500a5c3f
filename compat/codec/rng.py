"""The random number generators' states, saved in checkpoints so a resumed run draws what the whole run drew.

With `shuffle=True` each epoch's order comes from torch's global generator (the DataLoader's
sampler and its worker seed draw from it), as do dropout masks: restoring it at a resume makes the
following batches identical to an uninterrupted run.

The stored form holds only tensors and Python ints, floats, strings and tuples, so the original
Lernomatic's bare `torch.load` (weights-only since torch 2.6, numpy not allowed) still reads a
checkpoint that carries it:

    {'torch':  uint8 tensor                      # torch.get_rng_state()
     'numpy':  {'algorithm': 'MT19937', 'keys': int64 tensor [624], 'pos': int,
                'has_gauss': int, 'cached_gaussian': float}
     'python': (3, (625 ints), float or None)    # random.getstate()
     'cuda':   [uint8 tensor, ...]}              # one per GPU, when CUDA was in use
"""

from __future__ import annotations

import random
import struct
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from compat.text import short_repr

__all__ = ['capture_rng_state', 'restore_rng_state', 'check_rng_state', 'RngStateError']

_MT_WORDS = 624
_TORCH_STATE_BYTES = torch.get_rng_state().numel()
_CUDA_STATE_BYTES = 16  # Philox: seed and offset, 8 bytes each
# torch's CPU generator state starts with (initial seed: u64, left: i32, seeded: i32, next: u64, 624 words: u64).
_TORCH_HEAD = struct.Struct('<QiiQ')


class RngStateError(ValueError):
    """A stored generator state that is not one: the message says which part is wrong."""


def capture_rng_state() -> dict[str, Any]:
    """torch (CPU and every initialised CUDA device), numpy and Python `random` states, in the stored form."""
    numpy_state = np.random.get_state()
    if not isinstance(numpy_state, tuple):  # a dict when np.random.set_bit_generator() replaced MT19937
        raise RngStateError(f"numpy's global generator is a {numpy_state.get('bit_generator')}: only an MT19937 "
                            "state can be stored (the original's form)")
    algorithm, keys, pos, has_gauss, cached = numpy_state
    state: dict[str, Any] = {
        'torch': torch.get_rng_state(),
        'numpy': {'algorithm': str(algorithm), 'keys': torch.from_numpy(keys.astype(np.int64)), 'pos': int(pos),
                  'has_gauss': int(has_gauss), 'cached_gaussian': float(cached)},
        'python': random.getstate(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state['cuda'] = torch.cuda.get_rng_state_all()
    return state


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _byte_tensor(value: Any, what: str, size: int | None = None) -> torch.Tensor:
    if not isinstance(value, torch.Tensor) or value.dtype != torch.uint8 or value.dim() != 1:
        raise RngStateError(f'{what} must be a 1-d uint8 tensor, got {type(value).__name__}')
    if size is not None and value.numel() != size:
        raise RngStateError(f'{what} holds {value.numel()} bytes, a generator state holds {size}')
    return value


def _degenerate(words: Any) -> bool:
    """An all-zero Mersenne Twister state (its first word counts by its top bit only) yields 0 forever."""
    return int(words[0]) & 0x80000000 == 0 and not any(int(word) for word in words[1:])


def _torch_state(value: Any) -> torch.Tensor:
    """torch's CPU generator state, its counters inside the 624-word array it reads from.

    torch's own check lets `left` and `next` point past the array (the draws that follow would read
    other memory), so the position is checked here: each draw reads word `next`, `left - 1` draws
    before the array is refilled.
    """
    tensor = _byte_tensor(value, "'torch'", _TORCH_STATE_BYTES)
    raw = tensor.contiguous().numpy().tobytes()
    _seed, left, seeded, position = _TORCH_HEAD.unpack_from(raw, 0)
    if seeded != 1 or not 1 <= left <= _MT_WORDS or position > _MT_WORDS or left + position > _MT_WORDS + 1:
        raise RngStateError(f"'torch' is not a generator state torch wrote (seeded={seeded}, left={left}, "
                            f'next={position})')
    words = np.frombuffer(raw, dtype='<u8', count=_MT_WORDS, offset=_TORCH_HEAD.size)
    if words.max() >= 2 ** 32 or _degenerate(words):
        raise RngStateError("'torch' holds a generator state no seed gives (words over 32 bits, or all zero)")
    return tensor


def _numpy_state(value: Any) -> tuple:
    """numpy's `set_state` tuple from the stored dict (or the tuple an earlier version of this project stored)."""
    if isinstance(value, Mapping):
        if set(value) != {'algorithm', 'keys', 'pos', 'has_gauss', 'cached_gaussian'}:
            raise RngStateError(f"'numpy' must have the keys algorithm, keys, pos, has_gauss, cached_gaussian; "
                                f'got {sorted(map(str, value))}')
        parts = (value['algorithm'], value['keys'], value['pos'], value['has_gauss'], value['cached_gaussian'])
    elif isinstance(value, tuple) and len(value) == 5:
        parts = value
    else:
        raise RngStateError(f"'numpy' must be a dict, got {type(value).__name__}")
    algorithm, keys, pos, has_gauss, cached = parts
    if algorithm != 'MT19937':
        raise RngStateError(f"'numpy' algorithm must be 'MT19937', got {short_repr(algorithm)}")
    if isinstance(keys, torch.Tensor):
        keys = keys.numpy() if keys.dtype == torch.int64 and keys.dim() == 1 else None
    if not isinstance(keys, np.ndarray) or keys.shape != (_MT_WORDS,) or keys.dtype.kind not in 'iu':
        raise RngStateError(f"'numpy' keys must be {_MT_WORDS} integers")
    if keys.min() < 0 or keys.max() >= 2 ** 32 or _degenerate(keys):
        raise RngStateError("'numpy' keys must be 32-bit words, not all zero")
    if not _is_int(pos) or not 0 <= pos <= _MT_WORDS or not _is_int(has_gauss) or has_gauss not in (0, 1):
        raise RngStateError("'numpy' pos must be 0..624 and has_gauss 0 or 1")
    if not isinstance(cached, (float, int, np.floating)) or isinstance(cached, bool):
        raise RngStateError("'numpy' cached_gaussian must be a number")
    return 'MT19937', keys.astype(np.uint32), int(pos), int(has_gauss), float(cached)


def _python_state(value: Any) -> tuple:
    if not isinstance(value, (tuple, list)) or len(value) != 3:
        raise RngStateError("'python' must be random.getstate()'s (version, internal state, gauss)")
    version, internal, gauss = value
    if version != 3 or not isinstance(internal, (tuple, list)) or len(internal) != _MT_WORDS + 1:
        raise RngStateError(f"'python' must be version 3 with {_MT_WORDS + 1} integers")
    if not all(_is_int(word) and 0 <= word < 2 ** 32 for word in internal) or internal[-1] > _MT_WORDS \
            or _degenerate(internal[:-1]):
        raise RngStateError("'python' internal state must be 32-bit words, not all zero, ending in a position <= 624")
    if gauss is not None and (not isinstance(gauss, float)):
        raise RngStateError("'python' gauss must be a float or None")
    return 3, tuple(int(word) for word in internal), gauss


def check_rng_state(state: Any) -> dict[str, Any]:
    """The stored state in the form `restore_rng_state` applies; RngStateError naming the bad part otherwise.

    Every part is checked before anything is restored, so a bad state changes no generator.
    """
    if not isinstance(state, Mapping):
        raise RngStateError(f'must be a dict, got {type(state).__name__}')
    unknown = set(state) - {'torch', 'numpy', 'python', 'cuda'}
    if unknown:
        raise RngStateError(f'unknown part(s) {sorted(map(str, unknown))}')
    checked: dict[str, Any] = {}
    if 'torch' in state:
        checked['torch'] = _torch_state(state['torch'])
    if 'numpy' in state:
        checked['numpy'] = _numpy_state(state['numpy'])
    if 'python' in state:
        checked['python'] = _python_state(state['python'])
    if 'cuda' in state:
        cuda = state['cuda']
        if not isinstance(cuda, (list, tuple)) or len(cuda) > 1024:
            raise RngStateError("'cuda' must be a list of generator states")
        checked['cuda'] = [_byte_tensor(part, f"'cuda'[{index}]", _CUDA_STATE_BYTES) for index, part in enumerate(cuda)]
    return checked


def restore_rng_state(state: Mapping[str, Any]) -> None:
    """Put back a stored state (checked first), all generators or none: if torch refuses a part, every
    generator is put back as it was. CUDA states are skipped on a machine with other GPUs or none."""
    checked = check_rng_state(state)
    before = capture_rng_state()
    try:
        _apply(checked)
    except Exception as error:
        _apply(check_rng_state(before))
        raise RngStateError(f'torch refused it: {short_repr(str(error), 200)}') from error


def _apply(checked: Mapping[str, Any]) -> None:
    if 'torch' in checked:
        torch.set_rng_state(checked['torch'].cpu())
    if 'numpy' in checked:
        np.random.set_state(checked['numpy'])
    if 'python' in checked:
        random.setstate(checked['python'])
    cuda_states = checked.get('cuda')
    if cuda_states and torch.cuda.is_available() and len(cuda_states) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all([s.cpu() for s in cuda_states])
