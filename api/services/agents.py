"""Agents of one tenant: who can work, on what, how much at once, and whether they are in."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from api.db.models import Agent, AgentSkill
from api.enums import AgentStatus
from api.errors import Conflict
from api.schemas.agents import AgentCreate, AgentUpdate
from api.services import common

WHAT = "agent"


def get(*, session: Session, tenant_id: str, agent_id: str) -> Agent | None:
    return common.get(session, Agent, tenant_id, agent_id)


def get_or_raise(*, session: Session, tenant_id: str, agent_id: str) -> Agent:
    return common.get_or_raise(session, Agent, tenant_id, agent_id, WHAT)


def _set_skills(row: Agent, tenant_id: str, levels: Mapping[str, int]) -> None:
    # Edit in place rather than replacing the collection: a delete and an insert of the same
    # (tenant, agent, skill) key in one flush would be ordered insert-first and collide.
    current = {s.skill_id: s for s in row.skills}
    for skill_id, link in current.items():
        if skill_id not in levels:
            row.skills.remove(link)
        else:
            link.level = levels[skill_id]
    for skill_id, level in levels.items():
        if skill_id not in current:
            row.skills.append(
                AgentSkill(tenant_id=tenant_id, agent_id=row.id, skill_id=skill_id, level=level)
            )


def create(*, session: Session, tenant_id: str, data: AgentCreate, now: datetime) -> Agent:
    if get(session=session, tenant_id=tenant_id, agent_id=data.id) is not None:
        raise Conflict(f"agent {data.id!r} already exists")
    common.raise_if(
        common.unknown_team(session, tenant_id, data.team)
        + common.unknown_skills(session, tenant_id, data.skills, "skills")
    )
    row = Agent(
        tenant_id=tenant_id,
        id=data.id,
        name=data.name,
        team_id=data.team,
        capacity=data.capacity,
        timezone=data.timezone,
        status=data.status,
        created_at=now,
        updated_at=now,
        skills=[],
    )
    _set_skills(row, tenant_id, data.skills)
    session.add(row)
    session.flush()
    return row


def update(
    *, session: Session, tenant_id: str, agent_id: str, data: AgentUpdate, now: datetime
) -> Agent:
    row = get_or_raise(session=session, tenant_id=tenant_id, agent_id=agent_id)
    changes = data.changes()
    errors = []
    if "team" in changes:
        errors += common.unknown_team(session, tenant_id, changes["team"])
    if "skills" in changes:
        errors += common.unknown_skills(session, tenant_id, changes["skills"], "skills")
    common.raise_if(errors)
    for name, value in changes.items():
        if name == "team":
            row.team_id = value
        elif name == "skills":
            _set_skills(row, tenant_id, value)
        else:
            setattr(row, name, value)
    row.updated_at = now
    session.flush()
    return row


def delete(*, session: Session, tenant_id: str, agent_id: str) -> None:
    """Remove the agent with their skills, shifts and busy time (tickets keep the id)."""
    row = get_or_raise(session=session, tenant_id=tenant_id, agent_id=agent_id)
    session.delete(row)
    session.flush()


def list(
    *,
    session: Session,
    tenant_id: str,
    cursor: str | None,
    limit: int,
    team: str | None = None,
    status: AgentStatus | None = None,
) -> tuple[Sequence[Agent], str | None]:
    stmt = select(Agent).where(Agent.tenant_id == tenant_id)
    if team is not None:
        stmt = stmt.where(Agent.team_id == team)
    if status is not None:
        stmt = stmt.where(Agent.status == status)
    return common.paginate(session, stmt, Agent.id, cursor, limit)
