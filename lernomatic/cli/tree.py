"""The tree of keys and types of a loaded file, walked with bounds a hostile file cannot break.

The walk is iterative (a list nested 100,000 deep is no RecursionError), stops at `max_level`,
lists at most `MAX_CHILDREN` entries per container, and expands each container once: a second
reference to it (a shared-reference bomb, or a cycle) is one line naming where it was shown. The
caller takes as many lines as it wants from the generator, so the total is bounded too.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
import torch

from compat.text import SCALARS, short_repr

__all__ = ['tree_lines', 'MAX_CHILDREN']

MAX_CHILDREN = 50   # entries listed per dict or list; the rest are counted on one line
_DATA_VALUES = 6    # values shown per tensor or array under --show-data
_LIST_VALUES = 8    # values shown per list of plain values under --show-data
_INDENT = '    '
_PLAIN = SCALARS + (np.generic,)  # values shown inline, never expanded


def _first_indices(shape: tuple[int, ...], count: int) -> Iterator[tuple[int, ...]]:
    """The multi-indices of the first `count` elements in row-major order, without flattening.

    Flattening copies, and a tensor expanded with stride 0 can claim 10**12 elements over one stored value.
    """
    for flat in range(count):
        index = []
        for size in reversed(shape):
            flat, position = divmod(flat, size)
            index.append(position)
        yield tuple(reversed(index))


def _first_values(array: torch.Tensor | np.ndarray) -> str:
    count = min(_DATA_VALUES, math.prod(int(size) for size in array.shape))
    try:
        values = [short_repr(array[index].item(), 24) for index in _first_indices(tuple(array.shape), count)]
    except (RuntimeError, TypeError, ValueError, IndexError) as error:  # sparse, quantized or odd layouts
        return f' (values not shown: {type(error).__name__})'
    return f' = [{", ".join(values)}]'


def _shape_text(shape: tuple[int, ...]) -> str:
    return str(tuple(int(s) for s in shape)) if len(shape) <= 8 else f'({len(shape)} dimensions)'


def _describe_leaf(value: Any, show_data: bool) -> str:
    if isinstance(value, torch.Tensor):
        text = f'Tensor {str(value.dtype).replace("torch.", "")} {_shape_text(tuple(value.shape))} on {value.device}'
        return text + (_first_values(value) if show_data else '')
    if isinstance(value, np.ndarray):
        text = f'ndarray {value.dtype} {_shape_text(value.shape)}'
        return text + (_first_values(value) if show_data else '')
    if isinstance(value, _PLAIN):
        return f'{type(value).__name__} = {short_repr(value)}'
    return type(value).__name__


def _is_container(value: Any) -> bool:
    return isinstance(value, (Mapping, list, tuple, set, frozenset))


def _is_plain_list(value: Any) -> bool:
    """A list or tuple whose first entries are all plain values: shown on one line, not one line each."""
    return isinstance(value, (list, tuple)) and all(
        isinstance(item, _PLAIN) for item in itertools.islice(value, MAX_CHILDREN))


def _header(value: Any) -> str:
    count = len(value)
    return f'{type(value).__name__} ({count} {"keys" if isinstance(value, Mapping) else "items"})'


def _key_label(key: Any) -> str:
    """Plain keys as their bounded repr, short tuples of plain values too (never a repr of anything deeper)."""
    if isinstance(key, _PLAIN):
        return short_repr(key)
    if isinstance(key, tuple) and len(key) <= 4 and all(isinstance(part, _PLAIN) for part in key):
        return '(' + ', '.join(short_repr(part, 20) for part in key) + (',)' if len(key) == 1 else ')')
    return f'<{type(key).__name__} key>'


def _children(value: Any) -> Iterator[tuple[str, Any]]:
    """(label, child) pairs, at most MAX_CHILDREN, then one ('', _More) pair counting the rest."""
    if isinstance(value, Mapping):
        pairs = ((_key_label(key), child) for key, child in value.items())
    elif isinstance(value, (set, frozenset)):
        pairs = (('{}', child) for child in value)
    else:
        pairs = ((f'[{index}]', child) for index, child in enumerate(value))
    yield from itertools.islice(pairs, MAX_CHILDREN)
    if len(value) > MAX_CHILDREN:
        yield '', _More(len(value) - MAX_CHILDREN)


class _More:
    """Stands for the entries of a container beyond MAX_CHILDREN."""

    def __init__(self, count: int) -> None:
        self.count = count


def tree_lines(obj: Any, max_level: int, show_data: bool, name: str = '') -> Iterator[str]:
    """Yield one line per entry: indentation by depth, the key, its type, shape and (optionally) first values.

    Args:
        obj: what the file held.
        max_level: how many levels below the top to list.
        show_data: add the first values of tensors, arrays and lists of plain values.
        name: the label of the top line (the file name).

    Yields:
        Lines without a newline; each bounded in length, each container expanded at most once.
    """
    shown_at: dict[int, int] = {}  # id of a container -> the line that expanded it (obj keeps every id alive)
    line_number = 0
    stack: list[Iterator[tuple[str, Any]]] = [iter([(name, obj)])]
    while stack:
        entry = next(stack[-1], None)
        if entry is None:
            stack.pop()
            continue
        level = len(stack) - 1
        label, value = entry
        prefix = _INDENT * level + (f'{label}: ' if label else '')
        line_number += 1
        if isinstance(value, _More):
            yield f'{_INDENT * level}... {value.count} more'
        elif not _is_container(value):
            yield prefix + _describe_leaf(value, show_data)
        elif id(value) in shown_at:
            yield f'{prefix}{_header(value)}, the same object as line {shown_at[id(value)]}'
        elif _is_plain_list(value):
            data = ''
            if show_data:
                data = ' = [' + ', '.join(short_repr(item, 24) for item in itertools.islice(value, _LIST_VALUES))
                data += ', ...]' if len(value) > _LIST_VALUES else ']'
            yield prefix + _header(value) + data
        else:
            shown_at[id(value)] = line_number
            yield prefix + _header(value)
            if level < max_level:
                stack.append(_children(value))
