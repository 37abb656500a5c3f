# The autoencoder trainer runs its own train() loop.
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(__file__))
import data_util  # noqa: E402

from lernomatic.models import ae_nets  # noqa: E402
from lernomatic.train.autoencoder import ae_trainer  # noqa: E402
from lernomatic.util import math_util  # noqa: E402


def test_ae_trainer_own_train_loop(tmpdir):
    torch.manual_seed(0)
    trainer = ae_trainer.AETrainer(ae_nets.EncoderModel(), ae_nets.DecoderModel(),
                                   train_dataset=data_util.vectors(80), val_dataset=data_util.vectors(40, seed=1),
                                   batch_size=20, num_epochs=8, learning_rate=1e-2, checkpoint_dir=str(tmpdir),
                                   num_workers=0, verbose=False)
    trainer.train()
    assert trainer.cur_epoch == 8 and trainer.loss_iter == 32 and trainer.val_loss_iter == 16
    losses = trainer.get_loss_history()
    assert losses[-4:].mean() < losses[:4].mean()
    assert len(math_util.running_mean(losses, 4)) == 29
    assert os.path.isfile(str(tmpdir.join('ck_history.pkl')))
    assert np.all(trainer.get_val_loss_history() > 0)
