"""Deciding and claiming: the real-time index a decision is made on, and the locks that keep two
decisions from giving one agent's last free slot away twice.

Locks are taken in one order everywhere -- the tenant lock, then tickets, then agents -- so they
cannot deadlock. The hot path (:func:`api.assignment.service.assign_many`) decides a whole batch
under the tenant lock, where the loads read are the truth and no agent row needs locking;
escalate, re-route and a re-optimization's plan take the tenant lock first (they move many
tickets), then the ticket and agent locks (:func:`claim_agent`, :func:`decide_and_claim`).
The organisation comes from a cached real-time index (see :mod:`api.assignment.cache`); only
the loads are read per request.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import (
    bindparam,
    func,
    select,
)
from sqlalchemy.orm import Session, joinedload

from api import solver_input
from api.assignment.cache import OrgIndex, RealtimeCache
from api.db.models import Agent as AgentRow
from api.db.models import Ticket as TicketRow
from api.enums import AgentStatus
from api.errors import Conflict, NotFound
from api.solver_input import HELD, held_work, without_tickets
from solver.plan import Decision
from solver.problem import Ticket
from solver.realtime import RealtimeIndex

if TYPE_CHECKING:  # named in annotations only: the hot path's view sits above this module
    from api.assignment.service import TicketView

log = logging.getLogger(__name__)

_T = TicketRow.__table__


def base_index(
    *, session: Session, cache: RealtimeCache, tenant_id: str, now: datetime
) -> RealtimeIndex:
    """The tenant's organisation as a real-time index: cached while its version holds, with the
    booked calls' holds as busy time read in this transaction (see :mod:`api.assignment.cache`)."""
    entry = cache.get_or_build(
        session,
        tenant_id,
        lambda found: cache.fresh(found, now),
        lambda: _build_entry(session, tenant_id, now),
    )
    holds = solver_input.call_holds(session, tenant_id, entry.origin, entry.horizon_end)
    return entry.with_holds(holds)


def _build_entry(session: Session, tenant_id: str, now: datetime) -> OrgIndex:
    problem = solver_input.build_problem(
        session=session, tenant_id=tenant_id, now=now, ticket_ids=[], with_calls=False
    )
    assert problem.horizon_end is not None
    holds = solver_input.call_holds(session, tenant_id, now, problem.horizon_end)
    return OrgIndex(RealtimeIndex.build(problem), holds)


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
    held = without_tickets(held_work(session, tenant_id), deciding)
    return base.with_loads(now, held.work, held.channels)


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
_AGENT = select(_A.c.capacity, _A.c.status, _A.c.channel_capacity).where(
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
_AGENT_HOLDS_CHANNEL = _AGENT_HOLDS.where(_T.c.channel == bindparam("channel"))
BUSY = "is being given another ticket right now"


def claim_agent(
    *,
    session: Session,
    tenant_id: str,
    agent_id: str,
    ticket_id: str,
    wait: bool = True,
    channel: str | None = None,
) -> str | None:
    """Lock the agent and re-check, with what is committed now, that they can take one more
    ticket (of ``channel``, when they cap it). None when they can; else why not (the caller
    decides again without them).

    ``wait=False`` skips an agent another transaction holds (``SKIP LOCKED``) and says
    :data:`BUSY`: concurrent requests that all chose the same best agent spread over the next
    best instead of queueing behind one row lock."""
    conn = session.connection()
    params = {"tenant": tenant_id, "agent": agent_id, "ticket": ticket_id}
    found = conn.execute(_AGENT_FOR_UPDATE if wait else _AGENT_SKIP_LOCKED, params).one_or_none()
    if found is None:
        return "no longer exists" if wait else BUSY
    capacity, status, caps = found
    if AgentStatus(status) is not AgentStatus.AVAILABLE:
        return f"is {AgentStatus(status).value}"
    holds = int(conn.execute(_AGENT_HOLDS, params).scalar_one())
    if holds >= capacity:
        return f"holds {holds} of {capacity} tickets"
    cap = None if channel is None else (caps or {}).get(channel)
    if cap is not None:
        held = int(conn.execute(_AGENT_HOLDS_CHANNEL, {**params, "channel": channel}).scalar_one())
        if held >= cap:
            return f"holds {held} of {cap} {channel} tickets"
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
            channel=ticket.channel,
        )
        if refusal is None:
            return decision
        (busy if refusal == BUSY else full).add(agent)
        log.debug("agent %s %s; deciding again", agent, refusal)
        current = _without_agents(index, full | busy)
    raise Conflict("agents' loads kept changing while deciding; retry the request")


def _without_agents(index: RealtimeIndex, agents: Iterable[str]) -> RealtimeIndex:
    for agent in agents:
        index = index.with_full(agent)  # filled up since the loads were read
    return index
