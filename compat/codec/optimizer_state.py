"""An optimizer's state from a file, checked against the optimizer and the parameters it is for.

`optimizer.state_dict()` is `{'state': {index: {key: value}}, 'param_groups': [{hyperparameter: value,
'params': [index, ...]}]}`. From a stranger's file, every part is checked before `load_state_dict`:
the state keys each torch optimizer keeps (`STATE_KEYS`), tensors plain (dense, contiguous, on the
CPU, of the parameter's shape where they are per element, each with memory of its own), counters
single values, and the hyperparameters valid for that optimizer (a scratch instance is built with them
and takes one step, so torch's own checks run and the group and state keys that step needs are known).
A user's own optimizer class (a subclass of torch's included) keeps state of its own: its values are
checked for plainness alone. How to compute (`foreach`, `fused`, `capturable`, `differentiable`) is this
machine's choice, not the file's: those flags come from the optimizer's defaults.

The state is checked against the optimizer the trainer actually builds (`optimizer_state_for`), not
the class `trainer_params['optim_function']` names: the original's zoo trainers build SGD in their
own `_init_optimizer` while that field keeps the default 'Adam', and their files hold SGD's state.
"""

from __future__ import annotations

import functools
import inspect
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from compat.errors import CheckpointError
from compat.text import short_repr

__all__ = ['STATE_KEYS', 'IMPLEMENTATION_FLAGS', 'plain_tensor_problem', 'checked_optimizer_state',
           'check_behaviour_flags', 'optimizer_state_for', 'optimizer_parameters', 'state_owner',
           'foreign_optimizer_state']

MAX_STATE_ENTRIES = 1_000_000
MAX_LIST_STATE = 10_000

# The state torch.optim's optimizers keep per parameter: (kept element-wise, shaped like the parameter;
# single values). LBFGS keeps its whole history under its first parameter: no shapes of its own.
STATE_KEYS: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    'Adam': (frozenset({'exp_avg', 'exp_avg_sq', 'max_exp_avg_sq'}), frozenset({'step'})),
    'AdamW': (frozenset({'exp_avg', 'exp_avg_sq', 'max_exp_avg_sq'}), frozenset({'step'})),
    'SparseAdam': (frozenset({'exp_avg', 'exp_avg_sq'}), frozenset({'step'})),
    'Adamax': (frozenset({'exp_avg', 'exp_inf'}), frozenset({'step'})),
    'NAdam': (frozenset({'exp_avg', 'exp_avg_sq'}), frozenset({'step', 'mu_product'})),
    'RAdam': (frozenset({'exp_avg', 'exp_avg_sq'}), frozenset({'step'})),
    'SGD': (frozenset({'momentum_buffer'}), frozenset()),
    'Muon': (frozenset({'momentum_buffer'}), frozenset()),
    'RMSprop': (frozenset({'square_avg', 'momentum_buffer', 'grad_avg'}), frozenset({'step'})),
    'Adagrad': (frozenset({'sum'}), frozenset({'step'})),
    'Adadelta': (frozenset({'square_avg', 'acc_delta'}), frozenset({'step'})),
    'ASGD': (frozenset({'ax'}), frozenset({'step', 'eta', 'mu'})),
    'Rprop': (frozenset({'prev', 'step_size'}), frozenset({'step'})),
    'Adafactor': (frozenset({'variance'}), frozenset({'step'})),  # plus row_var / col_var, shaped by factors
}
_FACTORED = frozenset({'row_var', 'col_var'})
_LBFGS = frozenset({'func_evals', 'n_iter', 'al', 'd', 't', 'old_dirs', 'old_stps', 'ro', 'H_diag',
                    'prev_flat_grad', 'prev_loss'})
IMPLEMENTATION_FLAGS = ('foreach', 'fused', 'capturable', 'differentiable')
OBJECTIVE_FLAGS = ('maximize',)
_KEPT_EXTRA_GROUP_KEYS = frozenset({'initial_lr'})  # torch's LR schedulers add it
_COUNTS = frozenset({'step'})  # a count of steps taken: never negative (bias corrections divide by 1 - beta**step)
# torch 1.8 to 2.0's SGD kept a None momentum buffer for each parameter when momentum was 0
_MAY_BE_NONE = {'SGD': frozenset({'momentum_buffer'})}
_ANY_MAY_BE_NONE = frozenset().union(*_MAY_BE_NONE.values())  # the optimizer not known yet
# Adafactor keeps row_var/col_var for matrices and variance for vectors: which depends on the parameter
_SHAPE_DEPENDENT = _FACTORED | frozenset({'variance'})


def plain_tensor_problem(tensor: torch.Tensor) -> str | None:
    """Why a tensor from a file is not a plain one (None when it is): sparse, quantized, meta, a view trick."""
    if tensor.layout != torch.strided or tensor.is_quantized or tensor.is_meta or tensor.device.type != 'cpu':
        return f'a {tensor.layout} {tensor.dtype} tensor on {tensor.device}: only dense tensors are read'
    if not tensor.is_contiguous():
        return 'a tensor whose memory does not match its shape (a strided or expanded view)'
    if tensor.requires_grad or type(tensor) is not torch.Tensor:
        return f'a {type(tensor).__name__} that is not a plain tensor'
    return None


def _error(fname: Any, where: str, reason: str) -> CheckpointError:
    return CheckpointError(f'{fname}: {where}: {reason}')


def _number(value: Any) -> bool:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.number)):
        return False
    try:
        return math.isfinite(float(value))
    except OverflowError:
        return False


def _hyperparameter(value: Any) -> bool:
    """A number, bool, None, short string, or a flat tuple/list of up to four of them: nothing else is one."""
    if value is None or isinstance(value, bool) or _number(value):
        return True
    if isinstance(value, str):
        return len(value) <= 100
    if isinstance(value, torch.Tensor):
        return value.dim() == 0 and plain_tensor_problem(value) is None
    return isinstance(value, (tuple, list)) and len(value) <= 4 and all(
        v is None or isinstance(v, bool) or _number(v) for v in value)


def _check_value(fname: Any, where: str, key: Any, value: Any, shape: tuple[int, ...] | None,
                 kind: str, complex_param: bool = False, nullable: bool = False) -> None:
    """One state value: `kind` is 'element-wise' (shaped like the parameter), 'single' (one value) or 'any'
    (a user's optimizer, or the parameters not yet known)."""
    if isinstance(value, torch.Tensor):
        problem = plain_tensor_problem(value)
        if problem:
            raise _error(fname, where, problem)
        if kind == 'element-wise' and shape is not None and tuple(value.shape) != shape:
            raise _error(fname, where, f'shape {tuple(value.shape)} but the parameter has {shape}')
        if value.is_complex() and not complex_param:
            raise _error(fname, where, f'{value.dtype} state for a real parameter')
        if shape is not None and kind == 'single' and key not in _LBFGS | _FACTORED and value.dim() != 0:
            raise _error(fname, where, f'a {tuple(value.shape)} tensor where one value belongs')
        if key in _COUNTS and value.dim() == 0 and not value.is_complex() and not _count(value.item()):
            raise _error(fname, where, f'{value.item()} is not a count of steps taken')
    elif isinstance(value, (list, tuple)) and key in _LBFGS:
        if len(value) > MAX_LIST_STATE or not all(v is None or isinstance(v, torch.Tensor)
                                                  and plain_tensor_problem(v) is None or _number(v) for v in value):
            raise _error(fname, where, 'a list that is not of plain tensors and numbers')
    elif value is None and (key in _LBFGS or nullable):
        return
    elif not _number(value):
        raise _error(fname, where, f'{short_repr(value)} is not optimizer state')
    elif kind == 'element-wise' and shape is not None:
        raise _error(fname, where, f'the number {short_repr(value)} where a tensor shaped like the parameter belongs')
    elif key in _COUNTS and not _count(value):
        raise _error(fname, where, f'{short_repr(value)} is not a count of steps taken')


def _count(value: Any) -> bool:
    return not isinstance(value, complex) and math.isfinite(float(value)) and float(value) >= 0


def _torch_optimizer_name(optimizer_class: type | None) -> str | None:
    """The name of a torch.optim optimizer class itself, whose state keys are known; None for any other class
    (a user's own optimizer, or a subclass of torch's: either may keep state of its own)."""
    module = getattr(optimizer_class, '__module__', None) or ''
    name = getattr(optimizer_class, '__name__', None)
    if (name in STATE_KEYS or name == 'LBFGS') and (module == 'torch.optim' or module.startswith('torch.optim.')):
        return name
    return None


def _allowed_keys(name: str | None) -> frozenset[str]:
    """The state keys the torch optimizer of this name keeps (empty for another class)."""
    element_wise, single = STATE_KEYS.get(name or '', (frozenset(), frozenset()))
    return element_wise | single | (_FACTORED if name == 'Adafactor' else frozenset()) | \
        (_LBFGS if name == 'LBFGS' else frozenset())


def _buildable(optimizer_class: type, scratch_param: torch.Tensor) -> bool:
    """Whether the class builds on one parameter with its own defaults: torch's do; a user's own optimizer
    with required arguments does not, and its values are then checked for shape alone (`_hyperparameter`)."""
    try:
        optimizer_class([scratch_param])
    except Exception:  # noqa: BLE001 - the user's class, whatever it raises
        return False
    return True


@functools.cache
def _group_keys_needed(optimizer_class: type) -> frozenset[str]:
    """The hyperparameters a torch optimizer's step reads that its loader does not fill in itself (the flags
    newer torch versions added, which older files lack): found by loading an empty group into a scratch one."""
    scratch_param = torch.zeros(1, 1, requires_grad=True)
    scratch = optimizer_class([scratch_param])
    every = frozenset(scratch.param_groups[0]) - {'params'}
    scratch.load_state_dict({'state': {}, 'param_groups': [{'params': [0]}]})
    return every - frozenset(scratch.param_groups[0])


def _state_keys_after_a_step(fname: Any, where: str, scratch: torch.optim.Optimizer,
                             scratch_param: torch.Tensor) -> frozenset[str]:
    """The state keys a torch optimizer holds for a parameter once it has stepped with these hyperparameters
    (Adam with amsgrad keeps max_exp_avg_sq, RMSprop centered grad_avg): a stored entry without one fails
    at the first step. A step that fails here would fail in training: refused."""
    sparse = type(scratch).__name__ == 'SparseAdam'  # it takes sparse gradients only
    scratch_param.grad = torch.zeros_like(scratch_param).to_sparse() if sparse else torch.zeros_like(scratch_param)
    try:
        scratch.step()
    except Exception as error:  # noqa: BLE001 - whatever the step raises, the values are refused
        raise _error(fname, where, f'{type(scratch).__name__} cannot take a step with these values: '
                     f'{short_repr(str(error), 200)}') from None
    return frozenset(scratch.state[scratch_param]) - _SHAPE_DEPENDENT


def _checked_group(fname: Any, where: str, group: Any, optimizer_class: type | None,
                   built_defaults: Mapping[str, Any] | None = None) -> tuple[dict[str, Any], frozenset[str]]:
    """The group to load (known keys, this machine's implementation flags), and the state keys each of its
    parameters' non-empty state must hold."""
    if not isinstance(group, Mapping) or not isinstance(group.get('params'), (list, tuple)):
        raise _error(fname, where, "expected a dict with a 'params' list")
    if not all(isinstance(i, int) and not isinstance(i, bool) for i in group['params']):
        raise _error(fname, f"{where}['params']", 'parameter ids must be integers')
    names = group.get('param_names')
    if names is not None and (not isinstance(names, (list, tuple)) or len(names) != len(group['params'])
                              or not all(isinstance(n, str) and len(n) <= 1000 for n in names)):
        raise _error(fname, f"{where}['param_names']", 'expected one short name per parameter')
    for key, value in group.items():
        if key not in ('params', 'param_names') and (not isinstance(key, str) or not _hyperparameter(value)):
            raise _error(fname, f'{where}[{short_repr(key)}]', f'{short_repr(value)} is not a hyperparameter')
    if optimizer_class is None:
        return dict(group), frozenset()
    scratch_param = torch.zeros(1, 1, requires_grad=True)  # a matrix: Muon takes nothing else
    defaults = dict(built_defaults) if built_defaults is not None else optimizer_class([scratch_param]).defaults
    known = set(defaults)
    accepted = set(inspect.signature(optimizer_class).parameters)
    hyper = {key: value for key, value in group.items()
             if key in known and key in accepted and key not in IMPLEMENTATION_FLAGS}
    needs: frozenset[str] = frozenset()
    if _buildable(optimizer_class, scratch_param):
        try:
            scratch = optimizer_class([scratch_param], **hyper)  # torch's checks of each value (lr >= 0, betas ...)
        except Exception as error:  # noqa: BLE001 - whatever the constructor raises, the value is refused
            raise _error(fname, where, f'not valid for {optimizer_class.__name__}: '
                         f'{short_repr(str(error), 200)}') from None
        if _torch_optimizer_name(optimizer_class) is not None:
            missing = sorted(_group_keys_needed(optimizer_class) - set(group))
            if missing:
                raise _error(fname, where, f'no {", ".join(missing)}: {optimizer_class.__name__} needs '
                             f'{"them" if len(missing) > 1 else "it"} to take a step')
            if optimizer_class.__name__ in STATE_KEYS:  # LBFGS steps with a closure only; its state is its own
                needs = _state_keys_after_a_step(fname, where, scratch, scratch_param)
    kept = {key: value for key, value in group.items() if key in known or key in _KEPT_EXTRA_GROUP_KEYS}
    kept.update({flag: defaults[flag] for flag in IMPLEMENTATION_FLAGS if flag in defaults})
    kept['params'] = list(group['params'])
    if names is not None:
        kept['param_names'] = list(names)
    return kept, needs


def check_behaviour_flags(optimizer: torch.optim.Optimizer, state: Mapping[str, Any], fname: Any,
                          field: str = "['optim']") -> None:
    """The file's `maximize` must be the one of the optimizer the trainer built: a file must not turn training
    into gradient ascent. The run's numbers (lr, momentum, betas) and its variant (amsgrad, nesterov) are
    the file's, as the original restored them."""
    for number, (built, stored) in enumerate(zip(optimizer.param_groups, state['param_groups'], strict=False)):
        for key in OBJECTIVE_FLAGS:
            if key in built and key in stored and stored[key] != built[key]:
                raise _error(fname, f"{field}['param_groups'][{number}][{key!r}]",
                             f'{short_repr(stored[key])}, but the trainer builds {type(optimizer).__name__} with '
                             f'{key}={built[key]}: a file does not turn minimising the loss into maximising it')


def checked_optimizer_state(state: Any, optimizer_class: type | None, params: Sequence[torch.Tensor] | None,
                            fname: Any, field: str = "['optim']",
                            built_defaults: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The optimizer state to load, every part checked; a CheckpointError names the part otherwise.

    Args:
        state: the stored `optimizer.state_dict()`.
        optimizer_class: the optimizer it is for (its state keys and hyperparameters are checked), or None
            (plain values only: for a file read before the trainer has built its optimizer).
        params: the parameters the optimizer steps, in `state_dict` order; None checks the structure alone.
        fname: the file, for error messages.
        field: where `state` sits in the file.
        built_defaults: the `defaults` of the optimizer instance it is for (a user's class may need arguments).

    Returns:
        A copy to load: the groups' implementation flags are the optimizer's defaults, unknown group keys dropped.
    """
    if not isinstance(state, Mapping) or not isinstance(state.get('state'), Mapping) \
            or not isinstance(state.get('param_groups'), (list, tuple)) or len(state['param_groups']) > 10_000:
        raise _error(fname, field, "expected an optimizer state dict with 'state' and 'param_groups'")
    checked_groups = [_checked_group(fname, f"{field}['param_groups'][{number}]", group, optimizer_class,
                                     built_defaults) for number, group in enumerate(state['param_groups'])]
    groups = [group for group, _ in checked_groups]
    needs = {index: group_needs for group, group_needs in checked_groups for index in group['params']}
    indices = [index for group in groups for index in group['params']]
    if len(set(indices)) != len(indices):
        raise _error(fname, f"{field}['param_groups']", 'names a parameter twice')
    if params is not None and len(indices) != len(params):
        raise _error(fname, f"{field}['param_groups']", f'covers {len(indices)} parameter tensors, '
                     f'the model has {len(params)}')
    shape_of = {index: None if params is None else tuple(param.shape)
                for index, param in zip(indices, params if params is not None else indices, strict=True)}
    complex_params = {index for index, param in zip(indices, params or (), strict=False) if param.is_complex()}
    if len(state['state']) > MAX_STATE_ENTRIES:
        raise _error(fname, f"{field}['state']", 'too many entries')
    name = _torch_optimizer_name(optimizer_class)
    element_wise = STATE_KEYS[name][0] if name in STATE_KEYS else frozenset()
    allowed = _allowed_keys(name)
    memory: dict[int, str] = {}
    for index, entry in state['state'].items():
        where = f"{field}['state'][{short_repr(index)}]"
        if index not in shape_of or not isinstance(entry, Mapping):
            raise _error(fname, where, 'not the state of one of the parameters')
        missing = sorted(needs.get(index, frozenset()) - set(entry)) if entry else []
        if missing:
            raise _error(fname, where, f'no {", ".join(missing)}: {name} keeps {"them" if len(missing) > 1 else "it"}'
                         ' for every parameter it has stepped, with these hyperparameters')
        for key, value in entry.items():
            if name is not None and key not in allowed:
                raise _error(fname, f'{where}[{short_repr(key)}]', f'{name} keeps no such state')
            kind = 'any' if name is None else 'element-wise' if key in element_wise else 'single'
            _check_value(fname, f'{where}[{short_repr(key)}]', key, value, shape_of[index], kind,
                         index in complex_params, key in (_MAY_BE_NONE.get(name, ()) if name else _ANY_MAY_BE_NONE))
            _check_own_memory(fname, f'{where}[{short_repr(key)}]', value, memory)
    return {'state': dict(state['state']), 'param_groups': groups}


def _check_own_memory(fname: Any, where: str, value: Any, memory: dict[int, str]) -> None:
    """Each stored tensor must have memory of its own: torch keeps it so, and `load_state_dict` keeps a file's
    tensors as they are, so two entries sharing memory (exp_avg and exp_avg_sq, one step counter for every
    parameter) would update each other at every step."""
    for tensor in value if isinstance(value, (list, tuple)) else (value,):
        if not isinstance(tensor, torch.Tensor) or tensor.untyped_storage().nbytes() == 0:
            continue
        address = tensor.untyped_storage().data_ptr()
        if address in memory:
            raise _error(fname, where, f'shares its memory with {memory[address]}: each state tensor has its own')
        memory[address] = where


def optimizer_parameters(optimizer: torch.optim.Optimizer) -> list[torch.Tensor]:
    """The parameters an optimizer steps, in the order of its `state_dict` indices."""
    return [param for group in optimizer.param_groups for param in group['params']]


def optimizer_state_for(optimizer: torch.optim.Optimizer, state: Any, fname: Any,
                        field: str = "['optim']") -> dict[str, Any]:
    """A file's optimizer state checked against the optimizer the trainer built, ready for `load_state_dict`.

    The original loaded the state into whatever its `_init_optimizer` built (SGD in the zoo's
    trainers), so that optimizer, not `optim_function`, says which state keys and hyperparameters fit.
    """
    groups = state.get('param_groups') if isinstance(state, Mapping) else None
    if isinstance(groups, (list, tuple)) and len(groups) != len(optimizer.param_groups):  # before any group's checks
        raise _error(fname, f"{field}['param_groups']", f'{len(groups)} parameter groups, but the trainer builds '
                     f'{type(optimizer).__name__} with {len(optimizer.param_groups)}')
    checked = checked_optimizer_state(state, type(optimizer), optimizer_parameters(optimizer), fname, field,
                                      built_defaults=optimizer.defaults)
    check_behaviour_flags(optimizer, checked, fname, field)
    return checked


def state_owner(optimizer_class: type | None, state: Any) -> str | None:
    """The torch optimizer whose state a file holds when it is not `optimizer_class`'s, else None.

    None too when the keys are no optimizer's at all (`checked_optimizer_state` refuses those) or
    when the class is not one of torch's (its state keys are not known).
    """
    name = _torch_optimizer_name(optimizer_class)
    if name not in STATE_KEYS or not isinstance(state, Mapping) or not isinstance(state.get('state'), Mapping):
        return None
    keys = {key for entry in state['state'].values() if isinstance(entry, Mapping) for key in entry}
    if keys <= _allowed_keys(name):
        return None
    owners = [other for other in (*STATE_KEYS, 'LBFGS') if other != name and keys <= _allowed_keys(other)]
    return min(owners, key=lambda other: len(_allowed_keys(other))) if owners else None  # SGD before Muon


def foreign_optimizer_state(optimizer: torch.optim.Optimizer, state: Any, fname: Any) -> str | None:
    """Why the file's optimizer state is not loaded into `optimizer`, or None when it is this optimizer's.

    A file may hold another torch optimizer's state: a zoo trainer's SGD state loaded into a
    `Trainer(None)`, which builds `optim_function`'s Adam. The original loaded it anyway and the first
    step failed on a missing key; here the weights and settings load, the optimizer starts afresh and
    this says so. State keys that no torch optimizer keeps are not another optimizer's: they are refused.
    """
    owner = state_owner(type(optimizer), state)
    if owner is None:
        return None
    name = type(optimizer).__name__
    keys = sorted({str(key) for entry in state['state'].values() if isinstance(entry, Mapping) for key in entry})
    return (f"{fname}: ['optim']: {owner}'s state ({', '.join(keys)}), but "
            f'this trainer builds {name}: loaded the model and settings, {name} starts afresh (load the file into '
            'the trainer class that wrote it to continue its optimizer)')
