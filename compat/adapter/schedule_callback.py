"""A Lernomatic schedule (any object with `get_lr`) as a Lightning callback, for plain Lightning users."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import lightning
import torch

from compat.errors import ConfigError
from compat.schedules import (
    check_scheduler,
    optimizer_momentum,
    schedule_value,
    set_optimizer_lr,
    set_optimizer_momentum,
)

__all__ = ['ScheduleCallback']


def _accuracy(trainer: lightning.Trainer) -> float:
    accuracy = trainer.callback_metrics.get('acc/val')
    return float(accuracy) if accuracy is not None else 0.0


_SETTERS: dict[str, Callable[[torch.optim.Optimizer, float], None]] = {
    'lr': set_optimizer_lr, 'momentum': set_optimizer_momentum}


class ScheduleCallback(lightning.Callback):
    """After each training batch, set every optimizer's lr (or momentum) from the schedule.

    Args:
        scheduler: an object with `get_lr(...)`; its `schedule_input` (default 'iteration') says
            what it is a function of: Lightning's `global_step`, `current_epoch`, or the logged
            'acc/val' metric (0.0 before the first validation).
        target: 'lr', or 'momentum' (SGD's `momentum`, Adam's `betas[0]`).
    """

    def __init__(self, scheduler: Any, target: str = 'lr') -> None:
        if target not in _SETTERS:
            raise ConfigError(f'target must be one of {sorted(_SETTERS)}, got {target!r}')
        check_scheduler(scheduler)
        self.scheduler = scheduler
        self.target = target
        self._set = _SETTERS[target]

    def on_train_start(self, trainer: lightning.Trainer, pl_module: lightning.LightningModule) -> None:
        """Refuse a momentum schedule for an optimizer without momentum, rather than ignore it silently."""
        if self.target != 'momentum':
            return
        for optimizer in trainer.optimizers:
            if optimizer_momentum(optimizer) is None:
                raise ConfigError(f'{self.scheduler!r} schedules momentum, but {type(optimizer).__name__} has '
                                  "neither 'momentum' nor 'betas': use an SGD- or Adam-style optimizer")

    def on_train_batch_end(self, trainer: lightning.Trainer, pl_module: lightning.LightningModule,
                           outputs: Any, batch: Any, batch_idx: int) -> None:
        # Lightning's global_step after the step is the Trainer's loss_iter after its iteration
        value = schedule_value(self.scheduler, trainer.global_step, trainer.current_epoch, _accuracy(trainer))
        for optimizer in trainer.optimizers:
            self._set(optimizer, value)
