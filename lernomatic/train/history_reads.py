"""The original's history getters: what a Trainer has recorded so far, as numpy.

A base of `Trainer` of its own (over the declared attributes) so that `trainer.py` stays about
running and files; the arrays themselves are declared in `compat.state.histories`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from torch.utils.data import DataLoader

from compat.errors import ConfigError
from compat.state.histories import filled
from lernomatic.train.attributes import TrainerAttributes

__all__ = ['HistoryReads']


class HistoryReads(TrainerAttributes):
    """`get_loss_history()`, `get_cur_loss()` ... read the recorded part of each history."""

    def get_loss_history(self) -> np.ndarray | None:
        return filled(self.loss_history, self.loss_iter)

    def get_val_loss_history(self) -> np.ndarray | None:
        return filled(self.val_loss_history, self.val_loss_iter)

    def get_acc_history(self) -> np.ndarray | None:
        return filled(self.acc_history, self.acc_iter)

    def _recorded(self, name: str, array: np.ndarray | None) -> np.ndarray:
        """History `name`, whose counter says it holds values: a clear error where it is None instead."""
        if array is None:
            raise ConfigError(f'{self!r} counts values recorded in {name}, but {name} is None: a checkpoint holds no '
                              'histories, so load_checkpoint() restores the counters alone (as the original did); '
                              "call load_history() with the run's <checkpoint_name>_history.pkl, written beside its "
                              'checkpoints (or a subclass or history file set the counter without the array)')
        return array

    def _epoch_length(self, name: str, loader: DataLoader[Any] | None) -> int:
        if loader is None:
            raise ConfigError(f'{self!r} has no {name}, so the length of an epoch is unknown')
        return len(loader)

    def get_cur_loss(self) -> float:
        """The newest training loss (the original read the slot after it, always 0)."""
        if self.loss_iter == 0:
            return 0.0
        return float(self._recorded('loss_history', self.loss_history)[self.loss_iter - 1])

    def get_cur_val_loss(self) -> float:
        if self.val_loss_iter == 0:
            return 0.0
        return float(self._recorded('val_loss_history', self.val_loss_history)[self.val_loss_iter - 1])

    def get_cur_acc(self) -> float:
        if self.acc_iter == 0:
            return 0.0
        return float(self._recorded('acc_history', self.acc_history)[self.acc_iter - 1])

    def get_cur_epoch_loss(self) -> np.ndarray | None:
        if self.loss_iter == 0:
            return None
        start = max(0, self.loss_iter - self._epoch_length('train_loader', self.train_loader))
        return self._recorded('loss_history', self.loss_history)[start:self.loss_iter]

    def get_cur_epoch_val_loss(self) -> np.ndarray | None:
        if self.val_loss_iter == 0:
            return None
        start = max(0, self.val_loss_iter - self._epoch_length('val_loader', self.val_loader))
        return self._recorded('val_loss_history', self.val_loss_history)[start:self.val_loss_iter]
