"""The calendar jobs' names and how they are queued (in the caller's transaction).

``calendar.sync`` mirrors one connection's busy time (payload ``connection_id`` and ``full``:
drop the cursors and list every calendar again). At most one sync of a connection waits in the
queue: queueing another merges into it (a full request wins, the earlier due time wins).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from api.db.jobs import Job, JobStatus
from api.jobs import queue

SYNC_JOB = "calendar.sync"


def queued_sync(session: Session, tenant_id: str, connection_id: str) -> Job | None:
    """The connection's sync waiting in the queue, if any."""
    # Filtered by the payload in SQL (JSON_EXTRACT / ->>): loading every queued sync of the
    # tenant to look at its payload here cost O(connections) per sync -- with 500 connections
    # each waiting for its next poll, more than half of an incremental round
    # (benchmarks/calendars.py).
    for job in session.scalars(
        select(Job).where(
            Job.tenant_id == tenant_id,
            Job.kind == SYNC_JOB,
            Job.status == JobStatus.QUEUED,
            Job.payload["connection_id"].as_string() == connection_id,
        )
    ):
        if job.payload.get("connection_id") == connection_id:
            return job
    return None


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
    )
