"""Building blocks shared by every resource's schemas.

``Id`` is the shape of a client-chosen identifier (a helpdesk's own ids: ``billing``,
``lang:de``, ``agent-42``); ``Levels`` a ``{skill: level}`` map; ``Patch`` the base of PATCH
bodies, where an omitted field stays as it is and ``null`` is refused for fields that cannot be
empty.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from functools import cache
from typing import Annotated, Any, ClassVar, Generic, TypeVar
from zoneinfo import available_timezones

from fastapi import Path
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
)

from api.db.models import ID_LENGTH
from api.errors import FieldError, InvalidInput

ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:@+\-]*$"

Id = Annotated[
    str,
    StringConstraints(min_length=1, max_length=ID_LENGTH, pattern=ID_PATTERN),
    Field(description="A client-chosen id: letters, digits and _ . : @ + - (unique per tenant)"),
]
PathId = Annotated[
    str,
    Path(min_length=1, max_length=ID_LENGTH, pattern=ID_PATTERN, description="The object's id"),
]


def _no_nul(value: str) -> str:
    # PostgreSQL text cannot hold NUL; refuse it on every backend alike.
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


Text = Annotated[str, AfterValidator(_no_nul)]
Name = Annotated[Text, StringConstraints(max_length=200, strip_whitespace=True)]
Level = Annotated[int, Field(ge=1, le=5, description="1 (novice) to 5 (expert)")]
Levels = Annotated[
    dict[Id, Level],
    Field(description="Skill id -> level (1..5); languages and tiers are skills too"),
]


def _to_utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


Timestamp = Annotated[
    AwareDatetime,
    AfterValidator(_to_utc),
    Field(description="ISO 8601 with an offset (naive times are refused); answered in UTC"),
]


@cache
def _zones() -> frozenset[str]:
    return frozenset(available_timezones())


def _check_timezone(value: str) -> str:
    if value not in _zones():
        raise ValueError(f"unknown IANA time zone {value!r} (e.g. 'Europe/Berlin', 'UTC')")
    return value


TimeZone = Annotated[
    str,
    StringConstraints(min_length=1, max_length=64),
    AfterValidator(_check_timezone),
    Field(description="An IANA time zone name, e.g. Europe/Berlin"),
]


class Schema(BaseModel):
    """Strict about unknown fields: a typo is an error, not silently ignored."""

    model_config = ConfigDict(extra="forbid")


class Patch(Schema):
    """A partial update. Fields named in ``NULLABLE`` may be set to null; others may not."""

    NULLABLE: ClassVar[frozenset[str]] = frozenset()

    def changes(self) -> dict[str, Any]:
        """The fields the client sent, as a dict; null for a non-nullable field is refused."""
        out = self.model_dump(exclude_unset=True)
        nulls = [k for k, v in out.items() if v is None and k not in self.NULLABLE]
        if nulls:
            raise InvalidInput(FieldError(k, "may be omitted but not null") for k in nulls)
        return out


T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    """One page of a list in a stable order; pass ``next_cursor`` back as ``cursor``."""

    items: Sequence[T]
    next_cursor: str | None = Field(
        description="Opaque cursor of the next page; null on the last page"
    )


class ImportResult(BaseModel):
    """A bulk import that succeeded: every row was written (otherwise none was)."""

    imported: int
    ids: list[str]
