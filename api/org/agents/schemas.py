"""Agent schemas: skills with levels, a team, a concurrency capacity, a time zone, a status."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from api.common.schemas import (
    ChannelCapacity,
    Id,
    Int,
    Levels,
    Name,
    Patch,
    Schema,
    Timestamp,
    TimeZone,
)
from api.db.models import Agent
from api.enums import AgentStatus

Capacity = Annotated[Int, Field(ge=0, le=1000, description="Tickets the agent may hold at once")]


class AgentCreate(Schema):
    id: Id
    name: Name = ""
    team: Id
    skills: Levels = Field(default_factory=dict)
    capacity: Capacity = 1
    channel_capacity: ChannelCapacity = Field(default_factory=dict)
    timezone: TimeZone = "UTC"
    status: AgentStatus = AgentStatus.AVAILABLE


class AgentUpdate(Patch):
    """Omitted fields stay; ``skills`` and ``channel_capacity`` replace the whole map when
    given (``{}`` empties it).

    No field is nullable: each is a value every agent has (a nameless agent's ``name`` is
    ``""``, a skill-less one's ``skills`` ``{}``), so null would not mean "clear" but nothing,
    and is refused with a 422 naming the field.
    """

    name: Name | None = None
    team: Id | None = None
    skills: Levels | None = None
    capacity: Capacity | None = None
    channel_capacity: ChannelCapacity | None = None
    timezone: TimeZone | None = None
    status: AgentStatus | None = None


class AgentOut(Schema):
    id: str
    name: str
    team: str
    skills: dict[str, int]
    capacity: int
    channel_capacity: dict[str, int] = Field(
        description="Channel -> tickets of it the agent may hold at once, within ``capacity``"
    )
    timezone: str
    status: AgentStatus
    created_at: Timestamp
    updated_at: Timestamp

    @classmethod
    def from_row(cls, row: Agent) -> AgentOut:
        return cls(
            id=row.id,
            name=row.name,
            team=row.team_id,
            skills={s.skill_id: s.level for s in row.skills},
            capacity=row.capacity,
            channel_capacity=dict(row.channel_capacity or {}),
            timezone=row.timezone,
            status=row.status,
            created_at=row.created_at,
            updated_at=row.updated_at,
        )
