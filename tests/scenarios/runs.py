"""Small RunResults built by hand for the KPI and report tests (no simulator needed).

``hand_run`` is a 2-hour run cut into 30-minute intervals whose every KPI is worked out by hand
in tests/scenarios/test_kpis.py; ``synthetic_run`` is a larger, seeded random run of a few
agents over two days for the report."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import numpy as np

from scenarios.model import AgentPlan, Demand, ShiftPattern, VolumeRow, World
from scenarios.results import (
    AGENT_COLUMNS,
    CALL_COLUMNS,
    MOVE_COLUMNS,
    TICKET_COLUMNS,
    RunResult,
    frame,
)
from solver.problem import Skill, Team

START = datetime(2026, 3, 23, tzinfo=UTC)


def at(minutes: float | None) -> datetime | None:
    return None if minutes is None else START + timedelta(minutes=minutes)


def ticket(
    tid: str,
    created: float,
    *,
    fr_due: float | None = None,
    res_due: float | None = None,
    first: float | None = None,
    resolved: float | None = None,
    abandoned: float | None = None,
    agent: str | None = None,
    channel: str = "email",
) -> tuple[object, ...]:
    return (
        tid, "tier1", channel, "net:1", 2, at(created), at(fr_due), at(res_due), at(first),
        at(first), at(resolved), at(abandoned), agent, 0, None,
    )  # fmt: skip


def hand_run(replication: int = 0, world: str = "base") -> RunResult:
    tickets = [
        ticket("T1", 0, fr_due=20, res_due=60, first=10, resolved=30, agent="a1"),
        ticket("T2", 10, fr_due=40, res_due=70, first=65, resolved=100, agent="a1"),
        ticket("T3", 35, fr_due=45, res_due=200),
        ticket("T4", 40, fr_due=41, abandoned=50, channel="phone"),
        ticket("T5", 60, fr_due=70, first=60, agent="a2"),
    ]
    moves = [
        ("T1", at(5), None, "a1", "arrival"),
        ("T2", at(20), None, "a1", "arrival"),
        ("T2", at(45), "a1", "a2", "reoptimize"),
        ("T5", at(60), None, "a2", "arrival"),
        ("T2", at(90), "a2", None, "absence"),
        ("T2", at(95), None, "a1", "dispatch"),
    ]
    busy1, busy2, avail2 = [20, 10, 0, 5], [0, 15, 0, 30], [30, 30, 0, 30]
    agents = []
    for k in range(4):
        agents.append((at(30 * k), "a1", "tier1", "de:1;net:2", 30, 30, busy1[k]))
        agents.append((at(30 * k), "a2", "tier1", "net:1", 30, avail2[k], busy2[k]))
    calls = [
        ("C1", "T1", "net-de", at(15), at(100), at(130), "a1", at(80), 2, at(50), True),
        ("C2", "T5", "net-de", at(70), at(150), at(180), None, None, 1, None, False),
    ]
    return RunResult(
        world=world,
        seed=1,
        replication=replication,
        start=START,
        end=START + timedelta(hours=2),
        interval_minutes=30,
        tickets=frame(tickets, TICKET_COLUMNS),
        moves=frame(moves, MOVE_COLUMNS),
        agents=frame(agents, AGENT_COLUMNS),
        calls=frame(calls, CALL_COLUMNS),
    )


def synthetic_run(
    world: str,
    replication: int,
    *,
    seed: int = 1,
    agents: int = 4,
    load: float = 1.0,
    days: int = 2,
    interval_minutes: int = 60,
) -> RunResult:
    """A plausible run: tickets arrive in business hours, agents on 08-18 UTC shifts work them
    first come first served; random but seeded by (seed, replication) (common random numbers:
    the same arrivals for every ``agents``)."""
    rng = np.random.default_rng([seed, replication])
    end_min = days * 24 * 60
    arrivals: list[float] = []
    for day in range(days):
        rate = 6.0 * load
        count = rng.poisson(rate * 10)
        arrivals.extend(sorted(day * 1440 + 8 * 60 + rng.uniform(0, 600, count)))
    efforts = rng.exponential(30.0, len(arrivals)) + 5
    free = [0.0] * agents
    rows, moves = [], []
    busy = np.zeros((agents, end_min // interval_minutes))
    for i, (created, effort) in enumerate(zip(arrivals, efforts, strict=True)):
        a = int(np.argmin(free))
        day_start = (created // 1440) * 1440
        begin = max(created, free[a], day_start + 8 * 60)
        if begin >= day_start + 18 * 60:
            begin = day_start + 1440 + 8 * 60
        finish = begin + effort
        free[a] = finish
        tid = f"t{i:05d}"
        done = finish if finish < end_min else None
        started = begin if begin < end_min else None
        agent = f"a{a + 1}" if started is not None else None
        rows.append((
            tid, "tier1", "email", "net:1", 2, at(created), at(created + 60), at(created + 240),
            at(started), at(started), at(done), None, agent, 0, None,
        ))  # fmt: skip
        if started is not None:
            moves.append((tid, at(created), None, agent, "arrival"))
            m = begin
            while m < min(finish, end_min):
                k = int(m // interval_minutes)
                nxt = min((k + 1) * interval_minutes, finish, end_min)
                busy[a, k] += nxt - m
                m = nxt
    moves.sort(key=lambda r: (r[1], r[0]))
    agent_rows = []
    for k in range(end_min // interval_minutes):
        minute = k * interval_minutes
        on = 8 * 60 <= minute % 1440 < 18 * 60
        for a in range(agents):
            sched = interval_minutes if on else 0
            agent_rows.append((at(minute), f"a{a + 1}", "tier1",
                               "de:1;net:2" if a % 2 == 0 else "net:1", sched, sched,
                               min(float(busy[a, k]), sched)))  # fmt: skip
    return RunResult(
        world=world,
        seed=seed,
        replication=replication,
        start=START,
        end=START + timedelta(days=days),
        interval_minutes=interval_minutes,
        tickets=frame(rows, TICKET_COLUMNS),
        moves=frame(moves, MOVE_COLUMNS),
        agents=frame(agent_rows, AGENT_COLUMNS),
        calls=frame([], CALL_COLUMNS),
    )


def synthetic_world(name: str, agents: int = 4, load: float = 1.0, days: int = 2) -> World:
    """The world ``synthetic_run`` pretends to have simulated (Berlin time: 08-18 UTC is 09-19
    local in March), for the report's time zone and expected workload."""
    volume = tuple(
        VolumeRow(team="tier1", channel="email", hour=h, per_hour=6.0 * load, effort_minutes=35.0)
        for h in range(9, 19)
    )
    shift = ShiftPattern(weekdays=tuple(range(7)), start=time(9), end=time(19))
    return World(
        name=name,
        start=START,
        days=days,
        skills=(Skill("de"), Skill("net")),
        teams=(Team("tier1"),),
        agents=tuple(
            AgentPlan(
                id=f"a{i + 1}",
                team="tier1",
                skills={"net": 1},
                shifts=(shift,),
                timezone="Europe/Berlin",
            )
            for i in range(agents)
        ),
        demand=Demand(volume=volume),
        timezone="Europe/Berlin",
        interval_minutes=60,
    )
