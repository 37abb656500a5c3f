"""Lernomatic's duties around each iteration and epoch, fired by Lightning's loops.

After every training batch: record the loss, log every `print_every`, checkpoint every
`save_every`, apply the LR / momentum schedules. After validation: accuracy, the best checkpoint.
After the epoch: the history file, `stop_when_acc`, `early_stop`, `cur_epoch += 1`. The legacy
trainer is duck-typed: any object with the Lernomatic Trainer's attributes and methods.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import lightning
import numpy as np
import torch
import torchmetrics

from compat.distributed import is_rank_zero
from compat.errors import NonFiniteLossError
from compat.logs import epoch_label, get_logger, say
from compat.loop.good_step import mark_good_step
from compat.loop.interruption import end_process_on_ctrl_c
from compat.loop.lightning_trainer import lightning_logger
from compat.state.device_buffer import flush_histories, poll_history, push_history, stage_history
from compat.state.histories import declared_histories
from compat.state.protocol import LernomaticTrainer

__all__ = ['LernomaticBookkeeping', 'end_of_epoch', 'iteration_checkpoint_path', 'best_checkpoint_path',
           'history_path', 'emit_scalar', 'check_losses_finite', 'weights_finite', 'before_checkpoint',
           'announce_save']

log = get_logger('train')


def iteration_checkpoint_path(legacy: LernomaticTrainer) -> str:
    return os.path.join(legacy.checkpoint_dir,
                        f'{legacy.checkpoint_name}_epoch_{legacy.cur_epoch}_iter_{legacy.loss_iter}.pkl')


def best_checkpoint_path(legacy: LernomaticTrainer) -> str:
    return os.path.join(legacy.checkpoint_dir, f'best_{legacy.checkpoint_name}.pkl')


def history_path(legacy: LernomaticTrainer) -> str:
    return os.path.join(legacy.checkpoint_dir, f'{legacy.checkpoint_name}_history.pkl')


def emit_scalar(legacy: LernomaticTrainer, tag: str, value: float, step: int) -> None:
    """Write one point to the user's `tb_writer` and to the Lightning logger, on rank zero."""
    if not is_rank_zero():
        return
    if legacy.tb_writer is not None:
        legacy.tb_writer.add_scalar(tag, value, step)
    logger = lightning_logger(legacy)
    if logger is not None:
        logger.log_metrics({tag: value}, step=step)


def latest_accuracy(legacy: LernomaticTrainer) -> float | None:
    """The newest validation accuracy, None before the first validation."""
    if legacy.acc_history is None or legacy.acc_iter == 0:
        return None
    return float(legacy.acc_history[legacy.acc_iter - 1])


def _should_stop(legacy: LernomaticTrainer) -> bool:
    """`stop_when_acc` and `early_stop`, judged on the newest accuracy (the original read one slot too far)."""
    accuracy = latest_accuracy(legacy)
    if accuracy is None:
        return False
    if legacy.stop_when_acc > 0.0 and accuracy >= legacy.stop_when_acc:
        say(log, legacy.verbose, 'accuracy %.4f reached stop_when_acc=%s at %s: stopping',
            accuracy, legacy.stop_when_acc, epoch_label(legacy.cur_epoch, legacy.num_epochs))
        return True
    early, history = legacy.early_stop, legacy.acc_history  # history holds `accuracy`: not None here
    if early is not None and history is not None and legacy.acc_iter > early['num_epochs']:
        gained = accuracy - float(history[legacy.acc_iter - 1 - early['num_epochs']])
        if gained < early['improv']:
            say(log, legacy.verbose, 'stopping early at %s: accuracy gained %.4f over %d epochs',
                epoch_label(legacy.cur_epoch, legacy.num_epochs), gained, early['num_epochs'])
            return True
    return False


def check_losses_finite(legacy: LernomaticTrainer, upto: int | None = None) -> None:
    """Stop with the epoch and iteration of the first NaN / Inf training loss recorded since the last check.

    Reads the training histories (`loss_history`, and a hand-written loop's own loss arrays indexed
    by `loss_iter`, such as a GAN's) from where the last check ended, so training adds no per-step
    work for it on the GPU. Called where values are read anyway: when the values of a `print_every`
    report have arrived on the host (`upto`: check only those, without waiting for later ones),
    before each checkpoint and at the end of each epoch (everything, waiting for the copies).
    """
    state = legacy._run_state
    start, end = state.finite_upto, legacy.loss_iter if upto is None else min(upto, legacy.loss_iter)
    if not legacy.stop_on_nonfinite or start >= end:
        return
    per_epoch = max(len(legacy.train_loader), 1) if legacy.train_loader is not None else 1
    for name, counter in declared_histories(legacy).items():
        if name != 'loss_history' and counter is not None:
            continue  # validation and accuracy histories, or histories with counters of their own
        # with `upto`, the values already on the host (no draining of the device buffer, no wait)
        array = vars(legacy).get(name) if upto is not None else getattr(legacy, name, None)
        if not isinstance(array, np.ndarray) or array.ndim != 1 or array.dtype.kind != 'f':
            continue
        bad = np.flatnonzero(~np.isfinite(array[start:min(end, len(array))]))
        if len(bad):
            first = start + int(bad[0])
            where = '' if name == 'loss_history' else f' in {name}'
            raise NonFiniteLossError(
                f'training loss is {array[first]} at iteration {first} '
                f'({epoch_label(first // per_epoch, legacy.num_epochs)}, batch {first % per_epoch + 1}){where}: '
                'stopped before writing more checkpoints. Lower the learning rate or check the data; '
                'stop_on_nonfinite=False trains on regardless')
    state.finite_upto = end


def before_checkpoint(legacy: LernomaticTrainer) -> None:
    """During a run, before a checkpoint is written: the NaN check, then the history file (when `save_hist`).

    The history is written first so that it is never older than the newest checkpoint (an exact
    resume needs both); that write is not announced, the epoch's own is.
    """
    if legacy._run_state.position.phase == 'idle':
        return
    check_losses_finite(legacy)
    if legacy.save_hist:
        legacy.save_history(history_path(legacy))


def announce_save(legacy: LernomaticTrainer, what: str, fname: str) -> None:
    """Say that the run writes a file ('checkpoint' or 'history'): said where the run decides to write it.

    The trainer's `save_checkpoint` / `save_history` say nothing themselves, so a hand-written loop
    that announces its own saves, as the original's loops did, is not echoed.
    """
    say(log, legacy.verbose, 'Saving %s to %s', what, fname)


def weights_finite(model: Any) -> bool:
    """Whether every parameter of a LernomaticModel is finite (one device read)."""
    params = [p.detach() for p in model.get_model_parameters()]
    return not params or bool(torch.stack([torch.isfinite(p).all() for p in params]).all())


def end_of_epoch(legacy: LernomaticTrainer) -> bool:
    """Check the stop rules, advance `cur_epoch`, save the history; True when training should stop.

    As in the original, a stopping epoch leaves `cur_epoch` where it is. The history is written
    after `cur_epoch` advances, so its `cur_epoch` agrees with its counters and with a checkpoint
    saved at the same point (the original wrote it one epoch behind).
    """
    stop = _should_stop(legacy)
    if not stop:
        legacy.cur_epoch += 1
    position = legacy._run_state.position
    position.phase, position.epoch, position.batches_done = 'idle', legacy.cur_epoch, 0
    if legacy.save_hist:
        announce_save(legacy, 'history', history_path(legacy))
        legacy.save_history(history_path(legacy))
    mark_good_step(legacy)
    return stop


def loss_watched(trainer: lightning.Trainer) -> bool:
    """Whether anything reads the `print_every` loss from Lightning: a progress bar, or a callback that monitors."""
    callbacks = getattr(trainer, 'callbacks', ())  # a public attribute that Lightning sets in __init__
    return trainer.progress_bar_callback is not None or any(
        getattr(callback, 'monitor', None) is not None for callback in callbacks)


def _as_loss(outputs: Any) -> torch.Tensor | None:
    if isinstance(outputs, Mapping):
        outputs = outputs.get('loss')
    return outputs if isinstance(outputs, torch.Tensor) else None


@dataclass(frozen=True)
class _Report:
    """A `print_every` point to report once its loss has reached the host."""

    loss_iter: int
    batch_idx: int
    num_batches: Any
    epoch: int
    schedules: dict[str, float]


class LernomaticBookkeeping(lightning.Callback):
    """Runs a Lernomatic trainer's bookkeeping from Lightning's hooks.

    Args:
        legacy: the Lernomatic trainer.
        eval_stages: what each validation dataloader is, in order: 'val' or 'test'.
        hand_written: stages whose epoch method the subclass overrides: their loops keep their own records.
        finish_epochs: run `end_of_epoch` after each training epoch (False for a lone `train_epoch()`).
    """

    def __init__(self, legacy: LernomaticTrainer, eval_stages: list[str], hand_written: frozenset[str] = frozenset(),
                 finish_epochs: bool = True) -> None:
        self.legacy = legacy
        self.eval_stages = eval_stages
        self.hand_written = hand_written
        self.finish_epochs = finish_epochs
        self._eval_losses: dict[str, list[torch.Tensor]] = {}
        self._epoch_started = 0.0
        self._reports: list[_Report] = []  # print_every points whose loss is on its way to the host
        self._loss_watched = True

    # ---- training
    def on_train_epoch_start(self, trainer: lightning.Trainer, pl_module: lightning.LightningModule) -> None:
        self._epoch_started = time.perf_counter()
        self.legacy._run_state.finite_upto = self.legacy.loss_iter
        self._loss_watched = loss_watched(trainer)

    def on_train_batch_end(self, trainer: lightning.Trainer, pl_module: lightning.LightningModule,
                           outputs: Any, batch: Any, batch_idx: int) -> None:
        legacy = self.legacy
        if 'train' in self.hand_written:
            if legacy.loss_iter % legacy.print_every == 0:
                check_losses_finite(legacy)  # the loop's own records: plain numpy, read where the default does
            return
        loss = _as_loss(outputs)
        if loss is None:
            return
        push_history(legacy, 'loss_history', legacy.loss_iter, loss)
        legacy.loss_iter += 1
        if legacy.loss_iter % legacy.print_every == 0:
            # no read here: the loss is copied to the host without waiting, and reported when it has arrived
            stage_history(legacy, 'loss_history')
            self._reports.append(_Report(legacy.loss_iter, batch_idx, trainer.num_training_batches,
                                         legacy.cur_epoch, self._schedule_values()))
        if legacy.save_every > 0 and legacy.loss_iter % legacy.save_every == 0:
            check_losses_finite(legacy)  # waits for the values: a checkpoint is about to be written anyway
            fname = iteration_checkpoint_path(legacy)
            announce_save(legacy, 'checkpoint', fname)
            legacy.save_checkpoint(fname)
        if self._reports:  # the epoch's last batch waits: its reports come before validation's
            self._deliver_reports(pl_module, wait=batch_idx + 1 >= trainer.num_training_batches)
        if legacy.lr_scheduler is not None:
            legacy.apply_lr_schedule()
        if legacy.mtm_scheduler is not None:
            legacy.apply_mtm_schedule()

    def _schedule_values(self) -> dict[str, float]:
        """The schedules' current values, by TensorBoard tag, to report with the loss of this iteration."""
        legacy = self.legacy
        values = {}
        for kind, scheduler in (('lr', legacy.lr_scheduler), ('mtm', legacy.mtm_scheduler)):
            if scheduler is not None:
                value = legacy.get_learning_rate() if kind == 'lr' else legacy.get_momentum()
                if value is not None:
                    values[f'schedule/{kind}_{scheduler!r}'] = float(value)
        return values

    def _deliver_reports(self, pl_module: lightning.LightningModule, wait: bool = False) -> None:
        """Report each `print_every` point whose loss has reached the host (all of them when `wait`)."""
        legacy = self.legacy
        if wait:
            flush_histories(legacy)
        if not self._reports:
            return
        arrived = poll_history(legacy, 'loss_history')
        array = vars(legacy)['loss_history']
        while self._reports and self._reports[0].loss_iter <= arrived:
            report = self._reports.pop(0)
            check_losses_finite(legacy, upto=report.loss_iter)
            loss = float(array[report.loss_iter - 1])  # the value loss.item() would have given, read without a wait
            if self._loss_watched:  # Lightning's log costs more than the step of a small model
                # a CPU tensor: a float would be copied to the module's device, a blocking copy in the step
                pl_module.log('loss', torch.tensor(loss), prog_bar=True, logger=False)
            say(log, legacy.verbose, '[TRAIN] %s  iteration %d/%s  loss %.6f',
                epoch_label(report.epoch, legacy.num_epochs), report.batch_idx + 1, report.num_batches, loss)
            emit_scalar(legacy, 'loss/train', loss, report.loss_iter)
            for tag, value in report.schedules.items():
                emit_scalar(legacy, tag, value, report.loss_iter)

    def on_train_epoch_end(self, trainer: lightning.Trainer, pl_module: lightning.LightningModule) -> None:
        legacy = self.legacy
        close = getattr(pl_module, 'close_training_epoch', None)  # a hook of compat's modules, not Lightning's
        if close is not None:
            close()
        self._deliver_reports(pl_module, wait=True)
        check_losses_finite(legacy)
        say(log, legacy.verbose, 'Finished %s in %.2fs', epoch_label(legacy.cur_epoch, legacy.num_epochs),
            time.perf_counter() - self._epoch_started)
        if self.finish_epochs and end_of_epoch(legacy):
            trainer.should_stop = True

    # ---- validation and test
    def on_validation_epoch_start(self, trainer: lightning.Trainer, pl_module: lightning.LightningModule) -> None:
        self._eval_losses = {stage: [] for stage in self.eval_stages}

    def on_validation_batch_end(self, trainer: lightning.Trainer, pl_module: lightning.LightningModule,
                                outputs: Any, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> None:
        stage = self.eval_stages[dataloader_idx]
        loss = _as_loss(outputs)
        if loss is None or stage in self.hand_written:
            return
        self._eval_losses[stage].append(loss.detach())
        if stage == 'val':
            push_history(self.legacy, 'val_loss_history', self.legacy.val_loss_iter, loss)
            self.legacy.val_loss_iter += 1

    def on_validation_epoch_end(self, trainer: lightning.Trainer, pl_module: lightning.LightningModule) -> None:
        close = getattr(pl_module, 'close_evaluation_epoch', None)
        if close is not None:
            close()
        for stage in self.eval_stages:
            if stage in self.hand_written:
                continue
            accuracy_metric = pl_module.val_accuracy if stage == 'val' else pl_module.test_accuracy
            assert isinstance(accuracy_metric, torchmetrics.Metric), "compat's modules hold TopOneAccuracy metrics"
            accuracy = float(accuracy_metric.compute())
            accuracy_metric.reset()
            losses = self._eval_losses.get(stage) or []
            mean_loss = float(torch.stack(losses).mean()) if losses else float('nan')
            if stage == 'val':
                self._finish_validation(mean_loss, accuracy)
            else:
                self._finish_test(mean_loss, accuracy)
        if self.legacy._run_state.position.phase == 'validated':  # a run's epoch: trained and validated
            mark_good_step(self.legacy)

    def on_exception(self, trainer: lightning.Trainer, pl_module: lightning.LightningModule,
                     exception: BaseException) -> None:
        """Lightning's clean-up after Ctrl-C ignores SIGINT; here a Ctrl-C during it ends the process instead."""
        if isinstance(exception, KeyboardInterrupt):
            end_process_on_ctrl_c()

    def _finish_validation(self, mean_loss: float, accuracy: float) -> None:
        legacy = self.legacy
        if legacy.acc_history is None:
            raise ValueError(f'{type(legacy).__name__}.acc_history is None: there is no val_loader for it')
        legacy.acc_history[legacy.acc_iter] = accuracy
        legacy.acc_iter += 1
        say(log, legacy.verbose, '[VAL]   %s  mean loss %.4f  accuracy %.4f',
            epoch_label(legacy.cur_epoch, legacy.num_epochs), mean_loss, accuracy)
        emit_scalar(legacy, 'loss/val', mean_loss, legacy.val_loss_iter)
        emit_scalar(legacy, 'acc/val', accuracy, legacy.acc_iter)
        if accuracy > legacy.best_acc:
            if not weights_finite(legacy.model):
                log.warning('[%r] accuracy %.4f at %s, but the weights hold NaN or Inf: not counted as the '
                            'best, no best checkpoint written', legacy, accuracy,
                            epoch_label(legacy.cur_epoch, legacy.num_epochs))
                return
            legacy.best_acc = accuracy
            if legacy.save_best:
                announce_save(legacy, 'checkpoint', best_checkpoint_path(legacy))
                legacy.save_checkpoint(best_checkpoint_path(legacy))

    def _finish_test(self, mean_loss: float, accuracy: float) -> None:
        legacy = self.legacy
        legacy.test_loss, legacy.test_acc = mean_loss, accuracy
        say(log, legacy.verbose, '[TEST]  %s  mean loss %.4f  accuracy %.4f',
            epoch_label(legacy.cur_epoch, legacy.num_epochs), mean_loss, accuracy)
        emit_scalar(legacy, 'loss/test', mean_loss, legacy.cur_epoch)
        emit_scalar(legacy, 'acc/test', accuracy, legacy.cur_epoch)
