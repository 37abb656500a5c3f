"""The runs a checkpoint directory holds: its history files, and the TensorBoard event folders under it.

`lernomatic tensorboard DIR` shows a Trainer's checkpoint directory as it is: each `*_history.pkl`
file in it becomes a run, and so does each folder under it that holds TensorBoard event files (the
Trainer's own logger writes `DIR/<checkpoint_name>/version_N/events.out.tfevents.*`). The walk is
iterative, follows no symbolic link (a link in a downloaded folder must not choose what is read) and
stops after `MAX_ENTRIES` entries. Standard library only: it runs before the heavy imports.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

from lernomatic.cli.paths import CommandError

__all__ = ['HISTORY_SUFFIX', 'EVENT_MARK', 'MAX_ENTRIES', 'RunFolder', 'list_run_folder']

HISTORY_SUFFIX = '_history.pkl'  # what Trainer.save_history names its file: <checkpoint_name>_history.pkl
EVENT_MARK = 'tfevents'  # TensorBoard reads every file whose name holds it as an event file
# A checkpoint directory holds tens of files; this many is a home directory named by mistake.
MAX_ENTRIES = 100_000


@dataclass
class RunFolder:
    """What a directory holds for TensorBoard: history files, and event files grouped by folder."""

    histories: list[Path] = field(default_factory=list)
    events: dict[Path, list[Path]] = field(default_factory=dict)


def _entries(folder: Path) -> list[os.DirEntry]:
    try:
        with os.scandir(folder) as listing:
            return sorted(listing, key=lambda entry: entry.name)
    except OSError as error:
        raise CommandError(f'{folder}: cannot be listed: {error.strerror or error}') from None


def list_run_folder(directory: Path) -> RunFolder:
    """The history files directly in `directory` and the event files anywhere under it (regular files only)."""
    found = RunFolder()
    pending, seen = [directory], 0
    while pending:
        folder = pending.pop()
        for entry in _entries(folder):
            seen += 1
            if seen > MAX_ENTRIES:
                raise CommandError(f'{directory}: more than {MAX_ENTRIES} entries: not a checkpoint directory; '
                                   'name the history files instead')
            mode = entry.stat(follow_symlinks=False).st_mode
            path = Path(entry.path)
            if stat.S_ISDIR(mode):
                pending.append(path)
            elif not stat.S_ISREG(mode):
                continue  # a link, FIFO or device: not read
            elif EVENT_MARK in entry.name:
                found.events.setdefault(Path(folder), []).append(path)
            elif folder == directory and entry.name.endswith(HISTORY_SUFFIX):
                found.histories.append(path)
    if not found.histories and not found.events:
        raise CommandError(f'{directory}: holds no *{HISTORY_SUFFIX} file and no TensorBoard event file')
    found.events = dict(sorted(found.events.items()))
    return found
