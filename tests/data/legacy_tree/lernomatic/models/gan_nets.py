"""Generator and discriminator for the DCGAN-style trainer (8x8 single-channel images)."""

import torch.nn as nn

from lernomatic.models import common


class Generator(nn.Module):
    def __init__(self, zvec_dim=8):
        super(Generator, self).__init__()
        self.zvec_dim = zvec_dim
        self.main = nn.Sequential(nn.Linear(zvec_dim, 32), nn.ReLU(True), nn.Linear(32, 64), nn.Tanh())

    def forward(self, z):
        return self.main(z.view(z.size(0), -1)).view(-1, 1, 8, 8)


class Discriminator(nn.Module):
    def __init__(self):
        super(Discriminator, self).__init__()
        self.main = nn.Sequential(nn.Linear(64, 32), nn.LeakyReLU(0.2, inplace=True), nn.Linear(32, 1))

    def forward(self, x):
        return self.main(x.view(x.size(0), -1))


class GeneratorModel(common.LernomaticModel):
    def __init__(self, **kwargs):
        self.zvec_dim = kwargs.pop('zvec_dim', 8)
        self.net = Generator(self.zvec_dim)
        self.import_path = 'lernomatic.models.gan_nets'
        self.model_name = 'GeneratorModel'
        self.module_name = 'Generator'
        self.module_import_path = 'lernomatic.models.gan_nets'

    def get_model_args(self):
        return {'zvec_dim': self.zvec_dim}


class DiscriminatorModel(common.LernomaticModel):
    def __init__(self, **kwargs):
        self.net = Discriminator()
        self.import_path = 'lernomatic.models.gan_nets'
        self.model_name = 'DiscriminatorModel'
        self.module_name = 'Discriminator'
        self.module_import_path = 'lernomatic.models.gan_nets'
