"""podium's layers, enforced by reading the source with `ast` (nothing is imported).

The layers, bottom up:

- `podium.errors` imports nothing of podium;
- `podium.core` imports nothing of podium but `podium.errors`;
- stores and models never import runtime, patterns or agents;
- patterns never import stores (a pattern reaches state through the run context);
- runtime never imports a pattern (it runs any agent and knows none);
- governance (rules, verdicts, hashes) imports only core and errors;
- no import cycle between podium's parts (the subpackages, plus the top-level modules
  `errors` and the package `podium` itself): a part that imports another may not be
  imported back by it, directly or around a longer loop.

What counts as an import: every `import podium...` and `from podium... import`, and every
relative import (resolved against the module it is in), wherever it is written. An import
inside a function counts: deferring it changes when the module loads, not what depends on
what. An import under `if TYPE_CHECKING:` counts too: the type checker follows it, and a
type named from a layer above is a dependency on that layer. Where a rule must bend, the
import is listed in `EXEMPT` below with the reason; an exemption that no longer matches an
import fails the test, so the list cannot go stale.

`podium/__init__.py` is the composition root: it may import every part (it wires the
public API and plugs the YAML loader into target loading), but no part imports it.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / "src"
ROOT = SRC / "podium"

# (importing module, imported module) -> why the rule bends for it.
EXEMPT: dict[tuple[str, str], str] = {
    ("podium.errors", "podium.core.records"): (
        "type hints only (under TYPE_CHECKING): errors that carry the tokens a failed call "
        "used name `Usage`; errors and core are one bottom layer, and no code runs across it"
    ),
}


@dataclass(frozen=True)
class Import:
    module: str  # the importing module, e.g. podium.runtime.door
    target: str  # the imported module (or module.name for `from pkg import name`)
    line: int
    how: str  # "", "in a function", "under TYPE_CHECKING" (for messages)

    def __str__(self) -> str:
        where = f" ({self.how})" if self.how else ""
        return f"{self.module} line {self.line}: imports {self.target}{where}"


def _module_name(path: Path) -> tuple[str, bool]:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    is_package = parts[-1] == "__init__"
    if is_package:
        parts = parts[:-1]
    return ".".join(parts), is_package


def _imports_of(path: Path) -> Iterator[Import]:
    module, is_package = _module_name(path)
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    yield from _walk(tree, module, is_package, ())


def _walk(node: ast.AST, module: str, is_package: bool, how: tuple[str, ...]) -> Iterator[Import]:
    for child in ast.iter_child_nodes(node):
        inner = how
        if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            inner = (*how, "in a function")
        if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
            # only the body is type-checking-only; the else branch runs
            for stmt in child.body:
                yield from _found(stmt, module, is_package, (*how, "under TYPE_CHECKING"))
                yield from _walk(stmt, module, is_package, (*how, "under TYPE_CHECKING"))
            for stmt in child.orelse:
                yield from _found(stmt, module, is_package, how)
                yield from _walk(stmt, module, is_package, how)
            continue
        yield from _found(child, module, is_package, how)
        yield from _walk(child, module, is_package, inner)


def _found(node: ast.AST, module: str, is_package: bool, how: tuple[str, ...]) -> Iterator[Import]:
    label = ", ".join(dict.fromkeys(how))
    if isinstance(node, ast.Import):
        for alias in node.names:
            yield Import(module, alias.name, node.lineno, label)
    elif isinstance(node, ast.ImportFrom):
        if node.level:  # relative: from the module's own package, up level-1 packages
            base = module.split(".") if is_package else module.split(".")[:-1]
            base = base[: len(base) - (node.level - 1)]
            anchor = ".".join([*base, node.module] if node.module else base)
        else:
            anchor = node.module or ""
        for alias in node.names:  # `from pkg import x`: x may be a module of pkg
            sub = f"{anchor}.{alias.name}"
            yield Import(
                module, sub if _is_module(sub) or not node.module else anchor, node.lineno, label
            )


def _is_module(name: str) -> bool:
    where = SRC.joinpath(*name.split("."))
    return where.with_suffix(".py").exists() or (where / "__init__.py").exists()


def _all_imports() -> list[Import]:
    found = []
    for path in sorted(ROOT.rglob("*.py")):
        found += [i for i in _imports_of(path) if i.target.split(".")[0] == "podium"]
    return found


IMPORTS = _all_imports()


def _part(name: str) -> str:
    """The part of podium a module belongs to: its subpackage, `errors`, or `podium`."""
    pieces = name.split(".")
    return pieces[1] if len(pieces) > 1 else "podium"


def _exempt(i: Import) -> bool:
    return any(
        i.module == mod and (i.target == tgt or i.target.startswith(tgt + "."))
        for mod, tgt in EXEMPT
    )


def _breaking(importer: set[str], forbidden: set[str]) -> list[str]:
    return [
        str(i)
        for i in IMPORTS
        if _part(i.module) in importer and _part(i.target) in forbidden and not _exempt(i)
    ]


PARTS = {p.name for p in ROOT.iterdir() if p.is_dir() and (p / "__init__.py").exists()}


def test_the_reader_sees_the_imports_that_exist() -> None:
    """The rules below mean something only if the reader finds imports of every kind."""
    assert {"core", "runtime", "stores", "models", "patterns", "agents"} <= PARTS
    hows = {i.how for i in IMPORTS}
    assert "in a function" in hows and "under TYPE_CHECKING" in hows
    relative = [p for p in ROOT.rglob("*.py") if "from ." in p.read_text(encoding="utf-8")]
    for path in relative:  # each relative import resolves to a module that exists
        for i in _imports_of(path):
            if not i.target.startswith("podium"):
                continue
            where = SRC.joinpath(*i.target.split("."))
            parent = where.parent
            assert (
                where.with_suffix(".py").exists()
                or (where / "__init__.py").exists()
                or parent.with_suffix(".py").exists()
                or (parent / "__init__.py").exists()
            ), f"{i}: resolved to nothing"


def test_the_reader_resolves_relative_imports() -> None:
    tree = ast.parse(
        "from . import context\nfrom ..core import serde\nfrom .cache import Cache\n"
        "from ..errors import PodiumError\nfrom .. import errors\n"
    )
    inside = [i.target for i in _walk(tree, "podium.runtime.door", False, ())]
    assert inside == [
        "podium.runtime.context",
        "podium.core.serde",
        "podium.runtime.cache",
        "podium.errors",
        "podium.errors",
    ]
    package = [i.target for i in _walk(ast.parse("from . import door"), "podium.runtime", True, ())]
    assert package == ["podium.runtime.door"]
    nested = ast.parse(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import podium.a\n"
        "else:\n    import podium.b\ndef f():\n    from podium import c\n"
    )
    hows = {i.target: i.how for i in _walk(nested, "podium.x", False, ())}
    assert hows == {
        "typing": "",
        "podium.a": "under TYPE_CHECKING",
        "podium.b": "",
        "podium": "in a function",
    }


def test_errors_import_nothing_of_podium() -> None:
    bad = _breaking({"errors"}, PARTS | {"podium"})
    assert not bad, "podium.errors is the bottom layer:\n" + "\n".join(bad)


def test_core_imports_nothing_of_podium_but_errors() -> None:
    bad = _breaking({"core"}, (PARTS | {"podium"}) - {"core"})
    assert not bad, "podium.core may import only podium.errors:\n" + "\n".join(bad)


def test_governance_is_pure_rules_over_core() -> None:
    """Governance (policy, taint, guardrails, audit, PII) decides; the runtime wires it into
    the door. So it may import core and errors only, never the runtime or what is above."""
    bad = _breaking({"governance"}, (PARTS | {"podium"}) - {"core", "governance"})
    assert not bad, "podium.governance may import only core and errors:\n" + "\n".join(bad)


@pytest.mark.parametrize("low", ["stores", "models"])
def test_stores_and_models_stay_below_the_runtime(low: str) -> None:
    bad = _breaking({low}, {"runtime", "patterns", "agents"})
    assert not bad, f"podium.{low} may not import runtime, patterns or agents:\n" + "\n".join(bad)


def test_governance_is_pure_logic() -> None:
    """Rules, verdicts, detectors, labels: podium.governance imports only core and errors;
    the runtime wires them into the door."""
    bad = _breaking({"governance"}, (PARTS | {"podium"}) - {"governance", "core", "errors"})
    assert not bad, "podium.governance may import only core and errors:\n" + "\n".join(bad)


def test_patterns_never_import_stores() -> None:
    bad = _breaking({"patterns"}, {"stores"})
    assert not bad, "a pattern reaches state through the run context:\n" + "\n".join(bad)


def test_the_server_sits_on_top_beside_the_cli() -> None:
    """`podium.server` (the HTTP API) may use every layer below it; only the CLI (which
    starts it) imports it, and it never imports the CLI."""
    below = (PARTS | {"podium", "errors"}) - {"server", "cli"}
    bad = _breaking(below, {"server"}) + _breaking({"server"}, {"cli"})
    assert not bad, "podium.server is a top layer beside podium.cli:\n" + "\n".join(bad)


def test_runtime_never_imports_a_pattern() -> None:
    bad = _breaking({"runtime"}, {"patterns"})
    assert not bad, "the runtime knows no pattern:\n" + "\n".join(bad)


def test_no_part_imports_the_composition_root() -> None:
    bad = [str(i) for i in IMPORTS if i.target == "podium" and i.module != "podium"]
    bad += [str(i) for i in IMPORTS if i.module.startswith("podium.") and i.target == "podium"]
    assert not bad, "import from the module that defines a name, not `podium`:\n" + "\n".join(
        sorted(set(bad))
    )


def _cycles(edges: dict[str, dict[str, Import]]) -> list[list[str]]:
    """Every strongly connected group of more than one part (Tarjan), as a closed path."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    groups: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in edges.get(v, {}):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return groups


def _path(edges: dict[str, dict[str, Import]], group: list[str]) -> list[str]:
    """One loop through `group`, as the imports that make it."""
    start = group[0]
    seen = {start: [start]}
    frontier = [start]
    while frontier:  # breadth first back to start, inside the group
        nxt = []
        for v in frontier:
            for w in edges.get(v, {}):
                if w == start:
                    route = seen[v] + [start]
                    return [str(edges[a][b]) for a, b in pairwise(route)]
                if w in group and w not in seen:
                    seen[w] = seen[v] + [w]
                    nxt.append(w)
        frontier = nxt
    raise AssertionError(f"no loop in {group}")


def _edges(imports: list[Import]) -> dict[str, dict[str, Import]]:
    edges: dict[str, dict[str, Import]] = defaultdict(dict)
    for i in imports:
        a, b = _part(i.module), _part(i.target)
        if a != b and not _exempt(i):
            edges[a].setdefault(b, i)
    return edges


def test_the_cycle_finder_finds_a_cycle() -> None:
    def imp(a: str, b: str) -> Import:
        return Import(f"podium.{a}.m", f"podium.{b}.n", 1, "")

    edges = _edges([imp("a", "b"), imp("b", "c"), imp("c", "a"), imp("c", "d")])
    assert _cycles(edges) == [["a", "b", "c"]]
    assert _path(edges, ["a", "b", "c"]) == [
        "podium.a.m line 1: imports podium.b.n",
        "podium.b.m line 1: imports podium.c.n",
        "podium.c.m line 1: imports podium.a.n",
    ]


def test_no_import_cycle_between_parts() -> None:
    edges = _edges(IMPORTS)
    loops = ["\n  ".join(_path(edges, group)) for group in _cycles(edges)]
    assert not loops, "import cycles between podium's parts:\n  " + "\n\n  ".join(loops)


def test_every_exemption_is_still_needed() -> None:
    used = {
        (mod, tgt)
        for i in IMPORTS
        for mod, tgt in EXEMPT
        if i.module == mod and (i.target == tgt or i.target.startswith(tgt + "."))
    }
    assert set(EXEMPT) == used, f"exemptions that match no import: {set(EXEMPT) - used}"
