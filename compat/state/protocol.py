"""What compat needs from a Lernomatic trainer, typed: the old `Trainer`'s attributes and methods it uses.

compat works on the trainer object itself (old subclasses set and read these attributes in their
own code, so they are not copied into a parallel structure). This protocol names every one compat
reads or writes; `lernomatic.train.trainer.Trainer` satisfies it, and mypy checks each use.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np
import torch

from compat.state.run_state import RunState

__all__ = ['LernomaticTrainer']


class LernomaticTrainer(Protocol):
    """A Lernomatic trainer as compat sees it."""

    # ---- options (lernomatic.train.options)
    num_epochs: int
    verbose: Any
    print_every: int
    save_every: int
    save_best: bool
    save_hist: bool
    checkpoint_dir: str
    checkpoint_name: str
    stop_when_acc: float
    early_stop: dict[str, Any] | None
    stop_on_nonfinite: bool
    tb_writer: Any
    lr_scheduler: Any
    mtm_scheduler: Any
    device_id: int
    accelerator: Any
    devices: Any
    strategy: Any
    precision: Any
    callbacks: list[Any] | None
    logger: Any
    deterministic: Any
    cuda_graph: bool
    data_on_device: bool
    trusted_modules: list[str] | None

    # ---- what it trains with
    model: Any
    optimizer: torch.optim.Optimizer | None
    criterion: Any
    device: torch.device
    train_loader: Any
    val_loader: Any
    test_loader: Any

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
