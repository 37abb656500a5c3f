"""`Trainer`: Lernomatic's trainer API, running its epochs on Lightning.

Subclasses keep working as they did: they pop their own kwargs before `super().__init__`, override
the `_init_*` steps, `train_epoch` / `val_epoch`, `get/set_trainer_params` and the checkpoint
methods. The work itself is done in `compat`: the loops on Lightning, the file formats, the
histories.
"""

from __future__ import annotations

from typing import Any

import torch

from compat.codec.checkpoint import (
    optimizer_state_to,
)
from compat.codec.history_file import check_history_room, write_history
from compat.codec.trainer_files import (
    apply_history_file,
    load_optimizer_state,
    read_model_only,
    read_trainer_checkpoint,
    save_trainer_checkpoint,
    unchanged_on_error,
)
from compat.devices import torch_device
from compat.distributed import is_rank_zero
from compat.errors import ConfigError, UnsavableStateError
from compat.logs import get_logger
from compat.loop import session
from compat.loop.bookkeeping import before_checkpoint, latest_accuracy
from compat.loop.bridge import STAGE_METHODS
from compat.loop.good_step import take_up_resume_point
from compat.loop.preflight import check_first_batch, check_loaders_have_batches
from compat.optim import build_criterion, build_optimizer
from compat.schedules import optimizer_momentum, schedule_value, set_optimizer_lr, set_optimizer_momentum
from compat.state.histories import (
    TRAINER_HISTORIES,
    History,
    history_record,
    init_histories,
    install_history_attributes,
    resize_histories,
)
from compat.state.run_state import RunPosition, RunState
from lernomatic.models.common import LernomaticModel
from lernomatic.train.history_reads import HistoryReads
from lernomatic.train.options import TRAINER_PARAM_KEYS, check_model_argument, check_option, resolve_options
from lernomatic.train.run_checks import check_before_run

__all__ = ['Trainer']

log = get_logger('trainer')


def _overrides(instance: Any, name: str) -> bool:
    return getattr(type(instance), name) is not getattr(Trainer, name)


class Trainer(HistoryReads):
    """Trains a `LernomaticModel`; every documented kwarg, plus Lightning's accelerator, devices,
    strategy, num_nodes, precision, callbacks, logger and deterministic (see `lernomatic.train.options`)."""

    # The histories, declared once (compat.state.histories): allocation, resizing, the history file,
    # what a loaded file may set and the device buffering all follow. A subclass may add its own
    # (HISTORIES = Trainer.HISTORIES + (History('d_loss_history', None, 'train_loader'),)) or, as old
    # subclasses did, allocate them in its _init_history.
    HISTORIES: tuple[History, ...] = TRAINER_HISTORIES

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        install_history_attributes(cls)

    def __init__(self, model: Any = None, **kwargs: Any) -> None:
        self._run_state = RunState()
        check_model_argument(model, type(self).__name__)
        self.model = model
        for name, value in resolve_options(kwargs, type(self).__name__).items():
            setattr(self, name, value)
        self.cur_epoch = 0
        self.start_epoch = 0
        if self.val_batch_size == 0:
            self.val_batch_size = self.batch_size
        self._init_device()
        self._init_optimizer()
        self._init_dataloaders()
        check_loaders_have_batches(self)
        self._init_history()
        self._send_to_device()
        self.best_acc = 0.0
        self._resolve_save_every()

    def _resolve_save_every(self) -> None:
        """-1 means once per epoch, counted as the original did: every `len(train_loader) - 1` iterations."""
        if self.train_loader is not None and self.save_every < 0:
            self.save_every = len(self.train_loader) - 1
        if self.save_every > 0:
            self.save_best = True

    def __repr__(self) -> str:
        return f'{type(self).__name__} ({self.num_epochs} epochs)'

    def __str__(self) -> str:
        lines = [f'{type(self).__name__} :\n']
        lines += [f'\t [{key}] : {value}\n' for key, value in self.get_trainer_params().items()]
        return ''.join(lines)

    # ---- initialisation steps (subclasses override these)
    def _init_device(self) -> None:
        self.device = torch_device(self.device_id)

    def _init_optimizer(self) -> None:
        if self.model is not None:
            self.optimizer = build_optimizer(self.optim_function, self.model.get_model_parameters(),
                                             self.learning_rate, self.weight_decay)
        else:
            self.optimizer = None
        self.criterion = build_criterion(self.loss_function)

    def _make_loader(self, dataset: Any, batch_size: int, shuffle: bool) -> torch.utils.data.DataLoader | None:
        if dataset is None:
            return None
        # Workers are started anew each epoch (not persistent), as PyTorch's default: each epoch's worker
        # seeds then come from the global generator, which a checkpoint restores for an exact resume.
        return torch.utils.data.DataLoader(
            dataset, batch_size=batch_size, shuffle=shuffle, drop_last=self.drop_last, num_workers=self.num_workers,
            pin_memory=self.device.type == 'cuda')

    def _init_dataloaders(self) -> None:
        self.train_loader = self._make_loader(self.train_dataset, self.batch_size, self.shuffle)
        self.test_loader = self._make_loader(self.test_dataset, self.val_batch_size, self.shuffle)
        self.val_loader = self._make_loader(self.val_dataset, self.val_batch_size, False)

    def _init_history(self) -> None:
        init_histories(self)
        # The original's formula, kept so files and trainer_params match it exactly.
        self.iter_per_epoch = int(len(self.train_loader) / self.num_epochs) if self.train_loader is not None else 0

    def _send_to_device(self) -> None:
        if self.model is not None:
            self.model.send_to(self.device)

    # ---- epochs
    def set_num_epochs(self, num_epochs: int) -> None:
        """Change the epoch count; growing it extends every `*_history` array and keeps its contents."""
        check_option('num_epochs', num_epochs)
        old_epochs, self.num_epochs = self.num_epochs, num_epochs
        if num_epochs > old_epochs:
            resize_histories(self, old_epochs, num_epochs, self._init_history)

    def get_num_epochs(self) -> int:
        return self.num_epochs

    def get_cur_epoch(self) -> int:
        return self.cur_epoch

    def train(self) -> None:
        """Train from `cur_epoch` to `num_epochs`: per epoch train, validate, test, save history, check stops."""
        if self.cur_epoch >= self.num_epochs:  # the original trained nothing here too, but silently
            log.warning('%r: nothing to train: cur_epoch is %d and num_epochs %d (a finished run was loaded?); '
                        'call set_num_epochs(n) with n > %d to train further', self, self.cur_epoch,
                        self.num_epochs, self.cur_epoch)
            return
        self._check_ready_to_train()
        if self.save_every == -1:
            self._resolve_save_every()
        hand_written = self._hand_written_stages()
        check_before_run(self, hand_written)
        check_first_batch(self, hand_written)
        session.fit_epochs(self, hand_written)

    def _hand_written_stages(self) -> frozenset[str]:
        """The stages whose epoch method a subclass overrides: those run as coroutines fed by Lightning."""
        return frozenset(stage for stage, method in STAGE_METHODS.items() if _overrides(self, method))

    def _check_ready_to_train(self) -> None:
        if self.train_loader is None:
            raise ConfigError(f'{self!r} has no training data: pass train_dataset= or call set_train_dataset()')
        if 'train' in self._hand_written_stages():
            return  # the subclass's own loop decides which models and optimizers it needs
        if self.model is None:
            raise ConfigError(f'{self!r} has no model: pass one to the constructor or call load_checkpoint() first')
        if self.optimizer is None:
            raise ConfigError(f'{self!r} has no optimizer: _init_optimizer() left self.optimizer as None')
        if self.mtm_scheduler is not None and optimizer_momentum(self.optimizer) is None:
            optimizer = type(self.optimizer).__name__
            raise ConfigError(f'mtm_scheduler={self.mtm_scheduler!r} sets momentum, but {optimizer} has none '
                              "(no 'momentum' nor 'betas'): use SGD, Adam, ... or drop the schedule")

    def backward(self, loss: Any) -> None:
        """`loss.backward()` for hand-written loops, routed through Lightning so that
        `precision='16-mixed'` can scale the loss; plain `loss.backward()` works for every other precision."""
        session.backward(self, loss)

    def train_epoch(self) -> None:
        """One epoch over `train_loader`: forward, loss, zero_grad, backward, step, record, per batch."""
        self._check_ready_to_train()
        session.run_train_epoch(self)

    def val_epoch(self) -> None:
        """One pass over `val_loader`: per-batch loss into `val_loss_history`, then accuracy into `acc_history`."""
        if self.val_loader is None:
            raise ConfigError(f'{self!r} has no validation data: pass val_dataset= or call set_val_dataset()')
        session.run_eval_epoch(self, 'val')

    def test_epoch(self) -> None:
        """One pass over `test_loader`: mean loss and accuracy into `test_loss` / `test_acc` and TensorBoard."""
        if self.test_loader is None:
            raise ConfigError(f'{self!r} has no test data: pass test_dataset= or call set_test_dataset()')
        session.run_eval_epoch(self, 'test')

    # ---- getters and setters
    def get_model(self) -> Any:
        return self.model

    def get_model_params(self) -> dict | None:
        return None if self.model is None else self.model.get_net_state_dict()

    def _require_optimizer(self) -> torch.optim.Optimizer:
        if self.optimizer is None:
            raise ConfigError(f'{self!r} has no optimizer: _init_optimizer() builds one once there is a model '
                              '(pass one to the constructor or call load_checkpoint() first)')
        return self.optimizer

    def get_learning_rate(self) -> float:
        return self._require_optimizer().param_groups[0]['lr']

    def set_learning_rate(self, lr: float, param_zero: bool = True) -> None:
        set_optimizer_lr(self._require_optimizer(), lr, first_group_only=param_zero)

    def get_momentum(self) -> float | None:
        """SGD-style `momentum`, or Adam-style `betas[0]`; None for optimizers with neither."""
        return optimizer_momentum(self._require_optimizer())

    def set_momentum(self, momentum: float) -> None:
        set_optimizer_momentum(self._require_optimizer(), momentum)

    def set_batch_size(self, batch_size: int) -> None:
        check_option('batch_size', batch_size)
        self.batch_size = batch_size
        self._init_dataloaders()
        check_loaders_have_batches(self)

    def set_lr_scheduler(self, lr_scheduler: Any) -> None:
        check_option('lr_scheduler', lr_scheduler)
        self.lr_scheduler = lr_scheduler

    def get_lr_scheduler(self) -> Any:
        return self.lr_scheduler

    def set_mtm_scheduler(self, mtm_scheduler: Any) -> None:
        check_option('mtm_scheduler', mtm_scheduler)
        self.mtm_scheduler = mtm_scheduler

    def get_mtm_scheduler(self) -> Any:
        return self.mtm_scheduler

    def set_train_dataset(self, train_dataset: Any) -> None:
        self._set_dataset('train_dataset', train_dataset)

    def set_val_dataset(self, val_dataset: Any) -> None:
        self._set_dataset('val_dataset', val_dataset)

    def set_test_dataset(self, test_dataset: Any) -> None:
        self._set_dataset('test_dataset', test_dataset)

    def _set_dataset(self, name: str, dataset: Any) -> None:
        check_option(name, dataset)
        setattr(self, name, dataset)
        self._init_dataloaders()
        check_loaders_have_batches(self)

    def set_tb_writer(self, writer: Any) -> None:
        check_option('tb_writer', writer)
        self.tb_writer = writer

    # ---- schedules: each scheduler says what it is a function of (`schedule_input`, compat.schedules)
    def apply_lr_schedule(self) -> None:
        self.set_learning_rate(schedule_value(self.lr_scheduler, self.loss_iter, self.cur_epoch,
                                              latest_accuracy(self) or 0.0))

    def apply_mtm_schedule(self) -> None:
        self.set_momentum(schedule_value(self.mtm_scheduler, self.loss_iter, self.cur_epoch,
                                         latest_accuracy(self) or 0.0))

    def freeze_to(self, layer_num: int) -> None:
        self.model.freeze_to(layer_num)

    def unfreeze_to(self, layer_num: int) -> None:
        self.model.unfreeze_to(layer_num)

    # ---- history files (the getters: lernomatic.train.history_reads)
    def save_history(self, fname: str) -> None:
        """Write counters and every `*_history` array (a subclass's own too) in the original's layout."""
        if not is_rank_zero():
            return
        record = history_record(self)
        log.debug('Saving history to %s', fname)  # announced by the run that decides to write it, not here
        write_history(fname, record)

    def load_history(self, fname: str, trusted: bool = False) -> None:
        """Restore counters and arrays from a history file (ours or the original's), all or nothing.

        Only what this trainer declares is set: the counters, `cur_epoch`, `iter_per_epoch` and the
        `*_history` arrays it holds (a subclass's own included), each checked for type and shape.
        Other keys are reported and ignored. After a checkpoint with a resume point was loaded,
        the counters are those of the checkpoint, so the two continue the run together.
        """
        apply_history_file(self, fname, trusted=trusted)

    # ---- checkpoints
    def get_trainer_params(self) -> dict[str, Any]:
        return {key: getattr(self, key) for key in TRAINER_PARAM_KEYS}

    def set_trainer_params(self, params: dict[str, Any]) -> None:
        missing = [key for key in TRAINER_PARAM_KEYS if key not in params]
        if missing:
            raise ConfigError(f"trainer_params lacks {', '.join(missing)}")
        for key in TRAINER_PARAM_KEYS:
            setattr(self, key, params[key])
        self._init_device()
        self._init_dataloaders()

    def save_checkpoint(self, fname: str) -> None:
        """Write `{'model', 'optim', 'trainer_params'}` as the original did (rank zero only, atomically).

        Two keys follow the original's three, which its readers ignore: 'rng_state' (the random
        generators) and 'resume' (where in the run it was written), for an exact resume. During a
        run the history file is written first (when `save_hist`), so it is never older than the
        newest checkpoint; the losses are checked for NaN / Inf before anything is written. After a run
        stopped inside a step (its optimizer had stepped), saving is refused: `UnsavableStateError`.
        """
        if not is_rank_zero():
            return
        if self.model is None:
            raise ConfigError(f'{self!r} has no model to save')
        if self._run_state.torn is not None:
            raise UnsavableStateError(f'{fname}: not saved: {self._run_state.torn}')
        before_checkpoint(self)
        # announced by the run that decides to write it (compat.loop.bookkeeping), not here: a hand-written loop
        # that calls save_checkpoint says so itself, as the original's loops did
        log.debug('Saving checkpoint to %s', fname)
        save_trainer_checkpoint(self, fname)

    def load_checkpoint(self, fname: str, trusted: bool = False, restore_rng: bool = True,
                        trusted_modules: list[str] | None = None) -> None:
        """Restore trainer params, rebuild the model from its metadata, rebuild and load the optimizer.

        The whole file is checked before anything on the trainer changes; a refused file raises
        `CheckpointError` naming the file and the field, and leaves the trainer as it was.

        Args:
            fname: the checkpoint.
            trusted: unpickle anything and import any module the file names (only for files you trust).
            restore_rng: continue the saved run exactly: its random generators, and for a checkpoint
                written during a run, its position (the next `train()` picks up at that batch).
            trusted_modules: module prefixes (your model packages) the file may make us import,
                beside this trainer's `trusted_modules` option (docs/reliability.md).
        """
        with unchanged_on_error(self, fname):
            loaded = read_trainer_checkpoint(self, fname, LernomaticModel, trusted, trusted_modules)
            epochs_before = self.num_epochs
            self.set_trainer_params(loaded.data['trainer_params'])
            check_history_room(self, fname)  # with this trainer's loaders, before any history grows
            if self.num_epochs > epochs_before:  # the file's run is longer: room for its epochs' values
                resize_histories(self, epochs_before, self.num_epochs, self._init_history)
            check_loaders_have_batches(self)
            self.model = loaded.model
            self._init_optimizer()
            load_optimizer_state(self._require_optimizer(), loaded.data['optim'], fname)
            self._send_to_device()
            optimizer_state_to(self._require_optimizer(), self.device)
            state = self._run_state  # between runs, unless the file's position is taken up below
            state.position, state.resume, state.torn = RunPosition(epoch=self.cur_epoch), None, None
            if restore_rng and loaded.point.rng_state is not None:
                take_up_resume_point(self, loaded.point, loaded.point.rng_state, fname)

    def load_model_checkpoint(self, fname: str, trusted: bool = False,
                              trusted_modules: list[str] | None = None) -> None:
        """Restore the model alone; trainer params and optimizer are left as they are."""
        with unchanged_on_error(self, fname):
            self.model = read_model_only(self, fname, LernomaticModel, trusted, trusted_modules)
            self._send_to_device()


install_history_attributes(Trainer)
