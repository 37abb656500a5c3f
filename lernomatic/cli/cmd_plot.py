"""`lernomatic plot HISTORY [-o OUT]`: loss, validation loss and accuracy of a history file as a PNG."""

from __future__ import annotations

import argparse

import numpy as np

from lernomatic.cli.history import Curves, read_curves
from lernomatic.cli.paths import CommandError, check_output

__all__ = ['run']

# One dotted line per epoch boundary helps up to here; beyond it they would grey out the plot.
MAX_EPOCH_LINES = 100
# A plot 1,100 pixels wide shows no more than this many points per curve; a longer curve is drawn
# as the minimum and maximum of each of this many buckets, which keeps every spike visible.
MAX_DRAWN = 4000


def _envelope(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(x, y) with at most 2 * MAX_DRAWN points: per bucket its minimum and its maximum (NaN-aware)."""
    if len(y) <= 2 * MAX_DRAWN:
        return x, y
    width = -(-len(y) // MAX_DRAWN)
    count = len(y) // width  # whole buckets; the few points after them are kept as they are
    buckets = y[:count * width].reshape(count, width)
    low, high = np.fmin.reduce(buckets, axis=1), np.fmax.reduce(buckets, axis=1)
    xs = x[:count * width:width]
    return (np.concatenate([np.repeat(xs, 2), x[count * width:]]),
            np.concatenate([np.column_stack([low, high]).ravel(), y[count * width:]]))


def _draw(ax_loss, ax_acc, curves: Curves) -> None:
    """Losses against epochs on the left, accuracy per epoch on the right, a dotted line per epoch."""
    loss, val_loss, acc = curves.loss, curves.val_loss, curves.acc
    epochs = max(curves.cur_epoch, len(acc), 1)
    per_epoch = len(loss) / epochs if len(loss) else 1
    val_per_epoch = len(val_loss) / max(len(acc), 1) if len(val_loss) else 1
    ax_loss.plot(*_envelope(np.arange(len(loss)) / per_epoch, loss), label='train loss')
    if len(val_loss):
        ax_loss.plot(*_envelope(1 + np.arange(len(val_loss)) / val_per_epoch, val_loss), label='val loss')
    if len(acc):
        ax_acc.plot(*_envelope(np.arange(1, len(acc) + 1), acc), label='val accuracy',
                    marker='o' if len(acc) <= MAX_EPOCH_LINES else None)
    for axis in (ax_loss, ax_acc):
        if epochs <= MAX_EPOCH_LINES:
            for epoch in range(1, epochs + 1):
                axis.axvline(epoch, color='grey', lw=0.5, ls=':')
        axis.set_xlabel('epoch')
        if axis.get_legend_handles_labels()[0]:  # a curve was drawn, not only epoch lines
            axis.legend()
    ax_loss.set_ylabel('loss')
    ax_acc.set_ylabel('accuracy')


def run(args: argparse.Namespace) -> int:
    """Check the output path and the curves, then draw them into a PNG."""
    output = check_output(args.output or args.history.with_suffix('.png'))
    if args.output is None and output.is_symlink():  # a downloaded run folder must not choose what gets overwritten
        raise CommandError(f'{output}: is a symbolic link beside the history file, not written through; '
                           'name the PNG with -o')
    if output.resolve() == args.history.resolve():
        raise CommandError(f'{output}: is the history file itself; name the PNG with -o')
    curves = read_curves(args.history, trusted=args.trusted)
    import matplotlib
    matplotlib.use('Agg')  # files only: no display needed, none opened
    import matplotlib.pyplot as plt

    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(11, 4))
    try:
        # values near the float range overflow inside matplotlib's transforms: a warning about its internals
        with np.errstate(all='ignore'):
            _draw(ax_loss, ax_acc, curves)
            fig.suptitle(args.history.name)
            fig.tight_layout()
            fig.savefig(output, dpi=100)
    finally:
        plt.close(fig)
    print(f'wrote {output}')
    return 0
