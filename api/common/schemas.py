"""Building blocks shared by every resource's schemas.

``Id`` is the shape of a client-chosen identifier (a helpdesk's own ids: ``billing``,
``lang:de``, ``agent-42``); ``Levels`` a ``{skill: level}`` map; ``Patch`` the base of PATCH
bodies, where an omitted field stays as it is and ``null`` is refused (and documented as refused)
for fields that cannot be empty.

Scalars are as strict as the schema says. ``Int``, ``Number`` and ``Bool`` are pydantic's strict
types: a JSON ``true`` is not a capacity of 1, ``"3"`` is not an integer (CSV imports parse
their string cells as typed values, see :mod:`api.common.bulk`). Every datetime the API takes
is a ``TimestampIn`` (or ``LocalTimestampIn``, which keeps the client's offset): an ISO 8601
string with an offset -- never a number read as a Unix time -- between 1970-01-01 and
2200-01-01 UTC. Free text is ``Text``-based: never a NUL character (PostgreSQL cannot store
one; SQLite could, so both refuse it alike), its ``maxLength`` checked before any trimming.
"""

from __future__ import annotations

import re
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
    BeforeValidator,
    ConfigDict,
    Field,
    Strict,
    StringConstraints,
    ValidationInfo,
    field_validator,
)

from api.db.models import ID_LENGTH
from solver.policies import MAX_MOVE_SAVING
from solver.problem import MAX_COUNT
from solver.timegrid import EARLIEST, LATEST, RANGE_REASON, in_range

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


NO_NUL = AfterValidator(_no_nul)
# Trimming comes after the length check: the schema's maxLength is what is accepted as sent (a
# 300-character name of 290 blanks is refused, as the document says). StringConstraints with
# strip_whitespace would trim first and check the length of what is left.
STRIP = AfterValidator(str.strip)
# Length limits go on the bare str, before NO_NUL: there the string validator checks them and
# says "String should have at most 200 characters". Put behind a validator function, pydantic
# checks them generically as "... at most 200 items".
Text = Annotated[str, NO_NUL]
Name = Annotated[str, StringConstraints(max_length=200), NO_NUL, STRIP]
Requester = Annotated[str, StringConstraints(max_length=200), NO_NUL]

# Strict scalars for request bodies (not query parameters: those arrive as strings, which
# FastAPI validates in Python mode, where a strict int refuses "50").
Int = Annotated[int, Strict()]
Number = Annotated[float, Strict()]  # a JSON integer is a number too; true is not
Bool = Annotated[bool, Strict()]
Level = Annotated[Int, Field(ge=1, le=5, description="1 (novice) to 5 (expert)")]

# The optimizer's churn guard (solver.batch.moves), for every request that runs it.
MaxMoves = Annotated[
    Int | None,
    Field(
        ge=0,
        le=MAX_COUNT,
        description=(
            "The optimizer's move budget: at most this many tickets already held by an agent "
            "who could keep them go to someone else (the moves that save the most SLA cost are "
            "kept). Tickets whose holder cannot keep them (away, unqualified, full) move "
            "regardless and are not counted. 0: no held ticket moves; null (default): no budget"
        ),
    ),
]
MoveSaving = Annotated[
    Int | None,
    Field(
        ge=1,
        le=MAX_MOVE_SAVING,
        description=(
            "The SLA cost a held ticket's move must save to be made, in objective units "
            "(breach penalties, priority-weighted lateness, unassigned penalties); null "
            "(default): one low-priority ticket's unassigned penalty, 2,000"
        ),
    ),
]


def _keys_are_ids(schema: dict[str, Any]) -> None:
    # pydantic documents dict[Id, Level] as patternProperties {ID_PATTERN: level}, which leaves
    # every key *not* matching the pattern free, with any value: the document allowed
    # {"bad key!": "x"}, which is a 422. Say it as it is: every key is an id, every value a level.
    [(pattern, value)] = schema.pop("patternProperties").items()
    schema["propertyNames"] = {**schema.get("propertyNames", {}), "pattern": pattern}
    schema["additionalProperties"] = value


Levels = Annotated[
    dict[Id, Level],
    Field(
        description="Skill id -> level (1..5); languages and tiers are skills too",
        json_schema_extra=_keys_are_ids,
    ),
]

ChannelCount = Annotated[Int, Field(ge=0, le=1000)]
ChannelCapacity = Annotated[
    dict[Id, ChannelCount],
    Field(
        max_length=100,
        description=(
            "Channel -> how many tickets of it the agent may hold at once (e.g. "
            '{"chat": 2, "email": 10}), within the total ``capacity``, which still caps the sum; '
            "a channel left out is limited by the total only"
        ),
        json_schema_extra=_keys_are_ids,
    ),
]
ChannelOpen = Annotated[
    dict[Id, Annotated[Int, Field(ge=0, le=100_000)]],
    Field(
        max_length=100,
        description="Channel -> how many of ``open_tickets`` are of that channel",
        json_schema_extra=_keys_are_ids,
    ),
]


def _to_utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


# A calendar date, then a time: what ISO 8601 / RFC 3339 date-times look like. pydantic would
# also read a number, or a numeric string such as a query's "0.5", as a Unix time.
_ISO_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}")
_ISO_REASON = "must be an ISO 8601 date-time with an offset, e.g. 2026-03-02T09:00:00+01:00"


def _iso_8601(value: Any) -> Any:
    if isinstance(value, datetime):  # built in Python (tests, services): already a datetime
        return value
    if not isinstance(value, str) or not _ISO_DATETIME.match(value):
        raise ValueError(_ISO_REASON)
    return value


def _in_range(value: datetime) -> datetime:
    if in_range(value) is None:
        raise ValueError(RANGE_REASON)
    return value


_RANGE_TEXT = f"{EARLIEST:%Y-%m-%dT%H:%M:%SZ} to {LATEST:%Y-%m-%dT%H:%M:%SZ}"

# What the service answers: an aware datetime in UTC.
Timestamp = Annotated[
    AwareDatetime,
    AfterValidator(_to_utc),
    Field(description="ISO 8601 with an offset (naive times are refused); answered in UTC"),
]
# What the service takes, everywhere (bodies and query parameters): an ISO 8601 string with an
# offset, from 1970 to 2200 (solver.timegrid's range: far from datetime's limits, so no sum of
# a horizon or a slot window can overflow). Answers keep ``Timestamp``: a window computed from
# an edge ("to - 7 days") may lie outside the range, and must not turn into a 500.
LocalTimestampIn = Annotated[
    AwareDatetime,
    BeforeValidator(_iso_8601),
    AfterValidator(_in_range),
    Field(
        description=f"ISO 8601 with an offset (naive times are refused), from {_RANGE_TEXT}",
    ),
]
TimestampIn = Annotated[
    LocalTimestampIn,
    AfterValidator(_to_utc),
    Field(
        description=(
            f"ISO 8601 with an offset (naive times are refused), from {_RANGE_TEXT}; "
            "answered in UTC"
        )
    ),
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


# The ``updated_since`` query parameter of list operations (incremental sync).
UPDATED_SINCE_DESCRIPTION = (
    "Only {nouns} changed at or after this moment (incremental sync), ordered by when they last "
    "changed, then id: a page never skips one, and one that changes while you page moves to "
    "the end and is seen again. Start the next sync from the last item's updated_at (it is "
    "included again); a write still committing while you read carries its request's time, so "
    "start a few seconds earlier to be sure of catching it."
)


class Schema(BaseModel):
    """Strict about unknown fields: a typo is an error, not silently ignored."""

    model_config = ConfigDict(extra="forbid")


_NULL = {"type": "null"}


def _document_not_null(schema: dict[str, Any], model: type[BaseModel]) -> None:
    """JSON schema of a :class:`Patch`: a field outside ``NULLABLE`` may be omitted but is never
    null, so its schema is the value's alone (not ``anyOf [value, null]``) and has no default
    (omitted means "unchanged", not "set to a default")."""
    nullable: frozenset[str] = getattr(model, "NULLABLE", frozenset())
    for name, prop in schema.get("properties", {}).items():
        if name in nullable:
            continue
        if prop.get("default", ...) is None:
            del prop["default"]
        members = [m for m in prop.get("anyOf", ()) if m != _NULL]
        if len(members) == 1 and len(prop["anyOf"]) == 2:
            del prop["anyOf"]
            # The member's own keywords (type, bounds, $ref, description) and the property's
            # (title); a ``$ref`` with siblings is fine in OpenAPI 3.1 / JSON Schema 2020-12.
            prop.update({**members[0], **prop})


class Patch(Schema):
    """A partial update: an omitted field stays as it is.

    ``null`` is accepted only for the fields named in ``NULLABLE`` (where it means "clear this
    optional value"). Every other field refuses it at validation, a 422 problem naming the
    field ("may be omitted but not null"), and its JSON schema says so: the value's type alone,
    no ``null`` member. Subclasses still annotate fields ``X | None = None`` because that is
    what the attribute holds when the field is omitted; use :meth:`changes` to read what was
    sent.
    """

    NULLABLE: ClassVar[frozenset[str]] = frozenset()

    model_config = ConfigDict(extra="forbid", json_schema_extra=_document_not_null)

    @field_validator("*", mode="before")
    @classmethod
    def _refuse_null(cls, value: Any, info: ValidationInfo) -> Any:
        # Runs only for fields the client sent: an omitted field keeps its default unvalidated.
        if value is None and info.field_name not in cls.NULLABLE:
            raise ValueError("may be omitted but not null")
        return value

    def changes(self) -> dict[str, Any]:
        """The fields the client sent, as a dict (null only for ``NULLABLE`` fields)."""
        return self.model_dump(exclude_unset=True)


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
