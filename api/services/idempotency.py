"""Idempotency records: the first response to a keyed POST, per tenant and key.

``claim`` decides what a request carrying ``Idempotency-Key`` gets: to run (we inserted the
record, so no one else will run it concurrently), the stored response (a replay), a mismatch
(the key was used for a different request), or "in progress" (the first request is still
running). The primary key (tenant_id, key) is the lock: of two concurrent inserts one fails.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from api.db.models import IdempotencyRecord

# A first request that has not finished after this long is presumed dead (its process crashed
# before it could store or release the record) and a retry may take over.
STALE_AFTER = timedelta(minutes=2)


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
    if existing is None:  # deleted between our insert and this read: try once more
        return claim(
            session=session,
            tenant_id=tenant_id,
            key=key,
            request_hash=request_hash,
            method=method,
            path=path,
            now=now,
            ttl=ttl,
        )
    expired = existing.created_at + ttl <= now
    stale = existing.status_code is None and existing.created_at + STALE_AFTER <= now
    if expired or stale:
        # Take the record over; the compare-and-set on created_at stops two retries doing it.
        taken = session.execute(
            IdempotencyRecord.__table__.update()
            .where(
                IdempotencyRecord.tenant_id == tenant_id,
                IdempotencyRecord.key == key,
                IdempotencyRecord.created_at == existing.created_at,
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
        return (Outcome.PROCEED, None) if taken else (Outcome.IN_PROGRESS, None)
    if existing.request_hash != request_hash:
        return Outcome.MISMATCH, None
    if existing.status_code is None:
        return Outcome.IN_PROGRESS, None
    return Outcome.REPLAY, Stored(
        status_code=existing.status_code,
        headers=list(existing.response_headers or []),
        body=existing.response_body or b"",
    )


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


def purge_expired(*, session: Session, before: datetime) -> int:
    """Delete records created before ``before``; for a periodic job. Returns how many."""
    n = session.execute(
        delete(IdempotencyRecord).where(IdempotencyRecord.created_at < before)
    ).rowcount
    session.commit()
    return int(n or 0)
