"""Safe reading and crash-safe writing of `torch.save` files.

Reading is weights-only (no arbitrary unpickling) with numpy's array types allowed, since
Lernomatic history files are dicts of numpy arrays. Writing goes through a temporary file that is
fsynced and renamed over the target, so a crash leaves the old file or the new one, never a torn one.
"""

from __future__ import annotations

import logging
import os
import re
import tempfile
import warnings
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from compat.errors import CheckpointError

__all__ = ['register_numpy_safe_globals', 'safe_load', 'atomic_save', 'SAFE_LOADING_IS_SOUND']

log = logging.getLogger(__name__)

# weights_only=True had code-execution (CVE-2025-32434, < 2.6) and memory-corruption
# (CVE-2026-24747, < 2.10) holes: only from 2.10 on is it a real barrier against hostile files.
SAFE_LOADING_IS_SOUND = tuple(int(p) for p in torch.__version__.split('+')[0].split('.')[:2]) >= (2, 10)

# Dtypes whose arrays hold plain values; object arrays are left out on purpose.
_PLAIN_DTYPE_CLASSES = (
    'BoolDType', 'Int8DType', 'Int16DType', 'Int32DType', 'Int64DType', 'UInt8DType', 'UInt16DType',
    'UInt32DType', 'UInt64DType', 'Float16DType', 'Float32DType', 'Float64DType', 'LongDType',
    'ULongDType', 'LongLongDType', 'ULongLongDType', 'Complex64DType', 'Complex128DType',
    'StrDType', 'BytesDType', 'DateTime64DType', 'TimeDelta64DType',
)


def _numpy_globals() -> list[Any]:
    """numpy's pickling entry points, under both numpy 2 and numpy 1 module names.

    Files written with numpy 1.x name `numpy.core.multiarray`; numpy 2 names `numpy._core`.
    Old Lernomatic history files are of the first kind, so both spellings are allowed.
    """
    multiarray = np._core.multiarray  # noqa: SLF001 - the pickled names live here
    entries: list[Any] = [np.ndarray, np.dtype]
    for module in ('numpy._core.multiarray', 'numpy.core.multiarray'):
        entries.append((multiarray._reconstruct, f'{module}._reconstruct'))
        entries.append((multiarray.scalar, f'{module}.scalar'))
    entries += [getattr(np.dtypes, name) for name in _PLAIN_DTYPE_CLASSES if hasattr(np.dtypes, name)]
    return entries


def register_numpy_safe_globals() -> None:
    """Allow numpy arrays and scalars in every weights-only `torch.load`, bare calls included."""
    torch.serialization.add_safe_globals(_numpy_globals())


def _describe_load_failure(path: Path, error: Exception) -> str:
    """Turn torch's unpickling errors into one sentence about the file."""
    text = str(error)
    refused = re.search(r'GLOBAL ([\w.]+)', text)
    if refused:
        return (f'{path}: refused to unpickle {refused.group(1)}: it is not on the weights-only allow-list. '
                'Pass trusted=True only if you trust where the file came from.')
    if isinstance(error, (EOFError, zipfile.BadZipFile)) or 'zip archive' in text or 'file_read' in text:
        return f'{path}: the file is truncated or not a torch.save file ({type(error).__name__}: {text[:200]})'
    return f'{path}: cannot be read ({type(error).__name__}: {text[:300]})'


def safe_load(fname: str | os.PathLike, trusted: bool = False, map_location: Any = 'cpu') -> Any:
    """Load a `torch.save` file without running code from it.

    Args:
        fname: the file to read.
        trusted: unpickle anything (`weights_only=False`); only for files whose source you trust.
        map_location: where tensors land; the CPU by default so GPU-written files load anywhere.

    Returns:
        The unpickled object.

    Raises:
        CheckpointError: the file is missing, empty, truncated or holds a refused global.
    """
    path = Path(fname)
    if not path.is_file():
        raise CheckpointError(f'{path}: no such file')
    if path.stat().st_size == 0:
        raise CheckpointError(f'{path}: the file is empty')
    if not trusted and not SAFE_LOADING_IS_SOUND:
        warnings.warn(f'torch {torch.__version__} has known holes in weights-only loading '
                      '(CVE-2025-32434, CVE-2026-24747): load files from untrusted sources only '
                      'with torch >= 2.10', RuntimeWarning, stacklevel=2)
    try:
        if trusted:
            return torch.load(path, map_location=map_location, weights_only=False)
        # the explicit allow-list, whoever imported what; not torch's `safe_globals` context manager,
        # which on exit removes the entries even where they were registered before
        register_numpy_safe_globals()
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as error:  # damaged bytes surface as almost any error type (a LookupError for a bad encoding)
        raise CheckpointError(_describe_load_failure(path, error)) from error


def atomic_save(obj: Any, fname: str | os.PathLike) -> None:
    """`torch.save` into a temporary sibling file, fsync it, then rename it over `fname`."""
    path = Path(fname)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp_name = tempfile.mkstemp(prefix=f'.{path.name}.', suffix='.tmp', dir=path.parent)
    try:
        with os.fdopen(handle, 'wb') as tmp_file:
            torch.save(obj, tmp_file)
            tmp_file.flush()
            os.fsync(tmp_file.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    _fsync_directory(path.parent)
    log.debug('wrote %s', path)


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
