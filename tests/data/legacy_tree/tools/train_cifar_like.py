# Train the small classifier and write its checkpoint, as the original's example scripts did.
import argparse
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..', 'test'))
import data_util  # noqa: E402

from lernomatic.models import cifar_like  # noqa: E402
from lernomatic.train import cifar_like_trainer  # noqa: E402

if __name__ == '__main__':
    parser = argparse.ArgumentParser()
    parser.add_argument('--checkpoint-dir', type=str, default='checkpoint')
    parser.add_argument('--num-epochs', type=int, default=2)
    args = parser.parse_args()
    trainer = cifar_like_trainer.CifarLikeTrainer(
        cifar_like.SmallConvNetModel(num_classes=4, channels=6), train_dataset=data_util.images(160),
        val_dataset=data_util.images(64, seed=1), batch_size=16, num_epochs=args.num_epochs,
        checkpoint_dir=args.checkpoint_dir, checkpoint_name='cifar_like', save_best=True, num_workers=0,
        verbose=False)
    trainer.train()
    print('best accuracy', trainer.best_acc)
