"""Checks of single values, shared by the Trainer's options and the checkpoint reader.

Each check returns None for a good value, or the reason it is bad ("must be a positive integer");
the caller names the option or the file field and raises its own error type (`ConfigError` for a
kwarg, `CheckpointError` for a file), so one rule serves both.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from numbers import Integral, Real
from typing import Any

from compat.optim import criterion_class, optimizer_class

__all__ = ['Check', 'positive_int', 'non_negative_int', 'int_at_least', 'int_in', 'number', 'non_negative_number',
           'fraction',
           'flag', 'optional_flag', 'loss_name', 'optimizer_name']

Check = Callable[[Any], 'str | None']


def _is_int(value: Any) -> bool:
    return isinstance(value, Integral) and not isinstance(value, bool)


def positive_int(value: Any) -> str | None:
    return None if _is_int(value) and value > 0 else 'must be a positive integer'


def non_negative_int(value: Any) -> str | None:
    return None if _is_int(value) and value >= 0 else 'must be an integer >= 0'


def int_in(minimum: int, maximum: int) -> Check:
    def check(value: Any) -> str | None:
        return None if _is_int(value) and minimum <= value <= maximum else \
            f'must be an integer from {minimum} to {maximum:,}'
    return check


def int_at_least(minimum: int) -> Check:
    def check(value: Any) -> str | None:
        return None if _is_int(value) and value >= minimum else f'must be an integer >= {minimum}'
    return check


def number(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, Real):
        return 'must be a finite number'
    try:
        finite = math.isfinite(float(value))
    except OverflowError:  # an int too large for a float
        finite = False
    return None if finite else 'must be a finite number'



def non_negative_number(value: Any) -> str | None:
    return number(value) or (None if float(value) >= 0 else 'must be a number >= 0')


def fraction(value: Any) -> str | None:
    return number(value) or (None if 0.0 <= float(value) <= 1.0 else 'must be a number from 0 to 1')


def flag(value: Any) -> str | None:
    return None if isinstance(value, bool) else 'must be True or False'


def optional_flag(value: Any) -> str | None:
    return None if value is None or isinstance(value, bool) else 'must be True, False or None'


def loss_name(value: Any) -> str | None:
    try:
        criterion_class(value)
    except ValueError as error:
        return str(error)
    return None


def optimizer_name(value: Any) -> str | None:
    try:
        optimizer_class(value)
    except ValueError as error:
        return str(error)
    return None
