"""Any `LernomaticModel` as a `lightning.LightningModule`.

The adapter keeps the user's wrapper and network (it registers the same `net` object, no copy),
so `lightning.Trainer().fit(LernomaticModule(model), ...)` trains the model the wrapper holds.
"""

from __future__ import annotations

from typing import Any

import lightning
import torch

from compat.adapter.metrics import TopOneAccuracy
from compat.optim import build_criterion, build_optimizer

__all__ = ['LernomaticModule', 'evaluate_batch', 'model_metadata']


def model_metadata(model: Any) -> dict[str, Any]:
    """The import metadata of a `LernomaticModel` (its `get_params()`), without its weights."""
    return {key: value for key, value in model.get_params().items() if key != 'model_state_dict'}


def evaluate_batch(forward: Any, criterion: Any, batch: Any, accuracy: TopOneAccuracy) -> torch.Tensor:
    """Loss of one `(data, target)` batch, as Lernomatic's `val_epoch` computes it; predictions update `accuracy`."""
    data, target = batch
    output = forward(data)
    accuracy.update(output, target)
    return criterion(output, target)


class LernomaticModule(lightning.LightningModule):
    """A LightningModule that trains a `LernomaticModel` with a `torch.nn` loss and a `torch.optim` optimizer.

    Args:
        model: the wrapper; its `net` becomes this module's `net` (the same object).
        loss_function: name of a `torch.nn` loss class, used when `criterion` is None.
        optim_function: name of a `torch.optim` class, used when `optimizer` is None.
        learning_rate: lr of the optimizer built from `optim_function`.
        weight_decay: weight decay of the optimizer built from `optim_function`.
        criterion: a loss module to use as it is.
        optimizer: an optimizer over `model.net`'s parameters to use as it is.
    """

    def __init__(self, model: Any, loss_function: str = 'CrossEntropyLoss', optim_function: str = 'Adam',
                 learning_rate: float = 1e-4, weight_decay: float = 1e-5,
                 criterion: torch.nn.Module | None = None, optimizer: torch.optim.Optimizer | None = None) -> None:
        super().__init__()
        self.lernomatic_model = model
        self.net = model.get_net()
        self.criterion = criterion if criterion is not None else build_criterion(loss_function)
        self.optim_function = optim_function
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self._given_optimizer = optimizer
        self.val_accuracy = TopOneAccuracy()
        self.test_accuracy = TopOneAccuracy()

    def forward(self, data: Any) -> Any:
        return self.lernomatic_model.forward(data)

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        data, target = batch
        loss = self.criterion(self(data), target)
        self.log('loss/train', loss, on_step=True, on_epoch=False, prog_bar=True)
        return loss

    def evaluate(self, batch: Any, accuracy: TopOneAccuracy) -> torch.Tensor:
        """Loss of one evaluation batch; the batch's predictions update `accuracy`."""
        return evaluate_batch(self, self.criterion, batch, accuracy)

    def validation_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        loss = self.evaluate(batch, self.val_accuracy)
        self.log('loss/val', loss, on_epoch=True, prog_bar=True)
        self.log('acc/val', self.val_accuracy, on_epoch=True, prog_bar=True)
        return loss

    def test_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        loss = self.evaluate(batch, self.test_accuracy)
        self.log('loss/test', loss, on_epoch=True)
        self.log('acc/test', self.test_accuracy, on_epoch=True)
        return loss

    def configure_optimizers(self) -> torch.optim.Optimizer:
        if self._given_optimizer is not None:
            return self._given_optimizer
        return build_optimizer(self.optim_function, self.net.parameters(), self.learning_rate, self.weight_decay)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Keep the wrapper's import metadata in Lightning checkpoints, so they can become Lernomatic ones."""
        checkpoint['lernomatic_model'] = model_metadata(self.lernomatic_model)
        optimizer = self._given_optimizer
        checkpoint.setdefault('lernomatic_trainer_params', {
            'learning_rate': self.learning_rate, 'weight_decay': self.weight_decay,
            'loss_function': type(self.criterion).__name__,
            'optim_function': type(optimizer).__name__ if optimizer is not None else self.optim_function,
        })
