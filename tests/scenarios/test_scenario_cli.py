"""``switchboard scenario run|compare|sweep`` end to end on a tiny baseline: the report's files,
the summary table, the report's path; a planner's bad file exits 2 naming file, line and field."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from api.cli import main
from tests.scenarios.test_runner import tiny_baseline


@pytest.fixture
def files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A baseline and two scenarios of it beside it; a terminal wide enough for the table."""
    monkeypatch.setenv("COLUMNS", "200")
    (tmp_path / "baseline.yaml").write_text(yaml.safe_dump(tiny_baseline()))
    (tmp_path / "short.yaml").write_text(
        "name: one-agent-short\n"
        "baseline: baseline.yaml\n"
        "seed: 3\n"
        "replications: 2\n"
        "changes:\n"
        "  - remove_agents: [a2]\n"
    )
    (tmp_path / "busy.toml").write_text(
        'name = "more-volume"\n'
        'baseline = "baseline.yaml"\n'
        "seed = 3\n"
        "replications = 2\n"
        "[[changes]]\n"
        "scale_volume = 1.5\n"
    )
    return tmp_path


def test_run_writes_the_report_and_prints_the_summary(
    files: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    opened: list[str] = []
    monkeypatch.setattr("webbrowser.open", lambda url: opened.append(url) or True)
    out = files / "out"
    status = main(
        ["scenario", "run", str(files / "short.yaml"), "--out", str(out), "--workers", "1",
         "--open"]
    )  # fmt: skip
    captured = capsys.readouterr()
    assert status == 0, captured.err
    for name in ("report.html", "kpis.csv", "intervals.csv", "report.xlsx"):
        assert (out / name).is_file(), name
    # The summary table: KPI, the baseline, the scenario, the paired delta with its interval.
    assert "tiny" in captured.out and "one-agent-short" in captured.out
    assert "delta ± CI" in captured.out
    for label in ("first response p90 (min)", "SLA overall", "backlog at the end", "occupancy"):
        assert label in captured.out
    assert "2 scenarios × 2 replications (seed 3) in this process" in captured.err
    assert f"report: {out / 'report.html'}" in captured.out
    assert opened == [(out / "report.html").resolve().as_uri()]


def test_compare_and_sweep(files: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Several scenarios against the first one's baseline (or a named one; the baseline file
    itself may be named, it is not run twice); a sweep's grid against its baseline, one row per
    grid point. --seed/--replications override the files."""
    out = files / "cmp"
    status = main(
        ["scenario", "compare", str(files / "baseline.yaml"), str(files / "short.yaml"),
         str(files / "busy.toml"), "--baseline", "more-volume", "--replications", "1",
         "--out", str(out), "--workers", "1"]
    )  # fmt: skip
    captured = capsys.readouterr()
    assert status == 0, captured.err
    assert "3 scenarios × 1 replications (seed 3) in this process" in captured.err
    assert "tiny vs one-agent-short vs more-volume: against more-volume" in captured.out
    assert "no CI: 1 replication" in captured.out
    assert (out / "report.html").is_file()

    (files / "sweep.yaml").write_text(
        "name: staffing\nbaseline: baseline.yaml\nseed: 1\nreplications: 1\n"
        "grid:\n  add_agents: [{count: 1, like: a0}, {count: 2, like: a0}]\n"
        "  scale_volume: [1.0, 2.0]\n"
    )
    status = main(
        ["scenario", "sweep", str(files / "sweep.yaml"), "--out", str(files / "sw"),
         "--workers", "1", "--seed", "4"]
    )  # fmt: skip
    captured = capsys.readouterr()
    assert status == 0, captured.err
    assert "5 scenarios × 1 replications (seed 4)" in captured.err
    assert "add_agents=2, scale_volume=2" in captured.out  # a grid point's row
    assert (files / "sw" / "kpis.csv").is_file()


def test_a_bad_file_exits_2_naming_file_line_and_field(
    files: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = files / "bad.yaml"
    bad.write_text(
        "name: typo\nbaseline: baseline.yaml\nchanges:\n  - remove_agents: [a1, nobody]\n"
    )
    assert main(["scenario", "run", str(bad), "--out", str(files / "x")]) == 2
    captured = capsys.readouterr()
    assert f"{bad}:4: " in captured.err
    assert "remove_agents" in captured.err and "nobody" in captured.err
    assert "Traceback" not in captured.err
    assert not (files / "x").exists()

    assert main(["scenario", "run", str(files / "missing.yaml")]) == 2
    assert "missing.yaml" in capsys.readouterr().err

    bad_toml = files / "bad.toml"
    bad_toml.write_text('name = "x"\nbaseline = "baseline.yaml"\nreplications = 0\n')
    assert main(["scenario", "compare", str(files / "short.yaml"), str(bad_toml)]) == 2
    assert f"{bad_toml}:3: replications" in capsys.readouterr().err


def test_compare_refuses_an_unknown_baseline_name(
    files: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status = main(
        ["scenario", "compare", str(files / "short.yaml"), "--baseline", "nope"]
    )  # fmt: skip
    assert status == 2
    assert "--baseline 'nope' is none of the scenarios: tiny, one-agent-short" in (
        capsys.readouterr().err
    )


def test_dask_without_the_extra_is_a_clear_error(
    files: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "distributed", None)
    status = main(["scenario", "run", str(files / "short.yaml"), "--dask", "tcp://127.0.0.1:1"])
    assert status == 1
    assert "pip install -e '.[distributed]'" in capsys.readouterr().err
