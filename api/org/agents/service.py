"""Agents of one tenant: who can work, on what, how much at once, and whether they are in."""

from __future__ import annotations

import builtins
from collections.abc import Mapping, Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from api.common import service as common
from api.db import inserts
from api.db.base import table_of
from api.db.locks import lock_tenant
from api.db.models import Agent, AgentSkill, Skill, Team
from api.enums import AgentStatus
from api.errors import FieldError
from api.org.agents.schemas import AgentCreate, AgentUpdate
from api.policies import service as policies

WHAT = "agent"


def get(*, session: Session, tenant_id: str, agent_id: str) -> Agent | None:
    return common.get(session, Agent, tenant_id, agent_id)


def get_or_raise(*, session: Session, tenant_id: str, agent_id: str) -> Agent:
    return common.get_or_raise(session, Agent, tenant_id, agent_id, WHAT)


def _set_skills(row: Agent, tenant_id: str, levels: Mapping[str, int]) -> None:
    common.sync_levels(
        row.skills,
        levels,
        lambda skill_id, level: AgentSkill(
            tenant_id=tenant_id, agent_id=row.id, skill_id=skill_id, level=level
        ),
    )


def create(*, session: Session, tenant_id: str, data: AgentCreate, now: datetime) -> Agent:
    common.refuse_duplicate(session, Agent, tenant_id, data.id, WHAT)
    common.raise_if(
        common.unknown_team(session, tenant_id, data.team)
        + common.unknown_skills(session, tenant_id, data.skills, "skills")
        + _unknown_channels(session, tenant_id, data.channel_capacity)
    )
    row = Agent(
        tenant_id=tenant_id,
        id=data.id,
        name=data.name,
        team_id=data.team,
        capacity=data.capacity,
        channel_capacity=dict(data.channel_capacity),
        timezone=data.timezone,
        status=data.status,
        created_at=now,
        updated_at=now,
        skills=[],
    )
    _set_skills(row, tenant_id, data.skills)
    return common.insert(session, row)


def _unknown_channels(
    session: Session, tenant_id: str, caps: Mapping[str, int]
) -> builtins.list[FieldError]:
    return policies.unknown_channels(
        session, tenant_id, ((f"channel_capacity.{c}", c) for c in caps)
    )


def create_many(
    *, session: Session, tenant_id: str, rows: Sequence[AgentCreate], now: datetime
) -> builtins.list[str]:
    """The import of ``rows``: the contract is :mod:`api.common.service`'s; refused here: an id
    taken, an unknown team or skill. Otherwise inserts the agents and their skills in batches:
    one query per table looked in, no ORM objects and no flush per row.
    """
    lock_tenant(session, tenant_id)
    ids = [r.id for r in rows]
    teams = common.existing_ids(session, Team, tenant_id, (r.team for r in rows))
    skills = common.existing_ids(session, Skill, tenant_id, (s for r in rows for s in r.skills))
    channels: set[str] = set(policies.BUILT_IN_CHANNELS)
    if any(set(r.channel_capacity) - channels for r in rows):
        channels |= set(policies.channel_live(session, tenant_id))
    common.refuse_rows(
        ids,
        common.existing_ids(session, Agent, tenant_id, ids),
        WHAT,
        lambda i: (
            common.unknown_of(rows[i].team, teams, "team", "team")
            + common.unknown_skills_of(rows[i].skills, skills, "skills")
            + [
                FieldError(f"channel_capacity.{c}", f"unknown channel {c!r}")
                for c in rows[i].channel_capacity
                if c not in channels
            ]
        ),
    )
    agent_rows = [
        {
            "tenant_id": tenant_id,
            "id": r.id,
            "name": r.name,
            "team_id": r.team,
            "capacity": r.capacity,
            "channel_capacity": dict(r.channel_capacity),
            "timezone": r.timezone,
            "status": r.status,
            "created_at": now,
            "updated_at": now,
        }
        for r in rows
    ]
    inserts.insert_many(session, table_of(Agent), agent_rows)
    links = [
        {"tenant_id": tenant_id, "agent_id": r.id, "skill_id": skill, "level": level}
        for r in rows
        for skill, level in r.skills.items()
    ]
    inserts.insert_many(session, table_of(AgentSkill), links)
    return ids


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
    if "channel_capacity" in changes:
        errors += _unknown_channels(session, tenant_id, changes["channel_capacity"])
    common.raise_if(errors)
    if "team" in changes:
        changes["team_id"] = changes.pop("team")
    if "skills" in changes:
        _set_skills(row, tenant_id, changes.pop("skills"))
    common.save_changes(session, row, changes, now)
    return row


def delete(*, session: Session, tenant_id: str, agent_id: str) -> None:
    """Remove the agent with their skills, shifts and busy time (tickets keep the id)."""
    common.remove(session, get_or_raise(session=session, tenant_id=tenant_id, agent_id=agent_id))


def list(
    *,
    session: Session,
    tenant_id: str,
    cursor: str | None,
    limit: int,
    team: str | None = None,
    status: AgentStatus | None = None,
    updated_since: datetime | None = None,
) -> tuple[Sequence[Agent], str | None]:
    stmt = select(Agent).where(Agent.tenant_id == tenant_id)
    if team is not None:
        stmt = stmt.where(Agent.team_id == team)
    if status is not None:
        stmt = stmt.where(Agent.status == status)
    return common.paginate_since(
        session, stmt, Agent.id, Agent.updated_at, updated_since, cursor, limit
    )
