"""The toy data the fixture files were trained on, rebuilt from its recorded recipe.

`make(n, seed)`: n samples of 12 standard-normal features from a generator seeded with `seed`;
the class is how many of two thresholds the sample passes (feature 0 > 0, feature 1 > 0.5).
"""

import torch
from torch.utils.data import TensorDataset


def make(n: int, seed: int) -> TensorDataset:
    generator = torch.Generator().manual_seed(seed)
    features = torch.randn(n, 12, generator=generator)
    labels = (features[:, 0] > 0).long() + (features[:, 1] > 0.5).long()
    return TensorDataset(features, labels)
