"""The one place where datetimes become integer minutes and back.

Inside the solver, time is an integer number of minutes since an *origin* (the problem's
``now``), always in UTC. Aware datetimes come in at the edges and go out at the edges; naive
datetimes are refused, never guessed.

Every datetime the solver accepts lies in ``[EARLIEST, LATEST]``: far enough from datetime's own
limits (years 1 and 9999) that converting to UTC and adding a horizon, a day of grid or a week
of slots cannot overflow, and wide enough for any real schedule. The service documents and
enforces the same range at its edge (``api/common/schemas.py`` imports it from here).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from solver.errors import ProblemError

MINUTE = timedelta(minutes=1)
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(2200, 1, 1, tzinfo=UTC)


def _text(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


RANGE_REASON = f"must be between {_text(EARLIEST)} and {_text(LATEST)}"


def in_range(value: datetime) -> datetime | None:
    """``value`` (aware) in UTC when it lies in ``[EARLIEST, LATEST]``, else None.

    Near year 1 or 9999 an offset can push the UTC value past what datetime can hold: that is
    out of range too, not an ``OverflowError``.
    """
    try:
        utc = value.astimezone(UTC)
    except OverflowError:
        return None
    return utc if EARLIEST <= utc <= LATEST else None


def require_aware(value: object, field: str) -> datetime:
    """Return ``value`` as an aware UTC datetime in the supported range, or raise naming
    ``field``."""
    if not isinstance(value, datetime):
        raise ProblemError(field, f"must be a datetime, got {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ProblemError(field, "must be timezone-aware (naive datetimes are ambiguous)")
    utc = in_range(value)
    if utc is None:
        raise ProblemError(field, f"{RANGE_REASON}, got {value.isoformat()}")
    return utc


def to_minute(moment: datetime, origin: datetime) -> int:
    """Whole minutes from ``origin`` to ``moment``, rounded down (floor, also when negative)."""
    return int((moment - origin) // MINUTE)


def to_minute_ceil(moment: datetime, origin: datetime) -> int:
    """Whole minutes from ``origin`` to ``moment``, rounded up."""
    return -int((origin - moment) // MINUTE)


def from_minute(minute: int, origin: datetime) -> datetime:
    """The UTC datetime ``minute`` minutes after ``origin``."""
    return (origin + timedelta(minutes=int(minute))).astimezone(UTC)
