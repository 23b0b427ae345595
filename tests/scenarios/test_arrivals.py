"""Arrivals: volume profiles become Poisson tickets per local hour (DST-correct), histories are
replayed, thinned or repeated, and the draws depend on the demand alone (common random numbers)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from scenarios.arrivals import arrivals
from scenarios.model import AgentPlan, Demand, TicketSpec, VolumeRow, World
from scenarios.rng import streams
from solver.problem import Skill, Team

BERLIN = ZoneInfo("Europe/Berlin")


def world(demand: Demand, *, start: datetime, days: int = 1, agents: int = 1) -> World:
    return World(
        name="w",
        start=start,
        days=days,
        skills=(Skill("s"),),
        teams=(Team("t"),),
        agents=tuple(AgentPlan(id=f"a{i}", team="t") for i in range(agents)),
        demand=demand,
        timezone="Europe/Berlin",
    )


def test_the_skipped_spring_forward_hour_gets_nothing_and_the_repeated_one_twice() -> None:
    rows = (VolumeRow(team="t", channel="email", hour=2, per_hour=200.0),)
    spring = world(Demand(volume=rows), start=datetime(2026, 3, 28, tzinfo=UTC), days=2)
    got = arrivals(spring, streams(1, 0))
    days = {t.created_at.astimezone(BERLIN).date().isoformat() for t in got}
    assert days == {"2026-03-28"}  # 29 March has no 02:00 in Berlin
    assert all(t.created_at.astimezone(BERLIN).hour == 2 for t in got)
    autumn = world(Demand(volume=rows), start=datetime(2026, 10, 24, 12, tzinfo=UTC), days=1)
    got = arrivals(autumn, streams(1, 0))
    utc_hours = {t.created_at.hour for t in got}
    assert utc_hours == {0, 1}  # 02:00 CEST and 02:00 CET: two real hours
    assert 300 < len(got) < 500  # two hours at 200 an hour


def test_rates_shape_scale_effort_and_the_run_window() -> None:
    start = datetime(2026, 3, 23, 10, 30, tzinfo=UTC)  # 11:30 Berlin: half of hour 11 is in
    rows = tuple(
        VolumeRow(team="t", channel="chat", hour=h, per_hour=100.0, effort_minutes=12.4)
        for h in range(24)
    )
    demand = Demand(volume=rows, scale=2.0, shape={12: 0.0})
    got = arrivals(world(demand, start=start), streams(3, 0))
    assert all(start <= t.created_at < start + timedelta(days=1) for t in got)
    hours = [t.created_at.astimezone(BERLIN).hour for t in got]
    assert 12 not in hours  # shaped to zero
    assert 140 < hours.count(11) < 260  # two half hours (first and last) at 200 an hour
    assert {t.effort_minutes for t in got} == {12}  # cv 0: exactly, rounded
    assert got == sorted(got, key=lambda t: (t.created_at, t.id))
    lognormal = replace(rows[0], hour=14, effort_minutes=30.0, effort_cv=1.0, per_hour=2000.0)
    efforts = [
        t.effort_minutes
        for t in arrivals(world(Demand(volume=(lognormal,)), start=start), streams(3, 0))
    ]
    assert 27 < sum(efforts) / len(efforts) < 33
    assert len(set(efforts)) > 20


def test_history_is_replayed_thinned_and_repeated() -> None:
    start = datetime(2026, 3, 23, tzinfo=UTC)
    history = (
        *(
            TicketSpec(id=f"h{i}", created_at=start + timedelta(minutes=3 * i), team="t")
            for i in range(400)
        ),
        TicketSpec(id="late", created_at=start + timedelta(days=2), team="t"),
    )
    plain = arrivals(world(Demand(history=history), start=start), streams(1, 0))
    assert [t.id for t in plain] == [f"h{i}" for i in range(400)]  # "late" is outside the run
    half = arrivals(world(Demand(history=history, scale=0.5), start=start), streams(1, 0))
    assert 150 < len(half) < 250 and all("~" not in t.id for t in half)
    more = arrivals(world(Demand(history=history, scale=2.5), start=start), streams(1, 0))
    assert 900 < len(more) < 1100
    copies = [t for t in more if "~" in t.id]
    originals = {t.id: t for t in history}
    for copy in copies:
        source = originals[copy.id.split("~")[0]]
        assert abs(copy.created_at - source.created_at) <= timedelta(minutes=30)
        assert copy.first_response_at is None and copy.resolved_at is None


def test_arrivals_are_the_same_whatever_the_staffing() -> None:
    rows = tuple(VolumeRow(team="t", channel="email", hour=h, per_hour=5.0) for h in range(24))
    start = datetime(2026, 3, 23, tzinfo=UTC)
    few = arrivals(world(Demand(volume=rows), start=start, agents=1), streams(9, 2))
    many = arrivals(world(Demand(volume=rows), start=start, agents=7), streams(9, 2))
    assert few == many
    other = arrivals(world(Demand(volume=rows), start=start, agents=1), streams(9, 3))
    assert other != few  # another replication: independent draws
