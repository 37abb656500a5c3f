"""Learning-rate and momentum schedules: objects with `get_lr(x)`, as Lernomatic's Trainer takes them.

Each scheduler says what `x` is through `schedule_input`: 'iteration' (the trainer's `loss_iter`),
'epoch' (`cur_epoch`), 'accuracy' (the newest validation accuracy) or 'iteration_and_accuracy'
(`get_lr(loss_iter, accuracy)`), so nothing outside has to know the classes. The Trainer applies
them after every iteration; plain Lightning users attach one with `scheduler.as_callback()`.

Each class declares its keyword options and their defaults once, in `OPTIONS` (merged along the
class hierarchy by `known_options()`). Unknown keywords are ignored with one warning, as the
original ignored them (zoo code passes keywords meant for other schedulers); `strict=True`, or
LERNOMATIC_STRICT=1, makes them a ConfigError. Values follow the Lernomatic API spec; `get_lr`
always returns a Python float (a numpy scalar in a checkpoint breaks weights-only loading).
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np

from compat.errors import ConfigError
from compat.kwargs import report_unknown_kwargs

__all__ = ['LRScheduler', 'TriangularScheduler', 'InvTriangularScheduler', 'Triangular2Scheduler',
           'TriangularExpScheduler', 'Triangular2ExpScheduler', 'ExponentialDecayScheduler', 'StepScheduler',
           'LogDecayScheduler', 'LinearDecayScheduler', 'WarmRestartScheduler', 'EpochSetScheduler',
           'DecayWhenEpoch', 'DecayToEpoch', 'DecayWhenAcc', 'TriangularDecayWhenAcc',
           'MtmScheduler', 'TriangularMtmScheduler']


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

    def _triangular(self, x: float) -> float:
        return self.lr_min + (self.lr_max - self.lr_min) * self._rise(x)

    def _triangular2(self, x: float) -> float:
        if x - self.start_iter < 1:
            return self.lr_min
        cycle, t = self._cycle_and_t(x)
        return self.lr_min + (self.lr_max - self.lr_min) * min(1.0, max(0.0, 1.0 - t / 2 ** cycle))


class TriangularScheduler(LRScheduler):
    """Smith's triangular cyclical learning rate (2017): lr_min up to lr_max and back every 2*stepsize."""

    def value(self, x: float) -> float:
        return self._triangular(x)


class InvTriangularScheduler(LRScheduler):
    """lr_max minus the triangular value (lr_max before the first iteration)."""

    def value(self, x: float) -> float:
        return self.lr_max if x - self.start_iter < 1 else self.lr_max - self._triangular(x)


class Triangular2Scheduler(LRScheduler):
    """Triangular with the term `t` divided by 2**cycle, as the original computed it."""

    def value(self, x: float) -> float:
        return self._triangular2(x)


class TriangularExpScheduler(LRScheduler):
    """Triangular times exp(-k x)."""

    OPTIONS = {'k': 1e-4}

    def value(self, x: float) -> float:
        return self._triangular(x) * math.exp(-self.k * x)


class Triangular2ExpScheduler(TriangularExpScheduler):
    """Triangular2 times exp(-k x)."""

    def value(self, x: float) -> float:
        return self._triangular2(x) * math.exp(-self.k * x)


class ExponentialDecayScheduler(LRScheduler):
    """lr_max exp(-k x)."""

    OPTIONS = {'k': 0.001}

    def value(self, x: float) -> float:
        return self.lr_max * math.exp(-self.k * x)


class StepScheduler(LRScheduler):
    """Starts at lr_max; multiplied by lr_decay whenever x is a multiple of lr_decay_every (x = 0 included)."""

    OPTIONS = {'lr_decay': 0.001, 'lr_decay_every': 10000}
    POSITIVE = ('lr_decay_every',)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.cur_lr = self.lr_max

    def value(self, x: int) -> float:
        if x % self.lr_decay_every == 0:
            self.cur_lr *= self.lr_decay
        return self.cur_lr


class LogDecayScheduler(LRScheduler):
    """Geometric decay from lr_max to lr_min over num_iter iterations, then lr_min.

    The original's code never moved from its first value; this is what its name and docstring meant.
    """

    OPTIONS = {'num_iter': 50000}
    POSITIVE = ('num_iter',)

    def value(self, x: float) -> float:
        done = min(max(x - self.start_iter, 0), self.num_iter) / self.num_iter
        return self.lr_max * (self.lr_min / self.lr_max) ** done


class LinearDecayScheduler(LRScheduler):
    """Linear decay from lr_max to lr_min over num_iters iterations, then lr_min.

    The original's constructor crashed (it read an attribute it never set); this is what it meant.
    """

    OPTIONS = {'num_iters': 100000}
    POSITIVE = ('num_iters',)

    def value(self, x: float) -> float:
        done = min(max(x - self.start_iter, 0), self.num_iters) / self.num_iters
        return self.lr_max - (self.lr_max - self.lr_min) * done


class WarmRestartScheduler(LRScheduler):
    """Cosine annealing from lr_max to lr_min with warm restarts (SGDR), counted in calls.

    `batch_since_restart` counts the calls since the last restart: 1 on the first call, one more
    each call. The cosine's fraction is `batch_since_restart / (2*stepsize)`, so the call that
    brings it to 2*stepsize returns lr_min and completes the period; the next call restarts the
    count at 1, back near lr_max. A call with x < 1 (before the first iteration) uses the fraction
    `1 / (2*stepsize*step_per_epoch)` instead, as the original did; it still counts as a call.
    The value is `lr_min + 0.5*(lr_max - lr_min)*(1 + cos(pi*fraction))`.

    The original never advanced its counter (so it stayed at lr_max); this is what it meant.

    Args:
        step_per_epoch: only scales the fraction used before the first iteration.
    """

    OPTIONS = {'step_per_epoch': 1000}
    POSITIVE = ('step_per_epoch',)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.batch_since_restart = 0
        self.cur_lr = self.lr_max

    def value(self, x: float) -> float:
        period = 2 * self.stepsize
        if self.batch_since_restart >= period:
            self.batch_since_restart = 0  # the last call completed a period: restart
        self.batch_since_restart += 1
        if x < 1:
            fraction = 1.0 / (period * self.step_per_epoch)
        else:
            fraction = self.batch_since_restart / period
        self.cur_lr = self.lr_min + 0.5 * (self.lr_max - self.lr_min) * (1 + math.cos(math.pi * fraction))
        return self.cur_lr


class EpochSetScheduler(LRScheduler):
    """Values at given epochs: `schedule` is {epoch: value} and must have a 0 key.

    With lr_value=True the value is the learning rate from that epoch on; otherwise the rate
    (starting at lr_max) is multiplied by it once, when that epoch is reached.
    """

    OPTIONS = {'lr_value': False}
    schedule_input = 'epoch'

    def __init__(self, schedule: dict, **kwargs: Any) -> None:
        if not isinstance(schedule, dict) or 0 not in schedule:
            raise ConfigError(f'schedule must be a dict of {{epoch: value}} with a 0 key, got {schedule!r}')
        bad = [key for key in schedule if isinstance(key, bool) or not isinstance(key, int)]
        if bad:
            raise ConfigError(f'schedule keys must be integer epochs, got {bad!r}')
        self.schedule = dict(schedule)
        super().__init__(**kwargs)
        self.learning_rate = self.lr_max
        self._applied: set[int] = set()

    def value(self, epoch: int) -> float:
        for key in sorted(k for k in self.schedule if k <= epoch and k not in self._applied):
            self._applied.add(key)
            self.learning_rate = self.schedule[key] if self.lr_value else self.learning_rate * self.schedule[key]
        return self.learning_rate


class DecayWhenEpoch(LRScheduler):
    """initial_lr (None: lr_max) times lr_decay every num_epochs epochs."""

    OPTIONS = {'lr_decay': 0.9, 'num_epochs': 8, 'initial_lr': None}
    POSITIVE = ('num_epochs',)
    schedule_input = 'epoch'

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if self.initial_lr is None:
            self.initial_lr = self.lr_max

    def value(self, epoch: int) -> float:
        return self.initial_lr * self.lr_decay ** (epoch // self.num_epochs)


class DecayToEpoch(LRScheduler):
    """initial_lr until non_decay_time, then linearly to final_lr over decay_length epochs."""

    OPTIONS = {'initial_lr': 3e-4, 'final_lr': 0.0, 'decay_length': 40, 'non_decay_time': 0}
    POSITIVE = ('decay_length',)
    schedule_input = 'epoch'

    def value(self, epoch: int) -> float:
        done = min(max(epoch - self.non_decay_time, 0) / self.decay_length, 1.0)
        return self.initial_lr + (self.final_lr - self.initial_lr) * done


class DecayWhenAcc(LRScheduler):
    """Starts at initial_lr; times lr_decay when the accuracy falls below (1 - acc_thresh) x the best.

    The threshold is relative to the best accuracy, as the original computed it. The Trainer asks
    every iteration while the accuracy changes once an epoch, so only a new accuracy value is
    judged (the original decayed on every call, collapsing the rate within an epoch).
    """

    OPTIONS = {'initial_lr': 0.01, 'acc_thresh': 0.05, 'lr_decay': 0.9}
    schedule_input = 'accuracy'

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.best_acc = 0.0
        self.learning_rate = self.initial_lr
        self._last_acc: float | None = None

    def value(self, acc: float) -> float:
        if acc != self._last_acc:
            self._last_acc = acc
            self.best_acc = max(self.best_acc, acc)
            if acc < self.best_acc * (1.0 - self.acc_thresh):
                self.learning_rate *= self.lr_decay
        return self.learning_rate


class TriangularDecayWhenAcc(LRScheduler):
    """`get_lr(iteration, accuracy)`: triangular, times lr_decay while accuracy < (1 - acc_thresh) x the best.

    As in the original, the decay is not cumulative: it applies while the accuracy stays low, and
    not before the first iteration (lr_min).
    """

    OPTIONS = {'lr_decay': 0.9, 'acc_thresh': 0.05}
    schedule_input = 'iteration_and_accuracy'

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.best_acc = 0.0

    def value(self, x: float, acc: float) -> float:
        self.best_acc = max(self.best_acc, acc)
        if x - self.start_iter < 1:
            return self.lr_min
        below = acc < self.best_acc * (1.0 - self.acc_thresh)
        return self._triangular(x) * (self.lr_decay if below else 1.0)


class MtmScheduler(_Schedule):
    """Base of the momentum schedules; on its own it holds the momentum at mtm_max.

    Works as a Trainer's `mtm_scheduler` (the Trainer calls `get_lr(loss_iter)` and sets SGD's
    `momentum` or Adam's `betas[0]`) and as a Lightning callback (`as_callback()` targets momentum).
    The original defined only the two options (and no value).

    Args:
        mtm_min: the low end of the range.
        mtm_max: the high end of the range.
        **kwargs: the shared options of every schedule (stepsize, start_iter, lr_history_size,
            no_lr_history, strict).
    """

    OPTIONS = {'mtm_min': 1e-3, 'mtm_max': 0.9}
    target = 'momentum'

    def value(self, x: float) -> float:
        return self.mtm_max

    def get_mtm(self, x: float) -> float:
        """The momentum for iteration `x` (the same as `get_lr(x)`, which the Trainer calls)."""
        return self.get_lr(x)


class TriangularMtmScheduler(MtmScheduler):
    """Cyclical momentum (Smith 2018): mtm_max down to mtm_min and back every 2*stepsize iterations.

    The mirror of `TriangularScheduler` with the same stepsize: momentum is lowest where the
    learning rate is highest. mtm_max before the first iteration (itr < 1). The original's
    `get_mtm()` returned None.
    """

    def value(self, x: float) -> float:
        return self.mtm_max - (self.mtm_max - self.mtm_min) * self._rise(x)
