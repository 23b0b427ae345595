"""Capabilities: named requirement sets customers book calls against (never a person)."""

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
from api.db.models import Capability, CapabilitySkill, Skill
from api.org.capabilities.schemas import CapabilityCreate, CapabilityUpdate

WHAT = "capability"
_SETTINGS = (
    "name",
    "call_minutes",
    "horizon_days",
    "min_notice_minutes",
    "buffer_minutes",
    "granularity_minutes",
    "reserve_share",
)


def get(*, session: Session, tenant_id: str, capability_id: str) -> Capability | None:
    return common.get(session, Capability, tenant_id, capability_id)


def get_or_raise(*, session: Session, tenant_id: str, capability_id: str) -> Capability:
    return common.get_or_raise(session, Capability, tenant_id, capability_id, WHAT)


def _set_requirements(row: Capability, tenant_id: str, levels: Mapping[str, int]) -> None:
    common.sync_levels(
        row.requirements,
        levels,
        lambda skill_id, level: CapabilitySkill(
            tenant_id=tenant_id, capability_id=row.id, skill_id=skill_id, level=level
        ),
    )


def create(
    *, session: Session, tenant_id: str, data: CapabilityCreate, now: datetime
) -> Capability:
    common.refuse_duplicate(session, Capability, tenant_id, data.id, WHAT)
    common.raise_if(common.unknown_skills(session, tenant_id, data.requirements, "requirements"))
    row = Capability(
        tenant_id=tenant_id,
        id=data.id,
        created_at=now,
        updated_at=now,
        requirements=[],
        **{name: getattr(data, name) for name in _SETTINGS},
    )
    _set_requirements(row, tenant_id, data.requirements)
    return common.insert(session, row)


def create_many(
    *, session: Session, tenant_id: str, rows: Sequence[CapabilityCreate], now: datetime
) -> builtins.list[str]:
    """The import of ``rows``: the contract is :mod:`api.common.service`'s; refused here: an id
    taken, an unknown skill among the requirements. Otherwise inserts the capabilities and their
    requirements in batches.
    """
    lock_tenant(session, tenant_id)
    ids = [r.id for r in rows]
    skills = common.existing_ids(
        session, Skill, tenant_id, (s for r in rows for s in r.requirements)
    )
    common.refuse_rows(
        ids,
        common.existing_ids(session, Capability, tenant_id, ids),
        WHAT,
        lambda i: common.unknown_skills_of(rows[i].requirements, skills, "requirements"),
    )
    values = [
        {
            "tenant_id": tenant_id,
            "id": r.id,
            "created_at": now,
            "updated_at": now,
            **{name: getattr(r, name) for name in _SETTINGS},
        }
        for r in rows
    ]
    inserts.insert_many(session, table_of(Capability), values)
    links = [
        {"tenant_id": tenant_id, "capability_id": r.id, "skill_id": skill, "level": level}
        for r in rows
        for skill, level in r.requirements.items()
    ]
    inserts.insert_many(session, table_of(CapabilitySkill), links)
    return ids


def update(
    *,
    session: Session,
    tenant_id: str,
    capability_id: str,
    data: CapabilityUpdate,
    now: datetime,
) -> Capability:
    row = get_or_raise(session=session, tenant_id=tenant_id, capability_id=capability_id)
    changes = data.changes()
    if "requirements" in changes:
        levels = changes.pop("requirements")
        common.raise_if(common.unknown_skills(session, tenant_id, levels, "requirements"))
        _set_requirements(row, tenant_id, levels)
    common.save_changes(session, row, changes, now)
    return row


def delete(*, session: Session, tenant_id: str, capability_id: str) -> None:
    row = get_or_raise(session=session, tenant_id=tenant_id, capability_id=capability_id)
    common.remove(session, row)


def list(
    *,
    session: Session,
    tenant_id: str,
    cursor: str | None,
    limit: int,
    updated_since: datetime | None = None,
) -> tuple[Sequence[Capability], str | None]:
    stmt = select(Capability).where(Capability.tenant_id == tenant_id)
    return common.paginate_since(
        session, stmt, Capability.id, Capability.updated_at, updated_since, cursor, limit
    )
