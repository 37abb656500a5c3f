"""Which bytes `torch.load` will read from a file: its format, told as torch tells it, and the zip members.

The pre-scan must walk exactly the pickles torch unpickles, so it decides as torch 2.x does
(`torch.serialization.load`):

- **zip** when the first four bytes are a zip local header (`_is_zipfile`); `zipfile.is_zipfile`
  also accepts a zip appended to other bytes, which torch then reads as an old-format pickle;
- otherwise torch first tries its **tar** format (before 0.4) and, failing that, the **old pickle
  stream** (before 1.6).

In a zip, torch's reader (miniz) looks a record up as `<first entry's folder>/<name>`, ignoring
case, at the central-directory offset the end record gives. Python's `zipfile` instead reads the
directory that ends where the end record starts. The two agree only for an archive laid out as
`torch.save` writes it: the end record last (no comment), the directory right before it. Anything
else is refused, so that the members walked here are the members torch reads.
"""

from __future__ import annotations

import struct
import tarfile
import zipfile
from typing import IO

__all__ = ['ZIP_MAGIC', 'LayoutError', 'starts_as_zip', 'is_torch_tar', 'check_zip_layout', 'pickle_members']

ZIP_MAGIC = b'PK\x03\x04'  # what torch.serialization._is_zipfile compares, at offset 0 and nowhere else
_END = struct.Struct('<4s4H2LH')  # end of central directory: signature, disks, entries, size, offset, comment
_END64_LOCATOR = struct.Struct('<4sLQL')
_END64 = struct.Struct('<4sQ2H2L4Q')


class LayoutError(ValueError):
    """The file is not laid out as torch writes it, so another reader could see other bytes."""


def starts_as_zip(stream: IO[bytes]) -> bool:
    """torch's own test: the first four bytes are a zip local header."""
    stream.seek(0)
    magic = stream.read(len(ZIP_MAGIC))
    stream.seek(0)
    return magic == ZIP_MAGIC


def is_torch_tar(stream: IO[bytes]) -> bool:
    """Whether torch would read the file as its tar format (its first attempt for a file that is no zip)."""
    stream.seek(0)
    try:
        with tarfile.open(fileobj=stream, mode='r:', format=tarfile.PAX_FORMAT):
            return True
    except (tarfile.TarError, EOFError, OSError, ValueError, UnicodeDecodeError):
        return False
    finally:
        stream.seek(0)


def _directory_offset(stream: IO[bytes], size: int) -> tuple[int, int]:
    """(offset of the central directory, entries) as the end record at the very end of the file says."""
    if size < _END.size:
        raise LayoutError('too short for a zip archive')
    stream.seek(size - _END.size)
    signature, _, _, _, entries, _, offset, comment = _END.unpack(stream.read(_END.size))
    if signature != b'PK\x05\x06' or comment:
        raise LayoutError('its zip end record is not the last bytes of the file (torch.save writes it last)')
    if offset != 0xFFFFFFFF and entries != 0xFFFF:
        return offset, entries
    locator_at = size - _END.size - _END64_LOCATOR.size
    if locator_at < 0:
        raise LayoutError('a zip64 end record without its locator')
    stream.seek(locator_at)
    signature, _, end64_at, _ = _END64_LOCATOR.unpack(stream.read(_END64_LOCATOR.size))
    if signature != b'PK\x06\x07' or end64_at + _END64.size > locator_at:
        raise LayoutError('a zip64 end record without its locator')
    stream.seek(end64_at)
    fields = _END64.unpack(stream.read(_END64.size))
    if fields[0] != b'PK\x06\x06':
        raise LayoutError('a zip64 locator pointing at no zip64 end record')
    return fields[9], fields[7]


def check_zip_layout(stream: IO[bytes], archive: zipfile.ZipFile, size: int) -> None:
    """Refuse an archive whose central directory torch's reader would find somewhere other than `zipfile` does.

    Args:
        stream: the file, opened for reading.
        archive: `zipfile`'s view of it.
        size: the file's size in bytes.
    """
    offset, entries = _directory_offset(stream, size)
    if archive.start_dir != offset:  # zipfile read the directory before the end record; miniz reads it here
        raise LayoutError('its zip central directory is not where its end record says (a second directory?)')
    if len(archive.infolist()) != entries:
        raise LayoutError(f'its zip end record counts {entries} entries, the directory holds '
                          f'{len(archive.infolist())}')


def pickle_members(archive: zipfile.ZipFile) -> list[zipfile.ZipInfo]:
    """Every member torch may unpickle: `data.pkl` (or `constants.pkl`) is looked up ignoring case, under
    whatever folder the first entry names, so every member ending in `.pkl` in any case is one."""
    return [entry for entry in archive.infolist() if entry.filename.lower().endswith('.pkl')]
