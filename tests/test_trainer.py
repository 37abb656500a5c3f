"""Trainer: the spec's kwargs, loops, histories, checkpoints, stops, schedules and logging, on Lightning."""

from __future__ import annotations

import logging
from pathlib import Path

import lightning
import numpy as np
import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from torch.utils.tensorboard import SummaryWriter

from compat.errors import ConfigError
from compat.state.protocol import LernomaticTrainer
from lernomatic.train.options import LIGHTNING_OPTIONS, TRAINER_OPTIONS
from lernomatic.train.trainer import Trainer

from conftest import FIXTURE_RTOL, ON_CUDA
from helpers import HISTORY_NAMES, assert_same_numbers

SPEC_DEFAULTS = dict(
    num_epochs=10, learning_rate=1e-4, momentum=0.5, weight_decay=1e-5, loss_function='CrossEntropyLoss',
    optim_function='Adam', checkpoint_dir='checkpoint', checkpoint_name='ck', save_hist=True, verbose=True,
    print_every=10, save_every=-1, save_best=False, device_id=-1, device_map=None, batch_size=64,
    val_batch_size=64, train_dataset=None, test_dataset=None, val_dataset=None, shuffle=True, num_workers=1,
    drop_last=True, lr_scheduler=None, mtm_scheduler=None, stop_when_acc=0.0, early_stop=None, tb_writer=None,
)


def scalars(logdir: Path) -> dict[str, list[tuple[int, float]]]:
    """Every scalar tag in the TensorBoard event files under `logdir`, as (step, value) lists."""
    events = EventAccumulator(str(logdir))
    events.Reload()
    return {tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()['scalars']}


# ---- construction
def test_defaults_are_the_spec(fixture_nets):
    trainer = Trainer(fixture_nets.MLPModel())
    for name, value in SPEC_DEFAULTS.items():
        assert getattr(trainer, name) == value, name
    assert trainer.cur_epoch == 0 and trainer.start_epoch == 0 and trainer.best_acc == 0.0
    assert trainer.device == torch.device('cpu')
    assert isinstance(trainer.optimizer, torch.optim.Adam) and isinstance(trainer.criterion, torch.nn.CrossEntropyLoss)
    assert trainer.optimizer.param_groups[0]['lr'] == 1e-4 and trainer.optimizer.param_groups[0]['weight_decay'] == 1e-5
    assert trainer.train_loader is None and trainer.val_loader is None and trainer.test_loader is None
    assert trainer.loss_history is None and trainer.acc_history is None and trainer.iter_per_epoch == 0


def test_options_and_state_are_declared_once():
    """Every option and every attribute compat uses is annotated on the class (for mypy), with no value there:
    the option table alone holds the defaults."""
    options = {**TRAINER_OPTIONS, **LIGHTNING_OPTIONS}
    declared = {name for klass in Trainer.__mro__ for name in vars(klass).get('__annotations__', {})}
    assert set(options) <= declared
    assert set(LernomaticTrainer.__annotations__) <= declared
    assert [name for name in options if any(name in vars(klass) for klass in Trainer.__mro__)] == []


def test_optimizer_methods_name_a_missing_optimizer():
    trainer = Trainer(None, verbose=False)
    for call in (trainer.get_learning_rate, lambda: trainer.set_learning_rate(0.1), trainer.get_momentum,
                 lambda: trainer.set_momentum(0.9)):
        with pytest.raises(ConfigError, match='has no optimizer'):
            call()


def test_model_none_is_allowed():
    trainer = Trainer(None, verbose=False)
    assert trainer.model is None and trainer.optimizer is None and trainer.get_model_params() is None


def test_loaders_follow_the_options(make_trainer, fixture_data):
    trainer = make_trainer(val_batch_size=0, batch_size=20, test_dataset=fixture_data.make(40, 3), drop_last=False)
    assert len(trainer.train_loader) == 10 and len(trainer.val_loader) == 3 and len(trainer.test_loader) == 2
    assert trainer.val_batch_size == 20 and trainer.iter_per_epoch == 3  # the original's int(10 / 3)
    assert len(trainer.loss_history) == 30 and len(trainer.val_loss_history) == 9 and len(trainer.acc_history) == 9


def test_unknown_kwargs_are_ignored_with_one_warning(caplog):
    """As the original did: zoo trainers and callers pass kwargs nobody uses (test_batch_size=1)."""
    with caplog.at_level(logging.WARNING, logger='lernomatic'):
        trainer = Trainer(None, num_epoch=3, test_batch_size=1)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "'num_epoch': Did you mean 'num_epochs'" in warnings[0]
    assert "'test_batch_size'" in warnings[0]
    assert trainer.num_epochs == 10 and not hasattr(trainer, 'num_epoch') and not hasattr(trainer, 'test_batch_size')


def test_strict_makes_unknown_kwargs_an_error(monkeypatch):
    with pytest.raises(ConfigError, match=r"'num_epoch'.*Did you mean 'num_epochs'"):
        Trainer(None, num_epoch=3, strict=True)
    monkeypatch.setenv('LERNOMATIC_STRICT', '1')
    with pytest.raises(TypeError, match="'bogus'"):
        Trainer(None, bogus=1)
    Trainer(None, bogus=1, strict=False)  # the kwarg wins over the environment


@pytest.mark.parametrize('kwargs, message', [
    (dict(loss_function='CrossEntropy'), r"loss_function='CrossEntropy'.*Did you mean 'CrossEntropyLoss'"),
    (dict(optim_function='adam'), r"optim_function='adam'.*Did you mean 'Adam'"),
    (dict(num_epochs=0), 'num_epochs must be a positive integer'),
    (dict(batch_size=-4), 'batch_size must be a positive integer'),
    (dict(device_id=torch.cuda.device_count() + 1), r'this machine has \d+ CUDA GPU'),
    (dict(early_stop={'epochs': 2}), "early_stop must be None or a dict with exactly the keys 'num_epochs'"),
    (dict(lr_scheduler=0.1), 'lr_scheduler must be None or an object with a get_lr'),
    (dict(stop_when_acc='x'), "stop_when_acc must be a finite number, got 'x'"),
    (dict(stop_when_acc=1.5), 'stop_when_acc must be a number from 0 to 1'),
    (dict(early_stop={'num_epochs': 2, 'improv': 'x'}), r"early_stop\['improv'\] must be a finite number"),
    (dict(early_stop={'num_epochs': 2.5, 'improv': 0.1}), r"early_stop\['num_epochs'\] must be a positive integer"),
    (dict(early_stop={'num_epochs': 2, 'improv': 0.1, 'patience': 3}), 'exactly the keys'),
    (dict(tb_writer='logs'), 'tb_writer must be None or a SummaryWriter'),
    (dict(learning_rate='0.1'), "learning_rate must be a finite number, got '0.1'"),
    (dict(learning_rate=-1e-3), 'learning_rate must be a number >= 0'),
    (dict(weight_decay=float('nan')), 'weight_decay must be a finite number'),
    (dict(momentum=None), 'momentum must be a finite number'),
    (dict(save_every=2.0), 'save_every must be an integer >= -1'),
    (dict(save_every=-5), 'save_every must be an integer >= -1'),
    (dict(callbacks=[print]), 'callbacks must be None or a list of lightning.Callback'),
    (dict(logger='tensorboard'), 'logger must be True, False or a Lightning logger'),
    (dict(optim_function='Optimizer'), "optim_function='Optimizer' is not an optimizer"),
    (dict(loss_function='Linear'), "loss_function='Linear' is not a loss class"),
    (dict(shuffle='yes'), 'shuffle must be True or False'),
    (dict(checkpoint_name='../elsewhere'), 'checkpoint_name must be a file name prefix without path separators'),
    (dict(train_dataset=[1, 2, 3]), None),  # a list is a map-style dataset: allowed
    (dict(train_dataset=torch.utils.data.DataLoader(range(10))), 'train_dataset is a DataLoader: pass its dataset'),
    (dict(val_dataset=42), 'val_dataset must be a torch Dataset'),
    (dict(trusted_modules=['my nets']), "trusted_modules: 'my nets' is not a dotted module name"),
    (dict(deterministic='yes'), "deterministic must be None, True, False or 'warn'"),
])
def test_bad_values_fail_before_work(kwargs, message, tmp_path):
    kwargs.setdefault('checkpoint_dir', str(tmp_path / 'never'))
    if message is None:
        Trainer(None, batch_size=1, **kwargs)
        return
    with pytest.raises(ConfigError, match=message):
        Trainer(None, **kwargs)
    assert not (tmp_path / 'never').exists()  # nothing written before the error


def test_checkpoint_dir_must_be_or_become_a_folder(tmp_path):
    (tmp_path / 'a_file').write_text('x')
    with pytest.raises(ConfigError, match='exists and is not a folder'):
        Trainer(None, checkpoint_dir=str(tmp_path / 'a_file'))
    with pytest.raises(ConfigError, match='cannot be created'):
        Trainer(None, checkpoint_dir=str(tmp_path / 'a_file' / 'sub'))
    Trainer(None, checkpoint_dir=str(tmp_path / 'new' / 'sub'))  # created when first written, not before
    assert not (tmp_path / 'new').exists()


def test_a_loader_with_no_batches_is_an_error(fixture_nets, fixture_data):
    with pytest.raises(ConfigError, match=r'train_loader has no batches: its dataset holds 20 samples, fewer than its '
                                          r'batch size 64, and drop_last=True'):
        Trainer(fixture_nets.MLPModel(), train_dataset=fixture_data.make(20, 1))
    with pytest.raises(ConfigError, match='val_loader has no batches'):
        Trainer(fixture_nets.MLPModel(), train_dataset=fixture_data.make(200, 1), val_dataset=fixture_data.make(10, 2))
    trainer = Trainer(fixture_nets.MLPModel(), train_dataset=fixture_data.make(20, 1), drop_last=False)
    assert len(trainer.train_loader) == 1
    with pytest.raises(ConfigError, match='train_loader has no batches'):
        Trainer(fixture_nets.MLPModel(), train_dataset=fixture_data.make(200, 1)).set_train_dataset(
            fixture_data.make(5, 3))


def test_a_momentum_schedule_needs_an_optimizer_with_momentum(make_trainer):
    trainer = make_trainer(optim_function='Adagrad', mtm_scheduler=RecordingScheduler())
    with pytest.raises(ConfigError, match='mtm_scheduler=Recording sets momentum, but Adagrad has none'):
        trainer.train()
    assert trainer.loss_iter == 0


def test_a_bare_nn_module_is_refused_with_how_to_wrap_it():
    with pytest.raises(ConfigError, match=r'(?s)got a torch.nn.Module \(Linear\).*'
                                          r'class LinearModel\(common.LernomaticModel\)'):
        Trainer(torch.nn.Linear(3, 2))


def test_train_without_data_or_model_says_what_is_missing(fixture_nets, fixture_data):
    with pytest.raises(ConfigError, match='no training data'):
        Trainer(fixture_nets.MLPModel(), verbose=False).train()
    with pytest.raises(ConfigError, match='no model'):
        Trainer(None, verbose=False, train_dataset=fixture_data.make(200, 1)).train()


def test_a_subclass_that_skips_trainer_init_is_told_the_fix():
    """The original user guide's NewTrainer: an __init__ without super().__init__() constructs; its first use
    names the missing call instead of a bare AttributeError."""
    class NewTrainer(Trainer):
        def __init__(self, model, **kwargs) -> None:
            """Init codes goes here, (eg: get keyword args)"""

    trainer = NewTrainer(None)
    with pytest.raises(AttributeError, match=r"^'NewTrainer' object has no attribute 'cur_epoch': Trainer.__init__ "
                                             r'has not run on this NewTrainer.*Call super\(\).__init__\(model, '
                                             r'\*\*kwargs\) in NewTrainer.__init__'):
        trainer.train()
    assert not hasattr(trainer, 'num_epochs') and getattr(trainer, 'loss_iter', 'default') == 'default'
    with pytest.raises(AttributeError, match=r"^'Trainer' object has no attribute 'bogus'$"):
        Trainer(None, verbose=False).bogus  # noqa: B018 - an initialised trainer: the plain message


def test_repr_and_str(make_trainer):
    trainer = make_trainer()
    assert repr(trainer) == 'Trainer (3 epochs)'
    text = str(trainer)
    assert text.startswith('Trainer :\n') and '\t [learning_rate] : 0.003\n' in text and '[shuffle] : False' in text


# ---- the loops
def test_plain_loop_here_matches_the_fixture(reference, expected):
    """The reference itself is the original's algorithm: its numbers within FIXTURE_RTOL of the fixture's,
    which were computed on another CPU (bit-for-bit equality would hold on that CPU alone)."""
    for name in HISTORY_NAMES:
        np.testing.assert_allclose(reference[3][name], expected[name], rtol=FIXTURE_RTOL, err_msg=name)


def test_reproduces_the_original_numbers_exactly(make_trainer, expected, reference):
    trainer = make_trainer()
    trainer.train()
    assert_same_numbers(trainer, reference[3], expected)
    assert trainer.loss_iter == expected['loss_iter'] and trainer.cur_epoch == expected['cur_epoch']
    assert isinstance(trainer.loss_history, np.ndarray) and trainer.loss_history.dtype == np.float64
    run = reference[3]
    assert trainer.get_cur_loss() == run['loss_history'][-1]
    assert trainer.get_cur_val_loss() == run['val_loss_history'][-1]
    assert trainer.get_cur_acc() == run['acc_history'][-1]
    assert trainer.get_cur_epoch_loss().tolist() == run['loss_history'][-10:]
    assert trainer.get_cur_epoch_val_loss().tolist() == run['val_loss_history'][-3:]


def test_getters_before_training(make_trainer):
    trainer = make_trainer()
    assert trainer.get_loss_history() is None and trainer.get_acc_history() is None
    assert trainer.get_cur_loss() == 0.0 and trainer.get_cur_acc() == 0.0 and trainer.get_cur_epoch_loss() is None


def test_finished_trainer_does_nothing_until_extended(make_trainer, expected, reference):
    trainer = make_trainer()
    trainer.train()
    trainer.train()
    assert trainer.loss_iter == 30 and trainer.cur_epoch == 3
    trainer.set_num_epochs(4)
    trainer.train()
    assert trainer.loss_iter == 40 and trainer.cur_epoch == 4 and trainer.acc_iter == 4
    assert_same_numbers(trainer, reference[4], expected)  # extending == training 4 at once


def test_direct_epoch_calls(make_trainer, reference):
    trainer = make_trainer()
    trainer.train_epoch()
    assert trainer.loss_iter == 10 and trainer.cur_epoch == 0 and trainer.acc_iter == 0
    trainer.val_epoch()
    assert trainer.val_loss_iter == 3 and trainer.acc_iter == 1
    assert trainer.get_loss_history().tolist() == reference[3]['loss_history'][:10]
    assert trainer.get_acc_history().tolist() == reference[3]['acc_history'][:1]


def test_default_workers_and_shuffle(make_trainer):
    trainer = make_trainer(num_workers=1, shuffle=True, num_epochs=2)
    trainer.train()
    assert trainer.loss_iter == 20 and np.all(trainer.get_loss_history() > 0)


def test_test_epoch_runs_after_validation(make_trainer, fixture_data, tmp_path):
    writer = SummaryWriter(str(tmp_path / 'tb'))
    trainer = make_trainer(test_dataset=fixture_data.make(40, 5), tb_writer=writer, num_epochs=2)
    trainer.train()
    writer.close()
    assert 0.0 <= trainer.test_acc <= 1.0 and trainer.test_loss > 0
    tags = scalars(tmp_path / 'tb')
    assert [step for step, _ in tags['acc/test']] == [0, 1] and [s for s, _ in tags['loss/test']] == [0, 1]
    assert trainer.val_loss_iter == 6  # the test set did not count as validation


# ---- checkpoints and stops
def test_save_every_default_is_once_per_epoch(make_trainer, tmp_path):
    trainer = make_trainer(save_every=-1)
    assert trainer.save_every == 9 and trainer.save_best
    trainer.train()
    folder = tmp_path / 'checkpoint'
    names = sorted(p.name for p in folder.glob('*.pkl'))
    assert names == ['best_ck.pkl', 'ck_epoch_0_iter_9.pkl', 'ck_epoch_1_iter_18.pkl', 'ck_epoch_2_iter_27.pkl',
                     'ck_history.pkl']
    data = torch.load(folder / 'ck_epoch_1_iter_18.pkl')
    assert list(data)[:3] == ['model', 'optim', 'trainer_params'] and data['trainer_params']['cur_epoch'] == 1


def test_best_checkpoint_holds_the_best_model(make_trainer, tmp_path, reference):
    trainer = make_trainer(save_best=True)
    trainer.train()
    assert trainer.best_acc == max(reference[3]['acc_history'])
    best = torch.load(tmp_path / 'checkpoint' / 'best_ck.pkl')
    assert best['trainer_params']['cur_epoch'] == 2  # the last epoch was the best


def test_stop_when_acc(make_trainer, expected):
    trainer = make_trainer(stop_when_acc=0.4)  # accuracies 0.367, 0.483, 0.6
    trainer.train()
    assert trainer.acc_iter == 2 and trainer.loss_iter == 20
    assert trainer.cur_epoch == 1  # as in the original, the stopping epoch is not counted


def test_early_stop(make_trainer):
    trainer = make_trainer(early_stop={'num_epochs': 1, 'improv': 0.5})
    trainer.train()
    assert trainer.acc_iter == 2 and trainer.loss_iter == 20


def test_early_stop_keeps_going_while_improving(make_trainer):
    trainer = make_trainer(early_stop={'num_epochs': 1, 'improv': 0.01})
    trainer.train()
    assert trainer.acc_iter == 3 and trainer.cur_epoch == 3


# ---- schedules
class RecordingScheduler:
    def __init__(self, value=lambda x: 1e-3 * (1 + x)):
        self.inputs, self.value = [], value

    def get_lr(self, x):
        self.inputs.append(x)
        return self.value(x)

    def __repr__(self):
        return 'Recording'


def test_lr_scheduler_applied_every_iteration(make_trainer):
    scheduler = RecordingScheduler()
    trainer = make_trainer(lr_scheduler=scheduler, num_epochs=1)
    trainer.train()
    assert scheduler.inputs == list(range(1, 11))
    assert trainer.get_learning_rate() == pytest.approx(1e-3 * 11)


def test_epoch_scheduler_and_momentum_with_sgd(make_trainer):
    lr_schedule = RecordingScheduler(lambda epoch: 0.1 / (epoch + 1))
    lr_schedule.schedule_input = 'epoch'
    momentum_schedule = RecordingScheduler(lambda x: 0.8)
    trainer = make_trainer(optim_function='SGD', lr_scheduler=lr_schedule, mtm_scheduler=momentum_schedule,
                           num_epochs=2)
    trainer.train()
    assert lr_schedule.inputs == [0] * 10 + [1] * 10
    assert trainer.get_learning_rate() == pytest.approx(0.05) and trainer.get_momentum() == 0.8


def test_learning_rate_and_momentum_accessors(make_trainer):
    trainer = make_trainer()
    trainer.set_learning_rate(0.01)
    assert trainer.get_learning_rate() == 0.01
    assert trainer.get_momentum() == 0.9  # Adam's beta1
    trainer.set_momentum(0.7)
    assert trainer.optimizer.param_groups[0]['betas'] == (0.7, 0.999)


def test_setters(make_trainer, fixture_data):
    trainer = make_trainer()
    trainer.set_batch_size(50)
    assert len(trainer.train_loader) == 4
    trainer.set_val_dataset(fixture_data.make(30, 1))
    trainer.set_test_dataset(fixture_data.make(30, 2))
    assert len(trainer.val_loader) == 1 and len(trainer.test_loader) == 1
    scheduler = RecordingScheduler()
    trainer.set_lr_scheduler(scheduler)
    trainer.set_mtm_scheduler(scheduler)
    assert trainer.get_lr_scheduler() is scheduler and trainer.get_mtm_scheduler() is scheduler
    assert trainer.get_model() is trainer.model and trainer.get_num_epochs() == 3 and trainer.get_cur_epoch() == 0
    trainer.freeze_to(1)
    assert [p.requires_grad for p in trainer.model.net.parameters()] == [False, False, True, True]
    trainer.unfreeze_to(1)
    assert all(p.requires_grad for p in trainer.model.net.parameters())


# ---- logging
def test_tb_writer_gets_the_spec_tags(make_trainer, tmp_path):
    writer = SummaryWriter(str(tmp_path / 'tb'))
    trainer = make_trainer(print_every=5, lr_scheduler=RecordingScheduler(lambda x: 0.003),
                           mtm_scheduler=RecordingScheduler(lambda x: 0.85))
    trainer.set_tb_writer(writer)
    trainer.train()
    writer.close()
    tags = scalars(tmp_path / 'tb')
    assert [s for s, _ in tags['loss/train']] == [5, 10, 15, 20, 25, 30]
    assert tags['loss/train'][1][1] == pytest.approx(trainer.loss_history[9])
    assert [s for s, _ in tags['loss/val']] == [3, 6, 9]
    assert [s for s, _ in tags['acc/val']] == [1, 2, 3]
    assert [v for _, v in tags['acc/val']] == pytest.approx(trainer.get_acc_history().tolist())
    assert [s for s, _ in tags['schedule/lr_Recording']] == [5, 10, 15, 20, 25, 30]
    assert [v for _, v in tags['schedule/mtm_Recording']] == pytest.approx([0.85] * 6)


def test_default_lightning_tensorboard_logger(make_trainer, tmp_path):
    trainer = make_trainer(num_epochs=2)
    trainer.train()
    trainer.set_num_epochs(3)
    trainer.train()
    runs = list((tmp_path / 'checkpoint' / 'ck').iterdir())
    assert [r.name for r in runs] == ['version_0']  # one run, one event folder, across train() calls
    tags = scalars(runs[0])
    assert [s for s, _ in tags['acc/val']] == [1, 2, 3]


def test_logger_false_writes_no_events(make_trainer, tmp_path):
    trainer = make_trainer(num_epochs=1, logger=False)
    trainer.train()
    assert not (tmp_path / 'checkpoint' / 'ck').exists()


def test_lightning_epoch_counter_follows_cur_epoch(make_trainer):
    seen = []

    class EpochSpy(lightning.Callback):
        def on_train_epoch_start(self, trainer, pl_module):
            seen.append((trainer.current_epoch, pl_module.legacy.cur_epoch))

    trainer = make_trainer(num_epochs=2, callbacks=[EpochSpy()])
    trainer.train()
    trainer.set_num_epochs(4)
    trainer.train()
    assert seen == [(0, 0), (1, 1), (2, 2), (3, 3)] and trainer.cur_epoch == 4


def test_user_callbacks_fire_per_batch(make_trainer):
    class Counter(lightning.Callback):
        train_batches = val_batches = epochs = 0

        def on_train_batch_end(self, *args):
            Counter.train_batches += 1

        def on_validation_batch_end(self, *args):
            Counter.val_batches += 1

        def on_train_epoch_end(self, *args):
            Counter.epochs += 1

    make_trainer(callbacks=[Counter()]).train()
    assert (Counter.train_batches, Counter.val_batches, Counter.epochs) == (30, 9, 3)


def test_quiet_when_not_verbose(make_trainer, capfd):
    make_trainer(num_epochs=1).train()
    out, err = capfd.readouterr()
    assert out == '' and err == ''


def test_verbose_messages_go_through_logging(make_trainer, caplog):
    with caplog.at_level(logging.INFO, logger='lernomatic'):
        make_trainer(num_epochs=1, verbose=True, print_every=5).train()
    messages = [r.getMessage() for r in caplog.records if r.name.startswith('lernomatic')]
    assert any(m.startswith('[TRAIN] epoch 1/1') for m in messages)  # counted from 1, as the original printed
    assert any(m.startswith('[VAL]') and 'accuracy 0.3667' in m for m in messages)
    assert any('Saving history' in m for m in messages)


# ---- Lightning options
def test_bf16_mixed_on_cpu(make_trainer):
    trainer = make_trainer(precision='bf16-mixed', num_epochs=1)
    trainer.train()
    assert np.all(np.isfinite(trainer.get_loss_history())) and trainer.acc_iter == 1


def test_deterministic_and_explicit_accelerator(make_trainer, expected, reference):
    trainer = make_trainer(deterministic=True, accelerator='gpu' if ON_CUDA else 'cpu', devices=1)
    trainer.train()
    assert_same_numbers(trainer, reference[3], expected)


# ---- subclasses with their own loops
class HandWrittenLoop(Trainer):
    """An old-style subclass: its own train_epoch, the default val_epoch."""

    def train_epoch(self) -> None:
        self.model.set_train()
        for data, target in self.train_loader:
            data, target = data.to(self.device), target.to(self.device)
            loss = self.criterion(self.model.forward(data), target)
            self.optimizer.zero_grad()
            loss.backward()
            self.optimizer.step()
            self.loss_history[self.loss_iter] = loss.item()
            self.loss_iter += 1


def test_overridden_train_epoch_keeps_the_original_semantics(make_trainer, expected, reference):
    trainer = make_trainer(HandWrittenLoop)
    trainer.train()
    assert_same_numbers(trainer, reference[3], expected)
    assert trainer.cur_epoch == 3


class LossMonitor(lightning.Callback):
    """Reads the print_every loss from Lightning's metrics, as EarlyStopping(monitor='loss') would."""

    def __init__(self, monitor: str | None) -> None:
        self.monitor = monitor
        self.seen: list[float] = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if 'loss' in trainer.callback_metrics:
            self.seen.append(float(trainer.callback_metrics['loss']))


@pytest.mark.parametrize('monitor', ['loss', None])
def test_print_every_loss_reaches_lightning_where_something_watches_it(make_trainer, monitor):
    """A monitoring callback sees the print_every loss in Lightning's metrics; with no bar and no monitor the
    loss is not logged to Lightning at all (its log() costs more than a small model's step)."""
    watcher = LossMonitor(monitor)
    trainer = make_trainer(print_every=4, num_epochs=1, callbacks=[watcher])
    trainer.train()
    if monitor is None:
        assert watcher.seen == []
    else:
        reported = trainer.get_loss_history()[3::4]
        assert watcher.seen and set(watcher.seen) <= {float(np.float32(value)) for value in reported}
