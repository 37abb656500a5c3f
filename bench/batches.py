"""The benchmarks' data: synthetic batches made once in pinned memory, served whole by a DataLoader.

Every style reads the same loader, so the comparison times the training step and the loop around
it, not sample-by-sample collation (which on the GPU machine tops out near the raw loop's rate).
"""

from __future__ import annotations

import torch

__all__ = ['PinnedBatches', 'batch_loader']


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
