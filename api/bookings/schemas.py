"""Schemas of the booking endpoints: open slots, bookings, just-in-time binding, rebalancing.

Slots and alternatives are answered in the customer's time zone (ISO 8601 with its offset) and
never name an agent. A booking names its agent only once just-in-time binding has fixed one
(``agent``); the engine's tentative cover before that is internal and never shown.
"""

from __future__ import annotations

from datetime import date as Date
from datetime import datetime
from typing import Annotated

from pydantic import Field

from api.common.problem import ProblemDetails
from api.common.schemas import Id, Int, LocalTimestampIn, Number, Schema, Timestamp, TimeZone
from api.db.models import Call, CallNote, CallStatus, Ticket
from api.enums import TicketPriority, TicketStatus
from solver.slots import zone

LeadMinutes = Annotated[
    Int,
    Field(ge=0, le=7 * 24 * 60, description="Bind calls starting within this many minutes"),
]
TimeLimit = Annotated[
    Number, Field(gt=0, le=10, description="Seconds the binding optimizer may use (CP-SAT)")
]


class BookingReasonOut(Schema):
    rule: str = Field(
        description="no_qualified_agents, no_agent_working, reserve, fully_booked, "
        "outside_booking_window, uncoverable, agent_excluded, ..."
    )
    detail: str


class SlotOut(Schema):
    start: datetime = Field(description="In the customer's time zone, with its offset")
    end: datetime


class SlotsOut(Schema):
    capability_id: str
    tz: str
    slots: list[SlotOut]
    reason: BookingReasonOut | None = Field(description="Why there are none (null when there are)")
    excluded: list[BookingReasonOut] = Field(
        default_factory=list,
        description="Qualified agents left out of these slots, each named with why (rule "
        "`agent_excluded`: their calendar connection failed or is stale, so the engine does not "
        "count on them until the next good sync). For the helpdesk only: a customer's page "
        "never shows it",
    )


class BookingIn(Schema):
    capability_id: Id
    ticket_id: Id = Field(description="The helpdesk's id of the ticket the call is for")
    start: LocalTimestampIn = Field(
        description="A start on the capability's slot grid in `tz`, with an offset"
    )
    tz: TimeZone = Field(
        default="UTC", description="The customer's IANA time zone (slot grid, alternatives)"
    )
    allow_additional: bool = Field(
        default=False,
        description="Book this call even though the ticket already has as many booked calls "
        "as the tenant's policy live_calls_per_ticket allows (default 1); without it such a "
        "booking is a 409 naming the booked call(s)",
    )


class BookingOut(Schema):
    id: str
    capability_id: str
    ticket_id: str
    status: CallStatus
    start: Timestamp
    end: Timestamp
    start_local: datetime = Field(description="The start in the customer's time zone")
    tz: str
    agent: str | None = Field(
        description="The agent, once just-in-time binding has named one; null before"
    )
    bound_at: Timestamp | None
    at_risk: bool = Field(description="Nobody can cover the call any more: offer another time")
    cancelled_at: Timestamp | None
    cancel_reason: CallNote | None = Field(
        description="Why it was cancelled, as the customer is told: ticket_solved, "
        "ticket_closed (policy calls_on_done=cancel), requested (cancelled through this API); "
        "null while not cancelled"
    )
    flagged: bool = Field(
        description="Kept although its ticket is solved or closed (policy calls_on_done=keep): "
        "the helpdesk may want to cancel it"
    )
    flagged_at: Timestamp | None
    flag_reason: CallNote | None = Field(
        description="Why it is flagged: ticket_solved or ticket_closed; null when not flagged"
    )
    admitted_at: Timestamp | None = Field(
        description="When the customer was let in: by the bound agent (POST .../admit), or at "
        "the start when the tenant admits by itself (call_room.admission=auto; recorded by the "
        "bookings job); null until then"
    )
    admitted_by: str | None = Field(
        description="The agent who admitted the customer (the bound agent at the start, for "
        "automatic admission); null while not admitted"
    )
    completed_at: Timestamp | None = Field(
        description="When the bound agent completed the call or marked it a no-show; null "
        "otherwise (a call whose end passed unclosed shows status completed with this null)"
    )
    created_at: Timestamp
    updated_at: Timestamp

    @classmethod
    def from_row(cls, row: Call) -> BookingOut:
        return cls(
            id=row.id,
            capability_id=row.capability_id,
            ticket_id=row.ticket_id,
            status=row.status,
            start=row.start_at,
            end=row.end_at,
            start_local=row.start_at.astimezone(zone(row.timezone)),
            tz=row.timezone,
            agent=row.bound_agent,
            bound_at=row.bound_at,
            at_risk=row.at_risk_since is not None,
            cancelled_at=row.cancelled_at,
            cancel_reason=row.cancel_reason,
            flagged=row.flagged_at is not None,
            flagged_at=row.flagged_at,
            flag_reason=row.flag_reason,
            admitted_at=row.admitted_at,
            admitted_by=row.admitted_by,
            completed_at=row.completed_at,
            created_at=row.created_at,
            updated_at=row.updated_at,
        )


class AgentActionIn(Schema):
    """Who acts on the call: only the agent bound to it counts."""

    agent_id: Id = Field(description="The agent acting: must be the call's bound agent")


class AgentCallTicketOut(Schema):
    """The ticket a call is for, as the agent needs it before the call."""

    id: str
    priority: TicketPriority
    status: TicketStatus
    team: str = Field(description="The team accountable for the ticket")
    owner_agent: str | None = Field(description="Who holds the ticket (maybe not this agent)")
    channel: str = Field(description="Where the customer reached out")
    requester: str | None
    first_response_due: Timestamp | None
    resolution_due: Timestamp | None
    required_skills: dict[str, int] = Field(description="Skill id -> minimum level")

    @classmethod
    def from_row(cls, row: Ticket) -> AgentCallTicketOut:
        return cls(
            id=row.id,
            priority=row.priority,
            status=row.status,
            team=row.team_id,
            owner_agent=row.owner_agent_id,
            channel=row.channel,
            requester=row.requester,
            first_response_due=row.first_response_due,
            resolution_due=row.resolution_due,
            required_skills={s.skill_id: s.level for s in row.required_skills},
        )


class AgentCallOut(BookingOut):
    """One of the agent's calls: the booking, when its waiting room opens, and its ticket."""

    room_opens_at: Timestamp = Field(
        description="When the customer's waiting room opens (call_room.opens_minutes_before "
        "the start): the agent may admit from then until the end"
    )
    ticket: AgentCallTicketOut


class AgentCallsOut(Schema):
    agent_id: str
    date: Date = Field(description="The local day, in `tz`")
    tz: str = Field(description="The IANA time zone the day is cut in")
    start: Timestamp = Field(
        serialization_alias="from", description="The day's local midnight (inclusive)"
    )
    end: Timestamp = Field(
        serialization_alias="to", description="The next local midnight (exclusive)"
    )
    calls: list[AgentCallOut] = Field(
        description="The calls bound to the agent starting that day, by start: booked "
        "(admitted or not), completed and no-show; cancelled ones only when asked"
    )


class BookedOut(BookingOut):
    """A booking just made, with what it was allowed despite."""

    warnings: list[str] = Field(
        description="What the booking was allowed despite, e.g. the capability lacks skills "
        "the ticket requires (policy capability_coverage=warn names them); empty when none"
    )


class BookingConflict(ProblemDetails):
    """409 when the slot is no longer open: why, and the nearest open starts."""

    reason: BookingReasonOut
    alternatives: list[SlotOut]
    excluded: list[BookingReasonOut] = Field(
        default_factory=list,
        description="Qualified agents the engine did not count on (rule `agent_excluded`), "
        "each named with why",
    )


class BindIn(Schema):
    lead_minutes: LeadMinutes = 120
    time_limit_s: TimeLimit = 1.0


class BindingOut(Schema):
    booking_id: str
    agent: str
    previous_agent: str | None
    reasons: list[BookingReasonOut]


class AtRiskOut(Schema):
    booking_id: str
    previous_agent: str | None
    reason: BookingReasonOut


class BindOut(Schema):
    bound: list[BindingOut] = Field(description="Calls that got (or changed) their agent")
    at_risk: list[AtRiskOut]
    completed: int = Field(description="Calls found over and marked completed")
    due: int = Field(description="Calls within the lead time that needed an agent")
    wall_seconds: float


class RebalanceIn(BindIn):
    """The lead time and time limit of a rebalance, as for binding."""


class RebalanceOut(Schema):
    rebound: list[BindingOut] = Field(
        description="Bound calls whose agent can no longer take them, moved to another agent"
    )
    bound: list[BindingOut] = Field(description="Calls due within the lead time, newly bound")
    at_risk: list[AtRiskOut] = Field(description="Calls nobody can cover any more")
    checked: int = Field(description="Booked calls still to come that were re-checked")
    completed: int
    wall_seconds: float
