"""What compat needs from a Lernomatic trainer, typed: the old `Trainer`'s attributes and methods it uses.

compat works on the trainer object itself (old subclasses set and read these attributes in their
own code, so they are not copied into a parallel structure). This protocol names every one compat
reads or writes; `lernomatic.train.trainer.Trainer` satisfies it, and mypy checks each use.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal, Protocol

import numpy as np
import torch
from torch.utils.data import DataLoader

from compat.state.run_state import RunState

if TYPE_CHECKING:  # for the annotations only: importing this module must not import Lightning (the CLI's start-up)
    import lightning
    from lightning.pytorch.accelerators import Accelerator
    from lightning.pytorch.loggers import Logger
    from lightning.pytorch.strategies import Strategy

__all__ = ['LernomaticTrainer']


class LernomaticTrainer(Protocol):
    """A Lernomatic trainer as compat sees it."""

    # ---- options (lernomatic.train.options)
    num_epochs: int
    optim_function: str
    verbose: int  # False/True or 0, 1, 2 (compat.logs.verbosity)
    print_every: int
    save_every: int
    save_best: bool
    save_hist: bool
    checkpoint_dir: str | os.PathLike[str]
    checkpoint_name: str
    stop_when_acc: float
    early_stop: Mapping[str, Any] | None
    stop_on_nonfinite: bool
    tb_writer: Any  # None or a SummaryWriter (anything with add_scalar)
    lr_scheduler: Any  # None or any object with get_lr() (compat.schedules)
    mtm_scheduler: Any
    device_id: int
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
    trusted_modules: Sequence[str] | None

    # ---- what it trains with
    model: Any  # a LernomaticModel, or old code's object with its methods; None until one is given or loaded
    optimizer: torch.optim.Optimizer | None
    criterion: torch.nn.Module
    device: torch.device
    train_loader: DataLoader[Any] | None
    val_loader: DataLoader[Any] | None
    test_loader: DataLoader[Any] | None

    # ---- its state
    cur_epoch: int
    best_acc: float
    loss_iter: int
    val_loss_iter: int
    acc_iter: int
    loss_history: np.ndarray | None
    val_loss_history: np.ndarray | None
    acc_history: np.ndarray | None
    test_loss: float
    test_acc: float
    _run_state: RunState

    # ---- what it does
    def save_checkpoint(self, fname: str) -> None: ...
    def save_history(self, fname: str) -> None: ...
    def get_trainer_params(self) -> dict[str, Any]: ...
    def get_learning_rate(self) -> float: ...
    def get_momentum(self) -> float | None: ...
    def apply_lr_schedule(self) -> None: ...
    def apply_mtm_schedule(self) -> None: ...
    def _send_to_device(self) -> None: ...
