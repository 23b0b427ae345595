"""What shifts and busy intervals share: both are ``[start, end)`` of one agent.

The public verbs live in :mod:`api.services.shifts` and :mod:`api.services.busy`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from api.db import inserts
from api.db.locks import lock_tenant
from api.db.models import Agent, BusyInterval, Shift
from api.errors import FieldError, InvalidInput
from api.services import common

Row = TypeVar("Row", Shift, BusyInterval)


def _new_id(model: type[Row]) -> str:
    """An id for an interval the client gave none."""
    return common.new_id("shf" if model is Shift else "busy")


def create(
    session: Session,
    model: type[Row],
    what: str,
    tenant_id: str,
    data: Any,
    now: datetime,
    **extra: Any,
) -> Row:
    ident = data.id or _new_id(model)
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


def create_many(
    session: Session,
    model: type[Row],
    what: str,
    tenant_id: str,
    rows: Sequence[Any],
    now: datetime,
    **extra: Callable[[Any], Any],
) -> list[str]:
    """:func:`create` for every row, all or nothing (a bulk import); returns their ids (those
    given, or generated as ``create`` does). ``extra`` maps a column to how a row gives it.

    Refuses what ``create`` would, row by row in order (an id taken, an unknown agent) with
    :class:`~api.errors.InvalidInput` naming each row by its index in ``rows``; writes nothing
    then. Otherwise inserts the rows in batches. The unit of work must not have begun: it is
    opened with the tenant's write lock (:func:`api.db.locks.lock_tenant`).
    """
    lock_tenant(session, tenant_id)
    ids = [r.id or _new_id(model) for r in rows]
    agents = common.existing_ids(session, Agent, tenant_id, (r.agent for r in rows))
    common.refuse_rows(
        ids,
        common.existing_ids(session, model, tenant_id, ids),
        what,
        lambda i: common.unknown_of(rows[i].agent, agents, "agent", "agent"),
    )
    values = [
        {
            "tenant_id": tenant_id,
            "id": ident,
            "agent_id": r.agent,
            "start_at": r.start,
            "end_at": r.end,
            "created_at": now,
            "updated_at": now,
            **{column: value(r) for column, value in extra.items()},
        }
        for ident, r in zip(ids, rows, strict=True)
    ]
    inserts.insert_many(session, model.__table__, values)
    return ids


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
