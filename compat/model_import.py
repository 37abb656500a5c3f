"""Rebuild models from the import metadata that Lernomatic checkpoints carry."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

import torch

from compat.errors import CheckpointError

__all__ = ['import_attribute', 'build_module', 'build_wrapper', 'load_state_dict_checked', 'MODEL_KEYS']

# The keys of a model metadata dict (`LernomaticModel.get_params()`); 'model_args' is optional.
MODEL_KEYS = ('model_state_dict', 'model_name', 'model_import_path', 'module_name', 'module_import_path')


def _module_path(import_path: str) -> str:
    """The user guide stored paths such as 'pkg.new_network.py': the suffix is not part of the module."""
    return import_path[:-3] if import_path.endswith('.py') else import_path


def import_attribute(import_path: str, name: str) -> Any:
    """`getattr(importlib.import_module(import_path), name)`, with errors that name both."""
    if not isinstance(import_path, str) or not import_path:
        raise CheckpointError(f'import path {import_path!r} is not a module path')
    module_path = _module_path(import_path)
    try:
        module = importlib.import_module(module_path)
    except ImportError as error:
        raise CheckpointError(f'cannot import module {module_path!r} (needed for {name!r}): {error}. '
                              'Is the folder that holds it on sys.path?') from error
    try:
        return getattr(module, name)
    except AttributeError as error:
        raise CheckpointError(f'module {module_path!r} has no {name!r}') from error


def check_model_params(params: Any, where: str = 'model metadata') -> Mapping[str, Any]:
    """Fail with the missing key's name unless `params` is a model metadata dict."""
    if not isinstance(params, Mapping):
        raise CheckpointError(f'{where}: expected a model metadata dict, got {type(params).__name__}')
    missing = [key for key in MODEL_KEYS if key not in params]
    if missing:
        raise CheckpointError(f'{where}: missing key(s) {", ".join(missing)}')
    return params


def build_module(module_import_path: str, module_name: str, model_args: Mapping[str, Any] | None) -> torch.nn.Module:
    """Construct the `nn.Module` a checkpoint names, with its stored constructor kwargs."""
    module_class = import_attribute(module_import_path, module_name)
    return module_class(**dict(model_args or {}))


def build_wrapper(params: Mapping[str, Any], where: str = 'model metadata') -> Any:
    """Construct the `LernomaticModel` wrapper a checkpoint names and load its weights into it."""
    params = check_model_params(params, where)
    wrapper_class = import_attribute(params['model_import_path'], params['model_name'])
    wrapper = wrapper_class()
    wrapper.set_params(params)
    return wrapper


def load_state_dict_checked(net: torch.nn.Module, state_dict: Mapping[str, Any], where: str) -> None:
    """`load_state_dict`, but a mismatch names the missing, unexpected and mis-shaped tensors."""
    own = net.state_dict()
    missing = [k for k in own if k not in state_dict]
    unexpected = [k for k in state_dict if k not in own]
    mis_shaped = [f'{k}: file {tuple(state_dict[k].shape)} vs model {tuple(own[k].shape)}'
                  for k in own if k in state_dict and hasattr(state_dict[k], 'shape')
                  and tuple(state_dict[k].shape) != tuple(own[k].shape)]
    if missing or unexpected or mis_shaped:
        parts = []
        if missing:
            parts.append('missing ' + ', '.join(missing))
        if unexpected:
            parts.append('unexpected ' + ', '.join(unexpected))
        if mis_shaped:
            parts.append('shape mismatch ' + '; '.join(mis_shaped))
        raise CheckpointError(f'{where}: state dict does not fit {type(net).__name__}: ' + '; '.join(parts))
    net.load_state_dict(state_dict)
