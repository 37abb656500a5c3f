"""DCGAN-style trainer, written the way the original zoo's GAN trainers were: two models, two
optimizers, its own histories, its own checkpoint and history layouts."""

import importlib

import numpy as np
import torch
import torch.nn as nn

from lernomatic.train import trainer
from lernomatic.util import math_util


class DCGANTrainer(trainer.Trainer):
    def __init__(self, D=None, G=None, **kwargs):
        self.discriminator = D
        self.generator = G
        self.beta1 = kwargs.pop('beta1', 0.5)
        self.real_label = kwargs.pop('real_label', 1)
        self.fake_label = kwargs.pop('fake_label', 0)
        self.zvec_dim = kwargs.pop('zvec_dim', 8)
        super(DCGANTrainer, self).__init__(None, **kwargs)
        self.criterion = nn.BCEWithLogitsLoss()

    def __repr__(self):
        return 'DCGANTrainer'

    def _init_optimizer(self):
        if self.generator is None or self.discriminator is None:
            self.optim_d = None
            self.optim_g = None
            return
        self.optim_d = torch.optim.Adam(self.discriminator.get_model_parameters(), lr=self.learning_rate,
                                        betas=(self.beta1, 0.999))
        self.optim_g = torch.optim.Adam(self.generator.get_model_parameters(), lr=self.learning_rate,
                                        betas=(self.beta1, 0.999))

    def _init_history(self):
        self.loss_iter = 0
        self.val_loss_iter = 0
        self.acc_iter = 0
        self.iter_per_epoch = 0
        if self.train_loader is not None:
            self.d_loss_history = np.zeros(len(self.train_loader) * self.num_epochs)
            self.g_loss_history = np.zeros(len(self.train_loader) * self.num_epochs)
        else:
            self.d_loss_history = None
            self.g_loss_history = None

    def _send_to_device(self):
        if self.discriminator is not None:
            self.discriminator.send_to(self.device)
        if self.generator is not None:
            self.generator.send_to(self.device)

    def train_epoch(self):
        self.discriminator.set_train()
        self.generator.set_train()
        for batch_idx, (data, _) in enumerate(self.train_loader):
            data = math_util.normalize(data.to(self.device))
            real = torch.full((data.size(0), 1), float(self.real_label), device=self.device)
            fake_target = torch.full((data.size(0), 1), float(self.fake_label), device=self.device)
            self.optim_d.zero_grad()
            err_d_real = self.criterion(self.discriminator.forward(data), real)
            err_d_real.backward()
            noise = torch.randn(data.size(0), self.zvec_dim, device=self.device)
            fake = self.generator.forward(noise)
            err_d_fake = self.criterion(self.discriminator.forward(fake.detach()), fake_target)
            err_d_fake.backward()
            self.optim_d.step()
            self.optim_g.zero_grad()
            err_g = self.criterion(self.discriminator.forward(fake), real)
            err_g.backward()
            self.optim_g.step()
            self.d_loss_history[self.loss_iter] = err_d_real.item() + err_d_fake.item()
            self.g_loss_history[self.loss_iter] = err_g.item()
            if self.save_every > 0 and (self.loss_iter % self.save_every) == 0:
                self.save_checkpoint(self.checkpoint_dir + '/' + self.checkpoint_name + '_iter_' +
                                     str(self.loss_iter) + '.pkl')
            self.loss_iter += 1

    def val_epoch(self):
        pass

    def save_checkpoint(self, fname):
        checkpoint = {
            'discriminator': self.discriminator.get_params(),
            'generator': self.generator.get_params(),
            'd_optim': self.optim_d.state_dict(),
            'g_optim': self.optim_g.state_dict(),
            'trainer_params': self.get_trainer_params(),
        }
        torch.save(checkpoint, fname)

    def load_checkpoint(self, fname):
        checkpoint = torch.load(fname)
        self.set_trainer_params(checkpoint['trainer_params'])
        for key in ('generator', 'discriminator'):
            params = checkpoint[key]
            imp = importlib.import_module(params['model_import_path'])
            model = getattr(imp, params['model_name'])()
            model.set_params(params)
            setattr(self, key, model)
        self._init_optimizer()
        self.optim_d.load_state_dict(checkpoint['d_optim'])
        self.optim_g.load_state_dict(checkpoint['g_optim'])
        self._send_to_device()

    def get_trainer_params(self):
        params = super(DCGANTrainer, self).get_trainer_params()
        params['beta1'] = self.beta1
        params['real_label'] = self.real_label
        params['fake_label'] = self.fake_label
        params['zvec_dim'] = self.zvec_dim
        return params

    def set_trainer_params(self, params):
        super(DCGANTrainer, self).set_trainer_params(params)
        self.beta1 = params['beta1']
        self.real_label = params['real_label']
        self.fake_label = params['fake_label']
        self.zvec_dim = params['zvec_dim']

    def save_history(self, fname):
        history = {'loss_iter': self.loss_iter, 'cur_epoch': self.cur_epoch,
                   'd_loss_history': self.d_loss_history, 'g_loss_history': self.g_loss_history}
        torch.save(history, fname)

    def load_history(self, fname):
        history = torch.load(fname)
        self.loss_iter = history['loss_iter']
        self.cur_epoch = history['cur_epoch']
        self.d_loss_history = history['d_loss_history']
        self.g_loss_history = history['g_loss_history']

    def get_d_loss_history(self):
        return self.d_loss_history[0:self.loss_iter]

    def get_g_loss_history(self):
        return self.g_loss_history[0:self.loss_iter]
