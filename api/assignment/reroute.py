"""Re-route an absent agent's unstarted work (set by ``POST /v1/agents/{id}/status`` or a PATCH
that sends an agent away or offline), by a policy: reassign in real time, back to the team
queue, or keep.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import (
    select,
)
from sqlalchemy.orm import Session

from api import mapping
from api.assignment.cache import (
    RealtimeCache,
)
from api.assignment.claims import decide_and_claim, realtime_for
from api.common import service as common
from api.db.locks import lock_tenant
from api.db.models import Agent as AgentRow
from api.db.models import Ticket as TicketRow
from api.enums import AgentStatus, TicketStatus
from api.solver_input import HELD
from api.tickets.owner import OwnerWriter, kind_name
from solver.plan import Reason

log = logging.getLogger(__name__)


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
            changes.append((row, reasons, kind_name(kind)))
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
            changes.append((row, reasons, kind_name(kind)))
    writer.write(session)
    session.flush()
    return RerouteResult(agent, policy, changes, kept)
