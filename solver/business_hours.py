"""Business-hours arithmetic: add, subtract and measure working time on a weekly schedule.

A :class:`BusinessSchedule` is an IANA time zone, the opening hours of each weekday (several
ranges a day allowed, as minutes after local midnight, ``[start, end)``, ``end`` up to 1440)
and holidays (local dates on which nothing is open). Its *business instants* are the UTC
instants that fall inside an open range. Business time is elapsed (real) time inside open
ranges: a range that spans a daylight-saving change counts the hours that really pass (09:00 to
17:00 local is 8 hours on every day; 01:00 to 04:00 local is 2 hours on the night the clocks go
forward and 4 on the night they go back). A wall time that does not exist (inside a spring-forward
gap) is the moment of the change; an ambiguous one (clocks going back) its first occurrence.

- :meth:`BusinessSchedule.add` ``(t, d)``: the instant at which ``d`` of business time has
  elapsed after ``t`` (``d > 0`` lands in an open range or at its end, never in a closed hour or
  on a holiday); ``d == 0`` is ``t``; a negative ``d`` subtracts.
- :meth:`BusinessSchedule.subtract` ``(t, d)``: the latest instant ``s`` with ``d`` of business
  time in ``[s, t)``; it lands on a business instant, so ``subtract(add(t, d), d) == t`` for
  every business instant ``t``.
- :meth:`BusinessSchedule.between` ``(a, b)``: business time in ``[a, b)`` (negative if
  ``b < a``).

Pure: plain data in, plain data out, no I/O. Why not a library: the PyPI candidates
(businesstimedelta, last release 2019 on pytz; business-duration, durations only; workalendar,
working *days*) either cannot add business time in a zone across a DST change or are unkept.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

MINUTES_PER_DAY = 1440
# How far (local days) the arithmetic looks before giving up: an amount that needs more than ten
# years of a schedule (or a schedule without hours) raises NeverOpen instead of running on.
_HORIZON_DAYS = 3660
_ZERO = timedelta(0)


class NeverOpen(ValueError):
    """The answer lies more than ten years away (a schedule without hours, or an amount too
    large for the hours it has)."""


@dataclass(frozen=True, slots=True)
class BusinessSchedule:
    """``weekly[weekday]`` (Monday 0 .. Sunday 6) are ``(start, end)`` minute ranges of a local
    day; overlapping or touching ranges merge. ``holidays`` are local dates."""

    timezone: str
    weekly: Mapping[int, Sequence[tuple[int, int]]]
    holidays: frozenset[date] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        ZoneInfo(self.timezone)  # raises for an unknown zone
        for weekday, ranges in self.weekly.items():
            if not 0 <= weekday <= 6:
                raise ValueError(f"weekday {weekday} is not 0 (Monday) .. 6 (Sunday)")
            for start, end in ranges:
                if not 0 <= start < end <= MINUTES_PER_DAY:
                    raise ValueError(f"range {start}..{end} is not inside one day")

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    # --- the open ranges as UTC intervals -------------------------------------------------

    def _day(self, day: date) -> list[tuple[datetime, datetime]]:
        """The open intervals of one local date, in UTC, sorted and merged."""
        if day in self.holidays:
            return []
        zone = self.zone
        out: list[tuple[datetime, datetime]] = []
        for start, end in sorted(self.weekly.get(day.weekday(), ())):
            a = _instant(zone, day, start)
            b = _instant(zone, day, end)
            if b <= a:  # a range wholly inside a spring-forward gap
                continue
            if out and a <= out[-1][1]:
                out[-1] = (out[-1][0], max(out[-1][1], b))
            else:
                out.append((a, b))
        return out

    def _forward(self, t: datetime) -> Iterator[tuple[datetime, datetime]]:
        """Open intervals that end after ``t``, in order (one local day's never overlap
        another's, so touching intervals of two days simply follow each other)."""
        day = t.astimezone(self.zone).date() - timedelta(days=1)
        for _ in range(_HORIZON_DAYS):
            intervals = self._day(day)
            for a, b in intervals:
                if b > t:
                    yield a, b
            day += timedelta(days=1)
        raise NeverOpen("no open time within ten years of this instant")

    def _backward(self, t: datetime) -> Iterator[tuple[datetime, datetime]]:
        """Open intervals that start before ``t``, latest first."""
        day = t.astimezone(self.zone).date() + timedelta(days=1)
        for _ in range(_HORIZON_DAYS):
            intervals = self._day(day)
            for a, b in reversed(intervals):
                if a < t:
                    yield a, b
            day -= timedelta(days=1)
        raise NeverOpen("no open time within ten years of this instant")

    # --- the arithmetic -------------------------------------------------------------------

    def is_open(self, t: datetime) -> bool:
        """Whether ``t`` is a business instant (inside an open range, its end excluded)."""
        a, _ = next(self._forward(t))
        return a <= t

    def next_open(self, t: datetime) -> datetime:
        """``t`` if it is a business instant, else the start of the next open range."""
        a, _ = next(self._forward(t))
        return max(a, t)

    def add(self, t: datetime, amount: timedelta) -> datetime:
        _aware(t)
        if amount < _ZERO:
            return self.subtract(t, -amount)
        if amount == _ZERO:
            return t
        left = amount
        for a, b in self._forward(t):
            a = max(a, t)
            if b - a >= left:
                return a + left
            left -= b - a
        raise AssertionError("unreachable: _forward raises at its horizon")  # pragma: no cover

    def subtract(self, t: datetime, amount: timedelta) -> datetime:
        _aware(t)
        if amount < _ZERO:
            return self.add(t, -amount)
        if amount == _ZERO:
            return t
        left = amount
        for a, b in self._backward(t):
            b = min(b, t)
            if b - a >= left:
                return b - left
            left -= b - a
        raise AssertionError("unreachable: _backward raises at its horizon")  # pragma: no cover

    def between(self, a: datetime, b: datetime) -> timedelta:
        _aware(a)
        _aware(b)
        if b < a:
            return -self.between(b, a)
        zone = self.zone
        day = a.astimezone(zone).date() - timedelta(days=1)
        last = b.astimezone(zone).date() + timedelta(days=1)
        total = _ZERO
        while day <= last:
            for start, end in self._day(day):
                if start < b and end > a:
                    total += min(end, b) - max(start, a)
            day += timedelta(days=1)
        return total


def _instant(zone: ZoneInfo, day: date, minute: int) -> datetime:
    """The UTC instant of local wall time ``day`` + ``minute`` (1440 is the next midnight). An
    ambiguous wall time (clocks going back) is its first occurrence; one that does not exist
    (clocks going forward) is the moment of the change, when the gap ends. Monotonic in
    ``minute``, so a day's ranges keep their order."""
    wall = datetime(day.year, day.month, day.day) + timedelta(minutes=minute)  # noqa: DTZ001 (a wall time)
    first = wall.replace(tzinfo=zone).astimezone(UTC)  # fold=0: the offset before a change
    if first.astimezone(zone).replace(tzinfo=None) == wall:
        return first
    # Inside a gap: the change happens between the two readings; find it to the second.
    lo = wall.replace(tzinfo=zone, fold=1).astimezone(UTC)
    hi = first
    while hi - lo > timedelta(seconds=1):
        mid = lo + (hi - lo) / 2
        if mid.astimezone(zone).replace(tzinfo=None) >= wall:
            hi = mid
        else:
            lo = mid
    return hi.replace(microsecond=0)


def _aware(t: datetime) -> None:
    if t.tzinfo is None or t.utcoffset() is None:
        raise ValueError("business-hours arithmetic needs timezone-aware datetimes")
