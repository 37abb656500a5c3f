"""What `train()` checks before any batch: options whose trouble shows only when a run uses them.

The option table (`lernomatic.train.options`) checks each value at construction. Some values are
fine until a run writes a file or asks Lightning for a device: a `checkpoint_name=None` (the
original kept it, and failed at its first save), a `checkpoint_dir` that cannot be written (a
read-only mount, `/proc/x`), an `accelerator`, `devices` or `precision` that Lightning refuses on
this machine. These are found here, before the first-batch check and before any epoch.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Any

from compat.distributed import is_rank_zero
from compat.errors import ConfigError
from compat.loop.lightning_trainer import check_placement

__all__ = ['check_before_run', 'files_named_after_checkpoint_name']


def files_named_after_checkpoint_name(trainer: Any, hand_written: frozenset[str]) -> list[str]:
    """The files this run writes under `<checkpoint_name>`, each with the option that asks for it."""
    files = []
    if trainer.save_hist:
        files.append('save_hist=True: the history file each epoch')
    if trainer.save_every > 0 and 'train' not in hand_written:
        files.append(f'save_every={trainer.save_every}: a checkpoint every {trainer.save_every} iterations')
    if trainer.save_best and trainer.val_loader is not None and 'val' not in hand_written:
        files.append('save_best=True: the best checkpoint')
    return files


def _folder_write_problem(folder: str | os.PathLike[str]) -> str | None:
    """Why no file can be written into `folder`, None when one can: tried by writing one, leaving no trace.

    Folders made for the try are removed again: a run that then fails its first-batch check leaves
    nothing behind; the run makes them when it writes.
    """
    path = Path(os.path.abspath(folder))
    made = [p for p in (path, *path.parents) if not p.exists()]
    try:
        os.makedirs(path, exist_ok=True)
        handle, probe = tempfile.mkstemp(prefix='.lernomatic-write-check-', dir=path)
        os.close(handle)
        os.unlink(probe)
    except OSError as error:
        return error.strerror or str(error)
    finally:
        for created in made:  # deepest first
            with contextlib.suppress(OSError):
                created.rmdir()
    return None


def check_before_run(trainer: Any, hand_written: frozenset[str]) -> None:
    """Refuse, with a ConfigError naming the option, what would otherwise fail after work has started.

    Args:
        trainer: the Lernomatic trainer about to train.
        hand_written: the stages whose epoch method it overrides (their loops write their own files).
    """
    named = files_named_after_checkpoint_name(trainer, hand_written)
    if trainer.checkpoint_name is None and named:
        raise ConfigError('checkpoint_name=None, but this run writes files named after it (' + '; '.join(named)
                          + "): pass checkpoint_name='...' or turn those off (save_hist=False, save_every=0, "
                          'save_best=False)')
    if (named or trainer.logger is True) and is_rank_zero():
        problem = _folder_write_problem(trainer.checkpoint_dir)
        if problem is not None:
            writes = 'its files' if named else 'its TensorBoard logs (logger=True)'
            raise ConfigError(f'checkpoint_dir={os.fspath(trainer.checkpoint_dir)!r} cannot hold {writes}: {problem}. '
                              'Choose a folder you can write to')
    check_placement(trainer)
