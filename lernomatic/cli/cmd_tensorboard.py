"""`lernomatic tensorboard HISTORY... [--logdir DIR] [--port N] [--no-serve]`: history files in TensorBoard.

Each history file becomes one run (a folder named after the file) of TensorBoard events with the
tags the original Trainer wrote (`loss/train`, `loss/val`, `acc/val`); then a TensorBoard server
on localhost shows them until Ctrl-C or SIGTERM. Without `--logdir` the events go to a fresh
temporary directory, removed when the server stops. `--no-serve` only writes (for scripts).
"""

from __future__ import annotations

import argparse
import logging
import math
import shutil
import signal
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from lernomatic.cli.history import Curves, read_curves
from lernomatic.cli.paths import CommandError, make_logdir

__all__ = ['run', 'run_names']

log = logging.getLogger(__name__)

# TensorBoard keeps 1,000 points per scalar series for display; beyond this many, writing every
# point only costs time, so a longer curve is written at a regular stride.
MAX_EVENTS = 100_000
_EVENT_PREFIX = 'events.out.tfevents.'


def run_names(files: Sequence[Path]) -> list[str]:
    """One run name per file: its stem, with '-2', '-3', ... where two files share a stem."""
    names: list[str] = []
    for path in files:
        name, number = path.stem or 'history', 1
        while (name if number == 1 else f'{name}-{number}') in names:
            number += 1
        names.append(name if number == 1 else f'{name}-{number}')
    return names


def _old_events(run_dir: Path) -> list[Path]:
    """The event files of an earlier export into `run_dir`, replaced by this one; anything else stops us."""
    if not run_dir.exists():
        return []
    if not run_dir.is_dir():
        raise CommandError(f'{run_dir}: exists and is not a directory; choose another --logdir')
    entries = list(run_dir.iterdir())
    strangers = [entry for entry in entries if not (entry.is_file() and entry.name.startswith(_EVENT_PREFIX))]
    if strangers:
        raise CommandError(f'{run_dir}: holds {strangers[0].name}, which is not a TensorBoard event file; '
                           'choose another --logdir')
    return entries


def _write_series(writer, tag: str, values: np.ndarray) -> None:
    """Steps count from 1, as the original's iteration counters did after each write."""
    stride = max(1, math.ceil(len(values) / MAX_EVENTS))
    if stride > 1:
        log.warning('%s: %s has %d points: every %dth is written (TensorBoard shows 1,000 per curve)',
                    writer.log_dir, tag, len(values), stride)
    for index in range(0, len(values), stride):
        writer.add_scalar(tag, float(values[index]), index + 1)


def _write_run(run_dir: Path, curves: Curves) -> None:
    from torch.utils.tensorboard import SummaryWriter

    old = _old_events(run_dir)
    writer = SummaryWriter(str(run_dir))
    try:
        for tag, values in (('loss/train', curves.loss), ('loss/val', curves.val_loss), ('acc/val', curves.acc)):
            if len(values):
                _write_series(writer, tag, values)
    finally:
        writer.close()
    for path in old:  # only once the new events are complete
        path.unlink()


def _serve(logdir: Path, port: int | None) -> None:
    """Run TensorBoard on localhost over `logdir` until SIGINT or SIGTERM."""
    from tensorboard import program

    # Block the stop signals before TensorBoard starts its threads (they inherit the mask), then
    # wait for one here: the server stops at a known point, not wherever an exception lands.
    stop_signals = {signal.SIGINT, signal.SIGTERM}
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, stop_signals)
    try:
        server = program.TensorBoard()
        # load_fast='false': read events in this process, not in a helper process left behind on SIGKILL
        server.configure(argv=[''], logdir=str(logdir), host='localhost', port=port, load_fast='false')
        try:
            url = server.launch()
        except program.TensorBoardServerException as error:
            raise CommandError(f'--port {port}: {error.msg}' if port is not None else error.msg) from None
        print(f'TensorBoard at {url} showing {logdir} (Ctrl-C to stop)', flush=True)
        received = signal.sigwait(stop_signals)
        log.info('stopped by %s', signal.Signals(received).name)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def run(args: argparse.Namespace) -> int:
    """Check every file, write one run per file, then serve (unless --no-serve)."""
    curves = [read_curves(path, trusted=args.trusted) for path in args.histories]  # all checked before any write
    temporary = args.logdir is None
    logdir = Path(tempfile.mkdtemp(prefix='lernomatic-tb-')) if temporary else make_logdir(args.logdir)
    serve = not args.no_serve
    remove_after = temporary and serve  # without a server, the temporary directory is the only copy
    try:
        for name, path, curve in zip(run_names(args.histories), args.histories, curves, strict=True):
            _write_run(logdir / name, curve)
            print(f'{path} -> run {name}')
        print(f'wrote TensorBoard events under {logdir}' + (' (a temporary directory)' if temporary else ''),
              flush=True)
        if serve:
            _serve(logdir, args.port)
        elif not temporary:
            print(f'to see them: tensorboard --logdir {logdir}')
        return 0
    finally:
        if remove_after:
            shutil.rmtree(logdir, ignore_errors=True)
