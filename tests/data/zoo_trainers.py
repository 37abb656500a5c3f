"""Trainers written as the original's zoo wrote them: their own optimizer in `_init_optimizer`.

`MNISTStyleTrainer` is the shape of the original's `MNISTTrainer` and `CIFAR10Trainer`: it pops its
own kwargs, builds SGD with momentum when it has a model and `None` "for when we load checkpoints
from disk", while `trainer_params['optim_function']` keeps the base default 'Adam'.
`RMSpropStyleTrainer` builds yet another optimizer. `original_save_checkpoint` writes a checkpoint
the way the original's `Trainer.save_checkpoint` did: the three keys, nothing of ours.
"""

import torch
import torch.nn as nn

from lernomatic.train import trainer


class MNISTStyleTrainer(trainer.Trainer):
    def __init__(self, model=None, **kwargs):
        self.data_dir = kwargs.pop('data_dir', 'data/')
        super(MNISTStyleTrainer, self).__init__(model, **kwargs)  # noqa: UP008 - the zoo's own spelling
        self.criterion = nn.CrossEntropyLoss()

    def __repr__(self):
        return 'MNISTStyleTrainer'

    def _init_optimizer(self):
        if self.model is not None:
            self.optimizer = torch.optim.SGD(self.model.get_model_parameters(), lr=self.learning_rate,
                                             momentum=self.momentum)
        else:
            self.optimizer = None  # for when we load checkpoints from disk
        self.criterion = torch.nn.CrossEntropyLoss()


class RMSpropStyleTrainer(trainer.Trainer):
    def __repr__(self):
        return 'RMSpropStyleTrainer'

    def _init_optimizer(self):
        if self.model is not None:
            self.optimizer = torch.optim.RMSprop(self.model.get_model_parameters(), lr=self.learning_rate,
                                                 momentum=0.9)
        else:
            self.optimizer = None
        self.criterion = torch.nn.CrossEntropyLoss()


def original_save_checkpoint(tr, fname):
    """The original's save_checkpoint: model metadata, the optimizer's state dict, the trainer's params."""
    checkpoint = {
        'model': tr.model.get_params(),
        'optim': tr.optimizer.state_dict(),
        'trainer_params': tr.get_trainer_params(),
    }
    torch.save(checkpoint, fname)
