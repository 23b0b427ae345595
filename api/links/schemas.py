"""Schemas of ``/v1/tickets/{ticket_id}/call-links`` and ``/v1/call-links``."""

from __future__ import annotations

from typing import Annotated

from babel import Locale, UnknownLocaleError
from pydantic import AfterValidator, Field, StringConstraints

from api.common.schemas import NO_NUL, Id, Int, Schema, Timestamp, TimeZone
from api.db.models import CallLink
from api.links.service import MAX_RESCHEDULES, LinkStatus


def _locale(value: str) -> str:
    """A locale Babel knows (``de``, ``de-AT``, ``pt_BR``), stored as BCP 47 (``de-AT``)."""
    try:
        found = Locale.parse(value.replace("-", "_"))
    except (UnknownLocaleError, ValueError, TypeError):
        raise ValueError(
            f"unknown locale {value!r}; use a BCP 47 tag such as en, de-AT, pt-BR"
        ) from None
    return str(found).replace("_", "-")


LocaleTag = Annotated[
    str,
    StringConstraints(
        min_length=2, max_length=35, pattern=r"^[A-Za-z]{2,3}([_-][A-Za-z0-9]{2,8})*$"
    ),
    AfterValidator(_locale),
    Field(description="The customer's locale, BCP 47 (en, de-AT): dates and times on their pages"),
]
DisplayName = Annotated[
    str,
    StringConstraints(min_length=1, max_length=200),
    NO_NUL,
    Field(description="How the confirmation greets the customer (optional)"),
]


class CallLinkIn(Schema):
    capability_id: Id = Field(description="The capability the customer books (never an agent)")
    not_before: Timestamp | None = Field(
        default=None, description="No call may start before this (default: now)"
    )
    not_after: Timestamp | None = Field(
        default=None, description="No call may start after this (default: a week ahead)"
    )
    expires_at: Timestamp | None = Field(
        default=None,
        description="An unused link stops booking at this time (default: "
        "SWITCHBOARD_LINK_DEFAULT_EXPIRY_HOURS after now); a used one stays the customer's "
        "handle until a day after their call",
    )
    reschedules_allowed: Annotated[Int, Field(ge=0, le=MAX_RESCHEDULES)] = Field(
        default=1, description="How many times the customer may move their call"
    )
    timezone: TimeZone = Field(
        default="UTC", description="The customer's IANA time zone (the picker can change it)"
    )
    locale: LocaleTag = "en"
    display_name: DisplayName | None = None


class CallLinkOut(Schema):
    id: str
    ticket_id: str
    capability_id: str
    status: LinkStatus = Field(
        description="active (can book), booked (its call was booked), expired, revoked"
    )
    not_before: Timestamp | None
    not_after: Timestamp | None
    expires_at: Timestamp
    reschedules_allowed: int
    reschedules_used: int
    timezone: str
    locale: str
    display_name: str | None
    booking_id: str | None = Field(
        description="The call booked through it (after a reschedule, the new one)"
    )
    revoked_at: Timestamp | None
    created_at: Timestamp
    updated_at: Timestamp

    @classmethod
    def from_row(cls, row: CallLink, status: LinkStatus) -> CallLinkOut:
        return cls(
            id=row.id,
            ticket_id=row.ticket_id,
            capability_id=row.capability_id,
            status=status,
            not_before=row.not_before,
            not_after=row.not_after,
            expires_at=row.expires_at,
            reschedules_allowed=row.reschedules_allowed,
            reschedules_used=row.reschedules_used,
            timezone=row.timezone,
            locale=row.locale,
            display_name=row.display_name,
            booking_id=row.booking_id,
            revoked_at=row.revoked_at,
            created_at=row.created_at,
            updated_at=row.updated_at,
        )


class CallLinkCreatedOut(CallLinkOut):
    url: str = Field(
        description="The customer's link. Shown this once: only a hash of its token is kept"
    )
