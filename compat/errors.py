"""The project's error types: one per family, each a builtin subclass callers already catch."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class CheckpointError(ValueError):
    """A checkpoint or history file that cannot be read as one: the message names the file and why."""


class ConfigError(TypeError, ValueError):
    """A bad trainer option, caught before any work starts: the message names the option."""


class UnsavableStateError(RuntimeError):
    """A checkpoint that would not resume as the run: a run stopped inside a step, after its optimizer stepped."""


class NonFiniteLossError(FloatingPointError):
    """The training loss became NaN or infinite: the message names the epoch and iteration."""


def close_names(name: object, choices: Iterable[str], limit: int = 3) -> str:
    """A ' Did you mean ...?' hint listing the choices closest to a mistyped name, or ''."""
    if not isinstance(name, str) or len(name) > 200:
        return ''  # only a plausible typo of a name gets suggestions (and a file's value is never stringified)
    matches = difflib.get_close_matches(name, list(choices), n=limit, cutoff=0.6)
    if not matches:
        return ''
    return ' Did you mean ' + ' or '.join(repr(m) for m in matches) + '?'
