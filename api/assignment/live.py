"""Live channels wait seconds, not hours: their team queue is re-offered as an agent frees up.

A chat, a phone call or a messaging conversation (and a tenant's own channel declared ``live``
in its policies) has a customer waiting on the line. When nobody could take one, it waits in
its team's queue; this module offers that queue again the moment an agent frees up:

- a ticket leaves an agent's hands (solved or closed, or moved to someone else or back to the
  queue): :func:`api.tickets.owner.note_freed` records the agent on the unit of work's session;
- an agent becomes available again, or gains capacity.

:func:`offer` takes the oldest, most urgent unowned live-channel tickets of the teams the freed
agents may serve (their own team; any team whose scope -- its own, else the tenant's -- is
``borrow``), decides each through the real-time path (the freed agent, or whoever fits best)
and writes the moves through the one owner writer, so each lands with its history step and the
usual ``ticket.assigned`` webhook. It runs under the tenant lock like the hot path, so the loads it
reads are the truth.

Where it runs. The agent paths (``PATCH /v1/agents/{id}``, ``POST /v1/agents/{id}/status``)
already take the tenant lock first, so the offer is part of their unit of work. A ticket
``PUT`` does not take the tenant lock (it would serialize every helpdesk sync behind the
assignment batches), and which agent it frees is known only after it wrote; so the route runs
:func:`offer_after_commit` right after its commit, in the same request: a second, locked unit
of work, before the answer goes out. If that one fails, the helpdesk's change stands (it was
committed) and the failure is logged; the next free-up or assignment re-offers the queue.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import case, select
from sqlalchemy.orm import Session

from api import mapping
from api.assignment.cache import RealtimeCache
from api.assignment.claims import realtime_for
from api.db.locks import lock_tenant
from api.db.models import Agent as AgentRow
from api.db.models import Team as TeamRow
from api.db.models import Ticket as TicketRow
from api.enums import AgentStatus, TeamScope, TicketPriority
from api.policies import service as policies
from api.solver_input import ACTIVE, held_work
from api.tickets.owner import OwnerWriter, take_freed
from solver.plan import Reason

log = logging.getLogger(__name__)

SOURCE = "live_queue"
# How many waiting tickets one free-up looks at, per free slot of the freed agents (a ticket
# nobody can take must not hide the ones behind it), and at most.
_LOOK_PER_SLOT = 4
_LOOK_MAX = 200


@dataclass(frozen=True, slots=True)
class Offered:
    ticket_id: str
    agent_id: str
    channel: str


def offer(
    *,
    session: Session,
    cache: RealtimeCache,
    tenant_id: str,
    agents: Collection[str],
    now: datetime,
    actor: str | None,
) -> list[Offered]:
    """Re-offer the live channels' team queue now that ``agents`` freed up (the caller holds
    the tenant lock: see the module docstring). Returns what was assigned, oldest first."""
    if not agents:
        return []
    freed = [
        a
        for a in session.scalars(
            select(AgentRow).where(AgentRow.tenant_id == tenant_id, AgentRow.id.in_(agents))
        )
        if a.status is AgentStatus.AVAILABLE
    ]
    if not freed:
        return []
    held = held_work(session, tenant_id)
    free_slots = sum(max(0, a.capacity - held.get(a.id)[0]) for a in freed)
    if free_slots <= 0:
        return []
    rules = policies.load(session, tenant_id)
    live = sorted(c for c, is_live in rules.channel_live().items() if is_live)
    stmt = select(TicketRow).where(
        TicketRow.tenant_id == tenant_id,
        TicketRow.status.in_(ACTIVE),
        TicketRow.owner_agent_id.is_(None),
        TicketRow.channel.in_(live),
    )
    if rules.team_scope is TeamScope.TEAM_ONLY:
        # The freed agents' own teams, and the teams that lend by their own ``scope``; the
        # index decides each ticket by its team's scope either way: this only narrows the read.
        lenders = session.scalars(
            select(TeamRow.id).where(
                TeamRow.tenant_id == tenant_id, TeamRow.scope == TeamScope.BORROW
            )
        )
        teams = {a.team_id for a in freed} | set(lenders)
        stmt = stmt.where(TicketRow.team_id.in_(sorted(teams)))
    look = min(_LOOK_MAX, _LOOK_PER_SLOT * free_slots)
    # Most urgent first, oldest first within a priority (the column holds the priority's name).
    urgency = case(
        {p.value: int(p.to_solver()) for p in TicketPriority}, value=TicketRow.priority, else_=0
    )
    waiting = list(
        session.scalars(
            stmt.order_by(urgency.desc(), TicketRow.created_at, TicketRow.id)
            .limit(look)
            .with_for_update()
        )
    )
    if not waiting:
        return []
    index = realtime_for(session=session, cache=cache, tenant_id=tenant_id, now=now)
    who = ", ".join(sorted(a.id for a in freed))
    writer = OwnerWriter(tenant_id, now)
    out: list[Offered] = []
    for row in waiting:
        ticket = mapping.ticket_from_row(row)
        decision = index.assign(ticket, now=now, top_k=0)
        if decision.agent_id is None:
            continue
        index.commit(decision, ticket)
        why = Reason(
            SOURCE,
            f"{row.channel} is a live channel: team {row.team_id}'s queue re-offered as "
            f"{who} freed up",
        )
        writer.move(
            row,
            agent=decision.agent_id,
            actor=actor,
            source=SOURCE,
            reasons=(why, *decision.reasons),
        )
        out.append(Offered(row.id, decision.agent_id, row.channel))
    writer.write(session)
    take_freed(session, tenant_id)  # who gained work here freed no one
    return out


def waiting_live(session: Session, tenant_id: str) -> bool:
    """Whether any unowned active ticket of a live channel waits in a team queue."""
    live = sorted(c for c, is_live in policies.channel_live(session, tenant_id).items() if is_live)
    stmt = (
        select(TicketRow.id)
        .where(
            TicketRow.tenant_id == tenant_id,
            TicketRow.status.in_(ACTIVE),
            TicketRow.owner_agent_id.is_(None),
            TicketRow.channel.in_(live),
        )
        .limit(1)
    )
    return session.scalars(stmt).first() is not None


def offer_after_commit(
    *,
    make_session: Callable[[], Session],
    cache: RealtimeCache,
    tenant_id: str,
    agents: Collection[str],
    now: datetime,
    actor: str | None,
) -> list[Offered]:
    """:func:`offer` in a unit of work of its own (the tenant lock first), committed; for a
    caller whose own unit of work freed ``agents`` without the lock. Never raises: a failure is
    logged and the caller's committed change stands (see the module docstring)."""
    if not agents:
        return []
    try:
        with make_session() as session:
            # Most free-ups find no live ticket waiting: say so without taking the lock. One
            # that arrives just after this look is not missed: its own assignment decides it.
            if not waiting_live(session, tenant_id):
                return []
        with make_session() as session:
            lock_tenant(session, tenant_id)
            done = offer(
                session=session,
                cache=cache,
                tenant_id=tenant_id,
                agents=agents,
                now=now,
                actor=actor,
            )
            session.commit()
            return done
    except Exception:
        log.exception("re-offering the live queue of tenant %s failed", tenant_id)
        return []
