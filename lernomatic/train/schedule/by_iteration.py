"""Schedules of the iteration (`loss_iter`): cyclic, exponential, step, log, linear, warm restarts."""

from __future__ import annotations

import math
from typing import Any

from lernomatic.train.schedule.base import LRScheduler

__all__ = ['TriangularScheduler', 'InvTriangularScheduler', 'Triangular2Scheduler', 'TriangularExpScheduler',
           'Triangular2ExpScheduler', 'ExponentialDecayScheduler', 'StepScheduler', 'LogDecayScheduler',
           'LinearDecayScheduler', 'WarmRestartScheduler']


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
    k: float

    def value(self, x: float) -> float:
        return self._triangular(x) * math.exp(-self.k * x)


class Triangular2ExpScheduler(TriangularExpScheduler):
    """Triangular2 times exp(-k x)."""

    def value(self, x: float) -> float:
        return self._triangular2(x) * math.exp(-self.k * x)


class ExponentialDecayScheduler(LRScheduler):
    """lr_max exp(-k x)."""

    OPTIONS = {'k': 0.001}
    k: float

    def value(self, x: float) -> float:
        return self.lr_max * math.exp(-self.k * x)


class StepScheduler(LRScheduler):
    """Starts at lr_max; multiplied by lr_decay whenever x is a multiple of lr_decay_every (x = 0 included)."""

    OPTIONS = {'lr_decay': 0.001, 'lr_decay_every': 10000}
    POSITIVE = ('lr_decay_every',)
    lr_decay: float
    lr_decay_every: int

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
    num_iter: int

    def value(self, x: float) -> float:
        done = min(max(x - self.start_iter, 0), self.num_iter) / self.num_iter
        return self.lr_max * (self.lr_min / self.lr_max) ** done


class LinearDecayScheduler(LRScheduler):
    """Linear decay from lr_max to lr_min over num_iters iterations, then lr_min.

    The original's constructor crashed (it read an attribute it never set); this is what it meant.
    """

    OPTIONS = {'num_iters': 100000}
    POSITIVE = ('num_iters',)
    num_iters: int

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
    step_per_epoch: int

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
