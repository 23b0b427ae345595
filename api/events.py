"""Domain events for webhooks, written to the outbox in the caller's transaction.

Call :func:`emit` inside the unit of work that makes the change, before ``session.commit()``::

    events.emit(session=session, tenant_id=tid, type="queue.optimized",
                data=events.queue_optimized_payload(...), now=now)

Every type's ``data`` has a pydantic model (:data:`PAYLOADS`): the OpenAPI document's
``webhooks`` section shows it, and every outbox write checks the data against it, so what is
documented and what is sent cannot drift. Ticket history steps are not emitted by hand: the
two writers of history rows emit ``ticket.<kind>`` for every row (:func:`ticket_step_notice`).

The event is committed (or rolled back) together with the change it describes, and nothing is
sent inside the request: the webhook deliverer fans committed events out to the tenant's
subscriptions and sends them later. When the tenant has no enabled subscription to ``type``,
nothing is written, so tenants without webhooks pay one indexed read per event and no outbox
growth.

``data`` must be JSON-shaped; aware datetimes are written as ISO 8601 in UTC and enum members
as their value, so callers can pass what they have.
"""

from __future__ import annotations

import enum
import json
import secrets
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from api import mapping
from api.db.models import Call, CallNote, Ticket
from api.db.webhooks import WebhookEvent, WebhookSubscription
from api.enums import TicketEventKind, TicketPriority, TicketStatus
from solver.plan import Reason

_OWNER_KINDS = frozenset({TicketEventKind.ASSIGNED, TicketEventKind.REASSIGNED})


class EventType(enum.StrEnum):
    # One per kind of ticket history step (``ticket.<kind>``, see TICKET_STEP_EVENTS).
    TICKET_CREATED = "ticket.created"
    TICKET_UPDATED = "ticket.updated"
    TICKET_ASSIGNED = "ticket.assigned"
    TICKET_REASSIGNED = "ticket.reassigned"
    TICKET_STATUS_CHANGED = "ticket.status_changed"
    TICKET_ESCALATED = "ticket.escalated"
    TICKET_CALL_BOOKED = "ticket.call_booked"
    TICKET_CALL_CANCELLED = "ticket.call_cancelled"
    TICKET_CALL_FLAGGED = "ticket.call_flagged"
    TICKET_BREACH_RISK = "ticket.breach_risk"
    TICKET_DUE_DATES_SET = "ticket.due_dates_set"
    TICKET_CALL_LINK_CREATED = "ticket.call_link_created"
    TICKET_CALL_LINK_REVOKED = "ticket.call_link_revoked"
    TICKET_CALL_RESCHEDULED = "ticket.call_rescheduled"
    TICKET_CALL_ADMITTED = "ticket.call_admitted"
    TICKET_CALL_NO_SHOW = "ticket.call_no_show"
    TICKET_CALL_COMPLETED = "ticket.call_completed"
    QUEUE_OPTIMIZED = "queue.optimized"
    BOOKING_CREATED = "booking.created"
    BOOKING_CANCELLED = "booking.cancelled"
    BOOKING_AGENT_BOUND = "booking.agent_bound"
    BOOKING_AT_RISK = "booking.at_risk"
    BOOKING_FLAGGED = "booking.flagged"
    BOOKING_RESCHEDULED = "booking.rescheduled"
    BOOKING_ADMITTED = "booking.admitted"
    BOOKING_NO_SHOW = "booking.no_show"
    BOOKING_COMPLETED = "booking.completed"
    CALL_LINK_CREATED = "call_link.created"
    CALL_LINK_REVOKED = "call_link.revoked"
    CALENDAR_SYNC_FAILED = "calendar.sync_failed"
    CALENDAR_SYNC_RECOVERED = "calendar.sync_recovered"


_OWNER_TYPES = frozenset({EventType.TICKET_ASSIGNED, EventType.TICKET_REASSIGNED})

# Every kind of ticket history step has its event, named ``ticket.<kind>``: built at import, so
# a kind added without its event type fails here, at start-up, not silently at run time.
TICKET_STEP_EVENTS: Mapping[TicketEventKind, EventType] = MappingProxyType(
    {kind: EventType(f"ticket.{kind.value}") for kind in TicketEventKind}
)


# --- the payloads: what each event's ``data`` is (documented in OpenAPI's ``webhooks``) -----


class Payload(BaseModel):
    """An event's ``data``. Every payload written to the outbox is checked against its type's
    model (:func:`outbox_row`), so the documented schema and what is sent cannot drift apart."""

    model_config = ConfigDict(extra="forbid")


class ReasonBrief(Payload):
    rule: str = Field(description="The rule's name, e.g. first_response, expertise_waste")
    detail: str = Field(description="What it found, in words")


class TicketStepData(Payload):
    """One step of a ticket's history, as ``GET /v1/tickets/{id}/history`` lists it. Every
    ``ticket.*`` event carries these fields."""

    ticket_id: str = Field(description="The helpdesk's ticket id")
    step: TicketEventKind = Field(description="The kind of history step (the event's suffix)")
    at: datetime = Field(description="When the step happened (the request's time, UTC)")
    actor: str | None = Field(
        description=(
            "Who made it: the id of the API key whose request did (compare with your own keys "
            "to skip the echo of your own changes), `system` for background jobs, or null"
        )
    )
    reason: str | None = Field(description="The history's one-line reason, if any")
    from_agent_id: str | None
    to_agent_id: str | None
    from_team_id: str | None
    to_team_id: str | None
    from_status: str | None
    to_status: str | None
    details: dict[str, Any] = Field(
        description="What else the history step records (its `data`), e.g. `changed` fields"
    )


class TicketOwnerChangedData(TicketStepData):
    """``ticket.assigned`` / ``ticket.reassigned``: the ticket changed hands (see
    ``api.tickets.owner.change_kind`` for which is which)."""

    agent_id: str | None = Field(description="The new owner; null: the team's queue")
    team_id: str = Field(description="The team that now holds the ticket")
    source: str | None = Field(
        description=(
            "What moved it: realtime, escalation, reroute, optimizer; null when the helpdesk "
            "set the owner itself (PUT /v1/tickets/{id})"
        )
    )
    reasons: list[ReasonBrief] = Field(description="Why (the reasons without their values)")
    job_id: str | None = Field(default=None, description="The re-optimization job, if one did")


class QueueOptimizedData(Payload):
    job_id: str
    team_id: str | None = Field(description="The team re-optimized; null: every team")
    changes: int = Field(description="Tickets that changed hands")
    skipped: int = Field(description="Planned changes not applied (the ticket moved meanwhile)")
    status: str = Field(description="The solver's status")
    objective: float | None


class BookingTicket(Payload):
    """The ticket a call is for, as it stands when the event is written (the ticket stays the
    truth: a helpdesk can act on the event without reading the ticket back)."""

    id: str = Field(description="The helpdesk's ticket id")
    priority: TicketPriority
    status: TicketStatus
    team_id: str = Field(description="The team accountable for the ticket")
    owner_agent_id: str | None = Field(
        description="The agent who holds the ticket (not necessarily the call's agent); null: "
        "the team's queue"
    )
    channel: str = Field(description="Where the customer reached out")


class BookingData(Payload):
    """What every ``booking.*`` event says of its call, and of its ticket."""

    booking_id: str
    ticket_id: str
    capability_id: str
    start: datetime
    end: datetime
    tz: str = Field(description="The customer's IANA time zone")
    ticket: BookingTicket = Field(description="The ticket's context when the step happened")


class BookingCreatedData(BookingData):
    warnings: list[str] = Field(
        default_factory=list,
        description=(
            "What the booking was allowed despite (the tenant's capability_coverage is warn): "
            "the ticket's required skills its capability does not cover"
        ),
    )


class BookingCancelledData(BookingData):
    agent_id: str | None = Field(description="The agent who was bound to the call, if any")
    reason: CallNote = Field(
        description=(
            "Why: requested (DELETE /v1/bookings/{id}), ticket_solved or ticket_closed (the "
            "tenant's calls_on_done policy cancels a done ticket's calls)"
        )
    )


class BookingFlaggedData(BookingData):
    """A call kept although its ticket is done (the tenant's calls_on_done is ``keep``)."""

    reason: CallNote = Field(description="ticket_solved or ticket_closed")


class BookingAgentBoundData(BookingData):
    agent_id: str = Field(description="The agent who will take the call")
    previous_agent_id: str | None = Field(description="The agent bound before, if rebound")
    reasons: list[ReasonBrief]


class BookingAtRiskData(BookingData):
    previous_agent_id: str | None = Field(description="The agent bound before, if any")
    reason: ReasonBrief = Field(description="Why no agent can take the call")
    excluded: list[ReasonBrief] = Field(
        default_factory=list,
        description="Qualified agents left out because their calendar cannot be trusted "
        "(rule agent_excluded: the connection failed or is stale), each named with why",
    )


class BookingRescheduledData(BookingData):
    """The customer moved their call through its link: this is the new call; the previous one
    is cancelled (reason ``rescheduled``) in the same transaction."""

    link_id: str = Field(description="The call link it was rescheduled through")
    previous_booking_id: str = Field(description="The call it replaces (now cancelled)")
    previous_start: datetime
    previous_end: datetime


class BookingAdmittedData(BookingData):
    agent_id: str | None = Field(description="The bound agent who admitted the customer")
    admitted_at: datetime
    automatic: bool = Field(
        description="True when the tenant admits customers at the start by itself (call_room)"
    )


class BookingClosedData(BookingData):
    """``booking.completed`` / ``booking.no_show``: the bound agent closed the call."""

    agent_id: str | None = Field(description="The agent who closed it")


class CallLinkData(Payload):
    """A call link's policy. Never its token or URL: those are shown once, to the creator."""

    link_id: str
    ticket_id: str
    capability_id: str
    expires_at: datetime = Field(description="After this an unused link no longer books")
    not_before: datetime | None = Field(description="No call may start before this")
    not_after: datetime | None = Field(description="No call may start after this")
    reschedules_allowed: int
    timezone: str = Field(description="The customer's IANA time zone (a hint the page uses)")
    locale: str = Field(description="The customer's locale (a hint the page uses)")


class CalendarSyncData(Payload):
    """Which calendar connection, whose, where. Never a credential or an event's contents."""

    connection_id: str = Field(description="The calendar connection")
    agent_id: str = Field(description="The agent whose calendar it reads")
    provider: str = Field(description="google, microsoft or ics")


class CalendarSyncFailedData(CalendarSyncData):
    """The connection's mirror of the agent's busy time cannot be trusted any more: the agent
    is unavailable for new calls and just-in-time binding until a good sync (fail closed).
    Sent once when the connection breaks or goes stale, not on every failed poll."""

    reason: Literal["credential", "stale"] = Field(
        description=(
            "credential: the credential is dead (invalid_grant, 401 after a refresh, a bad "
            "client secret) and someone must reconnect the calendar; stale: no good sync for "
            "longer than SWITCHBOARD_CALENDAR_MAX_STALENESS_SECONDS"
        )
    )
    detail: str = Field(description="What failed, in words (as the connection's `failure`)")
    last_success_at: datetime | None = Field(description="The last good sync; null: none yet")


class CalendarSyncRecoveredData(CalendarSyncData):
    """A connection that had failed or gone stale synced again: the agent is available again."""

    recovered_from: Literal["credential", "stale"] = Field(
        description="The reason of the `calendar.sync_failed` this ends"
    )
    last_success_at: datetime = Field(description="The good sync that ended it")


PAYLOADS: Mapping[EventType, type[Payload]] = MappingProxyType(
    {
        **{
            t: TicketOwnerChangedData if t in _OWNER_TYPES else TicketStepData
            for t in TICKET_STEP_EVENTS.values()
        },
        EventType.QUEUE_OPTIMIZED: QueueOptimizedData,
        EventType.BOOKING_CREATED: BookingCreatedData,
        EventType.BOOKING_CANCELLED: BookingCancelledData,
        EventType.BOOKING_AGENT_BOUND: BookingAgentBoundData,
        EventType.BOOKING_AT_RISK: BookingAtRiskData,
        EventType.BOOKING_FLAGGED: BookingFlaggedData,
        EventType.BOOKING_RESCHEDULED: BookingRescheduledData,
        EventType.BOOKING_ADMITTED: BookingAdmittedData,
        EventType.BOOKING_NO_SHOW: BookingClosedData,
        EventType.BOOKING_COMPLETED: BookingClosedData,
        EventType.CALL_LINK_CREATED: CallLinkData,
        EventType.CALL_LINK_REVOKED: CallLinkData,
        EventType.CALENDAR_SYNC_FAILED: CalendarSyncFailedData,
        EventType.CALENDAR_SYNC_RECOVERED: CalendarSyncRecoveredData,
    }
)


_STEP_WORDS: Mapping[TicketEventKind, str] = {
    TicketEventKind.CREATED: "A ticket was created (PUT /v1/tickets/{id} of a new id)",
    TicketEventKind.UPDATED: "A ticket's fields changed (details.changed names them)",
    TicketEventKind.ASSIGNED: "A ticket no agent held got an agent of its own team",
    TicketEventKind.REASSIGNED: "A ticket changed hands (another agent, the queue or a team)",
    TicketEventKind.STATUS_CHANGED: "A ticket's status changed (from_status, to_status)",
    TicketEventKind.ESCALATED: "A ticket was escalated: its needs (and maybe team) went up",
    TicketEventKind.CALL_BOOKED: (
        "A step of one of the ticket's calls (details.action: booked, cancelled, agent_bound, "
        "agent_rebound, at_risk)"
    ),
    TicketEventKind.CALL_CANCELLED: "A ticket's call was cancelled because the ticket is done",
    TicketEventKind.CALL_FLAGGED: "A ticket's call was kept but flagged: the ticket is done",
    TicketEventKind.BREACH_RISK: "A ticket will likely miss its deadline with its owner",
    TicketEventKind.DUE_DATES_SET: "A ticket's due dates were set from the SLA policy",
    TicketEventKind.CALL_LINK_CREATED: "A call link was issued for the ticket's customer",
    TicketEventKind.CALL_LINK_REVOKED: "A call link of the ticket was revoked",
    TicketEventKind.CALL_RESCHEDULED: "The customer moved a call of the ticket to another time",
    TicketEventKind.CALL_ADMITTED: "The customer was admitted to a call of the ticket",
    TicketEventKind.CALL_NO_SHOW: "The customer did not come to a call of the ticket",
    TicketEventKind.CALL_COMPLETED: "A call of the ticket was completed",
}
DESCRIPTIONS: Mapping[EventType, str] = MappingProxyType(
    {
        **{TICKET_STEP_EVENTS[k]: words for k, words in _STEP_WORDS.items()},
        EventType.QUEUE_OPTIMIZED: "A queue re-optimization job applied its plan",
        EventType.BOOKING_CREATED: "A customer booked a call",
        EventType.BOOKING_CANCELLED: "A booked call was cancelled",
        EventType.BOOKING_AGENT_BOUND: "An agent was bound (or rebound) to a booked call",
        EventType.BOOKING_AT_RISK: "No agent can take a booked call any more",
        EventType.BOOKING_FLAGGED: "A booked call was kept although its ticket is done",
        EventType.BOOKING_RESCHEDULED: "The customer moved their call to another time",
        EventType.BOOKING_ADMITTED: "The customer was let into their call",
        EventType.BOOKING_NO_SHOW: "The customer did not come to their call",
        EventType.BOOKING_COMPLETED: "A call was completed",
        EventType.CALL_LINK_CREATED: "A call link was issued for a ticket",
        EventType.CALL_LINK_REVOKED: "A call link was revoked",
        EventType.CALENDAR_SYNC_FAILED: (
            "An agent's calendar connection broke or went stale: the agent is unavailable for "
            "new calls until it syncs again"
        ),
        EventType.CALENDAR_SYNC_RECOVERED: "A failed or stale calendar connection synced again",
    }
)


def check_payload(type: EventType, data: Mapping[str, Any]) -> None:
    """Raise ValueError unless ``data`` is what ``type``'s documented schema says (a
    programming error: the caller built a payload the schema does not describe)."""
    model = PAYLOADS.get(type)
    if model is None:
        raise ValueError(f"event type {type.value!r} has no payload model in api.events.PAYLOADS")
    try:
        model.model_validate(data)
    except ValidationError as exc:
        raise ValueError(f"{type.value} payload does not match its schema: {exc}") from None


_HISTORY_DETAILS_SKIPPED = frozenset({"source", "reasons", "job_id"})


def ticket_step_notice(step: Mapping[str, Any]) -> tuple[EventType, dict[str, Any]]:
    """The webhook event of one ticket history step: its type (``ticket.<kind>``) and data.

    ``step`` is the history row's columns (``ticket_id``, ``kind``, ``at``, ``actor``,
    ``reason``, ``from_agent``, ``to_agent``, ``from_team``, ``to_team``, ``from_status``,
    ``to_status``, ``data``). The two writers of history rows (:func:`api.tickets.service
    .record_event` and :class:`api.tickets.owner.OwnerWriter`) call this for every row they
    write, so every step has its event; an owner change adds its own fields with
    :func:`ticket_owner_payload`.
    """
    kind = TicketEventKind(step["kind"])
    history = dict(step.get("data") or {})
    data: dict[str, Any] = {
        "ticket_id": step["ticket_id"],
        "step": kind,
        "at": step["at"],
        "actor": step.get("actor"),
        "reason": step.get("reason"),
        "from_agent_id": step.get("from_agent"),
        "to_agent_id": step.get("to_agent"),
        "from_team_id": step.get("from_team"),
        "to_team_id": step.get("to_team"),
        "from_status": step.get("from_status"),
        "to_status": step.get("to_status"),
        "details": history,
    }
    if kind in _OWNER_KINDS:
        # The owner fields, as the history row holds them (the writer passes the same values
        # from what it has at hand: see api.tickets.owner).
        data["details"] = {k: v for k, v in history.items() if k not in _HISTORY_DETAILS_SKIPPED}
        data["agent_id"] = step.get("to_agent")
        data["team_id"] = step.get("to_team") or ""
        data["source"] = history.get("source")
        data["reasons"] = [
            {"rule": r["rule"], "detail": r["detail"]} for r in history.get("reasons", [])
        ]
        if history.get("job_id") is not None:
            data["job_id"] = history["job_id"]
    return TICKET_STEP_EVENTS[kind], data


def booking_payload(call: Call) -> dict[str, Any]:
    """What the ticket history's ``call_*`` steps (and, with the ticket's context added by
    :func:`booking_event_data`, every ``booking.*`` event) say of a call: which booking, for
    which ticket and capability, when, in which time zone. The agent is not part of it: the
    steps that concern one (bound, admitted, closed) add it."""
    return {
        "booking_id": call.id,
        "ticket_id": call.ticket_id,
        "capability_id": call.capability_id,
        "start": call.start_at,
        "end": call.end_at,
        "tz": call.timezone,
    }


def ticket_context(ticket: Ticket) -> dict[str, Any]:
    """What a ``booking.*`` event says of the call's ticket (:class:`BookingTicket`)."""
    return {
        "id": ticket.id,
        "priority": ticket.priority,
        "status": ticket.status,
        "team_id": ticket.team_id,
        "owner_agent_id": ticket.owner_agent_id,
        "channel": ticket.channel,
    }


def booking_event_data(session: Session, call: Call) -> dict[str, Any]:
    """The common part of every ``booking.*`` event's data: :func:`booking_payload` and the
    ticket's context (:func:`ticket_context`) as the session holds it now (a status change in
    the same unit of work shows). Every writer of a ``booking.*`` event builds on this, so
    none can leave the ticket out (its payload model requires it)."""
    ticket = session.get(Ticket, (call.tenant_id, call.ticket_id))
    if ticket is None:  # the calls' foreign key makes this impossible
        raise LookupError(f"call {call.id!r} has no ticket {call.ticket_id!r}")
    return {**booking_payload(call), "ticket": ticket_context(ticket)}


def new_id(prefix: str, now: datetime) -> str:
    """``<prefix>_<ms since epoch, hex><random>``: unique, and sorts by creation time."""
    millis = int(now.timestamp() * 1000)
    return f"{prefix}_{millis:012x}{secrets.token_hex(8)}"


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError("naive datetime in event data")
        return value.astimezone(UTC).isoformat()
    if isinstance(value, enum.Enum):
        return value.value
    raise TypeError(f"{type(value).__name__} is not JSON serializable in event data")


def normalize_data(data: Mapping[str, Any]) -> dict[str, Any]:
    """``data`` as plain JSON values; raises TypeError/ValueError for what JSON cannot hold."""
    out: dict[str, Any] = json.loads(json.dumps(dict(data), default=_jsonable))
    return out


_SUBSCRIBED = select(WebhookSubscription.event_types).where(
    WebhookSubscription.tenant_id == bindparam("tenant"), WebhookSubscription.enabled.is_(True)
)


def subscribed_types(session: Session, tenant_id: str) -> set[str]:
    """Every event type some enabled subscription of the tenant wants (one read; a prebuilt
    statement on the session's connection, as the assignment path reads it every batch)."""
    lists = session.connection().execute(_SUBSCRIBED, {"tenant": tenant_id}).scalars()
    return {t for types in lists for t in types}


def outbox_row(
    tenant_id: str, type: EventType, data: Mapping[str, Any], now: datetime
) -> dict[str, Any]:
    """The ``webhook_events`` row of one event (``data`` as :func:`normalize_data` gives it,
    checked against the type's payload model: ValueError when it does not match)."""
    normalized = normalize_data(data)
    check_payload(type, normalized)
    return {
        "tenant_id": tenant_id,
        "id": new_id("evt", now),
        "type": type.value,
        "data": normalized,
        "created_at": now.astimezone(UTC),
        "dispatched_at": None,
    }


def ticket_owner_payload(
    *,
    ticket_id: str,
    agent_id: str | None,
    team_id: str,
    from_agent_id: str | None,
    from_team_id: str,
    source: str | None,
    reasons: Sequence[Reason],
    job_id: str | None = None,
) -> dict[str, Any]:
    """The owner fields of ``ticket.assigned`` / ``ticket.reassigned`` (the reasons without
    their values, as :func:`api.mapping.reasons_brief` writes them), added to the step's
    (:func:`ticket_step_notice`). Written here once; :mod:`api.tickets.owner` is its one
    caller."""
    data: dict[str, Any] = {
        "ticket_id": ticket_id,
        "agent_id": agent_id,
        "team_id": team_id,
        "from_agent_id": from_agent_id,
        "from_team_id": from_team_id,
        "source": source,
        "reasons": mapping.reasons_brief(reasons),
    }
    if job_id is not None:
        data["job_id"] = job_id
    return data


def queue_optimized_payload(
    *,
    job_id: str,
    team_id: str | None,
    changes: int,
    skipped: int,
    status: str,
    objective: float | None,
) -> dict[str, Any]:
    """The data of ``queue.optimized``: what one re-optimization job changed."""
    return {
        "job_id": job_id,
        "team_id": team_id,
        "changes": changes,
        "skipped": skipped,
        "status": status,
        "objective": objective,
    }


def outbox_rows(
    session: Session,
    tenant_id: str,
    notices: Sequence[tuple[EventType, Mapping[str, Any]]],
    now: datetime,
) -> list[dict[str, Any]]:
    """The outbox rows :func:`emit` would write for each (type, data) of ``notices`` (none for
    a type no enabled subscription wants), reading the subscriptions once for all of them."""
    if not notices:
        return []
    wanted = subscribed_types(session, tenant_id)
    return [outbox_row(tenant_id, t, data, now) for t, data in notices if t.value in wanted]


def emit(
    *,
    session: Session,
    tenant_id: str,
    type: str,
    data: Mapping[str, Any],
    now: datetime | None = None,
) -> None:
    """Record event ``type`` for ``tenant_id`` in the session's transaction (see module doc).

    ``now`` should be the request's clock (``NowDep``) where there is one; it stamps the event.
    An unknown ``type`` or unserializable ``data`` is a programming error (ValueError/TypeError)
    raised here, not at delivery time.
    """
    event_type = EventType(type)  # ValueError for an unknown type
    if now is None:
        now = datetime.now(UTC)
    elif now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("emit(now=...) must be timezone-aware")
    row = outbox_row(tenant_id, event_type, data, now)  # TypeError/ValueError for bad data
    if event_type.value not in subscribed_types(session, tenant_id):
        return
    session.add(WebhookEvent(**row))
