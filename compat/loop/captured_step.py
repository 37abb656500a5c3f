"""`cuda_graph=True`: the default training step (forward, loss, backward, optimizer step) as one CUDA graph.

On small models the GPU finishes a step long before Python has launched its hundred kernels;
replaying a captured graph launches them all at once. The first `WARMUP_STEPS` batches train
eagerly on a side stream (as graph capture requires), the next one is captured and replayed, and
every later batch of the same shape replays the graph. A batch of another shape (a last partial
batch) trains eagerly. Adam and AdamW read their learning rate and momentum from device tensors
(`compat.loop.graph_hyperparameters`), so schedules replay the same graph; changing any other
hyperparameter, those of other optimizers, or which parameters train captures again, since the
graph holds those values.

Adam-family optimizers run with `capturable=True` while the graph is in use (their step counter
lives on the GPU); files written meanwhile, and the optimizer afterwards, show the original setting.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import nullcontext
from typing import Any

import lightning
import torch

from compat.loop.graph_hyperparameters import GraphHyperparameters, reads_hyperparameters_from_device
from compat.loop.steps import lean_step_blockers

__all__ = ['CapturedStep', 'captured_step_blockers', 'make_capturable',
           'restore_capturable', 'WARMUP_STEPS']

WARMUP_STEPS = 3


def _graph_safe_optimizer(optimizer: torch.optim.Optimizer) -> bool:
    """Optimizers whose step makes no host read: those with a `capturable` mode, and SGD."""
    return 'capturable' in optimizer.defaults or isinstance(optimizer, torch.optim.SGD)


def captured_step_blockers(trainer: lightning.Trainer, optimizer: Any) -> list[str]:
    """Why the training step cannot be captured on `trainer`; empty when it can."""
    blockers = lean_step_blockers(trainer)
    if trainer.strategy.root_device.type != 'cuda':
        blockers.append(f'it needs a CUDA device, the run is on {trainer.strategy.root_device}')
    if not isinstance(optimizer, torch.optim.Optimizer) or not _graph_safe_optimizer(optimizer):
        blockers.append(f'{type(optimizer).__name__} has no capturable mode (Adam, AdamW, SGD, RMSprop ... have)')
    return blockers


def make_capturable(optimizer: torch.optim.Optimizer) -> list[bool] | None:
    """Put Adam-style step counters on the parameters' device for the run; returns each group's own setting.

    `restore_capturable` undoes it; None for optimizers without a capturable mode.
    """
    if 'capturable' not in optimizer.defaults:
        return None
    before = [group['capturable'] for group in optimizer.param_groups]
    for group in optimizer.param_groups:
        group['capturable'] = True
        for param in group['params']:
            step = optimizer.state.get(param, {}).get('step')
            if isinstance(step, torch.Tensor):
                optimizer.state[param]['step'] = step.to(param.device)
    return before


def restore_capturable(optimizer: torch.optim.Optimizer, before: list[bool] | None) -> None:
    """Give the optimizer back its own `capturable` settings (and its step counters on the CPU where they were)."""
    if before is None:
        return
    for group, was in zip(optimizer.param_groups, before, strict=True):
        group['capturable'] = was
        for param in group['params'] if not was else ():
            step = optimizer.state.get(param, {}).get('step')
            if isinstance(step, torch.Tensor):
                optimizer.state[param]['step'] = step.cpu()


def _graph_inputs(optimizer: torch.optim.Optimizer, fed: GraphHyperparameters | None) -> tuple:
    """What a captured graph holds fixed: every hyperparameter of every group that is not `fed` from device
    tensors, and which parameters train."""
    def fixed(key: str, value: Any) -> Any:
        value = fed.fixed_part(key, value) if fed is not None else value
        return ('tensor', id(value)) if isinstance(value, torch.Tensor) else value

    groups = tuple(tuple((key, fixed(key, value)) for key, value in group.items() if key != 'params')
                   for group in optimizer.param_groups)
    training = tuple(param.requires_grad for group in optimizer.param_groups for param in group['params'])
    return groups, training


class CapturedStep:
    """One training step per call, replayed from a CUDA graph where the batch allows.

    Args:
        forward: the model's forward.
        criterion: the loss.
        optimizer: the torch optimizer of the model's parameters.
        count_step: called around each optimizer step (before, after) so Lightning's `global_step` advances.
        run_state: the trainer's `RunState`, which keeps the optimizer's own `capturable` settings meanwhile.
    """

    def __init__(self, forward: Callable[[Any], Any], criterion: Callable[[Any, Any], torch.Tensor],
                 optimizer: torch.optim.Optimizer, count_step: tuple[Callable[[], None], Callable[[], None]],
                 run_state: Any) -> None:
        self.forward = forward
        self.criterion = criterion
        self.optimizer = optimizer
        self.count_step = count_step
        self.eager_steps = 0
        self.captures = 0
        self._graph: torch.cuda.CUDAGraph | None = None
        self._pool: Any = None
        self._shape: tuple = ()
        self._inputs: tuple = ()
        self._static: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None
        self._run_state = run_state
        run_state.capturable_before = make_capturable(optimizer)
        self._fed = GraphHyperparameters(optimizer) if reads_hyperparameters_from_device(optimizer) else None

    def __call__(self, data: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        before, after = self.count_step
        before()
        try:
            return self._step(data, target)
        finally:
            after()

    def _step(self, data: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if self.eager_steps < WARMUP_STEPS and self._graph is None:
            return self._warmup_step(data, target)
        shape = (data.shape, data.dtype, target.shape, target.dtype)
        if self._graph is None or (shape == self._shape and _graph_inputs(self.optimizer, self._fed) != self._inputs):
            self._capture(data, target, shape)
        if shape != self._shape:
            return self._eager_step(data, target, set_to_none=False)  # keeps the graph's gradient buffers
        graph, static = self._graph, self._static
        assert graph is not None and static is not None, 'recorded together by _capture() above'
        static_data, static_target, static_loss = static
        static_data.copy_(data)
        static_target.copy_(target)
        if self._fed is not None:
            self._fed.feed()
        graph.replay()
        return static_loss.clone()

    def _eager_step(self, data: torch.Tensor, target: torch.Tensor, set_to_none: bool) -> torch.Tensor:
        self.eager_steps += 1
        loss = self.criterion(self.forward(data), target)
        self.optimizer.zero_grad(set_to_none=set_to_none)
        loss.backward()
        self.optimizer.step()
        return loss.detach()

    def _warmup_step(self, data: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            loss = self._eager_step(data, target, set_to_none=True)
        torch.cuda.current_stream().wait_stream(side)
        return loss

    def _capture(self, data: torch.Tensor, target: torch.Tensor, shape: tuple) -> None:
        """Record one step on copies of this batch; the replay that follows trains on it."""
        static_data, static_target = data.clone(), target.clone()
        self.optimizer.zero_grad(set_to_none=True)  # gradients are allocated inside the graph
        graph = torch.cuda.CUDAGraph()
        with self._fed.in_groups() if self._fed is not None else nullcontext(), \
                torch.cuda.graph(graph, pool=self._pool, capture_error_mode='thread_local'):
            loss = self.criterion(self.forward(static_data), static_target)
            loss.backward()
            self.optimizer.step()
        self._graph, self._pool, self._shape = graph, graph.pool(), shape
        self._static = (static_data, static_target, loss.detach())
        self._inputs = _graph_inputs(self.optimizer, self._fed)
        self.captures += 1

    def close(self) -> None:
        """Free the graph and give the optimizer back its own settings."""
        self._graph = self._static = self._pool = None
        restore_capturable(self.optimizer, self._run_state.capturable_before)
        self._run_state.capturable_before = None
