"""The benchmarks reach ``solver/`` and ``api/`` only through public names (issue 9): an
underscore name of another package is its own business, free to change without a benchmark
breaking. import-linter sees modules, not names, hence this check."""

from __future__ import annotations

import ast
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
GUARDED = ("api", "solver")


def private_uses(source: str) -> list[str]:
    """Each underscore name of a :data:`GUARDED` package the module imports, and each
    underscore attribute it reads of anything but ``self`` or ``cls``: where an object came
    from (a solver index built by an api service, say) is not visible to a check, so a
    benchmark touches no one's private attributes but its own."""
    tree = ast.parse(source)
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in GUARDED:
            module = node.module or ""
            for alias in node.names:
                if any(part.startswith("_") for part in (*module.split("."), alias.name)):
                    found.append(f"line {node.lineno}: from {module} import {alias.name}")
        elif isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[0] in GUARDED and any(part.startswith("_") for part in parts):
                    found.append(f"line {node.lineno}: import {alias.name}")
        elif isinstance(node, ast.Attribute) and node.attr.startswith("_"):
            if node.attr.startswith("__") and node.attr.endswith("__"):
                continue  # dunders (__name__, __file__) are public
            if isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"):
                continue
            found.append(f"line {node.lineno}: {ast.unparse(node)}")
    return sorted(found, key=lambda f: int(f.split(":")[0].split()[1]))


def test_the_check_finds_private_imports_and_attributes() -> None:
    source = (
        "import solver.realtime\n"
        "from api.services import realtime_cache\n"
        "from api.assignment.cache import _ORG_TABLES\n"
        "from solver.realtime import RealtimeIndex\n"
        "index = realtime_cache.RealtimeCache().get()\n"
        "realtime_cache._tenants_touched(None)\n"
        "index._at(0)\n"
        "solver.realtime.__name__\n"
        "self._own = 1\n"
    )
    assert private_uses(source) == [
        "line 3: from api.assignment.cache import _ORG_TABLES",
        "line 6: realtime_cache._tenants_touched",
        "line 7: index._at",
    ]


def test_benchmarks_use_only_public_names_of_solver_and_api() -> None:
    offences = {
        str(path.relative_to(BENCHMARKS.parent)): uses
        for path in sorted(BENCHMARKS.rglob("*.py"))
        if (uses := private_uses(path.read_text()))
    }
    assert offences == {}
