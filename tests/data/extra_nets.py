"""Model modules used by the tests, importable by name as user modules are."""

import torch.nn as nn

from lernomatic.model import common as guide_spelling
from lernomatic.models import common


class Tiny(nn.Module):
    def __init__(self, num_in: int = 4, num_out: int = 3) -> None:
        super().__init__()
        self.fc1 = nn.Linear(num_in, 8)
        self.fc2 = nn.Linear(8, num_out)

    def forward(self, x):
        return self.fc2(self.fc1(x).relu())


class TinyWithArgs(common.LernomaticModel):
    """Stores constructor kwargs through get_model_args, as newer Lernomatic models did."""

    def __init__(self, num_in: int = 4, num_out: int = 3) -> None:
        self.net = Tiny(num_in, num_out)
        self.args = {'num_in': num_in, 'num_out': num_out}
        self.import_path = 'extra_nets'
        self.module_import_path = 'extra_nets'
        self.model_name = 'TinyWithArgs'
        self.module_name = 'Tiny'

    def get_model_args(self) -> dict:
        return dict(self.args)


class GuideStyle(guide_spelling.LernomaticModel):
    """Written as the user guide shows: 'lernomatic.model' spelling, paths with a '.py' suffix."""

    def __init__(self) -> None:
        self.net = Tiny()
        self.import_path = 'extra_nets.py'
        self.module_import_path = 'extra_nets.py'
        self.model_name = 'GuideStyle'
        self.module_name = 'Tiny'


class DropoutMLP(nn.Module):
    """Random in training: its dropout masks come from torch's global generator."""

    def __init__(self, num_in: int = 12, num_classes: int = 3) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(num_in, 32), nn.ReLU(), nn.Dropout(0.3), nn.Linear(32, num_classes))

    def forward(self, x):
        return self.body(x)


class DropoutMLPModel(common.LernomaticModel):
    def __init__(self, **kwargs) -> None:
        self.net = DropoutMLP()
        self.import_path = 'extra_nets'
        self.module_import_path = 'extra_nets'
        self.model_name = 'DropoutMLPModel'
        self.module_name = 'DropoutMLP'
