"""A Lernomatic schedule (any object with `get_lr`) as a Lightning callback, for plain Lightning users."""

from __future__ import annotations

from typing import Any

import lightning

from compat.factories import set_optimizer_momentum

__all__ = ['ScheduleCallback']


class ScheduleCallback(lightning.Callback):
    """After each training batch, set every optimizer's lr (or momentum) from the schedule.

    The schedule's `schedule_input` picks its argument: Lightning's `global_step` (the iteration),
    `current_epoch`, or the logged 'acc/val' metric.

    Args:
        scheduler: an object with `get_lr(...)`.
        target: 'lr' or 'momentum' (SGD's `momentum`, Adam's `betas[0]`).
    """

    def __init__(self, scheduler: Any, target: str = 'lr') -> None:
        if target not in ('lr', 'momentum'):
            raise ValueError(f"target must be 'lr' or 'momentum', got {target!r}")
        self.scheduler = scheduler
        self.target = target

    def on_train_batch_end(self, trainer: lightning.Trainer, pl_module: lightning.LightningModule,
                           outputs: Any, batch: Any, batch_idx: int) -> None:
        needs = getattr(self.scheduler, 'schedule_input', 'iteration')
        accuracy = trainer.callback_metrics.get('acc/val')
        accuracy = float(accuracy) if accuracy is not None else 0.0
        if needs == 'epoch':
            value = self.scheduler.get_lr(trainer.current_epoch)
        elif needs == 'accuracy':
            value = self.scheduler.get_lr(accuracy)
        elif needs == 'iteration_and_accuracy':
            value = self.scheduler.get_lr(trainer.global_step, accuracy)
        else:
            value = self.scheduler.get_lr(trainer.global_step)
        for optimizer in trainer.optimizers:
            if self.target == 'momentum':
                set_optimizer_momentum(optimizer, value)
                continue
            for group in optimizer.param_groups:
                group['lr'] = value
