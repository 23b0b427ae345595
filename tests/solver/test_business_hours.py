"""Business-hours arithmetic (:mod:`solver.business_hours`): properties that hold for every
schedule and instant, and hand-computed cases across DST changes and holidays."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from solver.business_hours import BusinessSchedule, NeverOpen

H = timedelta(hours=1)
M = timedelta(minutes=1)
BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
NINE_TO_FIVE = {d: [(9 * 60, 17 * 60)] for d in range(5)}


def local(zone: ZoneInfo, year: int, month: int, day: int, hour: int) -> datetime:
    return datetime(year, month, day, hour, tzinfo=zone)


# --- properties -----------------------------------------------------------------------------

ZONES = ["UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata", "Australia/Lord_Howe"]


@st.composite
def schedules(draw: st.DrawFn) -> BusinessSchedule:
    weekly: dict[int, list[tuple[int, int]]] = {}
    for weekday in draw(st.sets(st.integers(0, 6), min_size=1)):
        ranges = []
        for _ in range(draw(st.integers(1, 3))):
            # At least an hour a range, so 30 business hours lie within the arithmetic's horizon.
            start = draw(st.integers(0, 1380))
            end = draw(st.integers(start + 60, 1440))
            ranges.append((start, end))
        weekly[weekday] = ranges
    holidays = draw(st.frozensets(st.dates(date(2026, 1, 1), date(2027, 1, 31)), max_size=20))
    return BusinessSchedule(draw(st.sampled_from(ZONES)), weekly, holidays)


# hypothesis takes naive bounds and attaches the zone itself.
instants = st.datetimes(
    min_value=datetime(2026, 1, 1),  # noqa: DTZ001
    max_value=datetime(2026, 12, 31),  # noqa: DTZ001
    timezones=st.just(UTC),
)
amounts = st.timedeltas(min_value=timedelta(0), max_value=timedelta(hours=30))


def business_instant(s: BusinessSchedule, t: datetime) -> datetime:
    return s.next_open(t)


@settings(max_examples=300, deadline=None)
@given(schedules(), instants, amounts)
def test_adding_then_subtracting_is_identity_on_business_instants(
    s: BusinessSchedule, t: datetime, d: timedelta
) -> None:
    t = business_instant(s, t)
    assert s.is_open(t)
    assert s.subtract(s.add(t, d), d) == t


@settings(max_examples=300, deadline=None)
@given(schedules(), instants, amounts)
def test_the_business_time_between_t_and_t_plus_d_is_d(
    s: BusinessSchedule, t: datetime, d: timedelta
) -> None:
    assert s.between(t, s.add(t, d)) == d
    assert s.between(s.subtract(t, d), t) == d
    assert s.add(t, -d) == s.subtract(t, d)


@settings(max_examples=300, deadline=None)
@given(schedules(), instants, amounts, amounts, st.timedeltas(timedelta(0), timedelta(days=3)))
def test_add_is_monotonic_in_both_arguments(
    s: BusinessSchedule, t: datetime, d1: timedelta, d2: timedelta, shift: timedelta
) -> None:
    d1, d2 = min(d1, d2), max(d1, d2)
    assert s.add(t, d1) <= s.add(t, d2)
    assert s.add(t, d1) <= s.add(t + shift, d1)


@settings(max_examples=300, deadline=None)
@given(schedules(), instants, amounts.filter(lambda d: d > timedelta(0)))
def test_never_lands_in_a_closed_hour_or_on_a_holiday(
    s: BusinessSchedule, t: datetime, d: timedelta
) -> None:
    due = s.add(t, d)
    # The deadline is the end of the last business microsecond it needs: just before it the
    # schedule is open, on a working day that is not a holiday.
    just_before = due - timedelta(microseconds=1)
    assert s.is_open(just_before)
    assert just_before.astimezone(ZoneInfo(s.timezone)).date() not in s.holidays
    assert s.is_open(s.subtract(t, d))


# --- explicit cases, computed by hand -------------------------------------------------------


def test_nine_to_five_rolls_over_the_night_and_the_weekend() -> None:
    s = BusinessSchedule("UTC", NINE_TO_FIVE)
    fri_4pm = datetime(2026, 3, 6, 16, tzinfo=UTC)  # a Friday
    assert s.add(fri_4pm, 2 * H) == datetime(2026, 3, 9, 10, tzinfo=UTC)  # Monday 10:00
    assert s.add(datetime(2026, 3, 7, 12, tzinfo=UTC), H) == datetime(2026, 3, 9, 10, tzinfo=UTC)
    assert s.add(fri_4pm, H) == datetime(2026, 3, 6, 17, tzinfo=UTC)  # lands on the close
    assert s.between(fri_4pm, datetime(2026, 3, 9, 10, tzinfo=UTC)) == 2 * H
    assert s.subtract(datetime(2026, 3, 9, 10, tzinfo=UTC), 2 * H) == fri_4pm


def test_several_ranges_a_day() -> None:
    s = BusinessSchedule("UTC", {0: [(9 * 60, 12 * 60), (13 * 60, 17 * 60)]})
    mon = datetime(2026, 3, 2, 11, tzinfo=UTC)
    assert s.add(mon, 2 * H) == datetime(2026, 3, 2, 14, tzinfo=UTC)  # skips lunch
    assert s.is_open(datetime(2026, 3, 2, 12, 30, tzinfo=UTC)) is False
    assert s.add(mon, 7 * H) == datetime(2026, 3, 9, 11, tzinfo=UTC)  # next Monday


def test_berlin_spring_forward_keeps_office_hours_local() -> None:
    """2026-03-29 (Sunday): clocks go 02:00 -> 03:00. Friday 16:00 CET + 3 h of a 9-17 Mon-Fri
    schedule is Monday 11:00 CEST, which is 09:00 UTC (the offset changed over the weekend)."""
    s = BusinessSchedule("Europe/Berlin", NINE_TO_FIVE)
    fri = local(BERLIN, 2026, 3, 27, 16)
    due = s.add(fri, 3 * H)
    assert due == local(BERLIN, 2026, 3, 30, 11)
    assert due.astimezone(UTC) == datetime(2026, 3, 30, 9, tzinfo=UTC)
    assert s.between(fri, due) == 3 * H


def test_berlin_night_range_on_the_spring_and_autumn_changes() -> None:
    """A 01:00-04:00 range is 2 real hours on 2026-03-29 and 4 on 2026-10-25."""
    s = BusinessSchedule("Europe/Berlin", {6: [(60, 240)]})  # Sundays
    spring, autumn = date(2026, 3, 29), date(2026, 10, 25)
    start = local(BERLIN, 2026, 3, 29, 1)
    assert s.add(start, 2 * H) == local(BERLIN, 2026, 3, 29, 4)
    assert s.between(start, local(BERLIN, 2026, 3, 29, 4)) == 2 * H
    autumn_start = local(BERLIN, 2026, 10, 25, 1)
    assert s.between(autumn_start, local(BERLIN, 2026, 10, 25, 4)) == 4 * H
    # 01:00 CEST is 23:00 UTC the day before; 4 business hours end at 04:00 CET = 03:00 UTC.
    assert s.add(autumn_start, 4 * H) == datetime(2026, 10, 25, 3, tzinfo=UTC)
    assert spring.weekday() == autumn.weekday() == 6


def test_berlin_autumn_across_the_weekend() -> None:
    s = BusinessSchedule("Europe/Berlin", NINE_TO_FIVE)
    fri = local(BERLIN, 2026, 10, 23, 15)  # CEST, UTC+2
    due = s.add(fri, 4 * H)
    assert due == local(BERLIN, 2026, 10, 26, 11)  # CET, UTC+1
    assert due.astimezone(UTC) == datetime(2026, 10, 26, 10, tzinfo=UTC)


def test_new_york_spring_forward_and_fall_back() -> None:
    """US clocks change on 2026-03-08 and 2026-11-01 (Sundays)."""
    s = BusinessSchedule("America/New_York", NINE_TO_FIVE)
    fri = local(NEW_YORK, 2026, 3, 6, 16)  # EST, UTC-5: 21:00 UTC
    due = s.add(fri, 2 * H)
    assert due == local(NEW_YORK, 2026, 3, 9, 10)  # EDT, UTC-4: 14:00 UTC
    assert due.astimezone(UTC) == datetime(2026, 3, 9, 14, tzinfo=UTC)
    fall = s.add(local(NEW_YORK, 2026, 10, 30, 16), 2 * H)
    assert fall.astimezone(UTC) == datetime(2026, 11, 2, 15, tzinfo=UTC)  # 10:00 EST


def test_a_holiday_is_skipped() -> None:
    s = BusinessSchedule("Europe/Berlin", NINE_TO_FIVE, frozenset({date(2026, 12, 25)}))
    thu = local(BERLIN, 2026, 12, 24, 16)
    # Friday 25th is a holiday; the weekend is closed; Monday 28th 09:00 + 1 h.
    assert s.add(thu, 2 * H) == local(BERLIN, 2026, 12, 28, 10)
    assert s.between(thu, local(BERLIN, 2026, 12, 28, 10)) == 2 * H
    assert s.is_open(local(BERLIN, 2026, 12, 25, 10)) is False
    assert s.subtract(local(BERLIN, 2026, 12, 28, 10), 2 * H) == thu


def test_round_the_clock_and_never_open() -> None:
    always = BusinessSchedule("UTC", {d: [(0, 1440)] for d in range(7)})
    t = datetime(2026, 5, 1, 13, 7, tzinfo=UTC)
    assert always.add(t, 100 * H) == t + 100 * H
    assert always.subtract(t, 100 * H) == t - 100 * H
    with pytest.raises(NeverOpen):
        BusinessSchedule("UTC", {}).add(t, H)
    with pytest.raises(ValueError, match="timezone-aware"):
        always.add(datetime(2026, 5, 1), H)  # noqa: DTZ001
    with pytest.raises(ValueError, match="inside one day"):
        BusinessSchedule("UTC", {0: [(600, 500)]})


def test_an_amount_beyond_ten_years_raises_instead_of_running_on() -> None:
    one_minute_a_week = BusinessSchedule("UTC", {0: [(600, 601)]})
    t = datetime(2026, 5, 1, tzinfo=UTC)
    assert one_minute_a_week.add(t, 10 * M) == datetime(2026, 7, 6, 10, 1, tzinfo=UTC)
    with pytest.raises(NeverOpen):
        one_minute_a_week.add(t, 1000 * M)
    assert one_minute_a_week.between(t, t + timedelta(days=7 * 600)) == 600 * M
