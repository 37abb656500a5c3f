"""What a checkpoint may make us import: the trust policy for names read from files.

A Lernomatic checkpoint names the classes that rebuild its model (`model_import_path`,
`model_name`, `module_import_path`, `module_name`). Importing a module runs its top-level code,
so a name read from a stranger's file must never choose what runs. The rule:

- a module already imported by this program may be named (importing it again runs nothing);
- a module that is not imported yet is imported only under a trusted prefix: `lernomatic`
  (this package and a legacy tree put beside it with LERNOMATIC_PATH), the prefixes in the
  LERNOMATIC_TRUSTED_MODULES environment variable, those given to `trust_modules()`, and those a
  loader is given as `trusted_modules=`;
- `trusted=True` (the whole file is trusted) lifts the rule.

Names must be dotted module names (a `.py` suffix is dropped, as the user guide wrote them); relative
names, path separators and `__main__` submodules (importing one runs a program) are refused, and a
module must resolve to a file inside a `sys.path` entry or a lernomatic package folder.
"""

from __future__ import annotations

import contextlib
import contextvars
import importlib
import importlib.util
import os
import re
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from compat.codec.advice import current_advice
from compat.errors import CheckpointError
from compat.text import short_repr

__all__ = ['TRUSTED_MODULES_ENV', 'LoadPolicy', 'check_prefixes', 'trust_modules', 'allow_module_root', 'loading',
           'current_policy', 'module_name', 'class_name', 'import_module', 'resolve_class', 'is_trusted_module']

TRUSTED_MODULES_ENV = 'LERNOMATIC_TRUSTED_MODULES'
ALWAYS_TRUSTED = ('lernomatic',)
MAX_NAME_LENGTH = 200

_DOTTED = re.compile(r'[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*')
_IDENTIFIER = re.compile(r'[A-Za-z_][A-Za-z0-9_]*')
_registered: list[str] = []
_extra_roots: list[Path] = []


@dataclass(frozen=True)
class LoadPolicy:
    """How far the file being loaded is trusted.

    Args:
        source: the file (or what the metadata came from), for error messages.
        trusted: the whole file is trusted: any module may be imported.
        trusted_modules: extra module prefixes trusted for this load.
    """

    source: str = 'model metadata'
    trusted: bool = False
    trusted_modules: tuple[str, ...] = ()

    def prefixes(self) -> tuple[str, ...]:
        """Every trusted prefix: always-trusted, environment, registered, and this load's own."""
        from_env = tuple(p for p in re.split(r'[,:;\s]+', os.environ.get(TRUSTED_MODULES_ENV, '')) if p)
        return ALWAYS_TRUSTED + from_env + tuple(_registered) + self.trusted_modules


_CURRENT: contextvars.ContextVar[LoadPolicy | None] = contextvars.ContextVar('lernomatic_load_policy', default=None)


def check_prefixes(prefixes: Iterable[str], what: str) -> tuple[str, ...]:
    """Module prefixes as a tuple, each checked to be a dotted module name (ValueError naming `what`)."""
    if isinstance(prefixes, str):
        prefixes = [prefixes]
    checked = []
    for prefix in prefixes:
        if not isinstance(prefix, str) or not _DOTTED.fullmatch(prefix):
            raise ValueError(f'{what}: {prefix!r} is not a dotted module name such as "mypackage" or "mypackage.nets"')
        checked.append(prefix)
    return tuple(checked)


def trust_modules(*prefixes: str) -> None:
    """Let checkpoints import modules under these prefixes (your own model packages) in this process."""
    for prefix in check_prefixes(prefixes, 'trust_modules'):
        if prefix not in _registered:
            _registered.append(prefix)


def allow_module_root(folder: str | os.PathLike) -> None:
    """Accept modules found under `folder` (a legacy tree put beside the package) as inside the path."""
    root = Path(folder).resolve()
    if root not in _extra_roots:
        _extra_roots.append(root)


@contextlib.contextmanager
def loading(source: Any, trusted: bool = False, trusted_modules: Iterable[str] | None = None) -> Iterator[LoadPolicy]:
    """The policy that `resolve_class` (and `LernomaticModel.set_params`) apply while a file is loaded."""
    policy = LoadPolicy(str(source), bool(trusted), check_prefixes(trusted_modules or (), 'trusted_modules'))
    token = _CURRENT.set(policy)
    try:
        yield policy
    finally:
        _CURRENT.reset(token)


def current_policy() -> LoadPolicy:
    """The policy of the load in progress, or the default (nothing trusted beyond the prefixes)."""
    return _CURRENT.get() or LoadPolicy()


def _refuse(policy: LoadPolicy, field: str, value: Any, reason: str) -> CheckpointError:
    return CheckpointError(f'{policy.source}: {field} = {_short(value)}: {reason}')


def _short(value: Any) -> str:
    return short_repr(value, 120)  # never repr() a file's value in full: a shared-reference value is huge


def module_name(value: Any, field: str, policy: LoadPolicy | None = None) -> str:
    """The module a stored import path names, or a CheckpointError saying why it is not one."""
    policy = policy or current_policy()
    if not isinstance(value, str):
        raise _refuse(policy, field, value, f'a module path must be a string, not {type(value).__name__}')
    name = value[:-3] if value.endswith('.py') else value
    if len(name) > MAX_NAME_LENGTH:
        raise _refuse(policy, field, value, f'a module path longer than {MAX_NAME_LENGTH} characters')
    if '/' in name or '\\' in name:
        raise _refuse(policy, field, value, 'path separators: a checkpoint names a module, never a file')
    if name.startswith('.'):
        raise _refuse(policy, field, value, 'a relative module name: checkpoints name modules absolutely')
    if not _DOTTED.fullmatch(name):
        raise _refuse(policy, field, value, 'not a dotted module name')
    if name != '__main__' and '__main__' in name.split('.'):
        raise _refuse(policy, field, value, 'a __main__ module runs a program when it is imported')
    if any(part.startswith('__') and part.endswith('__') for part in name.split('.')[1:]):
        raise _refuse(policy, field, value, f'{name.rsplit(".", 1)[-1]} is a package file, not a module: '
                      'importing it runs the package again as a second module')
    return name


def class_name(value: Any, field: str, policy: LoadPolicy | None = None) -> str:
    """A stored class name, checked to be a plain identifier (no dunder names)."""
    policy = policy or current_policy()
    if not isinstance(value, str) or not _IDENTIFIER.fullmatch(value) or len(value) > MAX_NAME_LENGTH:
        raise _refuse(policy, field, value, 'not a class name')
    if value.startswith('__') and value.endswith('__'):
        raise _refuse(policy, field, value, 'a special (dunder) name is not a class a checkpoint may name')
    return value


def is_trusted_module(name: str, policy: LoadPolicy | None = None) -> bool:
    """Whether `name` lies under a trusted prefix ('pkg' covers 'pkg' and 'pkg.x', not 'pkgx')."""
    policy = policy or current_policy()
    return policy.trusted or any(name == p or name.startswith(p + '.') for p in policy.prefixes())


def _allowed_roots() -> list[Path]:
    """Where an imported module's file may lie: `sys.path` entries and lernomatic's package folders."""
    roots = [Path(entry or os.getcwd()).resolve() for entry in sys.path if isinstance(entry, str)]
    package = sys.modules.get('lernomatic')
    for folder in list(getattr(package, '__path__', [])):
        roots.append(Path(folder).resolve().parent)
    return roots + _extra_roots


def _inside_allowed_roots(origin: str) -> bool:
    path = Path(origin).resolve()
    return any(path.is_relative_to(root) for root in _allowed_roots())


def _findable(top: str) -> bool:
    """Whether a top-level module can be found on the path (searching runs no module's code: it has no parent)."""
    try:
        return importlib.util.find_spec(top) is not None
    except (ImportError, ValueError):
        return False


def import_module(name: str, field: str, policy: LoadPolicy | None = None, stored: Any = None) -> ModuleType:
    """Import `name` if the policy allows it: already imported, under a trusted prefix, or a trusted file.

    Args:
        name: the module (`module_name` of the stored value).
        field: where the file names it, for errors.
        policy: the load's policy (default: the current one).
        stored: the value as the file holds it (`'pkg.nets.py'`), quoted in errors; default `name`.
    """
    policy = policy or current_policy()
    shown = name if stored is None else stored
    loaded = sys.modules.get(name)
    if loaded is not None:
        return loaded
    top = name.split('.')[0]
    advice = current_advice()
    if not is_trusted_module(name, policy):
        missing = '' if _findable(top) else f'; it is not found either: {advice.find_module.format(top=top)}'
        raise _refuse(policy, field, shown,
                      f'loading would import module {name!r}, which this program has not imported and which is not '
                      f'trusted. Trust it (only for code you trust): {advice.trust_module.format(top=top)}{missing}')
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError) as error:
        raise _refuse(policy, field, shown, f'cannot import module {name!r}: {error}; '
                      f'{advice.find_module.format(top=top)}') from error
    if spec is None:
        raise _refuse(policy, field, shown, f'cannot import module {name!r}: no such module; '
                      f'{advice.find_module.format(top=top)}')
    if not policy.trusted and spec.has_location and spec.origin and not _inside_allowed_roots(spec.origin):
        raise _refuse(policy, field, shown, f'module {name!r} resolves to {spec.origin}, outside every sys.path entry')
    try:
        return importlib.import_module(name)
    except Exception as error:  # the user's module failed while importing: say which and why
        raise _refuse(policy, field, shown,
                      f'importing module {name!r} failed: {type(error).__name__}: {error}') from error


def resolve_class(module_value: Any, module_field: str, class_value: Any, class_field: str, base: type,
                  policy: LoadPolicy | None = None) -> type:
    """The class a checkpoint names, checked to be a subclass of `base` before anything calls it.

    The class is looked up in the module's own namespace (no module `__getattr__`, which may import).
    """
    policy = policy or current_policy()
    module = import_module(module_name(module_value, module_field, policy), module_field, policy, stored=module_value)
    name = class_name(class_value, class_field, policy)
    found = vars(module).get(name)
    if found is None:
        raise _refuse(policy, class_field, name, f'module {module.__name__!r} has no {name!r}')
    if not isinstance(found, type) or not issubclass(found, base):
        kind = type(found).__name__ if not isinstance(found, type) else f'class {found.__module__}.{found.__name__}'
        raise _refuse(policy, class_field, name, f'{module.__name__}.{name} is a {kind}, not a subclass of '
                      f'{base.__module__}.{base.__qualname__}: refused before calling it')
    return found
