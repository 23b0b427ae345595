"""Shifts and busy intervals: one resource shape, ``[start, end)`` of one agent, twice.

Shifts say when an agent works, busy intervals when they cannot (meetings, calls, calendar
events); working time = shifts minus busy time. Both have the same verbs with the same checks,
so they are two instances of one :class:`IntervalService`: :data:`shifts` and :data:`busy`
(which also stores where a busy interval came from, ``source``).
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, Generic, Protocol, TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from api.common import service as common
from api.db import inserts
from api.db.base import table_of
from api.db.locks import lock_tenant
from api.db.models import Agent, BusyInterval, Shift
from api.errors import FieldError, InvalidInput
from api.org.intervals.schemas import BusyCreate, ShiftCreate

Row = TypeVar("Row", Shift, BusyInterval)


class IntervalIn(Protocol):
    """What a create reads of a new interval (a ``ShiftCreate``, a ``BusyCreate``)."""

    @property
    def id(self) -> str | None: ...
    @property
    def agent(self) -> str: ...
    @property
    def start(self) -> datetime: ...
    @property
    def end(self) -> datetime: ...


class IntervalPatch(Protocol):
    """A PATCH of an interval: ``changes()`` are the fields sent (``agent``, ``start``, ``end``,
    other columns by name)."""

    def changes(self) -> dict[str, Any]: ...


In = TypeVar("In", bound=IntervalIn)


def _new_id(model: type[Shift] | type[BusyInterval]) -> str:
    """An id for an interval the client gave none."""
    return common.new_id("shf" if model is Shift else "busy")


def create(
    session: Session,
    model: type[Row],
    what: str,
    tenant_id: str,
    data: IntervalIn,
    now: datetime,
    **extra: object,
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
    rows: Sequence[In],
    now: datetime,
    **extra: Callable[[In], object],
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
    inserts.insert_many(session, table_of(model), values)
    return ids


def update(
    session: Session,
    model: type[Row],
    what: str,
    tenant_id: str,
    ident: str,
    data: IntervalPatch,
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
    updated_since: datetime | None = None,
) -> tuple[Sequence[Row], str | None]:
    """Intervals of the tenant, optionally of one agent, overlapping ``[start, end)`` and
    changed at or after ``updated_since``."""
    stmt = select(model).where(model.tenant_id == tenant_id)
    if agent is not None:
        stmt = stmt.where(model.agent_id == agent)
    if start is not None:
        stmt = stmt.where(model.end_at > start)
    if end is not None:
        stmt = stmt.where(model.start_at < end)
    return common.paginate_since(
        session, stmt, model.id, model.updated_at, updated_since, cursor, limit
    )


class IntervalService(Generic[Row, In]):
    """The verbs of one interval resource, as the CRUD routes (:mod:`api.org.crud`) call
    them: keyword arguments, the row's id under the resource's own name (``shift_id``,
    ``busy_id``: the path parameter's name)."""

    def __init__(
        self,
        model: type[Row],
        what: str,
        id_name: str,
        extra: Mapping[str, Callable[[In], object]] | None = None,
    ) -> None:
        self.model: type[Row] = model
        self.what = what
        self.id_name = id_name
        self.extra = dict(extra or {})

    def _ident(self, key: Mapping[str, str]) -> str:
        if set(key) != {self.id_name}:
            raise TypeError(f"expected the keyword {self.id_name}, got {sorted(key)}")
        return key[self.id_name]

    def get(self, *, session: Session, tenant_id: str, **key: str) -> Row | None:
        return common.get(session, self.model, tenant_id, self._ident(key))

    def get_or_raise(self, *, session: Session, tenant_id: str, **key: str) -> Row:
        return common.get_or_raise(session, self.model, tenant_id, self._ident(key), self.what)

    def create(self, *, session: Session, tenant_id: str, data: In, now: datetime) -> Row:
        extra = {column: value(data) for column, value in self.extra.items()}
        return create(session, self.model, self.what, tenant_id, data, now, **extra)

    def create_many(
        self, *, session: Session, tenant_id: str, rows: Sequence[In], now: datetime
    ) -> builtins.list[str]:
        """:meth:`create` for every row, all or nothing (a bulk import): see
        :func:`create_many`."""
        return create_many(session, self.model, self.what, tenant_id, rows, now, **self.extra)

    def update(
        self, *, session: Session, tenant_id: str, data: IntervalPatch, now: datetime, **key: str
    ) -> Row:
        ident = self._ident(key)
        return update(session, self.model, self.what, tenant_id, ident, data, now)

    def delete(self, *, session: Session, tenant_id: str, **key: str) -> None:
        delete(session, self.model, self.what, tenant_id, self._ident(key))

    def list(
        self,
        *,
        session: Session,
        tenant_id: str,
        cursor: str | None,
        limit: int,
        agent: str | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
        updated_since: datetime | None = None,
    ) -> tuple[Sequence[Row], str | None]:
        return list_(
            session, self.model, tenant_id, cursor, limit, agent, start, end, updated_since
        )


shifts: IntervalService[Shift, ShiftCreate] = IntervalService(Shift, "shift", "shift_id")
busy: IntervalService[BusyInterval, BusyCreate] = IntervalService(
    BusyInterval, "busy interval", "busy_id", {"source": lambda data: data.source}
)
