"""An old Lernomatic checkout beside this package: its modules importable as `lernomatic.*`, ours winning.

Old code lives in a Lernomatic tree: its own models (`lernomatic.models.my_net`), trainers
(`lernomatic.train.gan.my_trainer`), utilities (`lernomatic.util.z`). With
`LERNOMATIC_PATH=/path/to/old/checkout` (several joined by `os.pathsep`), or
`lernomatic.extend_path(path)`, every module of that tree imports under its old name, new
subpackages included, while the modules this project provides (`lernomatic.models.common`,
`lernomatic.train.trainer`, ...) win: a finder placed after Python's own looks in the tree only for
what this package does not have. Those modules count as trusted for checkpoint loading (they are
under `lernomatic`), so old checkpoints that name them load.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import logging
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

__all__ = ['LEGACY_PATH_ENV', 'extend_path', 'legacy_roots', 'environment_entries', 'install_from_environment',
           'ModuleReport', 'legacy_modules']

LEGACY_PATH_ENV = 'LERNOMATIC_PATH'
_PACKAGE = 'lernomatic'
_OURS = Path(__file__).resolve().parent

log = logging.getLogger('lernomatic.legacy_path')


class _LegacyTreeFinder(importlib.abc.MetaPathFinder):
    """Finds `lernomatic.x.y` in the legacy trees when nothing before it on `sys.meta_path` did."""

    def __init__(self) -> None:
        self.roots: list[Path] = []  # each a legacy 'lernomatic' package folder
        self.refused: list[str] = []  # why each LERNOMATIC_PATH entry that names no checkout was left out
        self.refusal_said = False

    def find_spec(self, fullname: str, path: Sequence[str] | None = None,
                  target: ModuleType | None = None) -> importlib.machinery.ModuleSpec | None:
        if not fullname.startswith(_PACKAGE + '.'):
            return None
        parts = fullname.split('.')[1:]
        for root in self.roots:
            base = root.joinpath(*parts)
            package_init = base / '__init__.py'
            if package_init.is_file():
                return importlib.util.spec_from_file_location(fullname, package_init,
                                                              submodule_search_locations=[str(base)])
            module_file = base.with_name(base.name + '.py')
            if module_file.is_file():
                return importlib.util.spec_from_file_location(fullname, module_file)
            if base.is_dir():  # a folder without __init__.py: a namespace package, as Python 3 allows
                spec = importlib.machinery.ModuleSpec(fullname, None, is_package=True)
                spec.submodule_search_locations = [str(base)]
                return spec
        self._say_refused()
        return None

    def _say_refused(self) -> None:
        """Warn, once, of the entries left out: said when an import under lernomatic finds nothing, where it matters."""
        if self.refused and not self.refusal_said:
            self.refusal_said = True
            for message in self.refused:
                log.warning('%s', message)


_FINDER = _LegacyTreeFinder()


def _package_folder(path: str | os.PathLike, source: str, fix: str) -> Path:
    """The legacy 'lernomatic' package folder of a checkout (or the folder itself when it is one).

    Args:
        path: what the user gave.
        source: how the error names it (`LERNOMATIC_PATH entry`, `extend_path()`).
        fix: the end of the error, saying what to give instead.
    """
    given = Path(path).expanduser()
    if not given.exists():
        problem = 'does not exist'
    elif not given.is_dir():
        problem = 'is not a folder'
    else:
        problem = 'holds no lernomatic/ folder'
        given = given.resolve()
        for candidate in (given / _PACKAGE, given):
            if candidate == _OURS:
                problem = 'is this project (lernomatic-lightning), not an old checkout'
                break
            if candidate.name == _PACKAGE and candidate.is_dir():
                return candidate
    raise ValueError(f'{source} {os.fspath(path)!r} {problem}: {fix}')


def environment_entries(value: str) -> tuple[list[Path], list[str]]:
    """The legacy package folders a LERNOMATIC_PATH value names, and one message per entry that names none.

    Args:
        value: the variable's value, entries joined by `os.pathsep` (empty entries are skipped).

    Returns:
        The folders, in order, and for each refused entry a line naming it and the fix.
    """
    fix = (f'set {LEGACY_PATH_ENV} to the root of an old Lernomatic checkout (the folder that holds lernomatic/), '
           f'several joined by {os.pathsep!r}')
    folders, problems = [], []
    for entry in filter(None, value.split(os.pathsep)):
        try:
            folders.append(_package_folder(entry, f'{LEGACY_PATH_ENV} entry', fix))
        except ValueError as error:
            problems.append(str(error))
    return folders, problems


def extend_path(path: str | os.PathLike) -> Path:
    """Make the modules of the old Lernomatic checkout at `path` importable under `lernomatic.*`.

    Args:
        path: the checkout's root (holding `lernomatic/`), or its `lernomatic/` folder.

    Returns:
        The legacy `lernomatic` package folder now searched.
    """
    from compat.codec.trust import allow_module_root

    folder = _package_folder(path, 'extend_path()', 'give the root of an old Lernomatic checkout (the folder '
                             'that holds lernomatic/)')
    if folder not in _FINDER.roots:
        _FINDER.roots.append(folder)
        allow_module_root(folder.parent)
    if _FINDER not in sys.meta_path:
        sys.meta_path.append(_FINDER)  # after Python's own finders: this package's modules win
    importlib.invalidate_caches()
    return folder


def legacy_roots() -> list[Path]:
    """The legacy `lernomatic` package folders searched, in order."""
    return list(_FINDER.roots)


def install_from_environment() -> None:
    """Add every entry of LERNOMATIC_PATH. An entry that names no checkout is not fatal: it is said in a
    warning when an import under `lernomatic` finds nothing (the failure it explains), and by `lernomatic doctor`."""
    folders, problems = environment_entries(os.environ.get(LEGACY_PATH_ENV, ''))
    for folder in folders:
        extend_path(folder)
    _FINDER.refused.extend(problems)
    if problems and _FINDER not in sys.meta_path:
        sys.meta_path.append(_FINDER)


@dataclass(frozen=True)
class ModuleReport:
    """One module of a legacy tree and what becomes of it here.

    Attributes:
        name: its dotted name (`lernomatic.models.my_net`).
        source: its file in the legacy tree.
        status: 'tree' (imported from the legacy tree), 'replaced' (this project provides it),
            or 'fails' (importing it raised).
        detail: for 'replaced', the file that is used; for 'fails', the error.
    """

    name: str
    source: Path
    status: str
    detail: str = ''


def _module_name(root: Path, file: Path) -> str:
    parts = list(file.relative_to(root).with_suffix('').parts)
    if parts[-1] == '__init__':
        parts = parts[:-1]
    return '.'.join([_PACKAGE, *parts])


def _ours(name: str) -> Path | None:
    """This project's own file for module `name`, if it provides one."""
    relative = Path(*name.split('.')[1:]) if '.' in name else Path()
    for candidate in (_OURS / relative / '__init__.py', _OURS.joinpath(relative).with_suffix('.py')):
        if relative.parts and candidate.is_file():
            return candidate
    return None


def legacy_modules(do_import: bool = True) -> list[ModuleReport]:
    """Every module of the legacy trees: taken from the tree, replaced by this project, or failing (and why).

    Args:
        do_import: import each module from the tree to see whether it works (runs its top-level code).
    """
    reports = []
    for root in legacy_roots():
        for file in sorted(root.rglob('*.py')):
            if '__pycache__' in file.parts or file.parent == root and file.name == '__init__.py':
                continue
            name = _module_name(root, file)
            ours = _ours(name)
            if ours is not None:
                reports.append(ModuleReport(name, file, 'replaced', str(ours)))
                continue
            if not do_import:
                reports.append(ModuleReport(name, file, 'tree'))
                continue
            try:
                importlib.import_module(name)
            except BaseException as error:  # a legacy module may even call sys.exit on import
                first_line = (str(error).strip().splitlines() or [''])[0]
                reports.append(ModuleReport(name, file, 'fails', f'{type(error).__name__}: {first_line}'))
            else:
                reports.append(ModuleReport(name, file, 'tree'))
    return reports
