"""Busy intervals: when an agent cannot work (meetings, calls, calendar events)."""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.orm import Session

from api.db.models import BusyInterval
from api.schemas.intervals import BusyCreate, BusyUpdate
from api.services import common, intervals

WHAT = "busy interval"


def get(*, session: Session, tenant_id: str, busy_id: str) -> BusyInterval | None:
    return common.get(session, BusyInterval, tenant_id, busy_id)


def get_or_raise(*, session: Session, tenant_id: str, busy_id: str) -> BusyInterval:
    return common.get_or_raise(session, BusyInterval, tenant_id, busy_id, WHAT)


def create(*, session: Session, tenant_id: str, data: BusyCreate, now: datetime) -> BusyInterval:
    return intervals.create(session, BusyInterval, WHAT, tenant_id, data, now, source=data.source)


def create_many(
    *, session: Session, tenant_id: str, rows: Sequence[BusyCreate], now: datetime
) -> builtins.list[str]:
    """:func:`create` for every row, all or nothing (a bulk import): see
    :func:`api.services.intervals.create_many`."""
    return intervals.create_many(
        session, BusyInterval, WHAT, tenant_id, rows, now, source=lambda r: r.source
    )


def update(
    *, session: Session, tenant_id: str, busy_id: str, data: BusyUpdate, now: datetime
) -> BusyInterval:
    return intervals.update(session, BusyInterval, WHAT, tenant_id, busy_id, data, now)


def delete(*, session: Session, tenant_id: str, busy_id: str) -> None:
    intervals.delete(session, BusyInterval, WHAT, tenant_id, busy_id)


def list(
    *,
    session: Session,
    tenant_id: str,
    cursor: str | None,
    limit: int,
    agent: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
) -> tuple[Sequence[BusyInterval], str | None]:
    return intervals.list_(session, BusyInterval, tenant_id, cursor, limit, agent, start, end)
