"""solver.timegrid: aware datetimes in, integer UTC minutes inside, UTC datetimes out.

DST cannot reach the solver's arithmetic: every origin comes through ``require_aware`` (UTC), so
minutes count elapsed time whatever zone a moment was written in. The tests below pin the
rounding at both signs, the range edges, the refusals, and the round trip as properties.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from solver.errors import ProblemError
from solver.timegrid import (
    EARLIEST,
    LATEST,
    RANGE_REASON,
    from_minute,
    in_range,
    require_aware,
    to_minute,
    to_minute_ceil,
)

ORIGIN = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
SEC = timedelta(seconds=1)
MIN = timedelta(minutes=1)
BERLIN = ZoneInfo("Europe/Berlin")


# ---------------------------------------------------------------------------- rounding
@pytest.mark.parametrize(
    ("offset", "floor", "ceil"),
    [
        (timedelta(0), 0, 0),
        (SEC, 0, 1),
        (MIN - SEC, 0, 1),
        (MIN, 1, 1),
        (90 * MIN, 90, 90),
        (-SEC, -1, 0),  # floor goes down, also below the origin
        (-MIN, -1, -1),
        (-MIN - SEC, -2, -1),
        (timedelta(microseconds=1), 0, 1),
    ],
)
def test_to_minute_floors_and_to_minute_ceil_rounds_up(
    offset: timedelta, floor: int, ceil: int
) -> None:
    moment = ORIGIN + offset
    assert to_minute(moment, ORIGIN) == floor
    assert to_minute_ceil(moment, ORIGIN) == ceil
    assert type(to_minute(moment, ORIGIN)) is int and type(to_minute_ceil(moment, ORIGIN)) is int


def test_from_minute_is_utc_and_takes_numpy_integers() -> None:
    back = from_minute(np.int64(-75), ORIGIN)  # type: ignore[arg-type]
    assert back == ORIGIN - 75 * MIN
    assert back.tzinfo is UTC
    assert from_minute(0, ORIGIN.astimezone(BERLIN)).tzinfo is UTC


# ---------------------------------------------------------------------------- DST
def test_minutes_count_elapsed_time_across_a_dst_change() -> None:
    # Berlin springs forward on 2026-03-29 at 02:00 -> 03:00: 01:30 to 03:30 on the wall is
    # one hour of real time.
    before = datetime(2026, 3, 29, 1, 30, tzinfo=BERLIN)
    after = datetime(2026, 3, 29, 3, 30, tzinfo=BERLIN)
    origin = require_aware(before, "now")
    assert origin.tzinfo is UTC
    assert to_minute(after, origin) == 60
    assert from_minute(60, origin) == after  # the same instant
    # And falling back on 2026-10-25 (03:00 -> 02:00): 02:30 happens twice, an hour apart.
    first = datetime(2026, 10, 25, 2, 30, tzinfo=BERLIN, fold=0)
    second = datetime(2026, 10, 25, 2, 30, tzinfo=BERLIN, fold=1)
    assert to_minute(second, require_aware(first, "now")) == 60


def test_a_moment_written_in_any_zone_gives_the_same_minute() -> None:
    instant = ORIGIN + 1_000 * MIN
    zones: list[tzinfo] = [
        UTC,
        BERLIN,
        ZoneInfo("America/New_York"),
        timezone(-timedelta(hours=9, minutes=30)),
    ]
    assert {to_minute(instant.astimezone(z), ORIGIN) for z in zones} == {1_000}


# ---------------------------------------------------------------------------- refusals
@pytest.mark.parametrize(
    ("value", "match"),
    [
        (datetime(2026, 3, 2, 9, 0), "timezone-aware"),  # noqa: DTZ001 - naive on purpose
        (date(2026, 3, 2), "must be a datetime, got date"),
        ("2026-03-02T09:00Z", "must be a datetime, got str"),
        (None, "must be a datetime, got NoneType"),
        (EARLIEST - timedelta(microseconds=1), "must be between 1970-01-01T00:00:00Z"),
        (LATEST + timedelta(microseconds=1), "and 2200-01-01T00:00:00Z"),
    ],
)
def test_require_aware_refuses_naming_the_field(value: object, match: str) -> None:
    with pytest.raises(ProblemError, match=match) as caught:
        require_aware(value, "tickets[3].resolution_due")
    assert caught.value.field == "tickets[3].resolution_due"


class _NoOffset(tzinfo):
    """A tzinfo that knows no offset: the datetime is aware in form only."""

    def utcoffset(self, dt: datetime | None) -> timedelta | None:
        return None


def test_a_tzinfo_without_an_offset_counts_as_naive() -> None:
    with pytest.raises(ProblemError, match="timezone-aware"):
        require_aware(datetime(2026, 3, 2, tzinfo=_NoOffset()), "now")


def test_range_edges_are_inclusive_and_overflow_is_out_of_range() -> None:
    assert in_range(EARLIEST) == EARLIEST and in_range(LATEST) == LATEST
    assert in_range(EARLIEST - timedelta(microseconds=1)) is None
    assert in_range(LATEST.astimezone(BERLIN)) == LATEST
    # Near datetime's own limits an offset pushes UTC past what datetime can hold.
    assert in_range(datetime.max.replace(tzinfo=timezone(-timedelta(hours=1)))) is None
    assert in_range(datetime.min.replace(tzinfo=timezone(timedelta(hours=1)))) is None
    assert RANGE_REASON == "must be between 1970-01-01T00:00:00Z and 2200-01-01T00:00:00Z"


def test_require_aware_returns_the_same_instant_in_utc() -> None:
    local = datetime(2026, 7, 1, 12, 0, tzinfo=BERLIN)
    utc = require_aware(local, "now")
    assert utc == local and utc.tzinfo is UTC and utc.hour == 10


# ---------------------------------------------------------------------------- properties
ZONES = st.sampled_from(
    [
        UTC,
        BERLIN,
        ZoneInfo("America/New_York"),
        ZoneInfo("Asia/Kolkata"),
        ZoneInfo("Australia/Lord_Howe"),
    ]
)
# Hypothesis bounds are naive wall times; the drawn moments are aware (in ZONES).
MOMENTS = st.datetimes(
    min_value=datetime(1971, 1, 1),  # noqa: DTZ001
    max_value=datetime(2199, 1, 1),  # noqa: DTZ001
    timezones=ZONES,
)


@given(moment=MOMENTS, origin=MOMENTS)
def test_property_minutes_bracket_the_moment_and_round_trip(
    moment: datetime, origin: datetime
) -> None:
    o = require_aware(origin, "now")
    m = to_minute(moment, o)
    c = to_minute_ceil(moment, o)
    # Compared in UTC: Python's == between zones calls a moment in a repeated hour (a DST fall-
    # back, e.g. Lord Howe's half hour) unequal to everything in another zone, itself included.
    utc = moment.astimezone(UTC)
    assert from_minute(m, o) <= utc < from_minute(m + 1, o)
    assert c == m + (from_minute(m, o) != utc)
    assert c == -to_minute(o, moment)  # ceiling one way is the floor the other way, negated
    # Whole minutes survive the round trip exactly.
    assert to_minute(from_minute(m, o), o) == m
