"""An old model written as the original's own models were written (WideResnet, DCGAN, autoencoder): its
`set_params` imports what the file names and calls `load_state_dict` itself. Tests copy it into an
old checkout as `lernomatic/models/old_net.py`."""

import importlib

import torch.nn as nn

from lernomatic.models import common


class OldNet(nn.Module):
    def __init__(self, width=4):
        super(OldNet, self).__init__()  # noqa: UP008 - the original's spelling
        self.fc = nn.Linear(4, width)

    def forward(self, x):
        return self.fc(x)


class OldNetModel(common.LernomaticModel):
    """As the original's models: set_params imports what the file names and calls load_state_dict itself."""

    def __init__(self, **kwargs):
        self.width = kwargs.pop('width', 4)
        self.net = OldNet(self.width)
        self.import_path = 'lernomatic.models.old_net'
        self.model_name = 'OldNetModel'
        self.module_name = 'OldNet'
        self.module_import_path = 'lernomatic.models.old_net'

    def get_model_args(self):
        return {'width': self.width}

    def set_params(self, params):
        self.module_import_path = params['module_import_path']
        self.net = getattr(importlib.import_module(self.module_import_path), params['module_name'])(
            **params['model_args'])
        self.net.load_state_dict(params['model_state_dict'])
        if 'block_import_path' in params:  # a model of two parts: the second one's class named the same way
            self.block = getattr(importlib.import_module(params['block_import_path']), params['block_name'])()
