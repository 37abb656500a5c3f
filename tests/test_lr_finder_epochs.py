"""The LR finder over several epochs and without accuracy, as the original's examples and zoo code ran it.

The original's sweep restarts the bias correction of its smoothed loss every epoch while the moving
average carries over (spec, LR finder): with the default beta the first batch of a second epoch
jumps and ends the sweep at lr_max. Its `examples/ex_superconverge.py` relies on that to pick a
range below lr_max.
"""

from __future__ import annotations

import math

import pytest
import torch

from compat.errors import ConfigError
from lernomatic.param import lr_common
from lernomatic.param.lr_finder_fields import LR_SELECT_METHODS
from lernomatic.train import trainer


class RecordingLoss(torch.nn.CrossEntropyLoss):
    """Cross entropy that keeps each training batch's loss (validation runs without gradients)."""

    def __init__(self) -> None:
        super().__init__()
        self.train_losses: list[float] = []

    def forward(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        loss = super().forward(output, target)
        if torch.is_grad_enabled():
            self.train_losses.append(loss.item())
        return loss


class RecordingTrainer(trainer.Trainer):
    """An old-style trainer that sets its own criterion after the base constructor, as zoo trainers do."""

    def __init__(self, model=None, **kwargs) -> None:
        super().__init__(model, **kwargs)
        self.criterion = RecordingLoss()


def get_lr_finder(t, lr_min, lr_max, lr_select_method='max_acc', find_num_epochs=4, explode_thresh=6.0,
                  print_every=100, **kwargs):
    """As the original's examples/ex_superconverge.py builds its finder."""
    return lr_common.LogFinder(t, lr_min=lr_min, lr_max=lr_max, lr_select_method=lr_select_method,
                               num_epochs=find_num_epochs, explode_thresh=explode_thresh, print_every=print_every,
                               **kwargs)


def original_sweep(losses, epoch_length, beta, explode_thresh, lr_min, lr_mult, restart_each_epoch=True):
    """The original's smoothing and stopping rule over these raw losses, from the spec's formulas.

    Returns (smoothed losses, log10 lrs, whether the loss exploded), up to the batch it stopped at.
    """
    average, best, lr = 0.0, 1e6, lr_min
    smoothed, log_lrs = [], []
    for step, loss in enumerate(losses):
        i = step % epoch_length if restart_each_epoch else step
        average = beta * average + (1.0 - beta) * loss
        smooth = average / (1.0 - beta ** (i + 1))
        smoothed.append(smooth)
        log_lrs.append(math.log10(lr))
        best = min(best, smooth)
        lr *= lr_mult
        if smooth > explode_thresh * best:
            return smoothed, log_lrs, True
    return smoothed, log_lrs, False


# 200 training samples in batches of 20: 10 batches an epoch
SWEEPS = {
    # the example's finder: the second epoch's first batch ends it, at lr_max
    'ex_superconverge': (dict(lr_min=1e-7, lr_max=1.0), 11, True),
    # a small beta keeps the jumps below explode_thresh: three whole epochs, each restarting the correction
    'three_epochs': (dict(lr_min=1e-6, lr_max=1e-5, find_num_epochs=3, beta=0.5, acc_test=False,
                          lr_select_method='min_loss'), 30, False),
    # max_batches ends each epoch after 4 batches; the correction restarts there
    'max_batches': (dict(lr_min=1e-6, lr_max=1e-5, find_num_epochs=3, beta=0.5, max_batches=4,
                         lr_select_method='min_loss'), 12, False),
}


@pytest.mark.parametrize('name', SWEEPS)
def test_multi_epoch_sweep_smooths_and_stops_as_the_original(make_trainer, name):
    options, batches, explodes = SWEEPS[name]
    t = make_trainer(RecordingTrainer)
    finder = get_lr_finder(t, **options)
    finder.find()

    losses = t.criterion.train_losses
    epoch_length = options.get('max_batches') or len(t.train_loader)
    smoothed, log_lrs, exploded = original_sweep(losses, epoch_length, finder.beta, finder.explode_thresh,
                                                 finder.lr_min, finder.lr_mult)
    assert len(losses) == batches > epoch_length and exploded is explodes
    assert finder.smooth_loss_history == smoothed  # same run, same formulas: equal to the last bit
    assert finder.log_lr_history == log_lrs
    assert finder.best_loss == min(smoothed) and finder.best_loss_idx == smoothed.index(min(smoothed))
    # the change of the average is recorded within an epoch only, as the original did
    assert len(finder.loss_grad_history) == batches - math.ceil(batches / epoch_length)
    if explodes:
        assert finder.log_lr_history[-1] == pytest.approx(math.log10(finder.lr_max), abs=1e-9)
    # counting the correction over the whole sweep would have given other numbers from the second epoch on
    whole_sweep, _, _ = original_sweep(losses, epoch_length, finder.beta, finder.explode_thresh, finder.lr_min,
                                       finder.lr_mult, restart_each_epoch=False)
    assert whole_sweep[:epoch_length] == smoothed[:epoch_length]
    assert whole_sweep[epoch_length] != smoothed[epoch_length]


def test_example_settings_pick_a_sane_range_on_a_realistic_problem(make_trainer, fixture_data):
    """ex_superconverge.py's finder, 4 epochs of 100 batches: the range lies inside the sweep, below lr_max."""
    t = make_trainer(train_dataset=fixture_data.make(2000, 21), batch_size=20)
    finder = get_lr_finder(t, 1e-7, 1.0)
    lr_min, lr_max = finder.find()
    assert (lr_min, lr_max) == finder.get_lr_range()

    assert all(math.isfinite(x) for x in finder.smooth_loss_history + finder.acc_history)
    assert 1e-7 <= lr_min < lr_max < 1.0
    swept = [10 ** x for x in finder.log_lr_history]
    assert 1e-7 <= min(swept) and max(swept) <= 1.0 + 1e-9
    assert len(finder.smooth_loss_history) == len(t.train_loader) + 1  # stopped at the second epoch's first batch
    assert finder.best_acc > 0.6  # the accuracy the range was chosen at is real learning, not chance


# ---- acc_test=False
def test_acc_test_false_with_the_default_method_runs_as_the_original(make_trainer, caplog, tmp_path):
    """No accuracy is recorded; 'max_acc' then follows best_acc_idx = 0: the range from the first lr."""
    t = make_trainer()
    finder = lr_common.LogFinder(t, num_epochs=2, max_batches=5, acc_test=False)
    assert (finder.acc_test, finder.lr_select_method) == (False, 'max_acc')
    with caplog.at_level('WARNING', logger='lernomatic'):
        lr_min, lr_max = finder.find()
    assert finder.acc_history == [] and finder.best_acc_idx == 0 and len(finder.smooth_loss_history) > 1
    first = finder.log_lr_history[0]
    assert (lr_min, lr_max) == (10 ** (first * 2.0), 10 ** first) == pytest.approx((1e-12, 1e-6))
    assert [r.getMessage() for r in caplog.records if 'acc_test=False' in r.getMessage()] != []
    # and such a finder's file loads back
    finder.save(tmp_path / 'finder.pkl')
    loaded = lr_common.lr_finder_auto_load(tmp_path / 'finder.pkl')
    assert loaded.acc_test is False and loaded.get_lr_range() == (lr_min, lr_max)


@pytest.mark.parametrize('method', LR_SELECT_METHODS)
def test_acc_test_false_is_accepted_with_every_method(method):
    finder = lr_common.LogFinder(None, acc_test=False, lr_select_method=method)
    assert (finder.acc_test, finder.lr_select_method) == (False, method)


@pytest.mark.parametrize('method', ['laplace', 'sobel'])
def test_edge_methods_without_accuracy_fail_before_the_sweep(make_trainer, method):
    t = make_trainer()
    before = {k: v.clone() for k, v in t.model.get_net_state_dict().items()}
    finder = lr_common.LogFinder(t, acc_test=False, lr_select_method=method)
    with pytest.raises(ConfigError, match=f"acc_test=False records no accuracy, but lr_select_method='{method}'"
                                          ".*use acc_test=True, or lr_select_method='min_loss'"):
        finder.find()
    assert finder.smooth_loss_history == [] and t.criterion is not None
    assert all(torch.equal(before[k], v) for k, v in t.model.get_net_state_dict().items())


@pytest.mark.parametrize(('kwargs', 'message'), [
    ({'acc_test': 'yes'}, "acc_test must be True or False, got 'yes'"),
    ({'acc_test': None}, 'acc_test must be True or False, got None'),
    ({'acc_test': False, 'lr_select_method': 'best'}, "lr_select_method must be one of max_acc, .*got 'best'"),
    ({'acc_test': False, 'lr_min': 1.0, 'lr_max': 0.5}, 'lr_min must be below lr_max'),
])
def test_truly_invalid_values_are_still_refused_at_construction(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        lr_common.LogFinder(None, **kwargs)
