"""The training run of an LR range test, on Lightning's fit loop.

The finder (`lernomatic.param.lr_common`) decides each batch's learning rate and what to record;
this module runs the batches. It fits a `compat.adapter.LernomaticModule` over the user's own
model, criterion and optimizer, validates after every batch when accuracy is wanted, and stops as
soon as the finder says the loss exploded. The finder hears of each step through three hooks named
for when they fire (`SweepListener`), so it never touches Lightning itself.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any, Protocol

import lightning

from compat.logs import get_logger
from compat.loop.lightning_trainer import quiet_lightning

__all__ = ['SweepListener', 'LRSweepCallback', 'single_device', 'run_lr_sweep']

log = get_logger('lr_find')


class SweepListener(Protocol):
    """What an LR finder answers while the sweep runs."""

    def on_sweep_batch_start(self) -> None:
        """Before a training batch: set the learning rate it trains with."""

    def on_sweep_batch_end(self, loss: float) -> bool:
        """After the optimizer step of a batch with this loss; True stops the whole sweep."""

    def on_sweep_validation_end(self, accuracy: float, mean_loss: float) -> None:
        """After the validation that follows every batch (only when there is a validation loader)."""


class LRSweepCallback(lightning.Callback):
    """Forwards Lightning's per-batch hooks to a `SweepListener`."""

    def __init__(self, listener: SweepListener) -> None:
        self.listener = listener

    def on_train_batch_start(self, trainer: lightning.Trainer, pl_module: lightning.LightningModule,
                             batch: Any, batch_idx: int) -> None:
        self.listener.on_sweep_batch_start()

    def on_train_batch_end(self, trainer: lightning.Trainer, pl_module: lightning.LightningModule,
                           outputs: Any, batch: Any, batch_idx: int) -> None:
        loss = outputs['loss'] if isinstance(outputs, Mapping) else outputs
        # note: a host-device sync point once per batch, as the original's loss.item() was
        if self.listener.on_sweep_batch_end(float(loss)):
            # the epoch loop ends at once; Lightning still validates this last batch first
            trainer.should_stop = True

    def on_validation_end(self, trainer: lightning.Trainer, pl_module: lightning.LightningModule) -> None:
        # LernomaticModule logs both at the end of each validation; here they are already reduced
        metrics = trainer.callback_metrics
        self.listener.on_sweep_validation_end(float(metrics['acc/val']), float(metrics['loss/val']))


def single_device(devices: Any) -> Any:
    """Lightning `devices` for one device: the first of a list, else one.

    The sweep runs in this process: several devices would make Lightning start a distributed run,
    which an LR range test does not need and old code calling `find()` does not expect.
    """
    if isinstance(devices, (list, tuple)):
        return list(devices[:1])
    if isinstance(devices, str) and ',' in devices:
        return [int(devices.split(',')[0])]
    return 1


def run_lr_sweep(module: lightning.LightningModule, listener: SweepListener, train_loader: Any,
                 val_loader: Any, *, max_epochs: int, max_batches: int, accelerator: Any, devices: Any,
                 precision: Any = None, verbose: bool = False) -> None:
    """Fit `module` on `train_loader` while `listener` sets the learning rate and watches the loss.

    Args:
        module: a `LernomaticModule` over the user's model, criterion and optimizer.
        listener: the finder; its hooks fire around every batch.
        train_loader: the training batches.
        val_loader: validated after every training batch; None for no validation.
        max_epochs: passes over `train_loader` at most.
        max_batches: training batches per epoch at most; 0 for all of them.
        accelerator: Lightning's accelerator.
        devices: Lightning's devices; narrowed to one (`single_device`).
        precision: Lightning's precision; None for its default.
        verbose: show Lightning's progress bar and start-up messages.
    """
    narrowed = single_device(devices)
    if narrowed != devices and devices not in ('auto', None):
        log.info('the LR range test runs on one device: devices=%r instead of %r', narrowed, devices)
    options: dict[str, Any] = dict(
        accelerator=accelerator, devices=narrowed, strategy='auto', max_epochs=max_epochs,
        limit_train_batches=max_batches if max_batches > 0 else 1.0, callbacks=[LRSweepCallback(listener)],
        logger=False, enable_checkpointing=False, enable_progress_bar=verbose, enable_model_summary=False,
        num_sanity_val_steps=0,
    )
    if val_loader is not None:
        options['val_check_interval'] = 1  # validate after every training batch
    else:
        options['limit_val_batches'] = 0
    if precision is not None:
        options['precision'] = precision
    with quiet_lightning(verbose), warnings.catch_warnings():
        # no validation without a loader is what the caller asked for
        warnings.filterwarnings('ignore', message='.*`validation_step` but have no `val_dataloader`.*')
        trainer = lightning.Trainer(**options)
        trainer.fit(module, train_dataloaders=train_loader, val_dataloaders=val_loader)
