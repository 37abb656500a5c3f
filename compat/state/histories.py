"""Declared training histories: numpy arrays indexed by an iteration counter.

A Lernomatic history is a preallocated numpy array (`loss_history`) plus a counter
(`loss_iter`). Any attribute named `*_history` holding an array is one, a subclass's own
(`d_loss_history`) included, so resizing and saving need no per-subclass code. Values produced on
the GPU are buffered as device tensors and copied into the array in one transfer when it is read,
so training makes no host-device sync per step while user code still sees a plain `np.ndarray`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

__all__ = ['BufferedHistory', 'push_history', 'flush_histories', 'history_names', 'counter_names', 'resize_histories',
           'filled', 'allocate']

_PENDING = '_history_pending_values'


def allocate(loader: Any, num_epochs: int) -> np.ndarray | None:
    """A float64 array of `len(loader) * num_epochs` zeros, or None where there is no loader."""
    if loader is None:
        return None
    return np.zeros(len(loader) * num_epochs)


def filled(array: np.ndarray | None, count: int) -> np.ndarray | None:
    """The filled part `array[:count]`, None while nothing has been recorded."""
    if array is None or count == 0:
        return None
    return array[:count]


class _Pending:
    """Device tensors waiting to be written into one history array."""

    __slots__ = ('indices', 'values')

    def __init__(self) -> None:
        self.indices: list[int] = []
        self.values: list[torch.Tensor] = []

    def drain_into(self, array: np.ndarray) -> None:
        host = torch.stack(self.values).detach().to('cpu', torch.float64).numpy()
        array[np.asarray(self.indices)] = host
        self.indices.clear()
        self.values.clear()


class BufferedHistory:
    """Descriptor for a history attribute: reading it first writes any buffered device values."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, obj: Any, owner: type | None = None) -> Any:
        if obj is None:
            return self
        array = obj.__dict__.get(self.name)
        pending = obj.__dict__.get(_PENDING, {}).get(self.name)
        if pending is not None and pending.values and array is not None:
            pending.drain_into(array)
        return array

    def __set__(self, obj: Any, value: Any) -> None:
        obj.__dict__.get(_PENDING, {}).pop(self.name, None)
        obj.__dict__[self.name] = value


def push_history(obj: Any, name: str, index: int, value: torch.Tensor) -> None:
    """Record `value` (a 0-d tensor, left on its device) as `obj.<name>[index]`."""
    array = obj.__dict__.get(name)
    if array is None:
        raise ValueError(f'{type(obj).__name__}.{name} is None: there is no loader for it')
    if index >= len(array):
        raise IndexError(f'{type(obj).__name__}.{name} holds {len(array)} values and index {index} '
                         'is past its end: did the data loader change length? call set_num_epochs '
                         'or _init_history after changing datasets')
    pending = obj.__dict__.setdefault(_PENDING, {}).setdefault(name, _Pending())
    pending.indices.append(index)
    pending.values.append(value.detach())


def flush_histories(obj: Any) -> None:
    """Copy every buffered device value into its array now (once an epoch, so buffers stay small)."""
    for name, pending in obj.__dict__.get(_PENDING, {}).items():
        array = obj.__dict__.get(name)
        if pending.values and array is not None:
            pending.drain_into(array)


def history_names(obj: Any) -> list[str]:
    """Every attribute of `obj` named `*_history`, in the order they were first set."""
    return [name for name in vars(obj) if name.endswith('_history')]


def counter_names(obj: Any) -> list[str]:
    """Every integer attribute named `*_iter` (`loss_iter`, `d_loss_iter`, ...)."""
    return [name for name, value in vars(obj).items()
            if name.endswith('_iter') and isinstance(value, (int, np.integer)) and not isinstance(value, bool)]


def _extended(old: np.ndarray, old_epochs: int, new_epochs: int) -> np.ndarray:
    """A longer copy of `old`, sized by its per-epoch length when that divides evenly."""
    per_epoch, remainder = divmod(len(old), max(old_epochs, 1))
    new_len = per_epoch * new_epochs if remainder == 0 else len(old)
    new = np.zeros((max(new_len, len(old)),) + old.shape[1:], dtype=old.dtype)
    new[:len(old)] = old
    return new


def resize_histories(obj: Any, old_epochs: int, new_epochs: int, reinit: Callable[[], None]) -> None:
    """Re-allocate every history for `new_epochs`, keeping recorded values and counters.

    `reinit` is the trainer's own `_init_history`, so a subclass's allocation rules apply; an
    array it does not re-allocate is grown by its own per-epoch length.
    """
    old_arrays = {name: getattr(obj, name) for name in history_names(obj)
                  if isinstance(getattr(obj, name), np.ndarray)}
    counters = {name: getattr(obj, name) for name in counter_names(obj)}
    reinit()
    for name, old in old_arrays.items():
        new = getattr(obj, name, None)
        kept_as_is = new is old
        if kept_as_is or not isinstance(new, np.ndarray) or len(new) < len(old) or new.shape[1:] != old.shape[1:]:
            new = _extended(old, old_epochs, new_epochs)
        else:
            new[:len(old)] = old
        setattr(obj, name, new)
    for name, value in counters.items():
        setattr(obj, name, value)


# ---- declared histories: what a history file may set on a trainer
_BASE_HISTORIES = (('loss_history', 'loss_iter'), ('val_loss_history', 'val_loss_iter'), ('acc_history', 'acc_iter'))
_EPOCH_COUNTERS = ('cur_epoch', 'iter_per_epoch')
MAX_COUNTER = 10 ** 12


def declared_histories(obj: Any) -> dict[str, str | None]:
    """Every history `obj` holds, with the counter that indexes it (None where it has no counter of its own).

    The base trainer's three are always declared; a subclass declares its own by allocating a
    `*_history` attribute (an array, or None until it has data) in its `_init_history`, as old
    subclasses did; its counter is the matching `*_iter` attribute when there is one.
    """
    declared: dict[str, str | None] = dict(_BASE_HISTORIES)
    for name in history_names(obj):
        if name not in declared and isinstance(vars(obj)[name], (np.ndarray, type(None))):
            counter = name[:-len('_history')] + '_iter'
            declared[name] = counter if counter in counter_names(obj) else None
    return declared


class HistoryFileError(ValueError):
    """A history file value that is not what its key declares: the message names the key."""


def _is_count(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_)) \
        and 0 <= value <= MAX_COUNTER


def _checked_array(key: str, value: Any, current: Any) -> np.ndarray | None:
    if value is None:
        return None
    if not isinstance(value, np.ndarray) or value.dtype.kind not in 'biuf' or value.ndim < 1:
        raise HistoryFileError(f'{key!r} must be a numeric numpy array or None, got {type(value).__name__} '
                               f'{getattr(value, "dtype", "")}'.rstrip())
    if isinstance(current, np.ndarray) and (value.ndim != current.ndim or value.shape[1:] != current.shape[1:]):
        raise HistoryFileError(f'{key!r} has shape {value.shape}, this trainer keeps {current.shape}')
    return np.array(value)  # an own, writable copy


def checked_history_values(obj: Any, data: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The values of a history file that `obj` declares, each checked; and the keys it does not declare.

    Counters are integers from 0 to the length of their array; arrays are numeric numpy arrays (or
    None) shaped like the trainer's own. Nothing is set here: the caller applies all or nothing.
    """
    declared = declared_histories(obj)
    counters = {counter for counter in declared.values() if counter} | set(_EPOCH_COUNTERS)
    values: dict[str, Any] = {}
    unknown: list[str] = []
    for key, value in data.items():
        if key in declared:
            values[key] = _checked_array(key, value, vars(obj).get(key))
        elif key in counters:
            if not _is_count(value):
                raise HistoryFileError(f'{key!r} must be an integer from 0 to {MAX_COUNTER}, got {value!r}')
            values[key] = int(value)
        else:
            unknown.append(str(key))
    for name, counter in declared.items():
        array = values.get(name, vars(obj).get(name))
        count = values.get(counter) if counter else None
        if count and array is not None and count > len(array):  # None: the counter indexes other arrays (a GAN's)
            raise HistoryFileError(f'{counter!r} is {count} but {name!r} holds {len(array)} values')
    return values, unknown
