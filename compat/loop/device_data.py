"""In-memory training data kept on the device, batches gathered there in the DataLoader's own order.

Most Lernomatic examples train on datasets that are whole tensors (MNIST, CIFAR-10, the digits): a
`TensorDataset`. A DataLoader collates those sample by sample on the host and copies every batch to
the device, which on a GPU caps small models far below what their step could do. When a loader's
dataset is a `TensorDataset` (or a dataset marked `lernomatic_in_memory = True` that has `tensors`)
that fits in the device's memory, `DeviceTensorLoader` keeps the tensors there and builds each batch
by indexing, taking its indices from the loader's own batch sampler (shuffling, `drop_last`) and
drawing from the global generator exactly as a DataLoader iterator does: the same batches, in the
same order, with the same random stream afterwards, so the run's numbers are unchanged.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
from torch.utils.data import BatchSampler, DataLoader, RandomSampler, SequentialSampler, TensorDataset, default_collate

from compat.logs import get_logger

__all__ = ['DeviceTensorLoader', 'device_data_refusal', 'MAX_FREE_MEMORY_SHARE']

log = get_logger('data')

# At most this share of the GPU memory that is free when training starts: the rest is the model's.
MAX_FREE_MEMORY_SHARE = 0.5


def _tensors(dataset: Any) -> tuple[torch.Tensor, ...] | None:
    if type(dataset) is TensorDataset or getattr(dataset, 'lernomatic_in_memory', False) is True:
        tensors = getattr(dataset, 'tensors', None)
        if isinstance(tensors, tuple) and tensors and all(isinstance(t, torch.Tensor) for t in tensors) \
                and len({len(t) for t in tensors}) == 1:
            return tensors
    return None


def device_data_refusal(loader: Any, device: torch.device) -> str | None:
    """Why `loader` cannot be served from the device (None when it can)."""
    if not isinstance(loader, DataLoader):
        return 'not a DataLoader'
    tensors = _tensors(loader.dataset)
    if tensors is None:
        return 'its dataset is not a TensorDataset (or marked lernomatic_in_memory with tensors)'
    if loader.collate_fn is not default_collate:
        return 'it has its own collate_fn'
    sampler = loader.batch_sampler
    if type(sampler) is not BatchSampler or type(sampler.sampler) not in (RandomSampler, SequentialSampler):
        return 'it has its own sampler'
    if device.type == 'cuda':
        size = sum(t.nbytes for t in tensors)
        free, _ = torch.cuda.mem_get_info(device)
        if size > MAX_FREE_MEMORY_SHARE * free:
            return f'its {size / 2**20:.0f} MB would take more than half of the {free / 2**20:.0f} MB free on {device}'
    return None


class DeviceTensorLoader:
    """Stands in for a DataLoader over a `TensorDataset`: the same batches, gathered on `device`.

    Everything else (`dataset`, `batch_size`, `sampler`, `len()`, ...) is the loader's own.

    Args:
        loader: the DataLoader it replaces (its batch sampler decides the order).
        device: where the tensors are kept and the batches built.
    """

    def __init__(self, loader: DataLoader, device: torch.device) -> None:
        self._loader = loader
        self._device = device
        source = _tensors(loader.dataset)
        assert source is not None, 'device_data_refusal() says which loaders qualify'
        self._tensors = tuple(t.to(device) for t in source)

    def __len__(self) -> int:
        return len(self._loader)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._loader, name)

    def __repr__(self) -> str:
        return f'DeviceTensorLoader({self._loader!r}, device={self._device})'

    def __iter__(self) -> Iterator[list[torch.Tensor]]:
        # A DataLoader iterator draws its workers' base seed from the global generator first: so do we,
        # so that everything drawn afterwards (dropout, the next epoch's order) is what it would be.
        torch.empty((), dtype=torch.int64).random_(generator=self._loader.generator)
        batches = list(self._loader.batch_sampler or ())  # the sampler draws its order now, as on the first batch
        if not batches:
            return
        flat = torch.tensor([index for batch in batches for index in batch], dtype=torch.int64)
        if self._device.type == 'cuda':
            flat = flat.pin_memory()
        flat = flat.to(self._device, non_blocking=True)  # one copy of the epoch's indices, not one per batch
        start = 0
        for batch in batches:
            indices = flat[start:start + len(batch)]
            start += len(batch)
            yield [tensor.index_select(0, indices) for tensor in self._tensors]
