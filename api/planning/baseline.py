"""The live tenant as a what-if baseline (``GET /v1/planning/baseline``, and ``baseline: live``).

What it holds, read in one session (a consistent snapshot on PostgreSQL's repeatable reads is
not needed: a baseline is a planner's approximation, not an invariant):

- skills, teams (with the scope they work under: the team's own, else the tenant's policy),
  capabilities, and every agent with their skills, capacity, per-channel caps and time zone;
- **shifts as weekly patterns** derived from the agent's stored shift intervals in the window
  ``[start, start + days)``: each shift becomes (local weekday, start, end) in the agent's own
  zone, and where the window holds several weeks, the *latest* week with shifts on a weekday
  gives that weekday's shifts (a rota that changed mid-window simulates as it is now). Exact
  for a window of up to 7 days; a longer one repeats the latest week. Shifts are cut at 24 h
  (a pattern is at most a day long) and to whole minutes;
- **recent tickets as** ``demand.history``: every ticket created in the window, with what the
  simulation needs (created, channel, team, required skills, priority, effort, the capability
  of a call booked for it) and nothing else: no requester, no owner, and pseudonymous ids
  (``h000001`` in creation order), because the file is shared beyond the service;
- the SLA targets of the tenant's policy, per priority, read as calendar minutes (the policy
  counts business minutes: the simulation has no business calendar, so this is stricter
  outside business hours), and its time zone as the baseline's.

Busy intervals (meetings) and shrinkage are not exported: a planner sets ``shrinkage`` per
agent in the scenario. Routing is the production mix (the service's own).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from api import mapping
from api.db.models import Agent as AgentRow
from api.db.models import Call as CallRow
from api.db.models import Capability as CapabilityRow
from api.db.models import Shift as ShiftRow
from api.db.models import Skill as SkillRow
from api.db.models import Team as TeamRow
from api.db.models import Ticket as TicketRow
from api.errors import InvalidInput
from api.policies import service as policies
from scenarios.model import AgentPlan, Demand, Routing, ShiftPattern, SlaTarget, TicketSpec, World

MAX_DAYS = 31


def _patterns(shifts: Sequence[ShiftRow], zone: ZoneInfo) -> tuple[ShiftPattern, ...]:
    """Weekly patterns of one agent's shifts (sorted by start): the latest week wins per
    weekday (see the module docstring)."""
    by_day: dict[int, list[tuple[datetime, time, time]]] = defaultdict(list)
    for row in shifts:
        start = row.start_at.astimezone(zone).replace(second=0, microsecond=0)
        length = min(row.end_at - row.start_at, timedelta(hours=24))
        end = (start + length).replace(second=0, microsecond=0)
        if end <= start:
            continue
        by_day[start.weekday()].append((start, start.timetz().replace(tzinfo=None), end.time()))
    grouped: dict[tuple[time, time], set[int]] = defaultdict(set)
    for day, found in by_day.items():
        latest = max(start.date() for start, _, _ in found)
        for start, clock_start, clock_end in found:
            if start.date() == latest:
                grouped[(clock_start, clock_end)].add(day)
    return tuple(
        ShiftPattern(weekdays=tuple(sorted(days)), start=start, end=end)
        for (start, end), days in sorted(grouped.items())
    )


def live_world(
    session: Session,
    tenant_id: str,
    *,
    name: str,
    start: datetime,
    days: int,
    now: datetime,
    max_tickets: int,
) -> World:
    """The tenant's organisation and its tickets created in ``[start, start + days)`` as a
    :class:`World` (the window's end is capped at ``now``). Raises :class:`InvalidInput` naming
    the query parameter when the window is out of range, holds more than ``max_tickets``
    tickets, or none at all (a baseline needs demand to simulate)."""
    if not 1 <= days <= MAX_DAYS:
        raise InvalidInput.one("query.days", f"must be between 1 and {MAX_DAYS}")
    start = start.replace(second=0, microsecond=0)
    end = start + timedelta(days=days)
    if start >= now:
        raise InvalidInput.one("query.tickets_since", "must be in the past: history is replayed")
    policy = policies.load(session, tenant_id)
    zone_name = policy.sla.schedule.timezone if policy.sla is not None else "UTC"
    skills = [
        mapping.skill(row)
        for row in session.scalars(
            select(SkillRow).where(SkillRow.tenant_id == tenant_id).order_by(SkillRow.id)
        )
    ]
    teams = [
        mapping.team(row, row.scope or policy.team_scope)
        for row in session.scalars(
            select(TeamRow).where(TeamRow.tenant_id == tenant_id).order_by(TeamRow.id)
        )
    ]
    capabilities = [
        mapping.capability_from_row(row)
        for row in session.scalars(
            select(CapabilityRow)
            .where(CapabilityRow.tenant_id == tenant_id)
            .order_by(CapabilityRow.id)
        )
    ]
    shifts: dict[str, list[ShiftRow]] = defaultdict(list)
    for shift in session.scalars(
        select(ShiftRow)
        .where(
            ShiftRow.tenant_id == tenant_id,
            ShiftRow.start_at >= start,
            ShiftRow.start_at < end,
        )
        .order_by(ShiftRow.agent_id, ShiftRow.start_at, ShiftRow.id)
    ):
        shifts[shift.agent_id].append(shift)
    agents = [
        AgentPlan(
            id=row.id,
            team=row.team_id,
            skills={s.skill_id: s.level for s in row.skills},
            shifts=_patterns(shifts.get(row.id, []), ZoneInfo(row.timezone)),
            timezone=row.timezone,
            capacity=row.capacity,
            channel_capacity=dict(row.channel_capacity or {}),
        )
        for row in session.scalars(
            select(AgentRow).where(AgentRow.tenant_id == tenant_id).order_by(AgentRow.id)
        )
    ]
    window = (
        TicketRow.tenant_id == tenant_id,
        TicketRow.created_at >= start,
        TicketRow.created_at < min(end, now),
    )
    count = session.scalar(select(func.count()).select_from(TicketRow).where(*window)) or 0
    if count > max_tickets:
        raise InvalidInput.one(
            "query.tickets_since",
            f"the window holds {count} tickets, more than the {max_tickets} a baseline may "
            "replay: start later or ask for fewer days",
        )
    if count == 0:
        raise InvalidInput.one(
            "query.tickets_since",
            "no tickets were created in the window: a baseline needs demand to replay",
        )
    rows = list(session.scalars(select(TicketRow).where(*window)))
    rows.sort(key=lambda r: (r.created_at, r.id))
    calls: dict[str, str] = {}
    ids = [r.id for r in rows]
    for i in range(0, len(ids), 500):
        for ticket_id, capability in session.execute(
            select(CallRow.ticket_id, CallRow.capability_id)
            .where(CallRow.tenant_id == tenant_id, CallRow.ticket_id.in_(ids[i : i + 500]))
            .order_by(CallRow.ticket_id, CallRow.created_at, CallRow.id)
        ):
            calls.setdefault(ticket_id, capability)
    known_capabilities = {c.id for c in capabilities}
    history = [
        TicketSpec(
            id=f"h{n:06d}",
            created_at=row.created_at,
            team=row.team_id,
            channel=row.channel,
            required_skills={s.skill_id: s.level for s in row.required_skills},
            priority=row.priority.to_solver(),
            effort_minutes=row.effort_minutes,
            call=calls[row.id] if calls.get(row.id) in known_capabilities else None,
        )
        for n, row in enumerate(rows, start=1)
    ]
    sla = (
        [
            SlaTarget(
                priority=priority.to_solver(),
                first_response_minutes=target.first_response_minutes,
                resolution_minutes=target.resolution_minutes,
            )
            for priority, target in sorted(policy.sla.targets.items(), key=lambda kv: kv[0].value)
            if target.first_response_minutes is not None or target.resolution_minutes is not None
        ]
        if policy.sla is not None
        else []
    )
    return World(
        name=name,
        start=start,
        days=days,
        skills=tuple(skills),
        teams=tuple(teams),
        agents=tuple(agents),
        demand=Demand(history=tuple(history)),
        sla=tuple(sla),
        routing=Routing(),
        capabilities=tuple(capabilities),
        timezone=zone_name,
        interval_minutes=30,
    )
