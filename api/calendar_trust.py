"""Which agents' calendars cannot be trusted right now, and why: the agents to fail closed on.

A leaf module (it reads ``calendar_connections`` and imports nothing else of the service), so
the booking engine's loading (:mod:`api.bookings.service`) and the calendar sync
(:mod:`api.calendar_sync`, which runs the bookings' disruption path) can both use it without an
import cycle; :mod:`api.calendar_sync.health` re-exports it under its original name.

An agent is *blocked* by a connection that is not paused when its mirror cannot be trusted:

- the connection failed (a dead credential: ``invalid_grant``, 401 after a refresh);
- it never completed a sync (there is no mirror yet);
- its last good sync is older than ``calendar_max_staleness_seconds``.

A blocked agent is unavailable for *new* calls and just-in-time binding -- never free -- until
the next good sync. Reasons name the connection and never hold secrets or event contents.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import and_, bindparam, func, literal, null, or_, select, union_all
from sqlalchemy.orm import Session

from api.db.models import CalendarConnection

# SWITCHBOARD_CALENDAR_MAX_STALENESS_SECONDS' default, for callers without settings at hand.
DEFAULT_MAX_STALENESS = timedelta(seconds=1800)


class ConnectionHealth(Protocol):
    """What :func:`block_reason` reads of a connection: an ORM row or a plain Core row."""

    @property
    def id(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def failure(self) -> str | None: ...
    @property
    def last_success_at(self) -> datetime | None: ...


def block_reason(row: ConnectionHealth, now: datetime, max_staleness: timedelta) -> str | None:
    """Why ``row`` blocks its agent now (None: it does not)."""
    if row.status == "paused":
        return None
    if row.status == "failed":
        return f"calendar connection {row.id} failed: {row.failure or 'unknown error'}"
    if row.last_success_at is None:
        return f"calendar connection {row.id} has not completed a sync yet"
    age = now - row.last_success_at
    if age > max_staleness:
        minutes = int(age.total_seconds() // 60)
        return f"calendar connection {row.id} is stale: last good sync {minutes} min ago"
    return None


_T = CalendarConnection.__table__
_CUTOFF = bindparam("cutoff", type_=_T.c.last_success_at.type)  # now - max_staleness
_LIVE = and_(_T.c.tenant_id == bindparam("tenant"), _T.c.status != "paused")
# One round trip on every slot query and booking, answering in SQL what block_reason decides
# (so a tenant whose connections are all fine reads one row, not one per connection): the
# connections that block now, by id, then one row holding the oldest good sync among the rest.
_HEALTH = union_all(
    select(_T.c.agent_id, _T.c.id, _T.c.status, _T.c.failure, _T.c.last_success_at).where(
        _LIVE,
        or_(
            _T.c.status == "failed", _T.c.last_success_at.is_(None), _T.c.last_success_at < _CUTOFF
        ),
    ),
    select(null(), null(), literal("fresh"), null(), func.min(_T.c.last_success_at)).where(
        _LIVE, _T.c.status != "failed", _T.c.last_success_at >= _CUTOFF
    ),
)


@dataclass(frozen=True)
class Trust:
    """Which of a tenant's agents are blocked at ``now`` (agent id -> the first reason, by
    connection id), and ``next_stale``: the earliest moment after ``now`` at which a connection
    that is fine now goes stale (None: none will without a new sync) -- when the blocked set
    next changes by itself, with nothing written."""

    blocked: Mapping[str, str] = field(default_factory=dict)
    next_stale: datetime | None = None


def trust(session: Session, tenant_id: str, now: datetime, max_staleness: timedelta) -> Trust:
    """The tenant's :class:`Trust` at ``now``, in one prepared Core query over the tenant's
    connections that are not paused (read on every slot query and booking: no ORM rows)."""
    blocking: list[Any] = []
    oldest: datetime | None = None
    params = {"tenant": tenant_id, "cutoff": now - max_staleness}
    for row in session.connection().execute(_HEALTH, params):
        if row.status == "fresh":
            oldest = row.last_success_at
        else:
            blocking.append(row)
    found: dict[str, str] = {}
    for row in sorted(blocking, key=lambda r: str(r.id)):
        reason = block_reason(row, now, max_staleness)
        if reason is not None:
            found.setdefault(row.agent_id, reason)
    return Trust(found, None if oldest is None else oldest + max_staleness)


def blocked_agents(
    session: Session, tenant_id: str, now: datetime, max_staleness: timedelta
) -> dict[str, str]:
    """agent id -> why their calendar cannot be trusted now (the first reason, by connection
    id), for every blocked agent of the tenant."""
    return dict(trust(session, tenant_id, now, max_staleness).blocked)
