"""Learning rate and momentum that a captured CUDA graph reads from device tensors, so schedules need no recapture.

A graph holds every value it was captured with. A Python float `lr` is baked into its kernels, so
a schedule that changes the learning rate every iteration (the original's cyclic schedules) would
have to capture again every iteration. Adam and AdamW in their capturable mode also accept the
learning rate and `betas[0]` as one-element device tensors: captured with tensors in the groups,
the graph reads whatever those tensors hold at replay. The groups keep their Python floats outside
the capture (old code, schedulers and checkpoints read them); before each replay a changed float is
written into its tensor with a fill, a kernel launch that needs no host sync.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch

__all__ = ['GraphHyperparameters', 'reads_hyperparameters_from_device']

# Optimizers whose capturable step reads a tensor lr and betas[0] on the device (checked against torch's
# Adam: `_multi_tensor_adam` and `_single_tensor_adam` both take tensors there when capturable).
_TENSOR_HYPERPARAMETER_OPTIMIZERS = (torch.optim.Adam, torch.optim.AdamW)


def reads_hyperparameters_from_device(optimizer: torch.optim.Optimizer) -> bool:
    """Whether `optimizer`'s captured step can take lr and momentum from device tensors."""
    return type(optimizer) in _TENSOR_HYPERPARAMETER_OPTIMIZERS and all(
        group.get('capturable') is True and not group.get('differentiable') for group in optimizer.param_groups)


class GraphHyperparameters:
    """Each parameter group's lr and betas[0] as device tensors, fed from the group's floats before each replay.

    Args:
        optimizer: an Adam or AdamW in its capturable mode (`reads_hyperparameters_from_device`).
    """

    KEYS = ('lr', 'betas[0]')

    def __init__(self, optimizer: torch.optim.Optimizer) -> None:
        self.optimizer = optimizer
        self._tensors: list[tuple[torch.Tensor, torch.Tensor]] = []
        self._fed: list[tuple[float, float]] = []

    @contextmanager
    def in_groups(self) -> Iterator[None]:
        """During a capture: the groups hold the device tensors, so the graph reads them; floats again after."""
        groups = self.optimizer.param_groups
        floats = [(group['lr'], group['betas']) for group in groups]
        device = groups[0]['params'][0].device
        dtype = groups[0]['params'][0].dtype
        # torch.full launches a fill: no copy from pageable host memory, so no sync
        self._tensors = [(torch.full((), float(lr), device=device, dtype=dtype),
                          torch.full((), float(betas[0]), device=device, dtype=dtype)) for lr, betas in floats]
        self._fed = [(float(lr), float(betas[0])) for lr, betas in floats]
        try:
            for group, (lr, beta1) in zip(groups, self._tensors, strict=True):
                group['lr'] = lr
                group['betas'] = (beta1, *group['betas'][1:])
            yield
        finally:
            for group, (lr, betas) in zip(groups, floats, strict=True):
                group['lr'], group['betas'] = lr, betas

    def feed(self) -> None:
        """Write each group's current lr and betas[0] into the graph's tensors where they changed."""
        for index, (group, (lr_tensor, beta1_tensor)) in enumerate(
                zip(self.optimizer.param_groups, self._tensors, strict=True)):
            lr, beta1 = float(group['lr']), float(group['betas'][0])
            fed_lr, fed_beta1 = self._fed[index]
            if lr != fed_lr:
                lr_tensor.fill_(lr)
            if beta1 != fed_beta1:
                beta1_tensor.fill_(beta1)
            self._fed[index] = (lr, beta1)

    @staticmethod
    def fixed_part(key: str, value: object) -> object:
        """What of a group's `key` the graph still holds fixed (None where the tensors carry it)."""
        if key == 'lr':
            return None
        if key == 'betas' and isinstance(value, tuple):
            return value[1:]
        return value
