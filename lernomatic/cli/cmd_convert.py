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

from compat.codec.atomic import atomic_save
from compat.codec.checkpoint import check_optimizer_state, check_trainer_params, read_model_params
from compat.codec.lightning_ckpt import lernomatic_from_lightning, lightning_from_lernomatic
from compat.codec.model_import import model_classes
from compat.codec.safe_load import safe_load
from compat.codec.schema import CHECKPOINT_KEYS, HISTORY_KEYS, is_lightning_checkpoint
from compat.codec.trust import loading
from compat.errors import CheckpointError
from lernomatic.cli.text import short_repr
from lernomatic.models.common import LernomaticModel

__all__ = ['run']


def _holds(data: Any) -> str:
    """What a file holds, in a few words (keys listed up to eight, each bounded)."""
    if not isinstance(data, Mapping):
        return f'a {type(data).__name__}'
    if set(HISTORY_KEYS) <= set(data):
        return 'a Lernomatic history file (use lernomatic plot or lernomatic tensorboard)'
    keys = [short_repr(key, 30) for key in itertools.islice(data, 8)]
    return f'a dict with keys {", ".join(keys)}{", ..." if len(data) > 8 else ""}'


def _check_lernomatic(data: Mapping[str, Any], fname: Path) -> None:
    """Everything a loader would check, short of building the model: fields, kinds, the classes it names."""
    meta = read_model_params(data, fname)
    check_trainer_params(data['trainer_params'], fname)
    check_optimizer_state(data['optim'], None, fname)
    model_classes(meta, LernomaticModel)


def _check_lightning(data: Mapping[str, Any], fname: Path) -> None:
    """The same for an adapter `.ckpt`: its weights, the Lernomatic metadata and params it carries, one optimizer."""
    state = data['state_dict']
    if not isinstance(state, Mapping) or not all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                                 for k, v in state.items()):
        raise CheckpointError(f"{fname}: ['state_dict']: expected names and tensors")
    check_trainer_params(data.get('lernomatic_trainer_params', {}), fname, "['lernomatic_trainer_params']",
                         complete=False)
    optimizers = data.get('optimizer_states', [])
    if not isinstance(optimizers, (list, tuple)):
        raise CheckpointError(f"{fname}: ['optimizer_states']: expected a list, got {type(optimizers).__name__}")
    for index, optimizer in enumerate(optimizers):
        check_optimizer_state(optimizer, None, fname, f"['optimizer_states'][{index}]")
    if isinstance(data.get('lernomatic_model'), Mapping):
        model_classes({'model_state_dict': {}, **data['lernomatic_model']}, LernomaticModel, "['lernomatic_model']")


def _trainer_defaults() -> dict[str, Any]:
    """The trainer params a run started in plain Lightning did not record: the documented defaults."""
    from lernomatic.train.options import TRAINER_OPTIONS, TRAINER_PARAM_KEYS

    defaults = {key: TRAINER_OPTIONS[key].default if key in TRAINER_OPTIONS else 0 for key in TRAINER_PARAM_KEYS}
    defaults['val_batch_size'] = defaults['batch_size']
    return defaults


def run(args: argparse.Namespace) -> int:
    """Load IN once, check it as a loader would (the classes it names included), convert it, write OUT atomically.

    The model's classes are resolved under the trust policy (docs/reliability.md), so a file naming
    modules that are not trusted is refused here, not carried along: `--trusted-modules mynets` or
    LERNOMATIC_TRUSTED_MODULES trusts your own model package.
    """
    with loading(args.input, args.trusted, args.trusted_modules):
        return _convert(args)


def _convert(args: argparse.Namespace) -> int:
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
