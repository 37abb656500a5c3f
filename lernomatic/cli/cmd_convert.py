"""`lernomatic convert IN OUT`: a Lernomatic `.pkl` checkpoint to a Lightning `.ckpt` of the adapter, or back.

The direction is taken from what IN holds. The file is loaded once and every field that OUT will
carry is checked before conversion, so a damaged or hostile file ends in a one-line
`CheckpointError`; OUT is built from the checked fields alone, never from the rest of the file.
"""

from __future__ import annotations

import argparse
import itertools
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from compat.codec.atomic import atomic_save
from compat.codec.checkpoint import check_trainer_params, read_model_params
from compat.codec.lightning_ckpt import lernomatic_from_lightning, lightning_from_lernomatic, unknown_keys
from compat.codec.model_import import check_plain_value, model_classes
from compat.codec.optimizer_state import checked_optimizer_state, state_owner
from compat.codec.resume import read_resume_point
from compat.codec.rng import RngStateError, check_rng_state
from compat.codec.safe_load import safe_load
from compat.codec.schema import (
    CHECKPOINT_KEYS,
    HISTORY_KEYS,
    MODEL_KEYS,
    OPTIONAL_MODEL_KEYS,
    TRAINER_PARAMS,
    is_lightning_checkpoint,
)
from compat.codec.trust import loading
from compat.errors import CheckpointError
from compat.optim import optimizer_class
from compat.text import short_repr
from lernomatic.models.common import LernomaticModel

__all__ = ['run']

log = logging.getLogger(__name__)


def _holds(data: Any) -> str:
    """What a file holds, in a few words (keys listed up to eight, each bounded)."""
    if not isinstance(data, Mapping):
        return f'a {type(data).__name__}'
    if set(HISTORY_KEYS) <= set(data):
        return 'a Lernomatic history file (use lernomatic plot or lernomatic tensorboard)'
    keys = [short_repr(key, 30) for key in itertools.islice(data, 8)]
    return f'a dict with keys {", ".join(keys)}{", ..." if len(data) > 8 else ""}'


def _checked_lernomatic(data: Mapping[str, Any], fname: Path) -> dict[str, Any]:
    """Everything a loader would check, short of building the model: fields, kinds, the classes it names.

    Returns:
        The checkpoint to write, made of the checked fields only: the model metadata's documented keys,
        the optimizer state as a loader would take it (checked_optimizer_state), the trainer params (a
        subclass's own ones as plain values), and rng_state / resume where the file has them.
    """
    meta = read_model_params(data, fname)
    params = check_trainer_params(data['trainer_params'], fname)
    for key in params.keys() - TRAINER_PARAMS.keys():  # a subclass's own ('beta1', ...): plain values only
        if not isinstance(key, str):
            raise CheckpointError(f"{fname}: ['trainer_params']: key {short_repr(key, 40)} is a "
                                  f'{type(key).__name__}: parameter names are strings')
        check_plain_value(params[key], f"['trainer_params'][{short_repr(key, 40)}]")
    model_classes(meta, LernomaticModel)
    optimizer = optimizer_class(params['optim_function']) if 'optim_function' in params else None
    owner = state_owner(optimizer, data['optim'])
    if owner is not None:  # a zoo trainer's own optimizer (SGD while optim_function says Adam): kept as it is
        optimizer = optimizer_class(owner)
    checked = {'model': {key: meta[key] for key in MODEL_KEYS + OPTIONAL_MODEL_KEYS if key in meta},
               'optim': checked_optimizer_state(data['optim'], optimizer, None, fname),
               'trainer_params': params}
    return {**checked, **_checked_run_position(data, params, fname)}


def _checked_run_position(data: Mapping[str, Any], params: Mapping[str, Any], fname: Path) -> dict[str, Any]:
    """'rng_state' and 'resume' as stored, each present only if the file has it and it passes a loader's checks."""
    kept: dict[str, Any] = {}
    rng = None
    if data.get('rng_state') is not None:
        try:
            rng = check_rng_state(data['rng_state'])
        except RngStateError as error:
            raise CheckpointError(f"{fname}: ['rng_state']: {error}") from error
        kept['rng_state'] = data['rng_state']
    if data.get('resume') is not None:
        try:
            point = read_resume_point(data['resume'], rng)
        except ValueError as error:
            raise CheckpointError(f"{fname}: ['resume']: {error}") from error
        if point.epoch > params.get('num_epochs', point.epoch):
            raise CheckpointError(f"{fname}: ['resume']['epoch']: {point.epoch} is past the run's "
                                  f"{params['num_epochs']} epochs")
        kept['resume'] = data['resume']
    return kept


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
        dropped = unknown_keys(data) if isinstance(data, Mapping) else []
        if is_lightning_checkpoint(data):
            plain = lernomatic_from_lightning(data, _trainer_defaults(), args.input)
            converted = _checked_lernomatic(plain, args.input)
            kind = 'Lernomatic checkpoint'
        elif isinstance(data, Mapping) and all(key in data for key in CHECKPOINT_KEYS):
            converted = lightning_from_lernomatic(_checked_lernomatic(data, args.input), args.input)
            kind = 'Lightning checkpoint'
        else:
            raise CheckpointError(f'{args.input}: neither a Lernomatic trainer checkpoint (keys model, optim, '
                                  f'trainer_params) nor a Lightning .ckpt: it holds {_holds(data)}')
    except CheckpointError:
        raise
    except (TypeError, ValueError, KeyError, AttributeError, IndexError) as error:
        # a value of an unexpected type deeper than the checks above look
        raise CheckpointError(f'{args.input}: cannot be converted ({type(error).__name__}: {error})') from error
    if dropped:
        log.warning('%s: not converted, not a field of either format: %s', args.input,
                    ', '.join(short_repr(key, 30) for key in dropped[:8]) + (', ...' if len(dropped) > 8 else ''))
    atomic_save(converted, args.output)
    print(f'wrote {kind} {args.output}')
    return 0
