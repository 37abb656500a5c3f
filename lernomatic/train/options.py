"""The Trainer's keyword options: one table that `__init__`, checks, checkpoints and docs read."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning
import torch
from lightning.pytorch.accelerators import Accelerator
from lightning.pytorch.loggers import Logger

from compat.codec.schema import TRAINER_PARAM_KEYS
from compat.codec.trust import check_prefixes
from compat.codec.validators import (
    Check,
    flag,
    fraction,
    int_at_least,
    loss_name,
    non_negative_int,
    non_negative_number,
    number,
    optimizer_name,
    optional_flag,
    positive_int,
)
from compat.devices import device_id_problem
from compat.distributed import strategy_problem
from compat.errors import ConfigError
from compat.kwargs import report_unknown_kwargs
from compat.logs import verbosity_problem

__all__ = ['Option', 'TRAINER_OPTIONS', 'LIGHTNING_OPTIONS', 'TRAINER_PARAM_KEYS', 'resolve_options',
           'check_option', 'check_model_argument']


def _rule(check: Check) -> Callable[[str, Any], None]:
    """An option check from a shared value check (`compat.codec.validators`): ConfigError naming option and value."""
    def run(name: str, value: Any) -> None:
        reason = check(value)
        if reason:
            raise ConfigError(f'{name} {reason}, got {value!r}')
    return run


def _device_id(name: str, value: Any) -> None:
    problem = device_id_problem(value)
    if problem:
        raise ConfigError(f'{name}{problem}')


def _early_stop(name: str, value: Any) -> None:
    if value is None:
        return
    if not isinstance(value, Mapping) or set(value) != {'num_epochs', 'improv'}:
        raise ConfigError(f"{name} must be None or a dict with exactly the keys 'num_epochs' and 'improv', "
                          f'got {value!r}')
    _rule(positive_int)(f"{name}['num_epochs']", value['num_epochs'])
    _rule(number)(f"{name}['improv']", value['improv'])


def _scheduler(name: str, value: Any) -> None:
    if value is not None and not callable(getattr(value, 'get_lr', None)):
        raise ConfigError(f'{name} must be None or an object with a get_lr() method, got {type(value).__name__}')


def _tb_writer(name: str, value: Any) -> None:
    if value is not None and not callable(getattr(value, 'add_scalar', None)):
        raise ConfigError(f'{name} must be None or a SummaryWriter (an object with add_scalar), '
                          f'got {type(value).__name__}')


def _dataset(name: str, value: Any) -> None:
    if value is None or isinstance(value, torch.utils.data.IterableDataset):
        return
    if isinstance(value, torch.utils.data.DataLoader):
        raise ConfigError(f'{name} is a DataLoader: pass its dataset ({name}=loader.dataset); the Trainer builds '
                          'its own loaders from batch_size, shuffle, num_workers and drop_last')
    if not (callable(getattr(value, '__getitem__', None)) and callable(getattr(value, '__len__', None))):
        raise ConfigError(f'{name} must be a torch Dataset (with __getitem__ and __len__), got {type(value).__name__}')


def _checkpoint_dir(name: str, value: Any) -> None:
    """A path that is, or can become, a folder. Whether it can be written is tried by train() before any batch,
    where a run writes there: a trainer made only to load a checkpoint writes nothing, as in the original."""
    if not isinstance(value, (str, os.PathLike)) or not isinstance(os.fspath(value), str) or not os.fspath(value):
        raise ConfigError(f'{name} must be a folder path, got {value!r}')
    text = os.fspath(value)
    if '\0' in text:
        raise ConfigError(f'{name}={text!r} holds a NUL character: no file system accepts it in a path')
    path = Path(text)
    try:
        if path.exists() and not path.is_dir():
            raise ConfigError(f'{name}={text!r} exists and is not a folder')
        existing = next((p for p in (path, *path.absolute().parents) if p.exists()), None)
    except OSError as error:  # a part longer than the file-name limit, a folder we may not look into
        raise ConfigError(f'{name}={text!r} cannot be used: {error.strerror}') from error
    if existing is None or not existing.is_dir():
        raise ConfigError(f'{name}={text!r} cannot be created: {existing} is not a folder')


# The longest file name a run writes is `<checkpoint_name>_epoch_<E>_iter_<I>.pkl` (E and I up to 20 digits each),
# and while it is written its temporary sibling `.<that name>.<8 hex>-<pid>-<8 random>.tmp`
# (compat.codec.atomic): both must fit the usual 255-byte file-name limit.
FILE_NAME_LIMIT = 255
NAME_ROOM = len('_epoch_') + 20 + len('_iter_') + 20 + len('.pkl') + len('..12345678-1234567-12345678.tmp')
CHECKPOINT_NAME_MAX_BYTES = FILE_NAME_LIMIT - NAME_ROOM


def _checkpoint_name(name: str, value: Any) -> None:
    if value is None:
        return  # as the original: kept, and refused by train() only where a file would be named after it
    if not isinstance(value, str) or not value or '/' in value or '\\' in value or value in ('.', '..'):
        raise ConfigError(f'{name} must be a file name prefix without path separators, got {value!r}')
    if '\0' in value:
        raise ConfigError(f'{name}={value!r} holds a NUL character: no file system accepts it in a file name')
    try:
        size = len(os.fsencode(value))
    except UnicodeEncodeError as error:
        raise ConfigError(f'{name}={value!r} cannot be written as a file name: {error.reason}') from error
    if size > CHECKPOINT_NAME_MAX_BYTES:
        raise ConfigError(f'{name} is {size} bytes long; at most {CHECKPOINT_NAME_MAX_BYTES} fit: the files named '
                          f'after it ({value[:12]}..._epoch_<N>_iter_<N>.pkl, and its temporary name while it is '
                          f'written) must fit the {FILE_NAME_LIMIT}-byte file-name limit. Choose a shorter name')


def _accelerator(name: str, value: Any) -> None:
    if value is not None and not isinstance(value, (str, Accelerator)):
        raise ConfigError(f"{name} must be None, a name ('cpu', 'gpu', 'cuda', 'auto', ...) or a Lightning "
                          f'Accelerator, got {value!r}')


def _devices(name: str, value: Any) -> None:
    if value is None or isinstance(value, str):
        return
    if isinstance(value, bool) or not (isinstance(value, int) or (
            isinstance(value, (list, tuple)) and all(isinstance(i, int) and not isinstance(i, bool) for i in value))):
        raise ConfigError(f"{name} must be None, a count, a list of device indices or a string such as 'auto', "
                          f'got {value!r}')


def _precision(name: str, value: Any) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, (int, str))):
        raise ConfigError(f"{name} must be None or a Lightning precision ('32-true', 'bf16-mixed', '16-mixed', 64, "
                          f'...), got {value!r}')


def _callbacks(name: str, value: Any) -> None:
    if value is None:
        return
    if not isinstance(value, (list, tuple)) or not all(isinstance(c, lightning.Callback) for c in value):
        raise ConfigError(f'{name} must be None or a list of lightning.Callback objects, got {value!r}')


def _logger(name: str, value: Any) -> None:
    if not isinstance(value, (bool, Logger)):
        raise ConfigError(f'{name} must be True, False or a Lightning logger, got {type(value).__name__}')


def _trusted_modules(name: str, value: Any) -> None:
    if value is None:
        return
    try:
        check_prefixes(value, name)
    except (TypeError, ValueError) as error:
        raise ConfigError(str(error)) from error


def _deterministic(name: str, value: Any) -> None:
    if value is not None and not isinstance(value, bool) and value != 'warn':
        raise ConfigError(f"{name} must be None, True, False or 'warn', got {value!r}")


def _strategy(name: str, value: Any) -> None:
    problem = strategy_problem(value)
    if problem:
        raise ConfigError(f'{name}={value!r}: {problem}')


@dataclass(frozen=True)
class Option:
    """One keyword option: its default, why it exists, and an optional check run before any work."""

    default: Any
    doc: str
    check: Callable[[str, Any], None] | None = None


TRAINER_OPTIONS: dict[str, Option] = {
    'num_epochs': Option(10, 'epochs to train', _rule(positive_int)),
    'learning_rate': Option(1e-4, "the optimizer's lr", _rule(non_negative_number)),
    'momentum': Option(0.5, 'recorded in checkpoints; set_momentum changes the optimizer', _rule(number)),
    'weight_decay': Option(1e-5, "the optimizer's weight_decay", _rule(non_negative_number)),
    'loss_function': Option('CrossEntropyLoss', 'a loss class in torch.nn', _rule(loss_name)),
    'optim_function': Option('Adam', 'an optimizer class in torch.optim', _rule(optimizer_name)),
    'checkpoint_dir': Option('checkpoint', 'folder for checkpoints, history and TensorBoard logs', _checkpoint_dir),
    'checkpoint_name': Option('ck', 'prefix of checkpoint and history file names (None: the original kept it and '
                              'wrote no file named after it; train() refuses it where one would be)', _checkpoint_name),
    'save_hist': Option(True, 'write the history file at the end of every epoch', _rule(flag)),
    'verbose': Option(True, "False/0: silent; True/1: INFO messages and, on a terminal, the progress bar; "
                      "2: also Lightning's banner, tips, model summary and warnings", _rule(verbosity_problem)),
    'print_every': Option(10, 'iterations between log messages and TensorBoard points', _rule(positive_int)),
    'save_every': Option(-1, 'iterations between checkpoints; -1: len(train_loader)-1, 0: never',
                         _rule(int_at_least(-1))),
    'save_best': Option(False, 'write best_<checkpoint_name>.pkl on a new best accuracy (forced on by save_every > 0)',
                        _rule(flag)),
    'device_id': Option(-1, '-1: CPU, N >= 0: cuda:N', _device_id),
    'device_map': Option(None, 'kept for old code; unused'),
    'batch_size': Option(64, 'training batch size', _rule(positive_int)),
    'val_batch_size': Option(0, 'validation/test batch size; 0: batch_size', _rule(non_negative_int)),
    'train_dataset': Option(None, 'training Dataset', _dataset),
    'test_dataset': Option(None, 'test Dataset, run after validation each epoch', _dataset),
    'val_dataset': Option(None, 'validation Dataset', _dataset),
    'shuffle': Option(True, 'shuffle the training (and test) data', _rule(flag)),
    'num_workers': Option(1, 'DataLoader worker processes', _rule(non_negative_int)),
    'drop_last': Option(True, 'drop incomplete last batches', _rule(flag)),
    'lr_scheduler': Option(None, 'object with get_lr(), applied after every iteration', _scheduler),
    'mtm_scheduler': Option(None, 'object with get_lr() for momentum, applied after every iteration', _scheduler),
    'stop_when_acc': Option(0.0, 'stop once validation accuracy reaches this (0: never)', _rule(fraction)),
    'early_stop': Option(None, "{'num_epochs': N, 'improv': x}: stop when accuracy gains < x over N epochs",
                         _early_stop),
    'tb_writer': Option(None, 'a torch.utils.tensorboard.SummaryWriter for the Lernomatic tags', _tb_writer),
    'stop_on_nonfinite': Option(True, 'stop with NonFiniteLossError when the training loss is NaN or Inf',
                                _rule(flag)),
    'strict': Option(None, 'unknown kwargs: True raises ConfigError, False warns; None: LERNOMATIC_STRICT decides',
                     _rule(optional_flag)),
    'data_on_device': Option(True, 'keep a TensorDataset on the training device and gather batches there, in the '
                             "DataLoader's order (when it fits, in one process)", _rule(flag)),
    'trusted_modules': Option(None, 'module prefixes (your model packages) that checkpoints loaded by this trainer '
                              'may make it import (docs/reliability.md)', _trusted_modules),
}

LIGHTNING_OPTIONS: dict[str, Option] = {
    'accelerator': Option(None, "Lightning accelerator ('cpu', 'gpu', 'auto'); None: from device_id", _accelerator),
    'devices': Option(None, 'Lightning devices (count, list or "auto"); None: from device_id', _devices),
    'strategy': Option('auto', "Lightning strategy ('ddp', ...); 'fsdp' is refused (docs/cluster.md)", _strategy),
    'num_nodes': Option(1, 'machines in the run (torchrun --nnodes, SLURM --nodes); devices is per machine '
                        '(docs/cluster.md)', _rule(positive_int)),
    'precision': Option(None, "Lightning precision ('bf16-mixed', '16-mixed', ...)", _precision),
    'callbacks': Option(None, 'a list of lightning.Callback', _callbacks),
    'logger': Option(True, 'True: a TensorBoardLogger under checkpoint_dir; False: none; or a Lightning logger',
                     _logger),
    'deterministic': Option(None, 'Lightning deterministic mode', _deterministic),
    'cuda_graph': Option(False, 'replay the default training step as one CUDA graph (single GPU, 32-bit)',
                         _rule(flag)),
}


def resolve_options(kwargs: Mapping[str, Any], owner: str = 'Trainer') -> dict[str, Any]:
    """Every option's value: the caller's where given, else the default. Bad values raise.

    Unknown names are ignored with one warning, as the original ignored them (zoo trainers pass
    kwargs the base does not know); `strict=True` or LERNOMATIC_STRICT=1 makes them an error.
    """
    known = {**TRAINER_OPTIONS, **LIGHTNING_OPTIONS}
    strict = kwargs.get('strict')
    _rule(optional_flag)('strict', strict)
    report_unknown_kwargs(owner, [name for name in kwargs if name not in known], known, strict)
    values = {name: kwargs.get(name, option.default) for name, option in known.items()}
    for name, option in known.items():
        if option.check is not None and name in kwargs:
            option.check(name, values[name])
    return values


def check_option(name: str, value: Any) -> None:
    """Run option `name`'s check on `value` (for setters called after construction)."""
    option = TRAINER_OPTIONS.get(name) or LIGHTNING_OPTIONS[name]
    if option.check is not None:
        option.check(name, value)


def check_model_argument(model: Any, owner: str) -> None:
    """The model must be a LernomaticModel (or None): a bare nn.Module carries no metadata to rebuild it from."""
    if isinstance(model, torch.nn.Module):
        name = type(model).__name__
        raise ConfigError(
            f'{owner} got a torch.nn.Module ({name}) as its model: it takes a LernomaticModel, the wrapper that '
            'names the classes a checkpoint rebuilds it from. Wrap it:\n'
            '    from lernomatic.models import common\n'
            f'    class {name}Model(common.LernomaticModel):\n'
            '        def __init__(self, **kwargs):\n'
            f'            self.net = {name}(...)\n'
            f"            self.import_path = self.module_import_path = {type(model).__module__!r}  # where both live\n"
            f"            self.model_name, self.module_name = '{name}Model', {name!r}")
    if model is not None and not callable(getattr(model, 'get_model_parameters', None)):
        raise ConfigError(f'{owner} got a {type(model).__name__} as its model: expected a LernomaticModel or None')
