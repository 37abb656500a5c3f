"""The `lernomatic` command: look inside, convert, plot and export Lernomatic files.

Only `convert` to a `.ckpt` imports Lightning (to write its loop state); the other commands start
fast. Every file is read with weights-only loading unless `--trusted` is given.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from compat.checkpoint import HISTORY_KEYS, read_checkpoint, read_history
from compat.errors import CheckpointError
from compat.serialization import atomic_save, safe_load

__all__ = ['main']


# ---- inspect
def _describe(value: Any, show_data: bool) -> str:
    if isinstance(value, torch.Tensor):
        text = f'Tensor {str(value.dtype).replace("torch.", "")} {tuple(value.shape)} on {value.device}'
        return text + (f' = {value.flatten()[:6].tolist()}' if show_data else '')
    if isinstance(value, np.ndarray):
        return f'ndarray {value.dtype} {value.shape}' + (f' = {value.flatten()[:6].tolist()}' if show_data else '')
    if isinstance(value, (str, int, float, bool)) or value is None:
        return f'{type(value).__name__} = {value!r}'
    return type(value).__name__


def tree_lines(obj: Any, max_level: int, show_data: bool, level: int = 0, name: str = '') -> list[str]:
    """One line per key: indentation by depth, then the key, its type, shape and (optionally) the first values."""
    indent = '    ' * level
    label = f'{indent}{name}: ' if name else indent
    if isinstance(obj, Mapping):
        lines = [f'{label}{type(obj).__name__} ({len(obj)} keys)']
        if level < max_level:
            for key, value in obj.items():
                lines += tree_lines(value, max_level, show_data, level + 1, repr(key))
        return lines
    if isinstance(obj, (list, tuple)):
        lines = [f'{label}{type(obj).__name__} ({len(obj)} items)']
        if level < max_level and not all(isinstance(v, (int, float, str)) for v in obj):
            for index, value in enumerate(obj):
                lines += tree_lines(value, max_level, show_data, level + 1, f'[{index}]')
        elif show_data:
            lines[-1] += f' = {list(obj)[:8]}'
        return lines
    return [f'{label}{_describe(obj, show_data)}']


def cmd_inspect(args: argparse.Namespace) -> int:
    data = safe_load(args.file, trusted=args.trusted)
    print('\n'.join(tree_lines(data, args.max_level, args.show_data, name=str(args.file))))
    return 0


# ---- convert
def cmd_convert(args: argparse.Namespace) -> int:
    from compat.lightning_ckpt import is_lightning_checkpoint, lernomatic_from_lightning, lightning_from_lernomatic
    from lernomatic.train.options import TRAINER_OPTIONS, TRAINER_PARAM_KEYS

    data = safe_load(args.input, trusted=args.trusted)
    if is_lightning_checkpoint(data):
        # the trainer_params a run started in plain Lightning did not record: the documented defaults
        defaults = {key: TRAINER_OPTIONS[key].default if key in TRAINER_OPTIONS else 0 for key in TRAINER_PARAM_KEYS}
        defaults['val_batch_size'] = defaults['batch_size']
        converted = lernomatic_from_lightning(data, defaults, args.input)
        kind = 'Lernomatic checkpoint'
    else:
        converted = lightning_from_lernomatic(read_checkpoint(args.input, trusted=args.trusted), args.input)
        kind = 'Lightning checkpoint'
    atomic_save(converted, args.output)
    print(f'wrote {kind} {args.output}')
    return 0


# ---- plot
def _history(fname: Path, trusted: bool) -> dict[str, Any]:
    data = read_history(fname, trusted=trusted)
    return {key: data[key] for key in HISTORY_KEYS}


def cmd_plot(args: argparse.Namespace) -> int:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    history = _history(args.history, args.trusted)
    loss = history['loss_history'][:history['loss_iter']]
    val_loss = history['val_loss_history'][:history['val_loss_iter']] if history['val_loss_history'] is not None else []
    acc = history['acc_history'][:history['acc_iter']] if history['acc_history'] is not None else []
    epochs = max(history['cur_epoch'], len(acc), 1)
    per_epoch = len(loss) / epochs if len(loss) else 1
    val_per_epoch = len(val_loss) / max(len(acc), 1) if len(val_loss) else 1
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(11, 4))
    ax_loss.plot(np.arange(len(loss)) / per_epoch, loss, label='train loss')
    if len(val_loss):
        ax_loss.plot(1 + np.arange(len(val_loss)) / val_per_epoch, val_loss, label='val loss')
    if len(acc):
        ax_acc.plot(np.arange(1, len(acc) + 1), acc, marker='o', label='val accuracy')
    for axis in (ax_loss, ax_acc):
        for epoch in range(1, epochs + 1):
            axis.axvline(epoch, color='grey', lw=0.5, ls=':')
        axis.set_xlabel('epoch')
        if axis.lines:
            axis.legend()
    ax_loss.set_ylabel('loss')
    ax_acc.set_ylabel('accuracy')
    fig.suptitle(args.history.name)
    fig.tight_layout()
    output = args.output or args.history.with_suffix('.png')
    fig.savefig(output, dpi=100)
    plt.close(fig)
    print(f'wrote {output}')
    return 0


# ---- tensorboard
def cmd_tensorboard(args: argparse.Namespace) -> int:
    from torch.utils.tensorboard import SummaryWriter

    history = _history(args.history, args.trusted)
    writer = SummaryWriter(str(args.logdir))
    try:
        for step, value in enumerate(history['loss_history'][:history['loss_iter']], start=1):
            writer.add_scalar('loss/train', float(value), step)
        if history['val_loss_history'] is not None:
            for step, value in enumerate(history['val_loss_history'][:history['val_loss_iter']], start=1):
                writer.add_scalar('loss/val', float(value), step)
        if history['acc_history'] is not None:
            for step, value in enumerate(history['acc_history'][:history['acc_iter']], start=1):
                writer.add_scalar('acc/val', float(value), step)
    finally:
        writer.close()
    print(f'wrote TensorBoard events under {args.logdir}')
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog='lernomatic', description='Look inside, convert, plot and export '
                                     'Lernomatic checkpoint and history files.')
    commands = parser.add_subparsers(dest='command', required=True, metavar='COMMAND')

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text)
        sub.add_argument('--trusted', action='store_true',
                         help='unpickle arbitrary objects (only for files whose source you trust)')
        return sub

    inspect = command('inspect', 'print the tree of keys and types of a checkpoint or history file')
    inspect.add_argument('file', type=Path)
    inspect.add_argument('--max-level', type=int, default=3, help='how deep to descend (default 3)')
    inspect.add_argument('--show-data', action='store_true', help='print the first values of tensors and arrays')
    inspect.set_defaults(run=cmd_inspect)

    convert = command('convert', 'Lernomatic .pkl checkpoint to a Lightning .ckpt of the adapter, or back')
    convert.add_argument('input', type=Path)
    convert.add_argument('output', type=Path)
    convert.set_defaults(run=cmd_convert)

    plot = command('plot', 'plot loss, validation loss and accuracy of a history file as a PNG')
    plot.add_argument('history', type=Path)
    plot.add_argument('-o', '--output', type=Path, help='the PNG to write (default: beside the history file)')
    plot.set_defaults(run=cmd_plot)

    board = command('tensorboard', 'write a history file as TensorBoard events')
    board.add_argument('history', type=Path)
    board.add_argument('--logdir', type=Path, required=True)
    board.set_defaults(run=cmd_tensorboard)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except CheckpointError as error:
        print(f'lernomatic {args.command}: {error}', file=sys.stderr)
        return 2


if __name__ == '__main__':
    sys.exit(main())
