"""How a training step runs for each precision and strategy: the one place that decides.

The default loop's step is chosen once per run (`EpochBridge.choose_step`): automatic
optimisation, the lean step below, or the captured CUDA graph (`compat.loop.captured_step`, which
adds its own conditions). A hand-written loop's plain `loss.backward()` works for every precision
but one that scales the loss (`scales_loss`), where it must call `self.backward(loss)`.

Lightning's automatic optimisation builds a closure and calls a dozen hooks per step; on small
models that Python work, not the GPU, sets the pace. Where nothing listens to those hooks (plain
32-bit precision, one device, no callback on the zero_grad, backward or optimizer-step hooks) the
default loop runs the same forward, zero_grad, backward and step itself under manual
optimisation, and counts each step in Lightning's progress so `global_step` holds.
"""

from __future__ import annotations

import lightning
from lightning.pytorch.strategies import SingleDeviceStrategy

__all__ = ['lean_step_blockers', 'overridden_hooks', 'scales_loss', 'LEAN_SKIPPED_HOOKS', 'PLAIN_PRECISION']

# The precision under which a step is the plain forward, backward and step (no casting, no loss scale).
PLAIN_PRECISION = '32-true'
# Precisions whose backward must go through Lightning, which scales the loss (torch's GradScaler).
LOSS_SCALING_PRECISIONS = ('16-mixed',)

# The hooks that automatic optimisation calls and the lean step does not.
LEAN_SKIPPED_HOOKS = ('on_before_zero_grad', 'on_before_backward', 'on_after_backward', 'on_before_optimizer_step')


def overridden_hooks(trainer: lightning.Trainer, hooks: tuple[str, ...]) -> list[str]:
    """`Callback.hook` for each callback of `trainer` that overrides one of `hooks`."""
    found = []
    # Lightning's CallbackConnector assigns `trainer.callbacks` (a documented attribute) without declaring it
    for callback in trainer.callbacks:  # type: ignore[attr-defined]
        for hook in hooks:
            if getattr(type(callback), hook, None) is not getattr(lightning.Callback, hook):
                found.append(f'{type(callback).__name__}.{hook}')
    return found


def lean_step_blockers(trainer: lightning.Trainer) -> list[str]:
    """Why the lean step cannot stand in for automatic optimisation on `trainer`; empty when it can."""
    blockers = []
    if trainer.precision != PLAIN_PRECISION:
        blockers.append(f'precision {trainer.precision!r} needs Lightning to scale or cast the loss')
    if not isinstance(trainer.strategy, SingleDeviceStrategy):
        blockers.append(f'strategy {type(trainer.strategy).__name__} synchronises gradients in its backward')
    blockers += [f'{hook} must run inside the step' for hook in overridden_hooks(trainer, LEAN_SKIPPED_HOOKS)]
    return blockers


def scales_loss(trainer: lightning.Trainer) -> bool:
    """Whether `trainer`'s precision scales the loss, so a hand-written backward must go through Lightning."""
    return trainer.precision in LOSS_SCALING_PRECISIONS
