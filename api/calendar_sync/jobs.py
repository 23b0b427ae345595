"""The calendar jobs' names and how they are queued (in the caller's transaction).

``calendar.sync`` mirrors one connection's busy time (payload ``connection_id`` and ``full``:
drop the cursors and list every calendar again). At most one sync of a connection waits in the
queue: queueing another merges into it (a full request wins, the earlier due time wins).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from api.db.jobs import Job
from api.jobs import queue

SYNC_JOB = "calendar.sync"


def queued_sync(session: Session, tenant_id: str, connection_id: str) -> Job | None:
    """The connection's sync waiting in the queue, if any."""
    # Found by the job's dedupe key (the connection id), an indexed probe: filtering the JSON
    # payload scanned every queued job of the tenant, O(connections) per sync -- with 500
    # connections each waiting for its next poll, a sixth of an incremental round
    # (benchmarks/calendars.py).
    return queue.waiting(
        session=session, tenant_id=tenant_id, kind=SYNC_JOB, dedupe_key=connection_id
    )


def queue_sync(
    session: Session,
    tenant_id: str,
    connection_id: str,
    *,
    now: datetime,
    full: bool = False,
    run_after: datetime | None = None,
) -> Job:
    """Queue a sync of the connection (or fold this request into the one already queued)."""
    due = run_after or now
    waiting = queued_sync(session, tenant_id, connection_id)
    if waiting is not None:
        if full and not waiting.payload.get("full"):
            waiting.payload = {**waiting.payload, "full": True}
        if due < waiting.run_after:
            waiting.run_after = due
        waiting.updated_at = now
        return waiting
    return queue.enqueue(
        session=session,
        tenant_id=tenant_id,
        kind=SYNC_JOB,
        payload={"connection_id": connection_id, "full": full},
        now=now,
        run_after=due,
        max_attempts=1,
        dedupe_key=connection_id,
    )
