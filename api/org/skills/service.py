"""Skills (including languages and tiers) of one tenant."""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from api.common import service as common
from api.db import inserts
from api.db.base import table_of
from api.db.locks import lock_tenant
from api.db.models import AgentSkill, CapabilitySkill, Skill, TicketSkill
from api.errors import Conflict
from api.org.skills.schemas import SkillCreate, SkillUpdate

WHAT = "skill"


def get(*, session: Session, tenant_id: str, skill_id: str) -> Skill | None:
    return common.get(session, Skill, tenant_id, skill_id)


def get_or_raise(*, session: Session, tenant_id: str, skill_id: str) -> Skill:
    return common.get_or_raise(session, Skill, tenant_id, skill_id, WHAT)


def create(*, session: Session, tenant_id: str, data: SkillCreate, now: datetime) -> Skill:
    common.refuse_duplicate(session, Skill, tenant_id, data.id, WHAT)
    row = Skill(
        tenant_id=tenant_id,
        id=data.id,
        name=data.name,
        kind=data.kind,
        created_at=now,
        updated_at=now,
    )
    return common.insert(session, row)


def create_many(
    *, session: Session, tenant_id: str, rows: Sequence[SkillCreate], now: datetime
) -> builtins.list[str]:
    """The import of ``rows``; the contract is :mod:`api.common.service`'s."""
    lock_tenant(session, tenant_id)
    ids = [r.id for r in rows]
    taken = common.existing_ids(session, Skill, tenant_id, ids)
    common.refuse_rows(ids, taken, WHAT, lambda _i: [])
    values = [
        {
            "tenant_id": tenant_id,
            "id": r.id,
            "name": r.name,
            "kind": r.kind,
            "created_at": now,
            "updated_at": now,
        }
        for r in rows
    ]
    inserts.insert_many(session, table_of(Skill), values)
    return ids


def update(
    *, session: Session, tenant_id: str, skill_id: str, data: SkillUpdate, now: datetime
) -> Skill:
    row = get_or_raise(session=session, tenant_id=tenant_id, skill_id=skill_id)
    common.save_changes(session, row, data.changes(), now)
    return row


def delete(*, session: Session, tenant_id: str, skill_id: str) -> None:
    row = get_or_raise(session=session, tenant_id=tenant_id, skill_id=skill_id)
    users = common.references(
        session,
        tenant_id,
        skill_id,
        (
            (AgentSkill.skill_id, "agents"),
            (TicketSkill.skill_id, "tickets"),
            (CapabilitySkill.skill_id, "capabilities"),
        ),
    )
    if users:
        raise Conflict(f"skill {skill_id!r} is still required by {', '.join(users)}")
    common.remove(session, row)


def list(
    *,
    session: Session,
    tenant_id: str,
    cursor: str | None,
    limit: int,
    updated_since: datetime | None = None,
) -> tuple[Sequence[Skill], str | None]:
    stmt = select(Skill).where(Skill.tenant_id == tenant_id)
    return common.paginate_since(
        session, stmt, Skill.id, Skill.updated_at, updated_since, cursor, limit
    )
