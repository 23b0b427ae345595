"""Escalate a ticket to a capability, tier or team; one accountable owner stays on record.

It takes the tenant lock first, then the ticket and agent locks
(:mod:`api.assignment.claims`); the owner change goes through the one owner writer.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime

from sqlalchemy.orm import Session

from api import mapping
from api.assignment.cache import (
    RealtimeCache,
)
from api.assignment.claims import decide_and_claim, lock_ticket, realtime_for
from api.assignment.service import AssignResult
from api.common import service as common
from api.db.locks import lock_tenant
from api.db.models import Agent as AgentRow
from api.db.models import Capability as CapabilityRow
from api.db.models import Ticket as TicketRow
from api.errors import Conflict, FieldError, InvalidInput
from api.mapping import Owner, owner_of
from api.tickets import service as tickets
from api.tickets.owner import OwnerWriter, kind_name
from solver.plan import Reason

log = logging.getLogger(__name__)


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
        assignment = AssignResult(decision, previous_owner, kind_name(kind))
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
