"""Rebuild models from the import metadata that Lernomatic checkpoints carry, calling nothing unchecked.

The metadata names a wrapper class (a `LernomaticModel` subclass), an `nn.Module` class and the
kwargs to build it with. Before anything is called: every field has its type, the names pass the
trust policy (`compat.codec.trust`), the wrapper class is a `LernomaticModel` subclass and the module
class an `nn.Module` subclass, and the kwargs are plain values of a sane size. The module class
must also be one the wrapper stands for: the class its wrapper declares, a class defined beside the
wrapper class, or one under a trusted prefix. Where the module can be built on PyTorch's 'meta'
device, its tensor shapes are compared with the file's before any real memory is allocated.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from compat.codec.schema import MODEL_KEYS
from compat.codec.trust import LoadPolicy, current_policy, is_trusted_module, module_name, resolve_class
from compat.errors import CheckpointError
from compat.text import short_repr

__all__ = ['ModelMetadata', 'check_model_params', 'check_plain_value', 'model_classes', 'vet_model_names',
           'build_wrapper', 'rebuild_net', 'load_state_dict_checked']

MAX_ARGS_ITEMS = 10_000
MAX_ARGS_DEPTH = 16
MAX_STRING = 100_000
MAX_TENSORS = 1_000_000
MAX_STATE_ENTRIES = 1_000_000

_PLAIN_SCALARS = (bool, int, float, str, type(None), np.bool_, np.integer, np.floating)


def _error(policy: LoadPolicy, field: str, reason: str) -> CheckpointError:
    return CheckpointError(f'{policy.source}: {field}: {reason}')


def check_plain_value(value: Any, field: str, policy: LoadPolicy | None = None) -> None:
    """Refuse anything in `value` but numbers, strings, bools, None and lists/tuples/dicts of them, within limits."""
    policy = policy or current_policy()
    budget = [MAX_ARGS_ITEMS]

    def walk(item: Any, where: str, depth: int) -> None:
        budget[0] -= 1
        if budget[0] < 0:
            raise _error(policy, field, f'more than {MAX_ARGS_ITEMS} values: not a constructor\'s kwargs')
        if depth > MAX_ARGS_DEPTH:
            raise _error(policy, where, f'nested deeper than {MAX_ARGS_DEPTH} levels')
        if isinstance(item, str):
            if len(item) > MAX_STRING:
                raise _error(policy, where, f'a string of {len(item)} characters')
        elif isinstance(item, _PLAIN_SCALARS):
            return
        elif isinstance(item, (list, tuple)):
            for index, element in enumerate(item):
                walk(element, f'{where}[{index}]', depth + 1)
        elif isinstance(item, dict):
            for key, element in item.items():
                if not isinstance(key, str):
                    raise _error(policy, where,
                                 f'key {short_repr(key)} is a {type(key).__name__}: keys must be strings')
                walk(element, f'{where}[{short_repr(key)}]', depth + 1)
        else:
            raise _error(policy, where, f'a {type(item).__module__}.{type(item).__qualname__}: only numbers, '
                         'strings, bools, None and lists/tuples/dicts of them may be stored')

    walk(value, field, 0)


class ModelMetadata(dict):
    """A model metadata dict whose fields have been checked (`check_model_params` returns one, once)."""


def check_model_params(params: Any, field: str = "['model']", policy: LoadPolicy | None = None) -> ModelMetadata:
    """The model metadata dict, every field checked for its type; a CheckpointError names the field otherwise.

    The result is a `ModelMetadata`; passing one back returns it as it is, so one load checks once.
    """
    if isinstance(params, ModelMetadata):
        return params
    policy = policy or current_policy()
    if not isinstance(params, Mapping):
        raise _error(policy, field, f'expected a model metadata dict, got {type(params).__name__}')
    missing = [key for key in MODEL_KEYS if key not in params]
    if missing:
        raise _error(policy, field, f'missing key(s) {", ".join(missing)}')
    state = params['model_state_dict']
    if not isinstance(state, Mapping) or len(state) > MAX_TENSORS:
        raise _error(policy, f"{field}['model_state_dict']", f'expected a state dict, got {type(state).__name__}')
    for key, value in state.items():
        if not isinstance(key, str) or not isinstance(value, torch.Tensor):
            raise _error(policy, f"{field}['model_state_dict']",
                         f'entry {short_repr(key)} is a {type(value).__name__}: a state dict maps names to tensors')
    for key in ('model_import_path', 'module_import_path'):
        module_name(params[key], f'{field}[{key!r}]', policy)
    for key in ('model_name', 'module_name'):
        if not isinstance(params[key], str):
            raise _error(policy, f'{field}[{key!r}]',
                         f'a class name must be a string, not {type(params[key]).__name__}')
    args = params.get('model_args')
    if args is not None:
        if not isinstance(args, dict):
            raise _error(policy, f"{field}['model_args']", f'expected a dict of kwargs, got {type(args).__name__}')
        check_plain_value(args, f"{field}['model_args']", policy)
    return ModelMetadata(params)


def _declares(wrapper: Any, module_class: type, file_path: str, file_name: str) -> bool:
    """Whether the wrapper object itself stands for `module_class`: its own net is one, or it names it."""
    net = getattr(wrapper, 'net', None)
    if net is not None and type(net) is module_class:
        return True
    declared_path = getattr(wrapper, 'module_import_path', None)
    declared_name = getattr(wrapper, 'module_name', None)
    if not isinstance(declared_path, str) or not isinstance(declared_name, str):
        return False
    declared_path = declared_path[:-3] if declared_path.endswith('.py') else declared_path
    return (declared_path, declared_name) == (file_path, file_name)


def _shape_mismatch(own: Mapping[str, tuple], stored: Mapping[str, Any]) -> str | None:
    """What differs between a module's tensor shapes and a stored state dict, or None."""
    missing = [k for k in own if k not in stored]
    unexpected = [k for k in stored if k not in own]
    mis_shaped = [f'{k}: file {tuple(stored[k].shape)} vs model {own[k]}'
                  for k in own if k in stored and tuple(stored[k].shape) != own[k]]
    parts = []
    if missing:
        parts.append('missing ' + ', '.join(missing[:20]))
    if unexpected:
        parts.append('unexpected ' + ', '.join(unexpected[:20]))
    if mis_shaped:
        parts.append('shape mismatch ' + '; '.join(mis_shaped[:20]))
    return '; '.join(parts) or None


def _meta_shapes(module_class: type, args: dict[str, Any]) -> dict[str, tuple] | None:
    """The module's state-dict shapes, built on the 'meta' device (no memory, no random draws); None if it cannot be."""
    try:
        with torch.device('meta'):
            probe = module_class(**args)
        return {key: tuple(value.shape) for key, value in probe.state_dict().items()}
    except Exception:  # a constructor that needs real tensors: the check after building still applies
        return None


def _own_args(wrapper: Any) -> dict[str, Any]:
    """The model_args the wrapper builds its network with by itself (none declared: no args)."""
    get_args = getattr(wrapper, 'get_model_args', None)
    try:
        return dict(get_args()) if callable(get_args) else {}
    except Exception:  # a wrapper whose args depend on a net it has not built
        return {}


def model_classes(params: Mapping[str, Any], wrapper_base: type, field: str = "['model']",
                  wrapper: Any = None) -> tuple[type, type]:
    """The wrapper class and network class that metadata names, checked; nothing is built or loaded.

    The wrapper class must be a `wrapper_base` subclass and the network class an `nn.Module`
    subclass that the wrapper stands for: the class `wrapper` (an instance of the wrapper class,
    made here with no arguments when needed) builds or names, a class defined beside the wrapper
    class, or one under a trusted prefix.

    Args:
        params: the model metadata dict.
        wrapper_base: the `LernomaticModel` class (passed in: compat does not import lernomatic).
        field: where `params` sits in the file, for error messages.
        wrapper: the wrapper object the network is for, if there is one already.
    """
    policy = current_policy()
    meta = check_model_params(params, field, policy)
    wrapper_class = resolve_class(meta['model_import_path'], f"{field}['model_import_path']", meta['model_name'],
                                  f"{field}['model_name']", wrapper_base, policy)
    module_class = resolve_class(meta['module_import_path'], f"{field}['module_import_path']", meta['module_name'],
                                 f"{field}['module_name']", torch.nn.Module, policy)
    if policy.trusted or module_class.__module__ == wrapper_class.__module__ \
            or is_trusted_module(module_class.__module__, policy):
        return wrapper_class, module_class
    file_path = module_name(meta['module_import_path'], f"{field}['module_import_path']", policy)
    if _declares(wrapper if wrapper is not None else wrapper_class(), module_class, file_path, meta['module_name']):
        return wrapper_class, module_class
    raise _error(policy, f"{field}['module_name']",
                 f'{module_class.__module__}.{module_class.__name__} is not the network of '
                 f'{wrapper_class.__module__}.{wrapper_class.__name__}: the wrapper does not build it and it is '
                 'not defined beside the wrapper. Trust its module (trusted_modules=) if this is your own code')


def rebuild_net(params: Mapping[str, Any], wrapper: Any, wrapper_base: type, field: str = "['model']",
                ) -> torch.nn.Module:
    """Build the `nn.Module` that metadata names and load its weights, for `wrapper` (a `wrapper_base`).

    Args:
        params: the model metadata dict.
        wrapper: the wrapper object the net is for (what it declares decides which module classes it may get).
        wrapper_base: the `LernomaticModel` class (passed in: compat does not import lernomatic).
        field: where `params` sits in the file, for error messages.
    """
    policy = current_policy()
    meta = check_model_params(params, field, policy)
    _, module_class = model_classes(meta, wrapper_base, field, wrapper)
    args = dict(meta.get('model_args') or {})
    state = meta['model_state_dict']
    where = f'{policy.source}: {field}'
    shapes = _meta_shapes(module_class, args)
    if shapes is None and not policy.trusted and args != _own_args(wrapper):
        raise _error(policy, f"{field}['model_args']", f'{module_class.__name__} cannot be built on the meta device, '
                     "so these model_args, which differ from the wrapper's own, cannot be checked before the real "
                     'network is built (its memory taken): load the file with trusted=True if you trust it')
    if shapes is not None:
        mismatch = _shape_mismatch(shapes, state)
        if mismatch:
            raise CheckpointError(f'{where}: state dict does not fit {module_class.__name__}: {mismatch}')
    try:
        net = module_class(**args)
    except Exception as error:
        raise _error(policy, f"{field}['model_args']", f'building {module_class.__name__}(**model_args) failed: '
                     f'{type(error).__name__}: {error}') from error
    load_state_dict_checked(net, state, where)
    return net


def vet_model_names(params: Mapping[str, Any], wrapper: Any, wrapper_base: type, field: str = "['model']",
                    ) -> ModelMetadata:
    """Every class the metadata names, checked before a wrapper's `set_params` sees it.

    The original's own models (its WideResnet, DCGAN, autoencoder models, run from a checkout on
    LERNOMATIC_PATH) override `set_params` to import `module_import_path`, look up `module_name` and
    call it with `model_args`: whatever the file names would run. So the network class must pass
    `model_classes` first, and any other `<x>_import_path`/`<x>_name` pair the file holds must name an
    `nn.Module` class under the trust policy; an `<x>_import_path` without its name is refused.

    Returns:
        The metadata as such a `set_params` may use it: each import path the module that was checked (a
        `.py` suffix dropped: `import_module('pkg.nets.py')` would import a submodule `py` nobody checked),
        and the state dict of plain tensors with only module versions as metadata (its own
        `load_state_dict` would otherwise take an `assign_to_params_buffers` there and make the file's
        tensor objects, of any dtype, the network's parameters).
    """
    policy = current_policy()
    meta = check_model_params(params, field, policy)
    model_classes(meta, wrapper_base, field, wrapper)
    vetted = dict(meta)
    for key in meta:
        if not isinstance(key, str) or not key.endswith('import_path') or key in ('model_import_path',
                                                                                  'module_import_path'):
            continue
        name_key = key[:-len('import_path')] + 'name'
        if name_key not in meta:
            raise _error(policy, f'{field}[{key!r}]', f'names a module without a class ({name_key!r} is missing): '
                         'a model file names the classes that rebuild it, nothing else')
        resolve_class(meta[key], f'{field}[{key!r}]', meta[name_key], f'{field}[{name_key!r}]', torch.nn.Module, policy)
    for key in meta:
        if isinstance(key, str) and key.endswith('import_path'):
            vetted[key] = module_name(meta[key], f'{field}[{key!r}]', policy)
    vetted['model_state_dict'] = _plain_state_dict(meta['model_state_dict'], f'{policy.source}: {field}')
    return ModelMetadata(vetted)


def build_wrapper(params: Mapping[str, Any], wrapper_base: type, field: str = "['model']") -> Any:
    """Construct the wrapper a checkpoint names (checked to be a `wrapper_base`) and load its model into it."""
    policy = current_policy()
    meta = check_model_params(params, field, policy)
    wrapper_class = resolve_class(meta['model_import_path'], f"{field}['model_import_path']", meta['model_name'],
                                  f"{field}['model_name']", wrapper_base, policy)
    wrapper = wrapper_class()
    wrapper.set_params(vet_model_names(meta, wrapper, wrapper_base, field))
    return wrapper


def load_state_dict_checked(net: torch.nn.Module, state_dict: Mapping[str, Any], where: str) -> None:
    """`load_state_dict`, but only plain tensors of the right shapes go in, and a mismatch names them.

    The tensors are copied into the net's own parameters (never assigned: a file's tensor object
    must not become a live parameter), and of a state dict's `_metadata` only the module versions
    are passed on (an `assign_to_params_buffers` there would switch to assigning).
    """
    plain = _plain_state_dict(state_dict, where)
    own_tensors = net.state_dict()
    own = {key: tuple(value.shape) for key, value in own_tensors.items()}
    mismatch = _shape_mismatch(own, plain)
    if mismatch:
        raise CheckpointError(f'{where}: state dict does not fit {type(net).__name__}: {mismatch}')
    for key, value in plain.items():
        if value.is_complex() and not own_tensors[key].is_complex():  # copying would drop the imaginary part
            raise CheckpointError(f'{where}: state dict entry {short_repr(key, 60)} is {value.dtype}, '
                                  f'{type(net).__name__} keeps {own_tensors[key].dtype} there')
    net.load_state_dict(plain)


def _plain_state_dict(state_dict: Mapping[str, Any], where: str) -> OrderedDict[str, torch.Tensor]:
    """The state dict's dense tensors, detached, with the module versions of its `_metadata` and nothing else."""
    if len(state_dict) > MAX_STATE_ENTRIES:
        raise CheckpointError(f'{where}: a state dict of {len(state_dict)} entries')
    bad = [short_repr(key, 60) for key, value in state_dict.items()
           if not isinstance(key, str) or not isinstance(value, torch.Tensor)]
    if bad:
        raise CheckpointError(f'{where}: state dict entries {", ".join(bad[:10])} are not names of tensors')
    for key, value in state_dict.items():
        if value.layout != torch.strided or value.is_quantized or value.is_meta \
                or type(value) not in (torch.Tensor, torch.nn.Parameter):
            raise CheckpointError(f'{where}: state dict entry {short_repr(key, 60)} is a {value.layout} {value.dtype} '
                                  f'{type(value).__name__} on {value.device}: only dense tensors are read')
    plain: OrderedDict[str, torch.Tensor] = OrderedDict((key, value.detach()) for key, value in state_dict.items())
    plain._metadata = _versions_only(getattr(state_dict, '_metadata', None))  # type: ignore[attr-defined]
    return plain


def _versions_only(metadata: Any) -> dict[str, dict[str, int]]:
    """The module versions of a state dict's `_metadata` (what modules read to upgrade old weights), nothing else."""
    if not isinstance(metadata, Mapping) or len(metadata) > MAX_STATE_ENTRIES:
        return {}
    return {prefix: {'version': entry['version']} for prefix, entry in metadata.items()
            if isinstance(prefix, str) and isinstance(entry, Mapping) and type(entry.get('version')) is int}
