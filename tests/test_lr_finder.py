"""LR range test: suggestions against Lightning's Tuner.lr_find on the same model and data."""

from __future__ import annotations

import copy

import lightning
import numpy as np
import pytest
from lightning.pytorch.tuner import Tuner
from torch.utils.data import DataLoader

from compat.adapter import LernomaticModule
from compat.errors import ConfigError
from lernomatic.param.lr_common import LogFinder

from helpers import state_dicts_equal


def test_finder_suggests_what_lightning_suggests(make_trainer, fixture_nets, fixture_data, tmp_path):
    trainer = make_trainer(train_dataset=fixture_data.make(2000, 21), batch_size=20)
    initial = copy.deepcopy(trainer.model.get_net_state_dict())
    finder = LogFinder(trainer, lr_min=1e-5, lr_max=1.0, num_iter=100, explode_thresh=4.0)
    lr_min, lr_max = finder.find()
    assert state_dicts_equal(trainer.model.get_net_state_dict(), initial)  # put back as it was
    assert trainer.optimizer.state_dict()['state'] == {}
    assert lr_min == pytest.approx(lr_max / 10)

    module = LernomaticModule(fixture_nets.MLPModel(), learning_rate=1e-5)
    module.net.load_state_dict(initial)
    tuner_trainer = lightning.Trainer(accelerator='cpu', logger=False, enable_progress_bar=False,
                                      enable_model_summary=False, default_root_dir=tmp_path, max_epochs=1)
    result = Tuner(tuner_trainer).lr_find(module, DataLoader(fixture_data.make(2000, 21), batch_size=20),
                                          min_lr=1e-5, max_lr=1.0, num_training=100, early_stop_threshold=4.0)
    lightning_lrs, lightning_losses = np.array(result.results['lr']), np.array(result.results['loss'])
    # the two sweeps see the same losses once the smoothing has warmed up (Lightning smooths a running
    # mean of the loss, so its first points differ): compare the curves from lr=1e-2 on
    ours = [(lr, loss) for lr, loss in zip(finder.lrs, finder.losses, strict=True) if 1e-2 <= lr <= 0.5]
    theirs_at_ours = np.interp(np.log([lr for lr, _ in ours]), np.log(lightning_lrs), lightning_losses)
    np.testing.assert_allclose([loss for _, loss in ours], theirs_at_ours, rtol=0.05)
    # and the suggested lr_max sits where Lightning's own curve falls
    slope = np.gradient(lightning_losses, np.log(lightning_lrs))
    assert np.interp(np.log(lr_max), np.log(lightning_lrs), slope) < 0

    png = finder.plot(tmp_path / 'range.png')
    assert png.read_bytes()[:4] == b'\x89PNG' and png.stat().st_size > 5_000


def test_finder_stops_when_the_loss_explodes(make_trainer):
    finder = LogFinder(make_trainer(), lr_min=1e-3, lr_max=1e6, num_iter=200, explode_thresh=2.0)
    finder.find()
    assert 0 < len(finder.losses) < 200


def test_finder_refuses_bad_ranges(make_trainer):
    with pytest.raises(ConfigError, match='lr_min < lr_max'):
        LogFinder(make_trainer(), lr_min=1.0, lr_max=0.1)
    with pytest.raises(ConfigError, match='needs a trainer with a model'):
        LogFinder(make_trainer(model=None))
