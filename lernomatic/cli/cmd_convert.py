"""`lernomatic convert IN OUT`: a Lernomatic `.pkl` checkpoint to a Lightning `.ckpt` of the adapter, or back.

The direction is taken from what IN holds. The file is loaded once and its structure checked
before conversion, so a damaged or hostile file ends in a one-line `CheckpointError`.
"""

from __future__ import annotations

import argparse
import itertools
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from compat.checkpoint import CHECKPOINT_KEYS, HISTORY_KEYS
from compat.errors import CheckpointError
from compat.lightning_ckpt import is_lightning_checkpoint, lernomatic_from_lightning, lightning_from_lernomatic
from compat.model_import import check_model_params
from compat.serialization import atomic_save, safe_load
from lernomatic.cli.text import short_repr

__all__ = ['run']


def _holds(data: Any) -> str:
    """What a file holds, in a few words (keys listed up to eight, each bounded)."""
    if not isinstance(data, Mapping):
        return f'a {type(data).__name__}'
    if set(HISTORY_KEYS) <= set(data):
        return 'a Lernomatic history file (use lernomatic plot or lernomatic tensorboard)'
    keys = [short_repr(key, 30) for key in itertools.islice(data, 8)]
    return f'a dict with keys {", ".join(keys)}{", ..." if len(data) > 8 else ""}'


def _mapping(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise CheckpointError(f'{where} is a {type(value).__name__}: expected a dict')
    return value


def _tensor_dict(value: Any, where: str) -> None:
    for key, tensor in _mapping(value, where).items():
        if not isinstance(key, str) or not isinstance(tensor, torch.Tensor):
            raise CheckpointError(f'{where} maps {short_repr(key)} to a {type(tensor).__name__}: '
                                  'expected names and tensors')


def _whole_number(value: Any, where: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise CheckpointError(f'{where} is {short_repr(value)}: expected a whole number >= 0')


def _check_lernomatic(data: Mapping[str, Any], fname: Path) -> None:
    """The parts `lightning_from_lernomatic` relies on: model metadata, weights, trainer params, optimizer."""
    model = check_model_params(data['model'], f"{fname} ['model']")
    _tensor_dict(model['model_state_dict'], f"{fname}: ['model']['model_state_dict']")
    params = _mapping(data['trainer_params'], f"{fname}: ['trainer_params']")
    _whole_number(params.get('cur_epoch', 0), f"{fname}: trainer_params['cur_epoch']")
    optim = _mapping(data['optim'], f"{fname}: ['optim']")
    for state in _mapping(optim.get('state', {}), f"{fname}: ['optim']['state']").values():
        _mapping(state, f"{fname}: an entry of ['optim']['state']")


def _check_lightning(data: Mapping[str, Any], fname: Path) -> None:
    """The parts `lernomatic_from_lightning` relies on: weights, metadata, one optimizer, trainer params."""
    _tensor_dict(data['state_dict'], f"{fname}: ['state_dict']")
    _mapping(data.get('lernomatic_trainer_params', {}), f"{fname}: ['lernomatic_trainer_params']")
    if not isinstance(data.get('optimizer_states', []), (list, tuple)):
        raise CheckpointError(f"{fname}: ['optimizer_states'] is a {type(data['optimizer_states']).__name__}: "
                              'expected a list')


def _trainer_defaults() -> dict[str, Any]:
    """The trainer params a run started in plain Lightning did not record: the documented defaults."""
    from lernomatic.train.options import TRAINER_OPTIONS, TRAINER_PARAM_KEYS

    defaults = {key: TRAINER_OPTIONS[key].default if key in TRAINER_OPTIONS else 0 for key in TRAINER_PARAM_KEYS}
    defaults['val_batch_size'] = defaults['batch_size']
    return defaults


def run(args: argparse.Namespace) -> int:
    """Load IN once, check its structure, convert it and write OUT atomically."""
    data = safe_load(args.input, trusted=args.trusted)
    try:
        if is_lightning_checkpoint(data):
            _check_lightning(data, args.input)
            converted, kind = lernomatic_from_lightning(data, _trainer_defaults(), args.input), 'Lernomatic checkpoint'
        elif isinstance(data, Mapping) and all(key in data for key in CHECKPOINT_KEYS):
            _check_lernomatic(data, args.input)
            converted, kind = lightning_from_lernomatic(data, args.input), 'Lightning checkpoint'
        else:
            raise CheckpointError(f'{args.input}: neither a Lernomatic trainer checkpoint (keys model, optim, '
                                  f'trainer_params) nor a Lightning .ckpt: it holds {_holds(data)}')
    except CheckpointError:
        raise
    except (TypeError, ValueError, KeyError, AttributeError, IndexError) as error:
        # a value of an unexpected type deeper than the checks above look
        raise CheckpointError(f'{args.input}: cannot be converted ({type(error).__name__}: {error})') from error
    atomic_save(converted, args.output)
    print(f'wrote {kind} {args.output}')
    return 0
