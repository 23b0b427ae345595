"""Write-back: the bound agent's calendar shows each of their calls, and nothing else of ours.

When a call's bound agent or time changes or the call is cancelled (bind, just-in-time binding,
rebalance re-binding, at risk, cancel, a ticket done, a reschedule through a link), the booking
transaction calls :func:`queue_writeback`: an outbox entry (a ``calendar.writeback`` job) in that
same transaction. No provider is ever called inside a booking transaction.

The job (:func:`run_writeback`) *reconciles* each call it names with what it wrote before, as
recorded in ``calendar_writes`` (:class:`~api.db.models.CalendarWrite`):

- wanted: one neutral event per connection of the bound agent that has write-back on
  (connection ``settings.writeback: true``; ``settings.writeback_calendar``, default the first
  calendar of the connection) and is active, while the call is booked and bound;
- an event written on a connection no longer wanted (rebound to another agent, unbound because
  at risk, cancelled, write-back turned off) is deleted; one whose times differ is moved
  (``update_event``); a missing one is written (``write_event``, idempotent per call at the
  provider); an event already as wanted is left alone. Completed and no-show calls are left as
  they are: the time was spent.

Each provider change is recorded in its own transaction right after the provider answered, so a
retry (the job queue's backoff) redoes only what is missing. A connector that cannot write
(:class:`~calendars.base.Unsupported`: an ICS feed) is skipped; a dead credential
(:class:`~calendars.base.CredentialError`) marks the connection failed with the reason (the agent
then fails closed until a good sync) and is skipped; other provider errors fail the attempt
after every other call and connection was done, and the job is retried.

The event's title names the ticket only (``Customer call — ticket #ZD-1``); the customer's name
and the ticket's requester go in only where the tenant's policy ``calendar_events.
customer_details`` allows it.

The sync must never read our own events back as busy time that disrupts the very call they
show: connectors mark them (``BusyEvent.own``), and :func:`own_keys` / :func:`foreign` give the
sync's merge a second guard, by the keys recorded here.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from api.calendar_sync import connectors
from api.db.jobs import Job, JobStatus
from api.db.models import CalendarConnection, CalendarWrite, Call, CallLink, CallStatus, Ticket
from api.errors import FieldError
from api.jobs import queue
from api.jobs.worker import Handler, JobContext
from api.policies import service as policies
from api.settings import Settings
from calendars.base import (
    BusyEvent,
    CalendarError,
    CallEvent,
    Connector,
    CredentialError,
    Unsupported,
)

log = logging.getLogger(__name__)

WRITEBACK_JOB = "calendar.writeback"
# Provider outages outlast a few quick retries: 5 s doubling to 300 s gives about ten minutes.
WRITEBACK_ATTEMPTS = 8
TITLE = "Customer call — ticket #{ticket}"


# --------------------------------------------------------------------------- the outbox


def queue_writeback(session: Session, tenant_id: str, call_id: str, now: datetime) -> Job | None:
    """In the caller's (booking) transaction: make the call's calendar events follow it.

    Nothing is queued for a tenant without calendar connections (one indexed read). Requests
    gather in the tenant's queued write-back job that has not run yet, so a rebalance binding
    fifty calls queues one job; a job being retried keeps its backoff and new calls go to a
    fresh one."""
    has_connection = session.scalar(
        select(CalendarConnection.id).where(CalendarConnection.tenant_id == tenant_id).limit(1)
    )
    if has_connection is None:
        return None
    waiting = session.scalars(
        select(Job)
        .where(
            Job.tenant_id == tenant_id,
            Job.kind == WRITEBACK_JOB,
            Job.status == JobStatus.QUEUED,
            Job.attempts == 0,
        )
        .order_by(Job.created_at, Job.id)
        .limit(1)
        # Locked, so a worker cannot claim it between this read and the commit (its payload
        # would be read without this call); a job claimed meanwhile no longer matches.
        .with_for_update()
    ).first()
    if waiting is not None:
        calls = list(waiting.payload.get("calls", []))
        if call_id not in calls:
            waiting.payload = {**waiting.payload, "calls": [*calls, call_id]}
            waiting.updated_at = now
        return waiting
    return queue.enqueue(
        session=session,
        tenant_id=tenant_id,
        kind=WRITEBACK_JOB,
        payload={"calls": [call_id]},
        now=now,
        max_attempts=WRITEBACK_ATTEMPTS,
    )


def queue_for_connection(
    session: Session, tenant_id: str, connection_id: str, now: datetime
) -> Job | None:
    """In the caller's transaction: reconcile every call the connection concerns -- what was
    written on it, and the calls bound to its agent that are not over. For when what it wants
    changed without a call changing: write-back turned on or off, another calendar chosen, the
    connection resumed or repaired (a good sync after a failure), or about to be deleted.
    None when there is nothing to reconcile."""
    row = session.get(CalendarConnection, (tenant_id, connection_id))
    calls = set(
        session.scalars(
            select(CalendarWrite.call_id).where(
                CalendarWrite.tenant_id == tenant_id,
                CalendarWrite.connection_id == connection_id,
            )
        )
    )
    if row is not None:
        calls |= set(
            session.scalars(
                select(Call.id).where(
                    Call.tenant_id == tenant_id,
                    Call.bound_agent == row.agent_id,
                    Call.status == CallStatus.BOOKED,
                    Call.end_at > now,
                )
            )
        )
    job = None
    for call_id in sorted(calls):
        job = queue_writeback(session, tenant_id, call_id, now)
    return job


# --------------------------------------------------------------------------- the sync's guard


def own_keys(session: Session, tenant_id: str, connection_id: str) -> set[str]:
    """The event keys the service wrote on the connection (any calendar): the sync skips them,
    whatever the provider says of their ``own`` marker."""
    return set(
        session.scalars(
            select(CalendarWrite.event_key).where(
                CalendarWrite.tenant_id == tenant_id,
                CalendarWrite.connection_id == connection_id,
            )
        )
    )


def foreign(events: Iterable[BusyEvent], keys: set[str]) -> list[BusyEvent]:
    """``events`` without the service's own (marked ``own`` by the connector, or a key in
    ``keys`` from :func:`own_keys`): what may become busy time."""
    return [e for e in events if e.own is None and e.key not in keys]


# --------------------------------------------------------------------------- settings


def enabled(row: CalendarConnection) -> bool:
    return row.settings.get("writeback") is True


def target_calendar(row: CalendarConnection) -> str | None:
    """The calendar the connection's call events go to: ``settings.writeback_calendar``, else
    the first calendar it reads (the agent's primary), else None (nothing to write to)."""
    chosen = row.settings.get("writeback_calendar")
    if isinstance(chosen, str) and chosen:
        return chosen
    return row.calendars[0] if row.calendars else None


def settings_problems(
    provider: str, settings: Mapping[str, Any], calendars: Sequence[str]
) -> list[FieldError]:
    """What is wrong with a connection's write-back settings (for the admin API's 422)."""
    found: list[FieldError] = []
    writeback = settings.get("writeback", False)
    if not isinstance(writeback, bool):
        found.append(FieldError("settings.writeback", "must be true or false"))
    elif writeback and provider == "ics":
        found.append(FieldError("settings.writeback", "an ICS feed is read-only: it cannot be on"))
    chosen = settings.get("writeback_calendar")
    if chosen is not None and (not isinstance(chosen, str) or not chosen.strip()):
        found.append(
            FieldError("settings.writeback_calendar", "must be a calendar id (a non-empty text)")
        )
    if writeback is True and chosen is None and not calendars:
        found.append(
            FieldError(
                "settings.writeback_calendar",
                "name the calendar to write calls to (the connection reads no calendar)",
            )
        )
    return found


# --------------------------------------------------------------------------- the job


@dataclass(frozen=True, slots=True)
class _Wanted:
    connection: CalendarConnection
    calendar: str
    event: CallEvent


@dataclass(frozen=True, slots=True)
class _Plan:
    """What one call needs: the events wanted per connection, what was written per connection,
    and the connections involved (for their connectors)."""

    wanted: dict[str, _Wanted]
    written: dict[str, CalendarWrite]
    connections: dict[str, CalendarConnection]
    leave: bool  # completed or no-show: the calendar keeps what it shows


def call_event(session: Session, call: Call) -> CallEvent:
    """The neutral event of ``call``, as the tenant's policy allows."""
    rules = policies.load(session, call.tenant_id)
    title = TITLE.format(ticket=call.ticket_id)
    body: str | None = None
    if rules.calendar_events.customer_details:
        ticket = session.get(Ticket, (call.tenant_id, call.ticket_id))
        link = session.get(CallLink, (call.tenant_id, call.link_id)) if call.link_id else None
        name = link.display_name if link is not None else None
        requester = ticket.requester if ticket is not None else None
        if name:
            title = f"{title} with {name}"
        lines = [
            f"Customer: {name}" if name else None,
            f"Requester: {requester}" if requester else None,
        ]
        body = "\n".join(line for line in lines if line) or None
    join_url = None
    template = rules.call_room.template_for(call.capability_id)
    if template is not None:
        join_url = template.format(
            booking_id=call.id,
            ticket_id=call.ticket_id,
            capability_id=call.capability_id,
            link_id=call.link_id or "",
        )
    return CallEvent(
        call_id=call.id,
        start=call.start_at,
        end=call.end_at,
        title=title,
        body=body,
        join_url=join_url,
    )


def _plan(session: Session, tenant_id: str, call_id: str) -> _Plan:
    call = session.get(Call, (tenant_id, call_id))
    written = {
        w.connection_id: w
        for w in session.scalars(
            select(CalendarWrite).where(
                CalendarWrite.tenant_id == tenant_id, CalendarWrite.call_id == call_id
            )
        )
    }
    connections = {
        c.id: c
        for c in session.scalars(
            select(CalendarConnection).where(
                CalendarConnection.tenant_id == tenant_id,
                CalendarConnection.id.in_(list(written)),
            )
        )
    }
    if call is not None and call.status in (CallStatus.COMPLETED, CallStatus.NO_SHOW):
        return _Plan({}, written, connections, leave=True)
    wanted: dict[str, _Wanted] = {}
    if call is not None and call.status is CallStatus.BOOKED and call.bound_agent is not None:
        event = call_event(session, call)
        for row in session.scalars(
            select(CalendarConnection).where(
                CalendarConnection.tenant_id == tenant_id,
                CalendarConnection.agent_id == call.bound_agent,
                CalendarConnection.status == "active",
            )
        ):
            calendar = target_calendar(row)
            if enabled(row) and calendar is not None and row.provider != "ics":
                wanted[row.id] = _Wanted(row, calendar, event)
                connections[row.id] = row
    return _Plan(wanted, written, connections, leave=False)


@dataclass
class _Outcome:
    written: int = 0
    moved: int = 0
    deleted: int = 0
    skipped: int = 0
    failed: int = 0
    dead: set[str] | None = None
    errors: list[str] | None = None

    def error(self, text: str) -> None:
        self.errors = [*(self.errors or []), text]


def _record_dead(
    factory: sessionmaker[Session], tenant_id: str, connection_id: str, reason: str, now: datetime
) -> None:
    """A dead credential found while writing: the connection is failed (its agent fails closed
    until someone fixes it and a sync succeeds), with the reason."""
    with factory() as session:
        row = session.get(CalendarConnection, (tenant_id, connection_id))
        if row is not None and row.status != "paused":
            row.status = "failed"
            row.failure = f"write-back: {reason}"
            row.last_error = row.failure
            row.last_error_at = now
            row.consecutive_failures = (row.consecutive_failures or 0) + 1
            row.updated_at = now
        session.commit()


def _reconcile(
    ctx: JobContext, settings: Settings, call_id: str, out: _Outcome, cache: dict[str, Connector]
) -> None:
    tenant_id = ctx.tenant_id
    factory = ctx.session_factory
    with factory() as session:
        plan = _plan(session, tenant_id, call_id)
        session.expunge_all()
    if plan.leave:
        return

    def connector(connection_id: str) -> Connector:
        if connection_id not in cache:
            cache[connection_id] = connectors.connector_for(
                plan.connections[connection_id], settings
            )
        return cache[connection_id]

    def attempt(connection_id: str, what: str, action: Callable[[], None]) -> bool:
        if out.dead is not None and connection_id in out.dead:
            out.skipped += 1
            return False
        try:
            action()
            return True
        except Unsupported:
            out.skipped += 1
        except CredentialError as exc:
            out.dead = {*(out.dead or set()), connection_id}
            _record_dead(factory, tenant_id, connection_id, exc.reason, ctx.now())
            out.skipped += 1
        except CalendarError as exc:
            # The reason is safe to store: connectors never put secrets or contents in it.
            out.failed += 1
            out.error(f"{what} call {call_id} on connection {connection_id}: {exc.reason}")
        return False

    undeleted: set[str] = set()
    # Events no longer wanted where they are: delete them (moved to another agent, unbound,
    # cancelled, write-back turned off, or another calendar chosen).
    for connection_id, w in plan.written.items():
        want = plan.wanted.get(connection_id)
        if want is not None and want.calendar == w.calendar:
            continue
        connection = plan.connections.get(connection_id)
        if connection is None or connection.status != "active":
            continue  # paused or failed: nothing reaches it now; the row stays for later

        def drop(w: CalendarWrite = w) -> None:
            connector(w.connection_id).delete_event(w.calendar, w.event_key)
            with factory() as session:
                session.execute(
                    delete(CalendarWrite).where(
                        CalendarWrite.tenant_id == tenant_id,
                        CalendarWrite.call_id == call_id,
                        CalendarWrite.connection_id == w.connection_id,
                    )
                )
                session.commit()

        if attempt(connection_id, "deleting the event of", drop):
            out.deleted += 1
        else:
            undeleted.add(connection_id)

    for connection_id, want in plan.wanted.items():
        if connection_id in undeleted:
            continue  # its old event is still recorded: write once that one is gone (retry)
        before = plan.written.get(connection_id)
        if before is not None and before.calendar != want.calendar:
            before = None  # deleted above: written afresh in the new calendar
        if (
            before is not None
            and before.start_at == want.event.start
            and before.end_at == want.event.end
        ):
            continue  # already as wanted: a retry writes nothing

        def put(want: _Wanted = want, before: CalendarWrite | None = before) -> None:
            c = connector(want.connection.id)
            if before is not None:
                key = c.update_event(want.calendar, before.event_key, want.event)
            else:
                key = c.write_event(want.calendar, want.event)
            _save(factory, tenant_id, call_id, want, key, ctx.now())

        if attempt(connection_id, "writing the event of", put):
            if before is not None:
                out.moved += 1
            else:
                out.written += 1


def _save(
    factory: sessionmaker[Session],
    tenant_id: str,
    call_id: str,
    want: _Wanted,
    key: str,
    now: datetime,
) -> None:
    with factory() as session:
        row = session.get(CalendarWrite, (tenant_id, call_id, want.connection.id))
        if row is None:
            row = CalendarWrite(
                tenant_id=tenant_id, call_id=call_id, connection_id=want.connection.id
            )
            session.add(row)
        row.calendar = want.calendar
        row.event_key = key
        row.start_at = want.event.start
        row.end_at = want.event.end
        row.written_at = now
        session.commit()


def run_writeback(ctx: JobContext, settings: Settings) -> dict[str, Any]:
    """The ``calendar.writeback`` job: reconcile each call of the payload (see the module)."""
    calls = [c for c in ctx.payload.get("calls", []) if isinstance(c, str)]
    out = _Outcome()
    cache: dict[str, Connector] = {}
    for call_id in calls:
        _reconcile(ctx, settings, call_id, out, cache)
    result = {
        "calls": len(calls),
        "written": out.written,
        "moved": out.moved,
        "deleted": out.deleted,
        "skipped": out.skipped,
        "failed": out.failed,
    }
    if out.errors:
        # Retried with the queue's backoff; what was done is recorded and is not redone.
        raise WritebackFailed("; ".join(out.errors[:5]))
    return result


class WritebackFailed(Exception):
    """Some provider changes failed (not a dead credential): the job is tried again."""


def handler(settings: Settings) -> Handler:
    """The job's handler, given the service's settings (to decrypt credentials)."""

    def run(ctx: JobContext) -> dict[str, Any]:
        return run_writeback(ctx, settings)

    return run
