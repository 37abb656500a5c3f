"""Inferrer: forward passes with models loaded from Lernomatic and Lightning checkpoints."""

from __future__ import annotations

import lightning
import pytest
import torch
from torch.utils.data import DataLoader

from compat.adapter import LernomaticModule
from lernomatic.infer.inferrer import Inferrer

from conftest import ORIGINAL


def test_forward_with_a_given_model(fixture_nets):
    model = fixture_nets.MLPModel()
    x = torch.randn(4, 12)
    out = Inferrer(model).forward(x)
    assert torch.equal(out, model.net(x).detach()) and not out.requires_grad and not model.net.training


def test_load_original_checkpoint():
    inferrer = Inferrer()
    with pytest.raises(ValueError, match='no model'):
        inferrer.forward(torch.zeros(1, 12))
    inferrer.load_model(str(ORIGINAL / 'mlp_trainer_ck.pkl'))
    assert type(inferrer.model).__name__ == 'MLPModel' and inferrer.forward(torch.zeros(2, 12)).shape == (2, 3)


def test_load_lightning_checkpoint(fixture_nets, fixture_data, tmp_path):
    module = LernomaticModule(fixture_nets.MLPModel())
    trainer = lightning.Trainer(max_epochs=1, accelerator='cpu', logger=False, enable_progress_bar=False,
                                enable_model_summary=False, default_root_dir=tmp_path)
    trainer.fit(module, DataLoader(fixture_data.make(40, 1), batch_size=20))
    trainer.save_checkpoint(tmp_path / 'run.ckpt')
    inferrer = Inferrer()
    inferrer.load_model(str(tmp_path / 'run.ckpt'))
    x = torch.randn(3, 12)
    assert torch.equal(inferrer.forward(x), module.net(x).detach())
