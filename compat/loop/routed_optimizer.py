"""A user's optimizer whose `step()` goes through Lightning: precision plugin, hooks, DDP averaging.

Like Lightning's own `LightningOptimizer`, the wrapper is an instance of the optimizer's class
(so `isinstance` checks in old code hold) that shares its state, and only `step` is different.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

__all__ = ['RoutedOptimizer', 'unwrap_optimizer']


class RoutedOptimizer:
    """Wraps `optimizer`; `step(closure)` calls `on_step(optimizer, closure, kwargs)` instead."""

    def __init__(self, optimizer: torch.optim.Optimizer,
                 on_step: Callable[[torch.optim.Optimizer, Any, dict], Any]) -> None:
        self.__dict__ = {k: v for k, v in optimizer.__dict__.items() if k not in ('step', '__del__')}
        self.__class__ = type(f'Routed{type(optimizer).__name__}', (RoutedOptimizer, type(optimizer)), {})
        self._routed_from = optimizer
        self._on_step = on_step

    @property
    def optimizer(self) -> torch.optim.Optimizer:
        """The user's own optimizer this one routes (as Lightning's `LightningOptimizer.optimizer`)."""
        return self._routed_from

    def step(self, closure: Any = None, **kwargs: Any) -> Any:
        return self._on_step(self._routed_from, closure, kwargs)


def unwrap_optimizer(optimizer: Any) -> Any:
    """The user's own optimizer behind a RoutedOptimizer (or the object itself)."""
    return optimizer.optimizer if isinstance(optimizer, RoutedOptimizer) else optimizer
