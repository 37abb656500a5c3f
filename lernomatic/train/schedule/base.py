"""What every schedule shares: declared options, the record of returned values, repr, the callback.

Also the cyclic terms of Smith's triangular schedules, which several families use.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np

from compat.errors import ConfigError
from compat.kwargs import report_unknown_kwargs

__all__ = ['LRScheduler']


class _Schedule:
    """What every schedule shares: declared options, the record of returned values, repr, the callback.

    Subclasses declare `OPTIONS` (name -> default), `POSITIVE` (options that divide something and
    so must be > 0), `schedule_input` (what `get_lr` is a function of) and `target` (what the
    value sets: 'lr' or 'momentum'), and define `value(...)`.

    Args:
        stepsize: half a cycle, in iterations, for the cyclic schedules.
        start_iter: the iteration the schedule starts at.
        lr_history_size: when > 0, the first that many returned values are kept in `lr_history`.
        no_lr_history: keep no record whatever `lr_history_size` says.
        strict: unknown keywords raise ConfigError instead of a warning; None: LERNOMATIC_STRICT decides.
    """

    OPTIONS: ClassVar[dict[str, Any]] = {'stepsize': 1000, 'start_iter': 0, 'lr_history_size': 0,
                                         'no_lr_history': False}
    POSITIVE: ClassVar[tuple[str, ...]] = ('stepsize',)
    schedule_input: ClassVar[str] = 'iteration'
    target: ClassVar[str] = 'lr'
    # the options, declared (their defaults are in OPTIONS, which __init__ applies), and the record
    stepsize: float
    start_iter: int
    lr_history_size: int
    no_lr_history: bool
    lr_history: np.ndarray | None
    lr_history_ptr: int

    def __init__(self, **kwargs: Any) -> None:
        strict = kwargs.pop('strict', None)
        if strict not in (None, True, False):
            raise ConfigError(f'{type(self).__name__}: strict must be True, False or None, got {strict!r}')
        options = self.known_options()
        report_unknown_kwargs(type(self).__name__, [name for name in kwargs if name not in options],
                              [*options, 'strict'], strict)
        for name, default in options.items():
            setattr(self, name, kwargs.get(name, default))
        for name in self.positive_options():
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                raise ConfigError(f'{type(self).__name__}: {name} must be a number > 0, got {value!r}')
        if self.no_lr_history:
            self.lr_history_size = 0  # as the original: no_lr_history wins
        self.lr_history = np.zeros(self.lr_history_size) if self.lr_history_size > 0 else None
        self.lr_history_ptr = 0

    @classmethod
    def known_options(cls) -> dict[str, Any]:
        """Every keyword option of this class with its default, base classes' first."""
        merged: dict[str, Any] = {}
        for klass in reversed(cls.__mro__):
            merged.update(vars(klass).get('OPTIONS', {}))
        return merged

    @classmethod
    def positive_options(cls) -> list[str]:
        """The options of this class and its bases that must be > 0."""
        return [name for klass in reversed(cls.__mro__) for name in vars(klass).get('POSITIVE', ())]

    def __repr__(self) -> str:
        return type(self).__name__  # the TensorBoard tag is 'schedule/lr_<repr>'

    def __str__(self) -> str:
        values = ', '.join(f'{name}={getattr(self, name)!r}' for name in self.known_options())
        return f'{type(self).__name__}({values})'

    def get_lr(self, *x: Any) -> float:
        """The value for `x` (see `schedule_input`), as a Python float, recorded in `lr_history` while it has room."""
        value = float(self.value(*x))
        if self.lr_history is not None and self.lr_history_ptr < len(self.lr_history):
            self.lr_history[self.lr_history_ptr] = value
            self.lr_history_ptr += 1
        return value

    def value(self, *x: Any) -> float:
        raise NotImplementedError(f'{type(self).__name__} must define value()')

    def as_callback(self, target: str | None = None) -> Any:
        """This schedule as a `lightning.Callback` for a plain `lightning.Trainer`.

        Args:
            target: 'lr' or 'momentum'; None: what this schedule is for (`self.target`).
        """
        from compat.adapter.schedule_callback import ScheduleCallback
        return ScheduleCallback(self, target or self.target)

    def plot_history(self, ax: Any, title: str | None = None) -> None:
        """Draw the recorded values on a matplotlib axis (needs `lr_history_size` > 0)."""
        if self.lr_history is None or self.lr_history_ptr == 0:
            raise ValueError(f'{self!r} recorded no values: pass lr_history_size > 0 to keep them')
        ax.plot(np.arange(self.lr_history_ptr), self.lr_history[:self.lr_history_ptr])
        ax.set_xlabel('Iteration')
        ax.set_ylabel('Learning rate' if self.target == 'lr' else 'Momentum')
        ax.set_title(title if title is not None else f'[{self!r}] {self.target} history')

    # Smith's triangle, shared by the cyclic schedules: with itr = x - start_iter,
    # cycle = floor(1 + itr / (2 stepsize)) and t = |itr / stepsize - 2 cycle + 1|.
    def _cycle_and_t(self, x: float) -> tuple[int, float]:
        itr = x - self.start_iter
        cycle = math.floor(1 + itr / (2 * self.stepsize))
        return cycle, abs(itr / self.stepsize - 2 * cycle + 1)

    def _rise(self, x: float) -> float:
        """0 at a cycle's ends, 1 at its middle; 0 before the first iteration (itr < 1)."""
        if x - self.start_iter < 1:
            return 0.0
        _, t = self._cycle_and_t(x)
        return max(0.0, 1.0 - t)


class LRScheduler(_Schedule):
    """Base of the learning-rate schedules.

    Args:
        lr_min: the low end of the range.
        lr_max: the high end of the range.
        **kwargs: the shared options of every schedule (stepsize, start_iter, lr_history_size,
            no_lr_history, strict).
    """

    OPTIONS = {'lr_min': 1e-4, 'lr_max': 1.0}
    lr_min: float
    lr_max: float

    def _triangular(self, x: float) -> float:
        return self.lr_min + (self.lr_max - self.lr_min) * self._rise(x)

    def _triangular2(self, x: float) -> float:
        if x - self.start_iter < 1:
            return self.lr_min
        cycle, t = self._cycle_and_t(x)
        return self.lr_min + (self.lr_max - self.lr_min) * min(1.0, max(0.0, 1.0 - t / 2 ** cycle))
