"""Capability schemas: a bookable requirement set and the rules its call slots follow."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from api.common.schemas import Id, Int, Levels, Name, Number, Patch, Schema, Timestamp
from api.db.models import Capability

CallMinutes = Annotated[Int, Field(ge=5, le=480, description="Length of one call")]
HorizonDays = Annotated[Int, Field(ge=1, le=90, description="How far ahead slots are offered")]
MinNotice = Annotated[Int, Field(ge=0, le=20160, description="Earliest slot: now + this")]
Buffer = Annotated[Int, Field(ge=0, le=240, description="Free minutes kept around each call")]
Granularity = Annotated[Int, Field(ge=5, le=240, description="Slots start on this grid")]
ReserveShare = Annotated[
    Number,
    Field(ge=0.0, lt=1.0, description="Share of each team's capacity kept for ticket work"),
]
Requirements = Annotated[Levels, Field(min_length=1)]


class CapabilityCreate(Schema):
    id: Id
    name: Name = ""
    requirements: Requirements
    call_minutes: CallMinutes = 30
    horizon_days: HorizonDays = 14
    min_notice_minutes: MinNotice = 120
    buffer_minutes: Buffer = 0
    granularity_minutes: Granularity = 15
    reserve_share: ReserveShare = 0.2


class CapabilityUpdate(Patch):
    """Not nullable: ``name`` is cleared with ``""``, ``requirements`` is never empty and every
    rule has a value (its default is the create default, not "none")."""

    name: Name | None = None
    requirements: Requirements | None = None
    call_minutes: CallMinutes | None = None
    horizon_days: HorizonDays | None = None
    min_notice_minutes: MinNotice | None = None
    buffer_minutes: Buffer | None = None
    granularity_minutes: Granularity | None = None
    reserve_share: ReserveShare | None = None


class CapabilityOut(Schema):
    id: str
    name: str
    requirements: dict[str, int]
    call_minutes: int
    horizon_days: int
    min_notice_minutes: int
    buffer_minutes: int
    granularity_minutes: int
    reserve_share: float
    created_at: Timestamp
    updated_at: Timestamp

    @classmethod
    def from_row(cls, row: Capability) -> CapabilityOut:
        return cls(
            id=row.id,
            name=row.name,
            requirements={r.skill_id: r.level for r in row.requirements},
            call_minutes=row.call_minutes,
            horizon_days=row.horizon_days,
            min_notice_minutes=row.min_notice_minutes,
            buffer_minutes=row.buffer_minutes,
            granularity_minutes=row.granularity_minutes,
            reserve_share=row.reserve_share,
            created_at=row.created_at,
            updated_at=row.updated_at,
        )
