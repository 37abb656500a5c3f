"""Running a Lernomatic trainer's `train()`, `train_epoch()` and `val_epoch()` on Lightning.

`fit_epochs` is one `lightning.Trainer.fit` over the epochs `cur_epoch .. num_epochs`, with an
`EpochBridge` (the LightningModule) and the bookkeeping callback; a loaded checkpoint's resume
point is taken up here. A session installs the bridge for one run and afterwards gives the trainer
back its own loaders and optimizers on its device.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

from compat.codec.checkpoint import optimizer_state_to
from compat.codec.resume import ResumePoint
from compat.codec.rng import restore_rng_state
from compat.lightning_internals import start_fit_at_epoch
from compat.logs import get_logger
from compat.loop.bookkeeping import LernomaticBookkeeping, end_of_epoch
from compat.loop.bridge import EpochBridge, held_optimizers
from compat.loop.ddp import strategy_for_hand_written_loops
from compat.loop.good_step import back_to_good_step, mark_good_step
from compat.loop.interruption import ending_process_on_ctrl_c, taking_ctrl_c
from compat.loop.lightning_trainer import build_lightning_trainer, quiet_lightning
from compat.state.protocol import LernomaticTrainer

__all__ = ['fit_epochs', 'run_train_epoch', 'run_eval_epoch', 'backward']

log = get_logger('train')


def _eval_stages(legacy: LernomaticTrainer) -> list[str]:
    return [stage for stage, loader in (('val', legacy.val_loader), ('test', legacy.test_loader)) if loader is not None]


@contextlib.contextmanager
def _session(legacy: LernomaticTrainer, bridge: EpochBridge, verbose: int, run: bool = False) -> Iterator[None]:
    """Install the bridge for one run; afterwards restore the trainer's own objects on its device.

    Lightning's teardown moves modules and optimizer state to the CPU; old code goes on using
    them on `trainer.device` after `train()` returns, so they are put back. Ctrl-C is taken at a
    step boundary and comes out as `KeyboardInterrupt` (`compat.loop.interruption`). A `run`
    (`train()`) that stops by an exception goes back to its last finished step
    (`compat.loop.good_step`); the clean-up after an exception cannot be held by Ctrl-C.
    """
    state = legacy._run_state
    state.bridge = bridge
    if run:
        mark_good_step(legacy, pending=bridge.pending_resume)
    bridge.install()
    try:
        with quiet_lightning(verbose), taking_ctrl_c() as ctrl_c:
            bridge.ctrl_c = ctrl_c
            yield
    except BaseException as error:
        with ending_process_on_ctrl_c():
            _give_back(legacy, bridge)
            if run:
                back_to_good_step(legacy, error)
        raise
    _give_back(legacy, bridge)


def _give_back(legacy: LernomaticTrainer, bridge: EpochBridge) -> None:
    """The trainer's own loaders and optimizers, on its device; the position between runs unless a run left one."""
    bridge.uninstall()
    state = legacy._run_state
    state.bridge = None
    state.position.phase, state.position.batches_done = 'idle', 0
    bridge.to(legacy.device)
    legacy._send_to_device()
    for optimizer in held_optimizers(legacy).values():
        optimizer_state_to(optimizer, legacy.device)


def _finish_validated_epoch(legacy: LernomaticTrainer, point: ResumePoint | None) -> tuple[ResumePoint | None, bool]:
    """A checkpoint written after its epoch's validation: do what that run did next (the end of the epoch).

    Returns the resume point left for the next epoch's start, and whether the stop rules ended the run.
    """
    if point is None or point.phase != 'validated' or point.epoch != legacy.cur_epoch:
        return point, False
    stop = end_of_epoch(legacy)
    assert point.rng_state is not None, 'load_checkpoint keeps a resume point only with its generator states'
    restore_rng_state(point.rng_state)
    return ResumePoint('idle', legacy.cur_epoch, 0, point.counters, point.best_acc, None, point.rng_state), stop


def fit_epochs(legacy: LernomaticTrainer, hand_written: frozenset[str] = frozenset()) -> None:
    """Train from `legacy.cur_epoch` to `legacy.num_epochs` on Lightning's fit loop.

    A resume point left by `load_checkpoint` is used (once): the run continues where it was written.
    """
    point, legacy._run_state.resume = legacy._run_state.resume, None
    point, stopped = _finish_validated_epoch(legacy, point)
    if stopped or legacy.cur_epoch >= legacy.num_epochs:
        return
    stages = _eval_stages(legacy)
    bridge = EpochBridge(legacy, stages, hand_written, resume=point)
    hand_written = bridge.hand_written
    strategy = legacy.strategy
    if 'train' in hand_written:
        strategy = strategy_for_hand_written_loops(strategy, legacy.num_nodes)
    if legacy._run_state.torn is not None:
        log.warning('train() continues a run that stopped inside a step, with the weights as they are (they hold '
                    "that step's update, which no counter records)")
        legacy._run_state.torn = None
    with _session(legacy, bridge, legacy.verbose, run=True):
        bookkeeping = LernomaticBookkeeping(legacy, stages, hand_written)
        trainer = build_lightning_trainer(legacy, legacy.num_epochs, [bookkeeping],
                                          limit_val_batches=None if stages else 0, strategy=strategy,
                                          inference_mode=not hand_written)
        bridge.choose_step(trainer, getattr(legacy, 'cuda_graph', False))
        start_fit_at_epoch(trainer, legacy.cur_epoch)  # current_epoch, bar and samplers agree with cur_epoch
        trainer.fit(bridge)


def run_train_epoch(legacy: LernomaticTrainer) -> None:
    """One training epoch alone, as a direct `train_epoch()` call does: no validation, no epoch end."""
    bridge = EpochBridge(legacy, [])
    with _session(legacy, bridge, legacy.verbose):
        trainer = build_lightning_trainer(legacy, 1, [LernomaticBookkeeping(legacy, [], finish_epochs=False)],
                                          limit_val_batches=0)
        bridge.choose_step(trainer, getattr(legacy, 'cuda_graph', False))
        trainer.fit(bridge)


def run_eval_epoch(legacy: LernomaticTrainer, stage: str) -> None:
    """One pass over the val ('val') or test ('test') loader, as a direct `val_epoch()` call does."""
    bridge = EpochBridge(legacy, [stage])
    with _session(legacy, bridge, legacy.verbose):
        trainer = build_lightning_trainer(legacy, 1, [LernomaticBookkeeping(legacy, [stage])])
        trainer.validate(bridge, verbose=False)  # Lightning asks the bridge for its loaders once attached


def backward(legacy: LernomaticTrainer, loss: torch.Tensor) -> None:
    """`loss.backward()`, through Lightning (loss scaling under '16-mixed') while the trainer is training."""
    bridge = legacy._run_state.bridge
    if bridge is None or not bridge.hand_written_train:
        loss.backward()
    else:
        bridge.backward_from_user(loss)
