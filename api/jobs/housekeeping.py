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

Each pass also *starts* the periodic breach-risk checks (:func:`queue_breach_checks`): every
tenant with work to check (an active ticket held by an agent, with a due date) and no
``tickets.breach_risk`` job queued or running gets one, due at once. Each such run queues the
next one ``breach_risk_interval_seconds`` later while the tenant still has work to check
(:func:`schedule_breach_check`), so the checks run at that cadence whatever the housekeeping
interval; housekeeping restarts a chain that stopped (the tenant had no work, or a run failed
for good). ``breach_risk_interval_seconds = 0`` queues no new runs.

Other use cases add passes of their own (:data:`Pass`, given by :mod:`api.wiring`: the calendar
sync restarts its poll chains and announces stale mirrors), run after the above in each pass.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import or_, select
from sqlalchemy.orm import Session, sessionmaker

from api.db.jobs import Job, JobStatus
from api.db.models import Ticket
from api.enums import TicketStatus
from api.idempotency import service as idempotency
from api.jobs import queue
from api.settings import Settings

log = logging.getLogger(__name__)

# One pass of the background worker deletes for about this long, then lets jobs run.
PASS_BUDGET_SECONDS = 2.0

# The job kind of the periodic breach-risk check (its handler: api.assignment.breach).
BREACH_RISK_JOB = "tickets.breach_risk"

# What a worker calls: given "now", run a pass; True when nothing is left to do.
Housekeeping = Callable[[datetime], bool]
# Another use case's part of a pass (wired in api.wiring): returns how much work it started.
Pass = Callable[[sessionmaker[Session], Settings, datetime], int]


@dataclass(frozen=True, slots=True)
class Report:
    """One run: the expired idempotency records deleted, and whether none is left."""

    idempotency_records: int
    complete: bool
    idempotency_before: datetime
    breach_checks_queued: int = 0
    other_work: int = 0  # what the other passes started (e.g. calendar syncs queued)


_CHECKABLE = (
    Ticket.status.in_((TicketStatus.NEW, TicketStatus.OPEN)),
    Ticket.owner_agent_id.is_not(None),
    or_(Ticket.first_response_due.is_not(None), Ticket.resolution_due.is_not(None)),
)


def has_breach_work(session: Session, tenant_id: str) -> bool:
    """Whether the tenant has a ticket a breach-risk check looks at: active (new or open),
    held by an agent, with a due date."""
    found = session.scalar(
        select(Ticket.id).where(Ticket.tenant_id == tenant_id, *_CHECKABLE).limit(1)
    )
    return found is not None


def _pending_breach_check(session: Session, tenant_id: str) -> bool:
    found = session.scalar(
        select(Job.id)
        .where(
            Job.tenant_id == tenant_id,
            Job.kind == BREACH_RISK_JOB,
            Job.status.in_((JobStatus.QUEUED, JobStatus.RUNNING)),
        )
        .limit(1)
    )
    return found is not None


def schedule_breach_check(
    session: Session, tenant_id: str, *, now: datetime, every_seconds: float, running: bool
) -> bool:
    """Queue the tenant's next breach-risk check ``every_seconds`` from ``now`` (in the
    caller's transaction) when it has work to check and no other run is queued (``running``:
    the caller is a run, so a running one is itself); True when one was queued."""
    if every_seconds <= 0 or not has_breach_work(session, tenant_id):
        return False
    if running:
        queued = session.scalar(
            select(Job.id)
            .where(
                Job.tenant_id == tenant_id,
                Job.kind == BREACH_RISK_JOB,
                Job.status == JobStatus.QUEUED,
            )
            .limit(1)
        )
        if queued is not None:
            return False
    elif _pending_breach_check(session, tenant_id):
        return False
    queue.enqueue(
        session=session,
        tenant_id=tenant_id,
        kind=BREACH_RISK_JOB,
        payload={"every_seconds": every_seconds},
        now=now,
        run_after=now + timedelta(seconds=every_seconds) if running else now,
        max_attempts=1,
    )
    return True


def queue_breach_checks(
    session_factory: sessionmaker[Session], *, now: datetime, every_seconds: float
) -> int:
    """Start a breach-risk check, due now, for every tenant with work to check and no run
    queued or running (one transaction); returns how many were queued."""
    if every_seconds <= 0:
        return 0
    with session_factory() as session:
        tenants = session.scalars(select(Ticket.tenant_id).where(*_CHECKABLE).distinct()).all()
        queued = sum(
            schedule_breach_check(
                session, tenant_id, now=now, every_seconds=every_seconds, running=False
            )
            for tenant_id in sorted(tenants)
        )
        session.commit()
    if queued:
        log.info("housekeeping: queued %d breach-risk check(s)", queued)
    return queued


def run(
    session_factory: sessionmaker[Session],
    settings: Settings,
    *,
    now: datetime,
    time_budget: float | None = None,
    batch_size: int | None = None,
    passes: Sequence[Pass] = (),
) -> Report:
    """Delete what expired by ``now``; stop after ``time_budget`` seconds (None: when done);
    then start the periodic work (breach checks, and each of ``passes``)."""
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
    checks = queue_breach_checks(
        session_factory, now=now, every_seconds=settings.breach_risk_interval_seconds
    )
    other = sum(one(session_factory, settings, now) for one in passes)
    return Report(
        idempotency_records=purged.deleted,
        complete=purged.complete,
        idempotency_before=before,
        breach_checks_queued=checks,
        other_work=other,
    )


def for_worker(
    session_factory: sessionmaker[Session], settings: Settings, passes: Sequence[Pass] = ()
) -> Housekeeping | None:
    """The pass a job worker runs periodically, or None when the settings turn it off."""
    if settings.housekeeping_interval_seconds <= 0:
        return None

    def one_pass(now: datetime) -> bool:
        return run(
            session_factory, settings, now=now, time_budget=PASS_BUDGET_SECONDS, passes=passes
        ).complete

    return one_pass
