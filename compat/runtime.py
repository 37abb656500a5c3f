"""The `lightning.Trainer` a Lernomatic trainer runs on: devices, logger, quiet mode."""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Iterator
from typing import Any

import lightning
from lightning.pytorch.loggers import TensorBoardLogger

__all__ = ['lightning_devices', 'build_lightning_trainer', 'quiet_lightning', 'lightning_logger']


def lightning_devices(accelerator: Any, devices: Any, device_id: int) -> tuple[Any, Any]:
    """Lightning's (accelerator, devices): the caller's where given, else from Lernomatic's `device_id`."""
    if accelerator is not None or devices is not None:
        return accelerator or 'auto', devices if devices is not None else 'auto'
    if device_id < 0:
        return 'cpu', 1
    return 'gpu', [device_id]


def lightning_logger(legacy: Any) -> Any:
    """The trainer's Lightning logger, made once so every `train()` call of a run writes one event folder."""
    if legacy.logger is not True:
        return legacy.logger or None
    state = legacy._run_state
    if state.logger is None:
        state.logger = TensorBoardLogger(save_dir=legacy.checkpoint_dir, name=legacy.checkpoint_name,
                                         default_hp_metric=False)
    return state.logger


def build_lightning_trainer(legacy: Any, max_epochs: int, callbacks: list[Any],
                            limit_val_batches: float | None = None, strategy: Any = None,
                            inference_mode: bool = True) -> lightning.Trainer:
    """A `lightning.Trainer` configured from a Lernomatic trainer's options.

    `callbacks` (the bookkeeping) come before the user's, so user callbacks see finished epochs.
    """
    accelerator, devices = lightning_devices(legacy.accelerator, legacy.devices, legacy.device_id)
    options: dict[str, Any] = dict(
        accelerator=accelerator, devices=devices, strategy=strategy if strategy is not None else legacy.strategy,
        max_epochs=max_epochs, callbacks=callbacks + list(legacy.callbacks or []),
        logger=lightning_logger(legacy) or False, inference_mode=inference_mode,
        default_root_dir=legacy.checkpoint_dir, enable_checkpointing=False, num_sanity_val_steps=0,
        enable_progress_bar=bool(legacy.verbose), enable_model_summary=bool(legacy.verbose),
        log_every_n_steps=legacy.print_every, deterministic=legacy.deterministic,
    )
    if legacy.precision is not None:
        options['precision'] = legacy.precision
    if limit_val_batches is not None:
        options['limit_val_batches'] = limit_val_batches
    return lightning.Trainer(**options)


@contextlib.contextmanager
def quiet_lightning(verbose: bool) -> Iterator[None]:
    """Hide Lightning's start-up banners unless `verbose`; never warn about worker counts the user chose."""
    loggers = [logging.getLogger(name) for name in ('lightning.pytorch', 'lightning.fabric', 'lightning')]
    levels = [lg.level for lg in loggers]
    if not verbose:
        for lg in loggers:
            lg.setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings('ignore', message='.*does not have many workers.*')
            warnings.filterwarnings('ignore', message='.*GPU available but not used.*')  # device_id=-1 chose the CPU
            warnings.filterwarnings('ignore', message='.*The number of training batches.*log_every_n_steps.*')
            yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)
