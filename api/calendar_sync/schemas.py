"""Calendar connection schemas (``/v1/calendar-connections``).

``credentials`` goes in (create, PATCH) and never comes out: :class:`ConnectionOut` has no
field that could hold it, nor the push channels' token.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, StringConstraints

from api.calendar_sync.health import block_reason
from api.common.schemas import NO_NUL, Id, Patch, Schema, Timestamp
from api.db.models import CalendarConnection

Provider = Literal["google", "microsoft", "ics"]
Status = Literal["active", "paused", "failed"]

MAX_CALENDARS = 50
MAX_OBJECT_MEMBERS = 50


def _distinct(values: list[str]) -> list[str]:
    if len(set(values)) != len(values):
        raise ValueError("must not repeat a calendar")
    return values


CalendarId = Annotated[str, StringConstraints(min_length=1, max_length=512), NO_NUL]
Calendars = Annotated[
    list[CalendarId],
    Field(
        min_length=1,
        max_length=MAX_CALENDARS,
        description=(
            "The provider's ids of the calendars whose busy time is read, each once (Google: "
            "a calendar id such as the agent's address; Microsoft 365: the mailbox's calendar "
            "ids); an ICS connection reads exactly one feed: give it one label"
        ),
        json_schema_extra={"uniqueItems": True},
    ),
    AfterValidator(_distinct),
]
ConnectionSettings = Annotated[
    dict[str, Any],
    Field(
        max_length=MAX_OBJECT_MEMBERS,
        description=(
            "What may be shown: the provider's endpoints, the mailbox or user to read, "
            "write-back choices (see the provider's section of the README). Returned by reads"
        ),
    ),
]
Credentials = Annotated[
    dict[str, Any],
    Field(
        max_length=MAX_OBJECT_MEMBERS,
        description=(
            "What must stay secret: a refresh token, a service account key, a client secret, "
            "a secret iCal URL. Encrypted at rest and never returned by any read"
        ),
        json_schema_extra={"writeOnly": True},
    ),
]


class ConnectionCreate(Schema):
    agent_id: Id = Field(description="The agent whose calendars these are")
    provider: Provider
    calendars: Calendars
    settings: ConnectionSettings = Field(default_factory=dict)
    credentials: Credentials


class ConnectionUpdate(Patch):
    """Replace some of a connection's parts (after a dead credential: new ``credentials``).
    A change of settings or credentials makes a failed connection active again and clears its
    failure; a change queues a full sync unless the connection is paused."""

    calendars: Calendars | None = None
    settings: ConnectionSettings | None = None
    credentials: Credentials | None = None


class ConnectionOut(Schema):
    id: str = Field(description="cal_ + 16 hex digits")
    agent_id: str
    provider: Provider
    calendars: list[str]
    settings: dict[str, Any]
    status: Status = Field(
        description=(
            "active (synced), paused (not synced; the agent is not blocked by it) or failed "
            "(the credential is dead: replace it with PATCH)"
        )
    )
    failure: str | None = Field(description="Why the connection failed (null unless failed)")
    blocked: bool = Field(
        description=(
            "Whether the agent is unavailable for new calls and binding because of this "
            "connection now (failed, never synced, or its mirror older than the server's "
            "staleness limit): fail closed, never free"
        )
    )
    block_reason: str | None = Field(description="Why it blocks its agent (null when it does not)")
    last_attempt_at: Timestamp | None
    last_success_at: Timestamp | None
    lag_seconds: float | None = Field(
        description="How old the mirror is: now - last_success_at (null before the first sync)"
    )
    last_error: str | None = Field(description="The last sync's error (never secrets or contents)")
    last_error_at: Timestamp | None
    consecutive_failures: int
    busy_count: int = Field(description="Busy intervals mirrored from these calendars")
    created_at: Timestamp
    updated_at: Timestamp

    @classmethod
    def from_row(
        cls, row: CalendarConnection, *, now: datetime, max_staleness: timedelta
    ) -> ConnectionOut:
        reason = block_reason(row, now, max_staleness)
        lag = None
        if row.last_success_at is not None:
            lag = max(0.0, (now - row.last_success_at).total_seconds())
        return cls(
            id=row.id,
            agent_id=row.agent_id,
            provider=row.provider,  # type: ignore[arg-type]  # the CHECK constraint holds it
            calendars=list(row.calendars),
            settings=dict(row.settings),
            status=row.status,  # type: ignore[arg-type]  # the CHECK constraint holds it
            failure=row.failure,
            blocked=reason is not None,
            block_reason=reason,
            last_attempt_at=row.last_attempt_at,
            last_success_at=row.last_success_at,
            lag_seconds=lag,
            last_error=row.last_error,
            last_error_at=row.last_error_at,
            consecutive_failures=row.consecutive_failures,
            busy_count=row.busy_count,
            created_at=row.created_at,
            updated_at=row.updated_at,
        )
