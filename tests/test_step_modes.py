"""How the default loop steps: the lean step, Lightning's automatic optimisation, and `cuda_graph=True`.

The lean step must give exactly what automatic optimisation gives, keep `global_step`, and give
way wherever a callback needs the hooks it skips. The captured
step must train as the eager step does, refuse what it cannot capture before any work, and leave
checkpoints loadable on any machine.
"""

from __future__ import annotations

import lightning
import numpy as np
import pytest
import torch

from compat.codec.checkpoint import portable_optimizer_state
from compat.codec.safe_load import safe_load
from compat.errors import ConfigError
from compat.loop.captured_step import make_capturable, restore_capturable
from compat.loop.graph_hyperparameters import GraphHyperparameters, reads_hyperparameters_from_device
from compat.loop.steps import lean_step_blockers
from lernomatic.train.schedule import TriangularMtmScheduler, TriangularScheduler
from lernomatic.train.trainer import Trainer

from helpers import state_dicts_equal

needs_gpu = pytest.mark.skipif(not torch.cuda.is_available(), reason='needs a CUDA GPU; none on this machine')


class BackwardHookCounter(lightning.Callback):
    """Listens to a hook only automatic optimisation calls: forces that path."""

    def __init__(self) -> None:
        self.calls = 0

    def on_after_backward(self, trainer, pl_module) -> None:
        self.calls += 1


class StepWatcher(lightning.Callback):
    """Records Lightning's global_step, the step mode and the captured step's counts at the end."""

    def __init__(self) -> None:
        self.global_step = None
        self.step_mode = None
        self.captured = None

    def on_train_end(self, trainer, pl_module) -> None:
        self.global_step = trainer.global_step
        self.step_mode = pl_module.step_mode
        captured = pl_module._captured
        self.captured = None if captured is None else {'captures': captured.captures, 'eager': captured.eager_steps}


class OptimizerStepCounter(StepWatcher):
    """Also counts the optimizer-step hook (which a captured step cannot call)."""

    def __init__(self) -> None:
        super().__init__()
        self.optimizer_steps = 0

    def on_before_optimizer_step(self, trainer, pl_module, optimizer) -> None:
        self.optimizer_steps += 1


def histories(trainer: Trainer) -> dict[str, list[float]]:
    return {name: getattr(trainer, f'get_{name}')().tolist() for name in ('loss_history', 'val_loss_history',
                                                                           'acc_history')}


def test_lean_step_equals_automatic_optimisation_bit_for_bit(make_trainer):
    watcher, counter = StepWatcher(), BackwardHookCounter()
    lean = make_trainer(callbacks=[watcher])
    lean.train()
    automatic = make_trainer(callbacks=[counter])
    automatic.train()
    assert watcher.step_mode == 'lean'
    assert histories(lean) == histories(automatic)
    assert state_dicts_equal(lean.model.get_net_state_dict(), automatic.model.get_net_state_dict())
    steps = automatic.loss_iter
    assert counter.calls == steps  # the callback that needed automatic optimisation got every call


def test_lean_step_keeps_global_step(make_trainer):
    watcher = StepWatcher()
    trainer = make_trainer(callbacks=[watcher])
    trainer.train()
    assert watcher.step_mode == 'lean'
    assert watcher.global_step == trainer.loss_iter == 30


@pytest.mark.parametrize('listening', [False, True], ids=['direct', 'through-lightning'])
def test_hand_written_loop_steps_count_in_global_step(make_trainer, listening):
    class OwnLoop(Trainer):
        def train_epoch(self) -> None:
            for data, target in self.train_loader:
                loss = self.criterion(self.model.forward(data), target)
                self.optimizer.zero_grad()
                loss.backward()
                self.optimizer.step()

    counter = OptimizerStepCounter() if listening else StepWatcher()
    trainer = make_trainer(OwnLoop, callbacks=[counter])
    trainer.train()
    assert counter.global_step == 30
    if listening:
        assert counter.optimizer_steps == 30


def test_a_callback_on_the_optimizer_step_gets_every_call(make_trainer):
    counter = OptimizerStepCounter()
    trainer = make_trainer(callbacks=[counter])
    trainer.train()
    assert counter.step_mode == 'automatic'
    assert counter.global_step == counter.optimizer_steps == trainer.loss_iter == 30


def test_lean_step_gives_way_to_what_needs_lightning():
    def blockers(**options):
        return lean_step_blockers(lightning.Trainer(accelerator='cpu', devices=1, logger=False, **options))

    assert blockers() == []
    assert 'precision' in ' '.join(blockers(precision='bf16-mixed'))
    assert blockers(callbacks=[BackwardHookCounter()]) == ['BackwardHookCounter.on_after_backward must run inside '
                                                          'the step']
    assert 'DDPStrategy' in ' '.join(blockers(strategy='ddp'))


def test_cuda_graph_is_refused_before_any_work_where_it_cannot_run(make_trainer, tmp_path):
    trainer = make_trainer(cuda_graph=True, device_id=-1, save_every=1)
    with pytest.raises(ConfigError, match='cuda_graph=True cannot capture the training step: .*needs a CUDA device'):
        trainer.train()
    assert trainer.cur_epoch == 0 and trainer.loss_iter == 0
    assert not list((tmp_path / 'checkpoint').glob('*.pkl'))


def test_cuda_graph_refuses_a_hand_written_train_epoch(make_trainer):
    class OwnLoop(Trainer):
        def train_epoch(self) -> None:
            for _ in self.train_loader:
                pass

    with pytest.raises(ConfigError, match='cuda_graph=True captures the default training step, but OwnLoop '
                                          'overrides train_epoch'):
        make_trainer(OwnLoop, cuda_graph=True).train()


@pytest.mark.gpu
@needs_gpu
def test_cuda_graph_refuses_a_callback_on_the_optimizer_step(make_trainer):
    with pytest.raises(ConfigError, match='OptimizerStepCounter.on_before_optimizer_step must run inside the step'):
        make_trainer(device_id=0, cuda_graph=True, callbacks=[OptimizerStepCounter()]).train()


def test_cuda_graph_option_must_be_a_bool():
    with pytest.raises(ConfigError, match="cuda_graph must be True or False, got 'yes'"):
        Trainer(None, cuda_graph='yes')


def test_capturable_mode_never_reaches_files_or_outlives_the_run():
    net = torch.nn.Linear(3, 2)
    optimizer = torch.optim.Adam(net.parameters())
    net(torch.randn(4, 3)).sum().backward()
    optimizer.step()
    attributes = set(vars(optimizer))
    before = make_capturable(optimizer)
    assert optimizer.param_groups[0]['capturable'] is True and before == [False]
    assert set(vars(optimizer)) == attributes  # nothing stored on the user's optimizer
    saved = portable_optimizer_state(optimizer, before)
    assert saved['param_groups'][0]['capturable'] is False
    assert optimizer.param_groups[0]['capturable'] is True  # the live optimizer is not touched by saving
    restore_capturable(optimizer, before)
    assert optimizer.param_groups[0]['capturable'] is False
    assert portable_optimizer_state(optimizer) == optimizer.state_dict()


# ---- on a GPU
class LowerLearningRate(lightning.Callback):
    """A between-epoch learning-rate change, as old code does: the captured graph must follow it."""

    def __init__(self, legacy: Trainer) -> None:
        self.legacy = legacy

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        self.legacy.set_learning_rate(self.legacy.get_learning_rate() / 4)


def _eager_and_captured(make_trainer, **options):
    runs = {}
    for captured in (False, True):
        watcher = StepWatcher()
        trainer = make_trainer(device_id=0, callbacks=[watcher], cuda_graph=captured, **options)
        trainer.train()
        runs[captured] = (trainer, watcher)
    return runs


@pytest.mark.gpu
@needs_gpu
def test_cuda_graph_trains_as_the_eager_step_does(make_trainer):
    runs = _eager_and_captured(make_trainer)
    (eager, _), (captured, watcher) = runs[False], runs[True]
    assert watcher.step_mode == 'captured'
    assert watcher.captured == {'captures': 1, 'eager': 3}  # the warm-up; every other step replayed
    assert watcher.global_step == captured.loss_iter == 30
    for name, values in histories(eager).items():
        np.testing.assert_allclose(histories(captured)[name], values, rtol=1e-4, atol=1e-6, err_msg=name)
    for key, value in eager.model.get_net_state_dict().items():
        torch.testing.assert_close(captured.model.get_net_state_dict()[key], value, rtol=1e-4, atol=1e-5)
    assert captured.optimizer.param_groups[0]['capturable'] is False


@pytest.mark.gpu
@needs_gpu
def test_cuda_graph_follows_learning_rate_changes_and_partial_batches(make_trainer, fixture_data):
    runs = {}
    for captured in (False, True):
        watcher = StepWatcher()
        trainer = make_trainer(device_id=0, cuda_graph=captured, drop_last=False,
                               train_dataset=fixture_data.make(210, 11))
        trainer.callbacks = [watcher, LowerLearningRate(trainer)]
        trainer.train()
        runs[captured] = (trainer, watcher)
    (eager, _), (captured, watcher) = runs[False], runs[True]
    assert len(captured.train_loader) == 11  # ten full batches and one of 10
    # Adam reads its learning rate from a device tensor: one capture for every rate; the warm-up and the
    # 3 short batches eager
    assert watcher.captured == {'captures': 1, 'eager': 6}
    np.testing.assert_allclose(captured.get_loss_history(), eager.get_loss_history(), rtol=1e-4, atol=1e-6)
    assert captured.get_learning_rate() == eager.get_learning_rate()


@pytest.mark.gpu
@needs_gpu
def test_cuda_graph_checkpoints_load_anywhere(make_trainer, tmp_path):
    trainer = make_trainer(device_id=0, cuda_graph=True, save_every=7)
    trainer.train()
    files = sorted((tmp_path / 'checkpoint').glob('ck_epoch_*_iter_*.pkl'))
    assert files
    for path in files:
        optim = safe_load(path)['optim']
        assert all(group['capturable'] is False for group in optim['param_groups'])
        assert all(state['step'].device.type == 'cpu' for state in optim['state'].values())
    on_cpu = make_trainer(device_id=-1)
    on_cpu.load_checkpoint(str(files[-1]))
    on_cpu.set_num_epochs(on_cpu.num_epochs + 1)
    on_cpu.train()
    assert np.isfinite(on_cpu.get_loss_history()).all()


def _scheduled(make_trainer, optimizer: str, captured: bool):
    watcher = StepWatcher()
    trainer = make_trainer(device_id=0, cuda_graph=captured, optim_function=optimizer, num_epochs=2,
                           callbacks=[watcher])
    trainer.set_lr_scheduler(TriangularScheduler(lr_min=1e-4, lr_max=3e-3, stepsize=4))
    trainer.set_mtm_scheduler(TriangularMtmScheduler(mtm_min=0.8, mtm_max=0.95, stepsize=4))
    trainer.train()
    return trainer, watcher


@pytest.mark.gpu
@needs_gpu
@pytest.mark.parametrize('optimizer', ['Adam', 'AdamW'])
def test_cuda_graph_replays_per_iteration_schedules_without_capturing_again(make_trainer, optimizer):
    """A cyclic learning rate and momentum set every iteration: one capture, the eager numbers."""
    eager, _ = _scheduled(make_trainer, optimizer, captured=False)
    captured, watcher = _scheduled(make_trainer, optimizer, captured=True)
    assert watcher.captured == {'captures': 1, 'eager': 3}
    np.testing.assert_allclose(captured.get_loss_history(), eager.get_loss_history(), rtol=1e-4, atol=1e-6)
    for key, value in eager.model.get_net_state_dict().items():
        torch.testing.assert_close(captured.model.get_net_state_dict()[key], value, rtol=1e-4, atol=1e-5)
    group = captured.optimizer.param_groups[0]
    assert type(group['lr']) is float and all(type(beta) is float for beta in group['betas'])
    assert group['lr'] == eager.optimizer.param_groups[0]['lr']
    assert group['betas'] == eager.optimizer.param_groups[0]['betas']


@pytest.mark.gpu
@needs_gpu
def test_cuda_graph_captures_again_for_an_optimizer_that_holds_its_rate_fixed(make_trainer):
    """SGD bakes its learning rate into the kernels: a new rate is a new capture, and the numbers still agree."""
    eager = make_trainer(device_id=0, optim_function='SGD', num_epochs=2)
    eager.set_lr_scheduler(TriangularScheduler(lr_min=1e-3, lr_max=3e-2, stepsize=4))
    eager.train()
    watcher = StepWatcher()
    captured = make_trainer(device_id=0, optim_function='SGD', num_epochs=2, cuda_graph=True, callbacks=[watcher])
    captured.set_lr_scheduler(TriangularScheduler(lr_min=1e-3, lr_max=3e-2, stepsize=4))
    captured.train()
    assert watcher.captured['captures'] > 1
    np.testing.assert_allclose(captured.get_loss_history(), eager.get_loss_history(), rtol=1e-4, atol=1e-6)


def test_graph_hyperparameters_swap_in_tensors_for_the_capture_and_feed_changed_floats():
    net = torch.nn.Linear(3, 2)
    optimizer = torch.optim.AdamW(net.parameters(), lr=1e-3, betas=(0.9, 0.99))
    assert not reads_hyperparameters_from_device(optimizer)  # not capturable yet
    make_capturable(optimizer)
    assert reads_hyperparameters_from_device(optimizer)
    assert not reads_hyperparameters_from_device(torch.optim.SGD(net.parameters(), lr=0.1))
    fed = GraphHyperparameters(optimizer)
    group = optimizer.param_groups[0]
    with fed.in_groups():
        lr, betas = group['lr'], group['betas']
        assert isinstance(lr, torch.Tensor) and isinstance(betas[0], torch.Tensor) and betas[1] == 0.99
    assert group['lr'] == 1e-3 and group['betas'] == (0.9, 0.99)  # floats again outside the capture
    group['lr'], group['betas'] = 5e-4, (0.8, 0.99)
    fed.feed()
    assert lr.item() == pytest.approx(5e-4) and betas[0].item() == pytest.approx(0.8)
