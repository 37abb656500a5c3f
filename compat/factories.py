"""Loss and optimizer classes looked up by the names Lernomatic stores (`'CrossEntropyLoss'`, `'Adam'`)."""

from __future__ import annotations

from typing import Any

import torch

from compat.errors import ConfigError, close_names

__all__ = ['criterion_class', 'optimizer_class', 'build_criterion', 'build_optimizer', 'optimizer_momentum',
           'set_optimizer_momentum']


def criterion_class(loss_function: Any) -> type:
    """The `torch.nn` class named `loss_function`; a ConfigError lists close names otherwise."""
    found = getattr(torch.nn, loss_function, None) if isinstance(loss_function, str) else None
    if not isinstance(found, type) or not issubclass(found, torch.nn.Module):
        losses = [n for n in dir(torch.nn) if n.endswith('Loss')]
        raise ConfigError(f'loss_function={loss_function!r} is not a loss class in torch.nn.'
                          f'{close_names(str(loss_function), losses)}')
    return found


def optimizer_class(optim_function: Any) -> type:
    """The `torch.optim` class named `optim_function`; a ConfigError lists close names otherwise."""
    found = getattr(torch.optim, optim_function, None) if isinstance(optim_function, str) else None
    if not isinstance(found, type) or not issubclass(found, torch.optim.Optimizer):
        names = [n for n in dir(torch.optim) if isinstance(getattr(torch.optim, n), type)
                 and issubclass(getattr(torch.optim, n), torch.optim.Optimizer)]
        raise ConfigError(f'optim_function={optim_function!r} is not an optimizer in torch.optim.'
                          f'{close_names(str(optim_function), names)}')
    return found


def build_criterion(loss_function: str) -> torch.nn.Module:
    """An instance of the named `torch.nn` loss."""
    return criterion_class(loss_function)()


def build_optimizer(optim_function: str, params: Any, learning_rate: float,
                    weight_decay: float) -> torch.optim.Optimizer:
    """The named optimizer, given lr and weight_decay only, as the original built it."""
    return optimizer_class(optim_function)(params, lr=learning_rate, weight_decay=weight_decay)


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
