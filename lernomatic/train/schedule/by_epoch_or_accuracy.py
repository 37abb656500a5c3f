"""Schedules of the epoch (`cur_epoch`) or of the newest validation accuracy."""

from __future__ import annotations

from typing import Any

from compat.errors import ConfigError
from lernomatic.train.schedule.base import LRScheduler

__all__ = ['EpochSetScheduler', 'DecayWhenEpoch', 'DecayToEpoch', 'DecayWhenAcc', 'TriangularDecayWhenAcc']


class EpochSetScheduler(LRScheduler):
    """Values at given epochs: `schedule` is {epoch: value} and must have a 0 key.

    With lr_value=True the value is the learning rate from that epoch on; otherwise the rate
    (starting at lr_max) is multiplied by it once, when that epoch is reached.
    """

    OPTIONS = {'lr_value': False}
    schedule_input = 'epoch'
    lr_value: bool

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
    lr_decay: float
    num_epochs: int
    initial_lr: float  # None in OPTIONS means lr_max, which __init__ puts in its place

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
    initial_lr: float
    final_lr: float
    decay_length: int
    non_decay_time: int

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
    initial_lr: float
    acc_thresh: float
    lr_decay: float

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
    lr_decay: float
    acc_thresh: float

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.best_acc = 0.0

    def value(self, x: float, acc: float) -> float:
        self.best_acc = max(self.best_acc, acc)
        if x - self.start_iter < 1:
            return self.lr_min
        below = acc < self.best_acc * (1.0 - self.acc_thresh)
        return self._triangular(x) * (self.lr_decay if below else 1.0)
