"""The rooms of the house and the arrows between them, read from the source (nothing is imported).

`compat` is the engine and never imports `lernomatic` (the API over it); inside `compat`, the
layers point one way: `state` (what a run keeps) below `codec` (files) and `loop` (Lightning);
and no module imports itself back through others (a cycle makes import order matter).
"""

from __future__ import annotations

import ast
from pathlib import Path

from conftest import REPO

PACKAGES = ('compat', 'lernomatic')
# (importer, imported) pairs of package prefixes: arrows that would point the wrong way
FORBIDDEN = [('compat', 'lernomatic'), ('compat.state', 'compat.codec'), ('compat.state', 'compat.loop'),
             ('compat.codec', 'compat.loop')]


def import_graph(root: Path) -> dict[str, set[str]]:
    """Each project module under `root` and the project modules it imports (TYPE_CHECKING ones too)."""
    modules = {}
    for package in PACKAGES:
        for path in (root / package).rglob('*.py'):
            modules['.'.join(path.relative_to(root).with_suffix('').parts).removesuffix('.__init__')] = path
    graph = {}
    for name, path in modules.items():
        named = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                named.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                named.add(node.module)
                named.update(f'{node.module}.{alias.name}' for alias in node.names)
        graph[name] = {other for other in named if other in modules and other != name}
    return graph


def _under(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + '.')


def upward_arrows(graph: dict[str, set[str]]) -> list[tuple[str, str]]:
    return sorted((importer, imported) for importer, targets in graph.items() for imported in targets
                  for high, low in FORBIDDEN if _under(importer, high) and _under(imported, low))


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle through each module that lies on one (depth-first, white/grey/black)."""
    colour: dict[str, str] = {}
    found: list[list[str]] = []

    def visit(name: str, path: list[str]) -> None:
        colour[name] = 'grey'
        for following in sorted(graph[name]):
            if colour.get(following) == 'grey':
                found.append(path[path.index(following):] + [following])
            elif following not in colour:
                visit(following, path + [following])
        colour[name] = 'black'

    for name in sorted(graph):
        if name not in colour:
            visit(name, [name])
    return found


def test_no_arrow_points_up():
    assert upward_arrows(import_graph(REPO)) == []


def test_the_import_graph_has_no_cycle():
    assert cycles(import_graph(REPO)) == []


def test_the_checks_see_a_planted_cycle_and_an_upward_arrow(tmp_path):
    for folder, text in {'compat/state': 'from compat.codec.b import x\n', 'compat/codec': 'import compat.state.a\n',
                         'lernomatic': ''}.items():
        (tmp_path / folder).mkdir(parents=True, exist_ok=True)
        (tmp_path / folder / ('a.py' if folder.endswith('state') else 'b.py')).write_text(text)
    graph = import_graph(tmp_path)
    assert upward_arrows(graph) == [('compat.state.a', 'compat.codec.b')]
    assert cycles(graph) == [['compat.codec.b', 'compat.state.a', 'compat.codec.b']]
