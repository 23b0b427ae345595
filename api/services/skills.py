"""Skills (including languages and tiers) of one tenant."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from api.db.models import AgentSkill, CapabilitySkill, Skill, TicketSkill
from api.errors import Conflict
from api.schemas.skills import SkillCreate, SkillUpdate
from api.services import common

WHAT = "skill"


def get(*, session: Session, tenant_id: str, skill_id: str) -> Skill | None:
    return common.get(session, Skill, tenant_id, skill_id)


def get_or_raise(*, session: Session, tenant_id: str, skill_id: str) -> Skill:
    return common.get_or_raise(session, Skill, tenant_id, skill_id, WHAT)


def create(*, session: Session, tenant_id: str, data: SkillCreate, now: datetime) -> Skill:
    if get(session=session, tenant_id=tenant_id, skill_id=data.id) is not None:
        raise Conflict(f"skill {data.id!r} already exists")
    row = Skill(
        tenant_id=tenant_id,
        id=data.id,
        name=data.name,
        kind=data.kind,
        created_at=now,
        updated_at=now,
    )
    session.add(row)
    session.flush()
    return row


def update(
    *, session: Session, tenant_id: str, skill_id: str, data: SkillUpdate, now: datetime
) -> Skill:
    row = get_or_raise(session=session, tenant_id=tenant_id, skill_id=skill_id)
    for name, value in data.changes().items():
        setattr(row, name, value)
    row.updated_at = now
    session.flush()
    return row


def delete(*, session: Session, tenant_id: str, skill_id: str) -> None:
    row = get_or_raise(session=session, tenant_id=tenant_id, skill_id=skill_id)
    users = []
    for model, label in (
        (AgentSkill, "agents"),
        (TicketSkill, "tickets"),
        (CapabilitySkill, "capabilities"),
    ):
        n = session.scalar(
            select(func.count()).where(model.tenant_id == tenant_id, model.skill_id == skill_id)
        )
        if n:
            users.append(f"{n} {label}")
    if users:
        raise Conflict(f"skill {skill_id!r} is still required by {', '.join(users)}")
    session.delete(row)
    session.flush()


def list(
    *, session: Session, tenant_id: str, cursor: str | None, limit: int
) -> tuple[Sequence[Skill], str | None]:
    stmt = select(Skill).where(Skill.tenant_id == tenant_id)
    return common.paginate(session, stmt, Skill.id, cursor, limit)
