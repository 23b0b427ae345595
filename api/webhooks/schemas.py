"""Webhook subscription and delivery-log schemas.

The signing secret appears in exactly one response: :class:`WebhookCreated`, when the
subscription is made. Nothing else ever returns it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, StringConstraints, create_model

from api.common.schemas import NO_NUL, STRIP, Bool, Int, Patch, Schema, Timestamp
from api.db.webhooks import (
    URL_MAX_LENGTH,
    DeliveryStatus,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEvent,
    WebhookSubscription,
)
from api.events import DESCRIPTIONS, PAYLOADS, EventType
from api.settings import MAX_SECRET_OVERLAP


def _distinct(values: list[EventType]) -> list[EventType]:
    if len(set(values)) != len(values):
        raise ValueError("must not repeat an event type")
    return values


Url = Annotated[
    str,
    StringConstraints(min_length=1, max_length=URL_MAX_LENGTH),
    NO_NUL,
    STRIP,
    Field(
        description=(
            "Where events are POSTed: an https URL on a public address (loopback and private "
            "networks are refused unless the operator allows them)"
        ),
        examples=["https://helpdesk.example.com/hooks/switchboard"],
    ),
]
# Distinct: the schema says so (uniqueItems) and _distinct refuses a repeat with a 422 naming
# ``event_types``, rather than storing or silently collapsing it. (A set type would document
# uniqueItems too, but would swallow repeats and lose the client's order.)
EventTypes = Annotated[
    list[EventType],
    Field(
        min_length=1,
        description="The event types to receive, each once",
        json_schema_extra={"uniqueItems": True},
    ),
    AfterValidator(_distinct),
]
Description = Annotated[str, StringConstraints(max_length=500), NO_NUL, STRIP]


class WebhookCreate(Schema):
    url: Url
    event_types: EventTypes
    description: Description = ""
    enabled: Bool = True


class WebhookUpdate(Patch):
    """Not nullable: ``description`` is cleared with ``""``; a subscription always has a URL,
    at least one event type and a state."""

    url: Url | None = None
    event_types: EventTypes | None = None
    description: Description | None = None
    enabled: Bool | None = None


class SecretRotation(Schema):
    overlap_seconds: Int | None = Field(
        default=None,
        ge=0,
        le=MAX_SECRET_OVERLAP,
        description=(
            "How long the secret being replaced keeps signing deliveries beside the new one "
            "(each attempt then carries two `v1,` signatures in `webhook-signature`); 0 stops "
            "it at once. Default: the server's SWITCHBOARD_WEBHOOK_SECRET_OVERLAP_SECONDS "
            "(24 hours unless the operator changed it)."
        ),
    )


class WebhookOut(Schema):
    id: str
    url: str
    event_types: list[str]
    description: str
    enabled: bool
    previous_secret_expires_at: Timestamp | None = Field(
        description=(
            "After a rotation: until when the previous secret still signs deliveries beside the "
            "current one (null when only the current secret signs)"
        )
    )
    created_at: Timestamp
    updated_at: Timestamp

    @classmethod
    def from_row(cls, row: WebhookSubscription) -> WebhookOut:
        return cls(
            id=row.id,
            url=row.url,
            event_types=list(row.event_types),
            description=row.description,
            enabled=row.enabled,
            previous_secret_expires_at=row.previous_secret_expires_at,
            created_at=row.created_at,
            updated_at=row.updated_at,
        )


class WebhookCreated(WebhookOut):
    secret: str = Field(
        description=(
            "The signing secret (Standard Webhooks `whsec_...`). Shown only in this response: "
            "store it now to verify the `webhook-signature` header."
        )
    )


class AttemptOut(Schema):
    number: int
    started_at: Timestamp
    finished_at: Timestamp
    status_code: int | None = Field(description="The receiver's HTTP status; null if none came")
    latency_ms: float
    error: str | None
    outcome: str = Field(description="delivered, retry or failed")

    @classmethod
    def from_row(cls, row: WebhookAttempt) -> AttemptOut:
        return cls(
            number=row.number,
            started_at=row.started_at,
            finished_at=row.finished_at,
            status_code=row.status_code,
            latency_ms=row.latency_ms,
            error=row.error,
            outcome=row.outcome,
        )


class EventOut(Schema):
    id: str = Field(description="Also the `webhook-id` header of every attempt")
    type: str
    created_at: Timestamp
    data: dict[str, Any]

    @classmethod
    def from_row(cls, row: WebhookEvent) -> EventOut:
        return cls(id=row.id, type=row.type, created_at=row.created_at, data=row.data)


class DeliveryOut(Schema):
    id: str
    webhook_id: str
    status: DeliveryStatus
    attempts: int
    next_attempt_at: Timestamp | None = Field(
        description="When the next attempt is due (null once delivered or failed)"
    )
    last_status_code: int | None
    last_error: str | None
    created_at: Timestamp
    updated_at: Timestamp
    delivered_at: Timestamp | None
    event: EventOut
    attempt_log: list[AttemptOut]

    @classmethod
    def from_rows(
        cls, row: WebhookDelivery, event: WebhookEvent, attempts: list[WebhookAttempt]
    ) -> DeliveryOut:
        pending = row.status is DeliveryStatus.PENDING
        next_at: datetime | None = row.next_attempt_at if pending else None
        return cls(
            id=row.id,
            webhook_id=row.subscription_id,
            status=row.status,
            attempts=row.attempts,
            next_attempt_at=next_at,
            last_status_code=row.last_status_code,
            last_error=row.last_error,
            created_at=row.created_at,
            updated_at=row.updated_at,
            delivered_at=row.delivered_at,
            event=EventOut.from_row(event),
            attempt_log=[AttemptOut.from_row(a) for a in attempts],
        )


# --- the messages a subscription receives (OpenAPI ``webhooks``) ----------------------------


class WebhookMessage(Schema):
    """The Standard Webhooks envelope every delivery's body is (see ``message_body``)."""

    type: str = Field(description="The event type")
    timestamp: Timestamp = Field(description="When the event happened (not the attempt)")
    data: Any


def _message_name(event_type: EventType) -> str:
    words = event_type.value.replace(".", "_").split("_")
    return "".join(w.capitalize() for w in words) + "Message"


def message_model(event_type: EventType) -> type[WebhookMessage]:
    """The body of an ``event_type`` delivery: its ``type`` and its payload's model."""
    # A Literal of a value known at run time: typed Any for mypy, a const for the schema.
    constant: Any = Literal[event_type.value]
    model: type[WebhookMessage] = create_model(
        _message_name(event_type),
        __base__=WebhookMessage,
        __doc__=f"The body of a `{event_type.value}` delivery.",
        type=(constant, Field(description="The event type")),
        data=(PAYLOADS[event_type], Field(description=DESCRIPTIONS[event_type])),
    )
    return model


MESSAGES: dict[EventType, type[WebhookMessage]] = {t: message_model(t) for t in EventType}
