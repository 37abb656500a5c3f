"""The reference for `cuda_graph=True`: a whole training step captured by hand in one CUDA graph.

Forward, loss, backward and `Adam(capturable=True).step()` are captured once; each batch from the
loader is then copied into the graph's static input tensors and the graph replayed. This is what
an expert writes by hand (PyTorch's "whole network capture" recipe) over the same loader the other
styles read, so `cuda_graph=True` can be held against it. The first batches train eagerly on a
side stream (capture needs warmed-up allocations), as `cuda_graph=True` does; a batch of another
shape trains eagerly. On the CPU nothing is captured: the same loop runs its eager steps through
the static tensors, which proves the code runs but times nothing worth reporting.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

import torch

__all__ = ['EAGER_BATCHES', 'run_graph']

EAGER_BATCHES = 3  # trained eagerly before the capture, as compat/loop/captured_step.py does


def _eager_step(model: torch.nn.Module, optimizer: torch.optim.Optimizer, criterion: Callable,
                data: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    optimizer.zero_grad(set_to_none=True)
    loss = criterion(model(data), target)
    loss.backward()
    optimizer.step()
    return loss


class _CapturedStep:
    """Static inputs and, once captured, the graph of one whole training step over them."""

    def __init__(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer, criterion: Callable,
                 data: torch.Tensor, target: torch.Tensor, device: str) -> None:
        self.model, self.optimizer, self.criterion = model, optimizer, criterion
        self.data = torch.empty_like(data, device=device)
        self.target = torch.empty_like(target, device=device)
        self.graph: torch.cuda.CUDAGraph | None = None
        self.eager_left = EAGER_BATCHES

    def fits(self, data: torch.Tensor, target: torch.Tensor) -> bool:
        return data.shape == self.data.shape and target.shape == self.target.shape

    def __call__(self, data: torch.Tensor, target: torch.Tensor) -> None:
        self.data.copy_(data, non_blocking=True)
        self.target.copy_(target, non_blocking=True)
        if self.graph is not None:
            self.graph.replay()
        elif self.eager_left > 0 or self.data.device.type != 'cuda':
            self.eager_left -= 1
            self._on_side_stream(lambda: _eager_step(self.model, self.optimizer, self.criterion, self.data,
                                                     self.target))
        else:
            self._capture()
            self.graph.replay()  # the capture itself does not run the step

    def _on_side_stream(self, work: Callable[[], object]) -> None:
        if self.data.device.type != 'cuda':
            work()
            return
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            work()
        torch.cuda.current_stream().wait_stream(side)

    def _capture(self) -> None:
        self.optimizer.zero_grad(set_to_none=True)  # backward in the graph allocates the grads from its pool
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            loss = self.criterion(self.model(self.data), self.target)
            loss.backward()
            self.optimizer.step()


def run_graph(net: torch.nn.Module, loader: Iterable, steps: int, warmup: int, device: str) -> float | None:
    """Steps per second of the hand-captured step over `loader`, timed from batch `warmup` (None on the CPU)."""
    model = net.to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, capturable=device == 'cuda')
    criterion = torch.nn.CrossEntropyLoss()
    step: _CapturedStep | None = None
    started = None
    for index, (data, target) in enumerate(loader):
        if index == steps:
            break  # batches after `steps` are the epoch's untimed tail
        if index == warmup:
            _sync(device)
            started = time.perf_counter()
        if step is None:
            step = _CapturedStep(model, optimizer, criterion, data, target, device)
        if step.fits(data, target):
            step(data, target)  # the host batch is copied straight into the graph's inputs
        else:  # a last, partial batch: the graph is for one shape
            _eager_step(model, optimizer, criterion, data.to(device), target.to(device))
    _sync(device)
    if device != 'cuda' or started is None:
        return None
    return (steps - warmup) / (time.perf_counter() - started)


def _sync(device: str) -> None:
    if device == 'cuda':
        torch.cuda.synchronize()
