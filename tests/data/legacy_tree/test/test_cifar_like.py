# A classifier trainer with its own kwargs, its own load_checkpoint, freezing and the LR finder.
import os
import sys

import pytest
import torch

sys.path.insert(0, os.path.dirname(__file__))
import data_util  # noqa: E402

from lernomatic.models import cifar_like  # noqa: E402
from lernomatic.param import lr_common  # noqa: E402
from lernomatic.train import cifar_like_trainer  # noqa: E402


def get_trainer(tmpdir, **kwargs):
    return cifar_like_trainer.CifarLikeTrainer(
        cifar_like.SmallConvNetModel(num_classes=4), train_dataset=data_util.images(160),
        val_dataset=data_util.images(64, seed=1), batch_size=16, num_epochs=2, learning_rate=3e-3,
        checkpoint_dir=str(tmpdir), num_workers=0, verbose=False, data_dir='/nonexistent', augment=True,
        test_batch_size=1, **kwargs)


def test_train_save_load(tmpdir):
    trainer = get_trainer(tmpdir, save_every=5)
    trainer.train()
    assert trainer.cur_epoch == 2 and trainer.acc_iter == 2
    trainer.save_checkpoint(str(tmpdir.join('final.pkl')))
    loaded = cifar_like_trainer.CifarLikeTrainer(None, checkpoint_dir=str(tmpdir), verbose=False)
    loaded.load_checkpoint(str(tmpdir.join('final.pkl')))
    assert loaded.loaded_from.endswith('final.pkl') and loaded.augment is True
    assert loaded.model.get_model_args() == {'num_classes': 4, 'channels': 8}
    x = torch.randn(3, 1, 8, 8)
    trainer.model.set_eval()
    loaded.model.set_eval()
    assert torch.equal(trainer.model.forward(x), loaded.model.forward(x))


def test_freeze(tmpdir):
    trainer = get_trainer(tmpdir)
    trainer.model.freeze_to(1)
    flags = [p.requires_grad for p in trainer.model.get_model_parameters()]
    assert flags == [False, False, True, True, True, True]
    trainer.model.freeze()
    assert not any(p.requires_grad for p in trainer.model.get_model_parameters())
    trainer.model.unfreeze()


@pytest.mark.parametrize('method', ['max_acc', 'min_loss', 'max_range', 'laplace', 'sobel'])
def test_lr_finder(tmpdir, method):
    trainer = get_trainer(tmpdir)
    before = {k: v.clone() for k, v in trainer.model.get_net_state_dict().items()}
    finder = lr_common.LogFinder(trainer, lr_min=1e-5, lr_max=1.0, num_epochs=1, max_batches=10, acc_test=True,
                                 lr_select_method=method, lr_trunc=2, explode_thresh=1e6, verbose=False)
    lr_lo, lr_hi = finder.find()
    assert 0 < lr_lo <= lr_hi
    for key, value in trainer.model.get_net_state_dict().items():
        assert torch.equal(value, before[key])
    finder.save(str(tmpdir.join('finder.pkl')))
    again = lr_common.lr_finder_auto_load(str(tmpdir.join('finder.pkl')))
    assert isinstance(again, lr_common.LogFinder)
    assert again.get_lr_range() == finder.get_lr_range()
