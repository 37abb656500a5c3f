"""The one module that touches Lightning's private or undocumented surface.

Everything else in compat uses Lightning's public API. Each function here says what it does, why
no public API does it, and what public API would replace it. `PRIVATE_NAMES` lists the private
names used here; a test checks that no other module uses them, and that the installed Lightning is
one of `VERIFIED_LIGHTNING` (the versions the whole suite was run on), which pyproject's range
matches: `lightning>=2.4,<2.7`.
"""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

import lightning
from lightning.pytorch.loops.progress import _ProcessedTracker
from lightning.pytorch.strategies import DDPStrategy

if TYPE_CHECKING:
    from lightning.pytorch.core.optimizer import LightningOptimizer

__all__ = ['VERIFIED_LIGHTNING', 'PRIVATE_NAMES', 'check_lightning_version', 'FastHookName',
           'freeze_training_step_signature', 'step_counters', 'run_validation_now', 'start_fit_at_epoch',
           'fit_loop_state', 'finished_epochs', 'UnwrappedDDPStrategy']

# Oldest allowed and current: the whole suite passes on both (docs/architecture.md says how it was run).
VERIFIED_LIGHTNING = ('2.4.0', '2.6.6')

# The private or undocumented names this module relies on (checked by tests/test_lightning_internals.py).
PRIVATE_NAMES = ('_current_fx_name', '_lightning_optimizers', '_on_before_step', '_on_after_step', 'val_loop',
                 'epoch_progress', 'optim_progress', '_batches_that_stepped', 'configure_ddp', '__signature__',
                 '_ProcessedTracker')

_ModuleT = TypeVar('_ModuleT', bound=type[lightning.LightningModule])


def _minor(version: str) -> tuple[int, int]:
    major, minor = version.split('.')[:2]
    return int(major), int(minor)


def check_lightning_version() -> str | None:
    """A warning text when the installed Lightning's minor version was not verified here; None when it was."""
    installed = lightning.__version__
    verified = {_minor(version) for version in VERIFIED_LIGHTNING}
    lowest, highest = min(verified), max(verified)
    if lowest <= _minor(installed) <= highest:
        return None
    return (f'lightning {installed} is outside the versions lernomatic-lightning was verified with '
            f'({", ".join(VERIFIED_LIGHTNING)}): its private loop internals may have changed')


class FastHookName:
    """A LightningModule mixin: Lightning's per-hook `_current_fx_name` set without `nn.Module.__setattr__`.

    Why: Lightning sets `_current_fx_name` on the module around every hook call, a dozen times a
    step; `nn.Module.__setattr__` checks parameters, buffers and submodules each time, which costs
    more than the hook on small models. Public replacement: none (Lightning could store it on the
    trainer, or in `object.__setattr__` itself).
    """

    _PLAIN = frozenset({'_current_fx_name'})

    def __setattr__(self, name: str, value: Any) -> None:
        if name in self._PLAIN:
            object.__setattr__(self, name, value)
        else:
            super().__setattr__(name, value)


def freeze_training_step_signature(cls: _ModuleT) -> _ModuleT:
    """Store `training_step`'s signature on the function, so Lightning's per-step inspection is a lookup.

    Why: Lightning calls `inspect.signature(training_step)` at every step to see whether it takes
    `dataloader_idx`. Public replacement: none (Lightning could inspect once per fit).
    """
    # typeshed's function type leaves out `__signature__`, the attribute inspect.signature() documents and reads
    cls.training_step.__signature__ = inspect.signature(cls.training_step)  # type: ignore[attr-defined]
    return cls


def step_counters(trainer: lightning.Trainer) -> dict[int, tuple[Callable[[], None], Callable[[], None]]]:
    """For each optimizer (by `id`), the (before, after) calls that count one step in Lightning's progress.

    Why: our lean and captured steps, and a hand-written loop's `optimizer.step()`, step the user's
    optimizer directly; Lightning's `global_step` only advances when its `LightningOptimizer` wrapper
    runs its step hooks. Public replacement: calling `LightningOptimizer.step()`, which also runs the
    closure machinery and hooks the lean step exists to skip.
    """
    return {id(wrapper.optimizer): _step_hooks(wrapper) for wrapper in trainer.strategy._lightning_optimizers}


def _step_hooks(wrapper: LightningOptimizer) -> tuple[Callable[[], None], Callable[[], None]]:
    # looked up at each call: Lightning's optimisation loop installs these hooks on the wrapper when it starts
    return lambda: wrapper._on_before_step(), lambda: wrapper._on_after_step()


def run_validation_now(trainer: lightning.Trainer) -> None:
    """Run the fit loop's validation at once, as Lightning does at an epoch's end.

    Why: a hand-written `train_epoch` that breaks out of its loop ends Lightning's epoch early
    (`on_train_batch_start` returning -1), and Lightning then skips that epoch's validation, which
    the original's `train()` ran. Public replacement: none within `fit`.
    """
    trainer.validating = True
    try:
        trainer.fit_loop.epoch_loop.val_loop.run()
    finally:
        trainer.training = True


def start_fit_at_epoch(trainer: lightning.Trainer, epoch: int) -> None:
    """Make a fresh fit start its epoch counter at `epoch`, as a fit restored from a checkpoint would.

    Why: Lernomatic's `train()` goes on from `cur_epoch`; with the counter there, `current_epoch`,
    the progress bar and the samplers' `set_epoch` agree with it. Public replacement: `fit(...,
    ckpt_path=...)`, which needs a Lightning checkpoint on disk.
    """
    for progress in (trainer.fit_loop.epoch_progress.current, trainer.fit_loop.epoch_progress.total):
        # Lightning declares these as the base tracker; the fit loop's hold the full one (its default_factory)
        if not isinstance(progress, _ProcessedTracker):
            raise RuntimeError(f'lightning {lightning.__version__}: the fit loop counts epochs with a '
                               f'{type(progress).__name__}, not the _ProcessedTracker this function sets')
        progress.ready = progress.started = progress.processed = progress.completed = epoch


def fit_loop_state(cur_epoch: int, steps: int) -> dict[str, Any]:
    """Lightning's loop state (the `.ckpt` key 'loops') for a run that finished `cur_epoch` epochs in `steps` steps.

    Why: a converted `.ckpt` must resume where the Lernomatic run stopped, and the loops' state
    dicts are an undocumented format; building a Trainer and setting its progress counters gives the
    installed Lightning's own layout. Public replacement: none.
    """
    from compat.logs import quiet_loggers

    with quiet_loggers(('lightning.pytorch', 'lightning.fabric')), warnings.catch_warnings():
        warnings.filterwarnings('ignore', message='.*available but not used')
        trainer = lightning.Trainer(max_epochs=max(cur_epoch, 1), logger=False, enable_checkpointing=False,
                                    enable_progress_bar=False, enable_model_summary=False, accelerator='cpu')
    loop = trainer.fit_loop
    start_fit_at_epoch(trainer, cur_epoch)
    step_progress = loop.epoch_loop.automatic_optimization.optim_progress.optimizer.step
    step_progress.total.ready = step_progress.total.completed = steps
    loop.epoch_loop._batches_that_stepped = steps
    return {'fit_loop': loop.state_dict(), 'validate_loop': trainer.validate_loop.state_dict(),
            'test_loop': trainer.test_loop.state_dict(), 'predict_loop': trainer.predict_loop.state_dict()}


def finished_epochs(ckpt: Mapping[str, Any]) -> int:
    """How many epochs the run of a Lightning `.ckpt` dict finished (from its loop state, else 'epoch' + 1).

    Why: a `.ckpt` records finished epochs only in its loops' state, an undocumented layout ('epoch'
    is the last epoch started). Public replacement: none.
    """
    try:
        return int(ckpt['loops']['fit_loop']['epoch_progress']['current']['completed'])
    except (KeyError, TypeError, ValueError):
        return int(ckpt.get('epoch', 0)) + 1


class UnwrappedDDPStrategy(DDPStrategy):
    """`DDPStrategy` whose module is not wrapped in `DistributedDataParallel`; `setup_ddp` is given instead.

    Why: a hand-written loop's own `loss.backward()` calls bypass the wrapper's forward, and it
    holds several models (`compat.loop.ddp` gives each its own DDP). Public replacement: none
    (Lightning offers no strategy hook for "do not wrap").
    """

    def __init__(self, setup_ddp: Callable[[Any], None], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._setup_ddp = setup_ddp

    def configure_ddp(self) -> None:
        self._setup_ddp(self.model)
