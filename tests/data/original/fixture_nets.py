"""The user module the original Lernomatic's fixture files name ('fixture_nets').

Written here from the facts the checkpoint records: a wrapper `MLPModel` around an `MLP` whose
state dict is `body.0.*` (Linear 12 -> 24), a Tanh, and `body.2.*` (Linear 24 -> 3). Like the
user guide's models, the wrapper sets its five attributes without calling `super().__init__()`.
"""

import torch.nn as nn

from lernomatic.models import common


class MLP(nn.Module):
    """Twelve features to three classes through one tanh hidden layer of 24 units."""

    def __init__(self, num_in: int = 12, num_classes: int = 3) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(num_in, 24), nn.Tanh(), nn.Linear(24, num_classes))

    def forward(self, x):
        return self.body(x)


class MLPModel(common.LernomaticModel):
    def __init__(self, **kwargs) -> None:
        self.net = MLP()
        self.import_path = 'fixture_nets'
        self.module_import_path = 'fixture_nets'
        self.model_name = 'MLPModel'
        self.module_name = 'MLP'
