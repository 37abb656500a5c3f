"""`lernomatic tensorboard HISTORY... [--logdir DIR] [--port N] [--no-serve]`: history files in TensorBoard.

Each history file becomes one run (a folder named after the file) of TensorBoard events with the
tags the original Trainer wrote (`loss/train`, `loss/val`, `acc/val`); then a TensorBoard server
on localhost shows them until Ctrl-C or SIGTERM. A checkpoint directory given instead of a file
gives its history files and, copied as they are, the event files the Trainer's own logger wrote
under it (`run_folder`). Without `--logdir` the events go to a fresh temporary directory, removed
when the server stops. `--no-serve` only writes (for scripts).

The run folders are written only where this command made them or wrote them before: a symbolic
link or a foreign file in their place is refused, never written through or deleted.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import shutil
import signal
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from lernomatic.cli.history import Curves, read_curves
from lernomatic.cli.paths import CommandError, check_input, make_logdir
from lernomatic.cli.run_folder import list_run_folder

__all__ = ['run', 'unique_names']

log = logging.getLogger(__name__)

# TensorBoard keeps 1,000 points per scalar series for display; beyond this many, writing every
# point only costs time, so a longer curve is written at a regular stride.
MAX_EVENTS = 100_000
_EVENT_PREFIX = 'events.out.tfevents.'


def unique_names(stems: Sequence[str]) -> list[str]:
    """One run folder name per stem, with '-2', '-3', ... where two share one ('.' and '..' are no names)."""
    names: list[str] = []
    for stem in stems:
        name, number = (stem if stem not in ('', '.', '..') else 'history'), 1
        while (name if number == 1 else f'{name}-{number}') in names:
            number += 1
        names.append(name if number == 1 else f'{name}-{number}')
    return names


def _run_dir(logdir: Path, name: str) -> tuple[Path, list[Path]]:
    """`logdir/name` made ready for a run, and the event files of an earlier export into it, replaced by this one.

    A symbolic link there (planted in a downloaded folder) is refused, not followed: writing through it
    would put files, and delete event files, wherever it points. So is anything but our own event files.
    """
    run_dir = logdir / name
    if run_dir.is_symlink():
        raise CommandError(f'{run_dir}: is a symbolic link, not written through; remove it or choose another --logdir')
    if not run_dir.exists():
        run_dir.mkdir()
        return run_dir, []
    if not run_dir.is_dir():
        raise CommandError(f'{run_dir}: exists and is not a directory; choose another --logdir')
    entries = sorted(run_dir.iterdir())
    strangers = [entry for entry in entries
                 if entry.is_symlink() or not (entry.is_file() and entry.name.startswith(_EVENT_PREFIX))]
    if strangers:
        raise CommandError(f'{run_dir}: holds {strangers[0].name}, which is not a TensorBoard event file this '
                           'command wrote; choose another --logdir')
    return run_dir, entries


def _write_series(writer, tag: str, values: np.ndarray) -> None:
    """Steps count from 1, as the original's iteration counters did after each write."""
    stride = max(1, math.ceil(len(values) / MAX_EVENTS))
    if stride > 1:
        log.warning('%s: %s has %d points: every %dth is written (TensorBoard shows 1,000 per curve)',
                    writer.log_dir, tag, len(values), stride)
    for index in range(0, len(values), stride):
        writer.add_scalar(tag, float(values[index]), index + 1)


def _write_run(logdir: Path, name: str, curves: Curves) -> None:
    from torch.utils.tensorboard import SummaryWriter

    run_dir, old = _run_dir(logdir, name)
    writer = SummaryWriter(str(run_dir))
    try:
        for tag, values in (('loss/train', curves.loss), ('loss/val', curves.val_loss), ('acc/val', curves.acc)):
            if len(values):
                _write_series(writer, tag, values)
    finally:
        writer.close()
    for path in old:  # only once the new events are complete
        path.unlink()


def _copy_run(logdir: Path, name: str, event_files: Sequence[Path]) -> None:
    """The Trainer's own event files, copied as they are (each complete before it takes its name)."""
    run_dir, old = _run_dir(logdir, name)
    for source in event_files:
        target = run_dir / source.name
        partial = run_dir / f'{source.name}.partial'  # an event file's name: a copy cut short goes at the next export
        shutil.copyfile(source, partial)
        os.replace(partial, target)
    kept = {source.name for source in event_files}
    for path in old:
        if path.name not in kept:
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


def _inputs(paths: Sequence[Path]) -> tuple[list[Path], list[tuple[str, Path, list[Path]]]]:
    """The history files named or found in the directories named; and per event folder found, its run stem
    (its path below the directory named, '/' as '_': digits/version_0 gives digits_version_0), itself, its files."""
    histories: list[Path] = []
    events: list[tuple[str, Path, list[Path]]] = []
    for path in paths:
        if not path.is_dir():
            histories.append(path)
            continue
        found = list_run_folder(path)
        histories += [check_input(history) for history in found.histories]
        for folder, files in found.events.items():
            parts = folder.relative_to(path).parts
            events.append(('_'.join(parts) if parts else path.resolve().name, folder, files))
    return histories, events


def _refuse_logdir_inside(logdir: Path, paths: Sequence[Path]) -> None:
    for path in paths:
        if path.is_dir() and logdir.resolve().is_relative_to(path.resolve()):
            raise CommandError(f'--logdir {logdir}: lies inside {path}, which is read: its runs would be read back '
                               'as runs; choose a --logdir outside it')


def run(args: argparse.Namespace) -> int:
    """Check every file, write one run per history file and per event folder, then serve (unless --no-serve)."""
    histories, events = _inputs(args.histories)
    if args.logdir is not None:
        _refuse_logdir_inside(args.logdir, args.histories)
    curves = [read_curves(path, trusted=args.trusted) for path in histories]  # all checked before any write
    names = unique_names([path.stem for path in histories] + [stem for stem, _, _ in events])
    temporary = args.logdir is None
    logdir = Path(tempfile.mkdtemp(prefix='lernomatic-tb-')) if temporary else make_logdir(args.logdir)
    serve = not args.no_serve
    remove_after = temporary and serve  # without a server, the temporary directory is the only copy
    try:
        for name, path, curve in zip(names[:len(histories)], histories, curves, strict=True):
            _write_run(logdir, name, curve)
            print(f'{path} -> run {name}')
        for name, (_, folder, files) in zip(names[len(histories):], events, strict=True):
            _copy_run(logdir, name, files)
            print(f'{folder} (TensorBoard events) -> run {name}')
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
