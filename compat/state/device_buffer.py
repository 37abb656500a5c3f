"""History values produced on the device, copied to the host without stalling the step.

A training step's loss is a device tensor; reading it on the host every step (or even every
`print_every` steps, with a blocking `.item()`) stalls the GPU. `push_history` keeps it (in the
trainer's `RunState`); `stage_history` starts one non-blocking copy of everything kept so far into
pinned host memory and records an event; `poll_history` writes the copies that have arrived into
the numpy array without waiting; a `BufferedHistory` attribute waits for the rest when the array
is read, so user code still sees a plain, current `np.ndarray`. On the CPU every step of this is
immediate.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

__all__ = ['BufferedHistory', 'push_history', 'stage_history', 'poll_history', 'flush_histories']


class _Copy:
    """One staged copy: the indices it fills, its host buffer, the event that says it has arrived."""

    __slots__ = ('indices', 'host', 'event')

    def __init__(self, indices: list[int], values: torch.Tensor) -> None:
        self.indices = np.asarray(indices)
        if values.is_cuda:
            self.host = torch.empty(values.shape, dtype=values.dtype, pin_memory=True)
            self.host.copy_(values, non_blocking=True)
            self.event: torch.cuda.Event | None = torch.cuda.Event()
            self.event.record()
        else:
            self.host, self.event = values, None

    def arrived(self) -> bool:
        return self.event is None or self.event.query()

    def write_into(self, array: np.ndarray) -> None:
        if self.event is not None:
            self.event.synchronize()  # a no-op once arrived
        array[self.indices] = self.host.to(torch.float64).numpy()


class _Buffer:
    """The device values of one history not yet in its array: kept (pending), or being copied (in flight)."""

    __slots__ = ('indices', 'values', 'in_flight', 'written')

    def __init__(self) -> None:
        self.indices: list[int] = []
        self.values: list[torch.Tensor] = []
        self.in_flight: list[_Copy] = []
        self.written = 0  # every index below this one is in the array

    def stage(self) -> None:
        if self.values:
            self.in_flight.append(_Copy(self.indices, torch.stack(self.values).detach()))
            self.indices, self.values = [], []

    def poll(self, array: np.ndarray, wait: bool = False) -> None:
        while self.in_flight and (wait or self.in_flight[0].arrived()):
            copy = self.in_flight.pop(0)
            copy.write_into(array)
            self.written = max(self.written, int(copy.indices.max()) + 1)

    def drain(self, array: np.ndarray) -> None:
        self.stage()
        self.poll(array, wait=True)


class BufferedHistory:
    """Descriptor for a history attribute: reading it first writes every buffered device value."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, obj: Any, owner: type | None = None) -> Any:
        if obj is None:
            return self
        array = obj.__dict__.get(self.name)
        buffer = obj._run_state.pending_history.get(self.name)
        if buffer is not None and array is not None and (buffer.values or buffer.in_flight):
            buffer.drain(array)
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
    buffer = obj._run_state.pending_history.setdefault(name, _Buffer())
    buffer.indices.append(index)
    buffer.values.append(value.detach())


def stage_history(obj: Any, name: str) -> None:
    """Start copying the values kept for `obj.<name>` to the host, without waiting for them."""
    buffer = obj._run_state.pending_history.get(name)
    if buffer is not None:
        buffer.stage()


def poll_history(obj: Any, name: str) -> int:
    """Write the copies of `obj.<name>` that have arrived, without waiting; the index below which all are in."""
    buffer = obj._run_state.pending_history.get(name)
    array = obj.__dict__.get(name)
    if buffer is None or array is None:
        return len(array) if array is not None else 0
    buffer.poll(array)
    return len(array) if not (buffer.values or buffer.in_flight) else buffer.written


def flush_histories(obj: Any) -> None:
    """Write every buffered device value into its array now, waiting for the copies (once an epoch)."""
    for name, buffer in obj._run_state.pending_history.items():
        array = obj.__dict__.get(name)
        if array is not None:
            buffer.drain(array)
