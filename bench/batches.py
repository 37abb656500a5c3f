"""The benchmarks' data: whole pinned batches (`batches`), or a TensorDataset collated per sample (`collated`).

`batches`: synthetic batches made once in pinned memory, served whole by a DataLoader, so the
comparison times the training step and the loop around it, not collation (which on the GPU
machine tops out near the raw loop's rate).

`collated`: what users run: a `TensorDataset` of CIFAR-shaped samples in a plain
`DataLoader(batch_size=..., shuffle=True)` that collates every batch sample by sample. Every style
builds this same loader (400 batches of 128 are about one CIFAR-10 epoch).
"""

from __future__ import annotations

import torch

__all__ = ['PinnedBatches', 'batch_loader', 'cifar_like_dataset', 'collated_loader', 'make_loader']



class PinnedBatches(torch.utils.data.Dataset):
    """`length` CIFAR-shaped `(images, labels)` batches, cycling over `count` distinct ones, pinned for a GPU."""

    def __init__(self, length: int, count: int, batch: int, pin: bool) -> None:
        self.length = length
        generator = torch.Generator().manual_seed(0)
        self.batches = []
        for _ in range(count):
            images = torch.randn(batch, 3, 32, 32, generator=generator)
            labels = torch.randint(0, 10, (batch,), generator=generator)
            self.batches.append((images.pin_memory(), labels.pin_memory()) if pin else (images, labels))

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.batches[index % len(self.batches)]


def batch_loader(steps: int, batch: int, device: str, distinct: int = 64) -> torch.utils.data.DataLoader:
    """A loader of `steps` whole batches: no collation, no workers, already pinned."""
    dataset = PinnedBatches(steps, min(steps, distinct), batch, pin=device == 'cuda')
    return torch.utils.data.DataLoader(dataset, batch_size=None, shuffle=False, num_workers=0)


def cifar_like_dataset(samples: int, device: str) -> torch.utils.data.TensorDataset:
    """`samples` random 3x32x32 float images with int64 labels, in host memory (not pinned), as a TensorDataset.

    Drawn on the GPU when there is one and copied back: randn of CIFAR-10's size takes about a
    second on the host, which every benchmark process would pay.
    """
    where = device if device == 'cuda' else 'cpu'
    generator = torch.Generator(where).manual_seed(0)
    images = torch.randn(samples, 3, 32, 32, generator=generator, device=where).cpu()
    labels = torch.randint(0, 10, (samples,), generator=generator, device=where).cpu()
    if where == 'cuda':
        torch.cuda.empty_cache()  # the drawing's memory goes back: the run starts with the GPU as a user's would
    return torch.utils.data.TensorDataset(images, labels)


def collated_loader(steps: int, batch: int, device: str) -> torch.utils.data.DataLoader:
    """A plain shuffling DataLoader of `steps` batches over a TensorDataset, collated sample by sample.

    No workers, no pinning, the default collate: the loader as a user writes it. The same
    construction serves every style, and `data_on_device` recognises it as in-memory data.
    """
    torch.manual_seed(0)  # the shuffle order: the same in every process
    return torch.utils.data.DataLoader(cifar_like_dataset(steps * batch, device), batch_size=batch, shuffle=True)


def make_loader(data: str, steps: int, batch: int, device: str) -> torch.utils.data.DataLoader:
    """The loader every style of a run reads: `data` is 'collated' or 'batches' (see the module doc)."""
    if data == 'collated':
        return collated_loader(steps, batch, device)
    return batch_loader(steps, batch, device)
