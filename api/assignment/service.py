"""Assign one ticket now: the hot path.

:func:`assign_many` decides a whole *batch* of tickets of one tenant in one transaction: the
tenant lock (:func:`api.db.locks.lock_tenant`: an advisory lock on PostgreSQL, ``BEGIN
IMMEDIATE`` on SQLite), the batch's tickets ``FOR UPDATE``, every agent's load read once, then
each ticket decided in turn on the in-memory index (each decision loads its agent before the
next is made), and every owner change written by the one owner writer
(:class:`api.tickets.owner.OwnerWriter`: the ticket row, one history event with the reasons, one
webhook event, in the same transaction). Under the tenant lock the loads read are the truth, so
no agent can be over-filled and no agent row needs locking. The service groups concurrent
requests of a tenant into such batches (:mod:`api.assignment.batch`), so the lock is taken once
per batch, not per request (per-request ticket and agent row locks cost ~10 round trips a request
and could deadlock two requests each holding a full agent's row). Escalation, re-routing and
re-optimization are :mod:`~api.assignment.escalate`, :mod:`~api.assignment.reroute` and
:mod:`~api.assignment.optimize`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from sqlalchemy import (
    and_,
    bindparam,
    select,
)
from sqlalchemy.orm import Session

from api import mapping
from api.assignment.cache import (
    RealtimeCache,
)
from api.assignment.claims import realtime_for
from api.db.locks import lock_tenant
from api.db.models import Ticket as TicketRow
from api.db.models import TicketSkill
from api.enums import TicketPriority, TicketStatus
from api.errors import Conflict, NotFound
from api.mapping import Owner, owner_of
from api.tickets.owner import OwnerWriter, kind_name
from solver.plan import Decision
from solver.problem import Ticket

log = logging.getLogger(__name__)


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
    channel: str
    required: dict[str, int]

    @classmethod
    def from_columns(cls, columns: Sequence[Any], required: dict[str, int]) -> TicketView:
        """A view from a row of ``_TICKET`` (its columns are this class's fields, in order)."""
        return cls(**dict(zip(_COLUMNS, columns, strict=True)), required=required)

    def to_solver(self) -> Ticket:
        return mapping.ticket(self, self.required)


_COLUMNS = tuple(f.name for f in fields(TicketView) if f.name != "required")


_T = TicketRow.__table__
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
    _T.c.channel,
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
        out.append(AssignResult(decision, owner_of(view), kind_name(kind)))
    writer.write(session)
    return out
