"""Capabilities: named requirement sets customers book calls against (never a person)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from api.db.models import Capability, CapabilitySkill
from api.errors import Conflict
from api.schemas.capabilities import CapabilityCreate, CapabilityUpdate
from api.services import common

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
    # In place, for the same reason as agents' skills (no delete+insert of one key per flush).
    current = {r.skill_id: r for r in row.requirements}
    for skill_id, link in current.items():
        if skill_id not in levels:
            row.requirements.remove(link)
        else:
            link.level = levels[skill_id]
    for skill_id, level in levels.items():
        if skill_id not in current:
            row.requirements.append(
                CapabilitySkill(
                    tenant_id=tenant_id, capability_id=row.id, skill_id=skill_id, level=level
                )
            )


def create(
    *, session: Session, tenant_id: str, data: CapabilityCreate, now: datetime
) -> Capability:
    if get(session=session, tenant_id=tenant_id, capability_id=data.id) is not None:
        raise Conflict(f"capability {data.id!r} already exists")
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
    session.add(row)
    session.flush()
    return row


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
    for name, value in changes.items():
        setattr(row, name, value)
    row.updated_at = now
    session.flush()
    return row


def delete(*, session: Session, tenant_id: str, capability_id: str) -> None:
    row = get_or_raise(session=session, tenant_id=tenant_id, capability_id=capability_id)
    session.delete(row)
    session.flush()


def list(
    *, session: Session, tenant_id: str, cursor: str | None, limit: int
) -> tuple[Sequence[Capability], str | None]:
    stmt = select(Capability).where(Capability.tenant_id == tenant_id)
    return common.paginate(session, stmt, Capability.id, cursor, limit)
