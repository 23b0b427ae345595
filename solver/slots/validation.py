"""An independent check of any cover of the booked calls against the booking rules.

Written from the rules, not from the engine's grid (datetimes and intervals only), so a bug in
the index or its search shows up here instead of being repeated.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from solver.capability import BookingState, reserve_cap, team_reserves
from solver.problem import AgentStatus


def _merged(intervals: Sequence[tuple[datetime, datetime]]) -> list[tuple[datetime, datetime]]:
    out: list[tuple[datetime, datetime]] = []
    for s, e in sorted(intervals):
        if out and s <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], e))
        else:
            out.append((s, e))
    return out


def validate_calls(state: BookingState, cover: Mapping[str, str | None]) -> list[str]:
    """Every way ``cover`` (call id -> agent id) breaks the booking rules; [] means valid.

    Written from the rules, not from the engine's grid: datetimes and intervals only. A call
    holds its agent from its start to its end plus its capability's buffer (the wrap-up); calls
    whose wrap-up is over are ignored, and a call in progress is checked from ``now``. A call
    that has ended but is still in wrap-up has happened: only that it keeps its agent (the bound
    one, if bound) and that nothing overlaps it is checked, not its agent's shift, status or the
    team reserve. Bound calls must be covered by their bound agent; a blocked agent
    (``state.blocked``) covers only calls bound to them.
    """
    problems: list[str] = []
    caps = {c.id: c for c in state.capabilities}
    agents = {a.id: a for a in state.agents}
    held: dict[str, list[tuple[datetime, datetime, str]]] = {}  # every live call, for overlaps
    counted: dict[str, list[tuple[datetime, datetime, str]]] = {}  # those the reserve counts
    for call in state.calls:
        cap = caps[call.capability_id]
        end = call.end + timedelta(minutes=cap.buffer_minutes)
        if end <= state.now:
            continue
        who = cover.get(call.id)
        wrapping = call.end <= state.now
        if who is None:
            if not wrapping:
                problems.append(f"{call.id}: nobody covers it")
            continue
        if call.bound_agent is not None and who != call.bound_agent:
            problems.append(f"{call.id}: bound to {call.bound_agent} but covered by {who}")
        agent = agents.get(who)
        if agent is None:
            problems.append(f"{call.id}: unknown agent {who}")
            continue
        start = max(call.start, state.now)
        held.setdefault(who, []).append((start, end, call.id))
        if wrapping:
            continue
        if who in state.blocked and call.bound_agent != who:
            problems.append(f"{call.id}: {who} is blocked ({state.blocked[who]})")
        counted.setdefault(who, []).append((start, end, call.id))
        if agent.status is not AgentStatus.AVAILABLE:
            problems.append(f"{call.id}: {who} is {agent.status.value}")
        if not agent.qualifies(cap.requirements):
            problems.append(f"{call.id}: {who} lacks {dict(cap.requirements)}")
        shifts = _merged([(s.start, s.end) for s in agent.shifts])
        if not any(s <= start and end <= e for s, e in shifts):
            problems.append(f"{call.id}: {who} is not on shift for the whole call and buffer")
        if any(b.start < end and start < b.end for b in agent.busy):
            problems.append(f"{call.id}: {who} is busy in their calendar")
    for who, spans in held.items():
        spans.sort()
        for (_s1, e1, c1), (s2, _e2, c2) in itertools.pairwise(spans):
            if s2 < e1:
                problems.append(f"{who}: calls {c1} and {c2} overlap (with buffer)")
    problems.extend(_reserve_problems(state, counted))
    return problems


def _reserve_problems(
    state: BookingState, held: Mapping[str, list[tuple[datetime, datetime, str]]]
) -> list[str]:
    shares = team_reserves(state)
    out: list[str] = []
    by_team: dict[str, list[Any]] = {}
    for agent in state.agents:
        by_team.setdefault(agent.team, []).append(agent)
    for team, members in by_team.items():
        share = shares.get(team, 0.0)
        spans = [(s, e) for m in members for s, e, _c in held.get(m.id, [])]
        if share <= 0 or not spans:
            continue  # distinct agents per moment already bound calls by headcount
        points: set[datetime] = set()
        for s, e in spans:
            points.update((s, e))
        for m in members:
            for iv in (*m.shifts, *m.busy):
                points.update((iv.start, iv.end))
        pts = sorted(points)
        for a, b in itertools.pairwise(pts):
            if b <= state.now:
                continue
            t = a + (b - a) / 2
            calls = sum(1 for s, e in spans if s <= t < e)
            if not calls:
                continue
            head = sum(
                1
                for m in members
                if m.status is AgentStatus.AVAILABLE and m.on_shift(t) and not m.busy_at(t)
            )
            if calls > reserve_cap(head, share):
                out.append(
                    f"team {team}: {calls} calls at {a.isoformat()} exceed "
                    f"{reserve_cap(head, share)} allowed by its {share:.0%} reserve"
                )
    return out
