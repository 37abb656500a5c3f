"""Crash-safe writing of `torch.save` files, as a file system user expects.

A file is written to a temporary sibling, fsynced and renamed over the target, so a crash leaves
the old file or the new one, never a torn one.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import logging
import os
import re
import socket
import stat
import tempfile
from pathlib import Path
from typing import Any

import torch

from compat.errors import CheckpointError

__all__ = ['atomic_save']

log = logging.getLogger(__name__)


def atomic_save(obj: Any, fname: str | os.PathLike, make_parents: bool = True) -> None:
    """`torch.save` into a temporary sibling file, fsync it, then rename it over `fname`.

    As a file system user expects: the file gets the mode an ordinary write would give it (an
    existing file's mode, else 0666 less the umask); a symlink is followed and the file it points to
    replaced; temporary files left by a killed save into the same folder are removed; a full disk is
    a `CheckpointError` that says so, and the previous file is left as it was.

    Args:
        obj: what to save.
        fname: the file to write.
        make_parents: create missing folders (else a missing folder is a CheckpointError).
    """
    target = Path(os.path.realpath(fname)) if os.path.islink(fname) else Path(fname)
    if target.is_dir():
        raise CheckpointError(f'{fname}: is a folder: give a file name to write')
    folder = target.parent
    if make_parents:
        folder.mkdir(parents=True, exist_ok=True)
    elif not folder.is_dir():
        raise CheckpointError(f'{fname}: the folder {folder} does not exist')
    _remove_stale_temporaries(folder)
    mode = _mode_for(target)
    handle, tmp_name = tempfile.mkstemp(prefix=f'.{target.name}.{_WRITER_TAG}-{os.getpid()}-', suffix='.tmp',
                                        dir=folder)
    try:
        with os.fdopen(handle, 'wb') as tmp_file:
            torch.save(obj, tmp_file)
            tmp_file.flush()
            os.fsync(tmp_file.fileno())
        os.chmod(tmp_name, mode)
        os.replace(tmp_name, target)
    except BaseException as error:
        Path(tmp_name).unlink(missing_ok=True)
        full = _disk_full(error)
        if full is not None:
            raise CheckpointError(f'{fname}: {full}: nothing was written, the previous file (if any) is unchanged. '
                                  'Free some space or write elsewhere') from error
        raise
    _fsync_directory(folder)
    log.debug('wrote %s', target)


def _process_space() -> str:
    """Who can see this process's pid: the host, its boot, and its pid namespace (containers that share a
    hostname but not pids, on one checkpoint volume, must not take each other's live writers for dead)."""
    parts = [socket.gethostname()]
    for path in ('/proc/sys/kernel/random/boot_id', '/proc/self/ns/pid'):
        with contextlib.suppress(OSError):
            parts.append(Path(path).read_text().strip() if path.endswith('boot_id') else str(os.stat(path).st_ino))
    return hashlib.sha1('\0'.join(parts).encode()).hexdigest()[:8]


# Temporary files are named .<target>.<writer tag>-<pid>-<random>.tmp: a save removes those its own pid space's
# dead processes left (a SIGKILL mid-save), never a live writer's, nor another host's or container's.
_WRITER_TAG = _process_space()
_TEMPORARY = re.compile(r'\..+\.(?P<host>[0-9a-f]{8})-(?P<pid>\d+)-[^.]+\.tmp')
_PID_MAX = 2 ** 22  # Linux's PID_MAX_LIMIT: a larger "pid" is a name someone else chose, never one of ours


def _remove_stale_temporaries(folder: Path) -> None:
    try:
        names = os.listdir(folder)
    except OSError:
        return
    for name in names:
        match = _TEMPORARY.fullmatch(name)
        if match is None or match['host'] != _WRITER_TAG:
            continue
        pid = int(match['pid']) if len(match['pid']) <= 7 else _PID_MAX + 1  # no int() of a 10,000-digit name
        if not 0 < pid <= _PID_MAX:
            continue  # not a name a save wrote: left alone, and no reason to fail this save
        if pid != os.getpid() and not _alive(pid):
            with contextlib.suppress(OSError):
                (folder / name).unlink()
                log.debug('removed %s, left by a save that was killed', folder / name)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, OSError):
        return True  # someone else's live process, or no pid we can ask about: never removed
    return True


def _umask() -> int:
    try:
        for line in Path('/proc/self/status').read_text().splitlines():
            if line.startswith('Umask:'):
                return int(line.split()[1], 8)
    except OSError:
        pass
    current = os.umask(0)
    os.umask(current)
    return current


def _mode_for(target: Path) -> int:
    """The mode an ordinary `open(target, 'wb')` would leave: the existing file's, else 0666 less the umask."""
    try:
        return stat.S_IMODE(target.stat().st_mode)
    except OSError:
        return 0o666 & ~_umask()


def _disk_full(error: BaseException) -> str | None:
    """'the disk is full' (or the like) when `error` or what caused it is an out-of-space OSError."""
    seen = 0
    current: BaseException | None = error
    while current is not None and seen < 10:
        if isinstance(current, OSError) and current.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
            return {errno.ENOSPC: 'the disk is full', errno.EDQUOT: 'the disk quota is exceeded',
                    errno.EFBIG: 'the file is larger than this process may write'}[current.errno]
        current = current.__cause__ or current.__context__
        seen += 1
    return None

def _fsync_directory(directory: Path) -> None:
    """Make the rename itself durable; some filesystems cannot open a directory, which is fine."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
