"""The random number generators' states, saved in checkpoints so a resumed run draws what the whole run drew.

With `shuffle=True` each epoch's order comes from torch's global generator (the DataLoader's
sampler draws its seed from it), as do dropout masks and worker seeds: restoring it at a resume
makes the following epochs identical to an uninterrupted run.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

__all__ = ['capture_rng_state', 'restore_rng_state', 'RESTORE_AT_EPOCH_START', 'restore_pending']

# The trainer attribute holding a checkpoint's generator state until the next training epoch starts.
RESTORE_AT_EPOCH_START = '_rng_state_at_next_epoch'


def capture_rng_state() -> dict[str, Any]:
    """torch (CPU and every CUDA device), numpy and Python `random` states, as plain picklable values."""
    state: dict[str, Any] = {'torch': torch.get_rng_state(), 'numpy': np.random.get_state(),
                             'python': random.getstate()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state['cuda'] = torch.cuda.get_rng_state_all()
    return state


def restore_pending(holder: Any) -> None:
    """Restore (once) a generator state a loaded checkpoint left for the start of the next epoch."""
    state = holder.__dict__.pop(RESTORE_AT_EPOCH_START, None)
    if state is not None:
        restore_rng_state(state)


def restore_rng_state(state: Mapping[str, Any]) -> None:
    """Put back what `capture_rng_state` saved; CUDA states are skipped on a machine without them."""
    if 'torch' in state:
        torch.set_rng_state(torch.as_tensor(state['torch'], dtype=torch.uint8).cpu())
    if 'numpy' in state:
        np.random.set_state(tuple(state['numpy']))
    if 'python' in state:
        version, internal, gauss = state['python']
        random.setstate((version, tuple(internal), gauss))
    cuda_states = state.get('cuda')
    if cuda_states and torch.cuda.is_available() and len(cuda_states) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all([torch.as_tensor(s, dtype=torch.uint8).cpu() for s in cuda_states])
