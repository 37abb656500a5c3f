"""An autoencoder trainer that runs its own train() loop, as some zoo trainers did."""

import torch
import torch.nn as nn

from lernomatic.train import trainer


class AETrainer(trainer.Trainer):
    def __init__(self, encoder=None, decoder=None, **kwargs):
        self.encoder = encoder
        self.decoder = decoder
        super(AETrainer, self).__init__(None, **kwargs)
        self.criterion = nn.MSELoss()

    def __repr__(self):
        return 'AETrainer'

    def _init_optimizer(self):
        if self.encoder is None or self.decoder is None:
            self.optimizer = None
            return
        params = list(self.encoder.get_model_parameters()) + list(self.decoder.get_model_parameters())
        self.optimizer = torch.optim.Adam(params, lr=self.learning_rate, weight_decay=self.weight_decay)

    def _send_to_device(self):
        for model in (self.encoder, self.decoder):
            if model is not None:
                model.send_to(self.device)

    def train_epoch(self):
        self.encoder.set_train()
        self.decoder.set_train()
        for data, _ in self.train_loader:
            data = data.to(self.device)
            recon = self.decoder.forward(self.encoder.forward(data))
            loss = self.criterion(recon, data)
            self.optimizer.zero_grad()
            loss.backward()
            self.optimizer.step()
            self.loss_history[self.loss_iter] = loss.item()
            self.loss_iter += 1

    def val_epoch(self):
        self.encoder.set_eval()
        self.decoder.set_eval()
        for data, _ in self.val_loader:
            data = data.to(self.device)
            with torch.no_grad():
                loss = self.criterion(self.decoder.forward(self.encoder.forward(data)), data)
            self.val_loss_history[self.val_loss_iter] = loss.item()
            self.val_loss_iter += 1

    def train(self):
        for epoch in range(self.cur_epoch, self.num_epochs):
            self.train_epoch()
            if self.val_loader is not None:
                self.val_epoch()
            if self.save_hist:
                self.save_history(self.checkpoint_dir + '/' + self.checkpoint_name + '_history.pkl')
            self.cur_epoch += 1
