"""Whether `import lernomatic` (and `compat`) gives this project's package, or something standing in front of it.

An old checkout holds a `lernomatic/` folder, often without `__init__.py`. A Python started with the
checkout's root first on `sys.path` (`python -m ...` or `python -c` in the root, pytest with the
root as rootdir) imports that folder as `lernomatic`: a namespace package, which Python's own path
finder returns before an editable install's finder is asked, or, with an `__init__.py`, a regular
package ahead of site-packages. Every old module then comes from the checkout, its trainer included.
`lernomatic doctor` asks both what this process imported and what a Python started in a given
folder would import. Under pytest with LERNOMATIC_PATH set this project's plugin (pytest_lernomatic)
imports the packages first, so there the folder does no harm.
"""

from __future__ import annotations

import importlib.machinery
import sys
from collections.abc import Iterable
from pathlib import Path

__all__ = ['PROJECT_PACKAGES', 'shadowed_in_this_process', 'shadowed_when_started_in']

PROJECT_PACKAGES = ('lernomatic', 'compat')
_PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _ours(name: str) -> Path:
    return _PROJECT_ROOT / name / '__init__.py'


def _is_ours(origin: str | None, name: str) -> bool:
    return origin is not None and Path(origin).resolve() == _ours(name)


def _describe(origin: str | None, locations: Iterable[str] | None) -> str:
    """Where a package came from: its file, or for a namespace package its folders."""
    if origin is None or origin == 'namespace':  # Python 3.11 names a namespace package's origin None
        folders = ', '.join(str(folder) for folder in locations or ())
        return f'the folder {folders} (no __init__.py: a namespace package)'
    return origin


def shadowed_in_this_process() -> list[str]:
    """One line per project package this process imported from elsewhere than this project."""
    problems = []
    for name in PROJECT_PACKAGES:
        module = sys.modules.get(name)
        if module is None:
            continue
        origin = getattr(module, '__file__', None)
        if not _is_ours(origin, name):
            where = _describe(origin, getattr(module, '__path__', None))
            problems.append(f"this process imported {name} from {where}, not this project's {_ours(name).parent}: "
                            'run the `lernomatic` command itself, or `python -m lernomatic` from another folder')
    return problems


def shadowed_when_started_in(folder: Path) -> list[str]:
    """One line per project package that a Python started in `folder` (it first on sys.path) would take elsewhere.

    Only Python's own path finder is asked: an editable install's finder comes after it, so anything
    that finder returns other than this project's file stands in front.
    """
    search = list(dict.fromkeys([str(folder), *(entry for entry in sys.path if entry)]))  # each entry once, in order
    problems = []
    for name in PROJECT_PACKAGES:
        spec = importlib.machinery.PathFinder.find_spec(name, search)
        if spec is None or _is_ours(spec.origin, name):
            continue
        hint = ('; pytest there uses this project\'s package while LERNOMATIC_PATH is set (its pytest plugin)'
                if name == 'lernomatic' else '')
        problems.append(f'a Python started in {folder} (python -m, python -c, pytest with it on sys.path) imports '
                        f'{name} from {_describe(spec.origin, spec.submodule_search_locations)}, not this project\'s '
                        f'{_ours(name).parent}: run scripts from another folder{hint}')
    return problems
