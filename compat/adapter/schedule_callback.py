"""A Lernomatic schedule (any object with `get_lr`) as a Lightning callback, for plain Lightning users."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import lightning

from compat.errors import ConfigError
from compat.optim import optimizer_momentum, set_optimizer_momentum

__all__ = ['ScheduleCallback', 'SCHEDULE_INPUTS']


def _accuracy(trainer: lightning.Trainer) -> float:
    accuracy = trainer.callback_metrics.get('acc/val')
    return float(accuracy) if accuracy is not None else 0.0


# What `get_lr` receives, by the schedule's `schedule_input`: the same quantities the Lernomatic
# Trainer passes (its loss_iter is Lightning's global_step after the step).
SCHEDULE_INPUTS: dict[str, Callable[[lightning.Trainer], tuple[Any, ...]]] = {
    'iteration': lambda trainer: (trainer.global_step,),
    'epoch': lambda trainer: (trainer.current_epoch,),
    'accuracy': lambda trainer: (_accuracy(trainer),),
    'iteration_and_accuracy': lambda trainer: (trainer.global_step, _accuracy(trainer)),
}


def _set_lr(optimizer: Any, value: float) -> None:
    for group in optimizer.param_groups:
        group['lr'] = value


_SETTERS = {'lr': _set_lr, 'momentum': set_optimizer_momentum}


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
        if not callable(getattr(scheduler, 'get_lr', None)):
            raise ConfigError(f'scheduler must have a get_lr() method, got {type(scheduler).__name__}')
        needs = getattr(scheduler, 'schedule_input', 'iteration')
        if needs not in SCHEDULE_INPUTS:
            raise ConfigError(f'{scheduler!r}.schedule_input must be one of {sorted(SCHEDULE_INPUTS)}, got {needs!r}')
        self.scheduler = scheduler
        self.target = target
        self._arguments = SCHEDULE_INPUTS[needs]
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
        value = self.scheduler.get_lr(*self._arguments(trainer))
        for optimizer in trainer.optimizers:
            self._set(optimizer, value)
