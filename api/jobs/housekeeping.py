"""Housekeeping: deleting what the service keeps only for a while.

Today that is expired ``Idempotency-Key`` records: once ``idempotency_ttl_hours`` have passed, a
retry with the same key runs as a new request anyway, so the stored response is dead weight.
(Webhook events and deliveries past their retention are purged by the webhook deliverer.)

Two ways to run it, both safe from any number of processes at once (deletes are idempotent and
batched; see :func:`api.idempotency.service.purge_expired`):

- every job worker — the service's background thread in each server process, and
  ``switchboard worker`` — runs a pass every ``housekeeping_interval_seconds`` (0: never);
  a pass stops after :data:`PASS_BUDGET_SECONDS`, and the worker runs the next one as soon
  as it has looked for jobs, so a large backlog drains without keeping jobs waiting;
- ``switchboard housekeeping`` runs until nothing expired is left, for operators who use cron.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session, sessionmaker

from api.idempotency import service as idempotency
from api.settings import Settings

log = logging.getLogger(__name__)

# One pass of the background worker deletes for about this long, then lets jobs run.
PASS_BUDGET_SECONDS = 2.0

# What a worker calls: given "now", run a pass; True when nothing is left to do.
Housekeeping = Callable[[datetime], bool]


@dataclass(frozen=True, slots=True)
class Report:
    """One run: the expired idempotency records deleted, and whether none is left."""

    idempotency_records: int
    complete: bool
    idempotency_before: datetime


def run(
    session_factory: sessionmaker[Session],
    settings: Settings,
    *,
    now: datetime,
    time_budget: float | None = None,
    batch_size: int | None = None,
) -> Report:
    """Delete what expired by ``now``; stop after ``time_budget`` seconds (None: when done)."""
    before = now - timedelta(hours=settings.idempotency_ttl_hours)
    purged = idempotency.purge_expired(
        session_factory=session_factory,
        before=before,
        batch_size=batch_size or settings.housekeeping_batch_size,
        time_budget=time_budget,
    )
    if purged.deleted:
        log.info(
            "housekeeping: deleted %d expired idempotency record(s)%s",
            purged.deleted,
            "" if purged.complete else "; more left for the next pass",
        )
    return Report(
        idempotency_records=purged.deleted,
        complete=purged.complete,
        idempotency_before=before,
    )


def for_worker(session_factory: sessionmaker[Session], settings: Settings) -> Housekeeping | None:
    """The pass a job worker runs periodically, or None when the settings turn it off."""
    if settings.housekeeping_interval_seconds <= 0:
        return None

    def one_pass(now: datetime) -> bool:
        return run(session_factory, settings, now=now, time_budget=PASS_BUDGET_SECONDS).complete

    return one_pass
