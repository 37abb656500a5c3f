"""Main job: train a small CNN on scikit-learn's bundled 8x8 digits with a Lernomatic Trainer.

Runs on the GPU when there is one, else the CPU. Writes checkpoints, the history file, TensorBoard
logs and a PNG plot of the histories under --out; the last line printed is `val_acc=<float>`.
"""

import argparse
import os
import sys
from pathlib import Path

import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch.utils.data import TensorDataset

sys.path.insert(0, str(Path(__file__).resolve().parent))  # checkpoints name the module 'digits_cnn'
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a clone without installing

from lernomatic.train.trainer import Trainer  # noqa: E402

from digits_cnn import DigitsCNNModel  # noqa: E402


def digits_datasets(seed: int) -> tuple[TensorDataset, TensorDataset]:
    """The 1797 digit images as float tensors in [0, 1], split 80/20 with stratification."""
    digits = load_digits()
    images = torch.tensor(digits.images, dtype=torch.float32).unsqueeze(1) / 16.0
    labels = torch.tensor(digits.target, dtype=torch.long)
    train_idx, val_idx = train_test_split(range(len(labels)), test_size=0.2, random_state=seed,
                                          stratify=digits.target)
    return (TensorDataset(images[train_idx], labels[train_idx]),
            TensorDataset(images[val_idx], labels[val_idx]))


def plot_history(trainer: Trainer, fname: Path) -> None:
    """Training loss, validation loss and accuracy, with a line at each epoch boundary."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    loss, val_loss, acc = trainer.get_loss_history(), trainer.get_val_loss_history(), trainer.get_acc_history()
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(11, 4))
    epochs = len(acc)
    ax_loss.plot([i / len(trainer.train_loader) for i in range(len(loss))], loss, label='train loss')
    ax_loss.plot([1 + i / len(trainer.val_loader) for i in range(len(val_loss))], val_loss, label='val loss')
    ax_acc.plot(range(1, epochs + 1), acc, marker='o', label='val accuracy')
    for axis in (ax_loss, ax_acc):
        for epoch in range(1, epochs):
            axis.axvline(epoch, color='grey', lw=0.5, ls=':')
        axis.set_xlabel('epoch')
        axis.legend()
    ax_loss.set_ylabel('loss')
    ax_acc.set_ylabel('accuracy')
    fig.suptitle('DigitsCNN on sklearn digits')
    fig.tight_layout()
    fig.savefig(fname, dpi=100)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--epochs', type=int, default=12)
    parser.add_argument('--out', type=Path, default=Path(__file__).resolve().parent / 'output')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--verbose', type=int, choices=(0, 1, 2), default=1,
                        help="0: silent; 1: per-epoch messages and, on a terminal, a progress bar; "
                             "2: also Lightning's own start-up lines and model summary")
    parser.add_argument('--quiet', action='store_const', const=0, dest='verbose', help='the same as --verbose 0')
    args = parser.parse_args()

    if not torch.cuda.is_available():
        # A model this small gains next to nothing from more CPU threads, and where the cores are shared
        # the threads wait on each other: on 2 busy cores, 2 threads took the job from 20 s to 75 s.
        torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    train_set, val_set = digits_datasets(args.seed)
    trainer = Trainer(
        DigitsCNNModel(),
        train_dataset=train_set, val_dataset=val_set,
        num_epochs=args.epochs, batch_size=64, learning_rate=2e-3, num_workers=0,
        device_id=0 if torch.cuda.is_available() else -1,
        checkpoint_dir=str(args.out / 'checkpoint'), checkpoint_name='digits', save_best=True,
        print_every=10, verbose=args.verbose,
    )
    trainer.train()
    args.out.mkdir(parents=True, exist_ok=True)
    plot_history(trainer, args.out / 'history.png')
    print(f'wrote checkpoints, history, TensorBoard logs and history.png under {os.fspath(args.out)}')
    print(f'val_acc={trainer.get_cur_acc():.4f}')


if __name__ == '__main__':
    main()
