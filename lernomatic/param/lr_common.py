"""LR range test (Smith 2017): train briefly with an exponentially rising learning rate, watch the loss.

`LogFinder(trainer, ...).find()` runs it on a Lernomatic trainer's own model, optimizer, criterion
and training data, puts model and optimizer back as they were, and suggests a range for a cyclic
schedule: `lr_max` where the smoothed loss falls fastest (the rule Lightning's `Tuner.lr_find`
suggests with), `lr_min` a tenth of it.
"""

from __future__ import annotations

import copy
import itertools
from pathlib import Path
from typing import Any

import numpy as np

from compat.errors import ConfigError

__all__ = ['LogFinder']


class LogFinder:
    """Exponential LR range test over a trainer's training data.

    Args:
        trainer: a Lernomatic `Trainer` with a model, optimizer, criterion and train_loader.
        lr_min: the first learning rate tried.
        lr_max: the last learning rate tried.
        num_iter: how many iterations (batches) the test runs at most.
        explode_thresh: stop once the smoothed loss exceeds this many times its lowest value.
        beta: smoothing of the loss (exponential moving average with bias correction).
    """

    def __init__(self, trainer: Any, lr_min: float = 1e-8, lr_max: float = 1.0, num_iter: int = 100,
                 explode_thresh: float = 4.0, beta: float = 0.98) -> None:
        if not 0 < lr_min < lr_max:
            raise ConfigError(f'need 0 < lr_min < lr_max, got lr_min={lr_min}, lr_max={lr_max}')
        if num_iter < 2:
            raise ConfigError(f'num_iter must be at least 2, got {num_iter}')
        if trainer.model is None or trainer.optimizer is None or trainer.train_loader is None:
            raise ConfigError('LogFinder needs a trainer with a model, an optimizer and training data')
        self.trainer = trainer
        self.lr_min, self.lr_max, self.num_iter = lr_min, lr_max, num_iter
        self.explode_thresh, self.beta = explode_thresh, beta
        self.lrs: list[float] = []
        self.losses: list[float] = []

    def __repr__(self) -> str:
        return f'LogFinder({self.lr_min:g} -> {self.lr_max:g}, {self.num_iter} iterations)'

    def _lr_at(self, step: int) -> float:
        return self.lr_min * (self.lr_max / self.lr_min) ** (step / (self.num_iter - 1))

    def find(self) -> tuple[float, float]:
        """Run the test and return the suggested (lr_min, lr_max); model and optimizer are restored."""
        trainer = self.trainer
        model_state = copy.deepcopy(trainer.model.get_net_state_dict())
        optim_state = copy.deepcopy(trainer.optimizer.state_dict())
        self.lrs, self.losses = [], []
        try:
            self._run(trainer)
        finally:
            trainer.model.set_net_state_dict(model_state)
            trainer.optimizer.load_state_dict(optim_state)
        steepest = self.suggestion()
        return steepest / 10.0, steepest

    def _run(self, trainer: Any) -> None:
        trainer.model.set_train()
        average, best = 0.0, float('inf')
        batches = itertools.chain.from_iterable(itertools.repeat(trainer.train_loader))
        for step, (data, target) in zip(range(self.num_iter), batches, strict=False):
            lr = self._lr_at(step)
            for group in trainer.optimizer.param_groups:
                group['lr'] = lr
            data, target = data.to(trainer.device), target.to(trainer.device)
            loss = trainer.criterion(trainer.model.forward(data), target)
            trainer.optimizer.zero_grad()
            loss.backward()
            trainer.optimizer.step()
            average = self.beta * average + (1 - self.beta) * loss.item()
            smoothed = average / (1 - self.beta ** (step + 1))
            self.lrs.append(lr)
            self.losses.append(smoothed)
            best = min(best, smoothed)
            if step > 0 and smoothed > self.explode_thresh * best:
                break

    def suggestion(self, skip_begin: int = 10, skip_end: int = 1) -> float:
        """The learning rate where the smoothed loss falls fastest (skipping the noisy ends)."""
        losses = np.array(self.losses[skip_begin:len(self.losses) - skip_end])
        lrs = self.lrs[skip_begin:len(self.lrs) - skip_end]
        if len(losses) < 2:
            raise ConfigError(f'the range test stopped after {len(self.losses)} iterations: too few to suggest a '
                              'learning rate; lower lr_min or raise explode_thresh')
        return float(lrs[int(np.argmin(np.gradient(losses)))])

    def plot(self, fname: str | Path) -> Path:
        """Smoothed loss against learning rate (log scale), the suggestion marked, as a PNG."""
        import matplotlib
        matplotlib.use('Agg')
        import matplotlib.pyplot as plt

        fig, axis = plt.subplots(figsize=(7, 4))
        axis.plot(self.lrs, self.losses)
        axis.axvline(self.suggestion(), color='red', ls='--', label=f'steepest: {self.suggestion():.2e}')
        axis.set_xscale('log')
        axis.set_xlabel('learning rate')
        axis.set_ylabel('smoothed loss')
        axis.legend()
        fig.tight_layout()
        fig.savefig(fname, dpi=100)
        plt.close(fig)
        return Path(fname)
