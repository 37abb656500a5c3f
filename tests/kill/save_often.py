"""Run by tests/test_kill.py: train for a long time, writing a checkpoint every iteration and the history every
epoch, until the test kills the process with SIGKILL."""

import sys
from pathlib import Path

import torch
import torch.nn as nn

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from lernomatic.models import common  # noqa: E402
from lernomatic.train.trainer import Trainer  # noqa: E402


class Wide(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(12, 512), nn.ReLU(), nn.Linear(512, 512), nn.ReLU(), nn.Linear(512, 3))

    def forward(self, x):
        return self.body(x)


class WideModel(common.LernomaticModel):
    def __init__(self, **kwargs) -> None:
        self.net = Wide()
        self.import_path = 'save_often'
        self.module_import_path = 'save_often'
        self.model_name = 'WideModel'
        self.module_name = 'Wide'


if __name__ == '__main__':
    torch.manual_seed(0)
    x = torch.randn(200, 12)
    data = torch.utils.data.TensorDataset(x, (x[:, 0] > 0).long())
    Trainer(WideModel(), train_dataset=data, batch_size=20, num_epochs=10_000, save_every=1, num_workers=0,
            verbose=False, logger=False, checkpoint_dir=sys.argv[1]).train()
