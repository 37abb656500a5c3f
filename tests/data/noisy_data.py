"""A dataset that draws from torch's generator in __getitem__ (augmentation noise), as image pipelines do.

In a DataLoader worker the draws come from the worker's own generator, seeded per epoch from the
main process's; with `num_workers=0` they come from the main process's generator itself.
"""

import torch
from torch.utils.data import Dataset


class NoisyDataset(Dataset):
    def __init__(self, base: Dataset, scale: float = 0.1) -> None:
        self.base = base
        self.scale = scale

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, index: int):
        x, y = self.base[index]
        return x + self.scale * torch.randn_like(x), y
