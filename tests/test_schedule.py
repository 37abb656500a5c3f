"""Schedulers: values against the spec's formulas, use by the Trainer, use as a Lightning callback."""

from __future__ import annotations

import math

import lightning
import pytest
from torch.utils.data import DataLoader

from compat.adapter import LernomaticModule
from lernomatic.train import schedule

LO, HI, STEP = 1e-4, 1.0, 10
XS = range(0, 65)


def tri(x, start=0):
    """Smith's triangular CLR, written out from the spec."""
    itr = x - start
    if itr < 1:
        return LO
    cycle = math.floor(1 + itr / (2 * STEP))
    t = abs(itr / STEP - 2 * cycle + 1)
    return LO + (HI - LO) * max(0.0, 1 - t)


def tri2(x):
    if x < 1:
        return LO
    cycle = math.floor(1 + x / (2 * STEP))
    t = abs(x / STEP - 2 * cycle + 1)
    return LO + (HI - LO) * min(1.0, max(0.0, 1 - t / 2 ** cycle))


@pytest.mark.parametrize('cls, formula', [
    (schedule.TriangularScheduler, tri),
    (schedule.InvTriangularScheduler, lambda x: HI if x < 1 else HI - tri(x)),
    (schedule.Triangular2Scheduler, tri2),
    (schedule.TriangularExpScheduler, lambda x: tri(x) * math.exp(-1e-4 * x)),
    (schedule.Triangular2ExpScheduler, lambda x: tri2(x) * math.exp(-1e-4 * x)),
    (schedule.ExponentialDecayScheduler, lambda x: HI * math.exp(-0.001 * x)),
    (schedule.WarmRestartScheduler, lambda x: LO + 0.5 * (HI - LO) * (1 + math.cos(math.pi * (x % 20) / 20))),
])
def test_iteration_schedules_follow_the_formulas(cls, formula):
    scheduler = cls(lr_min=LO, lr_max=HI, stepsize=STEP)
    assert [scheduler.get_lr(x) for x in XS] == pytest.approx([formula(x) for x in XS], rel=1e-12)
    assert scheduler.schedule_input == 'iteration'


def test_triangular_peaks_and_troughs():
    scheduler = schedule.TriangularScheduler(lr_min=LO, lr_max=HI, stepsize=STEP)
    assert scheduler.get_lr(STEP) == pytest.approx(HI) and scheduler.get_lr(2 * STEP) == pytest.approx(LO)
    assert schedule.TriangularScheduler(lr_min=LO, lr_max=HI, stepsize=STEP, start_iter=5).get_lr(5 + STEP) == HI


def test_step_log_and_linear_decay():
    step = schedule.StepScheduler(lr_max=1.0, lr_decay=0.5, lr_decay_every=4)
    assert [step.get_lr(x) for x in range(1, 10)] == [1, 1, 1, 0.5, 0.5, 0.5, 0.5, 0.25, 0.25]
    log = schedule.LogDecayScheduler(lr_min=1e-3, lr_max=1.0, num_iter=3)
    assert [log.get_lr(x) for x in range(5)] == pytest.approx([1.0, 0.1, 0.01, 1e-3, 1e-3])
    linear = schedule.LinearDecayScheduler(lr_min=0.0, lr_max=1.0, num_iters=4)
    assert [linear.get_lr(x) for x in range(6)] == pytest.approx([1.0, 0.75, 0.5, 0.25, 0.0, 0.0])


def test_epoch_schedules():
    set_values = schedule.EpochSetScheduler({0: 0.1, 3: 0.01}, lr_value=True)
    assert [set_values.get_lr(e) for e in range(5)] == [0.1, 0.1, 0.1, 0.01, 0.01]
    multiply = schedule.EpochSetScheduler({0: 0.5, 2: 0.1}, lr_max=1.0)
    assert [multiply.get_lr(e) for e in (0, 0, 1, 2, 2, 3)] == pytest.approx([0.5, 0.5, 0.5, 0.05, 0.05, 0.05])
    assert schedule.EpochSetScheduler({0: 1.0}).schedule_input == 'epoch'
    decay = schedule.DecayWhenEpoch(initial_lr=1.0)
    assert [decay.get_lr(e) for e in (0, 7, 8, 16)] == pytest.approx([1.0, 1.0, 0.9, 0.81])
    to_epoch = schedule.DecayToEpoch(initial_lr=4e-4, final_lr=0.0, decay_length=4, non_decay_time=2)
    assert [to_epoch.get_lr(e) for e in range(8)] == pytest.approx([4e-4, 4e-4, 4e-4, 3e-4, 2e-4, 1e-4, 0, 0])


@pytest.mark.parametrize('schedule_dict, message', [([1, 2], 'dict'), ({1: 0.1}, '0 key'), ({0: 1, 'a': 2}, 'integer')])
def test_bad_epoch_schedules_are_refused(schedule_dict, message):
    with pytest.raises(ValueError, match=message):
        schedule.EpochSetScheduler(schedule_dict)


def test_accuracy_schedules_decay_once_per_new_drop():
    scheduler = schedule.DecayWhenAcc(initial_lr=0.01, lr_decay=0.5, acc_thresh=0.05)
    values = [scheduler.get_lr(acc) for acc in (0.5, 0.6, 0.6, 0.52, 0.52, 0.59, 0.4)]
    assert values == pytest.approx([0.01, 0.01, 0.01, 0.005, 0.005, 0.005, 0.0025])
    both = schedule.TriangularDecayWhenAcc(lr_min=LO, lr_max=HI, stepsize=STEP, lr_decay=0.5)
    assert both.get_lr(10, 0.9) == pytest.approx(HI) and both.get_lr(10, 0.5) == pytest.approx(HI / 2)
    assert both.schedule_input == 'iteration_and_accuracy'


def test_lr_history_records_returned_values():
    scheduler = schedule.TriangularScheduler(lr_min=LO, lr_max=HI, stepsize=STEP, lr_history_size=3)
    values = [scheduler.get_lr(x) for x in range(5)]
    assert scheduler.lr_history.tolist() == values[:3]
    assert schedule.TriangularScheduler(lr_history_size=3, no_lr_history=True).lr_history is None
    with pytest.raises(TypeError, match="'lr_maximum'"):
        schedule.TriangularScheduler(lr_maximum=1.0)


def test_trainer_applies_schedulers_as_before(make_trainer):
    lr = schedule.TriangularScheduler(lr_min=1e-4, lr_max=1e-2, stepsize=5)
    momentum = schedule.LinearDecayScheduler(lr_min=0.8, lr_max=0.95, num_iters=30)
    trainer = make_trainer(lr_scheduler=lr, mtm_scheduler=momentum, num_epochs=2)
    trainer.train()
    assert trainer.get_learning_rate() == pytest.approx(tri_for(20, 1e-4, 1e-2, 5))
    assert trainer.get_momentum() == pytest.approx(0.95 - 0.15 * 20 / 30)
    epoch_lr = schedule.EpochSetScheduler({0: 3e-3, 1: 1e-3}, lr_value=True)
    trainer = make_trainer(lr_scheduler=epoch_lr, num_epochs=2)
    trainer.train()
    assert trainer.get_learning_rate() == 1e-3


def tri_for(x, lo, hi, step):
    cycle = math.floor(1 + x / (2 * step))
    return lo + (hi - lo) * max(0.0, 1 - abs(x / step - 2 * cycle + 1))


def test_schedule_as_a_lightning_callback(fixture_nets, fixture_data, tmp_path):
    scheduler = schedule.TriangularScheduler(lr_min=1e-4, lr_max=1e-2, stepsize=4)
    module = LernomaticModule(fixture_nets.MLPModel())
    trainer = lightning.Trainer(max_epochs=1, accelerator='cpu', logger=False, enable_progress_bar=False,
                                enable_model_summary=False, callbacks=[scheduler.as_callback()],
                                default_root_dir=tmp_path)
    trainer.fit(module, train_dataloaders=DataLoader(fixture_data.make(120, 1), batch_size=20))
    assert trainer.global_step == 6
    assert trainer.optimizers[0].param_groups[0]['lr'] == pytest.approx(tri_for(6, 1e-4, 1e-2, 4))
    momentum = schedule.LinearDecayScheduler(lr_min=0.8, lr_max=0.9, num_iters=6).as_callback('momentum')
    trainer = lightning.Trainer(max_epochs=1, accelerator='cpu', logger=False, enable_progress_bar=False,
                                enable_model_summary=False, callbacks=[momentum], default_root_dir=tmp_path)
    trainer.fit(LernomaticModule(fixture_nets.MLPModel()), DataLoader(fixture_data.make(120, 1), batch_size=20))
    assert trainer.optimizers[0].param_groups[0]['betas'][0] == pytest.approx(0.8)
