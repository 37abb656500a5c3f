"""Data parallel training for hand-written loops that call `loss.backward()` and `optimizer.step()` themselves.

Lightning's DDP wraps the LightningModule, whose forward is one whole training step: a legacy
loop's own backward passes would happen before DDP had prepared its reducer. Instead each network
the trainer holds gets its own `DistributedDataParallel`, and the network's own forward calls
(`self.model.forward(x)`, that is `net(x)`) run DDP's forward preparation through module hooks:
DDP's reducer then all-reduces the gradients in buckets while backward runs, exactly as if the
loop called the DDP wrapper. The user's networks are not replaced: their attributes, methods and
state dict keys stay as they were (`compat.loop.ddp_hooks` holds the torch internals this uses).

What DDP's reducer does not see is averaged at the optimizer's step instead, parameter by
parameter: gradients that reached a parameter while its network's reducer was not prepared (a
submodule or method called outside the network's forward, such as `net.encoder(x)`; a second
backward pass through a graph whose first pass already finished that network's reduction, with
`retain_graph=True`), and parameters outside every network (a bare `nn.Parameter`). A loop that
calls its networks through their forward has none of these: its only all-reduces are DDP's own.
`DataParallelHeld.fallback_params` counts the parameters that needed one.
"""

from __future__ import annotations

import atexit
from collections.abc import Iterable, Iterator
from functools import cache
from typing import Any

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from compat.codec.rng import capture_rng_state, restore_rng_state
from compat.lightning_internals import UnwrappedDDPStrategy
from compat.loop.ddp_hooks import comm_hook, forward_through

__all__ = ['DataParallelHeld', 'average_gradients', 'broadcast_module', 'share_generators',
           'strategy_for_hand_written_loops']

_START_METHODS = {'ddp': 'popen', 'ddp_spawn': 'spawn', 'ddp_fork': 'fork', 'ddp_notebook': 'fork'}
_FIND_UNUSED = '_find_unused_parameters_true'


def strategy_for_hand_written_loops(strategy: Any, num_nodes: int = 1) -> Any:
    """Swap a DDP strategy name for a strategy that leaves the module unwrapped; anything else as it is.

    'auto' on several machines is 'ddp', as Lightning would choose. A name ending in
    `_find_unused_parameters_true` makes every network's DDP look for parameters a forward left unused.
    """
    if isinstance(strategy, str):
        name = 'ddp' if strategy == 'auto' and num_nodes > 1 else strategy
        find_unused = name.endswith(_FIND_UNUSED)
        name = name.replace(_FIND_UNUSED, '').replace('_find_unused_parameters_false', '')
        if name in _START_METHODS:
            return UnwrappedDDPStrategy(lambda module: _attach(module, find_unused),
                                        start_method=_START_METHODS[name])
    return strategy


def _attach(module: Any, find_unused: bool) -> None:
    """Lightning's `configure_ddp`: the bridge's held networks get their DDP (the bridge keeps it)."""
    broadcast_module(module)
    module.data_parallel = DataParallelHeld(module.held.values(), module.device, find_unused)


def broadcast_module(module: torch.nn.Module) -> None:
    """Give every rank rank 0's parameters and buffers."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return
    with torch.no_grad():
        for tensor in module.state_dict().values():
            if isinstance(tensor, torch.Tensor):
                dist.broadcast(tensor, src=0)


def share_generators(device: torch.device) -> None:
    """Give every rank rank 0's random generators (torch, CUDA, numpy, Python), once, as training starts.

    Ranks then draw alike for the whole run (dropout masks, augmentation noise, a GAN's latent
    vectors, DataLoader worker seeds), as `lightning.seed_everything` makes them, so the generator
    states rank 0 writes into a checkpoint are every rank's, and a resumed run goes on exactly on
    every rank. The data still differs: each rank has its own shard (`DistributedSampler`).
    """
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return
    box: list[Any] = [capture_rng_state() if dist.get_rank() == 0 else None]
    dist.broadcast_object_list(box, src=0, device=device if device.type == 'cuda' else None)
    if dist.get_rank() != 0:
        restore_rng_state(box[0])


def _outermost(modules: Iterable[torch.nn.Module]) -> list[torch.nn.Module]:
    """The modules with trainable parameters, largest first, each sharing no parameter with one taken before."""
    taken: set[torch.Tensor] = set()
    chosen = []
    for module in sorted(modules, key=lambda m: -sum(p.numel() for p in m.parameters())):
        params = {p for p in module.parameters() if p.requires_grad}
        if params and not params & taken:
            chosen.append(module)
            taken |= params
    return chosen


def _destroy_process_group() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


@cache
def destroy_process_group_at_exit() -> None:
    """Destroy the process group before the interpreter tears down (registered once per process).

    Left to interpreter shutdown, gloo's process group and the DDP reducers that used it were
    destroyed in no set order, and a worker that had finished its run now and then died of
    `terminate called without an active exception` (SIGABRT), failing its torchrun launch.
    """
    atexit.register(_destroy_process_group)


class DataParallelHeld:
    """A `DistributedDataParallel` for each held network, driven from the network's own forward calls.

    Args:
        modules: the networks the trainer holds (one DDP each; a network inside another is covered
            by the outer one's).
        device: where they are (a CUDA device gives DDP its `device_ids`).
        find_unused: DDP's `find_unused_parameters` (for networks whose forward leaves parameters unused).
    """

    def __init__(self, modules: Iterable[torch.nn.Module], device: torch.device, find_unused: bool = False) -> None:
        destroy_process_group_at_exit()
        device_ids = [device.index] if device.type == 'cuda' else None
        self.wrappers = [DistributedDataParallel(m, device_ids=device_ids, find_unused_parameters=find_unused)
                         for m in _outermost(modules)]
        self.training = False  # forwards prepare DDP's reducer only while a training epoch runs
        self.fallback_params = 0  # parameters whose gradient was averaged at a step, not by DDP's reducer
        self._unreduced: set[torch.Tensor] = set()  # gradient accumulated here since DDP last reduced it
        self._tracked: set[torch.Tensor] = set()
        self._handles: list[Any] = []
        for ddp in self.wrappers:
            ddp.register_comm_hook(None, comm_hook(self._reduced))
            self._handles += forward_through(ddp, lambda: self.training)
            self._track(ddp.module.parameters())

    def _track(self, params: Iterable[torch.Tensor]) -> None:
        for param in params:
            if param.requires_grad and param not in self._tracked:
                self._tracked.add(param)
                self._handles.append(param.register_post_accumulate_grad_hook(self._unreduced.add))

    def _reduced(self, params: list[torch.Tensor]) -> None:
        """DDP's reducer is averaging these parameters' gradients (one bucket of them)."""
        # torch runs a parameter's post-accumulate-grad hook before DDP's hook on the same gradient
        self._unreduced.difference_update(params)

    def before_step(self, optimizer: torch.optim.Optimizer) -> None:
        """Average, in one all-reduce, the gradients of `optimizer`'s parameters that DDP's reducer did not."""
        params = [p for group in optimizer.param_groups for p in group['params'] if p.requires_grad]
        stray = [p for p in params if p in self._unreduced or (p not in self._tracked and p.grad is not None)]
        self._track(params)  # an optimizer's parameters outside every network: watched from the next backward on
        if stray:
            average_gradients(stray)
            self._unreduced.difference_update(stray)
            self.fallback_params += len(stray)

    def detach(self) -> None:
        """Take the hooks off the user's networks and parameters."""
        for handle in self._handles:
            handle.remove()
        self._handles = []
        self.wrappers = []
        self._unreduced.clear()
        self._tracked.clear()


def _flat(params: list[torch.Tensor]) -> Iterator[torch.Tensor]:
    for param in params:
        yield (param.grad if param.grad is not None else torch.zeros_like(param)).reshape(-1).to(torch.float32)


def average_gradients(params: list[torch.Tensor]) -> None:
    """Average the gradients of `params` over all ranks, in one all-reduce.

    A parameter that has no gradient on any rank keeps none (so the optimizer skips it, as it would
    in one process); one that has a gradient somewhere gets the average, zeros counted elsewhere.
    """
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1 or not params:
        return
    device = params[0].device
    has_grad = torch.tensor([p.grad is not None for p in params], dtype=torch.float32, device=device)
    flat = torch.cat([*_flat(params), has_grad])
    dist.all_reduce(flat)
    flat /= dist.get_world_size()
    offset = 0
    flags = flat[-len(params):].tolist()  # one host read, not one per parameter
    for index, param in enumerate(params):
        count = param.numel()
        if flags[index] > 0:
            averaged = flat[offset:offset + count].view_as(param).to(param.dtype)
            if param.grad is None:
                param.grad = averaged.clone()
            else:
                param.grad.copy_(averaged)
        offset += count
