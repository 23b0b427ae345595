"""Shift and busy-interval schemas: aware datetimes (naive ones are refused), end after start."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field, ValidationInfo, field_validator

from api.common.schemas import Id, Patch, Schema, Timestamp, TimestampIn
from api.db.models import BusyInterval, Shift

Source = Field(default="manual", max_length=32, pattern=r"^[a-z0-9_\-]+$")


def end_after_start(end: datetime | None, info: ValidationInfo) -> datetime | None:
    start = info.data.get("start")
    if end is not None and start is not None and end <= start:
        raise ValueError("must be after start")
    return end


class ShiftCreate(Schema):
    id: Id | None = Field(default=None, description="Optional; generated when omitted")
    agent: Id
    start: TimestampIn
    end: TimestampIn

    _check_end = field_validator("end")(end_after_start)


class ShiftUpdate(Patch):
    """Not nullable: an interval always has its agent, start and end (and busy time a
    ``source``); null could only mean "no value", which none of them can be."""

    agent: Id | None = None
    start: TimestampIn | None = None
    end: TimestampIn | None = None

    _check_end = field_validator("end")(end_after_start)


class IntervalOut(Schema):
    # The fields shifts and busy intervals share. A base of its own: a BusyOut is not a
    # ShiftOut (it is built from another row).
    id: str
    agent: str
    start: Timestamp
    end: Timestamp
    created_at: Timestamp
    updated_at: Timestamp


class ShiftOut(IntervalOut):
    @classmethod
    def from_row(cls, row: Shift) -> ShiftOut:
        return cls(**_interval_fields(row))


class BusyCreate(ShiftCreate):
    source: str = Source


class BusyUpdate(ShiftUpdate):
    source: str | None = Field(default=None, max_length=32, pattern=r"^[a-z0-9_\-]+$")


class BusyOut(IntervalOut):
    source: str

    @classmethod
    def from_row(cls, row: BusyInterval) -> BusyOut:
        return cls(**_interval_fields(row), source=row.source)


def _interval_fields(row: Shift | BusyInterval) -> dict[str, Any]:
    return {
        "id": row.id,
        "agent": row.agent_id,
        "start": row.start_at,
        "end": row.end_at,
        "created_at": row.created_at,
        "updated_at": row.updated_at,
    }
