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

from compat.codec.atomic import atomic_save
from compat.codec.checkpoint import check_trainer_params, read_model_params
from compat.codec.lightning_ckpt import lernomatic_from_lightning, lightning_from_lernomatic
from compat.codec.model_import import model_classes
from compat.codec.optimizer_state import checked_optimizer_state
from compat.codec.safe_load import safe_load
from compat.codec.schema import CHECKPOINT_KEYS, HISTORY_KEYS, is_lightning_checkpoint
from compat.codec.trust import loading
from compat.errors import CheckpointError
from compat.optim import optimizer_class
from compat.text import short_repr
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


def _checked_lernomatic(data: Mapping[str, Any], fname: Path) -> dict[str, Any]:
    """Everything a loader would check, short of building the model: fields, kinds, the classes it names.

    Returns the checkpoint to write: its optimizer state as a loader would take it (checked_optimizer_state).
    """
    meta = read_model_params(data, fname)
    params = check_trainer_params(data['trainer_params'], fname)
    model_classes(meta, LernomaticModel)
    optimizer = optimizer_class(params['optim_function']) if 'optim_function' in params else None
    return {**data, 'optim': checked_optimizer_state(data['optim'], optimizer, None, fname)}


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
    atomic_save(converted, args.output)
    print(f'wrote {kind} {args.output}')
    return 0
