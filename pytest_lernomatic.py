"""pytest plugin: with LERNOMATIC_PATH set, `lernomatic` is this project's package before any test imports it.

Run from an old checkout's root (`pytest` with the root as rootdir, `python -m pytest`), the root stands
on `sys.path` in front of this project, so the checkout's own `lernomatic/` folder would be imported as
`lernomatic`: a namespace package when it has no `__init__.py` (Python's path finder answers before an
editable install's finder is asked), or a regular package ahead of site-packages. Every test would then
run the checkout's old trainer. pytest imports this plugin from its `pytest11` entry point, installed
with the package (editable or not), and calls the hook below before it loads any conftest or test
module; the hook imports this project's packages from the files beside this one, so `import lernomatic`
finds them in `sys.modules` wherever the root stands on `sys.path`, and LERNOMATIC_PATH adds the
checkout's own modules behind them (`lernomatic.legacy_path`).

A plugin rather than a `.pth` file: it runs only under pytest, only with LERNOMATIC_PATH set, and
binds two names instead of reordering `sys.path` for every Python process of the environment.
Without LERNOMATIC_PATH it does nothing, so the original's own tests can still be run against the
original. `-p no:lernomatic` turns it off. It lives outside both packages because importing anything
under `lernomatic` first would be exactly the import it has to get right.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

__all__ = ['pytest_load_initial_conftests']

_HERE = Path(__file__).resolve().parent
_PACKAGES = ('compat', 'lernomatic')  # compat first: lernomatic's __init__ imports it


def _import_from_here(name: str) -> None:
    """Import this project's package `name` from its folder beside this file, unless already imported."""
    if name in sys.modules:
        return
    folder = _HERE / name
    spec = importlib.util.spec_from_file_location(name, folder / '__init__.py',
                                                  submodule_search_locations=[str(folder)])
    if spec is None or spec.loader is None:
        raise ImportError(f"this project's package {name!r} is missing beside {__file__}: "
                          'reinstall lernomatic-lightning')
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise


def pytest_load_initial_conftests(early_config: object, parser: object, args: list[str]) -> None:
    """Before the first conftest: with LERNOMATIC_PATH set, bind `compat` and `lernomatic` to this project's."""
    if os.environ.get('LERNOMATIC_PATH'):
        for name in _PACKAGES:
            _import_from_here(name)
