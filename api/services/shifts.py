"""Shifts: when an agent works. Working time = shifts minus busy intervals."""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.orm import Session

from api.db.models import Shift
from api.schemas.intervals import ShiftCreate, ShiftUpdate
from api.services import common, intervals

WHAT = "shift"


def get(*, session: Session, tenant_id: str, shift_id: str) -> Shift | None:
    return common.get(session, Shift, tenant_id, shift_id)


def get_or_raise(*, session: Session, tenant_id: str, shift_id: str) -> Shift:
    return common.get_or_raise(session, Shift, tenant_id, shift_id, WHAT)


def create(*, session: Session, tenant_id: str, data: ShiftCreate, now: datetime) -> Shift:
    return intervals.create(session, Shift, WHAT, tenant_id, data, now)


def create_many(
    *, session: Session, tenant_id: str, rows: Sequence[ShiftCreate], now: datetime
) -> builtins.list[str]:
    """:func:`create` for every row, all or nothing (a bulk import): see
    :func:`api.services.intervals.create_many`."""
    return intervals.create_many(session, Shift, WHAT, tenant_id, rows, now)


def update(
    *, session: Session, tenant_id: str, shift_id: str, data: ShiftUpdate, now: datetime
) -> Shift:
    return intervals.update(session, Shift, WHAT, tenant_id, shift_id, data, now)


def delete(*, session: Session, tenant_id: str, shift_id: str) -> None:
    intervals.delete(session, Shift, WHAT, tenant_id, shift_id)


def list(
    *,
    session: Session,
    tenant_id: str,
    cursor: str | None,
    limit: int,
    agent: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
) -> tuple[Sequence[Shift], str | None]:
    return intervals.list_(session, Shift, tenant_id, cursor, limit, agent, start, end)
