"""What compat keeps on a Lernomatic trainer between and during runs: one declared, typed object.

The Trainer creates it in `__init__` as `trainer._run_state`; the loop, the bookkeeping and the
loaders read and write its fields. Nothing else is stored on the user's trainer or optimizer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from compat.resume import ResumePoint, RunPosition

__all__ = ['RunState']


@dataclass
class RunState:
    """Run bookkeeping that lives as long as the trainer.

    Attributes:
        position: where the current run is (phase, epoch, batches done), recorded in checkpoints.
        resume: the position a loaded checkpoint asks the next `train()` to continue from.
        finite_upto: the training losses before this iteration are known to be finite.
        logger: the Lightning logger made for this trainer, so all its `train()` calls share one event folder.
        bridge: the LightningModule of the run in progress (None between runs).
        quiet_history: a history write that only keeps the file as new as a checkpoint: not announced.
    """

    position: RunPosition = field(default_factory=RunPosition)
    resume: ResumePoint | None = None
    finite_upto: int = 0
    logger: Any = None
    bridge: Any = None
    quiet_history: bool = False
