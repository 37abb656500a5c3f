"""Bounded text for values that come from files: a stranger's file must not make one line huge.

`repr` is unsafe on such values: a string can be a gigabyte long, an int can have more digits than
Python will print (a ValueError), a nested tuple can be deep enough for a RecursionError.
"""

from __future__ import annotations

__all__ = ['SCALARS', 'short_repr', 'one_line']

SCALARS = (str, bytes, bool, int, float, complex, type(None))

_MAX_TEXT = 80
_MAX_INT_BITS = 128


def short_repr(value: object, limit: int = _MAX_TEXT) -> str:
    """`repr(value)` for plain scalars, cut to about `limit` characters; the type name for anything else.

    numpy scalars count as plain (their repr is short); containers and arbitrary objects are never
    repr'd, since their repr can recurse or run code of a trusted file's classes.
    """
    if isinstance(value, (str, bytes)):
        if len(value) <= limit:
            return repr(value)
        return f'{value[:limit]!r}... ({len(value)} characters)'
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > _MAX_INT_BITS:
        return f'<{value.bit_length()}-bit integer>'
    if isinstance(value, SCALARS) or _is_numpy_scalar(value):
        text = repr(value)
        return text if len(text) <= limit else text[:limit] + '...'
    return f'<{type(value).__name__}>'


def _is_numpy_scalar(value: object) -> bool:
    """numpy scalars without importing numpy (the caller may not have needed it)."""
    return type(value).__module__ == 'numpy' and hasattr(value, 'dtype') and getattr(value, 'ndim', None) == 0


def one_line(message: str, limit: int = 400) -> str:
    """`message` with its whitespace runs (newlines included) collapsed, cut to `limit` characters."""
    text = ' '.join(str(message).split())
    return text if len(text) <= limit else text[:limit] + '...'
