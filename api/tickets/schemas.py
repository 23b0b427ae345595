"""Ticket schemas. Tickets are keyed by the helpdesk's own id and written with PUT (upsert)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints

from api import mapping
from api.common.schemas import NO_NUL, Id, Int, Levels, Requester, Schema, Timestamp, TimestampIn
from api.db.models import Ticket, TicketEvent
from api.enums import TicketEventKind, TicketPriority, TicketStatus

EffortMinutes = Annotated[Int, Field(ge=1, le=10_080, description="Working time it needs")]
Reason = Annotated[str, StringConstraints(max_length=1000), NO_NUL]


class TicketIn(Schema):
    """The whole ticket as the helpdesk sees it now (PUT replaces; omitted = default).

    ``created_at`` defaults to the moment we first see the ticket and is kept when a later
    PUT omits it. ``reason`` is not stored on the ticket: it explains this change in the
    history (for example why the owner changed).
    """

    team: Id = Field(description="The accountable team; owns the ticket when no agent does")
    required_skills: Levels = Field(default_factory=dict)
    priority: TicketPriority = TicketPriority.NORMAL
    status: TicketStatus = TicketStatus.NEW
    created_at: TimestampIn | None = None
    first_response_due: TimestampIn | None = None
    resolution_due: TimestampIn | None = None
    effort_minutes: EffortMinutes = 30
    owner_agent: Id | None = Field(default=None, description="The agent holding it, if any")
    previous_agent: Id | None = Field(
        default=None, description="Who handled this requester before (continuity)"
    )
    requester: Requester | None = None
    channel: Id = Field(
        default="email",
        description=(
            "Where the customer reached out: email, web_form, chat, messaging, phone, or a "
            "channel declared in the policies' channels. Live ones (chat, phone, messaging, and "
            "the tenant's marked live) are re-offered from the team queue as an agent frees up"
        ),
    )
    reason: Reason | None = None


class Owner(Schema):
    kind: Literal["agent", "team"]
    id: str


class TicketOut(Schema):
    id: str
    team: str
    required_skills: dict[str, int]
    priority: TicketPriority
    status: TicketStatus
    created_at: Timestamp
    first_response_due: Timestamp | None
    resolution_due: Timestamp | None
    effort_minutes: int
    owner: Owner = Field(description="Who is accountable now: the agent, else the team")
    owner_agent: str | None
    previous_agent: str | None
    requester: str | None
    channel: str = Field(description="Where the customer reached out")
    received_at: Timestamp
    updated_at: Timestamp

    @classmethod
    def from_row(cls, row: Ticket) -> TicketOut:
        owner = Owner.model_validate(mapping.owner_of(row).as_json())
        return cls(
            id=row.id,
            team=row.team_id,
            required_skills={s.skill_id: s.level for s in row.required_skills},
            priority=row.priority,
            status=row.status,
            created_at=row.created_at,
            first_response_due=row.first_response_due,
            resolution_due=row.resolution_due,
            effort_minutes=row.effort_minutes,
            owner=owner,
            owner_agent=row.owner_agent_id,
            previous_agent=row.previous_agent_id,
            requester=row.requester,
            channel=row.channel,
            received_at=row.received_at,
            updated_at=row.updated_at,
        )


class TicketEventOut(Schema):
    seq: int
    kind: TicketEventKind
    at: Timestamp
    actor: str | None
    from_agent: str | None
    to_agent: str | None
    from_team: str | None
    to_team: str | None
    from_status: str | None
    to_status: str | None
    reason: str | None
    data: dict[str, Any]

    @classmethod
    def from_row(cls, row: TicketEvent) -> TicketEventOut:
        return cls(
            seq=row.seq,
            kind=row.kind,
            at=row.at,
            actor=row.actor,
            from_agent=row.from_agent,
            to_agent=row.to_agent,
            from_team=row.from_team,
            to_team=row.to_team,
            from_status=row.from_status,
            to_status=row.to_status,
            reason=row.reason,
            data=row.data or {},
        )
