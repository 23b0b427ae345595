"""Read a tenant's rows for the solver: what a ``solver.problem.Problem`` and a booking
engine's ``BookingState`` hold. The rows become solver types in :mod:`api.mapping`;
this module decides which rows, and counts the loads.

The assignment endpoints (real-time, batch), escalation and what-if runs all start here, so the
rules of what the solver sees live in one place:

- **Planned tickets** are the active ones (status new/open), optionally of one team, or exactly
  the ``ticket_ids`` asked for. A planned ticket keeps ``owner_agent``, so the batch can
  penalise moving it (churn) and the real-time path can prefer continuity.
- **Work an agent already holds** is every ticket they own (new, open or pending) that is *not*
  being planned: it counts toward ``open_tickets`` (capacity), and the active part of it toward
  ``backlog_minutes`` (worked before anything new; pending waits on the customer, not the agent).
  A planned ticket is never counted twice. The held tickets are counted per channel too
  (``channel_open``), for the agents' per-channel capacity.
- **Team scope**: each team's scope is its own ``scope``, else the tenant's ``team_scope``
  policy (:mod:`api.policies`); the solver keeps (``team_only``) or prefers (``borrow``) the
  owning team's agents.
- **Fairness**: ``recent_assignments`` counts assigned/reassigned events to the agent in the
  last ``recent_window`` (8 h by default).
- **Time**: shifts and busy intervals overlapping ``[now, horizon_end)`` (the solver clips them).
- **Calls are workload** (:func:`call_holds`): a booked call holds an agent from its start to
  ``occupied_until`` (its end plus the capability's buffer) -- the agent it is bound to, or, while
  unbound, the agent the booking engine's own matching holds for it (``cover_agent``, its
  tentative cover). Each hold is busy time for ticket work, so neither the real-time path nor the
  batch optimizer plans a ticket in it. Holding the engine's cover (rather than "any k of the
  pool") is the rule for unbound calls because it is the engine's own coverage witness: the
  covers are distinct qualified agents, on shift and free, one per call at every moment, so with
  ticket work kept out of them every booked call stays coverable exactly as the engine checked
  it; the capability's ``reserve_share`` already bounds how much of a team calls may hold. An
  unbound call nobody can cover (no ``cover_agent``: it is at risk) holds nobody.

Every query filters by ``tenant_id``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy import bindparam, func, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.functions import coalesce

from api import mapping
from api.db.models import Agent as AgentRow
from api.db.models import BusyInterval, CallStatus, CapabilitySkill, Shift, TicketEvent
from api.db.models import Call as CallRow
from api.db.models import Capability as CapabilityRow
from api.db.models import Skill as SkillRow
from api.db.models import Team as TeamRow
from api.db.models import Ticket as TicketRow
from api.enums import TicketEventKind, TicketStatus
from api.errors import NotFound
from api.policies import service as policies
from solver.capability import BookingState, Capability
from solver.problem import DEFAULT_HORIZON, Agent, Interval, Problem, with_busy

ACTIVE = (TicketStatus.NEW, TicketStatus.OPEN)
HELD = (TicketStatus.NEW, TicketStatus.OPEN, TicketStatus.PENDING)
RECENT_WINDOW = timedelta(hours=8)


class TicketLike(Protocol):
    """What :func:`without_tickets` reads of a ticket (an ORM row or the hot path's view)."""

    @property
    def owner_agent_id(self) -> str | None: ...
    @property
    def status(self) -> TicketStatus: ...
    @property
    def effort_minutes(self) -> int: ...
    @property
    def channel(self) -> str: ...


def _planned_tickets(
    session: Session, tenant_id: str, team: str | None, ticket_ids: Collection[str] | None
) -> list[TicketRow]:
    stmt = select(TicketRow).where(TicketRow.tenant_id == tenant_id)
    if ticket_ids is not None:
        rows = session.scalars(stmt.where(TicketRow.id.in_(list(ticket_ids)))).all()
        missing = set(ticket_ids) - {r.id for r in rows}
        if missing:
            raise NotFound("ticket", sorted(missing)[0])
        order = {t: i for i, t in enumerate(ticket_ids)}
        return sorted(rows, key=lambda r: order[r.id])
    stmt = stmt.where(TicketRow.status.in_(ACTIVE))
    if team is not None:
        stmt = stmt.where(TicketRow.team_id == team)
    return list(session.scalars(stmt.order_by(TicketRow.created_at, TicketRow.id)))


_T = TicketRow.__table__
_HELD_WORK = (
    select(
        _T.c.owner_agent_id,
        _T.c.channel,
        func.count(),
        func.sum(_T.c.effort_minutes).filter(_T.c.status.in_(ACTIVE)),
    )
    .where(
        _T.c.tenant_id == bindparam("tenant"),
        _T.c.owner_agent_id.is_not(None),
        _T.c.status.in_(HELD),
    )
    .group_by(_T.c.owner_agent_id, _T.c.channel)
)


@dataclass(frozen=True, slots=True)
class HeldWork:
    """What agents hold: ``work`` is agent -> (tickets held, active backlog minutes), what
    capacity and the queue see; ``channels`` is agent -> channel -> tickets held of it."""

    work: dict[str, tuple[int, int]] = field(default_factory=dict)
    channels: dict[str, dict[str, int]] = field(default_factory=dict)

    def get(self, agent: str, default: tuple[int, int] = (0, 0)) -> tuple[int, int]:
        return self.work.get(agent, default)

    def of_channel(self, agent: str, channel: str) -> int:
        return self.channels.get(agent, {}).get(channel, 0)


def held_work(session: Session, tenant_id: str) -> HeldWork:
    """What every agent holds (see :class:`HeldWork`), in one grouped query.

    Aggregated in the database over every held ticket; callers take the tickets they are
    deciding out with :func:`without_tickets` (no IN-list of thousands of ids). A prebuilt Core
    statement: the real-time assignment path reads it on every batch."""
    # .all(): one fetch of the ~agents rows instead of one per row, which costs less CPU
    # (figures: benchmarks/README.md, Figures behind design choices).
    rows = session.connection().execute(_HELD_WORK, {"tenant": tenant_id}).all()
    work: dict[str, tuple[int, int]] = {}
    channels: dict[str, dict[str, int]] = {}
    for a, channel, n, m in rows:
        if a is None:
            continue
        held, minutes = work.get(a, (0, 0))
        work[a] = (held + int(n), minutes + int(m or 0))
        channels.setdefault(a, {})[channel] = int(n)
    return HeldWork(work, channels)


def without_tickets(held: HeldWork, rows: Iterable[TicketLike]) -> HeldWork:
    """``held`` minus the given tickets (they are being decided, so not yet anyone's load)."""
    work = dict(held.work)
    channels = held.channels
    copied: set[str] = set()
    for row in rows:
        agent = row.owner_agent_id
        if agent in work and row.status in HELD:
            n, minutes = work[agent]
            work[agent] = (n - 1, minutes - (row.effort_minutes if row.status in ACTIVE else 0))
            if agent not in copied:
                channels = channels if copied else dict(channels)
                channels[agent] = dict(channels.get(agent, {}))
                copied.add(agent)
            per = channels[agent]
            per[row.channel] = max(0, per.get(row.channel, 0) - 1)
    return HeldWork(work, channels)


def _recent_assignments(session: Session, tenant_id: str, since: datetime) -> dict[str, int]:
    stmt = (
        select(TicketEvent.to_agent, func.count())
        .where(
            TicketEvent.tenant_id == tenant_id,
            TicketEvent.kind.in_([TicketEventKind.ASSIGNED, TicketEventKind.REASSIGNED]),
            TicketEvent.to_agent.is_not(None),
            TicketEvent.at >= since,
        )
        .group_by(TicketEvent.to_agent)
    )
    # The query leaves out events to nobody; the filter says so to the type checker too.
    return {agent: int(n) for agent, n in session.execute(stmt) if agent is not None}


def _intervals(
    session: Session,
    model: type[Shift] | type[BusyInterval],
    tenant_id: str,
    agent_ids: Collection[str] | None,
    start: datetime,
    end: datetime,
) -> dict[str, list[Interval]]:
    stmt = select(model.agent_id, model.start_at, model.end_at).where(
        model.tenant_id == tenant_id, model.end_at > start, model.start_at < end
    )
    if agent_ids is not None:
        stmt = stmt.where(model.agent_id.in_(list(agent_ids)))
    out: dict[str, list[Interval]] = defaultdict(list)
    for agent, s, e in session.execute(stmt):
        out[agent].append(Interval(s, e))
    return out


_C = CallRow.__table__
_HOLDER = coalesce(_C.c.bound_agent, _C.c.cover_agent)
_CALL_HOLDS = (
    select(_HOLDER, _C.c.start_at, _C.c.occupied_until)
    .where(
        _C.c.tenant_id == bindparam("tenant"),
        _C.c.status.in_((CallStatus.BOOKED, CallStatus.COMPLETED)),  # completed: in wrap-up
        _HOLDER.is_not(None),
        _C.c.occupied_until > bindparam("start"),
        _C.c.start_at < bindparam("end"),
    )
    .order_by(_HOLDER, _C.c.start_at, _C.c.occupied_until)
)

Holds = tuple[tuple[str, datetime, datetime], ...]
"""(agent, start, occupied_until) of every booked call holding an agent, sorted."""


def call_holds(session: Session, tenant_id: str, start: datetime, end: datetime) -> Holds:
    """Every booked call overlapping ``[start, end)`` with the agent it holds (bound, else the
    engine's tentative cover), from its start to ``occupied_until``; see the module docstring.
    A prebuilt Core statement (the real-time path reads it on every batch, over the
    ``ix_calls_tenant_status_start`` index)."""
    params = {"tenant": tenant_id, "start": start, "end": end}
    return tuple(
        (str(agent), s, e) for agent, s, e in session.connection().execute(_CALL_HOLDS, params)
    )


def holds_by_agent(holds: Holds) -> dict[str, list[Interval]]:
    """``holds`` as the busy time they add per agent (for :func:`solver.problem.with_busy`)."""
    out: dict[str, list[Interval]] = defaultdict(list)
    for agent, s, e in holds:
        out[agent].append(Interval(s, e))
    return out


def build_problem(
    *,
    session: Session,
    tenant_id: str,
    now: datetime,
    horizon_end: datetime | None = None,
    team: str | None = None,
    ticket_ids: Collection[str] | None = None,
    agent_team: str | None = None,
    recent_window: timedelta = RECENT_WINDOW,
    with_calls: bool = True,
) -> Problem:
    """The solver's view of the tenant at ``now``.

    ``team`` limits the planned tickets to one team's active queue; ``ticket_ids`` plans exactly
    those tickets (any status; unknown ids are a 404). ``agent_team`` limits the agents to one
    team (default: every agent of the tenant, since skills cross team lines). The booked calls'
    holds are the agents' busy time too (:func:`call_holds`) unless ``with_calls`` is False
    (the real-time cache adds them itself, since calls change without an organisation change).
    """
    horizon_end = horizon_end or now + DEFAULT_HORIZON
    planned = _planned_tickets(session, tenant_id, team, ticket_ids)
    agent_stmt = select(AgentRow).where(AgentRow.tenant_id == tenant_id)
    if agent_team is not None:
        agent_stmt = agent_stmt.where(AgentRow.team_id == agent_team)
    agent_rows = list(session.scalars(agent_stmt.order_by(AgentRow.id)))
    agent_ids = None if agent_team is None else [a.id for a in agent_rows]
    shifts = _intervals(session, Shift, tenant_id, agent_ids, now, horizon_end)
    busy = _intervals(session, BusyInterval, tenant_id, agent_ids, now, horizon_end)
    held = without_tickets(held_work(session, tenant_id), planned)
    recent = _recent_assignments(session, tenant_id, now - recent_window)

    agents = tuple(
        mapping.agent_from_row(
            row,
            shifts.get(row.id, ()),
            busy.get(row.id, ()),
            open_tickets=held.get(row.id, (0, 0))[0],
            backlog_minutes=held.get(row.id, (0, 0))[1],
            recent_assignments=recent.get(row.id, 0),
            channel_open=held.channels.get(row.id),
        )
        for row in agent_rows
    )
    skills = tuple(
        mapping.skill(r)
        for r in session.scalars(
            select(SkillRow).where(SkillRow.tenant_id == tenant_id).order_by(SkillRow.id)
        )
    )
    default_scope = policies.load(session, tenant_id).team_scope
    teams = tuple(
        mapping.team(r, r.scope or default_scope)
        for r in session.scalars(
            select(TeamRow).where(TeamRow.tenant_id == tenant_id).order_by(TeamRow.id)
        )
    )
    problem = Problem(
        now=now,
        agents=agents,
        tickets=tuple(mapping.ticket_from_row(t) for t in planned),
        skills=skills,
        teams=teams,
        horizon_end=horizon_end,
    )
    if not with_calls:
        return problem
    return with_busy(problem, holds_by_agent(call_holds(session, tenant_id, now, horizon_end)))


_CAPABILITIES = (
    select(
        CapabilityRow.id,
        CapabilityRow.name,
        CapabilityRow.call_minutes,
        CapabilityRow.horizon_days,
        CapabilityRow.min_notice_minutes,
        CapabilityRow.buffer_minutes,
        CapabilityRow.granularity_minutes,
        CapabilityRow.reserve_share,
    )
    .where(CapabilityRow.tenant_id == bindparam("tenant"))
    .order_by(CapabilityRow.id)
)
_REQUIREMENTS = (
    select(CapabilitySkill.capability_id, CapabilitySkill.skill_id, CapabilitySkill.level)
    .where(CapabilitySkill.tenant_id == bindparam("tenant"))
    .order_by(CapabilitySkill.capability_id, CapabilitySkill.skill_id)  # as the rows list them
)


def capabilities(*, session: Session, tenant_id: str) -> tuple[Capability, ...]:
    """Every capability of the tenant as the booking engine's type, ordered by id.

    Read on every slot query and booking (capabilities are not part of the organisation
    version): two prepared Core statements, not ORM rows with their requirements loaded after
    (a booking refusal's reads were a third ORM overhead; figures: benchmarks/README.md,
    Booking race)."""
    params = {"tenant": tenant_id}
    needs: dict[str, dict[str, int]] = {}
    for cap_id, skill_id, level in session.execute(_REQUIREMENTS, params):
        needs.setdefault(cap_id, {})[skill_id] = level
    return tuple(
        mapping.capability_from_columns(r, needs.get(r.id, {}))
        for r in session.execute(_CAPABILITIES, params)
    )


# Beyond the longest horizon, how far the booking state's agents' shifts and busy time reach
# (so a call at the horizon's end plus its buffer, or a long-booked call, sees its agents).
_BOOKING_MARGIN = timedelta(days=2)


def booking_reach(
    now: datetime, capabilities: Sequence[Capability], calls: Sequence[CallRow]
) -> datetime:
    """How far the booking engine needs the agents' shifts and busy time at ``now``: past the
    longest booking horizon and every live call, with a margin (beyond the engine's grid)."""
    horizon = max((c.horizon for c in capabilities), default=timedelta(0))
    return max(
        [now + horizon + _BOOKING_MARGIN, *(c.occupied_until + _BOOKING_MARGIN for c in calls)]
    )


def booking_agents(
    *, session: Session, tenant_id: str, start: datetime, end: datetime
) -> tuple[Agent, ...]:
    """Every agent of the tenant as the booking engine sees them: team, skills, status, time
    zone, and the shifts and busy time overlapping ``[start, end)``. The engine never looks at
    ticket loads or fairness counts, so they are not read (left at zero)."""
    rows = list(
        session.scalars(
            select(AgentRow).where(AgentRow.tenant_id == tenant_id).order_by(AgentRow.id)
        )
    )
    shifts = _intervals(session, Shift, tenant_id, None, start, end)
    busy = _intervals(session, BusyInterval, tenant_id, None, start, end)
    return tuple(
        mapping.agent_from_row(row, shifts.get(row.id, ()), busy.get(row.id, ())) for row in rows
    )


def booking_state(
    *,
    session: Session,
    tenant_id: str,
    now: datetime,
    calls: Sequence[CallRow],
    caps: Sequence[Capability] | None = None,
    agents: tuple[Agent, ...] | None = None,
    blocked: Mapping[str, str] | None = None,
) -> BookingState:
    """The booking engine's view of the tenant at ``now``: every agent (shifts, busy time,
    status, skills), every capability, and ``calls`` (the booked ones still to come or under
    way; the caller reads them, usually inside the tenant lock). Each call's ticket owner is
    passed as ``owner_agent`` (preferred by just-in-time binding), and the stored tentative
    cover as ``cover`` (so the engine rebuilds the cover it had).

    ``caps`` and ``agents`` may be passed when the caller has them (the capabilities read in
    this transaction; agents from :mod:`api.bookings.cache`, valid at ``now`` and
    reaching :func:`booking_reach`); otherwise they are read here. ``blocked`` (agent id ->
    why) are the agents whose calendar cannot be trusted now
    (:func:`api.calendar_sync.health.trust`): they keep their bound calls and get nothing new.
    """
    caps = tuple(caps) if caps is not None else capabilities(session=session, tenant_id=tenant_id)
    if agents is None:
        agents = booking_agents(
            session=session, tenant_id=tenant_id, start=now, end=booking_reach(now, caps, calls)
        )
    ticket_ids = sorted({c.ticket_id for c in calls})
    owners: dict[str, str | None] = {}
    if ticket_ids:
        owners = {
            ticket: owner
            for ticket, owner in session.execute(
                select(TicketRow.id, TicketRow.owner_agent_id).where(
                    TicketRow.tenant_id == tenant_id, TicketRow.id.in_(ticket_ids)
                )
            )
        }
    return BookingState(
        now=now,
        agents=agents,
        capabilities=caps,
        calls=tuple(mapping.call(c, owners.get(c.ticket_id)) for c in calls),
        cover={c.id: c.cover_agent for c in calls if c.cover_agent and not c.bound_agent},
        blocked=blocked or {},
    )
