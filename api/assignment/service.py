"""Assignment use cases: assign one ticket now, escalate, re-route an absent agent's work, and
re-optimize a queue as a background job.

Every change of owner goes through :class:`api.tickets.owner.OwnerWriter`, so each one lands
the same way: the ticket row, one history event (assigned / reassigned, with the reasons), and
one webhook event (``ticket.assigned`` / ``ticket.reassigned``) in the same transaction.

Concurrency. Deciding who takes a ticket reads every agent's load, and two decisions racing
could both give the last free slot of one agent away. Locks are taken in one order everywhere —
the tenant lock, then tickets, then agents — so they cannot deadlock:

- **assign** (the hot path, :func:`assign_many`) decides a whole *batch* of tickets in one
  transaction: the tenant lock (:func:`api.db.locks.lock_tenant`: an advisory lock on
  PostgreSQL, ``BEGIN IMMEDIATE`` on SQLite), the batch's tickets ``FOR UPDATE``, every agent's
  load read once, then each ticket decided in turn on the in-memory index (each decision loads
  its agent before the next is made), and every owner change, history event and outbox row
  written with one statement each. Under the tenant lock the loads read are the truth, so no
  agent can be over-filled and no agent row needs locking. The service groups concurrent
  requests of a tenant into such batches (:mod:`api.assignment.batch`), so the lock is
  taken once per batch, not per request. (This replaced per-request ticket and agent row locks:
  ~10 round trips per request, and a deadlock when two requests each held a full agent's row
  while waiting for the other's.)
- **escalate, re-route, apply a plan** take the per-tenant lock first (they move many tickets),
  then the ticket and agent locks (:func:`claim_agent`).

The organisation comes from a cached real-time index (see :mod:`api.assignment.cache`);
only the loads are read per request.

The re-optimization job solves *outside* any transaction (it may take seconds), then applies the
plan inside the tenant lock, skipping every ticket that changed meanwhile and every assignment
that no longer fits (the agent went away or filled up), and finishes the job in that same
transaction, so the plan's changes and the job's result commit together or not at all.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import (
    and_,
    bindparam,
    func,
    or_,
    select,
)
from sqlalchemy.orm import Session, joinedload

from api import events, mapping, solver_input
from api.assignment.cache import (
    RealtimeCache,
    mark_full,
    with_loads,
)
from api.common import service as common
from api.db.jobs import Job
from api.db.locks import lock_tenant
from api.db.models import Agent as AgentRow
from api.db.models import Capability as CapabilityRow
from api.db.models import Ticket as TicketRow
from api.db.models import TicketSkill
from api.enums import AgentStatus, TicketEventKind, TicketPriority, TicketStatus
from api.errors import Conflict, FieldError, InvalidInput, NotFound
from api.jobs import queue as job_queue
from api.jobs.worker import JobContext, PermanentJobError
from api.mapping import Owner, owner_of, reasons_json
from api.solver_input import ACTIVE, HELD, held_work, without_tickets
from api.tickets import service as tickets
from api.tickets.owner import OwnerWriter
from solver.batch import BatchParams, optimize
from solver.plan import Decision, Plan, Reason
from solver.problem import Ticket
from solver.realtime import RealtimeIndex
from solver.validation import check_plan

log = logging.getLogger(__name__)

OPTIMIZE_JOB = "queue.optimize"


# --------------------------------------------------------------------------- shared pieces


_T = TicketRow.__table__


def base_index(
    *, session: Session, cache: RealtimeCache, tenant_id: str, now: datetime
) -> RealtimeIndex:
    """The tenant's organisation as a real-time index: cached while its version holds."""
    return cache.get_or_build(
        session,
        tenant_id,
        lambda index: cache.fresh(index, now),
        lambda: _build_index(session, tenant_id, now),
    )


def _build_index(session: Session, tenant_id: str, now: datetime) -> RealtimeIndex:
    problem = solver_input.build_problem(
        session=session, tenant_id=tenant_id, now=now, ticket_ids=[]
    )
    return RealtimeIndex.build(problem)


def realtime_for(
    *,
    session: Session,
    cache: RealtimeCache,
    tenant_id: str,
    now: datetime,
    deciding: Iterable[TicketRow | TicketView] = (),
) -> RealtimeIndex:
    """An index with every agent's current load, ``deciding`` tickets left out of it."""
    base = base_index(session=session, cache=cache, tenant_id=tenant_id, now=now)
    return with_loads(base, now, without_tickets(held_work(session, tenant_id), deciding))


def _kind_name(kind: TicketEventKind | None) -> str | None:
    return None if kind is None else kind.value


def _is_postgres(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def lock_ticket(*, session: Session, tenant_id: str, ticket_id: str) -> TicketRow:
    """The ticket with its required skills, row-locked for this transaction (one round trip)."""
    stmt = (
        select(TicketRow)
        .options(joinedload(TicketRow.required_skills))
        .where(TicketRow.tenant_id == tenant_id, TicketRow.id == ticket_id)
        .with_for_update(of=TicketRow)
        .execution_options(populate_existing=True)
    )
    row = session.scalars(stmt).unique().one_or_none()
    if row is None:
        raise NotFound("ticket", ticket_id)
    return row


_A = AgentRow.__table__
_AGENT = select(_A.c.capacity, _A.c.status).where(
    _A.c.tenant_id == bindparam("tenant"), _A.c.id == bindparam("agent")
)
_AGENT_FOR_UPDATE = _AGENT.with_for_update()
_AGENT_SKIP_LOCKED = _AGENT.with_for_update(skip_locked=True)
_AGENT_HOLDS = (
    select(func.count())
    .select_from(_T)
    .where(
        _T.c.tenant_id == bindparam("tenant"),
        _T.c.owner_agent_id == bindparam("agent"),
        _T.c.status.in_(HELD),
        _T.c.id != bindparam("ticket"),
    )
)
BUSY = "is being given another ticket right now"


def claim_agent(
    *, session: Session, tenant_id: str, agent_id: str, ticket_id: str, wait: bool = True
) -> str | None:
    """Lock the agent and re-check, with what is committed now, that they can take one more
    ticket. None when they can; else why not (the caller decides again without them).

    ``wait=False`` skips an agent another transaction holds (``SKIP LOCKED``) and says
    :data:`BUSY`: concurrent requests that all chose the same best agent spread over the next
    best instead of queueing behind one row lock."""
    conn = session.connection()
    params = {"tenant": tenant_id, "agent": agent_id, "ticket": ticket_id}
    found = conn.execute(_AGENT_FOR_UPDATE if wait else _AGENT_SKIP_LOCKED, params).one_or_none()
    if found is None:
        return "no longer exists" if wait else BUSY
    capacity, status = found
    if AgentStatus(status) is not AgentStatus.AVAILABLE:
        return f"is {AgentStatus(status).value}"
    holds = int(conn.execute(_AGENT_HOLDS, params).scalar_one())
    if holds >= capacity:
        return f"holds {holds} of {capacity} tickets"
    return None


_MAX_CLAIMS = 8


def decide_and_claim(
    *,
    session: Session,
    index: RealtimeIndex,
    row: TicketRow | TicketView,
    ticket: Ticket,
    now: datetime,
    top_k: int = 3,
) -> Decision:
    """The real-time decision for ``row``, its agent locked and re-checked (see the module
    docstring). An agent found full or gone is left out and the ticket decided again; one that
    another request is assigning to right now is passed over while others can take it, and
    waited for when nobody else can. After a few such rounds the caller gets a 409 to retry."""
    full: set[str] = set()
    busy: set[str] = set()
    must_wait = not _is_postgres(session)  # SQLite has no SKIP LOCKED (nor any need for it)
    current = index
    for attempt in range(_MAX_CLAIMS):
        decision = current.assign(ticket, now=now, top_k=top_k)
        agent = decision.agent_id
        if agent is None and busy:
            # Only agents busy this instant could take it: wait for the best of them.
            busy.clear()
            must_wait = True
            current = _without_agents(index, full)
            continue
        if agent is None or agent == row.owner_agent_id:
            return decision  # the queue, or the owner keeps it: no new load on anyone
        wait = must_wait or attempt == _MAX_CLAIMS - 1
        refusal = claim_agent(
            session=session,
            tenant_id=row.tenant_id,
            agent_id=agent,
            ticket_id=row.id,
            wait=wait,
        )
        if refusal is None:
            return decision
        (busy if refusal == BUSY else full).add(agent)
        log.debug("agent %s %s; deciding again", agent, refusal)
        current = _without_agents(index, full | busy)
    raise Conflict("agents' loads kept changing while deciding; retry the request")


def _without_agents(index: RealtimeIndex, agents: Iterable[str]) -> RealtimeIndex:
    for agent in agents:
        index = mark_full(index, agent)
    return index


# --------------------------------------------------------------------------- assign one


@dataclass(frozen=True, slots=True)
class AssignResult:
    decision: Decision
    previous: Owner
    event: str | None


@dataclass(frozen=True, slots=True)
class TicketView:
    """A ticket as the hot path reads it: plain columns, no ORM object (see assign_ticket)."""

    tenant_id: str
    id: str
    team_id: str
    priority: TicketPriority
    status: TicketStatus
    created_at: datetime
    first_response_due: datetime | None
    resolution_due: datetime | None
    effort_minutes: int
    owner_agent_id: str | None
    previous_agent_id: str | None
    requester: str | None
    required: dict[str, int]

    @classmethod
    def from_columns(cls, columns: Sequence[Any], required: dict[str, int]) -> TicketView:
        """A view from a row of ``_TICKET`` (its columns are this class's fields, in order)."""
        (
            tenant,
            ident,
            team,
            priority,
            status,
            created,
            fr_due,
            res_due,
            effort,
            owner,
            prev,
            who,
        ) = columns
        return cls(
            tenant,
            ident,
            team,
            priority,
            status,
            created,
            fr_due,
            res_due,
            effort,
            owner,
            prev,
            who,
            required,
        )

    def to_solver(self) -> Ticket:
        return mapping.ticket(self, self.required)


_TS = TicketSkill.__table__
_TICKET = select(
    _T.c.tenant_id,
    _T.c.id,
    _T.c.team_id,
    _T.c.priority,
    _T.c.status,
    _T.c.created_at,
    _T.c.first_response_due,
    _T.c.resolution_due,
    _T.c.effort_minutes,
    _T.c.owner_agent_id,
    _T.c.previous_agent_id,
    _T.c.requester,
).where(_T.c.tenant_id == bindparam("tenant"), _T.c.id == bindparam("ticket"))
_TICKET_SKILLS = select(_TS.c.skill_id, _TS.c.level).where(
    _TS.c.tenant_id == bindparam("tenant"), _TS.c.ticket_id == bindparam("ticket")
)


def _read_ticket(session: Session, tenant_id: str, ticket_id: str) -> TicketView:
    conn = session.connection()
    params = {"tenant": tenant_id, "ticket": ticket_id}
    found = conn.execute(_TICKET, params).one_or_none()
    if found is None:
        raise NotFound("ticket", ticket_id)
    required = {skill: int(level) for skill, level in conn.execute(_TICKET_SKILLS, params)}
    return TicketView.from_columns(found, required)


def assign_ticket(
    *,
    session: Session,
    cache: RealtimeCache,
    tenant_id: str,
    ticket_id: str,
    now: datetime,
    actor: str | None,
    top_k: int = 3,
    dry_run: bool = False,
    note: str | None = None,
) -> AssignResult:
    """Assign one ticket now through the solver's real-time path (the caller commits): a batch
    of one (:func:`assign_many`); ``dry_run`` decides and explains without locking or writing.

    This is the service's hot path (hundreds per second), so it reads and writes with prebuilt
    Core statements rather than ORM objects, through the one owner writer.
    """
    if not dry_run:
        request = AssignRequest(ticket_id, now, actor, top_k, note)
        [outcome] = assign_many(
            session=session, cache=cache, tenant_id=tenant_id, requests=[request]
        )
        if isinstance(outcome, Exception):
            raise outcome
        return outcome
    view = _read_ticket(session, tenant_id, ticket_id)
    if not view.status.is_active:
        raise Conflict(f"ticket {ticket_id!r} is {view.status.value}; only new or open is assigned")
    index = realtime_for(
        session=session, cache=cache, tenant_id=tenant_id, now=now, deciding=[view]
    )
    decision = index.assign(view.to_solver(), now=now, top_k=top_k)
    return AssignResult(decision, owner_of(view), None)


@dataclass(frozen=True, slots=True)
class AssignRequest:
    """One "assign this ticket now" of a batch (see :func:`assign_many`)."""

    ticket_id: str
    now: datetime
    actor: str | None
    top_k: int = 3
    note: str | None = None


_TICKETS_FOR_UPDATE = (
    select(*_TICKET.selected_columns, _TS.c.skill_id, _TS.c.level)
    .select_from(
        _T.outerjoin(_TS, and_(_TS.c.tenant_id == _T.c.tenant_id, _TS.c.ticket_id == _T.c.id))
    )
    .where(_T.c.tenant_id == bindparam("tenant"), _T.c.id.in_(bindparam("ids", expanding=True)))
    .order_by(_T.c.id)
    .with_for_update(of=_T)
)


def _read_tickets(session: Session, tenant_id: str, ids: Sequence[str]) -> dict[str, TicketView]:
    """The tickets with their required skills, row-locked, in one round trip."""
    rows = session.connection().execute(_TICKETS_FOR_UPDATE, {"tenant": tenant_id, "ids": ids})
    columns: dict[str, tuple[Any, ...]] = {}
    required: dict[str, dict[str, int]] = {}
    for *found, skill, level in rows:
        tid = found[1]
        if tid not in columns:
            columns[tid] = tuple(found)
            required[tid] = {}
        if skill is not None:
            required[tid][skill] = int(level)
    return {tid: TicketView.from_columns(cols, required[tid]) for tid, cols in columns.items()}


def assign_many(
    *,
    session: Session,
    cache: RealtimeCache,
    tenant_id: str,
    requests: Sequence[AssignRequest],
) -> list[AssignResult | Exception]:
    """Assign a batch of distinct tickets of one tenant in one unit of work (the caller
    commits); returns, per request and in order, its result or the error it answers with
    (:class:`NotFound`, :class:`Conflict`, a solver ``ProblemError``): one bad request does not
    fail the others.

    Must open the unit of work (it takes the tenant lock first; see the module docstring).
    Tickets are decided in request order, each seeing the loads of the decisions before it,
    exactly as if the requests had run one after another. The owner writer writes the batch's
    changes with one statement per kind of row.
    """
    ids = [r.ticket_id for r in requests]
    if len(set(ids)) != len(ids):
        raise ValueError("a batch assigns each ticket once; send repeats in a later batch")
    if not requests:
        return []
    lock_tenant(session, tenant_id)
    now = max(r.now for r in requests)
    views = _read_tickets(session, tenant_id, sorted(ids))
    deciding = [v for v in views.values() if v.status.is_active]
    index = realtime_for(
        session=session, cache=cache, tenant_id=tenant_id, now=now, deciding=deciding
    )
    out: list[AssignResult | Exception] = []
    writer = OwnerWriter(tenant_id, now)
    for request in requests:
        view = views.get(request.ticket_id)
        if view is None:
            out.append(NotFound("ticket", request.ticket_id))
            continue
        if not view.status.is_active:
            out.append(
                Conflict(f"ticket {view.id!r} is {view.status.value}; only new or open is assigned")
            )
            continue
        ticket = view.to_solver()
        try:
            decision = index.assign(ticket, now=now, top_k=request.top_k)
        except Exception as exc:  # answered to this request alone
            owner = view.owner_agent_id
            if owner is not None and owner in index.problem.agent_index:
                # Its load was left out for deciding; it stays with its owner, so count it.
                index = index.with_assignment(ticket, owner, now)
            out.append(exc)
            continue
        if decision.agent_id is not None:
            index.commit(decision, ticket)
        kind = writer.move(
            view,
            agent=decision.agent_id,
            actor=request.actor,
            source="realtime",
            reasons=decision.reasons,
            note=request.note,
            detail={
                "score": decision.score,
                "alternatives": [a.agent_id for a in decision.alternatives],
            },
        )
        out.append(AssignResult(decision, owner_of(view), _kind_name(kind)))
    writer.write(session)
    return out


# --------------------------------------------------------------------------- escalate


@dataclass(frozen=True, slots=True)
class EscalateResult:
    row: TicketRow
    previous_team: str
    previous_skills: dict[str, int]
    previous_owner: Owner
    assignment: AssignResult | None


def escalate(
    *,
    session: Session,
    cache: RealtimeCache,
    tenant_id: str,
    ticket_id: str,
    now: datetime,
    actor: str | None,
    reason: str,
    capability: str | None = None,
    required_skills: Mapping[str, int] | None = None,
    replace_skills: bool = False,
    team: str | None = None,
    reassign: bool = True,
) -> EscalateResult:
    """Raise the ticket's requirements and/or move its team; keep one owner on record."""
    if capability is None and required_skills is None and team is None:
        raise InvalidInput.one("body", "name a capability, required_skills or a team")
    lock_tenant(session, tenant_id)
    row = lock_ticket(session=session, tenant_id=tenant_id, ticket_id=ticket_id)
    if row.status.is_done:
        raise Conflict(f"ticket {ticket_id!r} is {row.status.value}; it cannot be escalated")
    errors: list[FieldError] = []
    if team is not None:
        errors += common.unknown_team(session, tenant_id, team)
    if required_skills:
        errors += common.unknown_skills(session, tenant_id, required_skills, "required_skills")
    adding: dict[str, int] = dict(required_skills or {})
    if capability is not None:
        # The row, not the organisation's service: assignment sits below org (whose agent
        # route re-routes through this module), so it reads what it needs itself.
        cap = common.get(session, CapabilityRow, tenant_id, capability)
        if cap is None:
            errors.append(FieldError("capability", f"unknown capability {capability!r}"))
        else:
            for req in cap.requirements:
                adding[req.skill_id] = max(adding.get(req.skill_id, 0), req.level)
    common.raise_if(errors)

    before_skills = {s.skill_id: s.level for s in row.required_skills}
    if replace_skills and (capability is not None or required_skills is not None):
        after_skills = adding
    else:
        # Escalation only ever raises what the ticket needs.
        after_skills = dict(before_skills)
        for skill, level in adding.items():
            after_skills[skill] = max(after_skills.get(skill, 0), level)
    previous_team, previous_owner = row.team_id, owner_of(row)
    new_team = team or row.team_id

    writer = OwnerWriter(tenant_id, now)
    writer.escalated(
        row,
        to_team=new_team,
        actor=actor,
        reason=reason,
        data={
            "capability": capability,
            "from_required_skills": before_skills,
            "to_required_skills": after_skills,
            "owner": previous_owner.as_json(),
        },
    )
    tickets.set_required_skills(row, tenant_id, after_skills)
    row.updated_at = now
    session.flush()

    owner_agent = row.owner_agent_id
    owner_ok = owner_agent is not None and _qualifies(session, tenant_id, owner_agent, after_skills)
    assignment: AssignResult | None = None
    if owner_ok:
        # The owner still qualifies: they stay accountable; only the team may change.
        writer.move(
            row,
            agent=owner_agent,
            team=new_team,
            actor=actor,
            reasons=[Reason("escalated", f"escalated to team {new_team}; owner qualifies")],
            source="escalation",
            note=reason,
        )
    elif reassign and row.status.is_active:
        # Decide for the new team (it holds the ticket when nobody fits); the owner event
        # below records the move.
        ticket = replace(mapping.ticket_from_row(row), team=new_team)
        index = realtime_for(
            session=session, cache=cache, tenant_id=tenant_id, now=now, deciding=[row]
        )
        decision = decide_and_claim(session=session, index=index, row=row, ticket=ticket, now=now)
        kind = writer.move(
            row,
            agent=decision.agent_id,
            team=new_team,
            actor=actor,
            reasons=decision.reasons,
            source="escalation",
            note=reason,
        )
        assignment = AssignResult(decision, previous_owner, _kind_name(kind))
    else:
        writer.move(
            row,
            agent=None,
            team=new_team,
            actor=actor,
            reasons=[Reason("escalated", f"escalated; held by team {new_team}'s queue")],
            source="escalation",
            note=reason,
        )
    writer.write(session)
    session.flush()
    return EscalateResult(row, previous_team, before_skills, previous_owner, assignment)


def _qualifies(session: Session, tenant_id: str, agent_id: str, needs: Mapping[str, int]) -> bool:
    agent = session.get(AgentRow, (tenant_id, agent_id))
    if agent is None:
        return False
    have = {s.skill_id: s.level for s in agent.skills}
    return all(have.get(s, 0) >= lvl for s, lvl in needs.items())


# --------------------------------------------------------------------------- re-route


@dataclass(frozen=True, slots=True)
class RerouteResult:
    agent: AgentRow
    policy: str
    changes: list[tuple[TicketRow, tuple[Reason, ...], str | None]]
    kept: list[str]


def reroute_agent(
    *,
    session: Session,
    cache: RealtimeCache,
    tenant_id: str,
    agent_id: str,
    now: datetime,
    actor: str | None,
    policy: str = "reassign",
    status: AgentStatus | None = None,
    note: str | None = None,
) -> RerouteResult:
    """Optionally set the agent's status, then, if they are away or offline, move their
    unstarted tickets (status new) by ``policy``: ``reassign`` through the real-time path (the
    team queue when nobody fits), ``queue`` back to the team queue, ``keep`` leaves them.
    Started work (open, pending) stays with the agent: it is already in their hands."""
    lock_tenant(session, tenant_id)
    agent = common.get_or_raise(session, AgentRow, tenant_id, agent_id, "agent")
    # Tickets before agents (the lock order): lock their tickets, then change their status.
    held = list(
        session.scalars(
            select(TicketRow)
            .where(
                TicketRow.tenant_id == tenant_id,
                TicketRow.owner_agent_id == agent_id,
                TicketRow.status.in_(HELD),
            )
            .order_by(TicketRow.created_at, TicketRow.id)
            .with_for_update()
        )
    )
    if status is not None and agent.status != status:
        agent.status = status
        agent.updated_at = now
        session.flush()  # bumps the organisation version: the index rebuilds without them
    unstarted = [t for t in held if t.status is TicketStatus.NEW]
    kept = [t.id for t in held if t.status is not TicketStatus.NEW]
    if agent.status is AgentStatus.AVAILABLE or policy == "keep":
        return RerouteResult(agent, policy, [], kept + [t.id for t in unstarted])

    why = f"agent {agent_id} is {agent.status.value}"
    writer = OwnerWriter(tenant_id, now)
    changes: list[tuple[TicketRow, tuple[Reason, ...], str | None]] = []
    if policy == "queue":
        for row in unstarted:
            reasons: tuple[Reason, ...] = (
                Reason("available", f"{why}; back to team {row.team_id}'s queue"),
            )
            kind = writer.move(
                row, agent=None, actor=actor, reasons=reasons, source="reroute", note=note
            )
            changes.append((row, reasons, _kind_name(kind)))
    else:
        index = realtime_for(
            session=session, cache=cache, tenant_id=tenant_id, now=now, deciding=unstarted
        )
        # Most urgent first; each decision loads its agent before the next one is made.
        urgent_first = sorted(unstarted, key=lambda t: (-t.priority.to_solver(), t.created_at))
        for row in urgent_first:
            ticket = mapping.ticket_from_row(row)
            # No runners-up: a re-route reports where each ticket went, not who else could.
            decision = decide_and_claim(
                session=session, index=index, row=row, ticket=ticket, now=now, top_k=0
            )
            index.commit(decision, ticket)
            reasons = (Reason("available", why), *decision.reasons)
            kind = writer.move(
                row,
                agent=decision.agent_id,
                actor=actor,
                reasons=reasons,
                source="reroute",
                note=note,
            )
            changes.append((row, reasons, _kind_name(kind)))
    writer.write(session)
    session.flush()
    return RerouteResult(agent, policy, changes, kept)


# --------------------------------------------------------------------------- re-optimize


def enqueue_optimize(
    *,
    session: Session,
    tenant_id: str,
    now: datetime,
    team: str | None,
    time_limit_s: float,
    seed: int,
    max_attempts: int,
) -> Job:
    if team is not None:
        common.raise_if(common.unknown_team(session, tenant_id, team))
    return job_queue.enqueue(
        session=session,
        tenant_id=tenant_id,
        kind=OPTIMIZE_JOB,
        payload={"team": team, "time_limit_s": time_limit_s, "seed": seed},
        now=now,
        max_attempts=max_attempts,
    )


def _queue_ticket_ids(session: Session, tenant_id: str, team: str | None) -> list[str]:
    """The re-optimizable queue: active tickets nobody has started (no owner agent, or owned
    but still new). Open tickets with an owner are being worked and stay put."""
    stmt = select(TicketRow.id).where(
        TicketRow.tenant_id == tenant_id,
        TicketRow.status.in_(ACTIVE),
        or_(TicketRow.owner_agent_id.is_(None), TicketRow.status == TicketStatus.NEW),
    )
    if team is not None:
        stmt = stmt.where(TicketRow.team_id == team)
    return list(session.scalars(stmt.order_by(TicketRow.created_at, TicketRow.id)))


def _snapshot(row: TicketRow) -> tuple[Any, ...]:
    return (row.owner_agent_id, row.team_id, row.status, row.updated_at)


def run_optimize_job(ctx: JobContext) -> dict[str, Any]:
    """The ``queue.optimize`` handler: solve the queue, apply the plan, finish atomically."""
    payload = ctx.payload
    team = payload.get("team")
    try:
        params = BatchParams(
            time_limit_s=float(payload.get("time_limit_s", 10.0)), seed=int(payload.get("seed", 0))
        )
    except (TypeError, ValueError) as exc:
        raise PermanentJobError(f"bad payload: {exc}") from None
    now = ctx.now()
    with ctx.session_factory() as session:
        ids = _queue_ticket_ids(session, ctx.tenant_id, team)
        problem = solver_input.build_problem(
            session=session, tenant_id=ctx.tenant_id, now=now, ticket_ids=ids
        )
        seen = (
            {
                r.id: _snapshot(r)
                for r in session.scalars(
                    select(TicketRow).where(
                        TicketRow.tenant_id == ctx.tenant_id, TicketRow.id.in_(ids)
                    )
                )
            }
            if ids
            else {}
        )
    plan = optimize(problem, params)
    violations = check_plan(problem, plan)
    if violations:
        # The solver promises valid plans; applying an invalid one would break capacity rules.
        raise PermanentJobError(
            "the optimizer returned an invalid plan: "
            + "; ".join(f"{v.rule}: {v.detail}" for v in violations[:5])
        )
    with ctx.session_factory() as session:
        lock_tenant(session, ctx.tenant_id)
        result = _apply_plan(session, ctx, plan, seen, team, now)
        events.emit(
            session=session,
            tenant_id=ctx.tenant_id,
            type=events.EventType.QUEUE_OPTIMIZED,
            data=events.queue_optimized_payload(
                job_id=ctx.job.id,
                team_id=team,
                changes=len(result["changes"]),
                skipped=len(result["skipped"]),
                status=result["stats"]["status"],
                objective=result["stats"]["objective"],
            ),
            now=ctx.now(),
        )
        ctx.complete(session, result)
        session.commit()
    return result


def _apply_plan(
    session: Session,
    ctx: JobContext,
    plan: Plan,
    seen: Mapping[str, tuple[Any, ...]],
    team: str | None,
    now: datetime,
) -> dict[str, Any]:
    tenant_id = ctx.tenant_id
    # The lock order: tickets, then agents (see the module docstring).
    rows = (
        {
            r.id: r
            for r in session.scalars(
                select(TicketRow)
                .where(TicketRow.tenant_id == tenant_id, TicketRow.id.in_(list(seen)))
                .order_by(TicketRow.id)
                .with_for_update()
            )
        }
        if seen
        else {}
    )
    skipped: list[dict[str, str]] = []
    current = {tid: row for tid, row in rows.items() if _snapshot(row) == seen.get(tid)}
    for tid in seen:
        if tid not in current:
            skipped.append({"ticket": tid, "why": "the ticket changed while the plan was solved"})

    agents = {
        a.id: a
        for a in session.scalars(
            select(AgentRow)
            .where(AgentRow.tenant_id == tenant_id)
            .order_by(AgentRow.id)
            .with_for_update()
        )
    }
    # Loads now (read under the agents' locks), without the tickets this plan decides: who can
    # still take how many.
    held = without_tickets(held_work(session, tenant_id), current.values())
    room = Counter(
        {
            a.id: a.capacity - held.get(a.id, (0, 0))[0]
            for a in agents.values()
            if a.status is AgentStatus.AVAILABLE
        }
    )
    changes: list[dict[str, Any]] = []
    unchanged = 0
    moves: list[tuple[str, str | None, Sequence[Reason]]] = []
    for a in sorted(plan.assignments, key=lambda a: (a.agent_id, a.position)):
        if a.ticket_id not in current:
            continue
        if room[a.agent_id] <= 0:
            skipped.append(
                {"ticket": a.ticket_id, "why": f"agent {a.agent_id} is no longer free to take it"}
            )
            continue
        room[a.agent_id] -= 1
        moves.append((a.ticket_id, a.agent_id, a.reasons))
    for q in plan.queued:
        if q.ticket_id in current:
            moves.append((q.ticket_id, None, q.reasons))
    writer = OwnerWriter(tenant_id, now)
    for tid, agent, reasons in moves:
        row = current[tid]
        before = owner_of(row)
        kind = writer.move(
            row,
            agent=agent,
            actor=f"job:{ctx.job.id}"[:64],
            reasons=reasons,
            source="optimizer",
            job_id=ctx.job.id,
        )
        if kind is None:
            unchanged += 1
            continue
        changes.append(
            {
                "ticket": tid,
                "from": before.as_json(),
                "to": owner_of(row).as_json(),
                "event": kind.value,
                "why": reasons_json(reasons),
            }
        )
    writer.write(session)
    session.flush()
    stats = plan.stats
    return {
        "team": team,
        "tickets": len(seen),
        "changes": changes,
        "unchanged": unchanged,
        "skipped": skipped,
        "stats": {
            "policy": stats.policy,
            "status": stats.status.value,
            "objective": stats.objective,
            "bound": stats.bound,
            "gap": stats.gap,
            "parts": stats.parts.as_dict() if stats.parts is not None else None,
            "wall_seconds": stats.wall_seconds,
            "notes": list(stats.notes),
        },
    }
