"""Domain events for webhooks, written to the outbox in the caller's transaction.

Call :func:`emit` inside the unit of work that makes the change, before ``session.commit()``::

    events.emit(session=session, tenant_id=tid, type="ticket.assigned",
                data={"ticket_id": t.id, "agent_id": a.id}, now=now)

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
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from api import mapping
from api.db.models import Call
from api.db.webhooks import WebhookEvent, WebhookSubscription
from solver.plan import Reason


class EventType(enum.StrEnum):
    TICKET_ASSIGNED = "ticket.assigned"
    TICKET_REASSIGNED = "ticket.reassigned"
    QUEUE_OPTIMIZED = "queue.optimized"
    BOOKING_CREATED = "booking.created"
    BOOKING_CANCELLED = "booking.cancelled"
    BOOKING_AGENT_BOUND = "booking.agent_bound"
    BOOKING_AT_RISK = "booking.at_risk"
    BOOKING_FLAGGED = "booking.flagged"
    TICKET_BREACH_RISK = "ticket.breach_risk"


def booking_payload(call: Call) -> dict[str, Any]:
    """What every ``booking.*`` event (and the ticket history's ``call_*`` steps) says of
    its call: which booking, for which ticket and capability, when, in which time zone. The
    agent is not part of it: only ``booking.agent_bound`` adds one, once bound."""
    return {
        "booking_id": call.id,
        "ticket_id": call.ticket_id,
        "capability_id": call.capability_id,
        "start": call.start_at,
        "end": call.end_at,
        "tz": call.timezone,
    }


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
    """The ``webhook_events`` row of one event (``data`` as :func:`normalize_data` gives it)."""
    return {
        "tenant_id": tenant_id,
        "id": new_id("evt", now),
        "type": type.value,
        "data": normalize_data(data),
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
    source: str,
    reasons: Sequence[Reason],
    job_id: str | None = None,
) -> dict[str, Any]:
    """The data of ``ticket.assigned`` / ``ticket.reassigned`` (the reasons without their
    values, as :func:`api.mapping.reasons_brief` writes them). Written here once;
    :mod:`api.tickets.owner` is its one caller."""
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


def breach_risk_payload(
    *,
    ticket_id: str,
    team_id: str,
    agent_id: str,
    deadline: str | None,
    due: datetime | None,
    expected: datetime,
    margin_minutes: int,
    action: str,
    to_agent_id: str | None,
    to_team_id: str | None,
    reasons: Sequence[Reason],
    job_id: str | None = None,
) -> dict[str, Any]:
    """The data of ``ticket.breach_risk``: a ticket that will miss ``deadline``
    (``first_response`` or ``resolution``, due at ``due``) with its owner ``agent_id``, who is
    expected to reach it at ``expected``; and what was done (``action``: ``recorded``,
    ``rerouted``, ``borrowed`` or ``escalated``, to ``to_agent_id``/``to_team_id``). Written
    here once; :mod:`api.assignment.breach` is its one caller."""
    data: dict[str, Any] = {
        "ticket_id": ticket_id,
        "team_id": team_id,
        "agent_id": agent_id,
        "deadline": deadline,
        "due": due,
        "expected": expected,
        "margin_minutes": margin_minutes,
        "action": action,
        "to_agent_id": to_agent_id,
        "to_team_id": to_team_id,
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
