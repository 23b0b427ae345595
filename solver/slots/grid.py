"""Candidate call starts in the customer's time zone.

Slots are answered in the customer's zone, on a grid of ``granularity_minutes`` from local
midnight, so a DST day has 23 or 25 hours of starts; inside the engine they are minutes from the
index's origin (UTC), like every other time in :mod:`solver`.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import numpy.typing as npt

from solver.errors import ProblemError
from solver.timegrid import to_minute, to_minute_ceil

IntArray = npt.NDArray[np.int64]


def zone(tz: str | tzinfo) -> tzinfo:
    """``tz`` as a tzinfo: an IANA name is looked up, a tzinfo passes through; an unknown name
    is a :class:`~solver.errors.ProblemError` naming ``tz``."""
    if isinstance(tz, tzinfo):
        return tz
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise ProblemError("tz", f"unknown IANA time zone {tz!r}") from None


def grid_starts(
    origin: datetime, tz: tzinfo, granularity: int, lo: datetime, hi: datetime
) -> IntArray:
    """Minutes (from ``origin``) of the local-grid starts in ``[lo, hi)``.

    Starts fall every ``granularity`` minutes from local midnight. On a DST day the wall clock
    repeats or skips an hour: a repeated wall time gives two starts, a skipped one none.
    """
    first = lo.astimezone(tz).date() - timedelta(days=1)
    last = hi.astimezone(tz).date() + timedelta(days=1)
    per_day = np.arange(0, 24 * 60, granularity, dtype=np.int64)
    chunks: list[IntArray] = []
    d: date = first
    while d <= last:
        midnight = datetime.combine(d, time(0), tzinfo=tz)
        nxt = datetime.combine(d + timedelta(days=1), time(0), tzinfo=tz)
        if midnight.utcoffset() == nxt.utcoffset() and _exists(midnight, tz):
            base = to_minute(midnight.astimezone(UTC), origin)
            chunks.append(base + per_day)
        else:
            chunks.append(np.array(_dst_day(origin, tz, midnight, granularity), dtype=np.int64))
        d += timedelta(days=1)
    starts = np.unique(np.concatenate(chunks)) if chunks else np.zeros(0, dtype=np.int64)
    lo_m, hi_m = to_minute_ceil(lo, origin), to_minute_ceil(hi, origin)
    return starts[(starts >= lo_m) & (starts < hi_m)]


def _exists(wall: datetime, tz: tzinfo) -> bool:
    back = wall.astimezone(UTC).astimezone(tz)
    return back.replace(tzinfo=None, fold=0) == wall.replace(tzinfo=None, fold=0)


def _dst_day(origin: datetime, tz: tzinfo, midnight: datetime, granularity: int) -> list[int]:
    out: list[int] = []
    for k in range(0, 24 * 60, granularity):
        wall = midnight + timedelta(minutes=k)  # wall-clock arithmetic on an aware datetime
        for fold in (0, 1):
            w = wall.replace(fold=fold)
            if _exists(w, tz):
                out.append(to_minute(w.astimezone(UTC), origin))
    return out
