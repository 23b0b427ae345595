"""Builders for booking-engine tests, an exact brute-force coverability checker, and their tests.

The brute-force checker knows nothing of the engine: it tries every assignment of calls to
agents with plain interval arithmetic, so the engine's claims can be checked against it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta

from solver.capability import BookingState, Call, Capability, team_reserves
from solver.problem import Agent, AgentStatus, Interval

MONDAY = datetime(2026, 3, 23, tzinfo=UTC)  # Europe switches to summer time on Sunday 29 March


def at(day: int, hour: float) -> datetime:
    return MONDAY + timedelta(days=day, minutes=round(hour * 60))


def shift(day: int, h1: float, h2: float) -> Interval:
    return Interval(at(day, h1), at(day, h2))


def agent(
    agent_id: str,
    skills: Mapping[str, int],
    shifts: Sequence[Interval] = (),
    busy: Sequence[Interval] = (),
    team: str = "t",
    timezone: str = "UTC",
    status: AgentStatus = AgentStatus.AVAILABLE,
) -> Agent:
    return Agent(
        agent_id,
        team,
        skills=dict(skills),
        shifts=tuple(shifts),
        busy=tuple(busy),
        timezone=timezone,
        status=status,
    )


def cap(cap_id: str, requirements: Mapping[str, int], **kw: object) -> Capability:
    kw.setdefault("min_notice", timedelta(0))
    return Capability(cap_id, requirements=dict(requirements), **kw)  # type: ignore[arg-type]


# --- the independent exact checker -----------------------------------------------------------


def _covers(agent: Agent, start: datetime, end: datetime) -> bool:
    spans = sorted((s.start, s.end) for s in agent.shifts)
    merged: list[list[datetime]] = []
    for s, e in spans:
        if merged and s <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], e)
        else:
            merged.append([s, e])
    on = any(s <= start and end <= e for s, e in merged)
    free = not any(b.start < end and start < b.end for b in agent.busy)
    return agent.status is AgentStatus.AVAILABLE and on and free


def brute_force_cover(state: BookingState, limit: int = 200_000) -> dict[str, str] | None:
    """An assignment of every live call to an agent that keeps every rule (a blocked agent
    covering only calls bound to them), or None if none exists. Exhaustive (raises if it would
    take more than ``limit`` steps)."""
    caps = {c.id: c for c in state.capabilities}
    calls = sorted((c for c in state.calls if c.end > state.now), key=lambda c: (c.start, c.id))
    occ = {
        c.id: (
            max(c.start, state.now),
            c.end + timedelta(minutes=caps[c.capability_id].buffer_minutes),
        )
        for c in calls
    }
    options: dict[str, list[Agent]] = {}
    for c in calls:
        s, e = occ[c.id]
        opts = [
            a
            for a in state.agents
            if a.qualifies(caps[c.capability_id].requirements) and _covers(a, s, e)
        ]
        if c.bound_agent is not None:
            opts = [a for a in opts if a.id == c.bound_agent]
        else:  # a blocked agent keeps the calls bound to them and takes no other
            opts = [a for a in opts if a.id not in state.blocked]
        options[c.id] = opts
    shares = team_reserves(state)
    chosen: dict[str, str] = {}
    held: dict[str, list[tuple[datetime, datetime]]] = {}
    steps = [0]

    def reserve_ok(team: str) -> bool:
        share = shares.get(team, 0.0)
        if share <= 0:
            return True
        members = [a for a in state.agents if a.team == team]
        spans = [occ[cid] for cid, aid in chosen.items() if state.agent(aid).team == team]
        # Headcount changes inside a call too (a shift ends mid-call): check every boundary.
        points = sorted(
            {p for sp in spans for p in sp}
            | {p for m in members for iv in (*m.shifts, *m.busy) for p in (iv.start, iv.end)}
        )
        for p in points:
            n = sum(1 for s, e in spans if s <= p < e)
            if n == 0:
                continue
            head = sum(
                1
                for m in members
                if m.status is AgentStatus.AVAILABLE and m.on_shift(p) and not m.busy_at(p)
            )
            if n > head - math.ceil(head * share - 1e-9):
                return False
        return True

    def go(i: int) -> bool:
        steps[0] += 1
        if steps[0] > limit:
            raise RuntimeError("brute force too large")
        if i == len(calls):
            return True
        c = calls[i]
        s, e = occ[c.id]
        for a in options[c.id]:
            if any(hs < e and s < he for hs, he in held.get(a.id, [])):
                continue
            chosen[c.id] = a.id
            held.setdefault(a.id, []).append((s, e))
            if reserve_ok(a.team) and go(i + 1):
                return True
            held[a.id].pop()
            del chosen[c.id]
        return False

    return dict(chosen) if go(0) else None


def with_call(
    state: BookingState, cap_id: str, start: datetime, call_id: str = "new"
) -> BookingState:
    c = state.capability(cap_id)
    return state.with_call(Call(call_id, cap_id, start, start + timedelta(minutes=c.call_minutes)))


# --- tests of the helpers themselves ---------------------------------------------------------


def test_brute_force_finds_the_only_cover() -> None:
    a = agent("a", {"x": 1, "y": 1}, [shift(0, 8, 12)])
    b = agent("b", {"x": 1}, [shift(0, 8, 12)])
    caps = (cap("x", {"x": 1}, call_minutes=60), cap("y", {"y": 1}, call_minutes=60))
    state = BookingState(at(0, 7), (a, b), caps)
    state = with_call(state, "x", at(0, 9), "c1")
    state = with_call(state, "y", at(0, 9), "c2")
    assert brute_force_cover(state) == {"c1": "b", "c2": "a"}


def test_brute_force_sees_a_reserve_squeezed_mid_call() -> None:
    # Two working at 9:30 (one may be on a call), one from 9:45: a 9:30-10:00 call breaks it.
    a = agent("a", {"x": 1}, [shift(0, 6, 9.75)])
    b = agent("b", {"x": 1}, [shift(0, 9.5, 13.5)])
    state = BookingState(at(0, 6), (a, b), (cap("x", {"x": 1}, reserve=0.34),))
    assert brute_force_cover(with_call(state, "x", at(0, 9.5))) is None
    assert brute_force_cover(with_call(state, "x", at(0, 9.25))) is None  # one working at 9:15
    plain = BookingState(at(0, 6), (a, b), (cap("x", {"x": 1}),))
    assert brute_force_cover(with_call(plain, "x", at(0, 9.5))) == {"new": "b"}


def test_brute_force_sees_that_agents_cannot_swap_mid_call() -> None:
    # Every moment has a matching, but no single assignment covers all four calls.
    a = agent("a", {"x": 1, "y": 1}, [shift(0, 0, 23)])
    b = agent("b", {"x": 1}, [shift(0, 0, 23)])
    caps = (cap("x", {"x": 1}, call_minutes=60), cap("y", {"y": 1}, call_minutes=60))
    state = BookingState(at(0, 0), (a, b), caps)
    state = with_call(state, "y", at(0, 1), "w")
    state = state.with_call(Call("x1", "x", at(0, 1), at(0, 3)))
    state = state.with_call(Call("x2", "x", at(0, 2), at(0, 4)))
    assert brute_force_cover(state) is not None
    assert brute_force_cover(with_call(state, "y", at(0, 3), "v")) is None
