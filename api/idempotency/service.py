"""Idempotency records: the first response to a keyed POST, per tenant, API key and key.

``claim`` decides what a request carrying ``Idempotency-Key`` gets: to run (we inserted the
record, so no one else will run it concurrently), the stored response (a replay), a mismatch
(the key was used for a different request), or "in progress" (the first request is still
running). The primary key (tenant_id, api_key_id, key) is the lock: of two concurrent inserts
one fails. Each API key has its own keys, so a response is only ever replayed to its maker.

``complete`` stores the response **in the transaction of the work it describes** (the caller
commits both, or neither): a response is never lost for work that was done, and work is never
done without its response. Both it and ``release`` act only on the claim they are given (a
compare-and-set on its ``created_at``): a request that ran so long that a retry took its stale
claim over can neither store over the retry's record nor delete it.

Expired records are deleted by :func:`purge_expired`, in bounded batches, from housekeeping
(:mod:`api.jobs.housekeeping`: every job worker, or ``switchboard housekeeping`` from cron).
"""

from __future__ import annotations

import enum
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, delete, insert, select, tuple_, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from api.db.models import IdempotencyRecord
from api.db.results import affected_rows

# The keyring purpose that seals stored answers at rest (api.idempotency.middleware; what
# api.rotation re-encrypts).
SEAL_PURPOSE = "idempotent-responses/v1"
# A first request that has not finished after this long is presumed dead (its process crashed
# before it could store or release the record) and a retry may take over. Should the first one
# still be alive, its ``complete`` finds the claim gone and its work is rolled back.
STALE_AFTER = timedelta(minutes=2)
# How often claim() looks again when the record changes under it (released, purged, taken over).
_CLAIM_ATTEMPTS = 3
_PATH_LENGTH = 2048


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


@dataclass(frozen=True, slots=True)
class Claim:
    """A record this request holds: which, and when it was armed (its compare-and-set)."""

    tenant_id: str
    api_key_id: str
    key: str
    created_at: datetime


def _where(claim: Claim) -> tuple[ColumnElement[bool], ...]:
    return (
        IdempotencyRecord.tenant_id == claim.tenant_id,
        IdempotencyRecord.api_key_id == claim.api_key_id,
        IdempotencyRecord.key == claim.key,
        IdempotencyRecord.created_at == claim.created_at,
    )


def claim(
    *,
    session: Session,
    tenant_id: str,
    api_key_id: str,
    key: str,
    request_hash: str,
    method: str,
    path: str,
    now: datetime,
    ttl: timedelta,
) -> tuple[Outcome, Claim | Stored | None]:
    """What this request gets; with PROCEED the :class:`Claim` it holds, with REPLAY the
    :class:`Stored` response. Commits its own short transactions (call it on a session of its
    own, before the request's unit of work)."""
    ident = (tenant_id, api_key_id, key)
    armed = Claim(tenant_id, api_key_id, key, now)
    for _ in range(_CLAIM_ATTEMPTS):
        # A Core INSERT, not session.add(): the session may already hold the existing row.
        try:
            session.execute(
                insert(IdempotencyRecord).values(
                    tenant_id=tenant_id,
                    api_key_id=api_key_id,
                    key=key,
                    request_hash=request_hash,
                    method=method,
                    path=path[:_PATH_LENGTH],
                    created_at=now,
                )
            )
            session.commit()
            return Outcome.PROCEED, armed
        except IntegrityError:
            session.rollback()
        existing = session.get(IdempotencyRecord, ident, populate_existing=True)
        if existing is None:  # released or purged between our insert and this read: again
            session.rollback()
            continue
        expired = existing.created_at + ttl <= now
        stale = existing.status_code is None and existing.created_at + STALE_AFTER <= now
        if expired or stale:
            seen = Claim(tenant_id, api_key_id, key, existing.created_at)
            seen_completed = existing.completed_at
            # End the read first: on SQLite a read transaction cannot turn into a write once
            # another connection has committed since it began ("database is locked" at once).
            session.rollback()
            if _take_over(
                session=session,
                seen=seen,
                seen_completed_at=seen_completed,
                request_hash=request_hash,
                method=method,
                path=path,
                now=now,
            ):
                return Outcome.PROCEED, armed
            # Another retry took it over, or housekeeping purged it: look again.
            continue
        session.rollback()
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
    seen: Claim,
    seen_completed_at: datetime | None,
    request_hash: str,
    method: str,
    path: str,
    now: datetime,
) -> bool:
    """Re-arm an expired or stale record for this request. The compare-and-set on what we saw
    (``created_at`` and ``completed_at``) stops two retries doing it, and stops us re-arming a
    stale record that its first request completed meanwhile; False when the record changed or
    went."""
    completed = (
        IdempotencyRecord.completed_at.is_(None)
        if seen_completed_at is None
        else IdempotencyRecord.completed_at == seen_completed_at
    )
    rearm = (
        update(IdempotencyRecord)
        .where(*_where(seen), completed)
        .values(
            request_hash=request_hash,
            method=method,
            path=path[:_PATH_LENGTH],
            status_code=None,
            response_headers=None,
            response_body=None,
            created_at=now,
            completed_at=None,
        )
        .execution_options(synchronize_session=False)
    )
    taken = affected_rows(session.execute(rearm))
    session.commit()
    return bool(taken)


def complete(*, session: Session, claim: Claim, stored: Stored, now: datetime) -> bool:
    """Store the response of ``claim``'s request in ``session``'s open transaction — the one
    holding the request's work; the caller commits. False when the claim is no longer ours (a
    retry took it over as stale): then the caller must roll its work back, since the retry is
    doing it."""
    store = (
        update(IdempotencyRecord)
        .where(*_where(claim), IdempotencyRecord.status_code.is_(None))
        .values(
            status_code=stored.status_code,
            response_headers=stored.headers,
            response_body=stored.body,
            completed_at=now,
        )
        .execution_options(synchronize_session=False)
    )
    return bool(affected_rows(session.execute(store)))


def release(*, session: Session, claim: Claim) -> None:
    """Forget a claim whose request failed in a way worth retrying (5xx, auth, crash); a
    record a retry has taken over meanwhile is left alone."""
    session.execute(
        delete(IdempotencyRecord)
        .where(*_where(claim), IdempotencyRecord.status_code.is_(None))
        .execution_options(synchronize_session=False)
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
                select(
                    IdempotencyRecord.tenant_id, IdempotencyRecord.api_key_id, IdempotencyRecord.key
                )
                .where(IdempotencyRecord.created_at < before)
                .limit(batch_size)
            )
            if session.get_bind().dialect.name == "postgresql":
                picked = picked.with_for_update(skip_locked=True)
            result = session.execute(
                delete(IdempotencyRecord)
                .where(
                    tuple_(
                        IdempotencyRecord.tenant_id,
                        IdempotencyRecord.api_key_id,
                        IdempotencyRecord.key,
                    ).in_(picked),
                    IdempotencyRecord.created_at < before,
                )
                .execution_options(synchronize_session=False)
            )
            session.commit()
        n = affected_rows(result)
        deleted += n
        if n < batch_size:
            return Purged(deleted=deleted, complete=True)
        if time_budget is not None and time.monotonic() - started >= time_budget:
            return Purged(deleted=deleted, complete=False)
