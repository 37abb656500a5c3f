"""The last finished step of a run, and going back to it when the run stops by an exception.

A run that raises (Ctrl-C, a DataLoader that fails, a bug in a hand-written loop) stops between
two of its records: the position may say one batch while the counters say another. Left so, a
checkpoint saved afterwards (an old script's `except KeyboardInterrupt: trainer.save_checkpoint`)
loads and then fails later. So the loop marks each finished step (`mark_good_step`: after a
training batch's bookkeeping, after validation, after an epoch's end), and a run that stops goes
back to the last mark (`back_to_good_step`): position, counters, `cur_epoch` and `best_acc` agree
again, and the trainer's next `train()` continues from there. Where an optimizer had already
stepped past the mark, the weights are ahead of every record: saving a checkpoint is then refused
(`RunState.torn`) until the next `train()` or `load_checkpoint`.
"""

from __future__ import annotations

import copy
from typing import Any

from compat.codec.resume import ResumePoint, align_with_resume_point, resume_point_misfit
from compat.codec.rng import capture_rng_state, restore_rng_state
from compat.logs import epoch_label, get_logger
from compat.state.histories import declared_histories
from compat.state.protocol import LernomaticTrainer
from compat.state.run_state import GoodStep

__all__ = ['mark_good_step', 'back_to_good_step', 'hold_at', 'take_up_resume_point']

log = get_logger('resume')


def _counters(legacy: LernomaticTrainer, names: list[str] | None = None) -> dict[str, int]:
    if names is None:  # at a run's start; each step then reads the same names (no scan of the trainer per step)
        names = [counter for counter in declared_histories(legacy).values() if counter is not None]
    return {name: value for name in names if isinstance(value := getattr(legacy, name, None), int)}


def mark_good_step(legacy: LernomaticTrainer, pending: ResumePoint | None = None) -> None:
    """Record the run as it stands now as its last finished step.

    Args:
        legacy: the trainer.
        pending: at a run's start, the loaded checkpoint's resume point still to be caught up with.
    """
    state = legacy._run_state
    previous = state.last_good
    names = list(previous.counters) if previous is not None and pending is None else None
    state.last_good = GoodStep(copy.copy(state.position), _counters(legacy, names), legacy.cur_epoch,
                               legacy.best_acc, pending)
    state.stepped = False


def hold_at(legacy: LernomaticTrainer, point: ResumePoint) -> None:
    """Make `point` where the trainer stands: its position (what a checkpoint records), the next `train()`'s start."""
    position = legacy._run_state.position
    position.phase, position.epoch, position.batches_done = point.phase, point.epoch, point.batches_done
    position.epoch_rng_state = point.epoch_rng_state
    legacy._run_state.resume = point


def back_to_good_step(legacy: LernomaticTrainer, error: BaseException) -> None:
    """After a run stopped by `error`: the trainer as it was after its last finished step.

    The next `train()` continues from there. If an optimizer stepped after that point, saving a
    checkpoint is refused until then (`RunState.torn`), as the weights hold a step no record counts.
    """
    state = legacy._run_state
    good = state.last_good
    if good is None:
        return
    for name, value in good.counters.items():
        setattr(legacy, name, value)
    legacy.cur_epoch, legacy.best_acc = good.cur_epoch, good.best_acc
    where = good.position
    if good.pending is not None:
        point = good.pending
    else:
        point = ResumePoint(where.phase, good.cur_epoch, where.batches_done, dict(good.counters), good.best_acc,
                            where.epoch_rng_state, capture_rng_state())
    hold_at(legacy, point)
    if state.stepped:
        state.torn = (f'the run stopped by {type(error).__name__} inside a step of '
                      f'{epoch_label(point.epoch, legacy.num_epochs)}, after the optimizer had stepped: the weights '
                      f'hold an update that no counter records, so a checkpoint now would not resume as the run. '
                      f'Load the newest checkpoint the run wrote, or call train() to continue from batch '
                      f'{point.batches_done} and save after it')
    state.stepped = False


def take_up_resume_point(legacy: LernomaticTrainer, point: ResumePoint, generators: dict[str, Any], fname: Any) -> None:
    """After `load_checkpoint`: continue the saved run exactly, where this trainer can (same data, a run long
    enough). Into a trainer with other data or a shorter run the checkpoint loads as the original loaded
    every checkpoint: model, optimizer and settings, not the run's position; said once."""
    misfit = resume_point_misfit(legacy, point)
    if misfit is not None:
        log.warning("%s: ['resume']%s: %s: loaded the model, optimizer and settings; the run's position and "
                    'random generators are not restored', fname, *misfit)
        return
    restore_rng_state(generators)  # all generators or none: building the model drew from the generator
    align_with_resume_point(legacy, point)
    hold_at(legacy, point)  # a checkpoint saved before train() records this point too
