"""Test helpers: the shape of a saved object, and the original's way of reading a checkpoint."""

from __future__ import annotations

import importlib
from collections import OrderedDict
from typing import Any

import numpy as np
import torch


def signature(obj: Any) -> Any:
    """Keys, order and types of a nested object, without the values: two files of one format match."""
    if isinstance(obj, dict):
        return (type(obj).__name__, [(key, signature(value)) for key, value in obj.items()])
    if isinstance(obj, torch.Tensor):
        return ('Tensor', str(obj.dtype), obj.dim())
    if isinstance(obj, np.ndarray):
        return ('ndarray', str(obj.dtype), obj.ndim)
    if isinstance(obj, (list, tuple)):
        return (type(obj).__name__, [signature(item) for item in obj])
    return type(obj).__name__


def original_style_load(fname: Any) -> Any:
    """Read a checkpoint the way the original Lernomatic's Trainer.load_checkpoint did.

    A bare `torch.load` (weights-only by default on torch >= 2.6), `importlib` on the stored import
    path, the wrapper's no-argument constructor, then the module class and `load_state_dict`.
    """
    data = torch.load(fname)
    meta = data['model']
    wrapper = getattr(importlib.import_module(meta['model_import_path']), meta['model_name'])()
    module_class = getattr(importlib.import_module(meta['module_import_path']), meta['module_name'])
    wrapper.net = module_class()
    wrapper.net.load_state_dict(meta['model_state_dict'])
    optimizer = getattr(torch.optim, data['trainer_params']['optim_function'])(
        wrapper.net.parameters(), lr=data['trainer_params']['learning_rate'])
    optimizer.load_state_dict(data['optim'])
    return wrapper, optimizer, data['trainer_params']


def state_dicts_equal(a: 'OrderedDict[str, torch.Tensor]', b: 'OrderedDict[str, torch.Tensor]') -> bool:
    return list(a) == list(b) and all(torch.equal(a[k].cpu(), b[k].cpu()) for k in a)
