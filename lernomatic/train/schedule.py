"""Learning-rate and momentum schedules: objects with `get_lr(x)`, as Lernomatic's Trainer takes them.

Each scheduler says what `x` is through `schedule_input`: 'iteration' (the trainer's `loss_iter`),
'epoch' (`cur_epoch`), 'accuracy' (the newest validation accuracy) or 'iteration_and_accuracy'
(`get_lr(loss_iter, accuracy)`). The Trainer applies them after every iteration; plain Lightning
users attach one with `scheduler.as_callback()`. Values follow the Lernomatic API spec's formulas.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = ['LRScheduler', 'TriangularScheduler', 'InvTriangularScheduler', 'Triangular2Scheduler',
           'TriangularExpScheduler', 'Triangular2ExpScheduler', 'ExponentialDecayScheduler', 'StepScheduler',
           'LogDecayScheduler', 'LinearDecayScheduler', 'WarmRestartScheduler', 'EpochSetScheduler',
           'DecayWhenEpoch', 'DecayToEpoch', 'DecayWhenAcc', 'TriangularDecayWhenAcc']


class LRScheduler:
    """Base: the shared kwargs, the optional record of returned values, `__repr__` for TensorBoard tags.

    Args:
        lr_min: the low end of the range.
        lr_max: the high end of the range.
        stepsize: half a cycle, in iterations, for the cyclic schedules.
        start_iter: the iteration the schedule starts at.
        lr_history_size: when > 0, the first that many returned values are kept in `lr_history`.
        no_lr_history: keep no record whatever `lr_history_size` says.
    """

    schedule_input = 'iteration'

    def __init__(self, **kwargs: Any) -> None:
        self.lr_min = kwargs.pop('lr_min', 1e-4)
        self.lr_max = kwargs.pop('lr_max', 1.0)
        self.stepsize = kwargs.pop('stepsize', 1000)
        self.start_iter = kwargs.pop('start_iter', 0)
        self.lr_history_size = kwargs.pop('lr_history_size', 0)
        self.no_lr_history = kwargs.pop('no_lr_history', False)
        if kwargs:
            raise TypeError(f'{type(self).__name__} got unknown option(s) {", ".join(map(repr, kwargs))}')
        if self.stepsize <= 0:
            raise ValueError(f'stepsize must be positive, got {self.stepsize!r}')
        keep = self.lr_history_size > 0 and not self.no_lr_history
        self.lr_history = np.zeros(self.lr_history_size) if keep else None
        self.lr_history_ptr = 0

    def __repr__(self) -> str:
        return type(self).__name__

    def __str__(self) -> str:
        return f'{type(self).__name__}: lr range {self.lr_min:.4g} -> {self.lr_max:.4g}'

    def get_lr(self, *x: Any) -> float:
        value = float(self.value(*x))
        if self.lr_history is not None and self.lr_history_ptr < len(self.lr_history):
            self.lr_history[self.lr_history_ptr] = value
            self.lr_history_ptr += 1
        return value

    def value(self, *x: Any) -> float:
        raise NotImplementedError(f'{type(self).__name__} must define value()')

    def as_callback(self, target: str = 'lr') -> Any:
        """This schedule as a `lightning.Callback` for a plain `lightning.Trainer`."""
        from compat.schedule_callback import ScheduleCallback
        return ScheduleCallback(self, target)

    # shared cyclic terms: with itr = x - start_iter
    def _cycle_and_t(self, x: float) -> tuple[int, float]:
        itr = x - self.start_iter
        cycle = math.floor(1 + itr / (2 * self.stepsize))
        return cycle, abs(itr / self.stepsize - 2 * cycle + 1)

    def _triangular(self, x: float) -> float:
        if x - self.start_iter < 1:
            return self.lr_min
        _, t = self._cycle_and_t(x)
        return self.lr_min + (self.lr_max - self.lr_min) * max(0.0, 1.0 - t)

    def _triangular2(self, x: float) -> float:
        if x - self.start_iter < 1:
            return self.lr_min
        cycle, t = self._cycle_and_t(x)
        return self.lr_min + (self.lr_max - self.lr_min) * min(1.0, max(0.0, 1.0 - t / 2 ** cycle))


class TriangularScheduler(LRScheduler):
    """Smith's triangular cyclical learning rate (2017)."""

    def value(self, x: float) -> float:
        return self._triangular(x)


class InvTriangularScheduler(LRScheduler):
    """lr_max minus the triangular value."""

    def value(self, x: float) -> float:
        return self.lr_max if x - self.start_iter < 1 else self.lr_max - self._triangular(x)


class Triangular2Scheduler(LRScheduler):
    """Triangular with the term `t` divided by 2**cycle."""

    def value(self, x: float) -> float:
        return self._triangular2(x)


class TriangularExpScheduler(LRScheduler):
    """Triangular times exp(-k x)."""

    def __init__(self, **kwargs: Any) -> None:
        self.k = kwargs.pop('k', 1e-4)
        super().__init__(**kwargs)

    def value(self, x: float) -> float:
        return self._triangular(x) * math.exp(-self.k * x)


class Triangular2ExpScheduler(TriangularExpScheduler):
    """Triangular2 times exp(-k x)."""

    def value(self, x: float) -> float:
        return self._triangular2(x) * math.exp(-self.k * x)


class ExponentialDecayScheduler(LRScheduler):
    """lr_max exp(-k x)."""

    def __init__(self, **kwargs: Any) -> None:
        self.k = kwargs.pop('k', 0.001)
        super().__init__(**kwargs)

    def value(self, x: float) -> float:
        return self.lr_max * math.exp(-self.k * x)


class StepScheduler(LRScheduler):
    """Starts at lr_max; multiplied by lr_decay whenever x is a multiple of lr_decay_every."""

    def __init__(self, **kwargs: Any) -> None:
        self.lr_decay = kwargs.pop('lr_decay', 0.001)
        self.lr_decay_every = kwargs.pop('lr_decay_every', 10000)
        super().__init__(**kwargs)
        self.cur_lr = self.lr_max

    def value(self, x: int) -> float:
        if x % self.lr_decay_every == 0:
            self.cur_lr *= self.lr_decay
        return self.cur_lr


class LogDecayScheduler(LRScheduler):
    """Geometric decay from lr_max to lr_min over num_iter iterations, then lr_min."""

    def __init__(self, **kwargs: Any) -> None:
        self.num_iter = kwargs.pop('num_iter', 100000)
        super().__init__(**kwargs)

    def value(self, x: float) -> float:
        done = min(max(x - self.start_iter, 0), self.num_iter) / self.num_iter
        return self.lr_max * (self.lr_min / self.lr_max) ** done


class LinearDecayScheduler(LRScheduler):
    """Linear decay from lr_max to lr_min over num_iters iterations, then lr_min."""

    def __init__(self, **kwargs: Any) -> None:
        self.num_iters = kwargs.pop('num_iters', 100000)
        super().__init__(**kwargs)

    def value(self, x: float) -> float:
        done = min(max(x - self.start_iter, 0), self.num_iters) / self.num_iters
        return self.lr_max - (self.lr_max - self.lr_min) * done


class WarmRestartScheduler(LRScheduler):
    """Cosine from lr_max to lr_min over 2*stepsize iterations, then again from lr_max (SGDR)."""

    def value(self, x: float) -> float:
        period = 2 * self.stepsize
        phase = (max(x - self.start_iter, 0) % period) / period
        return self.lr_min + 0.5 * (self.lr_max - self.lr_min) * (1 + math.cos(math.pi * phase))


class EpochSetScheduler(LRScheduler):
    """Values at given epochs: `schedule` is {epoch: value} and must have a 0 key.

    With lr_value=True the value is the learning rate from that epoch on; otherwise the rate
    (starting at lr_max) is multiplied by it once, when that epoch is reached.
    """

    schedule_input = 'epoch'

    def __init__(self, schedule: dict, **kwargs: Any) -> None:
        if not isinstance(schedule, dict) or 0 not in schedule:
            raise ValueError(f'schedule must be a dict of {{epoch: value}} with a 0 key, got {schedule!r}')
        bad = [key for key in schedule if not isinstance(key, int)]
        if bad:
            raise ValueError(f'schedule keys must be integer epochs, got {bad!r}')
        self.schedule = dict(schedule)
        self.lr_value = kwargs.pop('lr_value', False)
        super().__init__(**kwargs)
        self.learning_rate = self.lr_max
        self._applied: set[int] = set()

    def value(self, epoch: int) -> float:
        for key in sorted(k for k in self.schedule if k <= epoch and k not in self._applied):
            self._applied.add(key)
            self.learning_rate = self.schedule[key] if self.lr_value else self.learning_rate * self.schedule[key]
        return self.learning_rate


class DecayWhenEpoch(LRScheduler):
    """initial_lr (default lr_max) times lr_decay every num_epochs epochs."""

    schedule_input = 'epoch'

    def __init__(self, **kwargs: Any) -> None:
        self.lr_decay = kwargs.pop('lr_decay', 0.9)
        self.num_epochs = kwargs.pop('num_epochs', 8)
        initial = kwargs.pop('initial_lr', None)
        super().__init__(**kwargs)
        self.initial_lr = self.lr_max if initial is None else initial

    def value(self, epoch: int) -> float:
        return self.initial_lr * self.lr_decay ** (epoch // self.num_epochs)


class DecayToEpoch(LRScheduler):
    """initial_lr until non_decay_time, then linearly to final_lr over decay_length epochs."""

    schedule_input = 'epoch'

    def __init__(self, **kwargs: Any) -> None:
        self.initial_lr = kwargs.pop('initial_lr', 3e-4)
        self.final_lr = kwargs.pop('final_lr', 0.0)
        self.decay_length = kwargs.pop('decay_length', 40)
        self.non_decay_time = kwargs.pop('non_decay_time', 0)
        super().__init__(**kwargs)

    def value(self, epoch: int) -> float:
        done = min(max(epoch - self.non_decay_time, 0) / self.decay_length, 1.0)
        return self.initial_lr + (self.final_lr - self.initial_lr) * done


class _AccuracyDecay:
    """The shared rule: a multiplier that shrinks by lr_decay each time accuracy drops acc_thresh below its best.

    The Trainer applies schedules every iteration while the accuracy changes once an epoch, so
    only a new accuracy value is judged.
    """

    def __init__(self, lr_decay: float, acc_thresh: float) -> None:
        self.lr_decay, self.acc_thresh = lr_decay, acc_thresh
        self.best_acc = None
        self.factor = 1.0
        self._last = None

    def observe(self, acc: float) -> float:
        if acc is not None and acc != self._last:
            self._last = acc
            if self.best_acc is None or acc > self.best_acc:
                self.best_acc = acc
            elif acc < self.best_acc - self.acc_thresh:
                self.factor *= self.lr_decay
        return self.factor


class DecayWhenAcc(LRScheduler):
    """Starts at initial_lr; times lr_decay when the accuracy falls acc_thresh below the best."""

    schedule_input = 'accuracy'

    def __init__(self, **kwargs: Any) -> None:
        self.initial_lr = kwargs.pop('initial_lr', 0.01)
        self.rule = _AccuracyDecay(kwargs.pop('lr_decay', 0.9), kwargs.pop('acc_thresh', 0.05))
        super().__init__(**kwargs)

    def value(self, acc: float) -> float:
        return self.initial_lr * self.rule.observe(acc)


class TriangularDecayWhenAcc(LRScheduler):
    """Triangular in the iteration, times lr_decay each time the accuracy falls acc_thresh below the best."""

    schedule_input = 'iteration_and_accuracy'

    def __init__(self, **kwargs: Any) -> None:
        self.rule = _AccuracyDecay(kwargs.pop('lr_decay', 0.9), kwargs.pop('acc_thresh', 0.05))
        super().__init__(**kwargs)

    def value(self, x: float, acc: float) -> float:
        return self._triangular(x) * self.rule.observe(acc)
