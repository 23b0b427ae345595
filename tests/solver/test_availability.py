"""Working time: shifts minus busy time, preemptive across breaks, correct across DST."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from solver.availability import CalendarBank, working_windows
from solver.problem import Agent, Interval, Problem

NOW = datetime(2026, 3, 27, 0, 0, tzinfo=UTC)  # the Friday before Europe's spring DST change
BERLIN = ZoneInfo("Europe/Berlin")


def local_shift(day: int, start_h: int, end_h: int, tz: ZoneInfo) -> Interval:
    d = datetime(2026, 3, day, tzinfo=tz)
    return Interval(d.replace(hour=start_h), d.replace(hour=end_h))


def test_busy_time_is_cut_out_of_shifts() -> None:
    shifts = [Interval(NOW, NOW + timedelta(hours=8))]
    busy = [Interval(NOW + timedelta(hours=1), NOW + timedelta(hours=2))]
    assert working_windows(shifts, busy, NOW, 24 * 60) == [(0, 60), (120, 480)]


def test_partial_minutes_never_count_as_working_time() -> None:
    shifts = [Interval(NOW + timedelta(seconds=30), NOW + timedelta(minutes=10, seconds=30))]
    busy = [
        Interval(NOW + timedelta(minutes=5, seconds=10), NOW + timedelta(minutes=5, seconds=20))
    ]
    assert working_windows(shifts, busy, NOW, 60) == [(1, 5), (6, 10)]


def test_work_continues_in_the_next_window() -> None:
    bank = CalendarBank.from_windows([[(0, 10), (20, 30)], [], [(5, 6)]], 100)
    assert bank.finish_minute([0, 0, 0], [10, 11, 20]).tolist() == [10, 21, 30]
    assert bank.start_minute([0, 0], [9, 10]).tolist() == [9, 20]
    # No working time left: extrapolated past the horizon, minute for minute.
    assert bank.finish_minute([0, 1], [25, 3]).tolist() == [105, 103]
    assert bank.total.tolist() == [20, 0, 1]


def test_a_local_nine_to_five_is_eight_hours_on_both_sides_of_dst() -> None:
    # Berlin switches from UTC+1 to UTC+2 on Sunday 29 March 2026.
    friday = local_shift(27, 9, 17, BERLIN)
    monday = local_shift(30, 9, 17, BERLIN)
    assert friday.start == datetime(2026, 3, 27, 8, 0, tzinfo=UTC)
    assert monday.start == datetime(2026, 3, 30, 7, 0, tzinfo=UTC)
    agent = Agent("a", "t", shifts=(friday, monday), timezone="Europe/Berlin")
    problem = Problem(now=NOW, agents=(agent,), tickets=())
    bank = CalendarBank.build(problem)
    assert bank.windows_of(0) == [(8 * 60, 16 * 60), ((3 * 24 + 7) * 60, (3 * 24 + 15) * 60)]
    # 9 hours of work: 8 on Friday, the last hour on Monday 09:00-10:00 Berlin = 07:00-08:00 UTC.
    end = int(bank.finish_minute([0], [9 * 60])[0])
    assert NOW + timedelta(minutes=end) == datetime(2026, 3, 30, 8, 0, tzinfo=UTC)


spans = st.lists(st.tuples(st.integers(0, 500), st.integers(1, 120)), max_size=6)


@given(spans, st.integers(1, 400))
def test_finish_is_the_first_minute_with_enough_work(raw: list[tuple[int, int]], work: int) -> None:
    windows = sorted({(s, s + n) for s, n in raw})
    merged: list[tuple[int, int]] = []
    for s, e in windows:
        if merged and s <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(e, merged[-1][1]))
        else:
            merged.append((s, e))
    bank = CalendarBank.from_windows([merged], 1000)
    minutes = [m for s, e in merged for m in range(s, e)]
    got = int(bank.finish_minute([0], [work])[0])
    if work <= len(minutes):
        assert got == minutes[work - 1] + 1
        assert int(bank.work_before([0], [got])[0]) == work
    else:
        assert got == 1000 + work - len(minutes)
    start = int(bank.start_minute([0], [work - 1])[0])
    if work - 1 < len(minutes):
        assert start == minutes[work - 1]


def test_working_at_marks_agents_in_a_window() -> None:
    bank = CalendarBank.from_windows([[(0, 10)], [(5, 15)], []], 100)
    assert bank.working_at(7).tolist() == [True, True, False]
    assert np.array_equal(bank.working_at(12), np.array([False, True, False]))
