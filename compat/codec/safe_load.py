"""Safe reading of `torch.save` files: weights-only, numpy allowed, refusals that keep torch's reason.

Reading is weights-only (no arbitrary unpickling) with numpy's array types allowed, since
Lernomatic history files are dicts of numpy arrays.
"""

from __future__ import annotations

import logging
import os
import pickletools
import re
import warnings
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from compat.codec.advice import current_advice
from compat.codec.prescan import PrescanError, prescan
from compat.errors import CheckpointError

__all__ = ['register_numpy_safe_globals', 'safe_load', 'SAFE_LOADING_IS_SOUND']

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
    import numpy._core.multiarray as multiarray  # the pickled names live here (numpy's stubs leave np._core out)
    entries: list[Any] = [np.ndarray, np.dtype]
    for module in ('numpy._core.multiarray', 'numpy.core.multiarray'):
        entries.append((multiarray._reconstruct, f'{module}._reconstruct'))
        entries.append((multiarray.scalar, f'{module}.scalar'))
    entries += [getattr(np.dtypes, name) for name in _PLAIN_DTYPE_CLASSES if hasattr(np.dtypes, name)]
    return entries


def register_numpy_safe_globals() -> None:
    """Allow numpy arrays and scalars in every weights-only `torch.load`, bare calls included."""
    torch.serialization.add_safe_globals(_numpy_globals())


def _torch_reason(text: str) -> str:
    """The part of torch's load error that names the problem, without its paragraphs of advice."""
    unpickler = re.search(r'WeightsUnpickler error:\s*(.+?)\s*(?:\n\s*\n|Check the documentation|$)', text, re.S)
    if unpickler and unpickler.group(1).strip():
        reason = ' '.join(unpickler.group(1).split())[:300]
        opcode = re.fullmatch(r'Unsupported operand (\d+)', reason)
        if opcode and int(opcode.group(1)) < 256:  # name it: LONG4 (an integer over 255 bytes) says more than 139
            code = chr(int(opcode.group(1)))
            # pickletools.code2op, looked up by hand: typeshed declares `opcodes` but not that dict
            op = next((info for info in pickletools.opcodes if info.code == code), None)
            reason += f' (pickle opcode {op.name})' if op else ''
        return reason
    reader = re.search(r'(failed reading zip archive: [^.]+|file_read[^.]*|unexpected pos [^.]*)', text)
    if reader:
        return reader.group(1)[:300]
    first = text.strip().split('. ')[0]
    return ' '.join(first.split())[:300]


def _describe_load_failure(path: Path, error: Exception) -> str:
    """Turn torch's unpickling errors into one sentence about the file, keeping the reason."""
    text = str(error)
    refused = re.search(r'GLOBAL ([\w.]+)', text)
    if refused:
        return (f'{path}: refused to unpickle {refused.group(1)}: it is not on the weights-only allow-list. '
                f'{current_advice().trust_file}')
    reason = _torch_reason(text) or type(error).__name__
    if isinstance(error, (EOFError, zipfile.BadZipFile)) or 'zip archive' in text or 'file_read' in text:
        return f'{path}: the file is truncated or not a torch.save file ({reason})'
    if 'Weights only load failed' in text:
        return (f'{path}: weights-only loading refused it: {reason}; it is not a torch.save file of tensors and '
                f'plain values. {current_advice().trust_file}')
    return f'{path}: cannot be read as a torch.save file ({type(error).__name__}: {reason})'


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
    if path.is_dir():
        raise CheckpointError(f'{path}: is a folder, not a checkpoint or history file')
    if not path.is_file():
        raise CheckpointError(f'{path}: no such file' if not path.exists() else f'{path}: not a regular file')
    if not os.access(path, os.R_OK):
        raise CheckpointError(f'{path}: not readable (permission denied)')
    if path.stat().st_size == 0:
        raise CheckpointError(f'{path}: the file is empty')
    if not trusted and not SAFE_LOADING_IS_SOUND:
        warnings.warn(f'torch {torch.__version__} has known holes in weights-only loading '
                      '(CVE-2025-32434, CVE-2026-24747): load files from untrusted sources only '
                      'with torch >= 2.10', RuntimeWarning, stacklevel=2)
    if not trusted:
        try:
            prescan(path)
        except PrescanError as error:
            raise CheckpointError(f'{path}: {error}') from None
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings('ignore', message='.*Detected pickle protocol.*')  # a plain pickle: refused below
            if trusted:
                return torch.load(path, map_location=map_location, weights_only=False)
            # the explicit allow-list, whoever imported what; not torch's `safe_globals` context manager,
            # which on exit removes the entries even where they were registered before
            register_numpy_safe_globals()
            return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as error:  # damaged bytes surface as almost any error type (a LookupError for a bad encoding)
        raise CheckpointError(_describe_load_failure(path, error)) from error
