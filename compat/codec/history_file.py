"""What a history file may set on a trainer: its declared histories and counters, each checked.

A history file is a dict of counters and numpy arrays (`compat.codec.schema`). Loading one sets
only what the trainer declares (`compat.state.histories`); every value is checked for type and
shape first, and other keys are reported, never set.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import numpy as np

from compat.codec.atomic import atomic_save
from compat.codec.checkpoint import describe_contents
from compat.codec.safe_load import safe_load
from compat.codec.schema import HISTORY_KEYS, MAX_EPOCHS, MAX_HISTORY_LENGTH
from compat.errors import CheckpointError
from compat.state.histories import TRAINER_HISTORIES, declared_histories
from compat.text import short_repr

__all__ = ['HistoryFileError', 'checked_history_values', 'write_history', 'read_history', 'check_history_room']

# each counter a history file holds, with its largest value (docs/formats.md, "Bounds")
_EPOCH_COUNTERS = {'cur_epoch': MAX_EPOCHS, 'iter_per_epoch': MAX_HISTORY_LENGTH}


class HistoryFileError(ValueError):
    """A history file value that is not what its key declares: the message names the key."""


def _is_count(value: Any, maximum: int) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_)) \
        and bool(0 <= value <= maximum)


def _checked_array(key: str, value: Any, current: Any) -> np.ndarray | None:
    if value is None:
        return None
    if not isinstance(value, np.ndarray) or value.dtype.kind not in 'biuf' or value.ndim < 1:
        raise HistoryFileError(f'{short_repr(key)} must be a numeric numpy array or None, got {type(value).__name__} '
                               f'{getattr(value, "dtype", "")}'.rstrip())
    if len(value) > MAX_HISTORY_LENGTH:
        raise HistoryFileError(f'{short_repr(key)} holds {len(value):,} values, more than {MAX_HISTORY_LENGTH:,}')
    if isinstance(current, np.ndarray) and (value.ndim != current.ndim or value.shape[1:] != current.shape[1:]):
        raise HistoryFileError(f'{short_repr(key)} has shape {value.shape}, this trainer keeps {current.shape}')
    # an own, writable copy in the trainer's float dtype: an int or bool history would slip past the NaN checks
    dtype = current.dtype if isinstance(current, np.ndarray) and current.dtype.kind == 'f' else np.float64
    return np.array(value, dtype=dtype)


def checked_history_values(obj: Any, data: dict[str, Any]) -> tuple[dict[str, Any], list[Any]]:
    """The values of a history file that `obj` declares, each checked; and the keys it does not declare.

    Counters are integers from 0 to the length of their array; arrays are numeric numpy arrays (or
    None) shaped like the trainer's own. Nothing is set here: the caller applies all or nothing.
    """
    declared = declared_histories(obj)
    counters = {counter: MAX_HISTORY_LENGTH for counter in declared.values() if counter} | _EPOCH_COUNTERS
    values: dict[str, Any] = {}
    unknown: list[Any] = []
    for key, value in data.items():
        if key in declared:
            values[key] = _checked_array(key, value, vars(obj).get(key))
        elif key in counters:
            if not _is_count(value, counters[key]):
                raise HistoryFileError(f'{short_repr(key)} must be an integer from 0 to {counters[key]:,}, '
                                       f'got {short_repr(value)}')
            values[key] = int(value)
        else:
            unknown.append(key)
    for name, counter in declared.items():
        array = values.get(name)
        if array is None:  # a None in the file keeps the trainer's own array (apply_history_file)
            array = vars(obj).get(name)
        count = values.get(counter) if counter else None
        if count and array is not None and count > len(array):  # None: the counter indexes other arrays (a GAN's)
            raise HistoryFileError(f'{counter!r} is {count} but {name!r} holds {len(array)} values')
    return values, unknown


def check_history_room(obj: Any, fname: Any, field: str = "['trainer_params']['num_epochs']") -> None:
    """Refuse a loaded epoch count that would make a history of `obj` longer than MAX_HISTORY_LENGTH.

    The length is the trainer's own loader's batches times the file's `num_epochs` (set on `obj`
    already, to be undone by the caller): 18 KB asking for 10**7 epochs would otherwise take
    gigabytes at load and more at the next `save_history`. Arrays the trainer already holds longer
    (its own choice) are never refused.
    """
    for history in getattr(type(obj), 'HISTORIES', TRAINER_HISTORIES):
        loader = getattr(obj, history.loader, None)
        if loader is None:
            continue
        length = len(loader) * obj.num_epochs
        own = vars(obj).get(history.name)
        if length > max(MAX_HISTORY_LENGTH, len(own) if isinstance(own, np.ndarray) else 0):
            raise CheckpointError(f'{fname}: {field}: {obj.num_epochs:,} epochs of {len(loader):,} batches would make '
                                  f'{history.name} {length:,} values long, more than {MAX_HISTORY_LENGTH:,} '
                                  f'({MAX_HISTORY_LENGTH * 8 // 2 ** 20} MiB); a file may not choose that. To train '
                                  'that long, load it and call set_num_epochs()')


def write_history(fname: str | os.PathLike, record: dict[str, Any]) -> None:
    """Write a history dict atomically (counters first, then arrays, as the original did)."""
    atomic_save(dict(record), fname)


def read_history(fname: str | os.PathLike, trusted: bool = False) -> dict[str, Any]:
    """Read a history file safely and check that every documented key is present (values: `checked_history_values`)."""
    data = safe_load(fname, trusted=trusted)
    if not isinstance(data, Mapping):
        raise CheckpointError(f'{fname}: not a Lernomatic history file: it holds {describe_contents(data)}')
    missing = [key for key in HISTORY_KEYS if key not in data]
    if missing:
        raise CheckpointError(f'{fname}: not a Lernomatic history file, missing key(s) {", ".join(missing)}: '
                              f'it holds {describe_contents(data)}')
    return dict(data)
