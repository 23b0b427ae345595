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
import re
import sys
import tomllib
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Any

from packaging.requirements import Requirement

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


# --- declared dependencies against the imports of shipped code -------------------------------

# Runtime dependencies that shipped code needs without importing them itself.
IMPORTED_BY_OTHERS = {
    "python-multipart": "Starlette's request.form() parses multipart/form-data with it",
    "tzdata": "zoneinfo reads the IANA time zones from it where the system has none",
    "fastapi-offline": "api/http/docs.py serves its swagger-ui and redoc files (read by path)",
}


def _normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _pyproject() -> dict[str, Any]:
    with (ROOT / "pyproject.toml").open("rb") as f:
        return tomllib.load(f)


def _runtime_requirements() -> list[Requirement]:
    """The declared runtime dependencies that apply on this platform."""
    reqs = [Requirement(text) for text in _pyproject()["project"]["dependencies"]]
    return [r for r in reqs if r.marker is None or r.marker.evaluate()]


def shipped_packages() -> list[str]:
    """The top-level packages the wheel ships (``[tool.setuptools.packages.find] include``)."""
    include = _pyproject()["tool"]["setuptools"]["packages"]["find"]["include"]
    return sorted({pattern.rstrip("*").rstrip(".") for pattern in include})


def top_level_imports(source: str, filename: str) -> set[str]:
    """The top-level module names ``source`` imports absolutely (lazy imports too)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source, filename)):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found


def _imports_of(packages: list[str]) -> set[str]:
    return {
        name
        for package in packages
        for path in sorted((ROOT / package).rglob("*.py"))
        for name in top_level_imports(path.read_text(), str(path.relative_to(ROOT)))
    }


def _import_names_by_distribution() -> dict[str, set[str]]:
    """Installed distribution (normalized name) -> the top-level modules it provides."""
    out: dict[str, set[str]] = {}
    for module, dists in metadata.packages_distributions().items():
        for dist in dists:
            out.setdefault(_normalized(dist), set()).add(module)
    return out


def test_every_declared_runtime_dependency_is_imported_by_shipped_code() -> None:
    declared = {_normalized(r.name) for r in _runtime_requirements()}
    assert set(IMPORTED_BY_OTHERS) <= declared, "a justification names no declared dependency"
    provides = _import_names_by_distribution()
    imported = _imports_of(shipped_packages())
    unused = {
        dist: sorted(provides.get(dist, set()))
        for dist in declared - set(IMPORTED_BY_OTHERS)
        if not provides.get(dist, set()) & imported
    }
    assert not unused, (
        f"declared in pyproject.toml but imported by no shipped package: {unused} (remove it, "
        "or say in IMPORTED_BY_OTHERS what uses it)"
    )


def _brought_by(requirements: list[Requirement]) -> set[str]:
    """The distributions ``requirements`` install, transitively (their extras followed)."""
    brought: set[str] = set()
    todo = [(_normalized(r.name), frozenset(r.extras)) for r in requirements]
    seen: set[tuple[str, frozenset[str]]] = set()
    while todo:
        dist, extras = todo.pop()
        if (dist, extras) in seen:
            continue
        seen.add((dist, extras))
        brought.add(dist)
        for text in metadata.requires(dist) or []:
            req = Requirement(text)
            if req.marker is None or any(
                req.marker.evaluate({"extra": extra}) for extra in ("", *extras)
            ):
                todo.append((_normalized(req.name), frozenset(req.extras)))
    return brought


def _optional_runtime_requirements() -> list[Requirement]:
    """The optional extras a planner may add to a runtime install (every one but ``dev``)."""
    extras = _pyproject()["project"]["optional-dependencies"]
    return [
        Requirement(text)
        for name, texts in extras.items()
        if name != "dev"
        for text in texts
        if not text.startswith("switchboard")
    ]


def module_level_imports(source: str, filename: str) -> set[str]:
    """The top-level module names ``source`` imports outside any function (at import time)."""
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
                continue
            if isinstance(child, ast.Import | ast.ImportFrom):
                found.update(top_level_imports(ast.unparse(child), filename))
            visit(child)

    visit(ast.parse(source, filename))
    return found


def test_runtime_code_imports_only_what_the_runtime_install_brings() -> None:
    """``make serve`` installs the runtime dependencies only: what the service, the solver, the
    scenarios and the calendars import must come with them (a dev extra would be missing).
    An optional runtime extra (``.[distributed]``: Dask for scenario sweeps) may be imported
    only lazily, inside a function that says which extra to install when it is missing: a
    module-level import would break the runtime install on import."""
    provides = _import_names_by_distribution()
    available = {
        module
        for dist in _brought_by(_runtime_requirements())
        for module in provides.get(dist, set())
    }
    optional = {
        module
        for dist in _brought_by(_optional_runtime_requirements())
        for module in provides.get(dist, set())
    }
    first_party = set(shipped_packages())
    runtime = [p for p in shipped_packages() if p != "benchmarks"]  # benchmarks: dev extras
    at_import = {
        name
        for package in runtime
        for path in sorted((ROOT / package).rglob("*.py"))
        for name in module_level_imports(path.read_text(), str(path.relative_to(ROOT)))
    }
    missing = sorted(
        name
        for name in _imports_of(runtime)
        if name not in sys.stdlib_module_names
        and name not in first_party
        and name != "__future__"
        and name not in available
        and (name not in optional or name in at_import)
    )
    assert missing == [], (
        f"imported by runtime code but not installed by `make serve`: {missing} (an optional "
        "extra's modules only inside a function)"
    )


def test_the_dependency_checks_see_what_they_look_for() -> None:
    assert top_level_imports(
        "import a.b\nfrom c.d import e\nfrom . import f\ndef g():\n    import h\n", "x.py"
    ) == {"a", "c", "h"}
    assert "api" in shipped_packages() and "solver" in shipped_packages()
    assert "matplotlib" not in _imports_of(["api"])  # scenarios draws; the service does not
    lazy = "import a\nif b:\n    from c import d\ndef e():\n    import f\n"
    assert module_level_imports(lazy, "x.py") == {"a", "c"}
    assert {"fastapi", "sqlalchemy", "ortools"} <= _imports_of(shipped_packages())
    provides = _import_names_by_distribution()
    assert "pydantic_settings" in provides["pydantic-settings"]
    assert "sqlalchemy" in provides["sqlalchemy"]
