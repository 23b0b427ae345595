"""Idempotency records: the first response to a keyed POST, per tenant and key.

``claim`` decides what a request carrying ``Idempotency-Key`` gets: to run (we inserted the
record, so no one else will run it concurrently), the stored response (a replay), a mismatch
(the key was used for a different request), or "in progress" (the first request is still
running). The primary key (tenant_id, key) is the lock: of two concurrent inserts one fails.

Expired records are deleted by :func:`purge_expired`, in bounded batches, from housekeeping
(:mod:`api.jobs.housekeeping`: every job worker, or ``switchboard housekeeping`` from cron).
"""

from __future__ import annotations

import enum
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, insert, select, tuple_
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from api.db.models import IdempotencyRecord

# A first request that has not finished after this long is presumed dead (its process crashed
# before it could store or release the record) and a retry may take over.
STALE_AFTER = timedelta(minutes=2)
# How often claim() looks again when the record changes under it (released, purged, taken over).
_CLAIM_ATTEMPTS = 3


class Outcome(enum.Enum):
    PROCEED = "proceed"
    REPLAY = "replay"
    MISMATCH = "mismatch"
    IN_PROGRESS = "in_progress"


@dataclass(frozen=True, slots=True)
class Stored:
    status_code: int
    headers: list[list[str]]
    body: bytes


def claim(
    *,
    session: Session,
    tenant_id: str,
    key: str,
    request_hash: str,
    method: str,
    path: str,
    now: datetime,
    ttl: timedelta,
) -> tuple[Outcome, Stored | None]:
    for _ in range(_CLAIM_ATTEMPTS):
        # A Core INSERT, not session.add(): the session may already hold the existing row.
        try:
            session.execute(
                insert(IdempotencyRecord).values(
                    tenant_id=tenant_id,
                    key=key,
                    request_hash=request_hash,
                    method=method,
                    path=path[:2048],
                    created_at=now,
                )
            )
            session.commit()
            return Outcome.PROCEED, None
        except IntegrityError:
            session.rollback()
        existing = session.get(IdempotencyRecord, (tenant_id, key), populate_existing=True)
        if existing is None:  # released or purged between our insert and this read: again
            continue
        expired = existing.created_at + ttl <= now
        stale = existing.status_code is None and existing.created_at + STALE_AFTER <= now
        if expired or stale:
            seen = existing.created_at
            # End the read first: on SQLite a read transaction cannot turn into a write once
            # another connection has committed since it began ("database is locked" at once).
            session.rollback()
            if _take_over(
                session=session,
                tenant_id=tenant_id,
                key=key,
                seen_created_at=seen,
                request_hash=request_hash,
                method=method,
                path=path,
                now=now,
            ):
                return Outcome.PROCEED, None
            # Another retry took it over, or housekeeping purged it: look again.
            continue
        if existing.request_hash != request_hash:
            return Outcome.MISMATCH, None
        if existing.status_code is None:
            return Outcome.IN_PROGRESS, None
        return Outcome.REPLAY, Stored(
            status_code=existing.status_code,
            headers=list(existing.response_headers or []),
            body=existing.response_body or b"",
        )
    # The record changed under us every time: another request is busy with this key.
    return Outcome.IN_PROGRESS, None


def _take_over(
    *,
    session: Session,
    tenant_id: str,
    key: str,
    seen_created_at: datetime,
    request_hash: str,
    method: str,
    path: str,
    now: datetime,
) -> bool:
    """Re-arm an expired or stale record for this request. The compare-and-set on the
    ``created_at`` we saw stops two retries doing it; False when the record changed or went
    meanwhile."""
    taken = session.execute(
        IdempotencyRecord.__table__.update()
        .where(
            IdempotencyRecord.tenant_id == tenant_id,
            IdempotencyRecord.key == key,
            IdempotencyRecord.created_at == seen_created_at,
        )
        .values(
            request_hash=request_hash,
            method=method,
            path=path[:2048],
            status_code=None,
            response_headers=None,
            response_body=None,
            created_at=now,
            completed_at=None,
        )
    ).rowcount
    session.commit()
    return bool(taken)


def complete(
    *,
    session: Session,
    tenant_id: str,
    key: str,
    stored: Stored,
    now: datetime,
) -> None:
    record = session.get(IdempotencyRecord, (tenant_id, key))
    if record is None:
        return
    record.status_code = stored.status_code
    record.response_headers = stored.headers
    record.response_body = stored.body
    record.completed_at = now
    session.commit()


def release(*, session: Session, tenant_id: str, key: str) -> None:
    """Forget a claim whose request failed in a way worth retrying (5xx, auth, crash)."""
    session.execute(
        delete(IdempotencyRecord).where(
            IdempotencyRecord.tenant_id == tenant_id, IdempotencyRecord.key == key
        )
    )
    session.commit()


@dataclass(frozen=True, slots=True)
class Purged:
    """What :func:`purge_expired` did: rows deleted, and whether it ran out of rows (False: it
    stopped at its time budget and more are left)."""

    deleted: int
    complete: bool


def purge_expired(
    *,
    session_factory: sessionmaker[Session],
    before: datetime,
    batch_size: int = 1000,
    time_budget: float | None = None,
) -> Purged:
    """Delete the records created before ``before``, ``batch_size`` rows per transaction, so a
    large backlog never holds one long transaction (nor SQLite's write lock) for long. Stops
    when none is left or, given ``time_budget`` seconds, after the batch that used it up.

    Safe from several processes at once: each batch is one ``DELETE``; on PostgreSQL it locks
    the rows it picks with ``SKIP LOCKED``, so two purgers delete different rows instead of
    queueing behind each other, and SQLite has one writer anyway. The age is re-checked on the
    row deleted, so a record a retry just took over (``created_at`` renewed) is never deleted.
    """
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    started = time.monotonic()
    deleted = 0
    while True:
        with session_factory() as session:
            picked = (
                select(IdempotencyRecord.tenant_id, IdempotencyRecord.key)
                .where(IdempotencyRecord.created_at < before)
                .limit(batch_size)
            )
            if session.get_bind().dialect.name == "postgresql":
                picked = picked.with_for_update(skip_locked=True)
            result = session.execute(
                delete(IdempotencyRecord)
                .where(
                    tuple_(IdempotencyRecord.tenant_id, IdempotencyRecord.key).in_(picked),
                    IdempotencyRecord.created_at < before,
                )
                .execution_options(synchronize_session=False)
            )
            session.commit()
        n = int(getattr(result, "rowcount", 0) or 0)
        deleted += n
        if n < batch_size:
            return Purged(deleted=deleted, complete=True)
        if time_budget is not None and time.monotonic() - started >= time_budget:
            return Purged(deleted=deleted, complete=False)
