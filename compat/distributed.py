"""Which process is rank zero (the only one that writes files or logs), and which strategies a run may use.

Ranks are global: on several machines (`num_nodes`), rank zero is one process of the whole run,
not one per machine, so a checkpoint directory shared by the machines gets one set of files.
"""

from __future__ import annotations

import os
from typing import Any

import torch.distributed as dist

__all__ = ['is_rank_zero', 'global_rank', 'strategy_problem', 'REFUSED_STRATEGIES']

# Strategies refused before any work, and why (docs/cluster.md).
REFUSED_STRATEGIES = {
    'fsdp': "Lightning's FSDP needs CUDA GPUs, and a sharded model's checkpoint would need its full state "
            "gathered on rank 0 for the original's .pkl format, which is not built or verified here: use "
            "strategy='ddp' (the model is copied whole on every GPU)",
}


def global_rank() -> int:
    """This process's rank in the whole run (all machines).

    From torch.distributed once it is set up; before that from the launcher's environment, in the
    order Lightning reads it: torchrun's `RANK`, the `LOCAL_RANK` that Lightning's own launcher
    gives the processes it starts (on a machine whose `NODE_RANK` is not 0, none of them is rank
    zero), then SLURM's `SLURM_PROCID`.
    """
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank()
    if 'RANK' in os.environ:
        return int(os.environ['RANK'])
    if 'LOCAL_RANK' in os.environ:
        if int(os.environ.get('NODE_RANK', os.environ.get('GROUP_RANK', '0'))) != 0:
            return -1  # a later machine's process before the run has started: not rank zero
        return int(os.environ['LOCAL_RANK'])
    return int(os.environ.get('SLURM_PROCID', 0))


def is_rank_zero() -> bool:
    return global_rank() == 0


def strategy_problem(strategy: Any) -> str | None:
    """Why a `strategy` option is refused here (None when it is not)."""
    name = strategy if isinstance(strategy, str) else getattr(type(strategy), 'strategy_name', '')
    for refused, why in REFUSED_STRATEGIES.items():
        if isinstance(name, str) and name.startswith(refused):
            return why
    return None
