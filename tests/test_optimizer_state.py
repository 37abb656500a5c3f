"""An optimizer's state from a file: every torch.optim optimizer's own state loads, anything else is refused.

The table of state keys (`STATE_KEYS`) is checked against this torch: each optimizer takes one step
and its `state_dict()` must pass the checks and load back. Hostile state (sparse or strided tensors,
keys the optimizer does not keep, hyperparameters torch refuses) is refused with the field named;
how to compute (`foreach`, `fused`, `capturable`) is this machine's choice, never the file's.
"""

from __future__ import annotations

import copy

import pytest
import torch

from compat.codec.optimizer_state import STATE_KEYS, checked_optimizer_state
from compat.errors import CheckpointError
from compat.optim import optimizer_class

OPTIMIZER_NAMES = sorted(name for name in dir(torch.optim) if isinstance(getattr(torch.optim, name), type)
                         and issubclass(getattr(torch.optim, name), torch.optim.Optimizer)
                         and name not in ('Optimizer',) and not name.startswith('_'))


def _stepped(name: str, **options):
    """A small model and `name`'s optimizer after one step (Muon takes matrices only, SparseAdam sparse grads)."""
    torch.manual_seed(0)
    if name == 'SparseAdam':
        net = torch.nn.Embedding(5, 3, sparse=True)
        loss_of = lambda: net(torch.tensor([0, 2])).pow(2).sum()  # noqa: E731
    else:
        net = torch.nn.Linear(3, 2, bias=name != 'Muon')
        loss_of = lambda: net(torch.randn(4, 3)).pow(2).sum()  # noqa: E731
    params = list(net.parameters())
    optimizer = optimizer_class(name)(params, **({} if name == 'LBFGS' else {'lr': 0.01}), **options)

    def closure():
        optimizer.zero_grad()
        loss = loss_of()
        loss.backward()
        return loss
    optimizer.step(closure)
    return params, optimizer


@pytest.mark.parametrize('name', OPTIMIZER_NAMES)
def test_every_torch_optimizer_state_passes_and_loads_back(name):
    params, optimizer = _stepped(name)
    stored = optimizer.state_dict()
    kept = {key for entry in stored['state'].values() for key in entry}
    if name != 'LBFGS':
        element_wise, single = STATE_KEYS[name]
        assert kept <= element_wise | single | {'row_var', 'col_var'}, (name, kept)
    checked = checked_optimizer_state(copy.deepcopy(stored), type(optimizer), params, 'f.pkl')
    fresh = type(optimizer)(params, **({} if name == 'LBFGS' else {'lr': 0.01}))
    fresh.load_state_dict(checked)
    assert fresh.state_dict()['param_groups'] == stored['param_groups']
    for index, entry in stored['state'].items():
        for key, value in entry.items():
            if isinstance(value, torch.Tensor):
                assert torch.equal(fresh.state_dict()['state'][index][key], value), (name, key)


@pytest.mark.parametrize('name, options', [('SGD', {'momentum': 0.9, 'nesterov': True}), ('Adam', {'amsgrad': True}),
                                           ('RMSprop', {'momentum': 0.5, 'centered': True}),
                                           ('AdamW', {'amsgrad': True})])
def test_optional_state_of_an_option_passes(name, options):
    params, optimizer = _stepped(name, **options)
    checked_optimizer_state(optimizer.state_dict(), type(optimizer), params, 'f.pkl')


def _adam_state():
    params, optimizer = _stepped('Adam')
    return params, copy.deepcopy(optimizer.state_dict())


def _refused(state, params, *fragments):
    with pytest.raises(CheckpointError) as refusal:
        checked_optimizer_state(state, torch.optim.Adam, params, 'evil.pkl')
    for fragment in ('evil.pkl', *fragments):
        assert fragment in str(refusal.value), str(refusal.value)


def test_hostile_state_tensors_are_refused():
    params, state = _adam_state()
    weight = params[0]
    cases = {
        'sparse': (torch.zeros(weight.shape).to_sparse(), 'only dense tensors'),
        'expanded view': (torch.zeros(1).expand(weight.shape), 'memory does not match its shape'),
        'wrong shape': (torch.zeros(7), 'shape (7,)'),
        'needs grad': (torch.zeros(weight.shape, requires_grad=True), 'not a plain tensor'),
    }
    for tensor, reason in cases.values():
        bad = copy.deepcopy(state)
        bad['state'][0]['exp_avg'] = tensor
        _refused(bad, params, "['state'][0]['exp_avg']", reason)
    bad = copy.deepcopy(state)
    bad['state'][0]['step'] = torch.zeros(3)
    _refused(bad, params, "['step']", 'where one value belongs')
    bad = copy.deepcopy(state)
    bad['state'][0]['momentum_buffer'] = torch.zeros(weight.shape)
    _refused(bad, params, 'Adam keeps no such state')
    bad = copy.deepcopy(state)
    bad['state'][0]['exp_avg_sq'] = 'rm -rf /'
    _refused(bad, params, 'is not optimizer state')


def test_hyperparameters_torch_refuses_are_refused_by_name():
    params, state = _adam_state()
    for key, value, reason in [('lr', -1.0, 'Invalid learning rate'), ('betas', (2.0, 0.9), 'beta'),
                               ('eps', float('nan'), 'is not a hyperparameter'),
                               ('weight_decay', [1] * 50, 'is not a hyperparameter')]:
        bad = copy.deepcopy(state)
        bad['param_groups'][0][key] = value
        _refused(bad, params, "['param_groups'][0]", reason)


def test_implementation_flags_are_this_machines_choice():
    params, state = _adam_state()
    state['param_groups'][0].update(fused=True, capturable=True, foreach=True, differentiable=True,
                                    unknown_key=3.0)
    checked = checked_optimizer_state(state, torch.optim.Adam, params, 'f.pkl')
    group = checked['param_groups'][0]
    defaults = torch.optim.Adam(params).defaults
    assert all(group[flag] == defaults[flag] for flag in ('fused', 'capturable', 'foreach', 'differentiable'))
    assert 'unknown_key' not in group
    torch.optim.Adam(params).load_state_dict(checked)  # fused=True would fail on CPU tensors


def test_state_for_another_model_is_refused():
    params, state = _adam_state()
    _refused(state, params[:1], 'covers 2 parameter tensors, the model has 1')
    bad = copy.deepcopy(state)
    bad['state'][99] = bad['state'].pop(0)
    _refused(bad, params, "['state'][99]", 'not the state of one of the parameters')
