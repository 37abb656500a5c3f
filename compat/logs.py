"""The project's logger and how much a run says: INFO messages by default, from rank zero only.

Verbosity is the Trainer's `verbose` option: 0 (or False) says nothing, 1 (or True, the default)
says our messages and draws the progress bar on a terminal, 2 adds Lightning's own lines (its
start-up banner, tips, model summary and warnings). Messages are plain lines on stderr; while a
progress bar is drawn they go through tqdm's writer, which lifts the bar, prints the line above it
and redraws it, so a line is never written into the bar.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import warnings
from collections.abc import Iterable, Iterator
from numbers import Integral
from typing import Any

from tqdm import tqdm

from compat.distributed import is_rank_zero

__all__ = ['get_logger', 'say', 'BarSafeHandler', 'BarSafeStream', 'show_warning_above_bar', 'SILENT', 'MESSAGES',
           'EVERYTHING', 'verbosity', 'verbosity_problem', 'epoch_label', 'quiet_loggers']

_ROOT = 'lernomatic'

SILENT, MESSAGES, EVERYTHING = 0, 1, 2


def verbosity_problem(value: Any) -> str | None:
    """Why `value` is not a verbosity (None when it is one): a `compat.codec.validators`-style check."""
    if isinstance(value, Integral) and SILENT <= int(value) <= EVERYTHING:
        return None
    return ("must be False/0 (silent), True/1 (messages and progress bar) or 2 (also Lightning's own lines: "
            'banner, tips, model summary, warnings)')


def verbosity(verbose: Any) -> int:
    """The level (SILENT, MESSAGES or EVERYTHING) of a `verbose` value; True is MESSAGES, as old code means it."""
    return max(SILENT, min(EVERYTHING, int(verbose)))


def epoch_label(cur_epoch: int, num_epochs: int) -> str:
    """'epoch 4/12' for `cur_epoch=3`: counted from 1, as the original printed it and as plots and TensorBoard count.

    Only file names keep the 0-based `cur_epoch` (`<checkpoint_name>_epoch_3_iter_...pkl`), as the original's did.
    """
    return f'epoch {cur_epoch + 1}/{num_epochs}'


def get_logger(name: str) -> logging.Logger:
    """A child of the 'lernomatic' logger."""
    return logging.getLogger(f'{_ROOT}.{name}')


class BarSafeHandler(logging.Handler):
    """Writes each record as one line to stderr, through tqdm's writer so that a drawn bar is not overwritten.

    Without a bar, `tqdm.write` is a plain write: a log file or CI output gets plain lines. stderr is
    looked up at every record, so a redirected `sys.stderr` is honoured. Applications that configure
    logging themselves can add this handler to their own logger to keep the bar intact.
    """

    def emit(self, record: logging.LogRecord) -> None:
        try:
            tqdm.write(self.format(record), file=sys.stderr)
        except Exception:  # logging's contract: report through handleError, never raise
            self.handleError(record)


class BarSafeStream:
    """A text stream whose writes go through tqdm's writer: for other libraries' handlers that hold a stream.

    Args:
        stream: where the text goes (the handler's own stream).
    """

    def __init__(self, stream: Any) -> None:
        self.stream = stream

    def write(self, text: str) -> int:
        tqdm.write(text, file=self.stream, end='')
        return len(text)

    def flush(self) -> None:
        self.stream.flush()


def show_warning_above_bar(message: Any, category: type[Warning], filename: str, lineno: int, file: Any = None,
                           line: str | None = None) -> None:
    """`warnings.showwarning` that writes through tqdm's writer, so a warning is not written into a drawn bar."""
    tqdm.write(warnings.formatwarning(message, category, filename, lineno, line), file=file or sys.stderr, end='')


def _make_visible() -> None:
    """Give 'lernomatic' a `BarSafeHandler` at INFO unless the application has set up logging itself.

    Checked when a message is sent, not at import, so a later `logging.basicConfig` wins.
    """
    root = logging.getLogger(_ROOT)
    if root.handlers or logging.getLogger().handlers:
        return
    handler = BarSafeHandler()
    handler.setFormatter(logging.Formatter('%(message)s'))
    root.addHandler(handler)
    if root.level == logging.NOTSET:
        root.setLevel(logging.INFO)


def say(logger: logging.Logger, verbose: Any, message: str, *args: object) -> None:
    """Log at INFO when `verbose` (1 or 2), else at DEBUG; only on rank zero under DDP."""
    if not is_rank_zero():
        return
    if verbose:
        _make_visible()
    logger.log(logging.INFO if verbose else logging.DEBUG, message, *args)


@contextlib.contextmanager
def quiet_loggers(names: Iterable[str], level: int = logging.WARNING) -> Iterator[list[logging.Logger]]:
    """The named loggers at `level` (or quieter) inside the block, as they were after it."""
    loggers = [logging.getLogger(name) for name in names]
    before = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(max(level, logger.level))
    try:
        yield loggers
    finally:
        for logger, old in zip(loggers, before, strict=True):
            logger.setLevel(old)
