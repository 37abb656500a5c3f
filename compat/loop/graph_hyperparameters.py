"""The learning rate a captured CUDA graph reads from a device tensor, so schedules need no recapture.

A graph holds every value it was captured with. A Python float `lr` is baked into its kernels, so
a schedule that changes the learning rate every iteration (the original's cyclic schedules) would
have to capture again every iteration. Adam and AdamW in their capturable mode also accept the
learning rate as a one-element device tensor: captured with tensors in the groups, the graph reads
whatever those tensors hold at replay. The groups keep their Python floats outside the capture (old
code, schedulers and checkpoints read them); before each replay a changed float is written into its
tensor with a fill, a kernel launch that needs no host sync.

Momentum stays a captured value: torch's Adam (2.11 to 2.13) blends its first moment with
`_foreach_lerp_`, which reads a tensor `betas[0]` on the host and so cannot run inside a capture.
A momentum schedule therefore captures again when the momentum changes.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch

__all__ = ['GraphHyperparameters', 'reads_lr_from_device']

# Optimizers whose capturable step reads a tensor lr on the device (torch's `_multi_tensor_adam` and
# `_single_tensor_adam` divide by it, and AdamW's decoupled decay multiplies by it, all on the device).
_TENSOR_LR_OPTIMIZERS = (torch.optim.Adam, torch.optim.AdamW)


def reads_lr_from_device(optimizer: torch.optim.Optimizer) -> bool:
    """Whether `optimizer`'s captured step can take its learning rate from a device tensor."""
    return type(optimizer) in _TENSOR_LR_OPTIMIZERS and all(
        group.get('capturable') is True and not group.get('differentiable') for group in optimizer.param_groups)


class GraphHyperparameters:
    """Each parameter group's lr as a device tensor, fed from the group's float before each replay.

    Args:
        optimizer: an Adam or AdamW in its capturable mode (`reads_lr_from_device`).
    """

    def __init__(self, optimizer: torch.optim.Optimizer) -> None:
        self.optimizer = optimizer
        self._tensors: list[torch.Tensor] = []
        self._fed: list[float] = []

    @contextmanager
    def in_groups(self) -> Iterator[None]:
        """During a capture: the groups hold the device tensors, so the graph reads them; floats again after."""
        groups = self.optimizer.param_groups
        floats = [group['lr'] for group in groups]
        first = groups[0]['params'][0]
        # torch.full launches a fill: no copy from pageable host memory, so no sync
        self._tensors = [torch.full((), float(lr), device=first.device, dtype=first.dtype) for lr in floats]
        self._fed = [float(lr) for lr in floats]
        try:
            for group, tensor in zip(groups, self._tensors, strict=True):
                group['lr'] = tensor
            yield
        finally:
            for group, lr in zip(groups, floats, strict=True):
                group['lr'] = lr

    def feed(self) -> None:
        """Write each group's current lr into the graph's tensor where it changed."""
        for index, (group, tensor) in enumerate(zip(self.optimizer.param_groups, self._tensors, strict=True)):
            lr = float(group['lr'])
            if lr != self._fed[index]:
                tensor.fill_(lr)
                self._fed[index] = lr

    @staticmethod
    def fixed_part(key: str, value: object) -> object:
        """What of a group's `key` the graph still holds fixed (None where the tensor carries it)."""
        return None if key == 'lr' else value
