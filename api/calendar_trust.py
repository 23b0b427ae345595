"""Which agents' calendars cannot be trusted right now, and why: the agents to fail closed on.

An agent is *blocked* by a connection that is not paused when its mirror cannot be trusted:

- the connection failed (a dead credential: ``invalid_grant``, 401 after a refresh);
- it never completed a sync (there is no mirror yet);
- its last good sync is older than ``calendar_max_staleness_seconds``.

A blocked agent is unavailable for *new* calls and just-in-time binding -- never free -- until
the next good sync. Reasons name the connection and never hold secrets or event contents.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from api.db.models import CalendarConnection


def block_reason(row: CalendarConnection, now: datetime, max_staleness: timedelta) -> str | None:
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


def blocked_agents(
    session: Session, tenant_id: str, now: datetime, max_staleness: timedelta
) -> dict[str, str]:
    """agent id -> why their calendar cannot be trusted now (the first reason, by connection
    id), for every blocked agent of the tenant."""
    found: dict[str, str] = {}
    rows = session.scalars(
        select(CalendarConnection)
        .where(CalendarConnection.tenant_id == tenant_id, CalendarConnection.status != "paused")
        .order_by(CalendarConnection.id)
    )
    for row in rows:
        if row.agent_id in found:
            continue
        reason = block_reason(row, now, max_staleness)
        if reason is not None:
            found[row.agent_id] = reason
    return found
