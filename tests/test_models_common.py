"""LernomaticModel: every method of the spec, its fixes of the original's quirks, both import spellings."""

from __future__ import annotations

import pytest
import torch

from compat.errors import CheckpointError
from lernomatic.model.common import LernomaticModel as GuideSpelling
from lernomatic.models.common import LernomaticModel

import extra_nets


def test_both_import_spellings_are_the_same_class():
    assert GuideSpelling is LernomaticModel


def test_metadata_getters(fixture_nets):
    model = fixture_nets.MLPModel()
    assert model.get_model_name() == 'MLPModel'
    assert model.get_model_path() == 'fixture_nets'
    assert model.get_module_name() == 'MLP'
    assert model.get_module_import_path() == 'fixture_nets'
    assert model.get_net() is model.net
    assert repr(model) == 'MLPModel'


def test_get_params_layout(fixture_nets):
    params = fixture_nets.MLPModel().get_params()
    assert list(params) == ['model_state_dict', 'model_name', 'model_import_path', 'module_name', 'module_import_path']
    assert list(params['model_state_dict']) == ['body.0.weight', 'body.0.bias', 'body.2.weight', 'body.2.bias']


def test_model_args_are_stored_and_used_to_rebuild():
    model = extra_nets.TinyWithArgs(num_in=6, num_out=5)
    params = model.get_params()
    assert params['model_args'] == {'num_in': 6, 'num_out': 5}
    rebuilt = LernomaticModel()
    rebuilt.set_params(params)
    assert rebuilt.net.fc1.in_features == 6 and rebuilt.net.fc2.out_features == 5
    for key, value in model.get_net_state_dict().items():
        assert torch.equal(rebuilt.get_net_state_dict()[key], value)


def test_set_params_rebuilds_net_with_weights(fixture_nets):
    source = fixture_nets.MLPModel()
    target = LernomaticModel()
    target.set_params(source.get_params())
    assert target.get_model_name() == 'MLPModel' and target.get_module_name() == 'MLP'
    x = torch.randn(5, 12)
    assert torch.equal(target.forward(x), source.forward(x))


def test_guide_style_py_suffix_is_accepted():
    model = extra_nets.GuideStyle()
    rebuilt = LernomaticModel()
    rebuilt.set_params(model.get_params())
    assert type(rebuilt.net).__name__ == 'Tiny'


def test_set_net_state_dict_really_loads(fixture_nets):
    a, b = fixture_nets.MLPModel(), fixture_nets.MLPModel()
    assert not torch.equal(a.net.body[0].weight, b.net.body[0].weight)
    b.set_net_state_dict(a.get_net_state_dict())
    assert torch.equal(a.net.body[0].weight, b.net.body[0].weight)


def test_set_net_state_dict_mismatch_names_the_tensor(fixture_nets):
    model = fixture_nets.MLPModel()
    bad = dict(model.get_net_state_dict())
    bad['body.0.weight'] = torch.zeros(3, 3)
    with pytest.raises(CheckpointError, match=r'body\.0\.weight.*\(3, 3\)'):
        model.set_net_state_dict(bad)


def test_methods_raise_value_error_without_net():
    empty = LernomaticModel()
    for call in (empty.get_net, empty.get_net_state_dict, empty.set_train, empty.set_eval, empty.zero_grad,
                 lambda: empty.forward(torch.zeros(1)), lambda: empty.send_to('cpu')):
        with pytest.raises(ValueError, match='No network'):
            call()


def test_train_eval_send_to_zero_grad(fixture_nets):
    model = fixture_nets.MLPModel()
    model.set_eval()
    assert not model.net.training
    model.set_train()
    assert model.net.training
    model.forward(torch.randn(2, 12)).sum().backward()
    assert model.net.body[0].weight.grad is not None
    model.zero_grad()
    assert model.net.body[0].weight.grad is None or not model.net.body[0].weight.grad.any()
    model.send_to(torch.device('cpu'))
    assert list(model.get_model_parameters())[0].device.type == 'cpu'


def test_freezing_has_the_original_semantics(fixture_nets):
    """Positions in net.parameters() (weight and bias separate); freeze_to(N) and unfreeze_to(N) cover 0..N
    inclusive, N <= 0 the first tensor only; freeze() freezes everything, as the original's code did."""
    model = fixture_nets.MLPModel()
    flags = lambda: [p.requires_grad for p in model.net.parameters()]  # noqa: E731
    assert model.get_num_layers() == 4
    model.freeze_to(1)
    assert flags() == [False, False, True, True]
    model.unfreeze_to(0)
    assert flags() == [True, False, True, True]
    model.freeze_to(-3)
    assert flags() == [False, False, True, True]
    model.freeze_to(2)
    assert flags() == [False, False, False, True]
    model.unfreeze_to(10)
    assert flags() == [True] * 4
    model.freeze()
    assert flags() == [False] * 4
    model.unfreeze()
    assert flags() == [True] * 4
    model.freeze_all()
    assert flags() == [False] * 4


def test_load_checkpoint_reads_model_name(original_dir):
    model = LernomaticModel()
    model.load_checkpoint(str(original_dir / 'mlp_trainer_ck.pkl'))
    assert model.get_model_name() == 'MLPModel'
    assert model.net.body[2].out_features == 3


def test_load_checkpoint_unknown_key_is_named(original_dir):
    with pytest.raises(CheckpointError, match="no model under key 'generator'"):
        LernomaticModel().load_checkpoint(str(original_dir / 'mlp_trainer_ck.pkl'), model_key='generator')
