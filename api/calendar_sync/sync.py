"""The ``calendar.sync`` job: mirror one connection's busy time into the agent's busy intervals.

One run, three steps, and only the last touches the database for writing:

1. **Read** the connection (a short read, no lock). A paused or deleted one is skipped (and its
   poll chain ends: resuming queues a sync).
2. **Fetch**, outside any transaction and outside the tenant lock: for each calendar
   ``connector.sync(calendar, cursor, start, end)`` -- incrementally from its stored cursor, or
   a full listing of the window ``[now - 1 day, now + horizon + 1 day)`` when it has no
   cursor, a full sync was asked, or the stored window ends before ``now + horizon`` (so the
   mirror always covers the whole horizon, and a calendar is re-listed about once a day as the
   window slides). The horizon is ``calendar_horizon_days``, or the tenant's longest booking
   horizon when that is longer (:func:`horizon_days`). An expired cursor (Google's 410, an
   expired delta link) is dropped and that calendar listed fully at once.
3. **Merge**, in one short transaction under the tenant lock (:func:`merge`): deltas are
   *merged* into the busy intervals whose ``source`` is ``calendar:<connection id>``, never
   replacing the agent's busy time wholesale -- an incremental round that returns nothing frees
   nothing; manual busy time and other connections' rows are never read for writing.

A broken credential marks the connection ``failed`` (the agent fails closed:
:mod:`api.calendar_sync.health`) and sends ``calendar.sync_failed`` once; any other provider
failure records the error and leaves the mirror as it was, and once the mirror is older than
``calendar_max_staleness_seconds`` sends ``calendar.sync_failed`` (reason ``stale``) once. The
next good sync clears either and sends ``calendar.sync_recovered``. A connection whose failure
was announced carries it in ``failure`` (status ``failed`` for a credential, ``active`` for a
stale mirror): that is how "once per transition" is remembered.

Each run queues the next poll ``calendar_poll_seconds`` later (:func:`jobs.queue_sync` keeps
one waiting per connection); a housekeeping pass (:func:`housekeeping_pass`) restarts the
chain of any connection that has none and announces mirrors that went stale meanwhile.

Busy rows: id ``cb~<h(connection)>~<h(calendar)>~<h(event key)>`` (short hashes: deterministic,
so re-running a merge changes nothing, and a calendar's rows share a prefix; ``~`` is outside
the API's id alphabet, so no manual interval can collide with one, nor can the busy API edit
one), ``source`` ``calendar:<connection id>``, ``synced_at`` the sync that wrote it, times
clipped to the window. Only (agent, start, end, source, synced_at) is stored: no key, no title.

Disruption: a merge that adds busy time changes the tenant's cover; :mod:`api.org_version`
notices at commit and the booking engine's re-check (``bookings.bind``,
:func:`api.bookings.service.rebalance`) is queued in the same transaction, due at once -- the
same path, rebinding, at-risk marking and webhooks as a shift change.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal, Protocol

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from api import events
from api.calendar_sync import connectors, jobs, writeback
from api.db.jobs import Job, JobStatus
from api.db.locks import lock_tenant
from api.db.models import BusyInterval, CalendarConnection, Capability
from api.jobs.worker import Handler, JobContext
from api.settings import Settings
from calendars.base import (
    BusyEvent,
    CalendarError,
    Connector,
    CredentialError,
    CursorExpired,
    Delta,
)

log = logging.getLogger(__name__)

SOURCE_PREFIX = "calendar:"
ROW_PREFIX = "cb~"
# Busy time this far in the past is still mirrored (a call under way, wrap-up).
PAST = timedelta(days=1)
# The window reaches this far beyond the horizon, so it is re-listed about once a day.
SLACK = timedelta(days=1)

Outcome = Literal["ok", "credential_error", "provider_error", "skipped", "conflict"]
FailureReason = Literal["credential", "stale"]


class Recorder(Protocol):
    """Where a run's counts go (:class:`api.calendar_sync.metrics.SyncMetrics`)."""

    def record(self, provider: str, outcome: str, requests: int, errors: Iterable[str]) -> None: ...


# --------------------------------------------------------------------------- ids and windows


def source_of(connection_id: str) -> str:
    """The ``source`` of a connection's busy rows."""
    return SOURCE_PREFIX + connection_id


def _h(value: str, size: int) -> str:
    return hashlib.blake2b(value.encode(), digest_size=size).hexdigest()


def calendar_prefix(connection_id: str, calendar: str) -> str:
    """The id prefix every busy row of ``calendar`` (of this connection) has."""
    return f"{ROW_PREFIX}{_h(connection_id, 5)}~{_h(calendar, 5)}~"


def row_id(connection_id: str, calendar: str, key: str) -> str:
    """The busy row of the event ``key`` of ``calendar`` (deterministic: merges are idempotent)."""
    return calendar_prefix(connection_id, calendar) + _h(key, 10)


def window(now: datetime, settings: Settings, days: int | None = None) -> tuple[datetime, datetime]:
    """The span a full listing covers at ``now``: ``days`` ahead (by default
    ``calendar_horizon_days``; a sync passes :func:`horizon_days`)."""
    ahead = settings.calendar_horizon_days if days is None else days
    return now - PAST, now + timedelta(days=ahead) + SLACK


def horizon_days(session: Session, tenant_id: str, settings: Settings) -> int:
    """How many days ahead the tenant's mirrors must reach: ``calendar_horizon_days``, or the
    longest booking horizon of its capabilities when that is longer -- a slot beyond the mirror
    would otherwise count on a calendar nobody read (fail open)."""
    longest = session.scalar(
        select(func.max(Capability.horizon_days)).where(Capability.tenant_id == tenant_id)
    )
    return max(settings.calendar_horizon_days, int(longest or 0))


def _when(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        found = datetime.fromisoformat(value)
    except ValueError:
        return None
    return found if found.tzinfo is not None else None


@dataclass(frozen=True, slots=True)
class Plan:
    """What to ask of one calendar: from ``cursor`` (None: a full listing) over the window."""

    calendar: str
    cursor: str | None
    start: datetime
    end: datetime


def plan(
    calendars: Sequence[str],
    cursors: Mapping[str, Any],
    *,
    now: datetime,
    settings: Settings,
    full: bool,
    days: int | None = None,
) -> list[Plan]:
    """Each calendar's request: incremental from its stored cursor over its stored window, or a
    full listing of the current window (no cursor, ``full`` asked, or the stored window no
    longer reaches ``now + days``; ``days``: see :func:`window`)."""
    ahead = settings.calendar_horizon_days if days is None else days
    start, end = window(now, settings, ahead)
    needed = now + timedelta(days=ahead)
    out: list[Plan] = []
    for calendar in calendars:
        stored = cursors.get(calendar)
        stored = stored if isinstance(stored, Mapping) else {}
        cursor = stored.get("cursor")
        s, e = _when(stored.get("start")), _when(stored.get("end"))
        if full or not isinstance(cursor, str) or s is None or e is None or e < needed:
            out.append(Plan(calendar, None, start, end))
        else:
            out.append(Plan(calendar, cursor, s, e))
    return out


# --------------------------------------------------------------------------- fetching


@dataclass(frozen=True, slots=True)
class Fetched:
    """One calendar's answer and the window it is about."""

    delta: Delta
    start: datetime
    end: datetime


@dataclass
class Fetch:
    """What the network step brought back: every calendar's delta, or the failure."""

    results: list[Fetched] = field(default_factory=list)
    requests: int = 0
    errors: list[str] = field(default_factory=list)
    failure: CalendarError | None = None


def fetch(
    connector: Connector,
    plans: Sequence[Plan],
    *,
    now: datetime,
    settings: Settings,
    days: int | None = None,
) -> Fetch:
    """Ask the provider for each plan (no database here). A failure stops the round: nothing
    of it is merged, so the mirror keeps what it had."""
    out = Fetch()
    for p in plans:
        try:
            try:
                delta = connector.sync(p.calendar, p.cursor, p.start, p.end)
                start, end = p.start, p.end
            except CursorExpired:
                out.requests += 1
                out.errors.append("cursor_expired")
                start, end = window(now, settings, days)
                delta = connector.sync(p.calendar, None, start, end)
        except CalendarError as exc:
            out.requests += 1
            out.errors.append("credential" if isinstance(exc, CredentialError) else "provider")
            out.failure = exc
            return out
        except Exception as exc:
            # A connector is meant to turn every failure into a CalendarError; one that did not
            # must not stop the poll chain. Its message may hold a URL with a secret in it (an
            # iCal address): only its type is kept and logged.
            out.requests += 1
            out.errors.append("unexpected")
            log.error("calendar sync: the connector raised %s", type(exc).__name__)
            out.failure = CalendarError(f"unexpected {type(exc).__name__} from the provider")
            return out
        out.requests += delta.requests
        if p.cursor is None and not delta.full:
            delta = Delta(delta.calendar, delta.upserts, (), delta.cursor, True, delta.requests)
        out.results.append(Fetched(delta, start, end))
    return out


# --------------------------------------------------------------------------- the merge


@dataclass(frozen=True, slots=True)
class MergeStats:
    inserted: int
    updated: int
    deleted: int
    busy_count: int


def _clip(event: BusyEvent, start: datetime, end: datetime) -> tuple[datetime, datetime] | None:
    """The event's busy span inside ``[start, end)``, or None when it is not busy time there
    (transparent, the service's own call, or outside the window)."""
    if not event.busy or event.own is not None:
        return None
    s, e = max(event.start, start), min(event.end, end)
    return (s, e) if s < e else None


def quiet(row: CalendarConnection, fetched: Sequence[Fetched]) -> bool:
    """Whether merging ``fetched`` cannot change the connection's busy rows, so the merge need
    not read them: every calendar it reads answered an incremental delta with nothing in it,
    and nothing touched the connection since its last good merge (``updated_at`` not after
    ``last_success_at``: an edit of its calendars, a reset, a failed round all move
    ``updated_at``), so that merge already dropped the rows of any calendar it no longer reads.
    Most rounds of a poll are quiet (485 of 500 connections in benchmarks/calendars.py)."""
    if row.last_success_at is None or row.updated_at > row.last_success_at:
        return False
    merged = {item.delta.calendar for item in fetched}
    if merged != set(row.calendars) or set(row.cursors or {}) != merged:
        return False
    return all(
        not item.delta.full and not item.delta.upserts and not item.delta.removed
        for item in fetched
    )


def merge(
    session: Session, row: CalendarConnection, fetched: Sequence[Fetched], now: datetime
) -> MergeStats:
    """Merge the deltas of ``fetched`` into the connection's busy rows (in the caller's
    transaction, which holds the tenant lock). Writes only rows that change; a :func:`quiet`
    round reads none of them either."""
    if quiet(row, fetched):
        return MergeStats(0, 0, 0, row.busy_count)
    source = source_of(row.id)
    written = writeback.own_keys(session, row.tenant_id, row.id)
    existing = {
        r.id: r
        for r in session.scalars(
            select(BusyInterval).where(
                BusyInterval.tenant_id == row.tenant_id, BusyInterval.source == source
            )
        )
    }
    wanted: dict[str, tuple[datetime, datetime]] = {}
    gone: set[str] = set()
    # Rows of a calendar the connection no longer reads.
    kept = tuple(calendar_prefix(row.id, c) for c in row.calendars)
    gone.update(rid for rid in existing if not rid.startswith(kept))
    for item in fetched:
        delta = item.delta
        prefix = calendar_prefix(row.id, delta.calendar)
        mine: dict[str, tuple[datetime, datetime] | None] = {}
        for key in delta.removed:
            mine[row_id(row.id, delta.calendar, key)] = None
        # After the removals: a key both removed and upserted stays busy (fail closed).
        for event in delta.upserts:
            # The service's own event (write-back) is the call itself, never new busy time:
            # the connector marks it (own), and what write-back recorded is the second guard.
            own = event.key in written
            span = None if own else _clip(event, item.start, item.end)
            mine[row_id(row.id, delta.calendar, event.key)] = span
        if delta.full:
            gone.update(rid for rid in existing if rid.startswith(prefix) and rid not in mine)
        for rid, span in mine.items():
            if span is None:
                gone.add(rid)
            else:
                wanted[rid] = span
    gone -= wanted.keys()  # a calendar listed twice: busy wins (fail closed)
    inserted = updated = 0
    deleted = len(gone & existing.keys())
    for rid in sorted(gone & existing.keys()):
        session.delete(existing[rid])
    for rid, (start, end) in sorted(wanted.items()):
        found = existing.get(rid)
        if found is None:
            session.add(
                BusyInterval(
                    tenant_id=row.tenant_id,
                    id=rid,
                    agent_id=row.agent_id,
                    start_at=start,
                    end_at=end,
                    source=source,
                    synced_at=now,
                    created_at=now,
                    updated_at=now,
                )
            )
            inserted += 1
        elif (found.agent_id, found.start_at, found.end_at) != (row.agent_id, start, end):
            found.agent_id, found.start_at, found.end_at = row.agent_id, start, end
            found.synced_at = found.updated_at = now
            updated += 1
    kept_rows = (existing.keys() - gone) | wanted.keys()
    session.flush()
    return MergeStats(inserted, updated, deleted, len(kept_rows))


def remove_mirror(session: Session, tenant_id: str, connection_id: str) -> int:
    """Delete a connection's busy rows (in the caller's transaction; for deleting a
    connection). Returns how many."""
    rows = session.scalars(
        select(BusyInterval).where(
            BusyInterval.tenant_id == tenant_id,
            BusyInterval.source == source_of(connection_id),
        )
    ).all()
    for r in rows:
        session.delete(r)
    session.flush()
    return len(rows)


# --------------------------------------------------------------------------- health transitions


def _notice(row: CalendarConnection) -> dict[str, Any]:
    return {"connection_id": row.id, "agent_id": row.agent_id, "provider": row.provider}


def announced(row: CalendarConnection) -> FailureReason | None:
    """The failure already announced for ``row`` (``calendar.sync_failed`` sent), if any."""
    if row.status == "failed":
        return "credential"
    if row.failure is not None:
        return "stale"
    return None


def stale_reason(row: CalendarConnection, now: datetime, max_staleness: timedelta) -> str | None:
    """Why ``row``'s mirror is stale now (None: it is not): no good sync for longer than
    ``max_staleness`` -- counted from its creation when it never had one."""
    if row.status == "paused":
        return None
    since = row.last_success_at or row.created_at
    age = now - since
    if age <= max_staleness:
        return None
    minutes = int(age.total_seconds() // 60)
    if row.last_success_at is None:
        return f"stale: no good sync since the connection was made {minutes} min ago"
    return f"stale: last good sync {minutes} min ago"


def _fail(
    session: Session, row: CalendarConnection, reason: FailureReason, detail: str, now: datetime
) -> None:
    events.emit(
        session=session,
        tenant_id=row.tenant_id,
        type=events.EventType.CALENDAR_SYNC_FAILED,
        data={
            **_notice(row),
            "reason": reason,
            "detail": detail,
            "last_success_at": row.last_success_at,
        },
        now=now,
    )
    log.warning(
        "calendar connection %s (%s) of tenant %s: sync failed (%s)",
        row.id,
        row.provider,
        row.tenant_id,
        reason,
    )


def mark_stale(
    session: Session, row: CalendarConnection, now: datetime, settings: Settings
) -> bool:
    """Announce ``row``'s stale mirror once: ``failure`` set, ``calendar.sync_failed`` (reason
    ``stale``) sent. True when this call announced it."""
    if announced(row) is not None:
        return False
    reason = stale_reason(row, now, timedelta(seconds=settings.calendar_max_staleness_seconds))
    if reason is None:
        return False
    row.failure = reason
    row.updated_at = now
    _fail(session, row, "stale", reason, now)
    return True


def _succeeded(session: Session, row: CalendarConnection, now: datetime) -> None:
    was = announced(row)
    row.status = "active"
    row.failure = None
    row.last_success_at = now
    row.consecutive_failures = 0
    if was is not None:
        events.emit(
            session=session,
            tenant_id=row.tenant_id,
            type=events.EventType.CALENDAR_SYNC_RECOVERED,
            data={**_notice(row), "recovered_from": was, "last_success_at": now},
            now=now,
        )
        log.info("calendar connection %s of tenant %s recovered", row.id, row.tenant_id)
        # Calls bound while it was down were not written to its calendar: catch up.
        writeback.queue_for_connection(session, row.tenant_id, row.id, now)


def _dead_credential(session: Session, row: CalendarConnection, reason: str, now: datetime) -> None:
    was = announced(row)
    row.status = "failed"
    row.failure = reason
    if was != "credential":
        _fail(session, row, "credential", reason, now)


# --------------------------------------------------------------------------- one run


@dataclass(frozen=True, slots=True)
class RunResult:
    outcome: Outcome
    requests: int = 0
    errors: tuple[str, ...] = ()
    stats: MergeStats | None = None
    provider: str = "unknown"

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {"outcome": self.outcome, "requests": self.requests}
        if self.stats is not None:
            out |= {
                "inserted": self.stats.inserted,
                "updated": self.stats.updated,
                "deleted": self.stats.deleted,
                "busy_count": self.stats.busy_count,
            }
        if self.errors:
            out["errors"] = list(self.errors)
        return out


Finish = Callable[[Session, dict[str, Any]], None]


def sync_connection(
    *,
    session_factory: sessionmaker[Session],
    settings: Settings,
    tenant_id: str,
    connection_id: str,
    now: datetime,
    full: bool = False,
    finish: Finish | None = None,
) -> RunResult:
    """One sync of the connection (see the module doc). ``finish(session, summary)`` runs in
    the merge's transaction before it commits (the job's completion)."""
    # 1. Read, without a lock; the transaction ends before any network I/O (building a
    # connector may already talk to the provider: msal reads its authority's metadata).
    with session_factory() as session:
        row = session.get(CalendarConnection, (tenant_id, connection_id))
        if row is None or row.status == "paused":
            result = RunResult("skipped", provider=row.provider if row else "unknown")
            if finish is not None:
                finish(session, result.summary())
                session.commit()
            return result
        days = horizon_days(session, tenant_id, settings)
        session.expunge(row)
        session.rollback()
    provider = row.provider
    calendars = list(row.calendars)
    cursors = dict(row.cursors or {})
    plans = plan(calendars, cursors, now=now, settings=settings, full=full, days=days)

    # 2. Fetch: the network, outside any transaction and outside the tenant lock.
    try:
        connector = connectors.connector_for(row, settings)
    except CredentialError as exc:
        got = Fetch(errors=["credential"], failure=exc)
    else:
        got = fetch(connector, plans, now=now, settings=settings, days=days)

    # 3. Merge, in one short transaction under the tenant lock.
    with session_factory() as session:
        lock_tenant(session, tenant_id)
        row = session.get(CalendarConnection, (tenant_id, connection_id))
        if row is None or row.status == "paused":
            result = RunResult("skipped", got.requests, tuple(got.errors), provider=provider)
        elif dict(row.cursors or {}) != cursors or list(row.calendars) != calendars:
            # Another run merged (or the calendars or cursors were reset) while this one
            # fetched: its answer may be older than what is stored. Drop it, and run again.
            jobs.queue_sync(session, tenant_id, connection_id, now=now, full=full)
            result = RunResult("conflict", got.requests, tuple(got.errors), provider=provider)
        else:
            result = _apply(session, row, got, plans, now=now, settings=settings)
            jobs.queue_sync(
                session,
                tenant_id,
                connection_id,
                now=now,
                run_after=now + timedelta(seconds=settings.calendar_poll_seconds),
            )
        if finish is not None:
            finish(session, result.summary())
        session.commit()
    return result


def _apply(
    session: Session,
    row: CalendarConnection,
    got: Fetch,
    plans: Sequence[Plan],
    *,
    now: datetime,
    settings: Settings,
) -> RunResult:
    errors = tuple(got.errors)
    # The merge first: whether the round is quiet depends on the row as the last round left it.
    stats = merge(session, row, got.results, now) if got.failure is None else None
    row.last_attempt_at = now
    row.updated_at = now
    row.requests_total = (row.requests_total or 0) + got.requests
    if got.failure is not None:
        row.last_error = got.failure.reason
        row.last_error_at = now
        row.consecutive_failures = (row.consecutive_failures or 0) + 1
        if isinstance(got.failure, CredentialError):
            _dead_credential(session, row, got.failure.reason, now)
            outcome: Outcome = "credential_error"
        else:
            mark_stale(session, row, now, settings)
            outcome = "provider_error"
        log.info(
            "calendar connection %s of tenant %s: %s", row.id, row.tenant_id, got.failure.reason
        )
        return RunResult(outcome, got.requests, errors, provider=row.provider)
    assert stats is not None
    cursors: dict[str, Any] = {}
    for item in got.results:
        cursors[item.delta.calendar] = {
            "cursor": item.delta.cursor,
            "start": item.start.isoformat(),
            "end": item.end.isoformat(),
        }
    row.cursors = cursors
    row.busy_count = stats.busy_count
    _succeeded(session, row, now)
    return RunResult("ok", got.requests, errors, stats, provider=row.provider)


def make_handler(settings: Settings, recorder: Recorder | None = None) -> Handler:
    """The ``calendar.sync`` job's handler (payload ``connection_id``, ``full``)."""

    def run_sync_job(ctx: JobContext) -> dict[str, Any]:
        result = sync_connection(
            session_factory=ctx.session_factory,
            settings=settings,
            tenant_id=ctx.tenant_id,
            connection_id=str(ctx.payload.get("connection_id", "")),
            now=ctx.now(),
            full=bool(ctx.payload.get("full", False)),
            finish=ctx.complete,
        )
        if recorder is not None:
            recorder.record(result.provider, result.outcome, result.requests, result.errors)
        return result.summary()

    return run_sync_job


# --------------------------------------------------------------------------- housekeeping


def _pending(session: Session) -> set[tuple[str, str]]:
    """(tenant, connection) of every sync queued or running."""
    found: set[tuple[str, str]] = set()
    for tenant_id, payload in session.execute(
        select(Job.tenant_id, Job.payload).where(
            Job.kind == jobs.SYNC_JOB, Job.status.in_((JobStatus.QUEUED, JobStatus.RUNNING))
        )
    ):
        connection = (payload or {}).get("connection_id")
        if isinstance(connection, str):
            found.add((tenant_id, connection))
    return found


def housekeeping_pass(
    session_factory: sessionmaker[Session], settings: Settings, now: datetime
) -> int:
    """Restart the poll chain of every connection not paused that has no sync queued or
    running (a run failed for good, a worker died, the service was down), and announce the
    mirrors that went stale meanwhile (once each). Returns how many syncs it queued."""
    max_staleness = timedelta(seconds=settings.calendar_max_staleness_seconds)
    with session_factory() as session:
        rows = session.execute(
            select(
                CalendarConnection.tenant_id,
                CalendarConnection.id,
                CalendarConnection.status,
                CalendarConnection.failure,
                CalendarConnection.last_success_at,
                CalendarConnection.created_at,
            ).where(CalendarConnection.status != "paused")
        ).all()
        pending = _pending(session)
        session.rollback()
    restart = sorted((r.tenant_id, r.id) for r in rows if (r.tenant_id, r.id) not in pending)
    stale: dict[str, list[str]] = {}
    for r in rows:
        since = r.last_success_at or r.created_at
        if r.status == "active" and r.failure is None and now - since > max_staleness:
            stale.setdefault(r.tenant_id, []).append(r.id)
    if restart:
        with session_factory() as session:
            for tenant_id, connection_id in restart:
                jobs.queue_sync(session, tenant_id, connection_id, now=now)
            session.commit()
        log.info("housekeeping: restarted %d calendar sync chain(s)", len(restart))
    for tenant_id, ids in sorted(stale.items()):
        with session_factory() as session:
            lock_tenant(session, tenant_id)  # a sync merging now must not race the notice
            for connection_id in sorted(ids):
                row = session.get(CalendarConnection, (tenant_id, connection_id))
                if row is not None:
                    mark_stale(session, row, now, settings)
            session.commit()
    return len(restart)
