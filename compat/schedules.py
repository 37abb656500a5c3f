"""Applying a Lernomatic schedule (any object with `get_lr`): what it is a function of, and what it sets.

A scheduler says what `get_lr` takes with its `schedule_input` attribute; the Trainer (after every
iteration) and the Lightning callback (`compat.adapter.ScheduleCallback`) both read this table, so
the two cannot disagree. The value sets the optimizer's lr, or its momentum (SGD's `momentum`,
Adam's `betas[0]`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from compat.errors import ConfigError

__all__ = ['SCHEDULE_INPUTS', 'schedule_value', 'check_scheduler', 'optimizer_momentum', 'set_optimizer_momentum',
           'set_optimizer_lr']

# schedule_input -> the arguments of get_lr, from (iteration, epoch, newest validation accuracy)
SCHEDULE_INPUTS: dict[str, Callable[[int, int, float], tuple[Any, ...]]] = {
    'iteration': lambda iteration, epoch, accuracy: (iteration,),
    'epoch': lambda iteration, epoch, accuracy: (epoch,),
    'accuracy': lambda iteration, epoch, accuracy: (accuracy,),
    'iteration_and_accuracy': lambda iteration, epoch, accuracy: (iteration, accuracy),
}


def check_scheduler(scheduler: Any) -> str:
    """The scheduler's `schedule_input` (default 'iteration'); ConfigError if it has no get_lr or an unknown input."""
    if not callable(getattr(scheduler, 'get_lr', None)):
        raise ConfigError(f'a schedule must have a get_lr() method, got {type(scheduler).__name__}')
    needs = getattr(scheduler, 'schedule_input', 'iteration')
    if needs not in SCHEDULE_INPUTS:
        raise ConfigError(f'{scheduler!r}.schedule_input must be one of {sorted(SCHEDULE_INPUTS)}, got {needs!r}')
    return needs


def schedule_value(scheduler: Any, iteration: int, epoch: int, accuracy: float) -> float:
    """`scheduler.get_lr(...)` with the arguments its `schedule_input` asks for."""
    return scheduler.get_lr(*SCHEDULE_INPUTS[check_scheduler(scheduler)](iteration, epoch, accuracy))


def set_optimizer_lr(optimizer: torch.optim.Optimizer, lr: float, first_group_only: bool = False) -> None:
    """Set the learning rate of every parameter group (or the first only, as the original's Trainer did)."""
    for group in optimizer.param_groups[:1] if first_group_only else optimizer.param_groups:
        group['lr'] = lr


def optimizer_momentum(optimizer: torch.optim.Optimizer) -> float | None:
    """SGD-style `momentum`, or Adam-style `betas[0]`, of the first parameter group; None if neither."""
    group = optimizer.param_groups[0]
    if 'momentum' in group:
        return group['momentum']
    if 'betas' in group:
        return group['betas'][0]
    return None


def set_optimizer_momentum(optimizer: torch.optim.Optimizer, momentum: float) -> None:
    """Set `momentum` (SGD-style) or `betas[0]` (Adam-style) in every parameter group."""
    for group in optimizer.param_groups:
        if 'momentum' in group:
            group['momentum'] = momentum
        elif 'betas' in group:
            group['betas'] = (momentum,) + tuple(group['betas'][1:])
