"""Reading and writing the Lernomatic file formats (`compat.codec.schema`), every field checked before use.

A file is input from a stranger: the readers check each field's type, range and shape and raise
`CheckpointError` naming the file and the field, so a loader can validate a whole file before it
changes anything. Keys, order and types written are the original's, so the original reads what we
write and we read what it wrote.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import torch

from compat.codec.atomic import atomic_save
from compat.codec.model_import import check_model_params
from compat.codec.safe_load import safe_load
from compat.codec.schema import (
    CHECKPOINT_KEYS,
    HISTORY_KEYS,
    MAX_HISTORY_LENGTH,
    TRAINER_PARAMS,
    is_lightning_checkpoint,
)
from compat.codec.trust import current_policy
from compat.errors import CheckpointError
from compat.text import short_repr

__all__ = ['write_checkpoint', 'read_checkpoint', 'read_model_params', 'check_trainer_params',
           'optimizer_state_to', 'portable_optimizer_state', 'describe_contents',
           'field_error']

def field_error(fname: Any, field: str, reason: str) -> CheckpointError:
    """The one shape of a refusal: the file, the field, what is wrong."""
    return CheckpointError(f'{fname}: {field}: {reason}')


def write_checkpoint(fname: str | os.PathLike, model_params: Mapping[str, Any], optim_state: Mapping[str, Any],
                     trainer_params: Mapping[str, Any], **extra: Any) -> None:
    """Write a trainer checkpoint atomically; `extra` keys (rng_state, resume) follow the original three."""
    atomic_save({'model': dict(model_params), 'optim': optim_state, 'trainer_params': dict(trainer_params), **extra},
                fname)


def describe_contents(data: Any) -> str:
    """Name what a file holds when it is not what was expected, and what to do instead."""
    if isinstance(data, Mapping):
        if is_lightning_checkpoint(data):
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
                              f'the file holds {describe_contents(data)}')
    return dict(data)


def read_model_params(data: Mapping[str, Any], fname: str | os.PathLike, model_key: str = 'model') -> dict[str, Any]:
    """The model metadata stored under `model_key`, every field checked."""
    if not isinstance(data, Mapping) or model_key not in data:
        raise CheckpointError(f'{fname}: no model under key {model_key!r}: the file holds {describe_contents(data)}')
    return check_model_params(data[model_key], f'[{model_key!r}]', current_policy())


def check_trainer_params(params: Any, fname: Any, field: str = "['trainer_params']", complete: bool = True,
                         ) -> dict[str, Any]:
    """'trainer_params' with every documented key present and of the documented type and range.

    Keys a subclass added ('beta1', ...) are left for its own `set_trainer_params` to read.

    Args:
        params: the stored trainer params.
        fname: the file, for error messages.
        field: where they sit in the file.
        complete: every documented key must be there (False: check those present, as a `.ckpt` carries).
    """
    if not isinstance(params, Mapping):
        raise field_error(fname, field, f'expected a dict, got {type(params).__name__}')
    missing = [key for key in TRAINER_PARAMS if key not in params]
    if missing and complete:
        raise field_error(fname, field, f'missing key(s) {", ".join(missing)}')
    for key, check in TRAINER_PARAMS.items():
        reason = check(params[key]) if key in params else None
        if reason:
            raise field_error(fname, f'{field}[{key!r}]', f'{short_repr(params[key])} {reason}')
    # iter_per_epoch is len(train_loader) / num_epochs (the original's sum), so their product is one history's length
    if 'num_epochs' in params and 'iter_per_epoch' in params \
            and params['num_epochs'] * params['iter_per_epoch'] > MAX_HISTORY_LENGTH:
        raise field_error(fname, f"{field}['iter_per_epoch']", f"{params['iter_per_epoch']:,} times num_epochs "
                          f"{params['num_epochs']:,} is more than {MAX_HISTORY_LENGTH:,} iterations: no run wrote it")
    return dict(params)


def portable_optimizer_state(optimizer: torch.optim.Optimizer, capturable_before: list[bool] | None = None,
                             ) -> dict[str, Any]:
    """`optimizer.state_dict()` as it would be outside a captured run: loadable on any machine.

    Args:
        optimizer: the optimizer.
        capturable_before: its groups' own `capturable` settings while a captured run has them on
            (`RunState.capturable_before`), else None.
    """
    state = optimizer.state_dict()
    before = capturable_before
    if before is None:
        return state
    for group, was in zip(state['param_groups'], before, strict=True):
        group['capturable'] = was
    if not any(before):
        state['state'] = {key: {**value, 'step': value['step'].cpu()} if isinstance(value.get('step'), torch.Tensor)
                          else value for key, value in state['state'].items()}
    return state


def optimizer_state_to(optimizer: torch.optim.Optimizer, device: torch.device) -> None:
    """Move every tensor of an optimizer's state to `device` (a GPU checkpoint on a CPU machine)."""
    for state in optimizer.state.values():
        for key, value in state.items():
            # Adam's 'step' stays on the CPU unless the optimizer is capturable/fused.
            if isinstance(value, torch.Tensor) and not (key == 'step' and value.device.type == 'cpu'):
                state[key] = value.to(device)
