"""The `lightning.Trainer` a Lernomatic trainer runs on: devices, logger, progress bar, how much it says."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading
import warnings
from collections.abc import Iterator
from typing import Any

import lightning
from lightning.pytorch.callbacks import ProgressBar, TQDMProgressBar
from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.utilities.warnings import PossibleUserWarning

from compat.devices import lightning_devices
from compat.errors import ConfigError
from compat.logs import (
    EVERYTHING,
    MESSAGES,
    BarSafeStream,
    epoch_label,
    get_logger,
    quiet_loggers,
    show_warning_above_bar,
    verbosity,
)
from compat.state.protocol import LernomaticTrainer

__all__ = ['lightning_devices', 'build_lightning_trainer', 'check_placement', 'quiet_lightning', 'lightning_logger',
           'EpochBar', 'bar_can_draw', 'BoundedTensorBoardLogger']

log = get_logger('train')

_LIGHTNING_LOGGERS = ('lightning.pytorch', 'lightning.fabric', 'lightning')

# Warnings about choices a Lernomatic trainer makes on purpose: hidden in our runs at every verbosity.
_CHOSEN = (
    ('.*does not have many workers.*', PossibleUserWarning),  # num_workers is the user's option
    ('.*GPU available but not used.*', PossibleUserWarning),  # device_id=-1 chose the CPU
    ('.*The number of training batches.*log_every_n_steps.*', PossibleUserWarning),  # print_every sets it
)
# Deprecations inside Lightning or torch that the user can do nothing about: shown only at verbose=2.
_INTERNAL_DEPRECATIONS = (
    # Lightning 2.6's pytree helper builds torch's LeafSpec, deprecated in torch 2.10+
    (r'`isinstance\(treespec, LeafSpec\)` is deprecated', FutureWarning),
)


class BoundedTensorBoardLogger(TensorBoardLogger):
    """Lightning's TensorBoard logger whose closing cannot hang the run's end.

    Closing flushes the event writer's queue and joins its thread; a run stopped at the wrong moment
    can leave that join waiting for good (seen after Ctrl-C). Here the close runs in a helper thread
    and is given up after `close_timeout_s` seconds, with a warning: the run's last scalars may be
    missing from the event file, nothing else is lost. A logger given up on is not used again.
    """

    close_timeout_s = 10.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.given_up = False

    def finalize(self, status: str) -> None:
        closing = threading.Thread(target=super().finalize, args=(status,), name='tensorboard-close', daemon=True)
        closing.start()
        closing.join(self.close_timeout_s)
        if closing.is_alive():
            self.given_up = True
            log.warning('the TensorBoard event file in %s did not close within %.0f s: left behind (its last '
                        'scalars may be missing)', self.log_dir, self.close_timeout_s)


def lightning_logger(legacy: LernomaticTrainer) -> Any:
    """The trainer's Lightning logger, made once so every `train()` call of a run writes one event folder
    (a new one after a close that was given up on)."""
    if legacy.logger is not True:
        return legacy.logger or None
    state = legacy._run_state
    if state.logger is None or getattr(state.logger, 'given_up', False):
        state.logger = BoundedTensorBoardLogger(save_dir=os.fspath(legacy.checkpoint_dir), name=legacy.checkpoint_name,
                                         default_hp_metric=False)
    return state.logger


def bar_can_draw() -> bool:
    """Whether a progress bar would be seen as one: stdout (where Lightning draws it) is a terminal or a notebook.

    In a log file or CI output a bar is a heap of carriage returns, so there the run prints plain lines.
    """
    if 'ipykernel' in sys.modules:  # Jupyter renders tqdm's carriage returns, though its stdout is no tty
        return True
    try:
        return sys.stdout is not None and sys.stdout.isatty()
    except (AttributeError, ValueError):  # a replaced or closed stdout
        return False


class EpochBar(TQDMProgressBar):
    """Lightning's tqdm bar, labelled with the trainer's own epoch and cleared when done.

    The label is `compat.logs.epoch_label`, the words our log lines use, read from the Lernomatic
    trainer (a lone `train_epoch()` call runs Lightning's epoch 0 whatever `cur_epoch` is). Every
    bar is closed without a trace (`leave=False`): the log lines are the record of the run.

    Args:
        legacy: the Lernomatic trainer whose `cur_epoch` and `num_epochs` the bar shows.
    """

    def __init__(self, legacy: LernomaticTrainer) -> None:
        super().__init__()
        self.legacy = legacy

    def init_train_tqdm(self) -> Any:
        bar = super().init_train_tqdm()
        bar.leave = False
        return bar

    def init_validation_tqdm(self) -> Any:
        bar = super().init_validation_tqdm()
        bar.leave = False
        return bar

    @property
    def train_description(self) -> str:
        return epoch_label(self.legacy.cur_epoch, self.legacy.num_epochs)

    def on_train_epoch_start(self, trainer: lightning.Trainer, *args: Any) -> None:
        """Reset the bar for the epoch under its label (Lightning's own would first draw 'Epoch <current_epoch>')."""
        bar = self.train_progress_bar
        total = self.total_train_batches
        bar.set_description(self.train_description, refresh=False)
        bar.reset(total=None if total == float('inf') else total)  # redraws, under the new label
        bar.initial = 0

    def get_metrics(self, trainer: lightning.Trainer, pl_module: lightning.LightningModule) -> dict[str, Any]:
        """The logged bar values without `v_num`, the logger's version number (it means nothing to a reader)."""
        items = super().get_metrics(trainer, pl_module)
        items.pop('v_num', None)
        return items


def _placement(legacy: LernomaticTrainer, strategy: Any = None) -> dict[str, Any]:
    """Where and how the run computes: Lightning's accelerator, devices, num_nodes, strategy and precision."""
    accelerator, devices = lightning_devices(legacy.accelerator, legacy.devices, legacy.device_id)
    options: dict[str, Any] = dict(accelerator=accelerator, devices=devices, num_nodes=legacy.num_nodes,
                                   strategy=strategy if strategy is not None else legacy.strategy)
    if legacy.precision is not None:
        options['precision'] = legacy.precision
    return options


def _refusal(placement: dict[str, Any]) -> Exception | None:
    """What Lightning raises for this placement (None when it accepts it): a bare Trainer, which runs nothing."""
    with warnings.catch_warnings(), quiet_loggers(_LIGHTNING_LOGGERS):
        warnings.simplefilter('ignore')  # its notes (16-mixed on the CPU is bf16, ...) are for the real run to show
        try:
            lightning.Trainer(**placement, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                              enable_model_summary=False)
        except Exception as error:  # Lightning refuses values with several types (ValueError, TypeError, its own, ...)
            return error
    return None


def check_placement(legacy: LernomaticTrainer) -> None:
    """`accelerator`, `devices` and `precision` (and `device_id`, `strategy`, `num_nodes`) as Lightning will judge them,
    before any batch: a ConfigError naming the options, instead of Lightning's error after the first-batch check."""
    placement = _placement(legacy)
    error = _refusal(placement)
    if error is None:
        return
    if legacy.precision is not None and _refusal({k: v for k, v in placement.items() if k != 'precision'}) is None:
        names = ['precision']
    else:
        names = [name for name in ('accelerator', 'devices') if getattr(legacy, name) is not None] or ['device_id']
        names += [name for name, usual in (('strategy', 'auto'), ('num_nodes', 1)) if getattr(legacy, name) != usual]
    given = ', '.join(f'{name}={getattr(legacy, name)!r}' for name in names)
    reason = (str(error).strip().splitlines() or [type(error).__name__])[0]
    raise ConfigError(f"{given}: Lightning refuses {'it' if len(names) == 1 else 'them'} on this machine ({reason}); "
                      f"change {' or '.join(names)}")


def build_lightning_trainer(legacy: LernomaticTrainer, max_epochs: int, callbacks: list[Any],
                            limit_val_batches: float | None = None, strategy: Any = None,
                            inference_mode: bool = True) -> lightning.Trainer:
    """A `lightning.Trainer` configured from a Lernomatic trainer's options.

    `callbacks` (the bookkeeping) come before the user's, so user callbacks see finished epochs.
    Our progress bar is drawn when `verbose` and there is a terminal to draw it on; a bar among the
    user's callbacks is theirs to place, and is used whenever `verbose`. The model summary only at
    `verbose=2`.
    """
    level = verbosity(legacy.verbose)
    user_callbacks = list(legacy.callbacks or [])
    users_bar = any(isinstance(callback, ProgressBar) for callback in user_callbacks)
    show_bar = level >= MESSAGES and (users_bar or bar_can_draw())
    if show_bar and not users_bar:
        callbacks = [*callbacks, EpochBar(legacy)]
    options: dict[str, Any] = dict(
        **_placement(legacy, strategy), max_epochs=max_epochs, callbacks=callbacks + user_callbacks,
        logger=lightning_logger(legacy) or False, inference_mode=inference_mode,
        default_root_dir=legacy.checkpoint_dir, enable_checkpointing=False, num_sanity_val_steps=0,
        enable_progress_bar=show_bar, enable_model_summary=level >= EVERYTHING,
        log_every_n_steps=legacy.print_every, deterministic=legacy.deterministic,
    )
    if limit_val_batches is not None:
        options['limit_val_batches'] = limit_val_batches
    return lightning.Trainer(**options)


@contextlib.contextmanager
def _lines_above_bar(loggers: list[logging.Logger]) -> Iterator[None]:
    """Lightning's own console handlers write through tqdm's writer for the block (`setStream`, put back after)."""
    swapped = []
    for handler in (h for lg in loggers for h in lg.handlers):
        if type(handler) is logging.StreamHandler and handler.stream in (sys.stdout, sys.stderr):
            swapped.append((handler, handler.stream))
            handler.setStream(BarSafeStream(handler.stream))
    try:
        yield
    finally:
        for handler, stream in swapped:
            handler.setStream(stream)


@contextlib.contextmanager
def quiet_lightning(verbose: Any) -> Iterator[None]:
    """Lightning's banner, tips and internal deprecations hidden below `verbose=2`, for this run only.

    Lightning's loggers go to WARNING for the run and back after; the warnings are filtered by
    their message inside this block only, so code outside a run sees every warning as before.
    Warnings about choices the trainer makes on purpose (worker count, CPU over GPU) are hidden at
    every verbosity. Where a bar is drawn, the warnings shown and (at 2) Lightning's lines go
    through tqdm's writer, as our messages do, so none is written into the bar.
    """
    level = verbosity(verbose)
    everything, bar = level >= EVERYTHING, level >= MESSAGES and bar_can_draw()
    with quiet_loggers(_LIGHTNING_LOGGERS, logging.NOTSET if everything else logging.WARNING) as loggers, \
            warnings.catch_warnings(), (_lines_above_bar(loggers) if bar else contextlib.nullcontext()):
        hidden = _CHOSEN if everything else _CHOSEN + _INTERNAL_DEPRECATIONS
        for message, category in hidden:
            warnings.filterwarnings('ignore', message=message, category=category)
        if bar:  # put back when catch_warnings ends
            warnings.showwarning = show_warning_above_bar
        yield
