"""Lernomatic `.pkl` checkpoints <-> Lightning `.ckpt` files of the adapter (`compat.adapter.LernomaticModule`).

A `.ckpt` made here resumes with a plain `lightning.Trainer(...).fit(LernomaticModule(model), ckpt_path=...)`:
the weights go under the adapter's `net.` prefix, the optimizer state into `optimizer_states`, and
Lernomatic's `cur_epoch` into Lightning's loop progress. The Lernomatic metadata and trainer params
ride along under `lernomatic_model` / `lernomatic_trainer_params`, so a round trip loses nothing.
Only the fields of the formats are carried (`compat.codec.schema`): a key the file adds beyond them
is dropped, never copied into the other file where it could stand for something it is not.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Mapping
from importlib.metadata import version
from typing import Any

import torch

from compat.codec.schema import (
    CHECKPOINT_KEYS,
    LIGHTNING_CKPT_KEYS,
    LIGHTNING_EXTRA_KEYS,
    MODEL_KEYS,
    OPTIONAL_CHECKPOINT_KEYS,
    OPTIONAL_MODEL_KEYS,
    is_lightning_checkpoint,
)
from compat.errors import CheckpointError

__all__ = ['is_lightning_checkpoint', 'lernomatic_from_lightning', 'lightning_from_lernomatic', 'NET_PREFIX',
           'unknown_keys']

NET_PREFIX = 'net.'


def _model_fields(model: Mapping[str, Any]) -> dict[str, Any]:
    """The model metadata fields of the format, in its order; anything else a file put there is dropped."""
    return {key: model[key] for key in MODEL_KEYS + OPTIONAL_MODEL_KEYS if key in model}


def _run_fields(data: Mapping[str, Any]) -> dict[str, Any]:
    """The optional checkpoint keys (rng_state, resume) that `data` holds; the converter checks them."""
    return {key: data[key] for key in OPTIONAL_CHECKPOINT_KEYS if key in data}


def unknown_keys(data: Mapping[str, Any]) -> list[str]:
    """Top-level keys of a trainer checkpoint or a Lightning .ckpt that neither format has: not converted."""
    known = set(CHECKPOINT_KEYS + OPTIONAL_CHECKPOINT_KEYS + LIGHTNING_CKPT_KEYS + LIGHTNING_EXTRA_KEYS)
    return [key for key in data if key not in known]


def lightning_from_lernomatic(data: Mapping[str, Any], fname: Any = 'checkpoint') -> dict[str, Any]:
    """A Lightning `.ckpt` dict for the adapter, from a Lernomatic trainer checkpoint dict."""
    from compat.lightning_internals import fit_loop_state  # imports Lightning: only when converting

    missing = [key for key in CHECKPOINT_KEYS if key not in data]
    if missing:
        raise CheckpointError(f'{fname}: not a Lernomatic trainer checkpoint (missing {", ".join(missing)})')
    model = _model_fields(data['model'])
    params = dict(data['trainer_params'])
    state = OrderedDict((NET_PREFIX + key, value) for key, value in model.pop('model_state_dict').items())
    cur_epoch = int(params.get('cur_epoch', 0))
    optim_state = data['optim']
    steps = _optimizer_steps(optim_state)
    return {
        'epoch': max(cur_epoch - 1, 0), 'global_step': steps, 'pytorch-lightning_version': version('lightning'),
        'state_dict': state, 'loops': fit_loop_state(cur_epoch, steps), 'callbacks': {},
        'optimizer_states': [optim_state], 'lr_schedulers': [],
        'lernomatic_model': model, 'lernomatic_trainer_params': params, **_run_fields(data),
    }


def _optimizer_steps(optim_state: Any) -> int:
    """The optimizer's step count (Lightning's global_step): 0 where the state keeps none a count can be read from."""
    states = optim_state.get('state') if isinstance(optim_state, Mapping) else None
    for state in (states.values() if isinstance(states, Mapping) else ()):
        step = state.get('step') if isinstance(state, Mapping) else None
        try:
            count = float(step)  # type: ignore[arg-type]  # a tensor or a number; anything else is no count
        except (TypeError, ValueError, RuntimeError):
            continue
        if math.isfinite(count) and 0 <= count < 2 ** 62:
            return int(count)
    return 0


def lernomatic_from_lightning(data: Mapping[str, Any], defaults: Mapping[str, Any], fname: Any = 'checkpoint',
                              ) -> dict[str, Any]:
    """A Lernomatic trainer checkpoint dict from a Lightning `.ckpt` of the adapter.

    `defaults` fills trainer params the `.ckpt` does not carry (a run started in plain Lightning).
    """
    if not is_lightning_checkpoint(data):
        raise CheckpointError(f'{fname}: not a Lightning checkpoint (no state_dict / pytorch-lightning_version)')
    state_dict = data['state_dict']
    if not isinstance(state_dict, Mapping) or not all(isinstance(key, str) and isinstance(value, torch.Tensor)
                                                      for key, value in state_dict.items()):
        raise CheckpointError(f"{fname}: ['state_dict']: expected parameter names and tensors")
    meta = data.get('lernomatic_model')
    if not isinstance(meta, Mapping):
        raise CheckpointError(f"{fname}: has no 'lernomatic_model' metadata: it was not written by "
                              'compat.adapter.LernomaticModule, so the model to rebuild is unknown')
    weights = OrderedDict((key[len(NET_PREFIX):], value) for key, value in state_dict.items()
                          if key.startswith(NET_PREFIX))
    if not weights:
        raise CheckpointError(f"{fname}: its state_dict has no '{NET_PREFIX}*' tensors")
    optimizers = data.get('optimizer_states') or []
    if not isinstance(optimizers, (list, tuple)):
        raise CheckpointError(f"{fname}: ['optimizer_states']: expected a list, got {type(optimizers).__name__}")
    if len(optimizers) != 1:
        raise CheckpointError(f'{fname}: expected one optimizer state, found {len(optimizers)}')
    stored_params = data.get('lernomatic_trainer_params') or {}
    if not isinstance(stored_params, Mapping):
        raise CheckpointError(f"{fname}: ['lernomatic_trainer_params']: expected a dict, "
                              f'got {type(stored_params).__name__}')
    params = dict(defaults)
    params.update(stored_params)
    if 'lernomatic_trainer_params' not in data or 'cur_epoch' not in data['lernomatic_trainer_params']:
        from compat.lightning_internals import finished_epochs

        params['cur_epoch'] = finished_epochs(data)
    model = _model_fields({**meta, 'model_state_dict': weights})
    return {'model': model, 'optim': optimizers[0], 'trainer_params': params, **_run_fields(data)}
