"""What arrives in a run: a ticket history replayed, and volume profiles turned into tickets.

:func:`arrivals` is a pure function of the world and the run's random streams, and it draws
only from the ``arrivals`` and ``efforts`` streams, in an order fixed by the world's demand
alone (hours in time order, then rows in file order, then tickets in time order). So the same
seed and replication give the same tickets *whatever the staffing and routing*: two scenarios
that differ in agents or policy see the same customers draw for draw (common random numbers).

**Volume profiles.** A :class:`~scenarios.model.VolumeRow` says ``per_hour`` tickets arrive at
local hour ``hour`` (of ``weekday``, or every day) in the world's time zone. The run is walked
one real hour at a time from a local hour boundary, so a DST change is right: on a spring-forward
day the skipped local hour gets no arrivals, on a fall-back day the repeated hour gets them
twice, as it does on a real support floor. Within an hour arrivals are Poisson (a Poisson count,
uniform times: a non-homogeneous Poisson process piecewise constant per hour), at rate
``per_hour * demand.scale * demand.shape.get(hour, 1)``; an hour cut by the run's start or end
gets its share of the rate. Efforts are lognormal with mean ``effort_minutes`` and coefficient of
variation ``effort_cv`` (exactly ``effort_minutes``, rounded, when ``effort_cv`` is 0), or
exponentially (``effort_distribution``); a drawn time is worked exactly (to the second) and shown
to the router rounded to
whole minutes (at least 1). A ticket books a call against ``row.call`` with probability
``call_share``.

**History.** Each ticket of ``demand.history`` created in ``[start, end)`` is replayed with the
factor ``demand.history_factor(team, channel) * shape[local hour]`` (``scale``, times any
``history_scale`` rule of its team or channel): below 1 it is kept with that probability
(thinning); above 1 it is replayed ``floor(factor)`` times plus once more with probability of
the fraction, the copies at times jittered uniformly within +-30 minutes (kept inside the run)
and ids ``<id>~<k>``. Its own first response and resolution are kept on the original (the report's
history column) and dropped on copies.

Only arrivals in ``[world.start, world.end)`` are returned, sorted by (created_at, id).
"""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np

from scenarios.model import TicketSpec, VolumeRow, World
from scenarios.rng import Streams

JITTER_MINUTES = 30.0
_HOUR = timedelta(hours=1)


def _effort(row: VolumeRow, rng: np.random.Generator, n: int) -> list[tuple[int, float | None]]:
    """``n`` (effort the router sees, exact handling time) pairs of ``row``: always ``n`` draws
    when the time is random, none when it is fixed (cv 0, lognormal). The router sees the draw
    rounded to whole minutes (at least 1), as a helpdesk's estimate; the work takes the draw."""
    if n == 0:
        return []
    mean = row.effort_minutes
    if row.effort_distribution == "exponential":
        drawn = rng.exponential(mean, n)
    elif row.effort_cv == 0:
        return [(max(1, round(mean)), None)] * n
    else:
        sigma2 = math.log1p(row.effort_cv**2)
        mu = math.log(mean) - sigma2 / 2
        drawn = rng.lognormal(mu, math.sqrt(sigma2), n)
    top = 7 * 24 * 60
    out: list[tuple[int, float | None]] = []
    for x in drawn:
        # A draw under a second is a second's work (the simulation's clock ticks in seconds).
        exact = min(float(top), max(1 / 60, round(float(x) * 60) / 60))
        out.append((max(1, min(top, round(exact))), exact))
    return out


def _hours(world: World) -> list[datetime]:
    """UTC starts of the run's local hours, from the local hour at or before ``start``."""
    zone = ZoneInfo(world.timezone)
    local = world.start.astimezone(zone)
    first = local.replace(minute=0, second=0, microsecond=0).astimezone(UTC)
    out = []
    at = first
    while at < world.end:
        out.append(at)
        at += _HOUR
    return out


def _volume(world: World, streams: Streams) -> list[TicketSpec]:
    demand = world.demand
    rows = demand.volume
    if not rows:
        return []
    zone = ZoneInfo(world.timezone)
    start, end = world.start, world.end
    arr, eff = streams.arrivals, streams.efforts
    out: list[TicketSpec] = []
    for hour_start in _hours(world):
        local = hour_start.astimezone(zone)
        hour_end = hour_start + _HOUR
        lo, hi = max(hour_start, start), min(hour_end, end)
        share = (hi - lo) / _HOUR
        if share <= 0:
            continue
        factor = demand.scale * demand.shape.get(local.hour, 1.0)
        for r, row in enumerate(rows):
            if row.hour != local.hour or (
                row.weekday is not None and row.weekday != local.weekday()
            ):
                continue
            rate = row.per_hour * factor * share
            n = int(arr.poisson(rate)) if rate > 0 else 0
            if n == 0:
                continue
            offsets = np.sort(arr.uniform(0.0, (hi - lo).total_seconds(), n))
            calls = arr.uniform(0.0, 1.0, n)
            efforts = _effort(row, eff, n)
            for k in range(n):
                created = lo + timedelta(seconds=float(offsets[k]))
                created = created.replace(microsecond=0)
                call = row.call if row.call is not None and calls[k] < row.call_share else None
                out.append(
                    TicketSpec(
                        id=f"v{hour_start:%Y%m%d%H}-{r}-{k}",
                        created_at=created,
                        team=row.team,
                        channel=row.channel,
                        required_skills=row.required_skills,
                        priority=row.priority,
                        effort_minutes=efforts[k][0],
                        handle_minutes=efforts[k][1],
                        call=call,
                    )
                )
    return out


def _history(world: World, streams: Streams) -> list[TicketSpec]:
    demand = world.demand
    if not demand.history:
        return []
    zone = ZoneInfo(world.timezone)
    start, end = world.start, world.end
    rng = streams.arrivals
    plain = demand.scale == 1.0 and not demand.shape and not demand.history_scale
    out: list[TicketSpec] = []
    for ticket in demand.history:
        if not start <= ticket.created_at < end:
            continue
        if plain:
            out.append(ticket)
            continue
        factor = demand.history_factor(ticket.team, ticket.channel) * demand.shape.get(
            ticket.created_at.astimezone(zone).hour, 1.0
        )
        whole = math.floor(factor)
        # Two draws per ticket whatever the factor, so the stream stays aligned across scales.
        extra, jitter = rng.uniform(0.0, 1.0), rng.uniform(-1.0, 1.0, max(whole, 1))
        copies = whole + (1 if extra < factor - whole else 0)
        for k in range(copies):
            if k == 0:
                out.append(ticket)
                continue
            shift = timedelta(minutes=float(jitter[(k - 1) % len(jitter)]) * JITTER_MINUTES)
            created = min(max(ticket.created_at + shift, start), end - timedelta(seconds=1))
            out.append(
                replace(
                    ticket,
                    id=f"{ticket.id}~{k}",
                    created_at=created.replace(microsecond=0),
                    first_response_at=None,
                    resolved_at=None,
                )
            )
    return out


def arrivals(world: World, streams: Streams) -> list[TicketSpec]:
    """Every ticket arriving in ``[world.start, world.end)``, sorted by (created_at, id); see
    the module docstring for the model and the draw order."""
    tickets = _history(world, streams) + _volume(world, streams)
    tickets.sort(key=lambda t: (t.created_at, t.id))
    return tickets
