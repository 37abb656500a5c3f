"""The Lernomatic file formats: trainer checkpoints and history files.

Both are `torch.save` dicts. Checkpoints: `{'model': <model metadata>, 'optim': <optimizer
state>, 'trainer_params': {...}}`; history files: counters and numpy arrays. Keys, order and
types are the original's, so the original reads what we write and we read what it wrote.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import torch

from compat.errors import CheckpointError
from compat.model_import import check_model_params
from compat.serialization import atomic_save, safe_load

__all__ = ['CHECKPOINT_KEYS', 'HISTORY_KEYS', 'write_checkpoint', 'read_checkpoint', 'read_model_params',
           'write_history', 'read_history', 'optimizer_state_to']

CHECKPOINT_KEYS = ('model', 'optim', 'trainer_params')
HISTORY_COUNTERS = ('loss_iter', 'val_loss_iter', 'acc_iter', 'cur_epoch', 'iter_per_epoch')
HISTORY_ARRAYS = ('loss_history', 'val_loss_history', 'acc_history')
HISTORY_KEYS = HISTORY_COUNTERS + HISTORY_ARRAYS


def write_checkpoint(fname: str | os.PathLike, model_params: Mapping[str, Any], optim_state: Mapping[str, Any],
                     trainer_params: Mapping[str, Any], **extra: Any) -> None:
    """Write a trainer checkpoint atomically; `extra` keys follow the original three."""
    atomic_save({'model': dict(model_params), 'optim': optim_state, 'trainer_params': dict(trainer_params), **extra},
                fname)


def _kind_of(data: Any) -> str:
    """Name what a file holds when it is not a Lernomatic checkpoint, and what to do instead."""
    if isinstance(data, Mapping):
        if 'pytorch-lightning_version' in data or ('state_dict' in data and 'loops' in data):
            return ('a Lightning .ckpt: resume it with lightning.Trainer.fit(..., ckpt_path=...) '
                    'or convert it to a Lernomatic checkpoint')
        if data and all(isinstance(v, torch.Tensor) for v in data.values()):
            return 'a bare state dict: load it with LernomaticModel.set_net_state_dict'
        if set(HISTORY_KEYS) <= set(data):
            return 'a Lernomatic history file: load it with Trainer.load_history'
        return f'a dict with keys {sorted(map(str, data))[:8]}'
    return f'a {type(data).__name__}, not a dict'


def read_checkpoint(fname: str | os.PathLike, trusted: bool = False, required: tuple[str, ...] = CHECKPOINT_KEYS,
                    ) -> dict[str, Any]:
    """Read a trainer checkpoint safely and check that it has the `required` top-level keys."""
    data = safe_load(fname, trusted=trusted)
    if not isinstance(data, Mapping) or not all(key in data for key in required):
        missing = [k for k in required if not isinstance(data, Mapping) or k not in data]
        raise CheckpointError(f'{fname}: not a Lernomatic checkpoint (missing {", ".join(missing)}): '
                              f'the file holds {_kind_of(data)}')
    return dict(data)


def read_model_params(data: Mapping[str, Any], fname: str | os.PathLike, model_key: str = 'model') -> Mapping[str, Any]:
    """The model metadata stored under `model_key`, checked for every required key."""
    if not isinstance(data, Mapping) or model_key not in data:
        raise CheckpointError(f'{fname}: no model under key {model_key!r}: the file holds {_kind_of(data)}')
    return check_model_params(data[model_key], f'{fname} [{model_key!r}]')


def optimizer_state_to(optimizer: torch.optim.Optimizer, device: torch.device) -> None:
    """Move every tensor of an optimizer's state to `device` (a GPU checkpoint on a CPU machine)."""
    for state in optimizer.state.values():
        for key, value in state.items():
            # Adam's 'step' stays on the CPU unless the optimizer is capturable/fused.
            if isinstance(value, torch.Tensor) and not (key == 'step' and value.device.type == 'cpu'):
                state[key] = value.to(device)


def write_history(fname: str | os.PathLike, record: Mapping[str, Any]) -> None:
    """Write a history dict atomically (counters first, then arrays, as the original did)."""
    atomic_save(dict(record), fname)


def read_history(fname: str | os.PathLike, trusted: bool = False) -> dict[str, Any]:
    """Read a history file safely and check that every documented key is present."""
    data = safe_load(fname, trusted=trusted)
    if not isinstance(data, Mapping):
        raise CheckpointError(f'{fname}: not a Lernomatic history file: it holds {_kind_of(data)}')
    missing = [key for key in HISTORY_KEYS if key not in data]
    if missing:
        raise CheckpointError(f'{fname}: not a Lernomatic history file, missing key(s) {", ".join(missing)}: '
                              f'it holds {_kind_of(data)}')
    return dict(data)
