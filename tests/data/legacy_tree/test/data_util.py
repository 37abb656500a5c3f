# Small synthetic datasets standing in for the torchvision ones the original tests downloaded.
import torch
from torch.utils.data import TensorDataset


def images(n, num_classes=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 1, 8, 8, generator=g)
    y = (x.mean(dim=(1, 2, 3)) > 0).long() + 2 * (x[:, 0, 0, 0] > 0).long()
    return TensorDataset(x, y % num_classes)


def vectors(n, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 12, generator=g)
    return TensorDataset(x, torch.zeros(n, dtype=torch.long))
