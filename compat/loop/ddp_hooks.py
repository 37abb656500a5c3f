"""The hooks that drive a `DistributedDataParallel` from outside its forward.

`forward_through`: a network's own forward calls run as `DistributedDataParallel.forward` would
run them around it; the one place that calls torch's private DDP methods. Why: a hand-written loop calls
`self.model.forward(x)`, which calls the user's network, not a DDP wrapper; replacing the network
by its wrapper would change what old code sees (`model.net.encoder`, state dict keys with
`module.`). DDP's `forward` is `_pre_forward` (prepare the reducer for the coming backward, sync
buffers, move inputs), the module's forward, `_post_forward`; module hooks run the two halves
around the network's own forward instead. Public replacement: none in torch (DDP offers no way to
prepare its reducer from outside its forward); Lightning's manual optimisation prepares it before
each `manual_backward`, which a plain `loss.backward()` never calls.

`comm_hook`: DDP's own bucket all-reduce, telling a caller which parameters it reduced. (No
`from __future__ import annotations` here: DDP checks the hook's annotations as objects.)
"""

from collections.abc import Callable
from typing import Any

import torch
import torch.distributed as dist
from torch.distributed.algorithms.ddp_comm_hooks.default_hooks import allreduce_hook
from torch.nn.parallel import DistributedDataParallel

__all__ = ['forward_through', 'comm_hook']


def comm_hook(reduced: Callable[[list[torch.Tensor]], None]) -> Callable[..., Any]:
    """A DDP communication hook: torch's default all-reduce (the average) of each bucket, after `reduced(params)`."""
    def hook(state: object, bucket: dist.GradBucket) -> torch.futures.Future[torch.Tensor]:
        reduced(bucket.parameters())
        return allreduce_hook(None, bucket)  # type: ignore[arg-type]  # None: the default group, as DDP's own
    return hook


def forward_through(ddp: DistributedDataParallel, active: Callable[[], bool]) -> list[Any]:
    """Hook `ddp.module` so that its forward calls go through DDP's forward steps while `active()`.

    Returns the hooks' handles (`remove()` each to undo).
    """
    def before(module: torch.nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if not active():
            return None
        return ddp._pre_forward(*args, **kwargs)

    def after(module: torch.nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any], output: Any) -> Any:
        if not active():
            return None
        return ddp._post_forward(output)

    module = ddp.module
    return [module.register_forward_pre_hook(before, with_kwargs=True, prepend=True),
            module.register_forward_hook(after, with_kwargs=True)]
