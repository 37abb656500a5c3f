# The autoencoder trainer runs its own train() loop.
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
import data_util  # noqa: E402

from lernomatic.models import ae_nets  # noqa: E402
from lernomatic.train.autoencoder import ae_trainer  # noqa: E402
from lernomatic.util import math_util  # noqa: E402


def test_ae_trainer_own_train_loop(tmpdir):
    trainer = ae_trainer.AETrainer(ae_nets.EncoderModel(), ae_nets.DecoderModel(),
                                   train_dataset=data_util.vectors(80), val_dataset=data_util.vectors(40, seed=1),
                                   batch_size=20, num_epochs=3, learning_rate=1e-2, checkpoint_dir=str(tmpdir),
                                   num_workers=0, verbose=False)
    trainer.train()
    assert trainer.cur_epoch == 3 and trainer.loss_iter == 12 and trainer.val_loss_iter == 6
    losses = trainer.get_loss_history()
    assert losses[-1] < losses[0]
    assert len(math_util.running_mean(losses, 4)) == 9
    assert os.path.isfile(str(tmpdir.join('ck_history.pkl')))
    assert np.all(trainer.get_val_loss_history() > 0)
