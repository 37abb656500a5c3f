"""Which process is rank zero: the only one that writes files or logs under DDP."""

from __future__ import annotations

import os

import torch.distributed as dist

__all__ = ['is_rank_zero', 'global_rank']


def global_rank() -> int:
    """This process's rank: from torch.distributed once set up, else from the launcher's env."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank()
    return int(os.environ.get('RANK', os.environ.get('LOCAL_RANK', 0)))


def is_rank_zero() -> bool:
    return global_rank() == 0
