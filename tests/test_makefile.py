"""The Makefile's installs: ``make serve`` and ``make demo`` install the runtime only, the
tests, linters and benchmarks the dev extras too (each with its own marker file, so a runtime
venv is completed by ``make test`` rather than rebuilt). Read from ``make -n`` (nothing runs)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="no make on this machine")


def _dry_run(target: str, venv: Path) -> list[str]:
    out = subprocess.run(
        ["make", "-n", target, f"VENV={venv}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return out.splitlines()


def _installs(lines: list[str]) -> list[str]:
    return [line.split("install --quiet ", 1)[1] for line in lines if "pip install" in line]


@pytest.mark.parametrize("target", ["serve", "demo", "planner"])
def test_serving_installs_the_runtime_only(target: str, tmp_path: Path) -> None:
    lines = _dry_run(target, tmp_path / "venv")
    assert _installs(lines) == ["--upgrade pip", "-e ."]
    assert any(line.startswith(f"touch {tmp_path / 'venv' / '.runtime'}") for line in lines)
    assert not any(".installed" in line for line in lines)


@pytest.mark.parametrize("target", ["test", "lint", "bench"])
def test_tests_linters_and_benchmarks_install_the_dev_extras(target: str, tmp_path: Path) -> None:
    assert _installs(_dry_run(target, tmp_path / "venv")) == [
        "--upgrade pip",
        "-e .",
        "-e '.[dev]'",
    ]


def test_a_runtime_venv_gets_only_the_dev_extras_added(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    venv.mkdir()
    marker = venv / ".runtime"
    marker.touch()
    # Newer than pyproject.toml: the runtime install is up to date.
    stamp = (ROOT / "pyproject.toml").stat().st_mtime + 60
    os.utime(marker, (stamp, stamp))
    assert _installs(_dry_run("test", venv)) == ["-e '.[dev]'"]
    assert _installs(_dry_run("serve", venv)) == []
