"""Declared training histories: numpy arrays indexed by an iteration counter, declared once.

A Lernomatic history is a preallocated numpy array (`loss_history`) plus a counter (`loss_iter`).
A trainer class declares its histories once, the way torchmetrics declares a metric's state
(`HISTORIES`, a tuple of `History`); old subclasses that allocate their own `*_history` arrays in
`_init_history` declare them by doing so. From the declarations alone: allocation, resizing for
`set_num_epochs`, the history file's record, what a loaded file may set, the counters a checkpoint
records, device buffering (`compat.state.device_buffer`) and the NaN check.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from compat.state.device_buffer import BufferedHistory

__all__ = ['HISTORY_COUNTERS', 'HISTORY_ARRAYS', 'History', 'TRAINER_HISTORIES', 'declared_histories',
           'install_history_attributes', 'init_histories', 'history_record', 'history_names', 'counter_names',
           'resize_histories', 'filled', 'allocate']

# The base Trainer's history file, in the original's order: its counters, then its arrays (a subclass's
# own `*_history` arrays and `*_iter` counters follow). The file format (`compat.codec.schema`) reads them here.
HISTORY_COUNTERS = ('loss_iter', 'val_loss_iter', 'acc_iter', 'cur_epoch', 'iter_per_epoch')
HISTORY_ARRAYS = ('loss_history', 'val_loss_history', 'acc_history')


@dataclass(frozen=True)
class History:
    """One declared history.

    Attributes:
        name: the array attribute, e.g. 'loss_history'.
        counter: the attribute counting its filled entries, e.g. 'loss_iter'; None where another
            history's counter indexes it (a GAN's `d_loss_history` by `loss_iter`).
        loader: the loader whose length makes one epoch of it, e.g. 'train_loader'.
    """

    name: str
    counter: str | None
    loader: str


# The base trainer's histories, as the original allocated them (acc_history is as long as val_loss_history).
TRAINER_HISTORIES = (History('loss_history', 'loss_iter', 'train_loader'),
                     History('val_loss_history', 'val_loss_iter', 'val_loader'),
                     History('acc_history', 'acc_iter', 'val_loader'))


def install_history_attributes(cls: type) -> None:
    """Give each history `cls` declares a `BufferedHistory` attribute (device values written when read)."""
    for history in getattr(cls, 'HISTORIES', ()):
        if not isinstance(cls.__dict__.get(history.name), BufferedHistory):
            attribute = BufferedHistory()
            attribute.__set_name__(cls, history.name)
            setattr(cls, history.name, attribute)


def init_histories(obj: Any) -> None:
    """Counters at 0 and arrays allocated for `num_epochs` epochs, for every history the class declares."""
    for history in getattr(type(obj), 'HISTORIES', TRAINER_HISTORIES):
        if history.counter is not None:
            setattr(obj, history.counter, 0)
        setattr(obj, history.name, allocate(getattr(obj, history.loader, None), obj.num_epochs))


def history_record(obj: Any) -> dict[str, Any]:
    """What a history file holds: the original's counters and arrays, then every other declared history."""
    record: dict[str, Any] = {key: getattr(obj, key) for key in HISTORY_COUNTERS + HISTORY_ARRAYS}
    for name, counter in declared_histories(obj).items():
        if name not in record:
            record[name] = getattr(obj, name)
            if counter is not None:
                record[counter] = getattr(obj, counter)
    return record


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


def declared_histories(obj: Any) -> dict[str, str | None]:
    """Every history `obj` holds, with the counter that indexes it (None where it has no counter of its own).

    Declared are the class's `HISTORIES` (the base trainer's three, and any a subclass adds), and
    any `*_history` attribute a subclass allocates in its own `_init_history` (an array, or None
    until it has data), as old subclasses did; its counter is the matching `*_iter` attribute when
    there is one.
    """
    declared: dict[str, str | None] = {h.name: h.counter for h in getattr(type(obj), 'HISTORIES', TRAINER_HISTORIES)}
    for name in history_names(obj):
        if name not in declared and isinstance(vars(obj)[name], (np.ndarray, type(None))):
            counter = name[:-len('_history')] + '_iter'
            declared[name] = counter if counter in counter_names(obj) else None
    return declared
