"""What compat keeps on a Lernomatic trainer between and during runs: one declared, typed object.

The Trainer creates it in `__init__` as `trainer._run_state`; the loop, the bookkeeping and the
loaders read and write its fields. Nothing else is stored on the user's trainer or optimizer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ['RunState', 'RunPosition', 'ResumePoint', 'GoodStep', 'PHASES']

# 'idle': not inside an epoch; 'train': inside the training batches of `epoch`; 'validated': the
# epoch's training and validation are done, its end (history, stop rules, cur_epoch += 1) is not.
PHASES = ('idle', 'train', 'validated')


@dataclass
class RunPosition:
    """Where a trainer's run is now; the loop updates it, checkpoints record it (`compat.codec.resume`)."""

    phase: str = 'idle'
    epoch: int = 0
    batches_done: int = 0
    epoch_rng_state: dict[str, Any] | None = None


@dataclass(frozen=True)
class ResumePoint:
    """A checkpoint's run position, checked: what a resumed run must replay, skip and restore."""

    phase: str
    epoch: int
    batches_done: int
    counters: dict[str, int] = field(default_factory=dict)
    best_acc: float = 0.0
    epoch_rng_state: dict[str, Any] | None = None
    rng_state: dict[str, Any] | None = None


@dataclass(frozen=True)
class GoodStep:
    """The run as it stood after its last finished step: what a run that stops by an exception goes back to.

    Attributes:
        position: the position then (a copy).
        counters: the history counters then, by name.
        cur_epoch: the trainer's `cur_epoch` then.
        best_acc: the trainer's `best_acc` then.
        pending: a loaded checkpoint's resume point the run had not yet caught up with (None once it had).
    """

    position: RunPosition
    counters: dict[str, int]
    cur_epoch: int
    best_acc: float
    pending: ResumePoint | None = None


@dataclass
class RunState:
    """Run bookkeeping that lives as long as the trainer.

    Attributes:
        position: where the current run is (phase, epoch, batches done), recorded in checkpoints.
        resume: the position a loaded checkpoint asks the next `train()` to continue from.
        finite_upto: the training losses before this iteration are known to be finite.
        logger: the Lightning logger made for this trainer, so all its `train()` calls share one event folder.
        bridge: the LightningModule of the run in progress (None between runs).
        pending_history: device values waiting to be written into each history array (`device_buffer`).
        capturable_before: while `cuda_graph=True` runs, each param group's own `capturable` setting.
        said: the once-a-trainer messages already given.
        last_good: the run after its last finished step (`compat.loop.good_step`).
        stepped: an optimizer has stepped since `last_good`: the weights are ahead of every record.
        torn: why a checkpoint cannot be saved now (a run stopped inside a step), None when it can.
    """

    position: RunPosition = field(default_factory=RunPosition)
    resume: ResumePoint | None = None
    finite_upto: int = 0
    logger: Any = None
    bridge: Any = None
    pending_history: dict[str, Any] = field(default_factory=dict)
    capturable_before: list[bool] | None = None
    said: set[str] = field(default_factory=set)
    last_good: GoodStep | None = None
    stepped: bool = False
    torn: str | None = None
