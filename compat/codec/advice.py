"""What a refusal tells the reader to do, in the reader's own terms.

A loader called from Python suggests Python arguments (`trusted_modules=['mynets']`); the
`lernomatic` command suggests its own flags (`--trusted-modules mynets`). The loaders read the
advice in force (`current_advice`); the command sets its own around its work (`advising`).
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from dataclasses import dataclass

__all__ = ['Advice', 'PYTHON_ADVICE', 'advising', 'current_advice']


@dataclass(frozen=True)
class Advice:
    """The fixes a refusal suggests; `{top}` in a template is the top-level package concerned.

    Args:
        trust_module: how to trust a package the file names.
        find_module: how to make a package that cannot be found importable.
        trust_file: how to unpickle a whole file (only for files whose source is trusted).
    """

    trust_module: str
    find_module: str
    trust_file: str


PYTHON_ADVICE = Advice(
    trust_module=("trusted_modules=[{top!r}], LERNOMATIC_TRUSTED_MODULES={top} or lernomatic.trust_modules({top!r}); "
                  'or import it yourself first'),
    find_module='put the folder that holds {top} on sys.path (or PYTHONPATH)',
    trust_file='Pass trusted=True only if you trust where the file came from.',
)

_CURRENT: contextvars.ContextVar[Advice] = contextvars.ContextVar('lernomatic_advice', default=PYTHON_ADVICE)


@contextlib.contextmanager
def advising(advice: Advice) -> Iterator[Advice]:
    """Refusals made inside suggest `advice`'s fixes."""
    token = _CURRENT.set(advice)
    try:
        yield advice
    finally:
        _CURRENT.reset(token)


def current_advice() -> Advice:
    """The advice in force: the command's inside `advising`, else the Python API's."""
    return _CURRENT.get()
