"""The one place where datetimes become integer minutes and back.

Inside the solver, time is an integer number of minutes since an *origin* (the problem's
``now``), always in UTC. Aware datetimes come in at the edges and go out at the edges; naive
datetimes are refused, never guessed.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from solver.errors import ProblemError

MINUTE = timedelta(minutes=1)


def require_aware(value: object, field: str) -> datetime:
    """Return ``value`` as an aware UTC datetime, or raise naming ``field``."""
    if not isinstance(value, datetime):
        raise ProblemError(field, f"must be a datetime, got {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ProblemError(field, "must be timezone-aware (naive datetimes are ambiguous)")
    return value.astimezone(UTC)


def to_minute(moment: datetime, origin: datetime) -> int:
    """Whole minutes from ``origin`` to ``moment``, rounded down (floor, also when negative)."""
    return int((moment - origin) // MINUTE)


def to_minute_ceil(moment: datetime, origin: datetime) -> int:
    """Whole minutes from ``origin`` to ``moment``, rounded up."""
    return -int((origin - moment) // MINUTE)


def from_minute(minute: int, origin: datetime) -> datetime:
    """The UTC datetime ``minute`` minutes after ``origin``."""
    return (origin + timedelta(minutes=int(minute))).astimezone(UTC)
