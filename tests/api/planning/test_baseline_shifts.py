"""Stored shift intervals as weekly patterns (api.planning.baseline): local weekday and clock
in the agent's zone, the latest week winning per weekday, at most a day long."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from types import SimpleNamespace
from typing import Any
from zoneinfo import ZoneInfo

from api.planning.baseline import _patterns

BERLIN = ZoneInfo("Europe/Berlin")


def shift(start: datetime, hours: float) -> Any:
    return SimpleNamespace(start_at=start, end_at=start + timedelta(hours=hours))


def test_local_clock_latest_week_wins_and_a_day_at_most() -> None:
    monday = datetime(2026, 3, 2, 7, 0, tzinfo=UTC)  # 08:00 in Berlin (CET)
    shifts = [
        shift(monday, 8),  # week 1 Monday 08:00-16:00
        shift(monday + timedelta(days=1), 8),  # week 1 Tuesday 08:00-16:00
        shift(monday + timedelta(days=7, hours=6), 8),  # week 2 Monday 14:00-22:00: wins
        shift(monday + timedelta(days=9, hours=14), 30),  # Wednesday 22:00, cut at 24 h
    ]
    patterns = _patterns(shifts, BERLIN)
    got = {(p.weekdays, p.start, p.end) for p in patterns}
    assert got == {
        ((1,), time(8), time(16)),
        ((0,), time(14), time(22)),
        ((2,), time(22), time(22)),  # overnight, 24 h
    }
    assert next(p for p in patterns if p.weekdays == (2,)).length_minutes == 24 * 60


def test_same_hours_on_several_days_are_one_pattern() -> None:
    monday = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
    (pattern,) = _patterns(
        [shift(monday + timedelta(days=d), 8) for d in range(5)], ZoneInfo("UTC")
    )
    assert pattern.weekdays == (0, 1, 2, 3, 4) and pattern.paid_minutes_per_week == 5 * 8 * 60
