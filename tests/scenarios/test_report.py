"""The report: files written, self-contained HTML with embedded charts, a workbook with its
sheets, and byte-identical exports for the same runs."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import openpyxl
import pandas as pd
import pytest

from scenarios.kpis import KPI_COLUMNS
from scenarios.report import expected_workload, write_report
from tests.scenarios.runs import hand_run, synthetic_run, synthetic_world

NAMES = ("baseline", "plus-2")


@pytest.fixture(scope="module")
def inputs() -> tuple[dict[str, list], dict[str, object]]:
    results = {
        "baseline": [synthetic_run("baseline", r, agents=3) for r in range(3)],
        "plus-2": [synthetic_run("plus-2", r, agents=5) for r in range(3)],
    }
    worlds = {"baseline": synthetic_world("baseline", 3), "plus-2": synthetic_world("plus-2", 5)}
    return results, worlds


@pytest.fixture(scope="module")
def written(inputs, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    results, worlds = inputs
    out = tmp_path_factory.mktemp("report")
    return write_report(results, out, baseline="baseline", worlds=worlds)


def test_files_exist(written) -> None:  # type: ignore[no-untyped-def]
    for path in (written.html, written.kpis_csv, written.intervals_csv, written.xlsx):
        assert Path(path).is_file() and Path(path).stat().st_size > 0


def test_html_is_self_contained_with_embedded_charts(written) -> None:  # type: ignore[no-untyped-def]
    html = Path(written.html).read_text(encoding="utf-8")
    images = re.findall(r'<img [^>]*src="([^"]+)"', html)
    text = re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "", html)
    assert not re.search(r"(?i)(https?:|ftp:)?//[a-z0-9]|url\(|@import", text)
    assert "<script" not in text and "<link" not in text and "<iframe" not in text
    assert all(src.startswith("data:") for src in re.findall(r'(?:src|href)="([^"]*)"', html))
    assert len(images) == 5 and all(src.startswith("data:image/png;base64,") for src in images)
    assert "plus-2" in html and "Δ vs baseline" in html and "Europe/Berlin" in html


def test_workbook_opens_with_the_sheets(written) -> None:  # type: ignore[no-untyped-def]
    wb = openpyxl.load_workbook(written.xlsx)
    assert wb.sheetnames == ["Overall", "Intervals", "Agents", "Skills"]
    header = [c.value for c in wb["Overall"][1]]
    assert header[:4] == ["scenario", "kpi", "replications", "mean"]
    assert wb["Intervals"].max_row == 1 + 2 * 48
    assert wb["Agents"].max_row == 1 + 3 + 5


def test_kpis_csv_has_every_kpi_with_ci_and_paired_deltas(written) -> None:  # type: ignore[no-untyped-def]
    df = pd.read_csv(written.kpis_csv)
    assert set(KPI_COLUMNS) <= set(df["kpi"])
    base = df[df["scenario"] == "baseline"].set_index("kpi")
    more = df[df["scenario"] == "plus-2"].set_index("kpi")
    assert base["delta_mean"].isna().all()
    assert more.loc["tickets_created", "delta_mean"] == 0  # common random numbers
    assert more.loc["occupancy", "delta_mean"] < 0
    row = more.loc["first_response_minutes_mean"]
    assert row["delta_ci_low"] <= row["delta_mean"] <= row["delta_ci_high"]
    intervals = pd.read_csv(written.intervals_csv)
    assert list(intervals["scenario"].unique()) == list(NAMES)
    assert intervals["local_start"].iloc[0] == "2026-03-23T01:00:00+01:00"


def test_same_runs_same_bytes(inputs, written, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    results, worlds = inputs
    again = write_report(results, tmp_path, baseline="baseline", worlds=worlds)
    for a, b in zip(
        (written.kpis_csv, written.intervals_csv, written.xlsx, written.html),
        (again.kpis_csv, again.intervals_csv, again.xlsx, again.html),
        strict=True,
    ):
        assert Path(a).read_bytes() == Path(b).read_bytes(), a


def test_one_replication_and_an_empty_run_still_report(tmp_path: Path) -> None:
    run = hand_run(world="quiet")
    empty = replace(run, tickets=run.tickets.iloc[0:0], moves=run.moves.iloc[0:0],
                    agents=run.agents.iloc[0:0], calls=run.calls.iloc[0:0])  # fmt: skip
    results = {"baseline": [hand_run()], "quiet": [empty]}
    files = write_report(results, tmp_path, baseline="baseline", worlds={})
    html = Path(files.html).read_text(encoding="utf-8")
    assert "one replication: no confidence interval" in html
    assert pd.read_csv(files.kpis_csv)["ci_low"].isna().all()
    with pytest.raises(ValueError, match="baseline 'nope'"):
        write_report(results, tmp_path, baseline="nope", worlds={})


def test_expected_workload_from_volume_profiles() -> None:
    world = synthetic_world("w", load=1.0)
    starts = pd.Series(pd.date_range("2026-03-23T00:00Z", periods=24, freq="60min"))
    work = expected_workload(world, starts, 60)
    # 6 tickets an hour of 35 minutes between 09:00 and 19:00 Berlin (08-18 UTC): 3.5 agents.
    assert np.allclose(work[8:18], 3.5) and np.allclose(work[:8], 0) and work[18] == 0
