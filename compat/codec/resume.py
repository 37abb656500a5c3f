"""Where in a run a checkpoint was written, so that loading it continues from exactly there.

The loop keeps a `RunPosition` up to date: which epoch, how many of its training batches are
done, whether its validation has run, and the random generators' state when the epoch began. A
checkpoint written during a run stores it (key 'resume', beside 'rng_state'); loading it gives a
`ResumePoint`. Resuming then replays the epoch's start (same generator state, so the same shuffled
order and worker seeds), fetches the batches already trained without training on them, puts the
generators back as they were when the checkpoint was written, and goes on: the rest of the run is
the uninterrupted run's, bit for bit (for a given machine and build). The stored form is plain
ints, floats, strings and tensors, so the original Lernomatic's readers, which ignore the key,
still load the file.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from compat.codec.rng import RngStateError, check_rng_state
from compat.errors import CheckpointError
from compat.logs import get_logger
from compat.state.histories import declared_histories
from compat.state.run_state import PHASES, ResumePoint
from compat.text import short_repr

if TYPE_CHECKING:
    from compat.state.run_state import RunPosition

__all__ = ['PHASES', 'ResumePoint', 'resume_record', 'read_resume_point', 'resume_point_misfit',
           'check_resume_point_fits', 'align_with_resume_point']

log = get_logger('resume')


def resume_record(position: RunPosition, epoch: int, counters: Mapping[str, int], best_acc: float) -> dict[str, Any]:
    """The stored form of a run position (at the trainer's `cur_epoch`), with the history counters and best accuracy."""
    return {'phase': position.phase, 'epoch': int(epoch), 'batches_done': int(position.batches_done),
            'counters': {name: int(value) for name, value in counters.items()}, 'best_acc': float(best_acc),
            'epoch_rng_state': position.epoch_rng_state if position.phase == 'train' else None}


def _count(record: Mapping[str, Any], key: str) -> int:
    value = record.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 10 ** 12:
        raise ValueError(f'{key!r} must be an integer >= 0, got {short_repr(value)}')
    return value


def _finite(value: int | float) -> bool:
    try:
        return math.isfinite(value)
    except OverflowError:  # an int too large for a float
        return False


def read_resume_point(record: Any, rng: dict[str, Any] | None) -> ResumePoint:
    """A `ResumePoint` from a checkpoint's 'resume' record; ValueError naming the bad part.

    Args:
        record: the stored 'resume' record, or None.
        rng: the checkpoint's 'rng_state', already checked (`check_rng_state`), or None.

    A checkpoint with 'rng_state' but no 'resume' (written before runs recorded positions)
    resumes at the start of its next epoch.
    """
    if record is None:
        return ResumePoint('idle', 0, 0, rng_state=rng)
    if not isinstance(record, Mapping):
        raise ValueError(f'must be a dict, got {type(record).__name__}')
    unknown = set(record) - {'phase', 'epoch', 'batches_done', 'counters', 'best_acc', 'epoch_rng_state'}
    if unknown:
        raise ValueError(f'unknown key(s) {sorted(map(str, unknown))}')
    phase = record.get('phase')
    if phase not in PHASES:
        raise ValueError(f"'phase' must be one of {PHASES}, got {short_repr(phase)}")
    counters = record.get('counters', {})
    if not isinstance(counters, Mapping) or len(counters) > 1000 or not all(
            isinstance(k, str) and k.endswith('_iter') for k in counters):
        raise ValueError("'counters' must map '*_iter' names to integers")
    checked_counters = {name: _count(counters, name) for name in counters}
    best_acc = record.get('best_acc', 0.0)
    if isinstance(best_acc, bool) or not isinstance(best_acc, (int, float)) or not _finite(best_acc):
        raise ValueError(f"'best_acc' must be a finite number, got {short_repr(best_acc)}")
    epoch_rng = record.get('epoch_rng_state')
    try:
        epoch_rng = check_rng_state(epoch_rng) if epoch_rng is not None else None
    except RngStateError as error:
        raise ValueError(f"'epoch_rng_state' {error}") from error
    if phase == 'train' and epoch_rng is None:
        raise ValueError("a 'train' position needs 'epoch_rng_state'")
    return ResumePoint(phase, _count(record, 'epoch'), _count(record, 'batches_done'), checked_counters,
                       float(best_acc), epoch_rng, rng)


def resume_point_misfit(obj: Any, point: ResumePoint) -> tuple[str, str] | None:
    """Why the trainer cannot continue from `point` (the field, the reason), or None when it can: its epoch
    must lie within the run and each counter within its history array."""
    if point.epoch > obj.num_epochs:
        return "['epoch']", f"{point.epoch} is past the run's {obj.num_epochs} epochs"
    for name, counter in declared_histories(obj).items():
        array = getattr(obj, name, None)
        if counter in point.counters and isinstance(array, np.ndarray) and point.counters[counter] > len(array):
            return (f"['counters'][{counter!r}]",
                    f'{point.counters[counter]} is past the end of {name} ({len(array)} values)')
    return None


def check_resume_point_fits(obj: Any, point: ResumePoint, fname: Any) -> None:
    """Refuse a resume point the trainer cannot continue from. Checked before anything is set, so a refused
    file changes nothing."""
    misfit = resume_point_misfit(obj, point)
    if misfit is not None:
        raise CheckpointError(f"{fname}: ['resume']{misfit[0]}: {misfit[1]}")


def align_with_resume_point(obj: Any, point: ResumePoint, history_file: Any = None) -> None:
    """Set the history counters, `cur_epoch` and `best_acc` of `obj` to where the checkpoint was written.

    Values recorded after that point (a history file newer than the checkpoint) are cleared; a
    history file older than the checkpoint lacks the values in between, which is said once.
    """
    if not point.counters:
        return  # a checkpoint written before positions were recorded: counters come from the history
    for name, counter in declared_histories(obj).items():
        if counter is None or counter not in point.counters:
            continue
        count = point.counters[counter]
        if history_file is not None and getattr(obj, counter, 0) < count:
            log.warning('%s ends at %s=%d but the checkpoint was written at %d: the %s values in between are '
                        'missing (left at 0)', history_file, counter, getattr(obj, counter, 0), count, name)
        setattr(obj, counter, count)
        array = getattr(obj, name, None)
        if isinstance(array, np.ndarray) and len(array) > count:
            array = array.copy()  # a new array: a load that fails later leaves the trainer's own untouched
            array[count:] = 0
            setattr(obj, name, array)
    obj.cur_epoch = point.epoch
    obj.best_acc = point.best_acc
