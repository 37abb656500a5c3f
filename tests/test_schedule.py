"""Schedulers: values against the spec's formulas, options, use by the Trainer, use as a Lightning callback.

The formulas below are written out here from the spec, not taken from `lernomatic.train.schedule`.
"""

from __future__ import annotations

import logging
import math

import lightning
import pytest
import torch
from torch.utils.data import DataLoader

from compat.adapter import LernomaticModule
from compat.errors import ConfigError
from lernomatic.train import schedule

LO, HI, STEP = 1e-4, 1.0, 10
XS = range(0, 65)


def tri(x, lo=LO, hi=HI, step=STEP, start=0):
    """Smith's triangular CLR: lo before the first iteration, else lo + (hi-lo) max(0, 1-t)."""
    itr = x - start
    if itr < 1:
        return lo
    cycle = math.floor(1 + itr / (2 * step))
    t = abs(itr / step - 2 * cycle + 1)
    return lo + (hi - lo) * max(0.0, 1 - t)


def tri2(x):
    if x < 1:
        return LO
    cycle = math.floor(1 + x / (2 * STEP))
    t = abs(x / STEP - 2 * cycle + 1)
    return LO + (HI - LO) * min(1.0, max(0.0, 1 - t / 2 ** cycle))


def cosine(fraction, lo=LO, hi=HI):
    return lo + 0.5 * (hi - lo) * (1 + math.cos(math.pi * fraction))


def arguments(scheduler, x=3, acc=0.5):
    """What the Trainer passes, by the scheduler's declared input."""
    return {'iteration': (x,), 'epoch': (x,), 'accuracy': (acc,),
            'iteration_and_accuracy': (x, acc)}[scheduler.schedule_input]


def make(cls, **kwargs):
    return cls({0: 0.1}, **kwargs) if cls is schedule.EpochSetScheduler else cls(**kwargs)


ALL_CLASSES = [getattr(schedule, name) for name in schedule.__all__]


# ---- values
@pytest.mark.parametrize('cls, formula', [
    (schedule.TriangularScheduler, tri),
    (schedule.InvTriangularScheduler, lambda x: HI if x < 1 else HI - tri(x)),
    (schedule.Triangular2Scheduler, tri2),
    (schedule.TriangularExpScheduler, lambda x: tri(x) * math.exp(-1e-4 * x)),
    (schedule.Triangular2ExpScheduler, lambda x: tri2(x) * math.exp(-1e-4 * x)),
    (schedule.ExponentialDecayScheduler, lambda x: HI * math.exp(-0.001 * x)),
])
def test_iteration_schedules_follow_the_formulas_with_default_k(cls, formula):
    scheduler = cls(lr_min=LO, lr_max=HI, stepsize=STEP)
    assert [scheduler.get_lr(x) for x in XS] == pytest.approx([formula(x) for x in XS], rel=1e-12)
    assert scheduler.schedule_input == 'iteration'


def test_exp_variants_take_k_and_triangular_takes_start_iter():
    exp = schedule.TriangularExpScheduler(lr_min=LO, lr_max=HI, stepsize=STEP, k=0.05)
    assert [exp.get_lr(x) for x in XS] == pytest.approx([tri(x) * math.exp(-0.05 * x) for x in XS], rel=1e-12)
    decay = schedule.ExponentialDecayScheduler(lr_max=0.5, k=0.2)
    assert decay.get_lr(7) == pytest.approx(0.5 * math.exp(-1.4))
    shifted = schedule.TriangularScheduler(lr_min=LO, lr_max=HI, stepsize=STEP, start_iter=5)
    assert [shifted.get_lr(x) for x in XS] == pytest.approx([tri(x, start=5) for x in XS], rel=1e-12)
    assert shifted.get_lr(5 + STEP) == HI and shifted.get_lr(5 + 2 * STEP) == pytest.approx(LO)


def test_step_log_and_linear_decay():
    step = schedule.StepScheduler(lr_max=1.0, lr_decay=0.5, lr_decay_every=4)
    assert [step.get_lr(x) for x in range(0, 10)] == [0.5, 0.5, 0.5, 0.5, 0.25, 0.25, 0.25, 0.25, 0.125, 0.125]
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
    assert schedule.DecayWhenEpoch(lr_max=0.3, lr_decay=0.5, num_epochs=2).get_lr(4) == pytest.approx(0.075)
    to_epoch = schedule.DecayToEpoch(initial_lr=4e-4, final_lr=0.0, decay_length=4, non_decay_time=2)
    assert [to_epoch.get_lr(e) for e in range(8)] == pytest.approx([4e-4, 4e-4, 4e-4, 3e-4, 2e-4, 1e-4, 0, 0])


@pytest.mark.parametrize('schedule_dict, message', [([1, 2], 'dict'), ({1: 0.1}, '0 key'), ({0: 1, 'a': 2}, 'integer')])
def test_bad_epoch_schedules_are_refused(schedule_dict, message):
    with pytest.raises(ConfigError, match=message):
        schedule.EpochSetScheduler(schedule_dict)


def test_decay_when_acc_uses_a_threshold_relative_to_the_best_and_judges_each_value_once():
    scheduler = schedule.DecayWhenAcc(initial_lr=0.01, lr_decay=0.5, acc_thresh=0.05)
    # best 0.5: the line is 0.5 * 0.95 = 0.475, so 0.46 decays (an absolute 0.05 would not: 0.46 > 0.45)
    values = [scheduler.get_lr(acc) for acc in (0.5, 0.48, 0.46, 0.46, 0.6, 0.59, 0.5)]
    assert values == pytest.approx([0.01, 0.01, 0.005, 0.005, 0.005, 0.005, 0.0025])
    assert scheduler.best_acc == 0.6 and scheduler.schedule_input == 'accuracy'


def test_triangular_decay_when_acc_decays_while_the_accuracy_is_low():
    scheduler = schedule.TriangularDecayWhenAcc(lr_min=LO, lr_max=HI, stepsize=STEP, lr_decay=0.5)
    assert scheduler.schedule_input == 'iteration_and_accuracy'
    assert scheduler.get_lr(10, 0.9) == pytest.approx(HI)
    assert scheduler.get_lr(10, 0.8) == pytest.approx(HI / 2)  # 0.8 < 0.9 * 0.95
    assert scheduler.get_lr(10, 0.8) == pytest.approx(HI / 2)  # not cumulative
    assert scheduler.get_lr(5, 0.86) == pytest.approx(tri(5))  # 0.86 >= 0.855: back to the plain value
    assert scheduler.get_lr(0, 0.1) == LO


def test_momentum_schedulers():
    constant = schedule.MtmScheduler()
    assert (constant.mtm_min, constant.mtm_max) == (1e-3, 0.9)
    assert [constant.get_lr(x) for x in (0, 5, 500)] == [0.9, 0.9, 0.9]
    cyclic = schedule.TriangularMtmScheduler(mtm_min=0.5, mtm_max=0.95, stepsize=4)
    assert isinstance(cyclic, schedule.MtmScheduler)
    # the mirror of the triangular lr: 0.95 - 0.45 * (the triangle's rise from 0 to 1)
    expected = [0.95 - 0.45 * (tri(x, 0.0, 1.0, 4)) for x in range(20)]
    assert [cyclic.get_mtm(x) for x in range(20)] == pytest.approx(expected, rel=1e-12)
    assert [cyclic.get_lr(x) for x in range(20)] == pytest.approx(expected, rel=1e-12)
    assert cyclic.get_lr(4) == pytest.approx(0.5) and cyclic.get_lr(8) == pytest.approx(0.95)


# ---- the warm restart counter
def test_warm_restart_counts_calls_and_restarts_when_a_period_completes():
    stepsize = 3  # a period of 6 calls
    scheduler = schedule.WarmRestartScheduler(lr_min=LO, lr_max=HI, stepsize=stepsize, step_per_epoch=50)
    values, counters = [], []
    for x in range(1, 15):
        values.append(scheduler.get_lr(x))
        counters.append(scheduler.batch_since_restart)
    assert counters == [1, 2, 3, 4, 5, 6, 1, 2, 3, 4, 5, 6, 1, 2]
    assert values == pytest.approx([cosine(c / 6) for c in counters], rel=1e-12)
    assert values[5] == pytest.approx(LO) and values[11] == pytest.approx(LO)  # a period ends at lr_min
    assert values[6] == values[0] > 0.9  # ... and the next call restarts near lr_max
    assert values[:6] == sorted(values[:6], reverse=True)


def test_warm_restart_before_the_first_iteration_uses_step_per_epoch():
    scheduler = schedule.WarmRestartScheduler(lr_min=0.0, lr_max=1.0, stepsize=2, step_per_epoch=5)
    assert scheduler.get_lr(0) == pytest.approx(cosine(1 / (2 * 2 * 5), 0.0, 1.0))
    assert scheduler.batch_since_restart == 1  # that call counts
    assert scheduler.get_lr(1) == pytest.approx(cosine(2 / 4, 0.0, 1.0))
    assert schedule.WarmRestartScheduler().step_per_epoch == 1000


# ---- options
SPEC_DEFAULTS = {
    schedule.TriangularScheduler: dict(lr_min=1e-4, lr_max=1.0, stepsize=1000, start_iter=0, lr_history_size=0,
                                       no_lr_history=False),
    schedule.TriangularExpScheduler: dict(k=1e-4), schedule.Triangular2ExpScheduler: dict(k=1e-4),
    schedule.ExponentialDecayScheduler: dict(k=0.001),
    schedule.StepScheduler: dict(lr_decay=0.001, lr_decay_every=10000),
    schedule.LogDecayScheduler: dict(num_iter=50000), schedule.LinearDecayScheduler: dict(num_iters=100000),
    schedule.WarmRestartScheduler: dict(step_per_epoch=1000),
    schedule.EpochSetScheduler: dict(lr_value=False),
    schedule.DecayWhenEpoch: dict(lr_decay=0.9, num_epochs=8),
    schedule.DecayToEpoch: dict(initial_lr=3e-4, final_lr=0.0, decay_length=40, non_decay_time=0),
    schedule.DecayWhenAcc: dict(lr_decay=0.9, acc_thresh=0.05, initial_lr=0.01),
    schedule.TriangularDecayWhenAcc: dict(lr_decay=0.9, acc_thresh=0.05),
    schedule.MtmScheduler: dict(mtm_min=1e-3, mtm_max=0.9),
    schedule.TriangularMtmScheduler: dict(mtm_min=1e-3, mtm_max=0.9, stepsize=1000, start_iter=0),
}


@pytest.mark.parametrize('cls', list(SPEC_DEFAULTS), ids=lambda cls: cls.__name__)
def test_spec_defaults(cls):
    scheduler = make(cls)
    assert {name: getattr(scheduler, name) for name in SPEC_DEFAULTS[cls]} == SPEC_DEFAULTS[cls]


@pytest.mark.parametrize('cls', ALL_CLASSES[1:], ids=lambda cls: cls.__name__)
def test_repr_is_the_class_name_and_values_are_python_floats(cls):
    scheduler = make(cls, stepsize=2)
    assert repr(scheduler) == cls.__name__
    for x in (0, 1, 3, 7):
        assert type(scheduler.get_lr(*arguments(scheduler, x))) is float


def test_unknown_kwargs_are_ignored_with_one_warning(caplog):
    with caplog.at_level(logging.WARNING, logger='lernomatic'):
        scheduler = schedule.TriangularScheduler(lr_maximum=0.5, step_per_epoch=10, lr_max=0.2)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert 'TriangularScheduler' in warnings[0] and "'lr_maximum'" in warnings[0] and "'step_per_epoch'" in warnings[0]
    assert "Did you mean 'lr_max'" in warnings[0]
    assert scheduler.lr_max == 0.2 and not hasattr(scheduler, 'lr_maximum')
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger='lernomatic'):
        schedule.WarmRestartScheduler(step_per_epoch=10, lr_max=0.2)  # its own option, as zoo code passes it
        schedule.EpochSetScheduler({0: 0.1}, lr_value=True)
    assert not [r for r in caplog.records if r.levelno == logging.WARNING]


@pytest.mark.parametrize('cls', ALL_CLASSES, ids=lambda cls: cls.__name__)
def test_options_are_declared_without_values(cls):
    """Each option is annotated along the class hierarchy (for mypy); `OPTIONS` alone holds the defaults."""
    declared = {name for klass in cls.__mro__ for name in vars(klass).get('__annotations__', {})}
    assert set(cls.known_options()) <= declared
    assert [name for name in cls.known_options() if any(name in vars(klass) for klass in cls.__mro__)] == []


@pytest.mark.parametrize('cls', ALL_CLASSES, ids=lambda cls: cls.__name__)
def test_unknown_kwargs_raise_when_strict(cls, monkeypatch):
    with pytest.raises(ConfigError, match=f"unknown {cls.__name__} option.*'bogus'"):
        make(cls, bogus=1, strict=True)
    monkeypatch.setenv('LERNOMATIC_STRICT', '1')
    with pytest.raises(ConfigError, match="'bogus'"):
        make(cls, bogus=1)
    assert make(cls, bogus=1, strict=False) is not None  # the caller's word beats the environment


@pytest.mark.parametrize('cls, option', [(schedule.TriangularScheduler, 'stepsize'),
                                         (schedule.StepScheduler, 'lr_decay_every'),
                                         (schedule.LogDecayScheduler, 'num_iter'),
                                         (schedule.DecayToEpoch, 'decay_length'),
                                         (schedule.WarmRestartScheduler, 'step_per_epoch')])
def test_options_that_divide_must_be_positive(cls, option):
    with pytest.raises(ConfigError, match=f'{option} must be a number > 0, got 0'):
        cls(**{option: 0})
    with pytest.raises(ConfigError, match='strict must be'):
        cls(strict='yes')


def test_lr_history_records_returned_values_and_plots():
    scheduler = schedule.TriangularScheduler(lr_min=LO, lr_max=HI, stepsize=STEP, lr_history_size=3)
    values = [scheduler.get_lr(x) for x in range(5)]  # more calls than room: the record stops at 3
    assert scheduler.lr_history.tolist() == values[:3] and scheduler.lr_history_ptr == 3
    quiet = schedule.TriangularScheduler(lr_history_size=3, no_lr_history=True)
    assert quiet.lr_history is None and quiet.lr_history_size == 0
    with pytest.raises(ValueError, match='recorded no values'):
        quiet.plot_history(None)
    from matplotlib.figure import Figure  # no pyplot: no backend, no global state
    ax = Figure().add_subplot()
    scheduler.plot_history(ax)
    assert ax.lines[0].get_ydata().tolist() == values[:3] and ax.get_title() == '[TriangularScheduler] lr history'


# ---- in the Trainer
class RecordSchedule(lightning.Callback):
    """The lr and momentum in force for each training batch, read from the optimizer Lightning steps."""

    def __init__(self):
        self.lr, self.momentum = [], []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        group = trainer.optimizers[0].param_groups[0]
        self.lr.append(group['lr'])
        self.momentum.append(group['momentum'] if 'momentum' in group else group['betas'][0])


def test_trainer_applies_lr_and_momentum_schedules(make_trainer):
    lr = schedule.TriangularScheduler(lr_min=1e-4, lr_max=1e-2, stepsize=5)
    momentum = schedule.LinearDecayScheduler(lr_min=0.8, lr_max=0.95, num_iters=30)
    trainer = make_trainer(lr_scheduler=lr, mtm_scheduler=momentum, num_epochs=2)
    trainer.train()
    assert trainer.loss_iter == 20
    assert trainer.get_learning_rate() == pytest.approx(tri(20, 1e-4, 1e-2, 5))
    assert trainer.get_momentum() == pytest.approx(0.95 - 0.15 * 20 / 30)
    epoch_lr = schedule.EpochSetScheduler({0: 3e-3, 1: 1e-3}, lr_value=True)
    trainer = make_trainer(lr_scheduler=epoch_lr, num_epochs=2)
    trainer.train()
    assert trainer.get_learning_rate() == 1e-3


def test_sgd_momentum_follows_a_momentum_schedule_in_a_trainer_run(make_trainer):
    record = RecordSchedule()
    mtm = schedule.TriangularMtmScheduler(mtm_min=0.5, mtm_max=0.9, stepsize=3, lr_history_size=100)
    trainer = make_trainer(optim_function='SGD', learning_rate=0.05, mtm_scheduler=mtm, num_epochs=2,
                           callbacks=[record])
    trainer.train()
    steps = trainer.loss_iter
    assert steps == 20 and len(record.momentum) == steps
    # batch 0 runs with SGD's own momentum (0: the optimizer is built with lr and weight decay only);
    # after iteration k the Trainer sets the schedule's value for loss_iter = k
    expected = [0.9 - 0.4 * tri(k, 0.0, 1.0, 3) for k in range(1, steps + 1)]
    assert record.momentum == pytest.approx([0.0] + expected[:-1], rel=1e-12)
    assert trainer.get_momentum() == pytest.approx(expected[-1])
    assert mtm.lr_history[:mtm.lr_history_ptr].tolist() == pytest.approx(expected, rel=1e-12)
    # SGD keeps momentum buffers only when momentum is non-zero: the schedule reached the step
    buffers = [state.get('momentum_buffer') for state in trainer.optimizer.state.values()]
    assert buffers and all(buffer is not None for buffer in buffers)


def test_plain_momentum_scheduler_in_a_trainer_holds_mtm_max(make_trainer):
    record = RecordSchedule()
    trainer = make_trainer(optim_function='SGD', mtm_scheduler=schedule.MtmScheduler(mtm_max=0.7), num_epochs=1,
                           callbacks=[record])
    trainer.train()
    assert record.momentum == [0.0] + [0.7] * (trainer.loss_iter - 1)


def test_warm_restart_in_a_trainer_run(make_trainer):
    record = RecordSchedule()
    warm = schedule.WarmRestartScheduler(lr_min=1e-4, lr_max=1e-2, stepsize=2, step_per_epoch=10)
    trainer = make_trainer(lr_scheduler=warm, num_epochs=2, callbacks=[record])
    trainer.train()
    counters = [(k - 1) % 4 + 1 for k in range(1, trainer.loss_iter + 1)]  # the Trainer calls from loss_iter 1
    expected = [cosine(c / 4, 1e-4, 1e-2) for c in counters]
    assert record.lr[1:] == pytest.approx(expected[:-1], rel=1e-12)
    assert trainer.get_learning_rate() == pytest.approx(expected[-1])


# ---- as a Lightning callback
def fit(fixture_nets, fixture_data, tmp_path, callback, optim_function='Adam', epochs=1):
    module = LernomaticModule(fixture_nets.MLPModel(), optim_function=optim_function)
    trainer = lightning.Trainer(max_epochs=epochs, accelerator='cpu', logger=False, enable_progress_bar=False,
                                enable_model_summary=False, enable_checkpointing=False, callbacks=[callback],
                                default_root_dir=tmp_path)
    trainer.fit(module, train_dataloaders=DataLoader(fixture_data.make(120, 1), batch_size=20))
    return trainer


def test_schedule_as_a_lightning_callback(fixture_nets, fixture_data, tmp_path):
    trainer = fit(fixture_nets, fixture_data, tmp_path,
                  schedule.TriangularScheduler(lr_min=1e-4, lr_max=1e-2, stepsize=4).as_callback())
    assert trainer.global_step == 6
    assert trainer.optimizers[0].param_groups[0]['lr'] == pytest.approx(tri(6, 1e-4, 1e-2, 4))
    adam = fit(fixture_nets, fixture_data, tmp_path,
               schedule.LinearDecayScheduler(lr_min=0.8, lr_max=0.9, num_iters=6).as_callback('momentum'))
    assert adam.optimizers[0].param_groups[0]['betas'][0] == pytest.approx(0.8)
    epochs = fit(fixture_nets, fixture_data, tmp_path,
                 schedule.EpochSetScheduler({0: 3e-3, 1: 1e-3}, lr_value=True).as_callback(), epochs=2)
    assert epochs.optimizers[0].param_groups[0]['lr'] == 1e-3


def test_momentum_schedule_as_a_lightning_callback(fixture_nets, fixture_data, tmp_path):
    mtm = schedule.TriangularMtmScheduler(mtm_min=0.5, mtm_max=0.9, stepsize=4)
    assert mtm.as_callback().target == 'momentum'  # what a momentum schedule is for
    trainer = fit(fixture_nets, fixture_data, tmp_path, mtm.as_callback('momentum'), optim_function='SGD')
    assert trainer.optimizers[0].param_groups[0]['momentum'] == pytest.approx(0.9 - 0.4 * tri(6, 0.0, 1.0, 4))
    assert trainer.optimizers[0].param_groups[0]['lr'] == 1e-4  # the lr is left alone
    with pytest.raises(ConfigError, match="Adagrad has neither 'momentum' nor 'betas'"):
        fit(fixture_nets, fixture_data, tmp_path, schedule.MtmScheduler().as_callback(), optim_function='Adagrad')


def test_callback_refuses_what_it_cannot_apply():
    with pytest.raises(ConfigError, match="target must be one of"):
        schedule.TriangularScheduler().as_callback('weight_decay')
    odd = schedule.TriangularScheduler()
    odd.schedule_input = 'batch'
    with pytest.raises(ConfigError, match="schedule_input must be one of"):
        odd.as_callback()
    from compat.adapter.schedule_callback import ScheduleCallback
    with pytest.raises(ConfigError, match='get_lr'):
        ScheduleCallback(torch.optim.lr_scheduler)
