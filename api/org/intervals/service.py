"""Shifts and busy intervals: one resource shape, ``[start, end)`` of one agent, twice.

Shifts say when an agent works, busy intervals when they cannot (meetings, calls, calendar
events); working time = shifts minus busy time. Both have the same verbs with the same checks,
so they are two instances of one :class:`IntervalService`: :data:`shifts` and :data:`busy`
(which also stores where a busy interval came from, ``source``).
"""

from __future__ import annotations

import builtins
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Generic, Protocol, TypeVar

from sqlalchemy import delete as sa_delete
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


# (id, agent, start, end) of an interval to be stored.
Planned = tuple[str, str, datetime, datetime]


def _when(start: datetime, end: datetime) -> str:
    return f"[{start.astimezone(UTC).isoformat()}, {end.astimezone(UTC).isoformat()})"


def overlap_errors(
    session: Session, model: type[Row], what: str, tenant_id: str, planned: Sequence[Planned]
) -> list[FieldError]:
    """Why each of ``planned`` would overlap another interval of its agent: another of
    ``planned`` (both are named) or one stored (named by id). Stored rows whose id is among
    ``planned`` are being replaced and do not count. Errors carry the index in ``planned``
    (``field`` ``start``); ``[start, end)``: touching intervals do not overlap.

    One sweep per agent over the planned and stored intervals by start time, so an import of
    thousands of shifts costs one query and a sort, not a comparison of every pair.
    """
    if not planned:
        return []
    agents = {p[1] for p in planned}
    ids = {p[0] for p in planned}
    lo = min(p[2] for p in planned)
    hi = max(p[3] for p in planned)
    # (start, end, planned index or None, stored id or None)
    entries: dict[str, list[tuple[datetime, datetime, int | None, str | None]]] = defaultdict(
        builtins.list
    )
    for i, (_ident, agent, start, end) in enumerate(planned):
        entries[agent].append((start, end, i, None))
    for row in session.scalars(
        select(model).where(
            model.tenant_id == tenant_id,
            model.agent_id.in_(sorted(agents)),
            model.end_at > lo,
            model.start_at < hi,
        )
    ):
        if row.id not in ids:
            entries[row.agent_id].append((row.start_at, row.end_at, None, row.id))
    found: dict[int, list[FieldError]] = defaultdict(builtins.list)
    for agent, items in entries.items():
        items.sort(key=lambda e: (e[0], e[1]))
        active: builtins.list[tuple[datetime, datetime, int | None, str | None]] = []
        for item in items:
            start, end, index, stored = item
            active = [a for a in active if a[1] > start]
            for other in active:
                o_start, o_end, o_index, o_stored = other
                same = (o_start, o_end) == (start, end)
                verb = "duplicates" if same else "overlaps"
                for mine, theirs, t_index, t_stored in (
                    (index, (o_start, o_end), o_index, o_stored),
                    (o_index, (start, end), index, stored),
                ):
                    if mine is None:
                        continue
                    if t_stored is not None:
                        reason = f"{verb} stored {what} {t_stored!r} of agent {agent!r} "
                    else:
                        assert t_index is not None
                        reason = f"{verb} another {what} of agent {agent!r} in this request "
                    found[mine].append(FieldError("start", reason + _when(*theirs), mine))
            active.append(item)
    return [e for i in sorted(found) for e in found[i]]


def create(
    session: Session,
    model: type[Row],
    what: str,
    tenant_id: str,
    data: IntervalIn,
    now: datetime,
    *,
    no_overlap: bool = False,
    **extra: object,
) -> Row:
    ident = data.id or _new_id(model)
    common.refuse_duplicate(session, model, tenant_id, ident, what)
    common.raise_if(common.unknown_agent(session, tenant_id, data.agent))
    if no_overlap:
        planned = [(ident, data.agent, data.start, data.end)]
        common.raise_if(_unrowed(overlap_errors(session, model, what, tenant_id, planned)))
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


def _unrowed(errors: builtins.list[FieldError]) -> builtins.list[FieldError]:
    """A single create's or PATCH's errors: about the body, not a row of an import."""
    return [FieldError(e.field, e.reason) for e in errors]


def create_many(
    session: Session,
    model: type[Row],
    what: str,
    tenant_id: str,
    rows: Sequence[In],
    now: datetime,
    *,
    no_overlap: bool = False,
    replace: bool = False,
    extra: Mapping[str, Callable[[In], object]] | None = None,
) -> list[str]:
    """:func:`create` for every row, all or nothing (a bulk import); returns their ids (those
    given, or generated as ``create`` does). ``extra`` maps a column to how a row gives it.

    Refuses what ``create`` would, row by row in order (an id taken, an unknown agent; with
    ``no_overlap``, an interval overlapping another of its agent, in ``rows`` or stored) with
    :class:`~api.errors.InvalidInput` naming each row by its index in ``rows``; writes nothing
    then. With ``replace`` (an upsert import), a stored id is replaced (delete and insert in
    this unit of work, keeping its ``created_at``) instead of refused. Otherwise inserts the
    rows in batches. The unit of work must not have begun: it is opened with the tenant's
    write lock (:func:`api.db.locks.lock_tenant`).
    """
    lock_tenant(session, tenant_id)
    ids = [r.id or _new_id(model) for r in rows]
    agents = common.existing_ids(session, Agent, tenant_id, (r.agent for r in rows))
    stored = common.existing_ids(session, model, tenant_id, ids)
    created_at: dict[str, datetime] = {}
    if replace:
        # Upsert: a stored id is replaced (keeping when it was first created), not refused;
        # an id twice in the import still is.
        found = session.execute(
            select(model.id, model.created_at).where(
                model.tenant_id == tenant_id, model.id.in_(sorted(stored))
            )
        )
        created_at = {ident: first for ident, first in found}
        stored = set()
    errors: list[FieldError] = []
    try:
        common.refuse_rows(
            ids,
            stored,
            what,
            lambda i: common.unknown_of(rows[i].agent, agents, "agent", "agent"),
        )
    except InvalidInput as exc:
        errors.extend(exc.errors)
    if no_overlap:
        # The rows not refused already, so one answer names every problem.
        refused = {e.row for e in errors}
        kept = [k for k in range(len(rows)) if k not in refused]
        planned = [(ids[k], rows[k].agent, rows[k].start, rows[k].end) for k in kept]
        for e in overlap_errors(session, model, what, tenant_id, planned):
            errors.append(e.at_row(kept[e.row or 0]))
    errors.sort(key=lambda e: e.row or 0)
    common.raise_if(errors)
    if created_at:
        session.execute(
            sa_delete(model).where(model.tenant_id == tenant_id, model.id.in_(sorted(created_at)))
        )
    values = [
        {
            "tenant_id": tenant_id,
            "id": ident,
            "agent_id": r.agent,
            "start_at": r.start,
            "end_at": r.end,
            "created_at": created_at.get(ident, now),
            "updated_at": now,
            **{column: value(r) for column, value in (extra or {}).items()},
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
    *,
    no_overlap: bool = False,
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
    if no_overlap:
        planned = [(row.id, row.agent_id, start, end)]
        common.raise_if(_unrowed(overlap_errors(session, model, what, tenant_id, planned)))
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
        *,
        no_overlap: bool = False,
    ) -> None:
        self.model: type[Row] = model
        self.what = what
        self.id_name = id_name
        self.extra = dict(extra or {})
        # Shifts of one agent never overlap (a re-import would double the agent's time);
        # busy intervals may (a meeting during a call is still one busy stretch).
        self.no_overlap = no_overlap

    def _ident(self, key: Mapping[str, str]) -> str:
        if set(key) != {self.id_name}:
            raise TypeError(f"expected the keyword {self.id_name}, got {sorted(key)}")
        return key[self.id_name]

    def get(self, *, session: Session, tenant_id: str, **key: str) -> Row | None:
        return common.get(session, self.model, tenant_id, self._ident(key))

    def get_or_raise(self, *, session: Session, tenant_id: str, **key: str) -> Row:
        return common.get_or_raise(session, self.model, tenant_id, self._ident(key), self.what)

    def create(self, *, session: Session, tenant_id: str, data: In, now: datetime) -> Row:
        if self.no_overlap and not session.in_transaction():
            # A request's unit of work is serialized per tenant, so two cannot both find the
            # time free. (A caller composing a larger unit of work, the seed, locks itself.)
            lock_tenant(session, tenant_id)
        extra = {column: value(data) for column, value in self.extra.items()}
        return create(
            session,
            self.model,
            self.what,
            tenant_id,
            data,
            now,
            no_overlap=self.no_overlap,
            **extra,
        )

    def create_many(
        self, *, session: Session, tenant_id: str, rows: Sequence[In], now: datetime
    ) -> builtins.list[str]:
        """:meth:`create` for every row, all or nothing (a bulk import): see
        :func:`create_many`."""
        return create_many(
            session,
            self.model,
            self.what,
            tenant_id,
            rows,
            now,
            no_overlap=self.no_overlap,
            extra=self.extra,
        )

    def upsert_many(
        self, *, session: Session, tenant_id: str, rows: Sequence[In], now: datetime
    ) -> builtins.list[str]:
        """An import in upsert mode: rows whose id is stored replace it (all or nothing),
        the others are created; checked as :meth:`create_many` checks, against the state
        the import leaves (a replaced shift's old time does not count)."""
        return create_many(
            session,
            self.model,
            self.what,
            tenant_id,
            rows,
            now,
            no_overlap=self.no_overlap,
            replace=True,
            extra=self.extra,
        )

    def update(
        self, *, session: Session, tenant_id: str, data: IntervalPatch, now: datetime, **key: str
    ) -> Row:
        ident = self._ident(key)
        if self.no_overlap and not session.in_transaction():
            lock_tenant(session, tenant_id)
        return update(
            session, self.model, self.what, tenant_id, ident, data, now, no_overlap=self.no_overlap
        )

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


shifts: IntervalService[Shift, ShiftCreate] = IntervalService(
    Shift, "shift", "shift_id", no_overlap=True
)
busy: IntervalService[BusyInterval, BusyCreate] = IntervalService(
    BusyInterval, "busy interval", "busy_id", {"source": lambda data: data.source}
)
