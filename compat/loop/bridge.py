"""The LightningModule that runs a Lernomatic trainer's epochs on Lightning's loops.

One Lightning epoch is one Lernomatic epoch: the training batches, then validation over the whole
val set (and the test set, as a second evaluation dataloader). Default loops are Lightning steps
with the trainer's own optimizer and criterion: automatic optimisation, or where nothing needs its
hooks the same step written out (`compat.loop.steps`), or with `cuda_graph=True` a replayed CUDA
graph (`compat.loop.captured_step`); a subclass's own
`train_epoch` / `val_epoch` / `test_epoch` runs as a coroutine fed one batch per Lightning step
(`compat.loop.hand_written`). `LernomaticBookkeeping` does the rest from Lightning's hooks.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import lightning
import torch
from lightning.pytorch.trainer.states import TrainerFn

from compat.adapter.metrics import TopOneAccuracy
from compat.adapter.module import evaluate_batch
from compat.codec.resume import ResumePoint
from compat.codec.rng import capture_rng_state, restore_rng_state
from compat.errors import CheckpointError, ConfigError
from compat.lightning_internals import (
    FastHookName,
    UnwrappedDDPStrategy,
    freeze_training_step_signature,
    run_validation_now,
    step_counters,
)
from compat.logs import epoch_label, get_logger, say
from compat.loop.captured_step import CapturedStep, captured_step_blockers
from compat.loop.ddp import DataParallelHeld, share_generators
from compat.loop.device_data import DeviceTensorLoader, device_data_refusal
from compat.loop.good_step import mark_good_step
from compat.loop.hand_written import EpochRunner, FedLoader, UntilReturned
from compat.loop.interruption import CtrlC
from compat.loop.routed_optimizer import RoutedOptimizer, unwrap_optimizer
from compat.loop.steps import lean_step_blockers, scales_loss
from compat.state.protocol import LernomaticTrainer

__all__ = ['EpochBridge', 'STAGE_METHODS', 'held_modules', 'held_optimizers']

log = get_logger('train')

STAGE_METHODS = {'train': 'train_epoch', 'val': 'val_epoch', 'test': 'test_epoch'}
_STAGE_LOADERS = {'train': 'train_loader', 'val': 'val_loader', 'test': 'test_loader'}


def held_modules(legacy: LernomaticTrainer) -> dict[str, torch.nn.Module]:
    """Every `nn.Module` the trainer holds: its LernomaticModels' nets and plain modules, by attribute name."""
    found = {}
    for name, value in vars(legacy).items():
        if isinstance(value, torch.nn.Module):
            found[name] = value
        elif isinstance(getattr(value, 'net', None), torch.nn.Module) and callable(getattr(value, 'get_params', None)):
            found[name] = value.net
    return found


def held_optimizers(legacy: LernomaticTrainer) -> dict[str, torch.optim.Optimizer]:
    """Every optimizer the trainer holds, by attribute name."""
    return {name: unwrap_optimizer(value) for name, value in vars(legacy).items()
            if isinstance(unwrap_optimizer(value), torch.optim.Optimizer)}


@freeze_training_step_signature
class EpochBridge(FastHookName, lightning.LightningModule):
    """The LightningModule for one `train()` (or lone epoch) call of a Lernomatic trainer.

    Args:
        legacy: the Lernomatic trainer.
        eval_stages: the evaluation dataloaders in order, each 'val' or 'test'.
        hand_written: the stages whose epoch method the trainer's subclass overrides.
    """

    def __init__(self, legacy: LernomaticTrainer, eval_stages: list[str], hand_written: frozenset[str] = frozenset(),
                 resume: ResumePoint | None = None) -> None:
        super().__init__()
        self.legacy = legacy
        self.eval_stages = eval_stages
        self.hand_written = hand_written = frozenset(s for s in hand_written if s == 'train' or s in eval_stages)
        self.hand_written_train = 'train' in hand_written
        self.step_mode = 'hand_written' if self.hand_written_train else 'automatic'
        self.automatic_optimization = not self.hand_written_train
        if not self.hand_written_train:
            modules = {'model': legacy.model.get_net()}
            if isinstance(legacy.criterion, torch.nn.Module):
                modules['criterion'] = legacy.criterion
        else:
            modules = held_modules(legacy)
        self.held = torch.nn.ModuleDict(modules)
        self.val_accuracy = TopOneAccuracy()
        self.test_accuracy = TopOneAccuracy()
        self.runners = {stage: EpochRunner(getattr(legacy, STAGE_METHODS[stage])) for stage in hand_written}
        self._loaders = {stage: getattr(legacy, attr) for stage, attr in _STAGE_LOADERS.items()}
        self._device_loaders: dict[str, Any] = {}
        self._routed: dict[str, RoutedOptimizer] = {}
        self._eval_stage: str | None = None
        self._ended_early = False
        self._scaled_backward = False
        self._captured: CapturedStep | None = None
        self._steppers: dict[int, Any] = {}
        self._direct_steps = False
        self._resume = resume  # applied when the first training epoch starts
        self._skip = 0  # training batches of this epoch a resumed run already trained
        self._rng_after_skip: dict[str, Any] | None = None
        self._epoch_rng_state: dict[str, Any] | None = None  # the generators before this epoch's data iterator
        self.data_parallel: DataParallelHeld | None = None  # set by the strategy under DDP (compat.loop.ddp)
        self._rng_before_setup: dict[str, Any] | None = capture_rng_state()  # as the user's code left them
        self.ctrl_c: CtrlC | None = None  # set by the session while its Ctrl-C handling is in place

    @property
    def pending_resume(self) -> ResumePoint | None:
        """The loaded checkpoint's resume point, until the first epoch takes it up."""
        return self._resume

    def setup(self, stage: str) -> None:
        if self.ctrl_c is not None and self.trainer.world_size == 1:
            self.ctrl_c.deferrable = True  # one process: the next step boundary comes for all of it

    def choose_step(self, trainer: lightning.Trainer, cuda_graph: bool = False) -> None:
        """Before fit: how the default loop steps on `trainer`: automatic, lean or captured."""
        self._direct_steps = not lean_step_blockers(trainer)
        if self.hand_written_train:
            if cuda_graph:
                raise ConfigError(f'cuda_graph=True captures the default training step, but '
                                  f'{type(self.legacy).__name__} overrides train_epoch: drop one or the other')
            return
        if cuda_graph:
            blockers = captured_step_blockers(trainer, self.legacy.optimizer)
            if blockers:
                raise ConfigError('cuda_graph=True cannot capture the training step: ' + '; '.join(blockers))
            self.step_mode = 'captured'
        elif self._direct_steps:
            self.step_mode = 'lean'
        self.automatic_optimization = self.step_mode == 'automatic'

    # ---- data
    def train_dataloader(self) -> Any:
        return self._served('train')

    def val_dataloader(self) -> Any:
        return [self._served(stage) for stage in self.eval_stages]

    def _served(self, stage: str) -> Any:
        """The loader Lightning iterates for `stage`: the trainer's, or its tensors kept on the device."""
        if stage not in self._device_loaders:
            loader = self._loaders[stage]
            refusal = device_data_refusal(loader, self.device) if loader is not None else 'no loader'
            kept = self.legacy.data_on_device and refusal is None and self.trainer.world_size == 1
            if kept:
                loader = DeviceTensorLoader(loader, self.device)
            self._note_data_placement(stage, kept, refusal)
            if stage != 'train' and stage in self.runners and loader is not None and self.trainer.world_size == 1:
                loader = UntilReturned(loader, self.runners[stage])
            self._device_loaders[stage] = loader
        return self._device_loaders[stage]

    def _note_data_placement(self, stage: str, kept: bool, refusal: str | None) -> None:
        """Say once where the data lives, where that is news: on a GPU, whether batches are built there.

        On the CPU nothing moves either way, so it is said at DEBUG only.
        """
        args: tuple[object, ...]
        if kept:
            message, args = ("%s data kept on %s, batches gathered there in the DataLoader's order "
                             '(data_on_device=False turns it off)'), (stage, self.device)
        elif (self.legacy.data_on_device and self.trainer.world_size == 1 and refusal is not None
              and refusal not in ('no loader', 'not a DataLoader')):
            message, args = '%s data stays on the host, each batch copied to %s: %s', (stage, self.device, refusal)
        else:
            return
        said = self.legacy._run_state.said
        if 'device_data' in said:
            return
        said.add('device_data')
        if self.device.type == 'cpu':
            log.debug(message, *args)
        else:
            say(log, self.legacy.verbose, message, *args)

    def install(self) -> None:
        """Put fed loaders where the user's loops look for their loaders."""
        def val_batches(index: int) -> Callable[[], int]:
            return lambda: int(self.trainer.num_val_batches[index])

        lengths: dict[str, Callable[[], int]] = {'train': lambda: int(self.trainer.num_training_batches)}
        for index, stage in enumerate(self.eval_stages):
            lengths[stage] = val_batches(index)
        for stage, runner in self.runners.items():
            setattr(self.legacy, _STAGE_LOADERS[stage], FedLoader(self._loaders[stage], runner, lengths[stage]))

    def uninstall(self) -> None:
        """Give the trainer back its own loaders and optimizers."""
        for stage in self.runners:
            setattr(self.legacy, _STAGE_LOADERS[stage], self._loaders[stage])
        for name, routed in self._routed.items():
            if getattr(self.legacy, name, None) is routed:
                setattr(self.legacy, name, routed.optimizer)
        self._routed = {}
        if self.data_parallel is not None:
            self.data_parallel.detach()
            self.data_parallel = None
        if self._captured is not None:
            self._captured.close()
            self._captured = None

    # ---- default steps
    def forward(self, data: Any) -> Any:
        return self.legacy.model.forward(data)

    def training_step(self, batch: Any, batch_idx: int) -> Any:
        self.legacy._run_state.position.batches_done = batch_idx + 1
        if batch_idx < self._skip:
            if batch_idx + 1 == self._skip:  # the generators as they were when the checkpoint was written
                assert self._rng_after_skip is not None, '_apply_resume_point sets it with _skip'
                restore_rng_state(self._rng_after_skip)
                self._skipping(0)
            return None
        if self.hand_written_train:
            self.runners['train'].feed(batch)
            return None
        data, target = batch
        if self._captured is not None:
            self.legacy._run_state.stepped = True
            return self._captured(data, target)
        loss = self.legacy.criterion(self(data), target)
        if self.step_mode == 'lean':
            optimizer = self._default_optimizer()
            optimizer.zero_grad()
            loss.backward()
            self._counted_step(optimizer)
            return loss.detach()
        return loss

    def validation_step(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> Any:
        stage = self.eval_stages[dataloader_idx]
        if stage in self.runners:
            self._enter_eval_stage(stage)
            self.runners[stage].feed(batch)
            return None
        accuracy = self.val_accuracy if stage == 'val' else self.test_accuracy
        return evaluate_batch(self, self.legacy.criterion, batch, accuracy)

    def _default_optimizer(self) -> torch.optim.Optimizer:
        """The trainer's optimizer, which the default training loop steps."""
        optimizer = self.legacy.optimizer
        if optimizer is None:
            raise ConfigError(f'{type(self.legacy).__name__} has no optimizer: _init_optimizer() left '
                              'self.optimizer as None')
        return optimizer

    def configure_optimizers(self) -> Any:
        if not self.hand_written_train:
            return self.legacy.optimizer
        return list(held_optimizers(self.legacy).values()) or None

    # ---- hand-written training loops
    def on_fit_start(self) -> None:
        self.legacy.device = self.device  # `self.device` in user code is where Lightning put the model
        if self.trainer.world_size > 1:
            self._undo_setup_draws()
            share_generators(self.device)  # every rank takes rank 0's, so its checkpoints resume every rank
            self._rng_before_setup = capture_rng_state()
        if self.legacy.cur_epoch == 0:
            self._rng_before_setup = None  # epoch 0's data iterator comes after this point: nothing to undo
            # Lightning creates epoch 0's data iterator before its on_train_epoch_start (later epochs' after
            # it): the generators that decide epoch 0's order and worker seeds are the ones at this point
            self._apply_resume_point()
            self._epoch_rng_state = capture_rng_state()
        self._steppers = step_counters(self.trainer)
        if self.step_mode == 'captured':
            optimizer = self._default_optimizer()
            self._captured = CapturedStep(self.forward, self.legacy.criterion, optimizer,
                                          self._steppers[id(optimizer)], self.legacy._run_state)
        if not self.hand_written_train:
            return
        if self.trainer.world_size > 1 and not isinstance(self.trainer.strategy, UnwrappedDDPStrategy):
            raise ConfigError(f'{type(self.legacy).__name__} overrides train_epoch: across several processes use '
                              f"strategy='ddp' (got {type(self.trainer.strategy).__name__})")
        for name, optimizer in held_optimizers(self.legacy).items():
            self._routed[name] = RoutedOptimizer(optimizer, self._optimizer_step)
            setattr(self.legacy, name, self._routed[name])

    def on_validation_start(self) -> None:
        self.legacy.device = self.device
        if self.data_parallel is not None:
            self.data_parallel.training = False  # evaluation forwards leave DDP's reducer alone

    def on_train_epoch_start(self) -> None:
        if self._epoch_rng_state is None:  # epochs after 0: before this epoch's iterator draws its order
            self._undo_setup_draws()
            self._apply_resume_point()
            self._epoch_rng_state = capture_rng_state()
        position = self.legacy._run_state.position
        position.phase, position.epoch, position.batches_done = 'train', self.legacy.cur_epoch, 0
        position.epoch_rng_state, self._epoch_rng_state = self._epoch_rng_state, None
        self._ended_early = False
        if self.data_parallel is not None:
            self.data_parallel.training = True
        if 'train' in self.runners:
            self.runners['train'].start()

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> Any:
        if 'train' in self.runners and self.runners['train'].returned:
            self._ended_early = True  # the user's loop broke out: end Lightning's epoch here too
            return -1
        return None

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        """The step is finished (Lightning calls the module's hook after every callback's): a good step, a boundary."""
        if 'train' in self.runners and batch_idx + 1 >= self.trainer.num_training_batches:
            self.runners['train'].finish()  # run the code after the user's loop before validation starts
        if self._skip:
            return  # replaying a resumed epoch's start: the last good step is still the loaded one
        mark_good_step(self.legacy)
        if self.ctrl_c is not None:
            self.ctrl_c.at_boundary(f'after batch {batch_idx + 1} of '
                                    f'{epoch_label(self.legacy.cur_epoch, self.legacy.num_epochs)}')

    def on_validation_batch_end(self, outputs: Any, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> None:
        if self.ctrl_c is not None:  # mid-validation: the run goes back to the end of the epoch's training
            self.ctrl_c.at_boundary(f'during the evaluation of '
                                    f'{epoch_label(self.legacy.cur_epoch, self.legacy.num_epochs)}')

    def on_before_optimizer_step(self, optimizer: Any) -> None:
        self.legacy._run_state.stepped = True  # automatic optimisation: the weights move past the last good step

    def close_training_epoch(self) -> None:
        """Finish the user's training loop and, after an early break, the validation Lightning skipped."""
        self._skipping(0)  # a resumed epoch's skipping never reaches the next epoch
        runner = self.runners.get('train')
        if runner is not None and runner.active:
            runner.finish()
        if self._ended_early and self.eval_stages:
            self._ended_early = False
            run_validation_now(self.trainer)

    def _undo_setup_draws(self) -> None:
        """Once, before the fit's first epoch draws its order: the generators as the user's code left them.

        Setting up draws from them where one uninterrupted run would not: DDP's setup, and Lightning's
        data iterator made before the first epoch of a fit that starts at `cur_epoch > 0` (that epoch
        makes its own). Undone, a run continued with generators the user put back (a checkpoint of
        their own format) draws as the uninterrupted run did.
        """
        state, self._rng_before_setup = self._rng_before_setup, None
        if state is not None:
            restore_rng_state(state)

    def _apply_resume_point(self) -> None:
        """Continue where a loaded checkpoint was written (once, at the first epoch of the run).

        Inside an epoch: replay its start (the generators as they were, so the same order and worker
        seeds), then skip the batches already trained, restoring the generators after the last one.
        Between epochs: the generators as they were when the checkpoint was written.
        """
        point, self._resume = self._resume, None
        if point is None or point.rng_state is None:
            return
        if point.phase == 'train' and point.epoch == self.legacy.cur_epoch and point.batches_done > 0:
            # at epoch 0 this runs before Lightning has counted the batches: the loader's own length
            loader = self._loaders['train']  # the trainer's own (a hand-written loop's is fed by Lightning)
            batches = len(loader) if hasattr(loader, '__len__') else math.inf
            if point.batches_done > batches:
                raise CheckpointError(f'the loaded checkpoint was written after batch {point.batches_done} of epoch '
                                      f'{point.epoch}, but the training loader has {batches} batches: it was written '
                                      'with other data or another batch size (nothing was trained)')
            assert point.epoch_rng_state is not None, "read_resume_point requires it of a 'train' position"
            restore_rng_state(point.epoch_rng_state)
            self._skipping(point.batches_done, point.rng_state)
        else:
            restore_rng_state(point.rng_state)

    def _skipping(self, batches: int, rng_after: dict[str, Any] | None = None) -> None:
        """Skip the epoch's first `batches` (0: stop skipping), then put the generators at `rng_after`.

        A skipped batch's step returns None, which Lightning's automatic optimisation refuses under
        DDP: the skipped batches run under manual optimisation, where None means nothing was done.
        """
        self._skip, self._rng_after_skip = batches, rng_after
        self.automatic_optimization = self.step_mode == 'automatic' and not batches

    def _optimizer_step(self, optimizer: torch.optim.Optimizer, closure: Any, kwargs: dict) -> Any:
        if scales_loss(self.trainer) and not self._scaled_backward:
            raise ConfigError(f'precision={self.trainer.precision!r} scales the loss: in a hand-written train_epoch '
                              'call self.backward(loss) instead of loss.backward(), or use precision="bf16-mixed"')
        self._scaled_backward = False
        if self._direct_steps:  # nothing between backward and step needs Lightning: step as the user wrote it
            return self._counted_step(optimizer, closure, kwargs)
        if self.data_parallel is not None:
            self.data_parallel.before_step(optimizer)  # what DDP's reducer did not average (compat.loop.ddp)
        return self._counted_step(optimizer, closure, kwargs, through=self.trainer.strategy.optimizer_step)

    def _counted_step(self, optimizer: torch.optim.Optimizer, closure: Any = None, kwargs: dict | None = None,
                      through: Any = None) -> Any:
        """Step `optimizer` (itself, or `through` Lightning's strategy), counted in Lightning's `global_step`."""
        before, after = self._steppers.get(id(optimizer), (_nothing, _nothing))
        self.legacy._run_state.stepped = True
        before()
        kwargs = kwargs or {}
        try:
            if through is not None:
                return through(optimizer, closure or _nothing, **kwargs)
            return optimizer.step(**kwargs) if closure is None else optimizer.step(closure, **kwargs)
        finally:
            after()

    def backward_from_user(self, loss: torch.Tensor) -> None:
        """`Trainer.backward(loss)`: through Lightning, so mixed precision scales the loss."""
        self.manual_backward(loss)
        self._scaled_backward = True

    # ---- hand-written evaluation loops
    def on_validation_epoch_start(self) -> None:
        self._eval_stage = None
        if self.trainer.state.fn == TrainerFn.FITTING:
            self.legacy._run_state.position.phase = 'validated'  # the epoch's training is done

    def _enter_eval_stage(self, stage: str) -> None:
        if self._eval_stage == stage:
            return
        self._leave_eval_stage()
        self._eval_stage = stage
        self.runners[stage].start()

    def _leave_eval_stage(self) -> None:
        stage = self._eval_stage
        if stage is not None and stage in self.runners:
            self.runners[stage].finish()
        self._eval_stage = None

    def close_evaluation_epoch(self) -> None:
        """Run the code after the user's evaluation loops (and their whole method where a loader was empty)."""
        self._leave_eval_stage()
        for stage in self.eval_stages:
            runner = self.runners.get(stage)
            if runner is not None and not runner.returned:
                runner.finish()


def _nothing() -> None:
    return None
