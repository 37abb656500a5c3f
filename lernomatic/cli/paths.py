"""Checks on the files a command reads and writes, made before anything is loaded or written.

They run before the command's heavy imports, so a mistyped path fails in a fraction of a second,
and they never create a directory the user did not name.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

__all__ = ['CommandError', 'check_input', 'check_output', 'make_logdir']


class CommandError(Exception):
    """A user error on the command line: the message names the path and the problem, in one line."""


# torch.save writes a zip archive (torch >= 1.6) or, in the legacy format of the original's days,
# a pickle stream: its first byte is the PROTO opcode.
_TORCH_MAGIC = (b'PK\x03\x04', b'\x80')


def check_input(path: Path) -> Path:
    """Fail unless `path` is a regular, readable file that starts like a `torch.save` file.

    A FIFO or device is refused before it is opened (opening a FIFO waits for a writer). Opening the
    file (rather than asking `os.access`) gives the answer the later read will get, for root too.
    """
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise CommandError(f'{path}: no such file') from None
    except OSError as error:
        raise CommandError(f'{path}: cannot be read: {_reason(error)}') from None
    if stat.S_ISDIR(mode):
        raise CommandError(f'{path}: is a directory, not a file')
    if not stat.S_ISREG(mode):
        raise CommandError(f'{path}: is not a regular file')
    try:
        with open(path, 'rb') as handle:
            head = handle.read(4)
    except OSError as error:
        raise CommandError(f'{path}: cannot be read: {_reason(error)}') from None
    if not head:
        raise CommandError(f'{path}: is empty')
    if not head.startswith(_TORCH_MAGIC):
        raise CommandError(f'{path}: is not a Lernomatic file (not written by torch.save)')
    return path


def _reason(error: OSError) -> str:
    return 'permission denied' if isinstance(error, PermissionError) else (error.strerror or str(error))


def _check_directory(path: Path, directory: Path) -> None:
    """Fail unless `directory` exists, is a directory and lets this process create `path` in it."""
    if not directory.exists():
        raise CommandError(f'{path}: cannot write: directory {directory} does not exist (it is not created for you)')
    if not directory.is_dir():
        raise CommandError(f'{path}: cannot write: {directory} is not a directory')
    if not os.access(directory, os.W_OK | os.X_OK):
        raise CommandError(f'{path}: cannot write in {directory}: permission denied')


def check_output(path: Path) -> Path:
    """Fail unless `path` can be written as a file: its directory exists and `path` is not a directory."""
    if path.is_dir():
        raise CommandError(f'{path}: is a directory; give the file to write')
    _check_directory(path, path.parent)
    return path


def make_logdir(path: Path) -> Path:
    """Create `path` (not its parents) unless it is already a directory: the user named it, not its parents."""
    if path.is_dir():
        return path
    _check_directory(path, path.parent)
    try:
        path.mkdir()
    except FileExistsError:
        raise CommandError(f'{path}: exists and is not a directory') from None
    except OSError as error:
        raise CommandError(f'{path}: cannot be created: {_reason(error)}') from None
    return path
