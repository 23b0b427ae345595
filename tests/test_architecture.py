"""Architecture rules the import linter cannot see.

``solver/`` is the pure core; its underscore names are its own business. The rings around it
(``api/``, ``scenarios/``, ``calendars/``, ``benchmarks/``) use only its public surface: they
never import a private name from a ``solver`` module nor read or write a private attribute of a
``solver`` object (``index._open = ...``). Private names are those *defined in ``solver/``* that
start with one underscore — module-level functions, classes and variables, methods, class
attributes, ``__slots__`` entries and ``self._x`` assignments — so a ring's own private names
(``self._lock`` of an ``api`` class) are not flagged unless ``solver`` defines the same name and
the ring reaches it through something other than ``self``/``cls``.
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RINGS = ("api", "scenarios", "calendars", "benchmarks")


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def _defined_names(tree: ast.Module) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            names.add(node.attr)  # self._x = ..., other._x = ...
        elif isinstance(node, ast.Call) and getattr(node.func, "id", None) == "setattr":
            if len(node.args) > 1 and isinstance(node.args[1], ast.Constant):
                names.add(str(node.args[1].value))
        elif isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "__slots__" for t in node.targets
        ):
            for elt in ast.walk(node.value):
                if isinstance(elt, ast.Constant) and isinstance(elt.value, str):
                    names.add(elt.value)
    return names


@cache
def solver_private_names() -> frozenset[str]:
    names: set[str] = set()
    for path in (ROOT / "solver").rglob("*.py"):
        names |= _defined_names(ast.parse(path.read_text(), str(path)))
    return frozenset(n for n in names if _private(n))


def _attr_named_by_call(node: ast.AST) -> str | None:
    """``"_x"`` for ``getattr(obj, "_x")`` (also ``setattr``, ``hasattr``), else None."""
    if not isinstance(node, ast.Call) or len(node.args) < 2:
        return None
    if getattr(node.func, "id", None) not in ("getattr", "setattr", "hasattr"):
        return None
    arg = node.args[1]
    return arg.value if isinstance(arg, ast.Constant) and isinstance(arg.value, str) else None


def violations(source: str, filename: str, private: frozenset[str]) -> list[str]:
    """Where ``source`` reaches a private name of ``solver``: ``file:line: what``."""
    found: list[str] = []
    for node in ast.walk(ast.parse(source, filename)):
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "solver":
            found += [
                f"{filename}:{node.lineno}: imports {node.module}.{alias.name}"
                for alias in node.names
                if _private(alias.name)
            ]
        elif isinstance(node, ast.Attribute) and node.attr in private:
            owner = node.value
            if isinstance(owner, ast.Name) and owner.id in ("self", "cls"):
                continue  # the ring's own object
            found.append(f"{filename}:{node.lineno}: .{node.attr}")
        elif (name := _attr_named_by_call(node)) is not None and name in private:
            found.append(f"{filename}:{node.lineno}: {name!r}")
    return sorted(found, key=lambda v: int(v.split(":")[1]))


def test_rings_use_no_private_name_of_solver() -> None:
    private = solver_private_names()
    found: list[str] = []
    for ring in RINGS:
        for path in sorted((ROOT / ring).rglob("*.py")):
            rel = str(path.relative_to(ROOT))
            found += violations(path.read_text(), rel, private)
    assert not found, "private solver names used outside solver/:\n" + "\n".join(found)


def test_the_rule_catches_what_it_forbids() -> None:
    """The check itself: the shapes issue 9 removed are flagged, a ring's own names are not."""
    private = solver_private_names()
    assert {"_open", "_queue_end", "_at", "_index", "_check_id"} <= private
    bad = (
        "from solver.problem import _check_id\n"
        "index._open = open_now\n"
        "worked = index._at(t).worked\n"
        "x = state._index\n"
        "getattr(index, '_queue_end')\n"
    )
    assert [v.split(": ", 1)[1] for v in violations(bad, "bad.py", private)] == [
        "imports solver.problem._check_id",
        "._open",
        "._at",
        "._index",
        "'_queue_end'",
    ]
    good = (
        "import solver\n"
        "class Cache:\n"
        "    def get(self):\n"
        "        return self._open, cls._at, self._entries\n"
        "index.with_loads(now, held)\n"
    )
    assert violations(good, "good.py", private) == []


def imports_of_tests(source: str, filename: str) -> list[str]:
    """Where ``source`` imports the test suite (``tests`` or a module of it)."""
    found: list[str] = []
    for node in ast.walk(ast.parse(source, filename)):
        names = (
            [node.module or ""]
            if isinstance(node, ast.ImportFrom)
            else [a.name for a in node.names]
            if isinstance(node, ast.Import)
            else []
        )
        found += [f"{filename}:{node.lineno}: {n}" for n in names if n.split(".")[0] == "tests"]
    return found


def test_shipped_code_never_imports_the_tests() -> None:
    """The packages and the benchmarks run on a machine without the test suite: what they share
    with the tests (a TCP proxy, database helpers) lives in them, and the tests import it."""
    assert imports_of_tests("from tests.api.conftest import T0\nimport tests.x\n", "x.py") == [
        "x.py:1: tests.api.conftest",
        "x.py:2: tests.x",
    ]
    found = [
        hit
        for ring in ("solver", *RINGS)
        for path in sorted((ROOT / ring).rglob("*.py"))
        for hit in imports_of_tests(path.read_text(), str(path.relative_to(ROOT)))
    ]
    assert found == []
