"""Trainer subclasses written the way old Lernomatic code was: their own loops, models and files."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn

from lernomatic.models import common
from lernomatic.train import trainer


class Generator(nn.Module):
    def __init__(self, noise: int = 4, features: int = 12) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(noise, 16), nn.ReLU(), nn.Linear(16, features))

    def forward(self, z):
        return self.body(z)


class Discriminator(nn.Module):
    def __init__(self, features: int = 12) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(features, 16), nn.LeakyReLU(0.2), nn.Linear(16, 1))

    def forward(self, x):
        return self.body(x)


class GeneratorModel(common.LernomaticModel):
    def __init__(self, **kwargs) -> None:
        self.net = Generator()
        self.import_path = 'legacy_trainers'
        self.module_import_path = 'legacy_trainers'
        self.model_name = 'GeneratorModel'
        self.module_name = 'Generator'


class DiscriminatorModel(common.LernomaticModel):
    def __init__(self, **kwargs) -> None:
        self.net = Discriminator()
        self.import_path = 'legacy_trainers'
        self.module_import_path = 'legacy_trainers'
        self.model_name = 'DiscriminatorModel'
        self.module_name = 'Discriminator'


class GANTrainer(trainer.Trainer):
    """Two models, two optimizers, two backward passes a batch, its own histories and checkpoint layout."""

    def __init__(self, generator=None, discriminator=None, **kwargs) -> None:
        self.generator = generator
        self.discriminator = discriminator
        self.beta1 = kwargs.pop('beta1', 0.5)
        self.post_loop_calls = 0
        super().__init__(None, **kwargs)

    def _init_optimizer(self) -> None:
        self.optimizer = None
        self.criterion = nn.BCEWithLogitsLoss()
        if self.generator is None or self.discriminator is None:
            self.optim_g = self.optim_d = None
            return
        self.optim_g = torch.optim.Adam(self.generator.get_model_parameters(), lr=self.learning_rate,
                                        betas=(self.beta1, 0.999))
        self.optim_d = torch.optim.Adam(self.discriminator.get_model_parameters(), lr=self.learning_rate,
                                        betas=(self.beta1, 0.999))

    def _init_history(self) -> None:
        self.loss_iter = 0
        self.val_loss_iter = 0
        self.acc_iter = 0
        self.iter_per_epoch = 0
        self.loss_history = self.val_loss_history = self.acc_history = None
        size = len(self.train_loader) * self.num_epochs if self.train_loader is not None else 0
        self.g_loss_history = np.zeros(size)
        self.d_loss_history = np.zeros(size)

    def _send_to_device(self) -> None:
        for model in (self.generator, self.discriminator):
            if model is not None:
                model.send_to(self.device)

    def train_epoch(self) -> None:
        self.generator.set_train()
        self.discriminator.set_train()
        for real, _ in self.train_loader:
            real = real.to(self.device)
            ones = torch.ones(len(real), 1, device=self.device)
            zeros = torch.zeros(len(real), 1, device=self.device)
            fake = self.generator.forward(torch.randn(len(real), 4, device=self.device))
            # discriminator: real and fake, the generator's graph cut off
            self.optim_d.zero_grad()
            d_loss = self.criterion(self.discriminator.forward(real), ones) + \
                self.criterion(self.discriminator.forward(fake.detach()), zeros)
            d_loss.backward()
            self.optim_d.step()
            # generator: through the discriminator, whose gradients are left unused
            self.optim_g.zero_grad()
            g_loss = self.criterion(self.discriminator.forward(fake), ones)
            self.backward(g_loss)
            self.optim_g.step()
            self.d_loss_history[self.loss_iter] = d_loss.item()
            self.g_loss_history[self.loss_iter] = g_loss.item()
            self.loss_iter += 1
        self.post_loop_calls += 1

    def save_checkpoint(self, fname: str) -> None:
        if not self._is_writer():
            return
        torch.save({'generator': self.generator.get_params(), 'discriminator': self.discriminator.get_params(),
                    'optim_g': self.optim_g.state_dict(), 'optim_d': self.optim_d.state_dict(),
                    'trainer_params': self.get_trainer_params()}, fname)

    def load_checkpoint(self, fname: str) -> None:
        data = torch.load(fname)
        self.set_trainer_params(data['trainer_params'])
        self.generator, self.discriminator = GeneratorModel(), DiscriminatorModel()
        self.generator.set_params(data['generator'])
        self.discriminator.set_params(data['discriminator'])
        self._init_optimizer()
        self.optim_g.load_state_dict(data['optim_g'])
        self.optim_d.load_state_dict(data['optim_d'])
        self._send_to_device()

    def get_trainer_params(self) -> dict:
        params = super().get_trainer_params()
        params['beta1'] = self.beta1
        return params

    def set_trainer_params(self, params: dict) -> None:
        super().set_trainer_params(params)
        self.beta1 = params['beta1']

    def _is_writer(self) -> bool:
        return not torch.distributed.is_initialized() or torch.distributed.get_rank() == 0


class LegacyClassifierTrainer(trainer.Trainer):
    """The original's default loops written out by hand, as many subclasses did, with probes for the tests."""

    def __init__(self, model=None, **kwargs) -> None:
        self.break_after = kwargs.pop('break_after', None)
        self.events: list[str] = []
        self.seen_lengths: list[tuple[int, int]] = []
        self.seen_devices: list[str] = []
        self.seen_dtypes: set = set()
        self.use_backward_helper = kwargs.pop('use_backward_helper', False)
        super().__init__(model, **kwargs)

    def train_epoch(self) -> None:
        self.events.append('train:start')
        self.model.set_train()
        self.seen_lengths.append((len(self.train_loader), len(self.train_loader.dataset)))
        for batch_idx, (data, target) in enumerate(self.train_loader):
            data, target = data.to(self.device), target.to(self.device)
            self.seen_devices.append(str(data.device))
            output = self.model.forward(data)
            self.seen_dtypes.add(output.dtype)
            loss = self.criterion(output, target)
            self.optimizer.zero_grad()
            if self.use_backward_helper:
                self.backward(loss)
            else:
                loss.backward()
            self.optimizer.step()
            self.loss_history[self.loss_iter] = loss.item()
            self.loss_iter += 1
            if self.break_after is not None and batch_idx + 1 >= self.break_after:
                break
        self.events.append('train:end')

    def val_epoch(self) -> None:
        self.events.append('val:start')
        self.model.set_eval()
        correct = 0
        for data, labels in self.val_loader:
            data, labels = data.to(self.device), labels.to(self.device)
            with torch.no_grad():
                output = self.model.forward(data)
            loss = self.criterion(output, labels)
            pred = output.max(1, keepdim=True)[1]
            correct += pred.eq(labels.view_as(pred)).sum().item()
            self.val_loss_history[self.val_loss_iter] = loss.item()
            self.val_loss_iter += 1
        self.acc_history[self.acc_iter] = correct / len(self.val_loader.dataset)
        self.acc_iter += 1
        self.events.append('val:end')

    def test_epoch(self) -> None:
        self.events.append('test:start')
        self.test_batches = sum(1 for _ in self.test_loader)
        self.events.append('test:end')
