"""KPIs of a hand-built run against values worked out by hand (tests/scenarios/runs.py lays the
run out minute by minute), the confidence interval math and the paired deltas."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from scenarios.kpis import KPI_COLUMNS, Estimate, compare, measure, summarize
from tests.scenarios.runs import hand_run, synthetic_run

NAN = math.nan


def col(name: str) -> list[float]:
    return measure(hand_run()).intervals[name].tolist()


def same(got: list[float], want: list[float]) -> bool:
    return np.allclose(got, want, equal_nan=True)


def test_one_row_per_interval_with_every_kpi() -> None:
    kpis = measure(hand_run())
    assert len(kpis.intervals) == 4
    assert set(KPI_COLUMNS) <= set(kpis.intervals.columns)
    assert set(KPI_COLUMNS) <= set(kpis.overall)
    starts = kpis.intervals["interval_start"].dt.strftime("%H:%M").tolist()
    assert starts == ["00:00", "00:30", "01:00", "01:30"]


def test_counts_fall_in_the_interval_of_their_moment() -> None:
    assert col("tickets_created") == [2, 2, 1, 0]
    # T1 resolved exactly at 00:30: the second interval's, not the first's.
    assert col("tickets_resolved") == [0, 1, 0, 1]
    assert col("abandoned") == [0, 1, 0, 0]
    assert col("assignments") == [2, 0, 1, 1]
    # a1 -> a2 at 00:45, a2 -> queue at 01:30 (moved from an agent: the service's reassigned).
    assert col("reassignments") == [0, 1, 0, 1]
    assert col("calls_booked") == [1, 0, 1, 0]
    # Rebinds count at the call's start; C2 starts after the run: the last interval.
    assert col("call_reassignments") == [0, 0, 0, 3]


def test_durations_by_moment_with_linear_percentiles() -> None:
    assert same(col("first_response_minutes_p50"), [10, NAN, 27.5, NAN])
    assert same(col("first_response_minutes_p90"), [10, NAN, 49.5, NAN])
    assert same(col("resolution_minutes_mean"), [NAN, 30, NAN, 90])
    overall = measure(hand_run()).overall
    assert overall["first_response_minutes_p50"] == 10
    assert overall["first_response_minutes_p90"] == pytest.approx(46)
    assert overall["resolution_minutes_p90"] == pytest.approx(84)


def test_backlog_unassigned_and_oldest_at_the_interval_end() -> None:
    # T1 resolved at 00:30 is still open at 00:30; T4 abandoned leaves the backlog.
    assert col("backlog") == [2, 2, 3, 2]
    # T2's move back to the queue at 01:30 is not before 01:30: still held at that end.
    assert col("open_unassigned") == [0, 1, 1, 1]
    assert col("oldest_ticket_age_minutes") == [30, 50, 80, 85]
    overall = measure(hand_run()).overall
    assert (overall["backlog"], overall["open_unassigned"]) == (2, 1)
    assert overall["oldest_ticket_age_minutes"] == 85


def test_sla_met_when_it_happens_breached_when_the_deadline_passes() -> None:
    # T2 due 00:40, answered 01:05: breached in 00:30-01:00, nothing counted at 01:05.
    assert same(col("sla_first_response_met"), [1, 0, 1, 0])
    assert same(col("sla_first_response_breached"), [0, 3, 0, 0])
    assert same(col("sla_first_response_compliance"), [1, 0, 1, NAN])
    # T3's resolution deadline (03:20) is after the run: never counted.
    assert same(col("sla_resolution_compliance"), [NAN, 1, 0, NAN])
    assert same(col("sla_overall_compliance"), [1, 0.25, 0.5, NAN])
    overall = measure(hand_run()).overall
    assert overall["sla_first_response_compliance"] == pytest.approx(2 / 5)
    assert overall["sla_overall_compliance"] == pytest.approx(3 / 7)


def test_occupancy_per_interval_agent_and_skill() -> None:
    assert same(col("occupancy"), [20 / 60, 25 / 60, 0, 35 / 60])
    assert col("calls_at_risk") == [0, 1, 1, 0]
    kpis = measure(hand_run())
    assert kpis.overall["occupancy"] == pytest.approx(80 / 210)
    agents = kpis.agents.set_index("agent")["occupancy"]
    assert agents.to_dict() == pytest.approx({"a1": 35 / 120, "a2": 45 / 90})
    skills = kpis.skills.set_index("skill")
    assert skills["occupancy"].to_dict() == pytest.approx({"de": 35 / 120, "net": 80 / 210})
    assert skills["agents"].to_dict() == {"de": 1, "net": 2}


def test_intervals_add_up_to_the_whole_run() -> None:
    kpis = measure(synthetic_run("w", 0))
    for name in ("tickets_created", "tickets_resolved", "assignments", "reassignments"):
        assert kpis.intervals[name].sum() == kpis.overall[name]
    last = kpis.intervals.iloc[-1]
    assert last["backlog"] == kpis.overall["backlog"]


def test_an_empty_run_measures_zeros_and_nans() -> None:
    run = hand_run()
    empty = replace(
        run,
        tickets=run.tickets.iloc[0:0],
        moves=run.moves.iloc[0:0],
        agents=run.agents.iloc[0:0],
        calls=run.calls.iloc[0:0],
    )
    kpis = measure(empty)
    assert kpis.overall["backlog"] == 0 and math.isnan(kpis.overall["occupancy"])
    assert kpis.agents.empty and kpis.skills.empty


def test_confidence_interval_is_student_t() -> None:
    values = [1.0, 2.0, 4.0, 7.0]
    e = Estimate.of(values)
    half = stats.t.ppf(0.975, 3) * np.std(values, ddof=1) / 2
    assert e.mean == 3.5 and e.n == 4
    assert (e.ci_low, e.ci_high) == pytest.approx((3.5 - half, 3.5 + half))
    assert math.isnan(Estimate.of([5.0]).ci_low) and Estimate.of([5.0]).mean == 5
    assert Estimate.of([NAN, 2.0, 4.0]).n == 2  # a NaN (no value) is left out


def test_summarize_across_replications() -> None:
    runs = [synthetic_run("w", r) for r in range(3)]
    summary = summarize(runs)
    created = [measure(r).overall["tickets_created"] for r in runs]
    row = summary.overall.loc["tickets_created"]
    assert row["mean"] == pytest.approx(np.mean(created)) and row["n"] == 3
    assert row["ci_low"] < row["mean"] < row["ci_high"]
    assert summary.note == ""
    per_interval = np.mean([measure(r).intervals["tickets_created"] for r in runs], axis=0)
    assert np.allclose(summary.intervals["tickets_created"], per_interval)
    one = summarize(runs[:1])
    assert math.isnan(one.overall.loc["backlog", "ci_low"]) and "one replication" in one.note


def test_compare_pairs_by_replication() -> None:
    base = [synthetic_run("base", r, agents=4) for r in (0, 1, 2)]
    more = [synthetic_run("more", r, agents=6) for r in (2, 1, 0, 3)]
    cmp = compare(base, more)
    assert cmp.replications == (0, 1, 2) and "[3]" in cmp.note
    deltas = [
        measure(more[2 - r]).overall["first_response_minutes_mean"]
        - measure(base[r]).overall["first_response_minutes_mean"]
        for r in (0, 1, 2)
    ]
    row = cmp.overall.loc["first_response_minutes_mean"]
    assert row["delta_mean"] == pytest.approx(np.mean(deltas))
    half = stats.t.ppf(0.975, 2) * np.std(deltas, ddof=1) / math.sqrt(3)
    assert row["delta_ci_high"] - row["delta_mean"] == pytest.approx(half)
    assert row["delta_mean"] < 0  # more agents, same arrivals: faster first response
    # Same arrivals (common random numbers): no delta at all in what arrived.
    assert cmp.overall.loc["tickets_created", "delta_mean"] == 0
    with pytest.raises(ValueError, match="no replication in common"):
        compare(base[:1], more[:1])


def test_fast_on_many_tickets() -> None:
    run = synthetic_run("big", 0, agents=20, load=20, days=7, interval_minutes=15)
    assert len(run.tickets) > 8_000
    kpis = measure(run)
    assert len(kpis.intervals) == 7 * 96
    assert kpis.overall["tickets_created"] == len(run.tickets)
    assert isinstance(kpis.intervals, pd.DataFrame)


def test_compare_says_when_seeds_differ() -> None:
    base = [synthetic_run("base", r, seed=1) for r in (0, 1)]
    other = [synthetic_run("other", r, seed=2) for r in (0, 1)]
    assert "without common random numbers" in compare(base, other).note
    assert compare(base, base).note == ""
