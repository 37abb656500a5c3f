"""Inferrer: the original's constructor and forward, zoo-style subclasses, models loaded from checkpoints."""

from __future__ import annotations

import logging

import lightning
import pytest
import torch
from torch.utils.data import DataLoader

from compat.adapter import LernomaticModule
from compat.errors import CheckpointError, ConfigError
from lernomatic.infer.inferrer import Inferrer

from conftest import ORIGINAL, TEST_DEVICE, TEST_DEVICE_ID
from legacy_trainers import DiscriminatorModel, GANTrainer, GeneratorModel


class GANInferrer(Inferrer):
    """Written the way the zoo's inferrers were: own kwargs popped, a second net set before the base
    constructor runs, `_send_to_device` and `forward` overridden, `load_model` with the trainer's key."""

    def __init__(self, generator=None, discriminator=None, **kwargs) -> None:
        self.discriminator = discriminator
        self.noise_dim = kwargs.pop('noise_dim', 4)
        self.calls = []
        super().__init__(generator, **kwargs)

    def __repr__(self) -> str:
        return 'GANInferrer'

    def _init_device(self) -> None:
        self.calls.append('_init_device')
        super()._init_device()

    def _send_to_device(self) -> None:
        self.calls.append('_send_to_device')
        for model in (self.model, self.discriminator):
            if model is not None:
                model.send_to(self.device)

    def forward(self, X: torch.Tensor = None) -> torch.Tensor:
        if X is None:
            X = torch.randn(1, self.noise_dim)
        self.model.set_eval()
        fake = self.model.forward(X.to(self.device)).detach()
        return fake

    def realness(self, X: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.discriminator.forward(X.to(self.device)))

    def load_model(self, fname: str) -> None:
        super().load_model(fname, model_key='generator')


def warnings_in(caplog):
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


@pytest.fixture
def gan_checkpoint(fixture_data, tmp_path):
    """A checkpoint with 'generator' and 'discriminator' keys, written by a GAN trainer after real training."""
    gan = GANTrainer(GeneratorModel(), DiscriminatorModel(), train_dataset=fixture_data.make(60, 11), batch_size=20,
                     num_epochs=1, learning_rate=2e-3, num_workers=0, verbose=False, save_every=0,
                     checkpoint_dir=str(tmp_path / 'gan'), device_id=TEST_DEVICE_ID)
    gan.train()
    fname = str(tmp_path / 'gan_ck.pkl')
    gan.save_checkpoint(fname)
    return fname, gan


def test_constructor_defaults_and_init_order(fixture_nets):
    model = fixture_nets.MLPModel()
    inferrer = Inferrer(model)
    assert inferrer.get_model() is model and inferrer.model is model
    assert inferrer.device_id == -1 and inferrer.device == torch.device('cpu') and repr(inferrer) == 'Inferrer'
    assert Inferrer(device_id=-7).device == torch.device('cpu')  # any negative id is the CPU
    zoo = GANInferrer(GeneratorModel(), DiscriminatorModel(), noise_dim=4)
    assert zoo.calls == ['_init_device', '_send_to_device'] and zoo.discriminator is not None


def test_device_placement(fixture_nets):
    generator, discriminator = GeneratorModel(), DiscriminatorModel()
    inferrer = GANInferrer(generator, discriminator, device_id=TEST_DEVICE_ID)
    assert inferrer.device == TEST_DEVICE
    for model in (generator, discriminator):  # both nets, through the subclass's _send_to_device
        assert {p.device for p in model.get_model_parameters()} == {TEST_DEVICE}
    out = inferrer.forward(torch.randn(3, 4))  # the input comes from the CPU
    assert out.device == TEST_DEVICE and out.shape == (3, 12)
    with pytest.raises(ConfigError, match=f'device_id={torch.cuda.device_count()} but this machine has'):
        Inferrer(device_id=torch.cuda.device_count())
    with pytest.raises(ConfigError, match="device_id must be an integer.*'cuda'"):
        Inferrer(device_id='cuda')


def test_forward_is_the_models_forward_as_in_the_original(fixture_nets):
    model = fixture_nets.MLPModel()
    model.set_train()
    x = torch.randn(4, 12)
    out = Inferrer(model).forward(x)
    assert torch.equal(out, model.net(x))
    # no implicit eval() or no_grad(): the model stays in the mode it was in, gradients flow
    assert model.net.training and out.requires_grad
    out.sum().backward()
    assert model.net.body[0].weight.grad is not None
    with pytest.raises(ValueError, match='Inferrer has no model'):
        Inferrer().forward(x)


def test_unknown_kwargs_are_ignored_with_one_warning(fixture_nets, caplog):
    with caplog.at_level(logging.WARNING, logger='lernomatic'):
        inferrer = Inferrer(fixture_nets.MLPModel(), device_id=-1, test_batch_size=1, devce_id=0)
    (warning,) = warnings_in(caplog)
    assert warning.startswith("Inferrer ignores unknown option(s) 'test_batch_size', 'devce_id'")
    assert "Did you mean 'device_id'" in warning and inferrer.device == torch.device('cpu')
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger='lernomatic'):
        GANInferrer(GeneratorModel(), noise_dim=4, img_size=64)  # its own kwarg popped, the rest passed on
    (warning,) = warnings_in(caplog)
    assert "GANInferrer ignores unknown option(s) 'img_size'" in warning and 'noise_dim' not in warning


def test_unknown_kwargs_raise_when_strict(monkeypatch):
    with pytest.raises(ConfigError, match="unknown GANInferrer option.*'img_size'"):
        GANInferrer(img_size=64, strict=True)
    monkeypatch.setenv('LERNOMATIC_STRICT', '1')
    with pytest.raises(ConfigError, match="unknown Inferrer option.*'test_batch_size'"):
        Inferrer(test_batch_size=1)
    assert Inferrer(test_batch_size=1, strict=False).model is None
    with pytest.raises(ConfigError, match='strict must be True, False or None'):
        Inferrer(strict='no')


def test_zoo_inferrer_loads_the_generator_of_a_gan_checkpoint(gan_checkpoint):
    fname, gan = gan_checkpoint
    inferrer = GANInferrer(device_id=TEST_DEVICE_ID, noise_dim=4)
    assert inferrer.get_model() is None
    inferrer.load_model(fname)
    generator = inferrer.get_model()
    assert type(generator).__name__ == 'GeneratorModel'
    assert {p.device for p in generator.get_model_parameters()} == {TEST_DEVICE}
    trained = gan.generator.get_net_state_dict()
    assert all(torch.equal(tensor, trained[name]) for name, tensor in generator.get_net_state_dict().items())
    z = torch.randn(5, 4)
    gan.generator.set_eval()
    with torch.no_grad():
        assert torch.equal(inferrer.forward(z), gan.generator.forward(z.to(gan.device)))
    assert inferrer.forward().shape == (1, 12)
    # the base class with the key named by the caller reads the other model of the same file
    critic = Inferrer(device_id=TEST_DEVICE_ID)
    critic.load_model(fname, model_key='discriminator')
    assert type(critic.get_model()).__name__ == 'DiscriminatorModel'
    with pytest.raises(CheckpointError, match="no model under key 'model'"):  # not in a GAN checkpoint
        Inferrer().load_model(fname)


def test_load_original_checkpoint():
    inferrer = Inferrer()
    inferrer.load_model(str(ORIGINAL / 'mlp_trainer_ck.pkl'))
    assert type(inferrer.model).__name__ == 'MLPModel' and inferrer.forward(torch.zeros(2, 12)).shape == (2, 3)


def test_load_lightning_checkpoint(fixture_nets, fixture_data, tmp_path):
    module = LernomaticModule(fixture_nets.MLPModel())
    trainer = lightning.Trainer(max_epochs=1, accelerator='cpu', logger=False, enable_progress_bar=False,
                                enable_model_summary=False, enable_checkpointing=False, default_root_dir=tmp_path)
    trainer.fit(module, DataLoader(fixture_data.make(40, 1), batch_size=20))
    trainer.save_checkpoint(tmp_path / 'run.ckpt')
    inferrer = Inferrer()
    inferrer.load_model(str(tmp_path / 'run.ckpt'))
    x = torch.randn(3, 12)
    with torch.no_grad():
        assert torch.equal(inferrer.forward(x), module.net(x))


# ---- issue 24, finding 9: every refusal a CheckpointError naming the file, the inferrer's model kept
def _lightning_shaped(**changes):
    original = torch.load(ORIGINAL / 'mlp_trainer_ck.pkl')
    meta = original['model']
    ckpt = {'state_dict': {f'net.{key}': value for key, value in meta['model_state_dict'].items()},
            'pytorch-lightning_version': '2.0', 'optimizer_states': [original['optim']],
            'lernomatic_model': {key: value for key, value in meta.items() if key != 'model_state_dict'}}
    ckpt.update(changes)
    return ckpt


ODD_CKPTS = {
    'epoch-str': {'epoch': 'x'}, 'epoch-list': {'epoch': [1]}, 'epoch-nan': {'epoch': float('nan')},
    'epoch-inf': {'epoch': float('inf')}, 'epoch-tensor': {'epoch': torch.zeros(3)},
    'loops-tensor': {'loops': torch.zeros(3)}, 'optimizer-states-tensor': {'optimizer_states': torch.zeros(3)},
}

ATTRIBUTE_READING_WRAPPER = '''
import torch.nn as nn
from lernomatic.models import common


class Net(nn.Module):
    def __init__(self, width=4):
        super().__init__()
        self.fc = nn.Linear(width, 2)


class OldStyleModel(common.LernomaticModel):
    """Like the original's zoo wrappers: set_params reads the file's fields its own way."""

    def __init__(self, **kwargs):
        self.net = Net()
        self.import_path = self.module_import_path = __name__
        self.model_name, self.module_name = 'OldStyleModel', 'Net'

    def set_params(self, params):
        self.width = params['model_args'].width  # a dict has no attribute width: AttributeError
        super().set_params(params)
'''


@pytest.mark.parametrize('shape', list(ODD_CKPTS))
def test_an_odd_lightning_checkpoint_is_a_checkpoint_error(fixture_nets, tmp_path, shape):
    path = tmp_path / f'{shape}.ckpt'
    torch.save(_lightning_shaped(**ODD_CKPTS[shape]), path)
    model = fixture_nets.MLPModel()
    inferrer = Inferrer(model)
    with pytest.raises(CheckpointError, match=path.name):
        inferrer.load_model(str(path))
    assert inferrer.model is model


def test_a_wrappers_own_set_params_failing_is_a_checkpoint_error(tmp_path, monkeypatch):
    """The AttributeError that Inferrer.load_model let out: a wrapper whose set_params reads a field as an attribute."""
    import importlib
    import sys
    (tmp_path / 'old_style_nets.py').write_text(ATTRIBUTE_READING_WRAPPER)
    monkeypatch.syspath_prepend(str(tmp_path))
    nets = importlib.import_module('old_style_nets')
    try:
        wrapper = nets.OldStyleModel()
        data = torch.load(ORIGINAL / 'mlp_trainer_ck.pkl')
        data['model'] = {'model_state_dict': wrapper.net.state_dict(), 'model_name': 'OldStyleModel',
                         'model_import_path': 'old_style_nets', 'module_name': 'Net',
                         'module_import_path': 'old_style_nets', 'model_args': {'width': 4}}
        path = tmp_path / 'old_style.pkl'
        torch.save(data, path)
        inferrer = Inferrer(None)
        with pytest.raises(CheckpointError, match=f"{path.name}.*AttributeError.*width"):
            inferrer.load_model(str(path))
        assert inferrer.model is None
    finally:
        sys.modules.pop('old_style_nets', None)
