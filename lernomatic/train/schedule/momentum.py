"""Momentum schedules, for a Trainer's `mtm_scheduler`."""

from __future__ import annotations

from lernomatic.train.schedule.base import _Schedule

__all__ = ['MtmScheduler', 'TriangularMtmScheduler']


class MtmScheduler(_Schedule):
    """Base of the momentum schedules; on its own it holds the momentum at mtm_max.

    Works as a Trainer's `mtm_scheduler` (the Trainer calls `get_lr(loss_iter)` and sets SGD's
    `momentum` or Adam's `betas[0]`) and as a Lightning callback (`as_callback()` targets momentum).
    The original defined only the two options (and no value).

    Args:
        mtm_min: the low end of the range.
        mtm_max: the high end of the range.
        **kwargs: the shared options of every schedule (stepsize, start_iter, lr_history_size,
            no_lr_history, strict).
    """

    OPTIONS = {'mtm_min': 1e-3, 'mtm_max': 0.9}
    target = 'momentum'
    mtm_min: float
    mtm_max: float

    def value(self, x: float) -> float:
        return self.mtm_max

    def get_mtm(self, x: float) -> float:
        """The momentum for iteration `x` (the same as `get_lr(x)`, which the Trainer calls)."""
        return self.get_lr(x)


class TriangularMtmScheduler(MtmScheduler):
    """Cyclical momentum (Smith 2018): mtm_max down to mtm_min and back every 2*stepsize iterations.

    The mirror of `TriangularScheduler` with the same stepsize: momentum is lowest where the
    learning rate is highest. mtm_max before the first iteration (itr < 1). The original's
    `get_mtm()` returned None.
    """

    def value(self, x: float) -> float:
        return self.mtm_max - (self.mtm_max - self.mtm_min) * self._rise(x)
