"""Smoke test of ``benchmarks.imports``, so the import benchmark cannot rot unnoticed: every
import through the app in-process on a tiny SQLite organisation (its own checks that the
database holds exactly what was sent run too), the profile option, and the verdict's rules.
No timing is asserted."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks import imports as bench


def test_a_tiny_run_imports_everything_and_reports_it(capsys: pytest.CaptureFixture[str]) -> None:
    assert bench.main(["--n", "12", "--backends", "sqlite", "--profile", "agents"]) == 0
    out = capsys.readouterr().out
    assert "--- sqlite: agents import, 12 rows" in out and "create_many" in out  # the profile
    table = [line.split() for line in out.splitlines() if line.startswith("sqlite ")]
    assert [row[1] for row in table] == [r for r, _ in bench.RESOURCES]
    assert all(row[2] == "12" and row[-1] == "-" for row in table)  # below 10,000: no verdict
    assert out.count("load average") == 2


def test_only_runs_an_import_with_what_it_refers_to() -> None:
    assert bench.with_dependencies({"shifts"}) == {"shifts", "agents", "skills", "teams"}
    assert bench.with_dependencies({"teams"}) == {"teams"}


def test_the_verdict_is_for_ten_thousand_rows_in_three_seconds() -> None:
    assert bench.Timing("sqlite", "agents", 10_000, 2.9).meets_target is True
    assert bench.Timing("sqlite", "agents", 10_000, 3.1).meets_target is False
    assert bench.Timing("sqlite", "agents", 9_999, 0.1).meets_target is None


def test_rows_refer_only_to_rows_of_the_imports_before_them() -> None:
    rows = bench.make_rows(30, skills_per_agent=3)
    skills = {s["id"] for s in rows["skills"]}
    teams = {t["id"] for t in rows["teams"]}
    agents = {a["id"] for a in rows["agents"]}
    assert all(len(r) == 30 for r in rows.values())
    assert all(a["team"] in teams and set(a["skills"]) <= skills for a in rows["agents"])
    assert all(len(a["skills"]) == 3 for a in rows["agents"])
    assert all(s["agent"] in agents for s in rows["shifts"] + rows["busy"])
    assert all(set(c["requirements"]) <= skills for c in rows["capabilities"])


def test_side_by_side_compares_each_import_with_the_baseline() -> None:
    old = [bench.Timing("sqlite", "agents", 100, 3.0), bench.Timing("sqlite", "teams", 100, 1.0)]
    now = [bench.Timing("sqlite", "agents", 100, 0.5), bench.Timing("postgresql", "teams", 5, 1)]
    lines = bench.side_by_side(old, now, "abc123").splitlines()
    assert lines[0].split() == ["backend", "import", "rows", "abc123", "now", "faster"]
    assert lines[1:] == ["sqlite      agents            100        3.00s    0.50s     6.0x"]


@pytest.mark.slow  # ~10 s: a git worktree and a second run of the runner in a subprocess
def test_baseline_runs_this_runner_on_another_revision(tmp_path: Path) -> None:
    timings = bench.run_baseline("HEAD", ["--n", "6", "--backends", "sqlite"], tmp_path)
    assert [(t.backend, t.resource, t.rows) for t in timings] == [
        ("sqlite", r, 6) for r, _ in bench.RESOURCES
    ]
    assert all(t.seconds > 0 for t in timings)
