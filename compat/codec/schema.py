"""The Lernomatic file formats, written down once: what every key holds and how it is checked.

The writer (`Trainer.save_checkpoint`, `save_history`), the readers (`compat.codec.checkpoint`), the CLI
and the `.pkl` <-> `.ckpt` converter all read these literals, so a new field is added here and
nowhere else. Both formats are `torch.save` dicts of plain values and tensors; the original
Lernomatic wrote the first three checkpoint keys and the history keys exactly so.

Trainer checkpoint:

    {'model':          MODEL_METADATA                      # LernomaticModel.get_params()
     'optim':          optimizer.state_dict()
     'trainer_params': TRAINER_PARAMS                      # subclasses add keys ('beta1', ...)
     'rng_state':      compat.codec.rng  (ours, optional)        # generator states, for an exact resume
     'resume':         compat.codec.resume (ours, optional)}     # where in the run it was written

History file: HISTORY_COUNTERS then HISTORY_ARRAYS (then a subclass's own `*_history` arrays and
their `*_iter` counters).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from compat.codec.validators import (
    Check,
    flag,
    int_at_least,
    int_in,
    loss_name,
    non_negative_int,
    non_negative_number,
    number,
    optimizer_name,
    positive_int,
)
from compat.state.histories import HISTORY_ARRAYS, HISTORY_COUNTERS

__all__ = ['CHECKPOINT_KEYS', 'OPTIONAL_CHECKPOINT_KEYS', 'MODEL_KEYS', 'OPTIONAL_MODEL_KEYS', 'TRAINER_PARAMS',
           'TRAINER_PARAM_KEYS', 'HISTORY_COUNTERS', 'HISTORY_ARRAYS', 'HISTORY_KEYS', 'LIGHTNING_CKPT_MARKERS',
           'LIGHTNING_CKPT_KEYS', 'LIGHTNING_EXTRA_KEYS', 'is_lightning_checkpoint', 'MAX_EPOCHS',
           'MAX_HISTORY_LENGTH']

# ---- trainer checkpoint
CHECKPOINT_KEYS = ('model', 'optim', 'trainer_params')      # required, in the original's order
OPTIONAL_CHECKPOINT_KEYS = ('rng_state', 'resume')          # ours; the original's readers never look

# the model metadata dict, `LernomaticModel.get_params()`
MODEL_KEYS = ('model_state_dict', 'model_name', 'model_import_path', 'module_name', 'module_import_path')
OPTIONAL_MODEL_KEYS = ('model_args',)                       # only when the model has get_model_args()

# ---- sizes a file may choose (docs/formats.md, "Bounds"). Far beyond any run the original wrote (its
# fixture: 3 epochs, 30 values), small enough that no file can make a load or the next save take gigabytes.
MAX_EPOCHS = 1_000_000               # num_epochs, cur_epoch
MAX_HISTORY_LENGTH = 2 ** 24         # values in one *_history array (128 MiB of float64), and every *_iter counter

# 'trainer_params': key -> check of its value, in the original's order
TRAINER_PARAMS: dict[str, Check] = {
    'num_epochs': int_in(1, MAX_EPOCHS),
    'learning_rate': non_negative_number,
    'momentum': number,
    'weight_decay': non_negative_number,
    'loss_function': loss_name,
    'optim_function': optimizer_name,
    'cur_epoch': int_in(0, MAX_EPOCHS),
    'iter_per_epoch': int_in(0, MAX_HISTORY_LENGTH),
    'save_every': int_at_least(-1),
    'print_every': positive_int,
    'batch_size': positive_int,
    'val_batch_size': non_negative_int,
    'shuffle': flag,
}
TRAINER_PARAM_KEYS = tuple(TRAINER_PARAMS)

# ---- Lightning .ckpt of compat.adapter.LernomaticModule (compat.codec.lightning_ckpt converts)
LIGHTNING_CKPT_MARKERS = ('state_dict', 'pytorch-lightning_version')   # what makes a dict a Lightning .ckpt
LIGHTNING_CKPT_KEYS = ('epoch', 'global_step', 'pytorch-lightning_version', 'state_dict', 'loops', 'callbacks',
                       'optimizer_states', 'lr_schedulers', 'hparams_name', 'hyper_parameters')
LIGHTNING_EXTRA_KEYS = ('lernomatic_model', 'lernomatic_trainer_params')  # what the adapter adds: the metadata


def is_lightning_checkpoint(data: Any) -> bool:
    """Whether a loaded file is a Lightning `.ckpt` (its markers), whatever else it holds."""
    return isinstance(data, Mapping) and all(key in data for key in LIGHTNING_CKPT_MARKERS)


# ---- history file (its keys are the declared histories': compat.state.histories)
HISTORY_KEYS = HISTORY_COUNTERS + HISTORY_ARRAYS
