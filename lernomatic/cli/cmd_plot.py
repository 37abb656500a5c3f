"""`lernomatic plot HISTORY [-o OUT]`: loss, validation loss and accuracy of a history file as a PNG."""

from __future__ import annotations

import argparse

import numpy as np

from lernomatic.cli.history import read_curves
from lernomatic.cli.paths import CommandError, check_output

__all__ = ['run']

# One dotted line per epoch boundary helps up to here; beyond it they would grey out the plot.
MAX_EPOCH_LINES = 100


def run(args: argparse.Namespace) -> int:
    """Plot the checked curves; the x axis is in epochs."""
    output = check_output(args.output or args.history.with_suffix('.png'))
    if output.resolve() == args.history.resolve():
        raise CommandError(f'{output}: is the history file itself; name the PNG with -o')
    import matplotlib
    matplotlib.use('Agg')  # files only: no display needed, none opened
    import matplotlib.pyplot as plt

    curves = read_curves(args.history, trusted=args.trusted)
    loss, val_loss, acc = curves.loss, curves.val_loss, curves.acc
    epochs = max(curves.cur_epoch, len(acc), 1)
    per_epoch = len(loss) / epochs if len(loss) else 1
    val_per_epoch = len(val_loss) / max(len(acc), 1) if len(val_loss) else 1
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(11, 4))
    try:
        ax_loss.plot(np.arange(len(loss)) / per_epoch, loss, label='train loss')
        if len(val_loss):
            ax_loss.plot(1 + np.arange(len(val_loss)) / val_per_epoch, val_loss, label='val loss')
        if len(acc):
            ax_acc.plot(np.arange(1, len(acc) + 1), acc, marker='o' if len(acc) <= MAX_EPOCH_LINES else None,
                        label='val accuracy')
        for axis in (ax_loss, ax_acc):
            if epochs <= MAX_EPOCH_LINES:
                for epoch in range(1, epochs + 1):
                    axis.axvline(epoch, color='grey', lw=0.5, ls=':')
            axis.set_xlabel('epoch')
            if axis.lines:
                axis.legend()
        ax_loss.set_ylabel('loss')
        ax_acc.set_ylabel('accuracy')
        fig.suptitle(args.history.name)
        fig.tight_layout()
        fig.savefig(output, dpi=100)
    finally:
        plt.close(fig)
    print(f'wrote {output}')
    return 0
