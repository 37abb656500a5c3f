"""LR range test (`lernomatic.param.lr_common`), used the way old zoo code uses it."""

from __future__ import annotations

import copy
import math
import os
import pickle
import subprocess

import lightning
import matplotlib
import numpy as np
import pytest
import torch
from lightning.pytorch.tuner import Tuner
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from torch.utils.data import DataLoader
from torch.utils.tensorboard import SummaryWriter

from compat.adapter import LernomaticModule
from compat.errors import CheckpointError, ConfigError
from lernomatic.param import lr_common, lr_finder_fields

from helpers import state_dicts_equal

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402 - after choosing the headless backend

METHODS = ('max_acc', 'min_loss', 'max_range', 'laplace', 'sobel')


def make_finder(trainer, **kwargs) -> lr_common.LRFinder:
    """As zoo modules build theirs."""
    return lr_common.LogFinder(trainer, num_epochs=2, max_batches=5, acc_test=True, verbose=False, **kwargs)


def trained_a_little(make_trainer, **overrides):
    """A trainer whose Adam already has state, and whose lr is not the one it was built with."""
    trainer = make_trainer(**overrides)
    data, target = next(iter(trainer.train_loader))
    loss = trainer.criterion(trainer.model.forward(data.to(trainer.device)), target.to(trainer.device))
    trainer.optimizer.zero_grad()
    loss.backward()
    trainer.optimizer.step()
    trainer.set_learning_rate(0.0123)
    return trainer


def test_fields_are_declared_without_values():
    """Each option and state field is annotated on LRFinder (for mypy); the field tables alone hold the defaults."""
    fields = {**lr_finder_fields.FINDER_OPTIONS, **lr_finder_fields.FINDER_STATE}
    assert set(fields) <= set(lr_common.LRFinder.__annotations__)
    assert [name for name in fields if name in vars(lr_common.LRFinder)] == []


def snapshot(trainer):
    return (copy.deepcopy(trainer.model.get_net_state_dict()), copy.deepcopy(trainer.optimizer.state_dict()),
            copy.deepcopy(trainer.get_trainer_params()))


def assert_restored(trainer, before):
    weights, optim, params = before
    assert state_dicts_equal(trainer.model.get_net_state_dict(), weights)
    after = trainer.optimizer.state_dict()
    assert after['param_groups'] == optim['param_groups']  # the lr 0.0123 included
    assert list(after['state']) == list(optim['state'])
    for index, state in optim['state'].items():
        for key, value in state.items():
            assert torch.equal(after['state'][index][key].cpu(), value.cpu()), (index, key)
            if value.dim() > 0:  # Adam keeps its step count on the CPU
                assert after['state'][index][key].device == trainer.device
    assert trainer.get_trainer_params() == params
    assert all(p.device == trainer.device for p in trainer.model.get_model_parameters())


# ---- find() on real training
@pytest.mark.parametrize('method', METHODS)
def test_find_by_every_method_restores_the_trainer(make_trainer, method):
    trainer = trained_a_little(make_trainer)
    before = snapshot(trainer)
    # a threshold above the jump of the second epoch's first smoothed losses (the bias correction
    # restarts there), so that both epochs run
    finder = make_finder(trainer, lr_select_method=method, lr_trunc=2, explode_thresh=100.0)
    lr_range = finder.find()

    assert_restored(trainer, before)
    assert trainer.model.get_net().training
    # 2 epochs of 5 batches; the lr grows by (lr_max/lr_min)**(1/len(train_loader)) each batch, across epochs
    assert finder.lr_mult == pytest.approx((1.0 / 1e-6) ** (1 / len(trainer.train_loader)))
    np.testing.assert_allclose(finder.log_lr_history, [-6 + 0.6 * i for i in range(10)], atol=1e-12)
    assert len(finder.smooth_loss_history) == len(finder.acc_history) == 10
    assert len(finder.loss_grad_history) == 8  # within each epoch, as the original recorded it
    assert finder.best_loss == min(finder.smooth_loss_history)
    assert finder.best_acc == max(finder.acc_history) > 0
    assert finder.get_lr_history() is finder.log_lr_history
    lo, hi = lr_range
    assert (lo, hi) == finder.get_lr_range() and isinstance(lo, float) and isinstance(hi, float)
    log_lrs = finder.log_lr_history
    expected_hi = {'max_acc': log_lrs[int(np.argmax(finder.acc_history))],
                   'min_loss': log_lrs[int(np.argmin(finder.smooth_loss_history))], 'max_range': log_lrs[-1]}
    if method in expected_hi:
        assert hi == pytest.approx(10 ** expected_hi[method]) and lo == pytest.approx(10 ** (2 * expected_hi[method]))
    else:
        # edges are looked for at least lr_trunc=2 points from either end
        assert lo <= hi and np.isclose(np.log10([lo, hi])[:, None], log_lrs[2:8]).any(axis=1).all()


def test_sweep_is_the_plain_pytorch_loop_it_stands_for(make_trainer):
    trainer = make_trainer()
    net = copy.deepcopy(trainer.model.get_net())
    optimizer = torch.optim.Adam(net.parameters(), lr=trainer.learning_rate, weight_decay=trainer.weight_decay)
    finder = make_finder(trainer, lr_select_method='max_acc', beta=0.9, lr_min=1e-3)
    finder.find()

    criterion, mult = torch.nn.CrossEntropyLoss(), (1.0 / 1e-3) ** (1 / len(trainer.train_loader))
    val_data, val_target = (t.to(trainer.device) for t in trainer.val_loader.dataset.tensors)
    average, smoothed, accuracy = 0.0, [], []
    for step, (data, target) in enumerate([batch for _ in range(2) for batch in list(trainer.train_loader)[:5]]):
        optimizer.param_groups[0]['lr'] = 1e-3 * mult ** step
        loss = criterion(net(data.to(trainer.device)), target.to(trainer.device))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        average = 0.9 * average + 0.1 * loss.item()
        smoothed.append(average / (1 - 0.9 ** (step % 5 + 1)))  # the correction restarts each epoch
        with torch.no_grad():
            accuracy.append((net(val_data).argmax(1) == val_target).double().mean().item())
        if smoothed[-1] > 4.0 * min(smoothed):
            break
    assert len(smoothed) == 6  # the second epoch's first smoothed loss jumps past 4 x the best
    assert finder.smooth_loss_history == pytest.approx(smoothed, rel=1e-6)
    assert finder.acc_history == pytest.approx(accuracy, abs=1e-12)  # each validation on its own, not a running mean
    assert len(set(accuracy)) > 2


def test_find_is_quiet_and_the_trainer_trains_on(make_trainer, caplog):
    trainer = trained_a_little(make_trainer)
    finder = lr_common.LogFinder(trainer, num_epochs=2, max_batches=5, acc_test=False, lr_select_method='min_loss')
    with caplog.at_level('INFO'):
        finder.find()
    assert not [r.getMessage() for r in caplog.records if r.name.startswith('lightning')]  # no banners
    assert finder.acc_history == []  # no validation without acc_test
    trainer.train()  # the trainer trains on as if nothing happened
    assert trainer.cur_epoch == trainer.num_epochs and trainer.get_loss_history() is not None


@pytest.mark.filterwarnings('ignore:.*`validation_step` but have no `val_dataloader`')  # the Tuner's own fit
def test_smoothing_matches_lightning_tuner(make_trainer, fixture_nets, fixture_data, tmp_path):
    trainer = make_trainer(train_dataset=fixture_data.make(2000, 21), batch_size=20)
    initial = copy.deepcopy(trainer.model.get_net_state_dict())
    finder = lr_common.LogFinder(trainer, num_epochs=1, lr_min=1e-5, lr_max=1.0, beta=0.98, explode_thresh=4.0,
                                 acc_test=False, lr_select_method='min_loss')
    lo, hi = finder.find()

    module = LernomaticModule(fixture_nets.MLPModel(), learning_rate=1e-5)
    module.net.load_state_dict(initial)
    tuner_trainer = lightning.Trainer(accelerator='cpu', logger=False, enable_progress_bar=False,
                                      enable_model_summary=False, default_root_dir=tmp_path, max_epochs=1)
    result = Tuner(tuner_trainer).lr_find(module, DataLoader(fixture_data.make(2000, 21), batch_size=20),
                                          min_lr=1e-5, max_lr=1.0, num_training=100, early_stop_threshold=4.0)
    theirs_lr, theirs_loss = np.array(result.results['lr']), np.array(result.results['loss'])
    ours_lr, ours_loss = 10 ** np.array(finder.log_lr_history), np.array(finder.smooth_loss_history)
    # both sweeps multiply min_lr by the same factor per batch (Lightning records each loss with the
    # lr of the batch after it, from its second batch on)
    count = min(len(ours_lr), len(theirs_lr))
    np.testing.assert_allclose(ours_lr[2:count], theirs_lr[1:count - 1], rtol=1e-9)
    # the same smoothed losses once the smoothing has warmed up (from lr = 1e-2 on)
    warm = (ours_lr >= 1e-2) & (ours_lr <= 0.5)
    assert warm.sum() > 20
    np.testing.assert_allclose(ours_loss[warm], np.interp(np.log(ours_lr[warm]), np.log(theirs_lr), theirs_loss),
                               rtol=0.05)
    # the chosen range sits where Lightning's curve falls: hi at its (warmed-up) bottom, lo past most of the fall
    warm_theirs = theirs_lr >= 1e-2
    bottom = theirs_lr[warm_theirs][np.argmin(theirs_loss[warm_theirs])]
    assert abs(math.log10(hi) - math.log10(bottom)) < 0.25

    def theirs_at(lr: float) -> float:
        return float(np.interp(np.log(lr), np.log(theirs_lr), theirs_loss))

    assert theirs_at(lo) < theirs_at(lo / 10) - 0.1


def test_sweep_stops_when_the_loss_explodes(make_trainer):
    finder = lr_common.LogFinder(make_trainer(), lr_min=1e-3, lr_max=1e6, beta=0.9, explode_thresh=2.0,
                                 acc_test=False, lr_select_method='min_loss')
    finder.find()
    losses = finder.smooth_loss_history
    assert 1 < len(losses) < 8 * 10
    assert not all(math.isfinite(x) for x in losses[-1:]) or losses[-1] > 2.0 * min(losses)
    assert all(loss <= 2.0 * min(losses[:i + 1]) for i, loss in enumerate(losses[:-1]))


def test_tensorboard_tags(make_trainer, tmp_path):
    writer = SummaryWriter(log_dir=str(tmp_path / 'tb'))
    finder = make_finder(make_trainer(tb_writer=writer), lr_select_method='max_acc', beta=0.9)
    finder.find()
    writer.close()
    events = EventAccumulator(str(tmp_path / 'tb'))
    events.Reload()
    scalars = {tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()['scalars']}
    assert set(scalars) == {'lr_find/loss', 'lr_find/smooth_loss', 'lr_find/val_acc', 'lr_find/avg_val_loss'}
    steps = list(range(len(finder.smooth_loss_history)))
    assert len(steps) > 5 and all([step for step, _ in points] == steps for points in scalars.values())
    np.testing.assert_allclose([v for _, v in scalars['lr_find/smooth_loss']], finder.smooth_loss_history, rtol=1e-6)
    np.testing.assert_allclose([v for _, v in scalars['lr_find/val_acc']], finder.acc_history, rtol=1e-6)
    # the smoothed loss is the moving average of the raw losses, its bias correction restarted each epoch
    average, smoothed = 0.0, []
    for step, (_, loss) in enumerate(scalars['lr_find/loss']):
        average = 0.9 * average + 0.1 * loss
        smoothed.append(average / (1 - 0.9 ** (step % 5 + 1)))
    np.testing.assert_allclose(smoothed, finder.smooth_loss_history, rtol=1e-5)


def test_acc_records_the_accuracy_of_the_model(make_trainer):
    trainer = make_trainer()
    finder = make_finder(trainer)
    value = finder.acc(trainer.val_loader, 0)
    with torch.no_grad():
        data, target = (t.to(trainer.device) for t in trainer.val_loader.dataset.tensors)
        expected = (trainer.model.forward(data).argmax(1) == target).double().mean().item()
    assert value == pytest.approx(expected) and finder.acc_history == [value] and finder.best_acc == value
    assert trainer.model.get_net().training


# ---- without a trainer, and bad options
def test_finder_without_trainer_constructs_and_find_says_why(make_trainer):
    finder = lr_common.LogFinder(None)
    assert finder.trainer is None and finder.model_params is None and finder.trainer_params is None
    assert (finder.num_epochs, finder.lr_min, finder.lr_max, finder.beta, finder.lr_select_method) == \
        (8, 1e-6, 1.0, 0.999, 'max_acc')
    assert (finder.best_loss, finder.best_acc, finder.learning_rate, finder.lr_mult) == (1e6, 0.0, 0.0, 0.0)
    assert finder.get_lr_history() is None
    with pytest.raises(ConfigError, match='LogFinder has no trainer'):
        finder.find()
    with pytest.raises(NotImplementedError):
        lr_common.LRFinder(make_trainer()).find()
    with pytest.raises(ValueError, match='no val_loader'):
        lr_common.LogFinder(make_trainer(val_dataset=None)).find()
    with pytest.raises(ConfigError, match='trainer.model is None'):
        lr_common.LogFinder(make_trainer(model=None)).find()


@pytest.mark.parametrize(('kwargs', 'message'), [
    ({'lr_min': 1.0, 'lr_max': 0.1}, 'lr_min must be below lr_max'),
    ({'num_epochs': -1}, 'num_epochs must be an integer >= 1, got -1'),
    ({'lr_select_method': 'best'}, "lr_select_method must be one of max_acc, .*sobel, got 'best'"),
    ({'beta': 1.0}, r'beta must be a number in \[0, 1\)'),
    ({'acc_test': 'yes'}, 'acc_test must be True or False'),
    ({'max_batches': 2.5}, 'max_batches must be an integer >= 0'),
    ({'strict': 'yes'}, 'strict must be None, True or False'),
])
def test_bad_options_fail_at_construction(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        lr_common.LogFinder(None, **kwargs)


def test_unknown_kwargs_warn_once_and_strict_raises(caplog, monkeypatch):
    monkeypatch.delenv('LERNOMATIC_STRICT', raising=False)
    with caplog.at_level('WARNING', logger='lernomatic'):
        finder = lr_common.LogFinder(None, num_epoch=3, data_dir='/data')
    warnings = [r for r in caplog.records if 'LogFinder ignores unknown' in r.getMessage()]
    assert len(warnings) == 1 and "'num_epochs'" in warnings[0].getMessage()
    assert not hasattr(finder, 'num_epoch') and not hasattr(finder, 'data_dir') and finder.num_epochs == 8
    with pytest.raises(ConfigError, match="unknown LogFinder option.*'num_epoch'"):
        lr_common.LogFinder(None, num_epoch=3, strict=True)
    monkeypatch.setenv('LERNOMATIC_STRICT', '1')
    with pytest.raises(ConfigError, match="'num_epoch'"):
        lr_common.LogFinder(None, num_epoch=3)
    lr_common.LogFinder(None, num_epoch=3, strict=False)


# ---- get_lr_range on hand-made curves
def finder_with(acc=None, log_lr=None, **kwargs) -> lr_common.LogFinder:
    finder = lr_common.LogFinder(None, **kwargs)
    finder.log_lr_history = list(log_lr if log_lr is not None else [-6.0, -5.0, -4.0, -3.0, -2.0, -1.0])
    finder.smooth_loss_history = [2.0, 1.5, 1.0, 0.5, 0.8, 3.0][:len(finder.log_lr_history)]
    finder.acc_history = list(acc if acc is not None else [0.1, 0.2, 0.5, 0.4, 0.3, 0.2])
    finder.best_acc_idx, finder.best_loss_idx = 2, 3
    return finder


@pytest.mark.parametrize(('method', 'kwargs', 'expected'), [
    ('max_acc', {}, (1e-8, 1e-4)),
    ('max_acc', {'lr_max_scale': 0.5, 'lr_min_factor': 3.0}, (1e-6, 1e-2)),
    ('min_loss', {}, (1e-6, 1e-3)),
    ('max_range', {}, (1e-2, 1e-1)),
])
def test_range_from_one_point(method, kwargs, expected):
    assert finder_with(lr_select_method=method, **kwargs).get_lr_range() == pytest.approx(expected)


def test_laplace_spans_the_plateau_of_high_accuracy():
    log_lr = [-6 + 0.2 * i for i in range(30)]
    finder = finder_with([0.1] * 10 + [0.9] * 10 + [0.1] * 10, log_lr, lr_select_method='laplace', lr_trunc=2)
    assert finder.get_lr_range() == pytest.approx((10 ** log_lr[10], 10 ** log_lr[19]))
    finder.lr_trunc = 15  # nothing left between the cut ends
    with pytest.raises(ValueError, match='lr_trunc=15 from both ends, and the sweep has 30'):
        finder.get_lr_range()


def test_sobel_spans_the_steepest_rise_of_accuracy():
    log_lr = [-6 + 0.2 * i for i in range(30)]
    rise = [0.1] * 11 + [0.3, 0.5, 0.7] + [0.9] * 16
    finder = finder_with(rise, log_lr, lr_select_method='sobel', lr_trunc=2)
    assert finder.get_lr_range() == pytest.approx((10 ** log_lr[11], 10 ** log_lr[13]))
    finder.acc_history = rise[::-1]  # accuracy that only falls has no rising edge
    with pytest.raises(ValueError, match='found no edge'):
        finder.get_lr_range()


def test_range_errors_name_the_method():
    with pytest.raises(NotImplementedError, match='min_range'):
        finder_with(lr_select_method='min_range').get_lr_range()
    finder = finder_with()
    finder.lr_select_method = 'median'
    with pytest.raises(ValueError, match="Invalid lr_select_method 'median'"):
        finder.get_lr_range()
    with pytest.raises(ValueError, match='no learning-rate history'):
        lr_common.LogFinder(None).get_lr_range()


# ---- plots
@pytest.mark.parametrize('log', [False, True])
def test_plots_draw_the_curve_and_red_lines_at_the_range(log):
    finder = finder_with(lr_select_method='max_acc')
    lo, hi = finder.get_lr_range()
    x = np.array(finder.log_lr_history) if log else 10 ** np.array(finder.log_lr_history)
    for plot, values in ((finder.plot_lr_vs_acc, finder.acc_history), (finder.plot_lr_vs_loss,
                                                                       finder.smooth_loss_history)):
        fig, ax = plt.subplots()
        plot(ax, log=log)
        curve, *marks = ax.lines
        np.testing.assert_allclose(curve.get_xdata(), x)
        np.testing.assert_allclose(curve.get_ydata(), values)
        assert [m.get_color() for m in marks] == ['r', 'r']
        expected = (math.log10(lo), math.log10(hi)) if log else (lo, hi)
        np.testing.assert_allclose([m.get_xdata()[0] for m in marks], expected)
        assert '[max_acc]' in ax.get_title()
        plot(ax, title='mine', log=log)
        assert ax.get_title() == 'mine'
        plt.close(fig)
    with pytest.raises(RuntimeError, match='no learning rate history'):
        lr_common.LogFinder(None).plot_lr_vs_acc(plt.gca())


# ---- files
def plain(value) -> bool:
    if isinstance(value, list):
        return all(type(v) is float for v in value)
    return value is None or type(value) in (bool, int, float, str)


def test_save_load_and_auto_load_round_trip(make_trainer, tmp_path):
    finder = make_finder(make_trainer(), lr_select_method='min_loss', expr_id='run-7')
    finder.find()
    fname = tmp_path / 'finder.pkl'
    finder.save(fname)

    record = torch.load(fname, weights_only=True)
    assert record['module_name'] == 'LogFinder' and record['module_path'] == 'lernomatic.param.lr_common'
    assert 'trainer' not in record and 'model_params' not in record and 'trainer_params' not in record
    assert all(plain(value) for value in record.values())

    loaded = lr_common.lr_finder_auto_load(str(fname))
    assert type(loaded) is lr_common.LogFinder and loaded.trainer is None
    assert loaded.get_params() == finder.get_params()
    assert loaded.get_lr_range() == finder.get_lr_range()
    with pytest.raises(ConfigError, match='no trainer'):
        loaded.find()

    other = lr_common.LRFinder(None)
    other.load(fname)
    assert {k: v for k, v in other.get_params().items() if k != 'module_name'} == \
        {k: v for k, v in finder.get_params().items() if k != 'module_name'}


class RunsOnLoad:
    """Pickles as a call of `target(*args)`: what a hostile file holds."""

    def __init__(self, target, *args):
        self.target, self.args = target, args

    def __reduce__(self):
        return self.target, self.args


def valid_record() -> dict:
    finder = finder_with()
    return finder.get_params()


@pytest.mark.parametrize('target', [os.system, subprocess.Popen])
def test_files_that_run_code_are_refused(tmp_path, target):
    marker = tmp_path / 'ran'
    command = f'touch {marker}'
    for record in (RunsOnLoad(target, command if target is os.system else ['touch', str(marker)]),
                   {**valid_record(), 'acc_history': RunsOnLoad(target, command)}):
        fname = tmp_path / 'evil.pkl'
        torch.save(record, fname)
        finder = finder_with()
        before = finder.get_params()
        for load in (finder.load, lr_common.lr_finder_auto_load):
            with pytest.raises(CheckpointError, match='refused to unpickle'):
                load(fname)
        assert finder.get_params() == before
    assert not marker.exists()


@pytest.mark.parametrize(('changes', 'message'), [
    ({'module_path': 'os', 'module_name': 'system'}, "module_path must be 'lernomatic.param.lr_common'.*got 'os'"),
    ({'module_path': 'subprocess', 'module_name': 'Popen'}, 'module_path must be'),
    ({'module_name': 'ConfigError'}, 'module_name must be one of LRFinder, LogFinder'),
    ({'module_name': 'safe_load'}, 'module_name must be one of'),
    ({'module_name': '__builtins__'}, 'module_name must be one of'),
    ({'module_name': 'LernomaticModule'}, 'module_name must be one of'),
    ({'module_name': ['LogFinder']}, 'module_name must be one of'),
])
def test_auto_load_builds_only_finder_classes_of_lr_common(tmp_path, changes, message):
    fname = tmp_path / 'named.pkl'
    torch.save({**valid_record(), **changes}, fname)
    with pytest.raises(CheckpointError, match=message):
        lr_common.lr_finder_auto_load(fname)


def test_unknown_keys_are_ignored_never_set(tmp_path, caplog):
    fname = tmp_path / 'extra.pkl'
    torch.save({**valid_record(), '__dict__': {'find': 'x'}, '__class__': 'LRFinder', 'trainer': 'not a trainer',
                'find': 1, 'model_params': {'w': 1}, 'prev_avg_loss': 0.5, 7: 'int key'}, fname)
    with caplog.at_level('WARNING', logger='lernomatic'):
        loaded = lr_common.lr_finder_auto_load(fname)
    assert type(loaded) is lr_common.LogFinder and loaded.trainer is None and loaded.model_params is None
    assert callable(loaded.find) and not hasattr(loaded, 'prev_avg_loss')
    assert loaded.get_lr_range() == finder_with().get_lr_range()
    assert any('ignored unknown field' in r.getMessage() and '__dict__' in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(('changes', 'field'), [
    ({'log_lr_history': [0.0] * (lr_finder_fields.MAX_HISTORY + 1)}, 'log_lr_history must be a list of at most'),
    ({'acc_history': [0.1, 'x', 0.3, 0.4, 0.5, 0.6]}, 'acc_history must be a list'),
    ({'acc_history': [[0.1]] * 6}, 'acc_history must be a list'),
    ({'smooth_loss_history': [True] * 6}, 'smooth_loss_history must be a list'),
    ({'best_acc_idx': -1}, 'best_acc_idx must be an integer >= 0'),
    ({'best_acc_idx': 99}, 'best_acc_idx must be below 6'),
    ({'best_loss_idx': 1.0}, 'best_loss_idx must be an integer'),
    ({'lr_min': 'small'}, 'lr_min must be a finite number > 0'),
    ({'lr_min': 2.0}, 'lr_min must be below lr_max'),
    ({'lr_select_method': 'os.system'}, 'lr_select_method must be one of'),
    ({'acc_test': 'yes'}, 'acc_test must be True or False'),
    ({'expr_id': 'x' * 5000}, 'expr_id must be None'),
    ({'smooth_loss_history': [1.0]}, 'smooth_loss_history has 1 values but log_lr_history has 6'),
])
def test_malformed_fields_are_refused_and_change_nothing(tmp_path, changes, field):
    fname = tmp_path / 'bad.pkl'
    torch.save({**valid_record(), **changes}, fname)
    finder = finder_with(lr_select_method='min_loss')
    before = finder.get_params()
    for load in (finder.load, lr_common.lr_finder_auto_load):
        with pytest.raises(CheckpointError, match=f'{fname}: field {field}'):
            load(fname)
    assert finder.get_params() == before


@pytest.mark.filterwarnings('ignore:Detected pickle protocol 3')  # torch's note on the original's pickle
def test_files_that_are_not_finders_are_refused(tmp_path):
    cases = {'list.pkl': [1.0, 2.0], 'partial.pkl': {'lr_min': 1e-6}}
    for name, record in cases.items():
        torch.save(record, tmp_path / name)
    (tmp_path / 'cut.pkl').write_bytes((tmp_path / 'list.pkl').read_bytes()[:40])
    with open(tmp_path / 'original.pkl', 'wb') as original:  # how the original library saved: plain pickle
        pickle.dump({'log_lr_history': [np.float64(-6.0)], 'module_name': 'LogFinder'}, original, protocol=3)
    with open(tmp_path / 'huge.pkl', 'wb') as huge:  # sparse: its size alone must refuse it, unread
        huge.truncate(lr_finder_fields.MAX_FILE_BYTES + 1)
    for name, message in (('list.pkl', 'holds a list'), ('partial.pkl', 'missing field'), ('cut.pkl', 'truncated'),
                          ('absent.pkl', 'no such file'), ('huge.pkl', 'too large for an LR finder file'),
                          ('original.pkl', 'not a torch.save file: neither a zip archive')):
        with pytest.raises(CheckpointError, match=message):
            lr_common.LogFinder(None).load(tmp_path / name)
