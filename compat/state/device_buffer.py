"""History values produced on the device, kept there until the array is read.

A training step's loss is a device tensor; copying it to the host every step would stall the GPU.
`push_history` keeps it (in the trainer's `RunState`), and a `BufferedHistory` attribute writes
every kept value into its numpy array in one transfer when the array is read, so user code still
sees a plain, current `np.ndarray`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

__all__ = ['BufferedHistory', 'push_history', 'flush_histories']


class _Pending:
    """Device tensors waiting to be written into one history array."""

    __slots__ = ('indices', 'values')

    def __init__(self) -> None:
        self.indices: list[int] = []
        self.values: list[torch.Tensor] = []

    def drain_into(self, array: np.ndarray) -> None:
        host = torch.stack(self.values).detach().to('cpu', torch.float64).numpy()
        array[np.asarray(self.indices)] = host
        self.indices.clear()
        self.values.clear()


class BufferedHistory:
    """Descriptor for a history attribute: reading it first writes any buffered device values."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, obj: Any, owner: type | None = None) -> Any:
        if obj is None:
            return self
        array = obj.__dict__.get(self.name)
        pending = obj._run_state.pending_history.get(self.name)
        if pending is not None and pending.values and array is not None:
            pending.drain_into(array)
        return array

    def __set__(self, obj: Any, value: Any) -> None:
        obj._run_state.pending_history.pop(self.name, None)
        obj.__dict__[self.name] = value


def push_history(obj: Any, name: str, index: int, value: torch.Tensor) -> None:
    """Record `value` (a 0-d tensor, left on its device) as `obj.<name>[index]`."""
    array = obj.__dict__.get(name)
    if array is None:
        raise ValueError(f'{type(obj).__name__}.{name} is None: there is no loader for it')
    if index >= len(array):
        raise IndexError(f'{type(obj).__name__}.{name} holds {len(array)} values and index {index} '
                         'is past its end: did the data loader change length? call set_num_epochs '
                         'or _init_history after changing datasets')
    pending = obj._run_state.pending_history.setdefault(name, _Pending())
    pending.indices.append(index)
    pending.values.append(value.detach())


def flush_histories(obj: Any) -> None:
    """Copy every buffered device value into its array now (once an epoch, so buffers stay small)."""
    for name, pending in obj._run_state.pending_history.items():
        array = obj.__dict__.get(name)
        if pending.values and array is not None:
            pending.drain_into(array)
