"""How an LR range test's results become an (lr_min, lr_max) range, one rule per `lr_select_method`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = ['RANGE_RULES']


def _scaled(finder: Any, log_lr: float) -> tuple[float, float]:
    hi = log_lr * finder.lr_max_scale
    return hi * finder.lr_min_factor, hi


def _edge_range(finder: Any, kernel: tuple[float, float, float]) -> tuple[float, float]:
    """(lo, hi) log10 lr of the strongest edge response of the accuracy curve (see get_lr_range)."""
    accuracy = np.asarray(finder.acc_history[:len(finder.log_lr_history)], dtype=np.float64)
    count, trunc = len(accuracy), finder.lr_trunc
    start, stop = max(trunc, 1), min(count - trunc, count - 1)
    if start >= stop:
        raise ValueError(f'lr_select_method={finder.lr_select_method!r} needs accuracy points at least '
                         f'lr_trunc={trunc} from both ends, and the sweep has {count}: lower lr_trunc or sweep '
                         'more batches')
    # response[j - 1] is centred on accuracy[j]
    response = np.correlate(accuracy, np.asarray(kernel, dtype=np.float64), mode='valid')[start - 1:stop - 1]
    peak = response.max()
    if peak <= 0:
        raise ValueError(f'lr_select_method={finder.lr_select_method!r} found no edge in the accuracy curve '
                         '(its response is nowhere positive): try max_acc or min_loss')
    kept = np.flatnonzero(response >= 0.9 * peak) + start
    return finder.log_lr_history[kept[0]], finder.log_lr_history[kept[-1]]


RANGE_RULES: dict[str, Callable[[Any], tuple[float, float]]] = {
    'max_acc': lambda f: _scaled(f, f.log_lr_history[f.best_acc_idx]),
    'min_loss': lambda f: _scaled(f, f.log_lr_history[f.best_loss_idx]),
    'max_range': lambda f: _scaled(f, f.log_lr_history[-1]),
    'laplace': lambda f: _edge_range(f, (-1.0, 4.0, -1.0)),
    'sobel': lambda f: _edge_range(f, (-1.0, 0.0, 1.0)),
}


