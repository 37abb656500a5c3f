"""Top-1 accuracy as a torchmetrics state, so it accumulates on the device and sums across ranks."""

from __future__ import annotations

import torch
import torchmetrics

__all__ = ['TopOneAccuracy']


class TopOneAccuracy(torchmetrics.Metric):
    """Fraction of samples whose arg-max output equals the target, as Lernomatic's `val_epoch` counts it."""

    full_state_update = False
    # the states add_state() registers, declared
    correct: torch.Tensor
    total: torch.Tensor

    def __init__(self) -> None:
        super().__init__()
        self.add_state('correct', default=torch.tensor(0), dist_reduce_fx='sum')
        self.add_state('total', default=torch.tensor(0), dist_reduce_fx='sum')

    def update(self, output: torch.Tensor, target: torch.Tensor) -> None:
        pred = output.argmax(dim=1, keepdim=True)
        self.correct += pred.eq(target.view_as(pred)).sum()
        self.total += target.numel()

    def compute(self) -> torch.Tensor:
        # float64 so the value equals Python's correct / total, as the original's was
        return self.correct.to(torch.float64) / self.total.clamp(min=1)
