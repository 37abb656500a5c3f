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

from lernomatic.train.schedule.base import LRScheduler
from lernomatic.train.schedule.by_epoch_or_accuracy import (
    DecayToEpoch,
    DecayWhenAcc,
    DecayWhenEpoch,
    EpochSetScheduler,
    TriangularDecayWhenAcc,
)
from lernomatic.train.schedule.by_iteration import (
    ExponentialDecayScheduler,
    InvTriangularScheduler,
    LinearDecayScheduler,
    LogDecayScheduler,
    StepScheduler,
    Triangular2ExpScheduler,
    Triangular2Scheduler,
    TriangularExpScheduler,
    TriangularScheduler,
    WarmRestartScheduler,
)
from lernomatic.train.schedule.momentum import MtmScheduler, TriangularMtmScheduler

__all__ = ['LRScheduler', 'TriangularScheduler', 'InvTriangularScheduler', 'Triangular2Scheduler',
           'TriangularExpScheduler', 'Triangular2ExpScheduler', 'ExponentialDecayScheduler', 'StepScheduler',
           'LogDecayScheduler', 'LinearDecayScheduler', 'WarmRestartScheduler', 'EpochSetScheduler',
           'DecayWhenEpoch', 'DecayToEpoch', 'DecayWhenAcc', 'TriangularDecayWhenAcc',
           'MtmScheduler', 'TriangularMtmScheduler']
