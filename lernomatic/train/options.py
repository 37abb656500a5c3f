"""The Trainer's keyword options: one table that `__init__`, checks, checkpoints and docs read."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch

from compat.errors import ConfigError
from compat.factories import criterion_class, optimizer_class
from compat.kwargs import report_unknown_kwargs

__all__ = ['Option', 'TRAINER_OPTIONS', 'LIGHTNING_OPTIONS', 'TRAINER_PARAM_KEYS', 'resolve_options']


def _positive_int(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ConfigError(f'{name} must be a positive integer, got {value!r}')


def _non_negative_int(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigError(f'{name} must be an integer >= 0, got {value!r}')


def _loss_name(name: str, value: Any) -> None:
    criterion_class(value)


def _optim_name(name: str, value: Any) -> None:
    optimizer_class(value)


def _device_id(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < -1:
        raise ConfigError(f'{name} must be -1 (CPU) or a GPU index >= 0, got {value!r}')
    count = torch.cuda.device_count()
    if value >= count:
        raise ConfigError(f'{name}={value} but this machine has {count} CUDA GPU(s)'
                          + (f': use 0..{count - 1}' if count else ': use device_id=-1 for the CPU'))


def _flag(name: str, value: Any) -> None:
    if not isinstance(value, bool):
        raise ConfigError(f'{name} must be True or False, got {value!r}')


def _optional_flag(name: str, value: Any) -> None:
    if value is not None:
        _flag(name, value)


def _early_stop(name: str, value: Any) -> None:
    if value is None:
        return
    if not isinstance(value, Mapping) or not {'num_epochs', 'improv'} <= set(value):
        raise ConfigError(f"{name} must be None or a dict with keys 'num_epochs' and 'improv', got {value!r}")
    _positive_int(f"{name}['num_epochs']", value['num_epochs'])


def _scheduler(name: str, value: Any) -> None:
    if value is not None and not callable(getattr(value, 'get_lr', None)):
        raise ConfigError(f'{name} must be None or an object with a get_lr() method, got {type(value).__name__}')


@dataclass(frozen=True)
class Option:
    """One keyword option: its default, why it exists, and an optional check run before any work."""

    default: Any
    doc: str
    check: Callable[[str, Any], None] | None = None


TRAINER_OPTIONS: dict[str, Option] = {
    'num_epochs': Option(10, 'epochs to train', _positive_int),
    'learning_rate': Option(1e-4, "the optimizer's lr"),
    'momentum': Option(0.5, 'recorded in checkpoints; set_momentum changes the optimizer'),
    'weight_decay': Option(1e-5, "the optimizer's weight_decay"),
    'loss_function': Option('CrossEntropyLoss', 'a loss class in torch.nn', _loss_name),
    'optim_function': Option('Adam', 'an optimizer class in torch.optim', _optim_name),
    'checkpoint_dir': Option('checkpoint', 'folder for checkpoints, history and TensorBoard logs'),
    'checkpoint_name': Option('ck', 'prefix of checkpoint and history file names'),
    'save_hist': Option(True, 'write the history file at the end of every epoch'),
    'verbose': Option(True, 'progress bar and INFO messages'),
    'print_every': Option(10, 'iterations between log messages and TensorBoard points', _positive_int),
    'save_every': Option(-1, 'iterations between checkpoints; -1: len(train_loader)-1, 0: never'),
    'save_best': Option(False, 'write best_<checkpoint_name>.pkl on a new best accuracy (forced on by save_every > 0)'),
    'device_id': Option(-1, '-1: CPU, N >= 0: cuda:N', _device_id),
    'device_map': Option(None, 'kept for old code; unused'),
    'batch_size': Option(64, 'training batch size', _positive_int),
    'val_batch_size': Option(0, 'validation/test batch size; 0: batch_size', _non_negative_int),
    'train_dataset': Option(None, 'training Dataset'),
    'test_dataset': Option(None, 'test Dataset, run after validation each epoch'),
    'val_dataset': Option(None, 'validation Dataset'),
    'shuffle': Option(True, 'shuffle the training (and test) data'),
    'num_workers': Option(1, 'DataLoader worker processes', _non_negative_int),
    'drop_last': Option(True, 'drop incomplete last batches'),
    'lr_scheduler': Option(None, 'object with get_lr(), applied after every iteration', _scheduler),
    'mtm_scheduler': Option(None, 'object with get_lr() for momentum, applied after every iteration', _scheduler),
    'stop_when_acc': Option(0.0, 'stop once validation accuracy reaches this (0: never)'),
    'early_stop': Option(None, "{'num_epochs': N, 'improv': x}: stop when accuracy gains < x over N epochs",
                         _early_stop),
    'tb_writer': Option(None, 'a torch.utils.tensorboard.SummaryWriter for the Lernomatic tags'),
    'stop_on_nonfinite': Option(True, 'stop with NonFiniteLossError when the training loss is NaN or Inf'),
    'strict': Option(None, 'unknown kwargs: True raises ConfigError, False warns; None: LERNOMATIC_STRICT decides',
                     _optional_flag),
}

LIGHTNING_OPTIONS: dict[str, Option] = {
    'accelerator': Option(None, "Lightning accelerator ('cpu', 'gpu', 'auto'); None: from device_id"),
    'devices': Option(None, 'Lightning devices (count, list or "auto"); None: from device_id'),
    'strategy': Option('auto', "Lightning strategy ('ddp', ...)"),
    'precision': Option(None, "Lightning precision ('bf16-mixed', '16-mixed', ...)"),
    'callbacks': Option(None, 'a list of lightning.Callback'),
    'logger': Option(True, 'True: a TensorBoardLogger under checkpoint_dir; False: none; or a Lightning logger'),
    'deterministic': Option(None, 'Lightning deterministic mode'),
    'cuda_graph': Option(False, 'replay the default training step as one CUDA graph (single GPU, 32-bit)', _flag),
}

# The keys of a checkpoint's 'trainer_params', in the original's order.
TRAINER_PARAM_KEYS = ('num_epochs', 'learning_rate', 'momentum', 'weight_decay', 'loss_function', 'optim_function',
                      'cur_epoch', 'iter_per_epoch', 'save_every', 'print_every', 'batch_size', 'val_batch_size',
                      'shuffle')


def resolve_options(kwargs: Mapping[str, Any], owner: str = 'Trainer') -> dict[str, Any]:
    """Every option's value: the caller's where given, else the default. Bad values raise.

    Unknown names are ignored with one warning, as the original ignored them (zoo trainers pass
    kwargs the base does not know); `strict=True` or LERNOMATIC_STRICT=1 makes them an error.
    """
    known = {**TRAINER_OPTIONS, **LIGHTNING_OPTIONS}
    strict = kwargs.get('strict')
    _optional_flag('strict', strict)
    report_unknown_kwargs(owner, [name for name in kwargs if name not in known], known, strict)
    values = {name: kwargs.get(name, option.default) for name, option in known.items()}
    for name, option in known.items():
        if option.check is not None and name in kwargs:
            option.check(name, values[name])
    return values
