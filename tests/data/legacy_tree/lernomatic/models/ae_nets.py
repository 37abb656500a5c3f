"""A tiny autoencoder: encoder and decoder as separate wrappers, as the zoo's AAE models were split."""

import torch.nn as nn

from lernomatic.models import common


class Encoder(nn.Module):
    def __init__(self, num_in=12, z_dim=3):
        super(Encoder, self).__init__()
        self.fc = nn.Sequential(nn.Linear(num_in, 16), nn.ReLU(), nn.Linear(16, z_dim))

    def forward(self, x):
        return self.fc(x)


class Decoder(nn.Module):
    def __init__(self, z_dim=3, num_out=12):
        super(Decoder, self).__init__()
        self.fc = nn.Sequential(nn.Linear(z_dim, 16), nn.ReLU(), nn.Linear(16, num_out))

    def forward(self, z):
        return self.fc(z)


class EncoderModel(common.LernomaticModel):
    def __init__(self, **kwargs):
        self.net = Encoder()
        self.import_path = 'lernomatic.models.ae_nets'
        self.model_name = 'EncoderModel'
        self.module_name = 'Encoder'
        self.module_import_path = 'lernomatic.models.ae_nets'


class DecoderModel(common.LernomaticModel):
    def __init__(self, **kwargs):
        self.net = Decoder()
        self.import_path = 'lernomatic.models.ae_nets'
        self.model_name = 'DecoderModel'
        self.module_name = 'Decoder'
        self.module_import_path = 'lernomatic.models.ae_nets'
