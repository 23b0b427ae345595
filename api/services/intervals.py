"""What shifts and busy intervals share: both are ``[start, end)`` of one agent.

The public verbs live in :mod:`api.services.shifts` and :mod:`api.services.busy`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from api.db.models import BusyInterval, Shift
from api.errors import FieldError, InvalidInput
from api.services import common

Row = TypeVar("Row", Shift, BusyInterval)


def create(
    session: Session,
    model: type[Row],
    what: str,
    tenant_id: str,
    data: Any,
    now: datetime,
    **extra: Any,
) -> Row:
    ident = data.id or common.new_id("shf" if model is Shift else "busy")
    common.refuse_duplicate(session, model, tenant_id, ident, what)
    common.raise_if(common.unknown_agent(session, tenant_id, data.agent))
    row = model(
        tenant_id=tenant_id,
        id=ident,
        agent_id=data.agent,
        start_at=data.start,
        end_at=data.end,
        created_at=now,
        updated_at=now,
        **extra,
    )
    return common.insert(session, row)


def update(
    session: Session,
    model: type[Row],
    what: str,
    tenant_id: str,
    ident: str,
    data: Any,
    now: datetime,
) -> Row:
    row = common.get_or_raise(session, model, tenant_id, ident, what)
    changes = data.changes()
    if "agent" in changes:
        common.raise_if(common.unknown_agent(session, tenant_id, changes["agent"]))
        row.agent_id = changes.pop("agent")
    start = changes.pop("start", row.start_at)
    end = changes.pop("end", row.end_at)
    if end <= start:
        raise InvalidInput([FieldError("end", "must be after start")])
    row.start_at, row.end_at = start, end
    common.save_changes(session, row, changes, now)
    return row


def delete(session: Session, model: type[Row], what: str, tenant_id: str, ident: str) -> None:
    common.remove(session, common.get_or_raise(session, model, tenant_id, ident, what))


def list_(
    session: Session,
    model: type[Row],
    tenant_id: str,
    cursor: str | None,
    limit: int,
    agent: str | None,
    start: datetime | None,
    end: datetime | None,
) -> tuple[Sequence[Row], str | None]:
    """Intervals of the tenant, optionally of one agent and overlapping ``[start, end)``."""
    stmt = select(model).where(model.tenant_id == tenant_id)
    if agent is not None:
        stmt = stmt.where(model.agent_id == agent)
    if start is not None:
        stmt = stmt.where(model.end_at > start)
    if end is not None:
        stmt = stmt.where(model.start_at < end)
    return common.paginate(session, stmt, model.id, cursor, limit)
