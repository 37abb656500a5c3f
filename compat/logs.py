"""The project's logger: INFO messages visible by default, like Lightning's own, from rank zero only."""

from __future__ import annotations

import logging

from compat.distributed import is_rank_zero

__all__ = ['get_logger', 'say']

_ROOT = 'lernomatic'


def get_logger(name: str) -> logging.Logger:
    """A child of the 'lernomatic' logger."""
    return logging.getLogger(f'{_ROOT}.{name}')


def _make_visible() -> None:
    """Give 'lernomatic' a stderr handler at INFO unless the application has set up logging itself.

    Checked when a message is sent, not at import, so a later `logging.basicConfig` wins.
    """
    root = logging.getLogger(_ROOT)
    if root.handlers or logging.getLogger().handlers:
        return
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter('%(message)s'))
    root.addHandler(handler)
    if root.level == logging.NOTSET:
        root.setLevel(logging.INFO)


def say(logger: logging.Logger, verbose: bool, message: str, *args: object) -> None:
    """Log at INFO when `verbose`, else at DEBUG; only on rank zero under DDP."""
    if not is_rank_zero():
        return
    if verbose:
        _make_visible()
    logger.log(logging.INFO if verbose else logging.DEBUG, message, *args)
