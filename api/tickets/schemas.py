"""Ticket schemas. Tickets are keyed by the helpdesk's own id and written with PUT (upsert)."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field, StringConstraints

from api import mapping
from api.common.schemas import NO_NUL, Id, Int, Levels, Requester, Schema, Timestamp, TimestampIn
from api.db.models import Ticket, TicketEvent
from api.enums import TicketEventKind, TicketPriority, TicketStatus

EffortMinutes = Annotated[Int, Field(ge=1, le=10_080, description="Working time it needs")]
Reason = Annotated[str, StringConstraints(max_length=1000), NO_NUL]


class Owner(Schema):
    kind: Literal["agent", "team"]
    id: str


_RO: dict[str, Any] = {"readOnly": True}


class TicketIn(Schema):
    """The whole ticket as the helpdesk sees it now: ``PUT`` replaces the stored ticket with it.

    Required (a body without them is a 422 naming each): ``team``, ``required_skills``,
    ``priority``, ``status``, ``effort_minutes`` and ``owner_agent`` (``null`` when no agent
    holds it: handing a ticket back to its team's queue is said, never implied by an omission).
    Optional, and cleared when omitted: ``first_response_due``, ``resolution_due`` (computed
    again from the tenant's SLA policy, when it has one), ``previous_agent``, ``requester``;
    ``channel`` is ``email`` when omitted. ``created_at`` defaults to the moment we first see the
    ticket and is kept when a later PUT omits it. ``reason`` is not stored on the ticket: it
    explains this change in the history (for example why the owner changed).

    What ``GET`` answers can be sent back as it is: the read-only fields (``id``, ``owner``,
    ``received_at``, ``updated_at``) are accepted when they equal the ticket's current values
    (``id`` the path's), so a round trip that would overwrite a change made since the read is a
    409 naming them instead.
    """

    team: Id = Field(description="The accountable team; owns the ticket when no agent does")
    required_skills: Levels = Field(description="Skills the work needs, at minimum levels")
    priority: TicketPriority
    status: TicketStatus
    created_at: TimestampIn | None = Field(
        default=None,
        description="When the helpdesk created it (default: when first seen; kept if omitted)",
    )
    first_response_due: TimestampIn | None = Field(
        default=None,
        description=(
            "First-response deadline (omitted or null: computed from the tenant's SLA policy "
            "if it has one, else none)"
        ),
    )
    resolution_due: TimestampIn | None = Field(
        default=None,
        description=(
            "Resolution deadline (omitted or null: computed from the tenant's SLA policy if it "
            "has one, else none)"
        ),
    )
    effort_minutes: EffortMinutes
    owner_agent: Id | None = Field(
        description="The agent holding it, or null when the team's queue does (required)"
    )
    previous_agent: Id | None = Field(
        default=None,
        description="Who handled this requester before, for continuity (omitted or null: none)",
    )
    requester: Requester | None = Field(
        default=None, description="Who asked (omitted or null: nobody recorded)"
    )
    channel: Id = Field(
        default="email",
        description=(
            "Where the customer reached out: email (when omitted), web_form, chat, messaging, "
            "phone, or a channel declared in the policies' channels. Live ones (chat, phone, "
            "messaging, and the tenant's marked live) are re-offered from the team queue as an "
            "agent frees up"
        ),
    )
    reason: Reason | None = Field(
        default=None, description="Why this change: goes on the history, not on the ticket"
    )
    # Read-only, accepted when unchanged (a GET -> PUT round trip).
    id: str | None = Field(
        default=None, description="Read-only: the path's id, when sent", json_schema_extra=_RO
    )
    owner: Owner | None = Field(
        default=None,
        description="Read-only: accepted when equal to the current owner",
        json_schema_extra=_RO,
    )
    received_at: TimestampIn | None = Field(
        default=None,
        description="Read-only: accepted when equal to the stored value",
        json_schema_extra=_RO,
    )
    updated_at: TimestampIn | None = Field(
        default=None,
        description=(
            "Read-only: accepted when equal to the stored value (so a stale representation "
            "is a 409, not an overwrite)"
        ),
        json_schema_extra=_RO,
    )

    READ_ONLY: ClassVar[tuple[str, ...]] = ("id", "owner", "received_at", "updated_at")
    # Required, but null is a value: in a merge patch, removing one means setting it to null.
    REQUIRED_NULLABLE: ClassVar[tuple[str, ...]] = ("owner_agent",)

    def representation(self) -> dict[str, Any]:
        """The ticket's state this body describes, without ``reason`` and read-only fields."""
        return self.model_dump(mode="json", exclude={"reason", *self.READ_ONLY})


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


def merge_patch_schema() -> dict[str, Any]:
    """The JSON schema of a merge patch of a ticket (``PATCH``, RFC 7396), derived from
    :class:`TicketIn` so a field added there is patchable here: every member optional, any
    member may be ``null`` (remove it: cleared, or a 422 naming it where the ticket needs it),
    and so may a skill inside ``required_skills`` (drop that skill)."""
    schema = TicketIn.model_json_schema(ref_template="#/components/schemas/{model}")
    schema.pop("required", None)
    schema.pop("$defs", None)
    schema["title"] = "TicketMergePatch"
    schema["description"] = (
        "A JSON Merge Patch (RFC 7396) of a ticket: the members given replace the ticket's, "
        "null removes one (an optional field is cleared, owner_agent hands the ticket to its "
        "team's queue, a required one is a 422 naming it); the result is validated as a whole "
        "ticket (TicketIn) and written as a PUT of it would be."
    )
    properties: dict[str, Any] = schema["properties"]
    for name, prop in properties.items():
        prop.pop("default", None)
        if name == "required_skills":
            value = prop.get("additionalProperties")
            if isinstance(value, dict):
                prop["additionalProperties"] = {"anyOf": [value, {"type": "null"}]}
        if not _admits_null(prop):
            description = prop.pop("description", None)
            title = prop.pop("title", None)
            properties[name] = {"anyOf": [prop, {"type": "null"}]}
            if description is not None:
                properties[name]["description"] = description
            if title is not None:
                properties[name]["title"] = title
    return schema


def _admits_null(prop: dict[str, Any]) -> bool:
    if prop.get("type") == "null":
        return True
    return any(_admits_null(m) for m in prop.get("anyOf", []))
