"""The first training batch through the model and the loss, before the first epoch.

The common set-up mistakes (a sample shape the model does not take, a loss that does not fit the
model's output, class labels the model has no output for) otherwise surface as a long traceback
from inside Lightning's loop, or on a GPU as a device-side assert that kills the process. Here they
become one `ConfigError` that names the dataset, the batch, the model's output and the error.

The check changes nothing a run computes: it reads the first samples straight from the dataset
(the loader's sampler draws no order), runs the model in eval mode without gradients (no
BatchNorm statistics move, no dropout mask is drawn), puts every module's train/eval flag back,
and restores the random generators, which a dataset's own augmentation may have drawn from.
"""

from __future__ import annotations

import contextlib
import os
import traceback
from collections.abc import Iterator, Mapping, Sized
from typing import Any

import torch
from lightning.fabric.utilities.apply_func import move_data_to_device
from torch.utils.data import IterableDataset, TensorDataset

from compat.codec.rng import capture_rng_state, restore_rng_state
from compat.errors import ConfigError
from compat.state.protocol import LernomaticTrainer

__all__ = ['check_first_batch', 'check_loaders_have_batches', 'describe']

# Losses that index the model's outputs with the target: a label outside them is an IndexError on
# the CPU and a device-side assert on a GPU.
_CLASS_INDEX_LOSSES = (torch.nn.CrossEntropyLoss, torch.nn.NLLLoss)
_TORCH_DIR = os.path.dirname(torch.__file__)
_SHOWN_ITEMS = 4  # items of a long list or dict named in a description


def describe(value: Any) -> str:
    """A short description of a batch: 'float32[64, 1, 8, 8]' for a tensor, nested for tuples, lists, dicts."""
    if isinstance(value, torch.Tensor):
        return f"{str(value.dtype).removeprefix('torch.')}[{', '.join(str(size) for size in value.shape)}]"
    if isinstance(value, Mapping):
        items = [f'{key!r}: {describe(item)}' for key, item in list(value.items())[:_SHOWN_ITEMS]]
        return '{' + ', '.join(items) + (', ...' if len(value) > _SHOWN_ITEMS else '') + '}'
    if isinstance(value, (tuple, list)):
        items = [describe(item) for item in value[:_SHOWN_ITEMS]]
        more = f', ... ({len(value)} items)' if len(value) > _SHOWN_ITEMS else ''
        opening, closing = ('(', ')') if isinstance(value, tuple) else ('[', ']')
        return opening + ', '.join(items) + more + closing
    return type(value).__name__


def _loss_name(criterion: Any) -> str:
    return getattr(criterion, '__name__', None) or type(criterion).__name__


def _dataset_name(name: str, dataset: Any) -> str:
    return f'{name} ({type(dataset).__name__}, {len(dataset)} samples)'


def _error_line(error: BaseException) -> str:
    """'ValueError: message (at net.py:31 in forward)': the innermost frame outside torch, where the user can look."""
    text = str(error).strip().splitlines()
    line = f'{type(error).__name__}: {text[0]}' if text else type(error).__name__
    frames = [frame for frame in traceback.extract_tb(error.__traceback__)
              if not frame.filename.startswith(_TORCH_DIR) and frame.filename != __file__]
    if frames:
        where = frames[-1]
        line += f' (at {os.path.basename(where.filename)}:{where.lineno} in {where.name})'
    return line


@contextlib.contextmanager
def _generators_kept() -> Iterator[None]:
    """Whatever the block draws from torch, numpy or Python `random`, the run after it draws the same numbers."""
    state = capture_rng_state()
    try:
        yield
    finally:
        restore_rng_state(state)


@contextlib.contextmanager
def _eval_mode(net: torch.nn.Module) -> Iterator[None]:
    """The net in eval mode for the block; afterwards each module's own flag back (a frozen BatchNorm stays eval)."""
    flags = [(module, module.training) for module in net.modules()]
    net.eval()
    try:
        yield
    finally:
        for module, training in flags:
            module.training = training


def _has_samples(dataset: Any) -> bool:
    """A map-style dataset with a length and at least one sample: one whose first samples can be read by index."""
    if isinstance(dataset, IterableDataset):
        return False
    try:
        return len(dataset) > 0
    except TypeError:
        return False


def _read(name: str, dataset: Any, index: int) -> Any:
    try:
        return dataset[index]
    except Exception as error:
        raise ConfigError(f'{_dataset_name(name, dataset)}: reading sample {index} failed:\n  '
                          f'{_error_line(error)}') from None


def _first_batch(name: str, loader: torch.utils.data.DataLoader) -> Any:
    """The loader's first batch without its sampler: the dataset's first samples in order, collated as it does.

    A loader without automatic batching (`batch_size=None`, no batch sampler) takes each item of
    the dataset as a whole batch, passed through its `collate_fn` alone.
    """
    dataset = loader.dataset
    if loader.batch_sampler is None:
        return loader.collate_fn(_read(name, dataset, 0))
    assert isinstance(dataset, Sized), 'check_first_batch reads a first batch only where _has_samples(dataset)'
    count = min(len(dataset), loader.batch_size or getattr(loader.batch_sampler, 'batch_size', None) or 1)
    samples = [_read(name, dataset, index) for index in range(count)]
    try:
        return loader.collate_fn(samples)
    except Exception as error:
        shapes = ', '.join(describe(sample) for sample in samples[:_SHOWN_ITEMS])
        raise ConfigError(f'{_dataset_name(name, dataset)}: its first {count} samples ({shapes}, ...) do not make '
                          f'a batch:\n  {_error_line(error)}. Give every sample the same shapes, or pass '
                          'a collate_fn that can batch them') from None


def _label_problem(labels: torch.Tensor, criterion: torch.nn.Module, num_outputs: int) -> str | None:
    """What is wrong with class labels for `criterion` over `num_outputs` classes, None when they all fit."""
    if labels.is_floating_point() or labels.is_complex() or labels.dtype == torch.bool or labels.numel() == 0:
        return None  # class probabilities (or no labels at all): nothing to index with
    labels = labels.reshape(len(labels), -1) if labels.dim() > 0 else labels.reshape(1, 1)
    ignored = getattr(criterion, 'ignore_index', None)
    bad = (labels < 0) | (labels >= num_outputs)
    if ignored is not None:
        bad &= labels != ignored
    rows = bad.any(dim=1)
    if not bool(rows.any()):
        return None
    first = int(rows.nonzero()[0])
    value = int(labels[first][bad[first]][0])
    skipped = f' (labels equal to ignore_index={ignored} are skipped)' if ignored is not None else ''
    return (f'label {value} of sample {first} ({int(rows.sum())} sample(s) in all) is out of range for '
            f"{_loss_name(criterion)} over the model's {num_outputs} outputs: labels must be 0..{num_outputs - 1}"
            f'{skipped}. Renumber the labels from 0, or give the model more outputs')


def _check_whole_label_tensors(legacy: LernomaticTrainer, criterion: torch.nn.Module, output: torch.Tensor,
                               num_outputs: int) -> None:
    """Every label of each TensorDataset the trainer holds (train, val, test): a cheap read, no sample loaded."""
    for name in ('train_loader', 'val_loader', 'test_loader'):
        loader = getattr(legacy, name, None)
        dataset = getattr(loader, 'dataset', None)
        if not isinstance(dataset, TensorDataset) or len(dataset.tensors) < 2:
            continue
        problem = _label_problem(dataset.tensors[1], criterion, num_outputs)
        if problem:
            raise ConfigError(f"{_dataset_name(name.replace('loader', 'dataset'), dataset)}, "
                              f'model output {describe(output)}:\n  {problem}')


def check_first_batch(legacy: LernomaticTrainer, hand_written: frozenset[str] = frozenset()) -> None:
    """Run the first training batch through the model and the criterion; ConfigError if they do not fit.

    For the default training loop only: a subclass that overrides `train_epoch` ('train' in
    `hand_written`) feeds its batches its own way, and an IterableDataset has no first batch to
    read without consuming its stream; both are left alone.

    Args:
        legacy: the Lernomatic trainer, ready to train (model, criterion and train_loader set).
        hand_written: the stages whose epoch method the trainer's subclass overrides.

    Raises:
        ConfigError: naming the dataset, the batch's shapes and dtypes, the model's output and the error.
    """
    if 'train' in hand_written:
        return
    loader = legacy.train_loader
    if loader is None:
        raise ConfigError(f'{legacy!r} has no training data: pass train_dataset= or call set_train_dataset()')
    if not _has_samples(loader.dataset):
        return
    name = 'train_dataset'
    net, criterion = legacy.model.get_net(), legacy.criterion
    device = next((p.device for p in net.parameters()), legacy.device)
    with _generators_kept(), _eval_mode(net), torch.no_grad():
        batch = _first_batch(name, loader)
        where = f'{_dataset_name(name, loader.dataset)}, first batch {describe(batch)}'
        if not isinstance(batch, (tuple, list)) or len(batch) != 2:
            raise ConfigError(f'{where}:\n  the default training step takes each batch as (data, target). Return '
                              'two items from the dataset, or override train_epoch to unpack batches yourself')
        data, target = batch
        try:
            output = legacy.model.forward(move_data_to_device(data, device))
        except Exception as error:
            raise ConfigError(f"{where}:\n  the model's forward failed: {_error_line(error)}") from None
        where += f', model output {describe(output)}'
        if isinstance(criterion, _CLASS_INDEX_LOSSES) and isinstance(output, torch.Tensor) and output.dim() >= 2:
            num_outputs = output.shape[1]  # (batch, classes, ...): the class dimension of both losses
            if isinstance(target, torch.Tensor):  # checked on the host, before the device could assert
                problem = _label_problem(target, criterion, num_outputs)
                if problem:
                    raise ConfigError(f'{where}:\n  {problem}')
            _check_whole_label_tensors(legacy, criterion, output, num_outputs)
        try:
            criterion(output, move_data_to_device(target, device))
        except Exception as error:
            raise ConfigError(f'{where}:\n  {_loss_name(criterion)} failed on them: {_error_line(error)}') from None


def check_loaders_have_batches(legacy: LernomaticTrainer) -> None:
    """A loader with no batches would train or validate on nothing: say so before any work."""
    for name in ('train_loader', 'val_loader', 'test_loader'):
        loader = getattr(legacy, name, None)
        if not isinstance(loader, torch.utils.data.DataLoader) or loader.batch_size is None:
            continue
        try:
            length = len(loader)
        except TypeError:  # an IterableDataset without a length
            continue
        if length == 0:
            dataset = loader.dataset
            # a dataset without a length can still make batches through a sampler of its own
            held = f'holds {len(dataset)} samples, fewer than' if isinstance(dataset, Sized) else 'yields fewer than'
            raise ConfigError(f'{name} has no batches: its dataset {held} its batch '
                              f'size {loader.batch_size}, and drop_last=True drops the incomplete batch. Use a '
                              'smaller batch_size / val_batch_size or drop_last=False')
