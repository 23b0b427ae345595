"""Smoke test of ``python -m benchmarks.api --against REV``: the before/after comparison in one
sitting. It serves a temporary checkout of a commit beside this one, alternates the load
between them and reports both and their ratio; no timing is asserted (the machine is shared)."""

from __future__ import annotations

import re
import subprocess
from collections import Counter
from pathlib import Path

import httpx
import numpy as np
import pytest

from api.db import migrate
from benchmarks import api as bench_api
from benchmarks.harness.cpu import Measures
from benchmarks.harness.databases import sqlite_url
from benchmarks.harness.load import ASSIGNED, RunResult
from benchmarks.harness.report import Comparison, comparison_lines, comparison_table
from benchmarks.harness.server import REPO_ROOT, serve, source_tree


def _worktrees() -> str:
    return subprocess.run(
        ["git", "-C", str(REPO_ROOT), "worktree", "list", "--porcelain"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout


@pytest.fixture(autouse=True)
def _one_solve_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """The servers started here (benchmarks.harness.server.serve, which passes this process's
    environment on) keep their solve pool at one process instead of four: nothing here solves,
    and each process imports the app, seconds of CPU that the start-up then waits out."""
    monkeypatch.setenv("SWITCHBOARD_SOLVE_WORKERS", "1")


def _title(base: str) -> str:
    return str(httpx.get(base + "/openapi.json", timeout=10.0).json()["info"]["title"])


@pytest.mark.slow  # ~20 s: a git worktree and two server starts
def test_a_source_tree_is_served_from_its_own_code_and_removed_after(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path)
    migrate.upgrade(url)
    with source_tree("HEAD") as tree:
        assert str(tree) in _worktrees()
        # Mark the tree's code, so the answer tells which code served it.
        main = tree / "api" / "main.py"
        text = main.read_text()
        assert 'API_TITLE = "Switchboard"' in text
        main.write_text(text.replace('API_TITLE = "Switchboard"', 'API_TITLE = "tree A"'))
        with serve(url, workers=1, log=tmp_path / "a.log", code=tree) as (base, _):
            assert _title(base) == "tree A"
        with serve(url, workers=1, log=tmp_path / "b.log") as (base, _):
            assert _title(base) == "Switchboard"
    assert not tree.exists() and str(tree) not in _worktrees()


@pytest.mark.slow  # ~30 s: a git worktree, two server starts and four short runs
def test_against_alternates_the_trees_and_prints_both_and_the_ratios(
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = ["--backends", "sqlite", "--workers", "1", "--concurrency", "2", "--duration", "0.3"]
    argv += ["--agents", "4", "--tickets", "40", "--against", "HEAD", "--rounds", "2"]
    assert bench_api.main(argv) == 0
    out = capsys.readouterr().out
    order = re.findall(r"closed ([AB]) round (\d): \d+/s .* errors 0", out)
    # The order turns every round, so a drift through the sitting does not favour one tree.
    assert order == [("A", "1"), ("B", "1"), ("B", "2"), ("A", "2")], out
    assert "A = HEAD (" in out and "B = this checkout (" in out
    assert re.search(r"server CPU per assignment B/A \d+\.\d\d \(rounds: \S+, \S+\)", out), out
    assert "GET baseline" not in out and "Target >=" not in out  # assignment runs only


def _run(ms_per_assignment: float, rate: float, p99: float) -> RunResult:
    n = int(rate)
    cpu = Measures(server=ms_per_assignment * n / 1000, database=0.0, client=0.1, machine=1.0)
    latencies = np.full(100, p99)
    return RunResult("sqlite", 1, 8, latencies, 1.0, Counter({ASSIGNED: n}), cpu)


def test_comparison_pools_the_rounds_and_divides_b_by_a() -> None:
    rounds = [
        (_run(2.0, 100, 10.0), _run(1.0, 200, 5.0)),
        (_run(4.0, 100, 10.0), _run(1.0, 200, 5.0)),
    ]
    c = Comparison("sqlite", 1, 8, None, rounds)
    # A pooled: 0.2 + 0.4 server seconds over 200 assignments = 3 ms; B: 1 ms.
    assert c.a.ok == 200 and c.a.elapsed_s == 2.0 and c.a.latencies_ms.size == 200
    assert c.a.cpu_ms_per_request("server") == pytest.approx(3.0)
    assert c.ratio("cpu") == pytest.approx(1 / 3)
    assert c.ratio("throughput") == pytest.approx(2.0) and c.ratio("p99") == pytest.approx(0.5)
    assert c.cpu_ratio_per_round() == pytest.approx([0.5, 0.25])
    assert comparison_table([c], ("old", "new")).row_count == 3  # A, B, B/A
    (line,) = comparison_lines([c])
    assert "server CPU per assignment B/A 0.33 (rounds: 0.50, 0.25)" in line


def test_measures_sum_their_latency_histograms_only_when_both_have_one() -> None:
    a = Measures(1.0, 2.0, 3.0, 4.0, {0.01: 1.0, float("inf"): 2.0})
    b = Measures(1.0, 1.0, 1.0, 1.0, {0.01: 3.0, float("inf"): 3.0})
    assert a.plus(b) == Measures(2.0, 3.0, 4.0, 5.0, {0.01: 4.0, float("inf"): 5.0})
    assert a.plus(Measures(0.0, 0.0, 0.0, 0.0)).server_latency is None
