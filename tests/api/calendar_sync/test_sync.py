"""The calendar sync job (api/calendar_sync/sync.py) against the in-memory provider, on SQLite
and PostgreSQL: full then incremental, merged never replaced, idempotent, an expired cursor
re-listed, a dead credential failing closed (one webhook, the reason on the connection) and
recovering, a provider error keeping the mirror, staleness announced once, the service's own
events and transparent ones not busy, manual busy time and other connections untouched, the poll
chain and its restart by housekeeping, and the series on /metrics."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import datetime, timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from api import org_version
from api.calendar_sync import connectors, health, jobs, sync
from api.db.engine import make_session_factory
from api.db.jobs import Job, JobStatus
from api.db.models import BusyInterval, CalendarConnection
from api.db.webhooks import WebhookEvent, WebhookSubscription
from api.settings import Settings
from calendars.base import Connector, Delta
from tests.api.conftest import T0, As, FakeClock, TenantCtx
from tests.calendars.memory import MemoryProvider

H = timedelta(hours=1)
M = timedelta(minutes=1)
CAL = "cal-1"
EVENTS = ("calendar.sync_failed", "calendar.sync_recovered")


# --------------------------------------------------------------------------- helpers


@pytest.fixture
def provider() -> Iterator[MemoryProvider]:
    memory = MemoryProvider()
    with connectors.use_factory(memory.factory):
        yield memory


def agents(a: As, *ids: str) -> None:
    assert a.post("/v1/teams", json={"id": "support"}).status_code == 201
    for agent in ids or ("ana",):
        r = a.post("/v1/agents", json={"id": agent, "team": "support"})
        assert r.status_code == 201, r.text


def connect(
    db: Engine,
    settings: Settings,
    tenant_id: str,
    *,
    id: str = "conn-1",
    agent: str = "ana",
    calendars: tuple[str, ...] = (CAL,),
    provider: str = "google",
    status: str = "active",
    now: datetime = T0,
) -> str:
    """A connection row, as the admin API would store it (credentials encrypted)."""
    with make_session_factory(db)() as session:
        session.add(
            CalendarConnection(
                tenant_id=tenant_id,
                id=id,
                agent_id=agent,
                provider=provider,
                calendars=list(calendars),
                settings={},
                credentials=connectors.encrypt_credentials(settings, {"refresh_token": "rt"}),
                status=status,
                cursors={},
                channels={},
                consecutive_failures=0,
                busy_count=0,
                requests_total=0,
                created_at=now,
                updated_at=now,
            )
        )
        session.commit()
    return id


def subscribe(db: Engine, tenant_id: str, *types: str) -> None:
    with make_session_factory(db)() as session:
        session.add(
            WebhookSubscription(
                tenant_id=tenant_id,
                id="sub_cal",
                url="https://example.com/hook",
                event_types=list(types or EVENTS),
                description="",
                enabled=True,
                secret_encrypted="x",
                created_at=T0,
                updated_at=T0,
            )
        )
        session.commit()


def outbox(db: Engine, tenant_id: str) -> list[tuple[str, dict[str, Any]]]:
    with make_session_factory(db)() as session:
        rows = session.scalars(
            select(WebhookEvent)
            .where(WebhookEvent.tenant_id == tenant_id)
            .order_by(WebhookEvent.created_at, WebhookEvent.id)
        )
        return [(e.type, e.data) for e in rows]


def mirror(
    db: Engine, tenant_id: str, connection: str = "conn-1"
) -> set[tuple[datetime, datetime]]:
    with make_session_factory(db)() as session:
        rows = session.scalars(
            select(BusyInterval).where(
                BusyInterval.tenant_id == tenant_id,
                BusyInterval.source == sync.source_of(connection),
            )
        )
        return {(r.start_at, r.end_at) for r in rows}


def row(db: Engine, tenant_id: str, connection: str = "conn-1") -> CalendarConnection:
    with make_session_factory(db)() as session:
        found = session.get(CalendarConnection, (tenant_id, connection))
        assert found is not None
        session.expunge(found)
        return found


def run(
    db: Engine,
    settings: Settings,
    tenant_id: str,
    now: datetime,
    *,
    connection: str = "conn-1",
    full: bool = False,
) -> sync.RunResult:
    return sync.sync_connection(
        session_factory=make_session_factory(db),
        settings=settings,
        tenant_id=tenant_id,
        connection_id=connection,
        now=now,
        full=full,
    )


def expected(provider: MemoryProvider, now: datetime, settings: Settings) -> set[tuple[Any, Any]]:
    """The provider's busy time in the window, clipped: what the mirror must hold."""
    start, end = sync.window(now, settings)
    out = set()
    for event in provider.events.get(CAL, {}).values():
        if event.busy and event.own is None and event.end > start and event.start < end:
            out.add((max(event.start, start), min(event.end, end)))
    return out


def org_ver(db: Engine, tenant_id: str) -> int:
    with make_session_factory(db)() as session:
        return org_version.current_version(session, tenant_id)


# --------------------------------------------------------------------------- full, incremental


def test_a_first_sync_lists_fully_then_later_rounds_merge_what_changed(
    a: As, tenant_a: TenantCtx, db: Engine, settings: Settings, provider: MemoryProvider
) -> None:
    agents(a)
    connect(db, settings, tenant_a.id)
    standup = provider.add(CAL, T0 + H, T0 + 2 * H)
    review = provider.add(CAL, T0 + 3 * H, T0 + 4 * H)
    first = run(db, settings, tenant_a.id, T0)
    assert first.outcome == "ok" and first.stats is not None
    assert (first.stats.inserted, first.stats.deleted) == (2, 0)
    assert mirror(db, tenant_a.id) == {(T0 + H, T0 + 2 * H), (T0 + 3 * H, T0 + 4 * H)}
    stored = row(db, tenant_a.id)
    assert stored.status == "active" and stored.last_success_at == T0 and stored.busy_count == 2
    assert stored.cursors[CAL]["cursor"] is not None
    start, end = sync.window(T0, settings)
    assert stored.cursors[CAL]["start"] == start.isoformat()
    assert stored.cursors[CAL]["end"] == end.isoformat()

    # Incremental: one moved, one deleted, one added; only those rows are written.
    provider.add(CAL, T0 + 5 * H, T0 + 6 * H, key=standup)
    provider.remove(CAL, review)
    provider.add(CAL, T0 + 7 * H, T0 + 8 * H)
    later = T0 + timedelta(minutes=5)
    second = run(db, settings, tenant_a.id, later)
    assert second.stats is not None
    assert (second.stats.inserted, second.stats.updated, second.stats.deleted) == (1, 1, 1)
    assert mirror(db, tenant_a.id) == {(T0 + 5 * H, T0 + 6 * H), (T0 + 7 * H, T0 + 8 * H)}
    assert row(db, tenant_a.id).last_success_at == later
    # The stored window is the first one's: an incremental round does not re-list.
    assert row(db, tenant_a.id).cursors[CAL]["start"] == start.isoformat()
    # Only when, whose and where from is stored: no key, no title.
    with make_session_factory(db)() as session:
        for busy in session.scalars(select(BusyInterval)):
            assert busy.source == "calendar:conn-1" and busy.synced_at is not None
            assert standup not in busy.id and busy.id.startswith("cb~")


def test_an_incremental_round_that_returns_nothing_frees_nothing_and_writes_nothing(
    a: As, tenant_a: TenantCtx, db: Engine, settings: Settings, provider: MemoryProvider
) -> None:
    agents(a)
    connect(db, settings, tenant_a.id)
    provider.add(CAL, T0 + H, T0 + 2 * H)
    run(db, settings, tenant_a.id, T0)
    version = org_ver(db, tenant_a.id)
    again = run(db, settings, tenant_a.id, T0 + timedelta(minutes=5))
    assert again.outcome == "ok" and again.stats == sync.MergeStats(0, 0, 0, 1)
    assert mirror(db, tenant_a.id) == {(T0 + H, T0 + 2 * H)}
    # Nothing changed: the organisation's version (every cache's key) did not move, so no
    # booking re-check runs for a quiet poll.
    assert org_ver(db, tenant_a.id) == version


def test_a_full_sync_run_twice_is_idempotent(
    a: As, tenant_a: TenantCtx, db: Engine, settings: Settings, provider: MemoryProvider
) -> None:
    agents(a)
    connect(db, settings, tenant_a.id)
    provider.add(CAL, T0 + H, T0 + 2 * H)
    provider.add(CAL, T0 + H, T0 + 3 * H)  # overlapping events: two rows
    run(db, settings, tenant_a.id, T0, full=True)
    before = mirror(db, tenant_a.id)
    version = org_ver(db, tenant_a.id)
    again = run(db, settings, tenant_a.id, T0, full=True)
    assert again.stats == sync.MergeStats(0, 0, 0, 2)
    assert mirror(db, tenant_a.id) == before == {(T0 + H, T0 + 2 * H), (T0 + H, T0 + 3 * H)}
    assert org_ver(db, tenant_a.id) == version


def test_a_full_sync_deletes_what_the_calendar_no_longer_lists(
    a: As, tenant_a: TenantCtx, db: Engine, settings: Settings, provider: MemoryProvider
) -> None:
    agents(a)
    connect(db, settings, tenant_a.id)
    gone = provider.add(CAL, T0 + H, T0 + 2 * H)
    run(db, settings, tenant_a.id, T0)
    # Removed without the change reaching the log (as when a provider's history is lost).
    del provider.events[CAL][gone]
    run(db, settings, tenant_a.id, T0, full=True)
    assert mirror(db, tenant_a.id) == set()


def test_events_are_clipped_to_the_window_and_the_window_slides_with_a_full_listing(
    a: As, tenant_a: TenantCtx, db: Engine, settings: Settings, provider: MemoryProvider
) -> None:
    agents(a)
    connect(db, settings, tenant_a.id)
    start, end = sync.window(T0, settings)
    provider.add(CAL, start - H, start + H)  # straddles the start
    provider.add(CAL, end + H, end + 2 * H)  # beyond the window
    run(db, settings, tenant_a.id, T0)
    assert mirror(db, tenant_a.id) == {(start, start + H)}
    # Two days on, the stored window ends before now + horizon: re-listed over a new window,
    # which now holds the event that was beyond it (no change to it ever came).
    later = T0 + timedelta(days=2)
    provider.add(CAL, later + H, later + 2 * H)
    run(db, settings, tenant_a.id, later)
    new_end = sync.window(later, settings)[1]
    assert row(db, tenant_a.id).cursors[CAL]["end"] == new_end.isoformat()
    assert mirror(db, tenant_a.id) == {(end + H, end + 2 * H), (later + H, later + 2 * H)}


def test_the_mirror_reaches_as_far_as_the_longest_booking_horizon(
    a: As, tenant_a: TenantCtx, db: Engine, settings: Settings, provider: MemoryProvider
) -> None:
    """A capability booked further ahead than ``calendar_horizon_days`` (60) makes every
    mirror of the tenant reach that far: otherwise a slot 80 days out would count on a calendar
    nobody read (fail open)."""
    agents(a)
    assert a.post("/v1/skills", json={"id": "networking"}).status_code == 201
    far = {"id": "far", "requirements": {"networking": 1}, "call_minutes": 30, "horizon_days": 90}
    assert a.post("/v1/capabilities", json=far).status_code == 201, "capability"
    connect(db, settings, tenant_a.id)
    eighty = T0 + timedelta(days=80)
    provider.add(CAL, eighty, eighty + H)
    run(db, settings, tenant_a.id, T0)
    assert mirror(db, tenant_a.id) == {(eighty, eighty + H)}
    assert row(db, tenant_a.id).cursors[CAL]["end"] == sync.window(T0, settings, 90)[1].isoformat()
    assert sync.window(T0, settings, 90)[1] > sync.window(T0, settings)[1] + timedelta(days=29)


def test_plan_lists_fully_without_a_cursor_when_asked_and_when_the_window_must_slide(
    settings: Settings,
) -> None:
    start, end = sync.window(T0, settings)
    stored = {CAL: {"cursor": "c1", "start": start.isoformat(), "end": end.isoformat()}}
    assert sync.plan([CAL], stored, now=T0, settings=settings, full=False) == [
        sync.Plan(CAL, "c1", start, end)
    ]
    assert sync.plan([CAL], stored, now=T0, settings=settings, full=True)[0].cursor is None
    assert sync.plan([CAL], {}, now=T0, settings=settings, full=False)[0].cursor is None
    assert sync.plan([CAL], {CAL: "junk"}, now=T0, settings=settings, full=False)[0].cursor is None
    # Just under a day later the stored window still reaches the horizon; a day later it does not.
    almost = T0 + sync.SLACK
    assert sync.plan([CAL], stored, now=almost, settings=settings, full=False)[0].cursor == "c1"
    beyond = almost + timedelta(seconds=1)
    slid = sync.plan([CAL], stored, now=beyond, settings=settings, full=False)[0]
    assert slid == sync.Plan(CAL, None, *sync.window(beyond, settings))


# --------------------------------------------------------------------------- what is not busy


def test_the_services_own_events_and_transparent_ones_are_not_busy(
    a: As, tenant_a: TenantCtx, db: Engine, settings: Settings, provider: MemoryProvider
) -> None:
    agents(a)
    connect(db, settings, tenant_a.id)
    provider.add(CAL, T0 + H, T0 + 2 * H)
    provider.add(CAL, T0 + 3 * H, T0 + 4 * H, transparency="transparent")
    provider.add(CAL, T0 + 5 * H, T0 + 6 * H, key="switchboard-call-1", own="call-1")
    run(db, settings, tenant_a.id, T0)
    assert mirror(db, tenant_a.id) == {(T0 + H, T0 + 2 * H)}
    # An event turning transparent (marked "free") is no longer busy time.
    busy = next(k for k, e in provider.events[CAL].items() if e.start == T0 + H)
    provider.add(CAL, T0 + H, T0 + 2 * H, key=busy, transparency="transparent")
    run(db, settings, tenant_a.id, T0 + timedelta(minutes=5))
    assert mirror(db, tenant_a.id) == set()


def test_manual_busy_time_and_other_connections_rows_are_never_touched(
    a: As, tenant_a: TenantCtx, db: Engine, settings: Settings, provider: MemoryProvider
) -> None:
    agents(a, "ana", "ben")
    r = a.post(
        "/v1/busy",
        json={
            "id": "lunch",
            "agent": "ana",
            "start": "2026-03-02T12:00:00Z",
            "end": "2026-03-02T13:00:00Z",
        },
    )
    assert r.status_code == 201, r.text
    connect(db, settings, tenant_a.id)
    connect(db, settings, tenant_a.id, id="conn-2", agent="ben", calendars=("cal-2",))
    provider.add("cal-2", T0 + H, T0 + 2 * H)
    run(db, settings, tenant_a.id, T0, connection="conn-2")
    provider.add(CAL, T0 + 4 * H, T0 + 5 * H)
    run(db, settings, tenant_a.id, T0, connection="conn-1", full=True)
    # conn-1's full listing (of an overlapping time) deleted nothing of anybody else's.
    assert mirror(db, tenant_a.id, "conn-2") == {(T0 + H, T0 + 2 * H)}
    items = a.get("/v1/busy", params={"agent": "ana"}).json()["items"]
    assert {(i["id"], i["source"]) for i in items} >= {("lunch", "manual")}
    assert sorted(i["source"] for i in items) == ["calendar:conn-1", "manual"]


def test_a_calendar_no_longer_read_leaves_the_mirror(
    a: As, tenant_a: TenantCtx, db: Engine, settings: Settings, provider: MemoryProvider
) -> None:
    agents(a)
    connect(db, settings, tenant_a.id, calendars=(CAL, "cal-2"))
    provider.add(CAL, T0 + H, T0 + 2 * H)
    provider.add("cal-2", T0 + 3 * H, T0 + 4 * H)
    run(db, settings, tenant_a.id, T0)
    assert len(mirror(db, tenant_a.id)) == 2
    with make_session_factory(db)() as session:
        stored = session.get(CalendarConnection, (tenant_a.id, "conn-1"))
        assert stored is not None
        stored.calendars = [CAL]
        session.commit()
    run(db, settings, tenant_a.id, T0 + timedelta(minutes=5))
    assert mirror(db, tenant_a.id) == {(T0 + H, T0 + 2 * H)}
    assert set(row(db, tenant_a.id).cursors) == {CAL}


def test_a_quiet_round_reads_no_busy_rows_but_still_advances_the_connection(
    a: As,
    tenant_a: TenantCtx,
    db: Engine,
    settings: Settings,
    provider: MemoryProvider,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    agents(a)
    connect(db, settings, tenant_a.id)
    provider.add(CAL, T0 + H, T0 + 2 * H)
    run(db, settings, tenant_a.id, T0)
    before = row(db, tenant_a.id)

    def no_reads(*_args: Any) -> set[str]:
        raise AssertionError("a quiet round must not read the mirror")

    monkeypatch.setattr(sync.writeback, "own_keys", no_reads)
    later = T0 + timedelta(minutes=5)
    again = run(db, settings, tenant_a.id, later)
    assert again.outcome == "ok" and again.stats == sync.MergeStats(0, 0, 0, 1)
    after = row(db, tenant_a.id)
    assert after.last_success_at == later and after.last_attempt_at == later
    assert after.requests_total == before.requests_total + 1
    assert set(after.cursors) == {CAL}
    assert mirror(db, tenant_a.id) == {(T0 + H, T0 + 2 * H)}
    # The next poll is queued as after any round (folded into the one already waiting).
    assert [s for s, _, _ in sync_jobs(db, tenant_a.id)] == [JobStatus.QUEUED]
    # A change is not quiet: it is merged (the guard above would fail the run if not).
    monkeypatch.undo()
    provider.add(CAL, T0 + 3 * H, T0 + 4 * H)
    changed = run(db, settings, tenant_a.id, later + M)
    assert changed.stats == sync.MergeStats(1, 0, 0, 2)


def test_a_calendar_dropped_as_the_admin_api_drops_it_leaves_the_mirror_on_a_quiet_round(
    a: As, tenant_a: TenantCtx, db: Engine, settings: Settings, provider: MemoryProvider
) -> None:
    # The admin API keeps the cursors of the calendars still read and moves updated_at: the
    # next round's deltas are all empty and incremental, yet the dropped calendar's rows go.
    agents(a)
    connect(db, settings, tenant_a.id, calendars=(CAL, "cal-2"))
    provider.add(CAL, T0 + H, T0 + 2 * H)
    provider.add("cal-2", T0 + 3 * H, T0 + 4 * H)
    run(db, settings, tenant_a.id, T0)
    with make_session_factory(db)() as session:
        stored = session.get(CalendarConnection, (tenant_a.id, "conn-1"))
        assert stored is not None
        stored.calendars = [CAL]
        stored.cursors = {k: v for k, v in stored.cursors.items() if k == CAL}
        stored.updated_at = T0 + M
        session.commit()
    result = run(db, settings, tenant_a.id, T0 + timedelta(minutes=5))
    assert result.stats == sync.MergeStats(0, 0, 1, 1)
    assert mirror(db, tenant_a.id) == {(T0 + H, T0 + 2 * H)}
    # From then on the rounds are quiet again.
    quiet = run(db, settings, tenant_a.id, T0 + timedelta(minutes=10))
    assert quiet.stats == sync.MergeStats(0, 0, 0, 1)


def test_a_round_after_a_failed_one_is_merged_in_full(
    a: As,
    tenant_a: TenantCtx,
    db: Engine,
    settings: Settings,
    provider: MemoryProvider,
) -> None:
    agents(a)
    connect(db, settings, tenant_a.id)
    provider.add(CAL, T0 + H, T0 + 2 * H)
    run(db, settings, tenant_a.id, T0)
    stored = row(db, tenant_a.id)
    assert sync.quiet(stored, [_empty(stored)])
    with make_session_factory(db)() as session:
        found = session.get(CalendarConnection, (tenant_a.id, "conn-1"))
        assert found is not None
        found.updated_at = T0 + M  # what a failed round (or any edit) leaves
        session.commit()
    assert not sync.quiet(row(db, tenant_a.id), [_empty(stored)])


def _empty(stored: CalendarConnection) -> sync.Fetched:
    return sync.Fetched(Delta(CAL, (), (), "next", False, 1), T0, T0 + 24 * H)


def test_remove_mirror_deletes_only_that_connections_rows(
    a: As, tenant_a: TenantCtx, db: Engine, settings: Settings, provider: MemoryProvider
) -> None:
    agents(a, "ana", "ben")
    connect(db, settings, tenant_a.id)
    connect(db, settings, tenant_a.id, id="conn-2", agent="ben", calendars=("cal-2",))
    provider.add(CAL, T0 + H, T0 + 2 * H)
    provider.add("cal-2", T0 + H, T0 + 2 * H)
    run(db, settings, tenant_a.id, T0)
    run(db, settings, tenant_a.id, T0, connection="conn-2")
    with make_session_factory(db)() as session:
        assert sync.remove_mirror(session, tenant_a.id, "conn-1") == 1
        session.commit()
    assert mirror(db, tenant_a.id) == set()
    assert mirror(db, tenant_a.id, "conn-2") == {(T0 + H, T0 + 2 * H)}


# --------------------------------------------------------------------------- failures


def test_an_expired_cursor_is_dropped_and_the_calendar_listed_fully_at_once(
    a: As, tenant_a: TenantCtx, db: Engine, settings: Settings, provider: MemoryProvider
) -> None:
    agents(a)
    connect(db, settings, tenant_a.id)
    keep = provider.add(CAL, T0 + H, T0 + 2 * H)
    drop = provider.add(CAL, T0 + 3 * H, T0 + 4 * H)
    run(db, settings, tenant_a.id, T0)
    provider.expire()  # 410 Gone next time
    del provider.events[CAL][drop]  # and a deletion the new listing alone can tell
    provider.add(CAL, T0 + 5 * H, T0 + 6 * H)
    later = T0 + timedelta(minutes=5)
    result = run(db, settings, tenant_a.id, later)
    assert result.outcome == "ok" and result.errors == ("cursor_expired",)
    assert mirror(db, tenant_a.id) == {(T0 + H, T0 + 2 * H), (T0 + 5 * H, T0 + 6 * H)}
    stored = row(db, tenant_a.id)
    assert stored.cursors[CAL]["cursor"].startswith("1:")  # the new epoch's cursor
    assert stored.cursors[CAL]["start"] == sync.window(later, settings)[0].isoformat()
    assert keep in provider.events[CAL]


def test_a_dead_credential_fails_closed_once_and_recovers_loudly(
    a: As, tenant_a: TenantCtx, db: Engine, settings: Settings, provider: MemoryProvider
) -> None:
    agents(a)
    subscribe(db, tenant_a.id)
    connect(db, settings, tenant_a.id)
    provider.add(CAL, T0 + H, T0 + 2 * H)
    run(db, settings, tenant_a.id, T0)
    provider.dead_credentials = True
    for minutes in (5, 10, 15):
        result = run(db, settings, tenant_a.id, T0 + timedelta(minutes=minutes))
        assert result.outcome == "credential_error"
    stored = row(db, tenant_a.id)
    assert stored.status == "failed" and stored.consecutive_failures == 3
    assert stored.failure == "invalid_grant: the refresh token was revoked"
    assert stored.last_error == stored.failure and stored.last_success_at == T0
    # The mirror is kept (busy stays busy), and the agent is blocked, with the reason.
    assert mirror(db, tenant_a.id) == {(T0 + H, T0 + 2 * H)}
    reason = health.block_reason(stored, T0 + timedelta(minutes=15), timedelta(minutes=30))
    assert reason is not None and "invalid_grant" in reason
    sent = outbox(db, tenant_a.id)
    assert sent == [
        (
            "calendar.sync_failed",
            {
                "connection_id": "conn-1",
                "agent_id": "ana",
                "provider": "google",
                "reason": "credential",
                "detail": "invalid_grant: the refresh token was revoked",
                "last_success_at": T0.isoformat(),
            },
        )
    ]
    # Someone fixed it: the next good sync recovers, once.
    provider.dead_credentials = False
    back = T0 + timedelta(minutes=20)
    assert run(db, settings, tenant_a.id, back).outcome == "ok"
    run(db, settings, tenant_a.id, back + timedelta(minutes=5))
    stored = row(db, tenant_a.id)
    assert (stored.status, stored.failure, stored.consecutive_failures) == ("active", None, 0)
    assert health.block_reason(stored, back, timedelta(minutes=30)) is None
    recovered = [d for t, d in outbox(db, tenant_a.id) if t == "calendar.sync_recovered"]
    assert recovered == [
        {
            "connection_id": "conn-1",
            "agent_id": "ana",
            "provider": "google",
            "recovered_from": "credential",
            "last_success_at": back.isoformat(),
        }
    ]


def test_credentials_no_key_opens_are_a_dead_credential(
    a: As, tenant_a: TenantCtx, db: Engine, settings: Settings, provider: MemoryProvider
) -> None:
    agents(a)
    subscribe(db, tenant_a.id)
    connect(db, settings, tenant_a.id)
    with make_session_factory(db)() as session:
        stored = session.get(CalendarConnection, (tenant_a.id, "conn-1"))
        assert stored is not None
        stored.credentials = "not-a-fernet-token"
        session.commit()
    assert run(db, settings, tenant_a.id, T0).outcome == "credential_error"
    assert row(db, tenant_a.id).status == "failed"
    assert [t for t, _ in outbox(db, tenant_a.id)] == ["calendar.sync_failed"]
    assert provider.requests == 0


def test_a_provider_error_keeps_the_mirror_and_staleness_is_announced_once(
    a: As, tenant_a: TenantCtx, db: Engine, settings: Settings, provider: MemoryProvider
) -> None:
    agents(a)
    subscribe(db, tenant_a.id)
    connect(db, settings, tenant_a.id)
    provider.add(CAL, T0 + H, T0 + 2 * H)
    run(db, settings, tenant_a.id, T0)
    provider.failing = True
    limit = timedelta(seconds=settings.calendar_max_staleness_seconds)
    for minutes in range(5, 61, 5):
        at = T0 + timedelta(minutes=minutes)
        assert run(db, settings, tenant_a.id, at).outcome == "provider_error"
        assert mirror(db, tenant_a.id) == {(T0 + H, T0 + 2 * H)}  # untouched
        stored = row(db, tenant_a.id)
        assert stored.status == "active" and stored.last_error_at == at
        assert stored.last_error == "503 from the provider (gave up after 4 tries)"
        assert (stored.failure is not None) == (at - T0 > limit)
    assert row(db, tenant_a.id).consecutive_failures == 12
    [(kind, data)] = outbox(db, tenant_a.id)
    assert kind == "calendar.sync_failed" and data["reason"] == "stale"
    assert data["detail"].startswith("stale: last good sync 35 min ago")
    provider.failing = False
    assert run(db, settings, tenant_a.id, T0 + 2 * H).outcome == "ok"
    assert row(db, tenant_a.id).failure is None
    [(kind, data)] = outbox(db, tenant_a.id)[1:]
    assert kind == "calendar.sync_recovered" and data["recovered_from"] == "stale"


def test_a_connection_that_breaks_after_going_stale_is_announced_for_its_credential(
    a: As, tenant_a: TenantCtx, db: Engine, settings: Settings, provider: MemoryProvider
) -> None:
    agents(a)
    subscribe(db, tenant_a.id)
    connect(db, settings, tenant_a.id)
    provider.failing = True
    run(db, settings, tenant_a.id, T0 + 2 * H)  # never synced, made two hours ago: stale
    provider.failing, provider.dead_credentials = False, True
    run(db, settings, tenant_a.id, T0 + 3 * H)
    assert [d["reason"] for t, d in outbox(db, tenant_a.id)] == ["stale", "credential"]
    assert outbox(db, tenant_a.id)[0][1]["last_success_at"] is None


def test_a_paused_or_deleted_connection_is_skipped(
    a: As, tenant_a: TenantCtx, db: Engine, settings: Settings, provider: MemoryProvider
) -> None:
    agents(a)
    connect(db, settings, tenant_a.id, status="paused")
    provider.add(CAL, T0 + H, T0 + 2 * H)
    assert run(db, settings, tenant_a.id, T0).outcome == "skipped"
    assert run(db, settings, tenant_a.id, T0, connection="gone").outcome == "skipped"
    assert provider.requests == 0 and mirror(db, tenant_a.id) == set()


class Meddling:
    """A connector that lets another sync of the same connection run while it fetches."""

    def __init__(self, inner: Connector, meddle: Any) -> None:
        self.inner = inner
        self.provider = inner.provider
        self.meddle = meddle

    def sync(self, calendar: str, cursor: str | None, start: datetime, end: datetime) -> Delta:
        delta = self.inner.sync(calendar, cursor, start, end)
        meddle, self.meddle = self.meddle, None
        if meddle is not None:
            meddle()
        return delta


def test_a_run_whose_connection_was_merged_meanwhile_drops_its_answer_and_runs_again(
    a: As, tenant_a: TenantCtx, db: Engine, settings: Settings
) -> None:
    agents(a)
    connect(db, settings, tenant_a.id)
    memory = MemoryProvider()
    memory.add(CAL, T0 + H, T0 + 2 * H)

    def other_run() -> None:
        memory.add(CAL, T0 + 3 * H, T0 + 4 * H)
        with connectors.use_factory(memory.factory):
            assert run(db, settings, tenant_a.id, T0).outcome == "ok"

    def factory(p: str, s: Mapping[str, Any], c: Mapping[str, Any]) -> Connector:
        return Meddling(memory.factory(p, s, c), other_run)  # type: ignore[return-value]

    with connectors.use_factory(factory):
        assert run(db, settings, tenant_a.id, T0, full=True).outcome == "conflict"
    # The other run's (newer) mirror stands; a full sync is queued to run now.
    assert mirror(db, tenant_a.id) == {(T0 + H, T0 + 2 * H), (T0 + 3 * H, T0 + 4 * H)}
    with make_session_factory(db)() as session:
        waiting = jobs.queued_sync(session, tenant_a.id, "conn-1")
        assert waiting is not None and waiting.payload["full"] is True
        assert waiting.run_after == T0


# --------------------------------------------------------------------------- the job


def sync_jobs(db: Engine, tenant_id: str) -> list[tuple[JobStatus, datetime, dict[str, Any]]]:
    with make_session_factory(db)() as session:
        rows = session.scalars(
            select(Job)
            .where(Job.tenant_id == tenant_id, Job.kind == jobs.SYNC_JOB)
            .order_by(Job.created_at, Job.run_after)
        )
        return [(j.status, j.run_after, dict(j.payload)) for j in rows]


def test_the_worker_runs_the_job_which_queues_the_next_poll(
    a: As,
    tenant_a: TenantCtx,
    db: Engine,
    settings: Settings,
    app: FastAPI,
    clock: FakeClock,
    client: TestClient,
    provider: MemoryProvider,
) -> None:
    agents(a)
    connect(db, settings, tenant_a.id)
    provider.add(CAL, T0 + H, T0 + 2 * H)
    with make_session_factory(db)() as session:
        jobs.queue_sync(session, tenant_a.id, "conn-1", now=T0, full=True)
        session.commit()
    worker = app.state.job_worker
    run_ = worker.run_once()
    assert run_ is not None and run_.kind == jobs.SYNC_JOB and run_.status is JobStatus.SUCCEEDED
    poll = T0 + timedelta(seconds=settings.calendar_poll_seconds)
    assert sync_jobs(db, tenant_a.id) == [
        (JobStatus.SUCCEEDED, T0, {"connection_id": "conn-1", "full": True}),
        (JobStatus.QUEUED, poll, {"connection_id": "conn-1", "full": False}),
    ]
    assert mirror(db, tenant_a.id) == {(T0 + H, T0 + 2 * H)}
    with make_session_factory(db)() as session:
        done = session.scalars(select(Job).where(Job.status == JobStatus.SUCCEEDED)).one()
        assert done.result["outcome"] == "ok" and done.result["inserted"] == 1
    # A failing provider keeps the chain going too.
    provider.failing = True
    clock.now = poll
    assert worker.run_once().status is JobStatus.SUCCEEDED
    assert sync_jobs(db, tenant_a.id)[-1][:2] == (
        JobStatus.QUEUED,
        poll + timedelta(seconds=settings.calendar_poll_seconds),
    )


def test_housekeeping_restarts_stopped_chains_and_announces_stale_mirrors(
    a: As,
    tenant_a: TenantCtx,
    db: Engine,
    settings: Settings,
    app: FastAPI,
    clock: FakeClock,
    client: TestClient,
    provider: MemoryProvider,
) -> None:
    agents(a, "ana", "ben", "cy")
    subscribe(db, tenant_a.id)
    connect(db, settings, tenant_a.id)
    connect(db, settings, tenant_a.id, id="conn-2", agent="ben", calendars=("cal-2",))
    connect(db, settings, tenant_a.id, id="conn-3", agent="cy", status="paused")
    factory = make_session_factory(db)
    with factory() as session:
        jobs.queue_sync(session, tenant_a.id, "conn-2", now=T0)
        session.commit()
    assert sync.housekeeping_pass(factory, settings, T0) == 1  # conn-1 only: conn-2 waits
    assert {p["connection_id"] for _, _, p in sync_jobs(db, tenant_a.id)} == {"conn-1", "conn-2"}
    assert sync.housekeeping_pass(factory, settings, T0) == 0  # nothing stopped now
    # The worker's own housekeeping runs the pass (wired in api.wiring).
    clock.now = T0 + 2 * H  # nobody ran the syncs: both mirrors (never made) are stale
    app.state.job_worker.housekeep()
    app.state.job_worker.housekeep()
    sent = outbox(db, tenant_a.id)
    assert sorted((t, d["connection_id"], d["reason"]) for t, d in sent) == [
        ("calendar.sync_failed", "conn-1", "stale"),
        ("calendar.sync_failed", "conn-2", "stale"),
    ]
    assert row(db, tenant_a.id, "conn-3").failure is None  # paused: never stale


def test_job_handlers_include_the_sync(settings: Settings) -> None:
    from api import wiring

    assert jobs.SYNC_JOB in wiring.job_handlers(settings)
    assert sync.housekeeping_pass in wiring.housekeeping_passes()


# --------------------------------------------------------------------------- metrics


def test_metrics_show_connections_lag_runs_errors_and_requests_without_ids(
    a: As,
    tenant_a: TenantCtx,
    db: Engine,
    settings: Settings,
    app: FastAPI,
    clock: FakeClock,
    client: TestClient,
    provider: MemoryProvider,
) -> None:
    from tests.api.http.test_metrics import samples

    agents(a, "ana", "ben")
    connect(db, settings, tenant_a.id)
    connect(db, settings, tenant_a.id, id="conn-2", agent="ben", provider="ics", calendars=("x",))
    provider.add(CAL, T0 + H, T0 + 2 * H)
    factory = make_session_factory(db)
    with factory() as session:
        jobs.queue_sync(session, tenant_a.id, "conn-1", now=T0)
        jobs.queue_sync(session, tenant_a.id, "conn-2", now=T0, run_after=T0 + M)
        session.commit()
    worker = app.state.job_worker
    assert worker.run_once().status is JobStatus.SUCCEEDED  # conn-1: ok
    provider.dead_credentials = True
    clock.now = T0 + M
    assert worker.run_once().status is JobStatus.SUCCEEDED  # conn-2: dead credential
    clock.now = T0 + 10 * 60 * timedelta(seconds=1)
    text = client.get("/metrics").text
    got = samples(text)
    assert (
        got[("switchboard_calendar_connections", (("provider", "google"), ("status", "active")))]
        == 1
    )
    assert (
        got[("switchboard_calendar_connections", (("provider", "ics"), ("status", "failed")))] == 1
    )
    assert got[("switchboard_calendar_connections_blocking", (("provider", "ics"),))] == 1
    assert got[("switchboard_calendar_connections_blocking", (("provider", "google"),))] == 0
    assert got[("switchboard_calendar_sync_lag_seconds_max", (("provider", "google"),))] == 600
    assert (
        got[
            (
                "switchboard_calendar_sync_lag_seconds_bucket",
                (("le", "300.0"), ("provider", "google")),
            )
        ]
        == 0
    )
    assert (
        got[
            (
                "switchboard_calendar_sync_lag_seconds_bucket",
                (("le", "900.0"), ("provider", "google")),
            )
        ]
        == 1
    )
    assert (
        got[("switchboard_calendar_syncs_total", (("outcome", "ok"), ("provider", "google")))] == 1
    )
    assert (
        got[
            (
                "switchboard_calendar_syncs_total",
                (("outcome", "credential_error"), ("provider", "ics")),
            )
        ]
        == 1
    )
    assert (
        got[
            (
                "switchboard_calendar_sync_errors_total",
                (("kind", "credential"), ("provider", "ics")),
            )
        ]
        == 1
    )
    assert got[("switchboard_calendar_requests_total", (("provider", "google"),))] == 1
    assert "conn-1" not in text and tenant_a.id not in text and "ana" not in text


def test_the_housekeeping_command_restarts_the_chains_too(
    a: As,
    tenant_a: TenantCtx,
    db: Engine,
    db_url: str,
    settings: Settings,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from api.cli import main

    agents(a)
    connect(db, settings, tenant_a.id)
    assert main(["housekeeping", "--database-url", db_url]) == 0
    assert "queued 1 calendar sync(s)" in capsys.readouterr().out
    assert [p["connection_id"] for _, _, p in sync_jobs(db, tenant_a.id)] == ["conn-1"]


def test_the_busy_api_lists_mirrored_rows_but_cannot_edit_them(
    a: As, tenant_a: TenantCtx, db: Engine, settings: Settings, provider: MemoryProvider
) -> None:
    """Mirror rows' ids hold ``~``, outside the API's id alphabet: no manual interval can take
    one's id, and the busy API cannot move or delete what the next sync would not restore."""
    agents(a)
    connect(db, settings, tenant_a.id)
    provider.add(CAL, T0 + H, T0 + 2 * H)
    run(db, settings, tenant_a.id, T0)
    [item] = a.get("/v1/busy", params={"agent": "ana"}).json()["items"]
    assert item["source"] == "calendar:conn-1" and "~" in item["id"]
    assert a.delete(f"/v1/busy/{item['id']}").status_code == 422
    r = a.patch(f"/v1/busy/{item['id']}", json={"end": (T0 + 3 * H).isoformat()})
    assert r.status_code == 422
    assert mirror(db, tenant_a.id) == {(T0 + H, T0 + 2 * H)}
    taken = a.post(
        "/v1/busy",
        json={
            "id": item["id"],
            "agent": "ana",
            "start": "2026-03-03T08:00:00Z",
            "end": "2026-03-03T09:00:00Z",
        },
    )
    assert taken.status_code == 422
