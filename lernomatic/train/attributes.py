"""What every `Trainer` holds, declared once for mypy and for compat's `LernomaticTrainer` protocol.

Annotations only, no values: the options' defaults live in the option table
(`lernomatic.train.options`), which `Trainer.__init__` applies; the state is set by `__init__` and
the `_init_*` steps that subclasses override. A base class of its own so that `trainer.py` holds
behaviour alone.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from compat.state.run_state import RunState

if TYPE_CHECKING:  # for the annotations only
    import lightning
    from lightning.pytorch.accelerators import Accelerator
    from lightning.pytorch.loggers import Logger
    from lightning.pytorch.strategies import Strategy

__all__ = ['TrainerAttributes', 'missing_base_init']


def missing_base_init(cls: type, name: str) -> str:
    """What to say when `name` is missing because a subclass's `__init__` never ran `Trainer.__init__`."""
    owner = cls.__name__
    return (f"{owner!r} object has no attribute {name!r}: Trainer.__init__ has not run on this {owner}, and it sets "
            f'the options, loaders, histories and counters. Call super().__init__(model, **kwargs) in {owner}.__init__ '
            "(after popping your own kwargs, before using the trainer's attributes), as the original's trainers do")


class TrainerAttributes:
    """The options and state of a `Trainer` (annotations only)."""

    # Annotations only, no values. The options' defaults live in the option
    # table (lernomatic.train.options), which __init__ applies; the state is set by __init__ and the
    # _init_* steps (which subclasses override). Together they are compat.state.protocol.LernomaticTrainer.
    # options (TRAINER_OPTIONS)
    num_epochs: int
    learning_rate: float
    momentum: float
    weight_decay: float
    loss_function: str
    optim_function: str
    checkpoint_dir: str | os.PathLike[str]
    checkpoint_name: str
    save_hist: bool
    verbose: int  # False/True or 0, 1, 2 (compat.logs.verbosity)
    print_every: int
    save_every: int
    save_best: bool
    device_id: int
    device_map: Any  # kept for old code, unused
    batch_size: int
    val_batch_size: int
    train_dataset: Dataset[Any] | None
    test_dataset: Dataset[Any] | None
    val_dataset: Dataset[Any] | None
    shuffle: bool
    num_workers: int
    drop_last: bool
    lr_scheduler: Any  # None or any object with get_lr() (compat.schedules)
    mtm_scheduler: Any
    stop_when_acc: float
    early_stop: Mapping[str, Any] | None
    tb_writer: Any  # None or a SummaryWriter (anything with add_scalar)
    stop_on_nonfinite: bool
    strict: bool | None
    trusted_modules: Sequence[str] | None
    # options passed on to lightning.Trainer (LIGHTNING_OPTIONS)
    accelerator: str | Accelerator | None
    devices: int | str | list[int] | None
    strategy: str | Strategy
    num_nodes: int
    precision: int | str | None
    callbacks: Sequence[lightning.Callback] | None
    logger: bool | Logger
    deterministic: bool | Literal['warn'] | None
    cuda_graph: bool
    data_on_device: bool
    # what it trains with
    model: Any  # a LernomaticModel, or old code's object with its methods; None until one is given or loaded
    optimizer: torch.optim.Optimizer | None
    criterion: torch.nn.Module
    device: torch.device
    train_loader: DataLoader[Any] | None
    val_loader: DataLoader[Any] | None
    test_loader: DataLoader[Any] | None
    # its state: counters, histories (installed as compat.state.device_buffer.BufferedHistory), results
    cur_epoch: int
    start_epoch: int
    iter_per_epoch: int
    best_acc: float
    loss_iter: int
    val_loss_iter: int
    acc_iter: int
    loss_history: np.ndarray | None
    val_loss_history: np.ndarray | None
    acc_history: np.ndarray | None
    test_loss: float  # set by test_epoch()
    test_acc: float
    _run_state: RunState

    if not TYPE_CHECKING:  # hidden from mypy, which would otherwise type every misspelt attribute as Any
        def __getattr__(self, name: str) -> Any:
            """Only for attributes not found: name the cause when `Trainer.__init__` never ran on this object.

            The user guide's own `NewTrainer` example defines `__init__` without `super().__init__()`;
            such a trainer constructs, and the first attribute it lacks would otherwise be a bare
            AttributeError deep in `train()`. `_run_state` is the first thing `Trainer.__init__` sets.
            """
            if name.startswith('__') or '_run_state' in vars(self):
                raise AttributeError(f'{type(self).__name__!r} object has no attribute {name!r}', name=name, obj=self)
            raise AttributeError(missing_base_init(type(self), name), name=name, obj=self)
