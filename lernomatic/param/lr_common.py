"""Learning-rate range test (Smith 2017) under the original Lernomatic's names.

`LogFinder(trainer, **kwargs).find()` trains the trainer's own model with a learning rate that
grows by a constant factor every batch, records the smoothed loss (and, with `acc_test`, the
validation accuracy after every batch), puts the trainer, the weights and the optimizer back as
they were, and returns an `(lr_min, lr_max)` range chosen by `lr_select_method`. The batches run
on Lightning's fit loop (`compat.loop.lr_sweep`).

`save` / `load` keep the results in a file of plain values, and `lr_finder_auto_load(fname)`
rebuilds the finder class a file names. Such files are untrusted input: only the fields declared
below, of the declared types, are read back, and the class is looked up in this module alone.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from compat.adapter import LernomaticModule, evaluate_batch
from compat.adapter.metrics import TopOneAccuracy
from compat.codec.atomic import atomic_save
from compat.devices import lightning_devices
from compat.errors import CheckpointError, ConfigError
from compat.kwargs import report_unknown_kwargs
from compat.logs import get_logger, say
from compat.loop.lr_sweep import run_lr_sweep
from lernomatic.param.lr_finder_fields import (
    EDGE_METHODS,
    FILE_METADATA,
    FINDER_OPTIONS,
    FINDER_STATE,
    LR_SELECT_METHODS,
    Field,
    check_options_together,
    check_state_together,
    checked_fields,
    read_finder_file,
    short,
)
from lernomatic.param.lr_range import RANGE_RULES

__all__ = ['LRFinder', 'LogFinder', 'lr_finder_auto_load', 'LR_SELECT_METHODS']

log = get_logger('lr_find')

class LRFinder:
    """Finds a learning-rate range for a Lernomatic trainer; subclasses say how the rate moves (`find`).

    Args:
        trainer: a Lernomatic `Trainer`; never touched until `find()`, so None is fine for a finder
            that only holds loaded results.
        **kwargs: `FINDER_OPTIONS`, with their defaults; `strict=True` (or `LERNOMATIC_STRICT=1`)
            makes unknown kwargs an error instead of one warning.
    """

    options: Mapping[str, Field] = FINDER_OPTIONS
    state_fields: Mapping[str, Field] = FINDER_STATE

    # ---- declared attributes: annotations only, no values. Defaults and checks are in the field tables
    # (lernomatic.param.lr_finder_fields), which __init__, _init_history, save and load read.
    # options (FINDER_OPTIONS)
    num_epochs: int
    lr_mult: float
    lr_min: float
    lr_max: float
    explode_thresh: float
    beta: float
    gamma: float
    lr_min_factor: float
    lr_max_scale: float
    lr_select_method: str
    lr_trunc: int
    max_batches: int
    grad_thresh: float
    acc_test: bool
    print_every: int
    verbose: bool
    expr_id: int | str | None
    # what find() records (FINDER_STATE)
    avg_loss: float
    best_loss: float
    best_loss_idx: int
    best_acc: float
    best_acc_idx: int
    learning_rate: float
    smooth_loss_history: list[float]
    log_lr_history: list[float]
    acc_history: list[float]
    loss_grad_history: list[float]

    def __init__(self, trainer: Any, **kwargs: Any) -> None:
        strict = kwargs.pop('strict', None)
        if strict is not None and not isinstance(strict, bool):
            raise ConfigError(f'strict must be None, True or False, got {strict!r}')
        report_unknown_kwargs(type(self).__name__, [k for k in kwargs if k not in self.options], self.options, strict)
        values = checked_fields(self.options, {name: kwargs.get(name, f.default) for name, f in self.options.items()})
        check_options_together(values)
        self.trainer = trainer
        for name, value in values.items():
            setattr(self, name, value)
        self.model_params: dict | None = None
        self.trainer_params: dict | None = None
        self._epoch_length = 1  # training batches per epoch of the sweep; find() sets it
        self._init_history()

    def __repr__(self) -> str:
        return type(self).__name__

    def __str__(self) -> str:
        return (f'{self!r} ({self.lr_min:g} -> {self.lr_max:g})\nMethod [{self.lr_select_method}]\n'
                f'avg_loss : {self.avg_loss:f}, best_loss: {self.best_loss:f}, best_acc: {self.best_acc:f}\n')

    def _init_history(self) -> None:
        """Every declared state attribute back to its default (fresh lists)."""
        for name, field in self.state_fields.items():
            setattr(self, name, field.kind.plain(field.default))

    # ---- the trainer's state around a sweep
    def save_model_params(self, params: dict) -> None:
        self.model_params = copy.deepcopy(params)

    def load_model_params(self) -> dict | None:
        return self.model_params

    def save_trainer_params(self, params: dict) -> None:
        self.trainer_params = copy.deepcopy(params)

    def load_trainer_params(self) -> dict | None:
        return self.trainer_params

    def _require_trainer(self) -> Any:
        if self.trainer is None:
            raise ConfigError(f'{self!r} has no trainer: build it as {self!r}(trainer, ...) to run find() '
                              '(a finder from lr_finder_auto_load holds saved results only)')
        return self.trainer

    def check_loaders(self) -> None:
        """ValueError unless the trainer has a training and a validation loader."""
        trainer = self._require_trainer()
        if getattr(trainer, 'train_loader', None) is None:
            raise ConfigError(f'{self!r} needs training data: the trainer has no train_loader (pass train_dataset=)')
        if getattr(trainer, 'val_loader', None) is None:
            raise ConfigError(f'{self!r} needs validation data: the trainer has no val_loader (pass val_dataset=)')

    def find(self) -> tuple[float, float]:
        raise NotImplementedError(f'{self!r} is the base class: use a subclass such as LogFinder')

    # ---- recording
    def _record_loss(self, batch_idx: int, loss: float) -> bool:
        """Smooth one batch's loss, record it with the batch's lr; True when the loss exploded.

        Args:
            batch_idx: the batch's index within its epoch. The bias correction counts from it, so it
                restarts every epoch while the moving average carries over, as in the original: the
                first smoothed losses of a second epoch jump (by about (1 - beta**n) / (1 - beta) after
                an epoch of n batches), which ends the sweep near lr_max with the default beta.
            loss: the batch's training loss.
        """
        step = len(self.smooth_loss_history)
        previous = self.avg_loss
        self.avg_loss = self.beta * self.avg_loss + (1.0 - self.beta) * loss
        smooth = self.avg_loss / (1.0 - self.beta ** (batch_idx + 1))
        if batch_idx > 0:
            self.loss_grad_history.append(self.avg_loss - previous)
        self.smooth_loss_history.append(smooth)
        self.log_lr_history.append(math.log10(self.learning_rate))
        if smooth < self.best_loss:
            self.best_loss, self.best_loss_idx = smooth, step
        self._write_scalars(step, {'lr_find/loss': loss, 'lr_find/smooth_loss': smooth})
        if batch_idx % self.print_every == 0:
            say(log, self.verbose, '[FIND_LR] batch %d  lr %.3g  loss %.6f  smoothed %.6f  best %.6f',
                step, self.learning_rate, loss, smooth, self.best_loss)
        # a multiple of the best loss only means 'worse' while losses are positive
        exploded = not math.isfinite(smooth) or (self.best_loss > 0 and smooth > self.explode_thresh * self.best_loss)
        if exploded:
            say(log, self.verbose, '[FIND_LR] smoothed loss %.6f passed %g x best (%.6f): stopping',
                smooth, self.explode_thresh, self.best_loss)
        return exploded

    def _record_accuracy(self, accuracy: float, mean_loss: float) -> None:
        index = len(self.acc_history)
        self.acc_history.append(accuracy)
        if accuracy > self.best_acc:
            self.best_acc, self.best_acc_idx = accuracy, index
        self._write_scalars(max(0, len(self.log_lr_history) - 1),
                            {'lr_find/val_acc': accuracy, 'lr_find/avg_val_loss': mean_loss})

    def _write_scalars(self, step: int, scalars: Mapping[str, float]) -> None:
        writer = getattr(self.trainer, 'tb_writer', None)
        if writer is not None:
            for tag, value in scalars.items():
                writer.add_scalar(tag, value, step)

    def acc(self, data_loader: Any, batch_idx: int = 0) -> float:
        """Accuracy of the trainer's model over `data_loader` (on `trainer.device`), recorded as one point.

        `find()` measures the same through Lightning's validation loop; this is the original's
        method for code that calls it directly. `batch_idx` is accepted as the original took it.
        """
        trainer = self._require_trainer()
        net = trainer.model.get_net()
        was_training = net.training
        accuracy, losses = TopOneAccuracy().to(trainer.device), []
        net.eval()
        with torch.no_grad():
            for data, target in data_loader:
                batch = (data.to(trainer.device), target.to(trainer.device))
                losses.append(evaluate_batch(trainer.model.forward, trainer.criterion, batch, accuracy))
        net.train(was_training)
        value = float(accuracy.compute())
        self._record_accuracy(value, float(torch.stack(losses).mean()) if losses else float('nan'))
        return value

    def get_lr_history(self) -> list[float] | None:
        return self.log_lr_history if self.log_lr_history else None

    # ---- the range
    def get_lr_range(self) -> tuple[float, float]:
        """`(lr_min, lr_max)` by `lr_select_method`.

        'max_acc' / 'min_loss' / 'max_range': with L the log10 lr at the best accuracy / the best
        smoothed loss / the last batch, hi = L * lr_max_scale and lo = hi * lr_min_factor, both
        products on the log10 value as the original computed them, returned as 10**lo, 10**hi.
        Without an accuracy history (acc_test=False), 'max_acc' follows best_acc_idx as it stands,
        0 after a sweep: the range from the first lr, as the original gave it.

        'laplace' / 'sobel': edges of the accuracy curve, decided here where the spec is loose:
        the kernel ([-1, 4, -1] / [-1, 0, 1]) is applied centred on each accuracy point that has
        both neighbours (no zero padding, so no spurious edges at the ends and point j is
        log_lr_history[j]); [-1, 0, 1] is applied as a gradient (next minus previous), so it is
        high where the accuracy climbs fastest, and [-1, 4, -1] is high at the ends of a plateau
        of high accuracy. Only points at least lr_trunc from either end are considered; those
        below 0.9 x the highest response among them are dropped, and the range runs from the
        first remaining lr to the last (lo <= hi). The original took 'second-to-last' to skip
        the zero-padding artifact of its 'full' convolution, and returned the two swapped.

        Raises:
            NotImplementedError: 'min_range', which the original never implemented.
            ValueError: an unknown method, or no history to choose from.
        """
        method = self.lr_select_method
        if method == 'min_range':
            raise NotImplementedError("lr_select_method='min_range' was never implemented in Lernomatic: "
                                      f'use one of {", ".join(m for m in LR_SELECT_METHODS if m != "min_range")}')
        if method not in RANGE_RULES:
            raise ValueError(f'Invalid lr_select_method {method!r}: use one of {", ".join(LR_SELECT_METHODS)}')
        if not self.log_lr_history:
            raise ValueError(f'{self!r} has no learning-rate history: run find() or load() a saved finder first')
        if method in EDGE_METHODS and not self.acc_history:
            raise ValueError(f'lr_select_method={method!r} needs the accuracy history, which is empty: '
                             "run find() with acc_test=True, or use 'min_loss' or 'max_range'")
        lo, hi = RANGE_RULES[method](self)
        try:
            return 10.0 ** lo, 10.0 ** hi
        except OverflowError:
            raise ValueError(f'lr_select_method={method!r} gives the range 10**{lo:.4g} .. 10**{hi:.4g}, beyond a '
                             'float: check lr_max_scale, lr_min_factor and the learning-rate history') from None

    # ---- plots
    def plot_lr_vs_acc(self, ax: Any, title: str | None = None, log: bool = False) -> None:
        """Accuracy against the lr (log10 lr with `log`) on a matplotlib axis, red lines at the range."""
        if not self.log_lr_history:
            raise RuntimeError(f'[{self!r}] no learning rate history')
        if not self.acc_history:
            raise RuntimeError(f'[{self!r}] no accuracy history')
        self._plot(ax, self.acc_history, log, 'Accuracy',
                   title or f'Accuracy vs. Learning rate [{self.lr_select_method}]')

    def plot_lr_vs_loss(self, ax: Any, title: str | None = None, log: bool = False) -> None:
        """Smoothed loss against the lr (log10 lr with `log`) on a matplotlib axis, red lines at the range."""
        if not self.log_lr_history:
            raise ValueError(f'[{self!r}] no learning rate history')
        self._plot(ax, self.smooth_loss_history, log, 'Smooth loss',
                   title or f'Learning rate vs. Loss [{self.lr_select_method}]')

    def _plot(self, ax: Any, values: list[float], log: bool, ylabel: str, title: str) -> None:
        log_lr = np.asarray(self.log_lr_history[:len(values)])
        ax.plot(log_lr if log else 10.0 ** log_lr, np.asarray(values[:len(log_lr)]))
        # the original drew these at 10**lr on the linear axis, off the curve: here on the curve's scale
        for name, lr in zip(('lr_min', 'lr_max'), self.get_lr_range(), strict=True):
            ax.axvline(x=math.log10(lr) if log else lr, color='r', label=name)
        ax.set_xlabel('Learning rate')
        ax.set_ylabel(ylabel)
        ax.set_title(title)

    # ---- files
    def get_params(self) -> dict[str, Any]:
        """The finder's settings and results as plain values: what `save` writes."""
        params = {name: copy.copy(getattr(self, name)) for name in (*self.options, *self.state_fields)}
        params['module_name'] = type(self).__name__
        params['module_path'] = __name__
        return params

    def save(self, fname: str | Path) -> None:
        """Write `get_params()` with `torch.save`, atomically (no trainer, no saved weights)."""
        atomic_save(self.get_params(), fname)

    def load(self, fname: str | Path) -> None:
        """Restore settings and results from a `save`d file; unknown keys are ignored with a warning.

        Raises:
            CheckpointError: the file cannot be read, or a field is missing or malformed (nothing is
                changed then).
        """
        self._restore(read_finder_file(fname), fname)

    def _restore(self, record: Mapping[Any, Any], fname: str | Path) -> None:
        fields = {**self.options, **self.state_fields}
        unknown = [key for key in record if key not in fields and key not in FILE_METADATA]
        if unknown:
            log.warning('%s: ignored unknown field(s) %s', fname, short.repr(unknown))
        missing = [name for name in fields if name not in record]
        if missing:
            raise CheckpointError(f'{fname}: not an LR finder file: missing field(s) {", ".join(missing)}')
        try:
            values = checked_fields(fields, {name: record[name] for name in fields})
            check_options_together(values)
            check_state_together(values)
        except ConfigError as error:
            raise CheckpointError(f'{fname}: field {error}') from None
        for name, value in values.items():
            setattr(self, name, value)


class LogFinder(LRFinder):
    """The LR range test with a learning rate multiplied by a constant every batch.

    The rate starts at lr_min and is multiplied by lr_mult = (lr_max/lr_min) ** (1/len(train_loader))
    after every batch, so it reaches lr_max after one whole epoch and goes on rising in the next
    ones, as in the original; max_batches shortens each epoch to exactly that many batches (the
    original ran one more) without changing lr_mult. The loss smoothing's bias correction restarts
    every epoch, as in the original (`_record_loss`), so with the default beta a sweep of several
    epochs stops at the first batch of the second one, at lr_max. The accuracy is measured after
    each batch's step, so acc_history[i], smooth_loss_history[i] and log_lr_history[i] describe the
    same batch and best_acc_idx / best_loss_idx index all three (the original measured before the
    step and kept best_acc_idx one past the best).
    """

    def find(self) -> tuple[float, float]:
        """Run the sweep, restore trainer params, weights and optimizer state, return `get_lr_range()`."""
        trainer = self._require_trainer()
        for name in ('model', 'optimizer'):
            if getattr(trainer, name, None) is None:
                raise ConfigError(f'{self!r} needs a trainer with a model and an optimizer: trainer.{name} is None')
        self.check_loaders()
        if len(trainer.train_loader) == 0:
            raise ConfigError(f'{self!r} needs training batches: the trainer\'s train_loader is empty')
        self._check_method_before_sweep()
        net = trainer.model.get_net()
        self.save_model_params(trainer.model.get_net_state_dict())
        self.save_trainer_params(trainer.get_trainer_params())
        optimizer_state = copy.deepcopy(trainer.optimizer.state_dict())
        modes = {module: module.training for module in net.modules()}
        self._init_history()
        self.learning_rate = self.lr_min
        self.lr_mult = (self.lr_max / self.lr_min) ** (1.0 / len(trainer.train_loader))
        # Lightning ends each epoch after this many batches: the batch index within the epoch follows
        self._epoch_length = min(self.max_batches, len(trainer.train_loader)) if self.max_batches > 0 \
            else len(trainer.train_loader)
        say(log, self.verbose, 'Finding lr using trainer :\n%s', trainer)
        module = LernomaticModule(trainer.model, criterion=trainer.criterion, optimizer=trainer.optimizer)
        accelerator, devices = lightning_devices(getattr(trainer, 'accelerator', None),
                                                 getattr(trainer, 'devices', None), getattr(trainer, 'device_id', -1))
        try:
            run_lr_sweep(module, self, trainer.train_loader, trainer.val_loader if self.acc_test else None,
                         max_epochs=self.num_epochs, max_batches=self.max_batches, accelerator=accelerator,
                         devices=devices, precision=getattr(trainer, 'precision', None), verbose=self.verbose)
        finally:
            self._put_back(trainer, module, optimizer_state, modes)
        return self.get_lr_range()

    def _check_method_before_sweep(self) -> None:
        """Refuse, before any batch, a method that could not pick a range from this sweep's records."""
        method = self.lr_select_method
        if method == 'min_range':
            self.get_lr_range()  # raises NotImplementedError, naming the methods to use instead
        if not self.acc_test and method in EDGE_METHODS:
            raise ConfigError(f'acc_test=False records no accuracy, but lr_select_method={method!r} finds the range '
                              "in the accuracy curve: use acc_test=True, or lr_select_method='min_loss' or 'max_range'")
        if not self.acc_test and method == 'max_acc':
            log.warning("acc_test=False records no accuracy: lr_select_method='max_acc' then gives the range from "
                        "the first learning rate, as the original did; use lr_select_method='min_loss' for a range "
                        'from the loss')

    def _put_back(self, trainer: Any, module: torch.nn.Module, optimizer_state: dict,
                  modes: Mapping[torch.nn.Module, bool]) -> None:
        """Trainer params, weights, optimizer state and train/eval modes as they were before find().

        The original meant to restore the weights and did not; it never restored the optimizer.
        """
        say(log, self.verbose, '[FIND_LR] restoring trainer state')
        if getattr(trainer, 'device', None) is not None:
            module.to(trainer.device)  # Lightning's teardown leaves model and criterion on the CPU
        trainer.set_trainer_params(self.load_trainer_params())
        trainer.model.set_net_state_dict(self.load_model_params())
        trainer.optimizer.load_state_dict(optimizer_state)  # also moves its tensors to the weights' device
        for submodule, training in modes.items():
            submodule.training = training

    # ---- compat.loop.lr_sweep.SweepListener
    def on_sweep_batch_start(self) -> None:
        self.trainer.set_learning_rate(self.learning_rate)

    def on_sweep_batch_end(self, loss: float) -> bool:
        exploded = self._record_loss(len(self.smooth_loss_history) % self._epoch_length, loss)
        self.learning_rate *= self.lr_mult
        return exploded

    def on_sweep_validation_end(self, accuracy: float, mean_loss: float) -> None:
        self._record_accuracy(accuracy, mean_loss)


def _finder_classes() -> dict[str, type[LRFinder]]:
    """LRFinder and its subclasses defined in this module, by class name."""
    return {name: value for name, value in globals().items()
            if isinstance(value, type) and issubclass(value, LRFinder) and value.__module__ == __name__
            and value.__name__ == name}


def lr_finder_auto_load(fname: str | Path) -> LRFinder:
    """The finder a `save`d file holds, as the class it names, built with no trainer.

    The class must be LRFinder or a subclass defined in this module ('module_path' must be this
    module): nothing named by the file is imported.

    Raises:
        CheckpointError: the file cannot be read, names another class or module, or holds a bad field.
    """
    record = read_finder_file(fname)
    path, name = record.get('module_path'), record.get('module_name')
    if path != __name__:
        raise CheckpointError(f'{fname}: module_path must be {__name__!r} (LR finders are looked up there only), '
                              f'got {short.repr(path)}')
    classes = _finder_classes()
    if not isinstance(name, str) or name not in classes:
        raise CheckpointError(f'{fname}: module_name must be one of {", ".join(sorted(classes))}, '
                              f'got {short.repr(name)}')
    finder = classes[name](None)
    finder._restore(record, fname)
    return finder
