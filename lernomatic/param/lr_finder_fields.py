"""The LR finder's options and state, declared once: the constructor, the checks, `get_params`,
`save` and `load` all read these tables.

A finder file is input from a stranger: only the declared state fields, of the declared kinds, are
read back, and its size is bounded before it is read.
"""

from __future__ import annotations

import math
import numbers
import reprlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from compat.codec.safe_load import safe_load
from compat.errors import CheckpointError, ConfigError

__all__ = ['LR_SELECT_METHODS', 'EDGE_METHODS', 'FINDER_OPTIONS', 'FINDER_STATE', 'FILE_METADATA', 'MAX_FILE_BYTES',
           'MAX_HISTORY', 'Field',
           'Kind', 'checked_fields', 'check_options_together', 'check_state_together', 'read_finder_file', 'short']

LR_SELECT_METHODS = ('max_acc', 'min_loss', 'max_range', 'min_range', 'laplace', 'sobel')
# The methods that read the shape of the accuracy curve: with acc_test=False there is none to read.
# ('max_acc' reads only best_acc_idx, which then stays 0, as in the original.)
EDGE_METHODS = ('laplace', 'sobel')
# A finder file is read whole before it is checked: these bound what a hostile file can make us hold
# and check. A sweep records four numbers per batch (about 36 bytes in the file): 250,000 batches,
# far more than a range test needs, fit in 9 MiB.
MAX_FILE_BYTES = 16 * 2**20
MAX_HISTORY = 250_000
FILE_METADATA = ('module_name', 'module_path')
short = reprlib.Repr()
short.maxstring = short.maxother = 80


# ---- what a field holds
def _real(value: Any) -> bool:
    """A number a float holds (an int too large for one is not: it would fail later, far from the file)."""
    if not isinstance(value, numbers.Real) or isinstance(value, bool):
        return False
    try:
        float(value)
    except OverflowError:
        return False
    return True


def _finite(value: Any) -> bool:
    return _real(value) and math.isfinite(float(value))


def _integer(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _numbers(value: Any) -> bool:
    return isinstance(value, (list, tuple)) and len(value) <= MAX_HISTORY and all(_real(v) for v in value)


@dataclass(frozen=True)
class Kind:
    """The values a field takes: a test, the words an error uses, and the plain value that is stored."""

    accepts: Callable[[Any], bool]
    expected: str
    plain: Callable[[Any], Any] = lambda value: value


NUMBER = Kind(_finite, 'a finite number', float)
ANY_NUMBER = Kind(_real, 'a number', float)
POSITIVE = Kind(lambda v: _finite(v) and v > 0, 'a finite number > 0', float)
AT_LEAST_ONE = Kind(lambda v: _finite(v) and v >= 1, 'a finite number >= 1', float)
FRACTION = Kind(lambda v: _finite(v) and 0 <= v < 1, 'a number in [0, 1)', float)
COUNT = Kind(lambda v: _integer(v) and v >= 0, 'an integer >= 0', int)
POSITIVE_COUNT = Kind(lambda v: _integer(v) and v >= 1, 'an integer >= 1', int)
FLAG = Kind(lambda v: isinstance(v, bool), 'True or False')
METHOD = Kind(lambda v: isinstance(v, str) and v in LR_SELECT_METHODS, f'one of {", ".join(LR_SELECT_METHODS)}')
LABEL = Kind(lambda v: v is None or _integer(v) or (isinstance(v, str) and len(v) <= 1000),
             'None, an integer or a string of at most 1000 characters', lambda v: v if v is None or isinstance(v, str)
             else int(v))
NUMBERS = Kind(_numbers, f'a list of at most {MAX_HISTORY} numbers', lambda v: [float(x) for x in v])


@dataclass(frozen=True)
class Field:
    """One declared attribute of a finder: its default, its kind, and why it exists."""

    default: Any
    kind: Kind
    doc: str


# The constructor's kwargs, in the original's order; saved and loaded with the results.
FINDER_OPTIONS: dict[str, Field] = {
    'num_epochs': Field(8, POSITIVE_COUNT, 'passes over the training data at most'),
    'lr_mult': Field(0.0, NUMBER, 'accepted as the original accepted it; find() sets it'),
    'lr_min': Field(1e-6, POSITIVE, 'the first learning rate'),
    'lr_max': Field(1.0, POSITIVE, 'the learning rate reached after one whole epoch'),
    'explode_thresh': Field(4.0, AT_LEAST_ONE, 'stop once the smoothed loss exceeds this many times its best'),
    'beta': Field(0.999, FRACTION, 'weight of the old value in the loss moving average'),
    'gamma': Field(0.999995, NUMBER, 'unused, as in the original'),
    'lr_min_factor': Field(2.0, NUMBER, 'lo = 10**(log10(hi) * lr_min_factor) for max_acc, min_loss, max_range'),
    'lr_max_scale': Field(1.0, NUMBER, 'hi = 10**(log10(lr) * lr_max_scale) for max_acc, min_loss, max_range'),
    'lr_select_method': Field('max_acc', METHOD, 'how get_lr_range() picks the range'),
    'lr_trunc': Field(10, COUNT, 'laplace/sobel: points left out at each end of the accuracy curve'),
    'max_batches': Field(0, COUNT, 'training batches per epoch at most; 0: all'),
    'grad_thresh': Field(0.002, NUMBER, 'unused, as in the original'),
    'acc_test': Field(True, FLAG, 'measure validation accuracy after every batch'),
    'print_every': Field(20, POSITIVE_COUNT, 'batches between progress messages'),
    'verbose': Field(False, FLAG, 'progress messages at INFO and Lightning\'s progress bar'),
    'expr_id': Field(None, LABEL, 'a label of your own for the experiment'),
}

# What find() records; reset at the start of every find().
FINDER_STATE: dict[str, Field] = {
    'avg_loss': Field(0.0, ANY_NUMBER, 'the loss moving average, before bias correction'),
    'best_loss': Field(1e6, ANY_NUMBER, 'the lowest smoothed loss'),
    'best_loss_idx': Field(0, COUNT, 'its index in smooth_loss_history and log_lr_history'),
    'best_acc': Field(0.0, ANY_NUMBER, 'the highest accuracy'),
    'best_acc_idx': Field(0, COUNT, 'its index in acc_history and log_lr_history'),
    'learning_rate': Field(0.0, ANY_NUMBER, 'the learning rate of the next batch'),
    'smooth_loss_history': Field((), NUMBERS, 'the smoothed loss after each batch, its bias correction restarted '
                                               'each epoch'),
    'log_lr_history': Field((), NUMBERS, 'log10 of the learning rate each batch trained with'),
    'acc_history': Field((), NUMBERS, 'validation accuracy after each batch (acc_test)'),
    'loss_grad_history': Field((), NUMBERS, 'change of the loss moving average from one batch to the next'),
}


def checked_fields(fields: Mapping[str, Field], given: Mapping[str, Any]) -> dict[str, Any]:
    """The plain value of every field in `given`; ConfigError names the first bad one."""
    values = {}
    for name, value in given.items():
        kind = fields[name].kind
        if not kind.accepts(value):
            raise ConfigError(f'{name} must be {kind.expected}, got {short.repr(value)}')
        values[name] = kind.plain(value)
    return values


def check_options_together(values: Mapping[str, Any]) -> None:
    """Options that contradict each other; acc_test=False goes with every method, as the original took it.

    (find() refuses acc_test=False with an edge method before it starts, and warns for 'max_acc'.)
    """
    if values['lr_min'] >= values['lr_max']:
        raise ConfigError(f"lr_min must be below lr_max, got lr_min={values['lr_min']!r}, lr_max={values['lr_max']!r}")


def check_state_together(values: Mapping[str, Any]) -> None:
    """The indices get_lr_range() follows must point into the histories."""
    steps = len(values['log_lr_history'])
    if len(values['smooth_loss_history']) != steps:
        raise ConfigError(f"smooth_loss_history has {len(values['smooth_loss_history'])} values but log_lr_history "
                          f'has {steps}: they must have one value per batch each')
    if len(values['acc_history']) not in (0, steps):
        raise ConfigError(f"acc_history has {len(values['acc_history'])} values: it must be empty or have one per "
                          f'batch ({steps})')
    for index, history in (('best_loss_idx', 'log_lr_history'), ('best_acc_idx', 'acc_history')):
        limit = max(1, len(values[history]))
        if values[index] >= limit:
            raise ConfigError(f'{index} must be below {limit} (the length of {history}), got {values[index]}')


def read_finder_file(fname: str | Path) -> dict:
    """The dict a finder file holds, read without running anything in it."""
    path = Path(fname)
    if path.is_file() and path.stat().st_size > MAX_FILE_BYTES:
        raise CheckpointError(f'{path}: {path.stat().st_size} bytes is too large for an LR finder file '
                              f'(at most {MAX_FILE_BYTES})')
    record = safe_load(path)
    if not isinstance(record, dict):
        raise CheckpointError(f'{path}: holds a {type(record).__name__}, not the dict an LR finder saves')
    return record


