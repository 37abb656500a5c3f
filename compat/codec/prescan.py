"""A linear walk over a `torch.save` file before torch reads it: sizes, nesting and globals within bounds.

Weights-only unpickling refuses code, but not cost: a few kilobytes can hold a zip entry that
inflates to gigabytes, a `bytearray(10**9)`, a list of lists that references itself into an
exponentially large object (its repr or hash never ends), or nesting deep enough to exhaust the
stack. Before `torch.load`, this walk (time linear in the file) refuses:

- zip entries that are compressed (`torch.save` never compresses) or add up to more than the file;
- any global outside the few the Lernomatic formats use (tensors, storages, OrderedDict, numpy);
- an object whose expanded size (every memo reference counted in full) passes `MAX_OBJECTS`;
- nesting deeper than `MAX_DEPTH`;
- a storage claiming more elements than the file could hold;
- a dict key other than a string, bytes, None, a bool or a 64-bit integer, and an OrderedDict built
  from arguments: the time to build a dict is then linear too (no key is costly to hash, no two
  keys can be made to collide).

It walks what torch will read (`compat.codec.torch_layout`): the format is told by the first bytes,
and in a zip every member torch may unpickle (`data.pkl` in any case). Files written by torch's old
(before 1.6) non-zip format are walked too: their pickles come first.
"""

from __future__ import annotations

import io
import os
import pickletools
import re
import struct
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from compat.codec.torch_layout import LayoutError, check_zip_layout, is_torch_tar, pickle_members, starts_as_zip

__all__ = ['prescan', 'PrescanError', 'MAX_OBJECTS', 'MAX_DEPTH', 'ALLOWED_GLOBALS']

MAX_OBJECTS = 10_000_000
_LEGACY_MAGIC = 0x1950a86a20f9469cfc6c  # the first pickle of a file torch saved in its old (before 1.6) format
MAX_DEPTH = 64

# Every global a Lernomatic checkpoint, history file, LR-finder file or adapter .ckpt uses.
ALLOWED_GLOBALS = frozenset({
    'collections.OrderedDict', '_codecs.encode',
    'torch._utils._rebuild_tensor_v2', 'torch._utils._rebuild_tensor_v3',
    'numpy._core.multiarray._reconstruct', 'numpy.core.multiarray._reconstruct',
    'numpy._core.multiarray.scalar', 'numpy.core.multiarray.scalar', 'numpy.ndarray', 'numpy.dtype',
})
_ALLOWED_PATTERNS = (re.compile(r'torch\.\w+Storage'), re.compile(r'numpy\.dtypes\.\w+DType'))
_STORAGE = re.compile(r'torch\.(\w+)Storage')
_ITEM_BYTES = {'Double': 8, 'Float': 4, 'Half': 2, 'BFloat16': 2, 'Long': 8, 'Int': 4, 'Short': 2, 'Char': 1,
               'Byte': 1, 'Bool': 1, 'ComplexFloat': 8, 'ComplexDouble': 16, 'Untyped': 1}
# torch dtypes a tensor rebuild may name (torch.float32 ...): allowed; any other torch attribute is not
_TORCH_DTYPES = frozenset({'float64', 'float32', 'float16', 'bfloat16', 'int64', 'int32', 'int16', 'int8', 'uint8',
                           'bool', 'complex64', 'complex128'})


class PrescanError(ValueError):
    """What is wrong with the file, in a few words."""


@dataclass
class _Item:
    size: int  # objects in it, every memo reference counted in full
    depth: int
    value: Any = None  # strings, small ints and global names, kept for STACK_GLOBAL and storage ids
    key: bool = False  # a string, bytes, None, bool or an integer of 64 bits: hashes in its size, never collides


_MARK = object()
_NEW_CONTAINER = {'EMPTY_LIST', 'EMPTY_DICT', 'EMPTY_TUPLE', 'EMPTY_SET', 'LIST', 'DICT', 'TUPLE', 'TUPLE1',
                  'TUPLE2', 'TUPLE3', 'FROZENSET'}
_INTO_CONTAINER = {'APPEND', 'APPENDS', 'SETITEM', 'SETITEMS', 'ADDITEMS', 'BUILD'}
_CALLS = {'REDUCE', 'NEWOBJ', 'NEWOBJ_EX', 'OBJ', 'INST'}
# What a dict key may be. Every key in these formats is a string or an integer (optimizer state). A tuple key
# costs its whole expansion to hash, and large integers (multiples of 2**61 - 1) or floats can all share one hash,
# making each insertion compare with every key before it: a few KB that never finish unpickling.
_KEY_OPCODES = {'BINUNICODE', 'SHORT_BINUNICODE', 'BINUNICODE8', 'UNICODE', 'BINSTRING', 'SHORT_BINSTRING',
                'STRING', 'BINBYTES', 'SHORT_BINBYTES', 'BINBYTES8', 'NONE', 'NEWTRUE', 'NEWFALSE', 'BININT',
                'BININT1', 'BININT2', 'INT', 'LONG', 'LONG1'}


def _allowed(name: str) -> bool:
    if name in ALLOWED_GLOBALS or _ALLOWED_PATTERNS[0].fullmatch(name) or _ALLOWED_PATTERNS[1].fullmatch(name):
        return True
    return name.startswith('torch.') and name[len('torch.'):] in _TORCH_DTYPES


class _Walk:
    """The unpickler's stack, with sizes and depths instead of objects."""

    def __init__(self, room: int) -> None:
        self.stack: list[Any] = []
        self.memo: dict[int, _Item] = {}
        self.room = room  # bytes a storage may claim

    def push(self, item: _Item) -> None:
        if item.size > MAX_OBJECTS:
            raise PrescanError(f'an object of more than {MAX_OBJECTS:,} parts (with every shared reference counted): '
                               'a file of this format holds far fewer')
        if item.depth > MAX_DEPTH:
            raise PrescanError(f'nested deeper than {MAX_DEPTH} levels')
        self.stack.append(item)

    def pop_to_mark(self) -> list[_Item]:
        items: list[_Item] = []
        while self.stack:
            top = self.stack.pop()
            if top is _MARK:
                return items[::-1]
            items.append(top)
        raise PrescanError('a malformed pickle (no mark)')

    def pop(self, count: int) -> list[_Item]:
        if count > len(self.stack) or any(item is _MARK for item in self.stack[len(self.stack) - count:]):
            raise PrescanError('a malformed pickle (stack underflow)')
        items = self.stack[len(self.stack) - count:] if count else []
        del self.stack[len(self.stack) - count:]
        return items

    def check_global(self, name: str) -> None:
        if not _allowed(name):
            raise PrescanError(f'refused to unpickle {name}: no Lernomatic file holds one, and weights-only loading '
                               'reads only what its allow-list names. Pass trusted=True only if you trust where the '
                               'file came from')

    def check_storage(self, pid: _Item) -> None:
        """('storage', type, key, location, numel, ...): the claimed elements must fit in the file."""
        parts = pid.value if isinstance(pid.value, tuple) else ()
        if len(parts) >= 5 and isinstance(parts[1], str) and isinstance(parts[4], int):
            match = _STORAGE.fullmatch(parts[1])
            item_bytes = _ITEM_BYTES.get(match.group(1), 1) if match else 1
            if parts[4] < 0 or parts[4] * item_bytes > self.room:
                raise PrescanError(f'a storage claims {parts[4]:,} elements, more than the file holds')

    def step(self, name: str, arg: Any, before: list[Any], after: list[Any]) -> None:
        if name == 'STOP':  # the result stays on the stack
            return
        if name == 'MARK':
            self.stack.append(_MARK)
        elif name in ('PUT', 'BINPUT', 'LONG_BINPUT'):
            self.memo[arg] = self._top()
        elif name == 'MEMOIZE':
            self.memo[len(self.memo)] = self._top()
        elif name in ('GET', 'BINGET', 'LONG_BINGET'):
            if arg not in self.memo:
                raise PrescanError('a malformed pickle (memo)')
            self.push(self.memo[arg])
        elif name == 'DUP':
            self.push(self._top())
        elif name == 'POP':
            self.pop(1)
        elif name == 'POP_MARK':
            self.pop_to_mark()
        elif name == 'GLOBAL':
            module, _, attribute = str(arg).partition(' ')
            self.check_global(f'{module}.{attribute}')
            self.push(_Item(1, 0, f'{module}.{attribute}'))
        elif name == 'STACK_GLOBAL':
            module_item, attribute_item = self.pop(2)
            self.check_global(f'{module_item.value}.{attribute_item.value}')
            self.push(_Item(1, 0, f'{module_item.value}.{attribute_item.value}'))
        elif name in ('BINPERSID', 'PERSID'):
            pid = self.pop(1)[0] if name == 'BINPERSID' else _Item(1, 0, arg)
            self.check_storage(pid)
            self.push(_Item(1, 0))
        else:
            self._generic(name, arg, before, after)

    def _top(self) -> _Item:
        if not self.stack or self.stack[-1] is _MARK:
            raise PrescanError('a malformed pickle (empty stack)')
        return self.stack[-1]

    def _generic(self, name: str, arg: Any, before: list[Any], after: list[Any]) -> None:
        marked = pickletools.markobject in before
        children = self.pop_to_mark() if marked else []
        fixed = [entry for entry in before[:before.index(pickletools.markobject)]] if marked else before
        popped = self.pop(len(fixed)) + children
        if not after:
            return
        if name in ('SETITEM', 'SETITEMS') and popped:
            self.check_keys(popped[1::2])
        if name == 'REDUCE' and len(popped) == 2 and popped[0].value == 'collections.OrderedDict' \
                and popped[1].size > 1:  # torch.save calls it with () and then sets items: keys come from SETITEMS
            raise PrescanError('an OrderedDict built from arguments: torch.save never writes one')
        if name in _INTO_CONTAINER and popped:
            container, added = popped[0], popped[1:]
            container.depth = max([container.depth] + [item.depth + 1 for item in added])
            container.size += sum(item.size for item in added)  # in place: the memo holds this object too
            self.push(container)
            return
        deeper = 1 if name in _NEW_CONTAINER or name in _CALLS else 0
        value: Any = arg if isinstance(arg, (str, int)) and not isinstance(arg, bool) else None
        if name in ('TUPLE', 'TUPLE1', 'TUPLE2', 'TUPLE3') and len(popped) <= 8:
            value = tuple(item.value for item in popped)
        key = name in _KEY_OPCODES and (not isinstance(arg, int) or -2 ** 63 <= arg < 2 ** 63)
        self.push(_Item(1 + sum(item.size for item in popped),
                        (max((item.depth for item in popped), default=-1) + 1) if deeper else
                        max((item.depth for item in popped), default=0), value, key))

    @staticmethod
    def check_keys(keys: list[_Item]) -> None:
        if not all(key.key for key in keys):
            raise PrescanError('a dict key that is not a string nor a 64-bit integer: no Lernomatic file has one, '
                               'and such keys can be made to take hours to hash or to insert')


def _walk_pickle(stream: IO[bytes], room: int) -> Any:
    """Walk one pickle; the value of what it unpickles to, where that is a plain int or string (else None)."""
    walk = _Walk(room)
    try:
        for opcode, arg, _ in pickletools.genops(stream):
            walk.step(opcode.name, arg, opcode.stack_before, opcode.stack_after)
        top = walk.stack[-1] if walk.stack else None
        return top.value if isinstance(top, _Item) else None
    except PrescanError:
        raise
    except (ValueError, EOFError, KeyError, IndexError, UnicodeDecodeError) as error:  # "this is no pickle"
        raise PrescanError(f'the file is truncated or not a torch.save file (not a readable pickle: {error})') from None


def _scan_zip(stream: IO[bytes], size: int) -> None:
    with zipfile.ZipFile(stream) as archive:
        check_zip_layout(stream, archive, size)
        entries = archive.infolist()
        if any(entry.compress_type != zipfile.ZIP_STORED for entry in entries):
            raise PrescanError('a compressed zip entry: torch.save never writes one')
        if sum(entry.file_size for entry in entries) > size:
            raise PrescanError('its zip entries claim more bytes than the file has')
        for entry in pickle_members(archive):
            with archive.open(entry) as member:
                _walk_pickle(io.BufferedReader(member), size)  # type: ignore[type-var]  # buffered: genops reads bytewise


def _scan_legacy(stream: IO[bytes], size: int) -> None:
    """torch's old format: magic, protocol, system info, the object, storage keys (then raw storages)."""
    if _walk_pickle(stream, size) != _LEGACY_MAGIC:
        raise PrescanError('not a torch.save file: neither a zip archive nor torch\'s old format (a plain pickle?)')
    for _ in range(4):
        _walk_pickle(stream, size)


def prescan(path: str | os.PathLike) -> None:
    """Walk the pickles torch will read from `path` before it reads them; PrescanError says what is beyond bounds.

    The format is told as torch tells it (`compat.codec.torch_layout`): by the first bytes, never by a zip
    found further in.
    """
    path = Path(path)
    size = path.stat().st_size
    with open(path, 'rb') as stream:
        try:
            if starts_as_zip(stream):
                _scan_zip(stream, size)
            elif is_torch_tar(stream):
                raise PrescanError("torch's tar format (before torch 0.4): no Lernomatic file is one, and torch "
                                   'would unpack it into a temporary folder unchecked')
            else:
                _scan_legacy(stream, size)
        except PrescanError:
            raise
        except LayoutError as error:
            raise PrescanError(f'the file is truncated or not a torch.save file ({error})') from None
        except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, OSError, EOFError, RuntimeError,
                ValueError, struct.error) as error:
            raise PrescanError(f'the file is truncated or not a torch.save file ({type(error).__name__}: '
                               f'{str(error)[:200]})') from None
