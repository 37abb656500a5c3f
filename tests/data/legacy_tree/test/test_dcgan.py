# Old-style tests of the DCGAN trainer and inferrer, as the original's test/ folder had them.
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(__file__))
import data_util  # noqa: E402

from lernomatic.infer import gan_inferrer  # noqa: E402
from lernomatic.models import gan_nets  # noqa: E402
from lernomatic.train.gan import dcgan_trainer  # noqa: E402


def get_trainer(tmpdir, num_epochs=2):
    return dcgan_trainer.DCGANTrainer(
        gan_nets.DiscriminatorModel(), gan_nets.GeneratorModel(),
        train_dataset=data_util.images(64), batch_size=16, num_epochs=num_epochs, learning_rate=2e-3,
        beta1=0.5, save_every=3, checkpoint_dir=str(tmpdir), checkpoint_name='dcgan', num_workers=0,
        verbose=False, device_id=-1)


class TestDCGANTrainer:
    def test_train(self, tmpdir):
        trainer = get_trainer(tmpdir)
        trainer.train()
        assert trainer.loss_iter == 8
        assert np.all(trainer.get_d_loss_history() > 0)
        assert np.all(trainer.get_g_loss_history() > 0)
        assert os.path.isfile(str(tmpdir.join('dcgan_iter_3.pkl')))
        assert os.path.isfile(str(tmpdir.join('dcgan_history.pkl')))

    def test_save_load_and_go_on(self, tmpdir):
        trainer = get_trainer(tmpdir)
        trainer.train()
        trainer.save_checkpoint(str(tmpdir.join('dcgan_final.pkl')))
        trainer.save_history(str(tmpdir.join('dcgan_history.pkl')))

        loaded = dcgan_trainer.DCGANTrainer(None, None, train_dataset=data_util.images(64), batch_size=16,
                                            checkpoint_dir=str(tmpdir), num_workers=0, verbose=False)
        loaded.load_checkpoint(str(tmpdir.join('dcgan_final.pkl')))
        loaded.load_history(str(tmpdir.join('dcgan_history.pkl')))
        assert loaded.beta1 == 0.5 and loaded.cur_epoch == 2 and loaded.loss_iter == 8
        for name in ('generator', 'discriminator'):
            ours, theirs = getattr(loaded, name).get_net_state_dict(), getattr(trainer, name).get_net_state_dict()
            for key in ours:
                assert torch.equal(ours[key], theirs[key])
        loaded.set_num_epochs(3)
        loaded.train()
        assert loaded.loss_iter == 12 and len(loaded.d_loss_history) == 12

    def test_inferrer(self, tmpdir):
        trainer = get_trainer(tmpdir)
        trainer.train()
        trainer.save_checkpoint(str(tmpdir.join('dcgan_final.pkl')))
        inferrer = gan_inferrer.DCGANInferrer(zvec_dim=8, device_id=-1, unused_option=3)
        inferrer.load_model(str(tmpdir.join('dcgan_final.pkl')))
        images = inferrer.forward(5)
        assert images.shape == (5, 1, 8, 8)
        assert inferrer.get_model().get_model_name() == 'GeneratorModel'
