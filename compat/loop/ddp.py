"""Data parallel training for hand-written loops that call `loss.backward()` themselves.

Lightning's DDP wraps the LightningModule, and its reducer only syncs backward passes that
Lightning prepared; a legacy loop's own backward passes (a GAN does two a batch, with parts of the
graph unused) would be missed or trip it. Instead: no wrapper, module states broadcast from rank 0
when training starts, and gradients averaged over ranks whenever an optimizer steps. Every rank
then applies the same update, as under DDP.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.distributed as dist

from compat.lightning_internals import UnwrappedDDPStrategy

__all__ = ['average_gradients', 'broadcast_module', 'strategy_for_hand_written_loops']

_START_METHODS = {'ddp': 'popen', 'ddp_spawn': 'spawn', 'ddp_fork': 'fork', 'ddp_notebook': 'fork'}


def strategy_for_hand_written_loops(strategy: Any) -> Any:
    """Swap a DDP strategy name for an unwrapped DDP strategy; anything else is returned as it is."""
    if isinstance(strategy, str):
        name = strategy.replace('_find_unused_parameters_true', '').replace('_find_unused_parameters_false', '')
        if name in _START_METHODS:
            return UnwrappedDDPStrategy(broadcast_module, start_method=_START_METHODS[name])
    return strategy


def broadcast_module(module: torch.nn.Module) -> None:
    """Give every rank rank 0's parameters and buffers."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return
    with torch.no_grad():
        for tensor in module.state_dict().values():
            if isinstance(tensor, torch.Tensor):
                dist.broadcast(tensor, src=0)


def average_gradients(optimizer: torch.optim.Optimizer) -> None:
    """Average the gradients of an optimizer's parameters over all ranks, in one all-reduce.

    A parameter that has no gradient on any rank keeps none (so the optimizer skips it, as it would
    in one process); one that has a gradient somewhere gets the average, zeros counted elsewhere.
    """
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return
    params = [p for group in optimizer.param_groups for p in group['params'] if p.requires_grad]
    if not params:
        return
    device = params[0].device
    has_grad = torch.tensor([p.grad is not None for p in params], dtype=torch.float32, device=device)
    pieces = [(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1).to(torch.float32) for p in params]
    flat = torch.cat(pieces + [has_grad])
    dist.all_reduce(flat)
    flat /= dist.get_world_size()
    offset = 0
    flags = flat[-len(params):].tolist()  # one host read per step, not one per parameter
    for index, param in enumerate(params):
        count = param.numel()
        if flags[index] > 0:
            averaged = flat[offset:offset + count].view_as(param).to(param.dtype)
            if param.grad is None:
                param.grad = averaged.clone()
            else:
                param.grad.copy_(averaged)
        offset += count
