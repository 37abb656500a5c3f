"""A trainer's own files: what its checkpoint holds, and reading a checkpoint or history file into it.

The Lernomatic Trainer's `save_checkpoint`, `load_checkpoint`, `load_model_checkpoint` and
`load_history` are thin calls into here. Reading validates the whole file first (every field,
the classes it names, the optimizer state against the model it rebuilds); applying it is all or
nothing: on any failure the trainer is as it was.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from compat.codec.checkpoint import (
    check_trainer_params,
    portable_optimizer_state,
    read_checkpoint,
    read_model_params,
    write_checkpoint,
)
from compat.codec.history_file import HistoryFileError, checked_history_values, read_history
from compat.codec.model_import import build_wrapper
from compat.codec.optimizer_state import checked_optimizer_state, foreign_optimizer_state, optimizer_state_for
from compat.codec.resume import (
    ResumePoint,
    align_with_resume_point,
    check_resume_point_fits,
    read_resume_point,
    resume_record,
)
from compat.codec.rng import RngStateError, capture_rng_state, check_rng_state, restore_rng_state
from compat.codec.safe_load import safe_load
from compat.codec.trust import loading
from compat.errors import CheckpointError, ConfigError
from compat.logs import get_logger
from compat.state.histories import declared_histories
from compat.state.protocol import LernomaticTrainer
from compat.text import short_repr

__all__ = ['LoadedCheckpoint', 'save_trainer_checkpoint', 'read_trainer_checkpoint', 'read_model_only',
           'load_optimizer_state', 'apply_history_file', 'unchanged_on_error']

log = get_logger('files')


def save_trainer_checkpoint(trainer: LernomaticTrainer, fname: str) -> None:
    """Write `{'model', 'optim', 'trainer_params', 'rng_state', 'resume'}` for `trainer`, atomically."""
    counters = {counter: getattr(trainer, counter) for counter in declared_histories(trainer).values()
                if counter is not None and isinstance(getattr(trainer, counter, None), int)}
    if trainer.optimizer is None:
        raise ConfigError(f'{trainer!r} has no optimizer to save: _init_optimizer() left self.optimizer as None')
    state = trainer._run_state
    write_checkpoint(fname, trainer.model.get_params(), portable_optimizer_state(trainer.optimizer,
                                                                                 state.capturable_before),
                     trainer.get_trainer_params(), rng_state=capture_rng_state(),
                     resume=resume_record(state.position, trainer.cur_epoch, counters, trainer.best_acc))


@dataclass(frozen=True)
class LoadedCheckpoint:
    """A trainer checkpoint read and checked: its raw dict, the model it rebuilt, where to resume."""

    data: dict[str, Any]
    model: Any
    point: ResumePoint


def _policy(fname: Any, trusted: bool, trusted_modules: Iterable[str] | None, trainer: LernomaticTrainer):
    return loading(fname, trusted, [*(getattr(trainer, 'trusted_modules', None) or ()), *(trusted_modules or ())])


def read_trainer_checkpoint(trainer: LernomaticTrainer, fname: str, wrapper_base: type, trusted: bool = False,
                            trusted_modules: Iterable[str] | None = None) -> LoadedCheckpoint:
    """Read and check a whole trainer checkpoint for `trainer`, building its model off to the side.

    Args:
        trainer: the trainer it is for (its own `trusted_modules` apply too).
        fname: the file.
        wrapper_base: the `LernomaticModel` class (compat does not import lernomatic).
        trusted: unpickle anything and import any module the file names.
        trusted_modules: module prefixes the file may make us import.
    """
    with _policy(fname, trusted, trusted_modules, trainer):
        data = read_checkpoint(fname, trusted=trusted)
        check_trainer_params(data['trainer_params'], fname)
        try:
            rng = check_rng_state(data['rng_state']) if data.get('rng_state') is not None else None
        except RngStateError as error:
            raise CheckpointError(f"{fname}: ['rng_state']: {error}") from error
        try:
            point = read_resume_point(data.get('resume'), rng)
        except ValueError as error:
            raise CheckpointError(f"{fname}: ['resume']: {error}") from error
        model = build_wrapper(read_model_params(data, fname), wrapper_base)
        # plain values now; which keys and shapes fit is known once the trainer has built its optimizer
        # (`optimizer_state_for`): a zoo trainer's own `_init_optimizer` may build SGD whatever optim_function says
        checked_optimizer_state(data['optim'], None, None, fname)
    return LoadedCheckpoint(data, model, point)


def load_optimizer_state(optimizer: Any, state: Any, fname: str) -> None:
    """A checkpoint's optimizer state into the optimizer the trainer built, checked against it.

    Another torch optimizer's state (a zoo trainer's SGD in a Trainer(None) that builds Adam) is
    not loaded: the optimizer starts afresh and the log says so, where the original's first step failed.
    """
    foreign = foreign_optimizer_state(optimizer, state, fname)
    if foreign:
        log.warning('%s', foreign)
    else:
        optimizer.load_state_dict(optimizer_state_for(optimizer, state, fname))


def read_model_only(trainer: LernomaticTrainer, fname: str, wrapper_base: type, trusted: bool = False,
                    trusted_modules: Iterable[str] | None = None) -> Any:
    """The model a checkpoint holds, rebuilt and checked (for `load_model_checkpoint`)."""
    with _policy(fname, trusted, trusted_modules, trainer):
        return build_wrapper(read_model_params(safe_load(fname, trusted=trusted), fname), wrapper_base)


def apply_history_file(trainer: LernomaticTrainer, fname: str, trusted: bool = False) -> None:
    """Set the declared counters and histories a history file holds on `trainer`, all or nothing.

    Only what the trainer declares is set, each value checked for type and shape; other keys are
    reported and ignored. After a checkpoint with a resume point, the counters are the checkpoint's.
    """
    data = read_history(fname, trusted=trusted)
    try:
        values, unknown = checked_history_values(trainer, data)
    except HistoryFileError as error:
        raise CheckpointError(f'{fname}: {error}') from error
    if unknown:  # the file's key names: bounded and escaped, never raw control characters on a terminal
        shown = ', '.join(short_repr(key, 40) for key in unknown[:10]) + (f' and {len(unknown) - 10} more'
                                                                          if len(unknown) > 10 else '')
        log.warning('%s: ignored key(s) %s: not part of the history of %s', fname, shown, type(trainer).__name__)
    point = trainer._run_state.resume
    with unchanged_on_error(trainer, fname):
        for key, value in values.items():
            if value is None and isinstance(getattr(trainer, key, None), np.ndarray):
                continue  # nothing recorded there; keep this trainer's (empty) array
            if point is not None and isinstance(value, np.ndarray):
                value = _room_for_resume_point(trainer, key, value, point)
            setattr(trainer, key, value)
        if point is not None:
            check_resume_point_fits(trainer, point, fname)
            align_with_resume_point(trainer, point, history_file=fname)


def _room_for_resume_point(trainer: LernomaticTrainer, name: str, array: np.ndarray, point: ResumePoint,
                           ) -> np.ndarray:
    """A history file older than the loaded checkpoint (a shorter run's) holds fewer values than the checkpoint
    counted: its array gets the trainer's length, the values in between left at 0 (and said, when aligning)."""
    counter = declared_histories(trainer).get(name)
    own = getattr(trainer, name, None)
    if counter is None or point.counters.get(counter, 0) <= len(array) or not isinstance(own, np.ndarray) \
            or len(own) <= len(array) or own.shape[1:] != array.shape[1:]:
        return array
    room = np.zeros(own.shape, dtype=array.dtype)
    room[:len(array)] = array
    return room


@contextlib.contextmanager
def unchanged_on_error(trainer: LernomaticTrainer, fname: str) -> Iterator[None]:
    """Apply a file's contents all or nothing: on any failure the trainer is as it was, the random generators
    too (building a model draws from them), and the error is a CheckpointError naming the file."""
    before = dict(trainer.__dict__)
    generators = capture_rng_state()
    try:
        yield
    except Exception as error:
        trainer.__dict__.clear()
        trainer.__dict__.update(before)
        restore_rng_state(generators)
        if isinstance(error, CheckpointError):
            raise
        raise CheckpointError(f'{fname}: its contents do not fit a trainer: {type(error).__name__}: {error}') from error
