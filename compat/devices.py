"""Lernomatic's `device_id` (-1: the CPU, N: `cuda:N`), in the one place that maps it.

The Trainer's option check, its `device`, the Inferrer's `device` and the Lightning accelerator
and devices a run gets all come from here.
"""

from __future__ import annotations

from typing import Any

import torch

from compat.errors import ConfigError

__all__ = ['device_id_problem', 'torch_device', 'lightning_devices']


def device_id_problem(device_id: Any, cpu_below: int | None = -1) -> str | None:
    """Why `device_id` is not usable here, said after the option's name (None when it is usable).

    Args:
        device_id: the value given.
        cpu_below: ids below 0 mean the CPU; the Trainer accepts only -1 for it (`cpu_below=-1`), the
            Inferrer any negative number (`cpu_below=None`).
    """
    if isinstance(device_id, bool) or not isinstance(device_id, int):
        return f' must be an integer (-1: the CPU, N >= 0: cuda:N), got {device_id!r}'
    if cpu_below is not None and device_id < cpu_below:
        return f' must be -1 (CPU) or a GPU index >= 0, got {device_id!r}'
    count = torch.cuda.device_count()
    if device_id >= count:
        return (f'={device_id} but this machine has {count} CUDA GPU(s)'
                + (f': use 0..{count - 1}' if count else ': use device_id=-1 for the CPU'))
    return None


def torch_device(device_id: int) -> torch.device:
    """The torch device of a `device_id`; a bad one is a ConfigError naming it."""
    problem = device_id_problem(device_id, cpu_below=None)
    if problem:
        raise ConfigError(f'device_id{problem}')
    return torch.device('cpu') if device_id < 0 else torch.device(f'cuda:{device_id}')


def lightning_devices(accelerator: Any, devices: Any, device_id: int) -> tuple[Any, Any]:
    """Lightning's (accelerator, devices): the caller's where given, else from Lernomatic's `device_id`."""
    if accelerator is not None or devices is not None:
        return accelerator or 'auto', devices if devices is not None else 'auto'
    if device_id < 0:
        return 'cpu', 1
    return 'gpu', [device_id]
