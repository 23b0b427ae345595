"""The job queue's operations on the ``jobs`` table: enqueue, claim, renew, finish, recover.

Claiming is what keeps several service processes from running one job twice:

- **PostgreSQL**: ``UPDATE jobs SET status='running', ... WHERE id = (SELECT id ... WHERE
  status='queued' AND run_after <= now ORDER BY run_after LIMIT 1 FOR UPDATE SKIP LOCKED) AND
  status='queued' RETURNING ...``. Concurrent claimers skip each other's locked row instead of
  queueing behind it, so N workers take N different jobs at once.
- **SQLite**: the same single ``UPDATE ... RETURNING`` inside ``BEGIN IMMEDIATE`` (SQLite has one
  writer; taking the write lock up front means the select-then-update cannot interleave, and the
  ``status='queued'`` guard would refuse a second claim anyway).

Each claim gets a fresh *token* (``worker-id/random``) stored in ``locked_by``. Every later write
by the worker — renewing the lease, completing, failing — is guarded by ``locked_by = token AND
status = 'running'``: a worker whose lease ran out (and whose job was handed to another) or whose
job was cancelled changes nothing, and :func:`complete` tells it so, so the handler's own writes in
the same transaction roll back with it.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from api.db.jobs import Job, JobStatus
from api.db.locks import begin_write
from api.db.results import affected_rows
from api.errors import Conflict, NotFound

MAX_ERROR_CHARS = 2000


class LeaseLost(RuntimeError):
    """The job is no longer this claim's to finish (lease expired and re-claimed, or cancelled)."""


@dataclass(frozen=True, slots=True)
class ClaimedJob:
    """What a worker needs to run a job it has claimed; ``token`` guards every later write."""

    id: str
    tenant_id: str
    kind: str
    payload: dict[str, Any]
    attempts: int
    max_attempts: int
    token: str


def enqueue(
    *,
    session: Session,
    tenant_id: str,
    kind: str,
    payload: dict[str, Any],
    now: datetime,
    run_after: datetime | None = None,
    max_attempts: int = 3,
    dedupe_key: str | None = None,
) -> Job:
    """Add a queued job in the caller's transaction (it becomes claimable when that commits).
    ``dedupe_key`` lets :func:`waiting` find it while it waits."""
    job = Job(
        id=str(uuid.uuid4()),
        tenant_id=tenant_id,
        kind=kind,
        payload=dict(payload),
        dedupe_key=dedupe_key,
        status=JobStatus.QUEUED,
        attempts=0,
        max_attempts=max_attempts,
        run_after=run_after or now,
        created_at=now,
        updated_at=now,
    )
    session.add(job)
    session.flush()
    return job


def waiting(
    *, session: Session, tenant_id: str, kind: str, dedupe_key: str, lock: bool = False
) -> Job | None:
    """The queued job of ``kind`` enqueued with ``dedupe_key``, if any (the oldest, should
    there be several): one probe of the (tenant, key, status) index. ``lock``: held until the
    caller commits (FOR UPDATE on PostgreSQL), so no worker claims it in between."""
    # No ORDER BY in SQL: SQLite would then walk the (tenant, created_at) index over every job
    # the tenant ever had. The matches are few (one, normally).
    stmt = select(Job).where(
        Job.tenant_id == tenant_id,
        Job.dedupe_key == dedupe_key,
        Job.status == JobStatus.QUEUED,
        Job.kind == kind,
    )
    found = session.scalars(stmt.with_for_update() if lock else stmt).all()
    return min(found, key=lambda job: (job.created_at, job.id), default=None)


def get(*, session: Session, tenant_id: str, job_id: str) -> Job | None:
    job = session.get(Job, job_id)
    # Another tenant's job is exactly as absent as a job that never existed.
    if job is None or job.tenant_id != tenant_id:
        return None
    return job


def get_or_raise(*, session: Session, tenant_id: str, job_id: str) -> Job:
    job = get(session=session, tenant_id=tenant_id, job_id=job_id)
    if job is None:
        raise NotFound("job", job_id)
    return job


def list_jobs(
    *,
    session: Session,
    tenant_id: str,
    limit: int,
    after: tuple[datetime, str] | None = None,
    status: JobStatus | None = None,
    kind: str | None = None,
) -> Sequence[Job]:
    """The tenant's jobs, newest first (ties by id); ``after`` is the last (created_at, id)
    of the previous page."""
    stmt = select(Job).where(Job.tenant_id == tenant_id)
    if status is not None:
        stmt = stmt.where(Job.status == status)
    if kind is not None:
        stmt = stmt.where(Job.kind == kind)
    if after is not None:
        at, last_id = after
        stmt = stmt.where(or_(Job.created_at < at, and_(Job.created_at == at, Job.id > last_id)))
    return session.scalars(stmt.order_by(Job.created_at.desc(), Job.id).limit(limit)).all()


def claim(
    *,
    session_factory: sessionmaker[Session],
    worker_id: str,
    now: datetime,
    lease: timedelta,
    kinds: Collection[str] | None = None,
) -> ClaimedJob | None:
    """Atomically take the oldest due queued job (of ``kinds``, if given), or None."""
    token = f"{worker_id}/{uuid.uuid4().hex[:12]}"
    with session_factory() as session:
        begin_write(session)
        due = select(Job.id).where(Job.status == JobStatus.QUEUED, Job.run_after <= now)
        if kinds is not None:
            due = due.where(Job.kind.in_(list(kinds)))
        due = due.order_by(Job.run_after, Job.created_at, Job.id).limit(1)
        if session.get_bind().dialect.name == "postgresql":
            due = due.with_for_update(skip_locked=True)
        stmt = (
            update(Job)
            .where(Job.id == due.scalar_subquery(), Job.status == JobStatus.QUEUED)
            .values(
                status=JobStatus.RUNNING,
                attempts=Job.attempts + 1,
                locked_by=token,
                locked_until=now + lease,
                heartbeat_at=now,
                started_at=func.coalesce(Job.started_at, now),
                updated_at=now,
            )
            .returning(Job.id, Job.tenant_id, Job.kind, Job.payload, Job.attempts, Job.max_attempts)
            .execution_options(synchronize_session=False)
        )
        row = session.execute(stmt).one_or_none()
        session.commit()
    if row is None:
        return None
    return ClaimedJob(
        id=row.id,
        tenant_id=row.tenant_id,
        kind=row.kind,
        payload=dict(row.payload or {}),
        attempts=row.attempts,
        max_attempts=row.max_attempts,
        token=token,
    )


def _owned(job: ClaimedJob) -> Any:
    return (Job.id == job.id, Job.locked_by == job.token, Job.status == JobStatus.RUNNING)


def renew(
    *, session_factory: sessionmaker[Session], job: ClaimedJob, now: datetime, lease: timedelta
) -> bool:
    """Extend the lease (the heartbeat); False when the claim is no longer ours."""
    with session_factory() as session:
        result = session.execute(
            update(Job)
            .where(*_owned(job))
            .values(locked_until=now + lease, heartbeat_at=now, updated_at=now)
            .execution_options(synchronize_session=False)
        )
        session.commit()
    return bool(affected_rows(result))


def still_owned(*, session: Session, job: ClaimedJob) -> bool:
    found = session.scalar(select(func.count()).select_from(Job).where(*_owned(job)))
    return bool(found)


def complete(*, session: Session, job: ClaimedJob, now: datetime, result: dict[str, Any]) -> None:
    """Mark the job succeeded in the caller's transaction; raises :class:`LeaseLost` if the
    claim is gone, so whatever else that transaction wrote is rolled back with it."""
    done = session.execute(
        update(Job)
        .where(*_owned(job))
        .values(
            status=JobStatus.SUCCEEDED,
            result=result,
            error=None,
            locked_by=None,
            locked_until=None,
            finished_at=now,
            updated_at=now,
        )
        .execution_options(synchronize_session=False)
    )
    if not affected_rows(done):
        raise LeaseLost(f"job {job.id} is no longer held by {job.token}")


def fail(
    *,
    session_factory: sessionmaker[Session],
    job: ClaimedJob,
    now: datetime,
    error: str,
    retry_at: datetime | None,
) -> JobStatus | None:
    """Record a failed attempt: queued again at ``retry_at`` (when given and attempts remain),
    else failed for good. Returns the new status, or None when the claim was already gone."""
    status = (
        JobStatus.QUEUED
        if retry_at is not None and job.attempts < job.max_attempts
        else JobStatus.FAILED
    )
    values: dict[str, Any] = {
        "status": status,
        "error": error[:MAX_ERROR_CHARS],
        "locked_by": None,
        "locked_until": None,
        "updated_at": now,
    }
    if status is JobStatus.QUEUED:
        values["run_after"] = retry_at
    else:
        values["finished_at"] = now
    with session_factory() as session:
        result = session.execute(
            update(Job)
            .where(*_owned(job))
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        session.commit()
    return status if affected_rows(result) else None


def recover_stale(*, session_factory: sessionmaker[Session], now: datetime) -> int:
    """Give back jobs whose worker stopped renewing its lease (it crashed or hung): queued
    again while attempts remain, else failed. Returns how many were recovered."""
    stale = (Job.status == JobStatus.RUNNING, Job.locked_until < now)
    with session_factory() as session:
        begin_write(session)
        requeued = session.execute(
            update(Job)
            .where(*stale, Job.attempts < Job.max_attempts)
            .values(
                status=JobStatus.QUEUED,
                run_after=now,
                error=func.coalesce(Job.locked_by, "") + " stopped renewing its lease",
                locked_by=None,
                locked_until=None,
                updated_at=now,
            )
            .execution_options(synchronize_session=False)
        )
        failed = session.execute(
            update(Job)
            .where(*stale, Job.attempts >= Job.max_attempts)
            .values(
                status=JobStatus.FAILED,
                error="the worker stopped renewing its lease on the last attempt",
                locked_by=None,
                locked_until=None,
                finished_at=now,
                updated_at=now,
            )
            .execution_options(synchronize_session=False)
        )
        session.commit()
    return affected_rows(requeued) + affected_rows(failed)


def cancel(*, session: Session, tenant_id: str, job_id: str, now: datetime) -> Job:
    """Cancel a queued or running job (a running one's worker then finishes nothing: its
    guarded completion fails). Cancelling a cancelled job is a no-op; a finished one, 409."""
    job = get_or_raise(session=session, tenant_id=tenant_id, job_id=job_id)
    if job.status is JobStatus.CANCELLED:
        return job
    if job.status.is_final:
        raise Conflict(f"job {job_id!r} already {job.status.value}; it cannot be cancelled")
    done = session.execute(
        update(Job)
        .where(
            Job.id == job_id,
            Job.status.in_([JobStatus.QUEUED, JobStatus.RUNNING]),
        )
        .values(
            status=JobStatus.CANCELLED,
            locked_by=None,
            locked_until=None,
            finished_at=now,
            updated_at=now,
        )
        .execution_options(synchronize_session=False)
    )
    if not affected_rows(done):
        raise Conflict(f"job {job_id!r} finished meanwhile; it cannot be cancelled")
    session.refresh(job)
    return job


def depth(*, session: Session) -> dict[str, int]:
    """How many jobs wait or run, over all tenants (for /metrics: counts only, no tenant)."""
    active = [JobStatus.QUEUED, JobStatus.RUNNING]
    rows = session.execute(
        select(Job.status, func.count()).where(Job.status.in_(active)).group_by(Job.status)
    ).all()
    out = {s.value: 0 for s in active}
    for status, n in rows:
        out[JobStatus(status).value] = int(n)
    return out
