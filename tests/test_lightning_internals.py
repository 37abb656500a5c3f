"""Lightning's private surface is touched in one module only, and only on Lightning versions it was verified on."""

from __future__ import annotations

import ast
import io
import re
import tokenize
from pathlib import Path

import lightning

from compat import lightning_internals
from compat.lightning_internals import PRIVATE_NAMES, VERIFIED_LIGHTNING, check_lightning_version

from conftest import REPO

SEAM = REPO / 'compat' / 'lightning_internals.py'


def code_names(path: Path) -> set[str]:
    """Every identifier in a file's code, and every string literal that is one name (for getattr-style use)."""
    names = set()
    for token in tokenize.generate_tokens(io.StringIO(path.read_text()).readline):
        if token.type == tokenize.NAME:
            names.add(token.string)
        elif token.type == tokenize.STRING and re.fullmatch(r"[rbu]?(['\"])_?\w+\1", token.string):
            names.add(ast.literal_eval(token.string))
    return names


def sources() -> list[Path]:
    return sorted(p for folder in ('compat', 'lernomatic') for p in (REPO / folder).rglob('*.py'))


def test_private_lightning_names_appear_in_the_seam_only():
    offenders = {str(p.relative_to(REPO)): sorted(code_names(p) & set(PRIVATE_NAMES)) for p in sources() if p != SEAM}
    assert {path: names for path, names in offenders.items() if names} == {}


def test_every_listed_private_name_is_used_by_the_seam():
    assert set(PRIVATE_NAMES) <= code_names(SEAM)


def test_no_module_imports_a_private_lightning_module():
    private_import = re.compile(r'^\s*(from|import)\s+(lightning|pytorch_lightning)(\.\w+)*\._\w*', re.M)
    assert [str(p.relative_to(REPO)) for p in sources() if private_import.search(p.read_text())] == []


def test_installed_lightning_was_verified():
    minor = lambda version: tuple(int(part) for part in version.split('.')[:2])  # noqa: E731
    assert minor(lightning.__version__) in {minor(v) for v in VERIFIED_LIGHTNING}, lightning.__version__
    assert check_lightning_version() is None


def test_pyproject_range_is_the_verified_range():
    text = (REPO / 'pyproject.toml').read_text()
    low, high = re.search(r'"lightning>=(\d+\.\d+),<(\d+\.\d+)"', text).groups()
    oldest, newest = min(VERIFIED_LIGHTNING), max(VERIFIED_LIGHTNING, key=lambda v: tuple(map(int, v.split('.'))))
    assert low == '.'.join(oldest.split('.')[:2])
    major, minor = map(int, newest.split('.')[:2])
    assert high == f'{major}.{minor + 1}'


def test_the_seam_says_why_for_each_use():
    for name in lightning_internals.__all__:
        item = getattr(lightning_internals, name)
        if callable(item) and name != 'check_lightning_version':
            assert 'Why:' in (item.__doc__ or '') and 'replacement' in item.__doc__, name
