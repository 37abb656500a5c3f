"""A Lernomatic trainer's epochs on Lightning's fit loop.

One Lightning epoch is one Lernomatic epoch: the training batches, then validation over the whole
val set (and the test set, as a second evaluation dataloader). The steps are the adapter's; the
Lernomatic bookkeeping runs from `LernomaticBookkeeping`'s hooks; the user's own optimizer,
criterion and loaders are used as they are.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import lightning
import torch

from compat.adapter import LernomaticModule
from compat.bookkeeping import LernomaticBookkeeping
from compat.checkpoint import optimizer_state_to
from compat.runtime import build_lightning_trainer, quiet_lightning

__all__ = ['EpochBridge', 'fit_epochs', 'run_train_epoch', 'run_eval_epoch']


class EpochBridge(LernomaticModule):
    """The LightningModule for one `train()` call of a Lernomatic trainer."""

    def __init__(self, legacy: Any, eval_stages: list[str]) -> None:
        super().__init__(legacy.model, criterion=legacy.criterion, optimizer=legacy.optimizer)
        self.legacy = legacy
        self.eval_stages = eval_stages

    def train_dataloader(self) -> Any:
        return self.legacy.train_loader

    def val_dataloader(self) -> Any:
        loaders = {'val': self.legacy.val_loader, 'test': self.legacy.test_loader}
        return [loaders[stage] for stage in self.eval_stages]

    def on_fit_start(self) -> None:
        # `self.device` in user code is where Lightning put the model
        self.legacy.device = self.device

    def on_validation_start(self) -> None:
        self.legacy.device = self.device

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        data, target = batch
        loss = self.criterion(self(data), target)
        self.log('loss', loss, prog_bar=True, logger=False)
        return loss

    def validation_step(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> torch.Tensor:
        stage = self.eval_stages[dataloader_idx]
        return self.evaluate(batch, self.val_accuracy if stage == 'val' else self.test_accuracy)


@contextlib.contextmanager
def _keep_on_device(legacy: Any) -> Iterator[None]:
    """Lightning's teardown moves the model and optimizer state to the CPU; put them back where they trained.

    Old code goes on using `trainer.model` on `trainer.device` after `train()` returns.
    """
    try:
        yield
    finally:
        if legacy.model is not None and legacy.model.net is not None:
            legacy._send_to_device()
        if legacy.optimizer is not None:
            optimizer_state_to(legacy.optimizer, legacy.device)


def _eval_stages(legacy: Any) -> list[str]:
    return [stage for stage, loader in (('val', legacy.val_loader), ('test', legacy.test_loader)) if loader is not None]


def _start_at_epoch(trainer: lightning.Trainer, epoch: int) -> None:
    """Make Lightning's epoch counter start at Lernomatic's `cur_epoch`, as a restored Lightning run would.

    So `trainer.current_epoch`, the progress bar and the samplers' `set_epoch` agree with `cur_epoch`.
    """
    for progress in (trainer.fit_loop.epoch_progress.current, trainer.fit_loop.epoch_progress.total):
        progress.ready = progress.started = progress.processed = progress.completed = epoch


def fit_epochs(legacy: Any) -> None:
    """Train from `legacy.cur_epoch` to `legacy.num_epochs` on Lightning's fit loop."""
    stages = _eval_stages(legacy)
    bookkeeping = LernomaticBookkeeping(legacy, stages)
    with quiet_lightning(legacy.verbose), _keep_on_device(legacy):
        trainer = build_lightning_trainer(legacy, legacy.num_epochs, [bookkeeping],
                                          limit_val_batches=None if stages else 0)
        _start_at_epoch(trainer, legacy.cur_epoch)
        trainer.fit(EpochBridge(legacy, stages))


def run_train_epoch(legacy: Any) -> None:
    """One training epoch alone, as a direct `train_epoch()` call does: no validation, no epoch end."""
    bookkeeping = LernomaticBookkeeping(legacy, [], finish_epochs=False)
    with quiet_lightning(legacy.verbose), _keep_on_device(legacy):
        trainer = build_lightning_trainer(legacy, 1, [bookkeeping], limit_val_batches=0)
        trainer.fit(EpochBridge(legacy, []))


def run_eval_epoch(legacy: Any, stage: str) -> None:
    """One pass over the val ('val') or test ('test') loader, as a direct `val_epoch()` call does."""
    bookkeeping = LernomaticBookkeeping(legacy, [stage])
    bridge = EpochBridge(legacy, [stage])
    with quiet_lightning(legacy.verbose), _keep_on_device(legacy):
        trainer = build_lightning_trainer(legacy, 1, [bookkeeping])
        trainer.validate(bridge, dataloaders=bridge.val_dataloader(), verbose=False)
