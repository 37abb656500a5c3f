"""A history file's curves, checked before anything is allocated or looped over.

`plot` and `tensorboard` read files from strangers. `compat.codec.checkpoint.read_history` checks that
the keys are there; this module checks the values: counters are whole numbers within their arrays,
arrays are one-dimensional and numeric, no curve has more than `MAX_POINTS` points, and `cur_epoch`
agrees with the iterations recorded. Any failure is a `CheckpointError` naming the file, the key
and the value.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from compat.codec.history_file import read_history
from compat.errors import CheckpointError
from compat.text import short_repr

__all__ = ['Curves', 'read_curves', 'MAX_POINTS']

# Ten million points is 80 MB of float64 per curve: far beyond a real run's history, small enough
# to plot. A tensor expanded with stride 0 can claim 10**12 entries in a file of a few bytes.
MAX_POINTS = 10_000_000

# array -> the counter that says how much of it is filled
_CURVES = {'loss_history': 'loss_iter', 'val_loss_history': 'val_loss_iter', 'acc_history': 'acc_iter'}


_TENSOR_NUMBERS = (torch.float16, torch.bfloat16, torch.float32, torch.float64,
                   torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64)


@dataclass(frozen=True)
class Curves:
    """The filled part of each history array, as float64, and the number of finished epochs."""

    loss: np.ndarray
    val_loss: np.ndarray
    acc: np.ndarray
    cur_epoch: int


def _counter(fname: os.PathLike | str, data: dict[str, Any], key: str) -> int:
    value = data[key]
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise CheckpointError(f'{fname}: {key} is {short_repr(value)}: expected a whole number >= 0')
    return int(value)


def _filled(fname: os.PathLike | str, name: str, array: Any, count: int, counter: str) -> np.ndarray:
    """`array[:count]` as float64, after checking type, shape, dtype and size (before copying anything)."""
    where = f'{fname}: {name}'
    if array is None:
        if count:
            raise CheckpointError(f'{where} is None but {counter} is {short_repr(count)}')
        return np.zeros(0)
    if not isinstance(array, (np.ndarray, torch.Tensor)):
        raise CheckpointError(f'{where} is a {type(array).__name__}: expected a numpy array')
    if array.ndim != 1:
        raise CheckpointError(f'{where} has shape {tuple(array.shape)[:8]}: expected one dimension')
    numeric = array.dtype.kind in 'iuf' if isinstance(array, np.ndarray) else array.dtype in _TENSOR_NUMBERS
    if not numeric:
        raise CheckpointError(f'{where} holds {array.dtype}: expected integers or floats')
    if count > array.shape[0]:
        raise CheckpointError(f'{where} has {array.shape[0]} entries but {counter} is {short_repr(count)}')
    if count > MAX_POINTS:
        raise CheckpointError(f'{where} has {count} filled entries: at most {MAX_POINTS} can be shown')
    if isinstance(array, torch.Tensor):
        return array[:count].detach().to('cpu', torch.float64).numpy()
    return array[:count].astype(np.float64)


def read_curves(fname: os.PathLike | str, trusted: bool = False) -> Curves:
    """Read a history file and check every value the curves depend on.

    Args:
        fname: the history file.
        trusted: unpickle arbitrary objects (only for files whose source you trust).

    Returns:
        The filled curves and `cur_epoch`.

    Raises:
        CheckpointError: the file is not a history file, or a counter or array is unusable.
    """
    data = read_history(fname, trusted=trusted)
    counts = {key: _counter(fname, data, key) for key in ('loss_iter', 'val_loss_iter', 'acc_iter', 'cur_epoch',
                                                          'iter_per_epoch')}
    curves = {name: _filled(fname, name, data[name], counts[counter], counter) for name, counter in _CURVES.items()}
    cur_epoch, loss_iter = counts['cur_epoch'], counts['loss_iter']
    # every finished epoch trained at least one batch, and each batch records one loss
    if loss_iter and cur_epoch > loss_iter:
        raise CheckpointError(f'{fname}: cur_epoch is {short_repr(cur_epoch)} but only {loss_iter} training iterations '
                              'are recorded: the counters are inconsistent')
    return Curves(curves['loss_history'], curves['val_loss_history'], curves['acc_history'], cur_epoch)
