"""Keyword arguments nobody asked for: accepted with one warning, as the original accepted them.

The original Lernomatic popped the kwargs it knew and ignored the rest, and old code relies on it:
zoo trainers pass kwargs the base class does not know, callers pass kwargs nobody uses. So an
unknown kwarg is stored nowhere and reported once, with the closest known names (a typo is the
usual cause). `strict=True`, or `LERNOMATIC_STRICT=1` in the environment (for CI), makes it an error.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from compat.distributed import is_rank_zero
from compat.errors import ConfigError, close_names
from compat.logs import get_logger

__all__ = ['STRICT_ENV', 'strict_default', 'report_unknown_kwargs']

STRICT_ENV = 'LERNOMATIC_STRICT'

log = get_logger('kwargs')


def strict_default() -> bool:
    """Whether unknown kwargs are errors when the caller did not say: `LERNOMATIC_STRICT` set to 1/true/yes."""
    return os.environ.get(STRICT_ENV, '').strip().lower() in ('1', 'true', 'yes', 'on')


def report_unknown_kwargs(owner: str, unknown: Iterable[str], known: Iterable[str], strict: bool | None = None) -> None:
    """Warn once about `unknown` kwargs of `owner` (naming close known ones), or raise ConfigError when strict.

    Args:
        owner: what received them, e.g. 'Trainer' or a subclass name.
        unknown: the kwargs nothing used.
        known: the kwargs `owner` understands, for the "did you mean" hints.
        strict: raise instead of warning; None means `strict_default()`.
    """
    unknown = list(unknown)
    if not unknown:
        return
    known = list(known)
    hints = ''.join(f' {name!r}:{close_names(name, known) or " no close option."}' for name in unknown)
    names = ', '.join(map(repr, unknown))
    if strict if strict is not None else strict_default():
        raise ConfigError(f'unknown {owner} option(s) {names}.{hints} (strict mode: without strict=True '
                          f'and {STRICT_ENV}, unknown options are ignored with a warning)')
    if is_rank_zero():
        log.warning('%s ignores unknown option(s) %s.%s', owner, names, hints)
