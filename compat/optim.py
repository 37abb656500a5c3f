"""Loss and optimizer classes looked up by the names Lernomatic stores (`'CrossEntropyLoss'`, `'Adam'`)."""

from __future__ import annotations

import functools
from typing import Any

import torch

from compat.errors import ConfigError, close_names
from compat.text import short_repr

__all__ = ['criterion_class', 'optimizer_class', 'build_criterion', 'build_optimizer']


@functools.cache
def _loss_classes() -> dict[str, type]:
    """The loss classes of `torch.nn` (those defined in `torch.nn.modules.loss`), by name."""
    return {name: value for name, value in vars(torch.nn).items()
            if isinstance(value, type) and issubclass(value, torch.nn.Module)
            and value.__module__ == 'torch.nn.modules.loss' and not name.startswith('_')}


@functools.cache
def _optimizer_classes() -> dict[str, type]:
    """The optimizer classes of `torch.optim` (the `Optimizer` base itself excluded), by name."""
    return {name: value for name, value in vars(torch.optim).items()
            if isinstance(value, type) and issubclass(value, torch.optim.Optimizer)
            and value is not torch.optim.Optimizer and not name.startswith('_')}


def criterion_class(loss_function: Any) -> type:
    """The `torch.nn` loss class named `loss_function` (not any attribute of torch.nn); ConfigError otherwise."""
    losses = _loss_classes()
    found = losses.get(loss_function) if isinstance(loss_function, str) else None
    if found is None:
        raise ConfigError(f'loss_function={short_repr(loss_function)} is not a loss class in torch.nn.'
                          f'{close_names(loss_function, losses)}')
    return found


def optimizer_class(optim_function: Any) -> type:
    """The `torch.optim` optimizer class named `optim_function`; a ConfigError lists close names otherwise."""
    optimizers = _optimizer_classes()
    found = optimizers.get(optim_function) if isinstance(optim_function, str) else None
    if found is None:
        raise ConfigError(f'optim_function={short_repr(optim_function)} is not an optimizer in torch.optim.'
                          f'{close_names(optim_function, optimizers)}')
    return found


def build_criterion(loss_function: str) -> torch.nn.Module:
    """An instance of the named `torch.nn` loss."""
    return criterion_class(loss_function)()


def build_optimizer(optim_function: str, params: Any, learning_rate: float,
                    weight_decay: float) -> torch.optim.Optimizer:
    """The named optimizer, given lr and weight_decay only, as the original built it."""
    return optimizer_class(optim_function)(params, lr=learning_rate, weight_decay=weight_decay)
