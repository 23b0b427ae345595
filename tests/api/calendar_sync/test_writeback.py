"""Write-back on SQLite and PostgreSQL: the bound agent's calendar (an in-memory provider through
the real write-back job) shows each of their calls as a neutral event; moved on reschedule,
moved from the old agent's calendar to the new one's on rebinding, deleted on cancel; retries
write nothing twice; a dead credential or a read-only feed is skipped; and the event synced back
is never busy time that disrupts its own call."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy import Engine, select

from api.calendar_sync import connectors, writeback
from api.db.engine import make_session_factory
from api.db.jobs import Job, JobStatus
from api.db.models import CalendarConnection, CalendarWrite, Call
from api.jobs.queue import claim
from api.settings import Environment, Settings
from calendars.base import CallEvent
from tests.api.bookings.test_bookings import DAY, TICKET, book, org
from tests.api.bookings.test_call_steps import issue_link, run_jobs, through_link
from tests.api.conftest import T0, As, FakeClock, TenantCtx, postgres_only, ticket_body
from tests.calendars.memory import MemoryProvider


@pytest.fixture
def settings(db: Engine, db_url: str) -> Settings:
    """These tests are about write-back, not staleness: their connections' mirrors stay
    trusted however far the clock moves (fail closed is tested in test_fail_closed.py)."""
    return Settings(
        database_url=db_url,
        environment=Environment.TEST,
        calendar_max_staleness_seconds=365 * 86400,
    )


M = timedelta(minutes=1)
CALL_AT = datetime.fromisoformat(f"{DAY}15:00:00+00:00")  # bound from 13:01 (two hours' lead)
BIND_AT = CALL_AT - timedelta(hours=2) + M
SENTINEL = "Jane Sentinel-Customer"


@pytest.fixture
def provider() -> Iterator[MemoryProvider]:
    store = MemoryProvider()
    with connectors.use_factory(store.factory):
        yield store


def connect(
    db: Engine,
    settings: Settings,
    tenant_id: str,
    agent: str,
    *,
    provider: str = "google",
    writeback_on: bool = True,
    status: str = "active",
    calendars: tuple[str, ...] | None = None,
    extra: dict[str, Any] | None = None,
) -> str:
    """A calendar connection of ``agent`` (calendar ``<agent>@example.com``), made as the admin
    API would; answers its id."""
    ident = f"cc-{agent}-{provider}"
    with make_session_factory(db)() as session:
        session.add(
            CalendarConnection(
                tenant_id=tenant_id,
                id=ident,
                agent_id=agent,
                provider=provider,
                calendars=list(calendars or (f"{agent}@example.com",)),
                settings={"writeback": writeback_on, **(extra or {})},
                credentials=connectors.encrypt_credentials(settings, {"refresh_token": "rt"}),
                status=status,
                cursors={},
                consecutive_failures=0,
                busy_count=0,
                requests_total=0,
                channels={},
                last_success_at=T0,
                created_at=T0,
                updated_at=T0,
            )
        )
        session.commit()
    return ident


def setup(a: As, db: Engine, settings: Settings, tenant: TenantCtx) -> None:
    org(a)
    r = a.put("/v1/tickets/ZD-1", json=ticket_body(TICKET | {"requester": SENTINEL}))
    assert r.status_code == 200, r.text
    for agent in ("ana", "ben"):
        connect(db, settings, tenant.id, agent)


def bound_agent(a: As, call: str) -> str:
    agent = a.get(f"/v1/bookings/{call}").json()["agent"]
    assert agent in ("ana", "ben"), agent
    return str(agent)


def shown(
    provider: MemoryProvider, calendar: str
) -> list[tuple[str, datetime, datetime, str | None]]:
    """What the calendar holds: (key, start, end, own) of each event."""
    return sorted(
        (e.key, e.start, e.end, e.own) for e in provider.events.get(calendar, {}).values()
    )


def writes(db: Engine, tenant_id: str) -> list[tuple[str, str, str, str, datetime, datetime]]:
    with make_session_factory(db)() as session:
        rows = session.scalars(
            select(CalendarWrite)
            .where(CalendarWrite.tenant_id == tenant_id)
            .order_by(CalendarWrite.call_id, CalendarWrite.connection_id)
        )
        return [
            (w.call_id, w.connection_id, w.calendar, w.event_key, w.start_at, w.end_at)
            for w in rows
        ]


def jobs(db: Engine, tenant_id: str, kind: str = writeback.WRITEBACK_JOB) -> list[Job]:
    with make_session_factory(db)() as session:
        found = session.scalars(
            select(Job).where(Job.tenant_id == tenant_id, Job.kind == kind).order_by(Job.created_at)
        ).all()
        session.expunge_all()
        return list(found)


def booked_and_bound(a: As, app: FastAPI, clock: FakeClock) -> tuple[str, str]:
    call = book(a, start=CALL_AT.isoformat()).json()["id"]
    clock.now = BIND_AT
    run_jobs(app)  # the bind job, then the write-back it queued
    return call, bound_agent(a, call)


def test_binding_writes_a_neutral_event_into_the_bound_agents_calendar(
    a: As,
    tenant_a: TenantCtx,
    db: Engine,
    settings: Settings,
    clock: FakeClock,
    app: FastAPI,
    provider: MemoryProvider,
) -> None:
    setup(a, db, settings, tenant_a)
    call = book(a, start=CALL_AT.isoformat()).json()["id"]
    assert jobs(db, tenant_a.id) == []  # booked, not bound: nothing to write yet
    clock.now = BIND_AT
    run_jobs(app)
    agent = bound_agent(a, call)
    [job] = jobs(db, tenant_a.id)
    assert job.status is JobStatus.SUCCEEDED and job.payload == {"calls": [call]}
    assert job.result is not None and job.result["written"] == 1
    key = f"switchboard-{call}"
    calendar = f"{agent}@example.com"
    assert shown(provider, calendar) == [(key, CALL_AT, CALL_AT + 30 * M, call)]
    other = "ben" if agent == "ana" else "ana"
    assert shown(provider, f"{other}@example.com") == []
    event = provider.written[key]
    assert event.title == "Customer call — ticket #ZD-1"
    assert event.body is None and event.join_url is None
    assert SENTINEL not in repr(event)  # the customer's details stay out by default
    assert writes(db, tenant_a.id) == [
        (call, f"cc-{agent}-google", calendar, key, CALL_AT, CALL_AT + 30 * M)
    ]


def test_the_customers_details_go_in_only_where_the_tenant_allows(
    a: As,
    tenant_a: TenantCtx,
    db: Engine,
    settings: Settings,
    clock: FakeClock,
    app: FastAPI,
    provider: MemoryProvider,
) -> None:
    setup(a, db, settings, tenant_a)
    r = a.patch(
        "/v1/policies",
        json={
            "calendar_events": {"customer_details": True},
            "call_room": {"meeting_url_template": "https://meet.example.com/{booking_id}"},
        },
        headers={"content-type": "application/merge-patch+json"},
    )
    assert r.status_code == 200, r.text
    token = issue_link(a)
    with make_session_factory(db)() as session:
        from api.db.models import CallLink

        link = session.scalars(select(CallLink)).one()
        link.display_name = "Jane"
        session.commit()
    call = through_link(db, token, CALL_AT, clock.now, move=False, cache=app.state.booking_cache)
    clock.now = BIND_AT
    run_jobs(app)
    event = provider.written[f"switchboard-{call}"]
    assert event.title == "Customer call — ticket #ZD-1 with Jane"
    assert event.body == f"Customer: Jane\nRequester: {SENTINEL}"
    assert event.join_url == f"https://meet.example.com/{call}"


def test_a_reschedule_moves_the_event(
    a: As,
    tenant_a: TenantCtx,
    db: Engine,
    settings: Settings,
    clock: FakeClock,
    app: FastAPI,
    provider: MemoryProvider,
) -> None:
    """Through the customer's link the old call is cancelled and a new one booked: the old
    event leaves the calendar at once, the new time is written once the new call is bound."""
    setup(a, db, settings, tenant_a)
    token = issue_link(a)
    old = through_link(db, token, CALL_AT, clock.now, move=False, cache=app.state.booking_cache)
    clock.now = BIND_AT
    run_jobs(app)
    agent = bound_agent(a, old)
    calendar = f"{agent}@example.com"
    assert [k for k, *_ in shown(provider, calendar)] == [f"switchboard-{old}"]
    later = CALL_AT + timedelta(hours=1)
    new = through_link(db, token, later, clock.now, move=True, cache=app.state.booking_cache)
    run_jobs(app)
    assert shown(provider, calendar) == []  # the old time is free again in the calendar
    assert writes(db, tenant_a.id) == []
    clock.now = later - timedelta(hours=2) + M
    run_jobs(app)
    now_agent = bound_agent(a, new)
    assert shown(provider, f"{now_agent}@example.com") == [
        (f"switchboard-{new}", later, later + 30 * M, new)
    ]


def test_a_call_whose_times_change_has_its_event_updated_in_place(
    a: As,
    tenant_a: TenantCtx,
    db: Engine,
    settings: Settings,
    clock: FakeClock,
    app: FastAPI,
    provider: MemoryProvider,
) -> None:
    """The reconciling job moves (``update_event``, same key) an event whose call's times no
    longer match what was written: whatever changes a bound call's times only queues the job."""
    setup(a, db, settings, tenant_a)
    call, agent = booked_and_bound(a, app, clock)
    key = f"switchboard-{call}"
    moved = CALL_AT + 10 * M
    factory = make_session_factory(db)
    with factory() as session:
        row = session.get(Call, (tenant_a.id, call))
        assert row is not None
        row.start_at, row.end_at = moved, moved + 30 * M
        row.occupied_until = moved + 30 * M
        writeback.queue_writeback(session, tenant_a.id, call, clock.now)
        session.commit()
    before = provider.requests
    run_jobs(app)
    assert provider.requests == before + 1  # one update, no delete and write
    assert shown(provider, f"{agent}@example.com") == [(key, moved, moved + 30 * M, call)]
    [*_, last] = writes(db, tenant_a.id)
    assert last[3:] == (key, moved, moved + 30 * M)


def test_rebinding_deletes_the_event_from_the_old_agent_and_writes_it_for_the_new_one(
    a: As,
    tenant_a: TenantCtx,
    db: Engine,
    settings: Settings,
    clock: FakeClock,
    app: FastAPI,
    provider: MemoryProvider,
) -> None:
    setup(a, db, settings, tenant_a)
    call, first = booked_and_bound(a, app, clock)
    second = "ben" if first == "ana" else "ana"
    shift = a.get("/v1/shifts", params={"agent": first}).json()["items"][0]["id"]
    r = a.patch(f"/v1/shifts/{shift}", json={"end": f"{DAY}14:00:00Z"})  # gone before the call
    assert r.status_code == 200, r.text
    run_jobs(app)
    assert bound_agent(a, call) == second
    assert shown(provider, f"{first}@example.com") == []
    key = f"switchboard-{call}"
    assert shown(provider, f"{second}@example.com") == [(key, CALL_AT, CALL_AT + 30 * M, call)]
    assert [(w[1], w[3]) for w in writes(db, tenant_a.id)] == [(f"cc-{second}-google", key)]


def test_a_call_at_risk_leaves_the_calendar(
    a: As,
    tenant_a: TenantCtx,
    db: Engine,
    settings: Settings,
    clock: FakeClock,
    app: FastAPI,
    provider: MemoryProvider,
) -> None:
    setup(a, db, settings, tenant_a)
    call, first = booked_and_bound(a, app, clock)
    for agent in ("ana", "ben"):
        shift = a.get("/v1/shifts", params={"agent": agent}).json()["items"][0]["id"]
        assert a.patch(f"/v1/shifts/{shift}", json={"end": f"{DAY}14:00:00Z"}).status_code == 200
    run_jobs(app)
    assert a.get(f"/v1/bookings/{call}").json()["agent"] is None
    assert shown(provider, f"{first}@example.com") == [] and writes(db, tenant_a.id) == []


@pytest.mark.parametrize("how", ["api", "ticket_solved"])
def test_cancelling_deletes_the_event(
    a: As,
    tenant_a: TenantCtx,
    db: Engine,
    settings: Settings,
    clock: FakeClock,
    app: FastAPI,
    provider: MemoryProvider,
    how: str,
) -> None:
    setup(a, db, settings, tenant_a)
    call, agent = booked_and_bound(a, app, clock)
    assert shown(provider, f"{agent}@example.com") != []
    if how == "api":
        r = a.post(f"/v1/bookings/{call}/cancel", json={})
        assert r.status_code in (200, 204), r.text
    else:
        r = a.put("/v1/tickets/ZD-1", json=ticket_body(TICKET | {"status": "solved"}))
        assert r.status_code == 200, r.text
    run_jobs(app)
    assert a.get(f"/v1/bookings/{call}").json()["status"] == "cancelled"
    assert shown(provider, f"{agent}@example.com") == [] and provider.written == {}
    assert writes(db, tenant_a.id) == []


def test_a_completed_call_keeps_its_event(
    a: As,
    tenant_a: TenantCtx,
    db: Engine,
    settings: Settings,
    clock: FakeClock,
    app: FastAPI,
    provider: MemoryProvider,
) -> None:
    setup(a, db, settings, tenant_a)
    call, agent = booked_and_bound(a, app, clock)
    clock.now = CALL_AT + M
    r = a.post(f"/v1/bookings/{call}/complete", json={"agent_id": agent})
    assert r.status_code == 200, r.text
    with make_session_factory(db)() as session:
        writeback.queue_writeback(session, tenant_a.id, call, clock.now)
        session.commit()
    run_jobs(app)
    assert [k for k, *_ in shown(provider, f"{agent}@example.com")] == [f"switchboard-{call}"]


def test_a_provider_failure_is_retried_with_backoff_and_nothing_is_written_twice(
    a: As,
    tenant_a: TenantCtx,
    db: Engine,
    settings: Settings,
    clock: FakeClock,
    app: FastAPI,
    provider: MemoryProvider,
) -> None:
    setup(a, db, settings, tenant_a)
    call = book(a, start=CALL_AT.isoformat()).json()["id"]
    clock.now = BIND_AT
    provider.failing = True
    run_jobs(app)
    [job] = jobs(db, tenant_a.id)
    assert job.status is JobStatus.QUEUED and job.attempts == 1 and job.run_after > clock.now
    assert job.error is not None and "503" in job.error and provider.written == {}
    assert writes(db, tenant_a.id) == []
    provider.failing = False
    clock.now = job.run_after
    run_jobs(app)
    [job] = jobs(db, tenant_a.id)
    assert job.status is JobStatus.SUCCEEDED and job.attempts == 2
    agent = bound_agent(a, call)
    assert len(shown(provider, f"{agent}@example.com")) == 1
    # The same request again (a duplicate, a crash after the provider answered): nothing to do.
    before = provider.requests
    with make_session_factory(db)() as session:
        writeback.queue_writeback(session, tenant_a.id, call, clock.now)
        session.commit()
    run_jobs(app)
    assert provider.requests == before
    assert jobs(db, tenant_a.id)[-1].result == {
        "calls": 1,
        "written": 0,
        "moved": 0,
        "deleted": 0,
        "skipped": 0,
        "failed": 0,
    }
    assert len(shown(provider, f"{agent}@example.com")) == 1 and len(writes(db, tenant_a.id)) == 1


def test_a_provider_write_whose_record_was_lost_is_not_duplicated(
    a: As,
    tenant_a: TenantCtx,
    db: Engine,
    settings: Settings,
    clock: FakeClock,
    app: FastAPI,
    provider: MemoryProvider,
) -> None:
    """The worker died between the provider's answer and the record: the retry writes the
    call's event again, which the provider keys by the call, so the calendar still shows one."""
    setup(a, db, settings, tenant_a)
    call, agent = booked_and_bound(a, app, clock)
    with make_session_factory(db)() as session:
        for w in session.scalars(select(CalendarWrite)):
            session.delete(w)
        writeback.queue_writeback(session, tenant_a.id, call, clock.now)
        session.commit()
    run_jobs(app)
    assert len(shown(provider, f"{agent}@example.com")) == 1 and len(writes(db, tenant_a.id)) == 1


def test_requests_gather_in_one_waiting_job_and_none_is_queued_without_connections(
    a: As, tenant_a: TenantCtx, tenant_b: TenantCtx, db: Engine, settings: Settings
) -> None:
    factory = make_session_factory(db)
    with factory() as session:
        assert writeback.queue_writeback(session, tenant_b.id, "c-1", T0) is None
    org(a)
    connect(db, settings, tenant_a.id, "ana")
    with factory() as session:
        first = writeback.queue_writeback(session, tenant_a.id, "c-1", T0)
        second = writeback.queue_writeback(session, tenant_a.id, "c-2", T0)
        again = writeback.queue_writeback(session, tenant_a.id, "c-1", T0)
        assert first is not None and first is second is again
        assert first.payload == {"calls": ["c-1", "c-2"]}
        first.attempts = 1  # being retried: its backoff is its own
        fresh = writeback.queue_writeback(session, tenant_a.id, "c-3", T0)
        assert fresh is not None and fresh is not first and fresh.payload == {"calls": ["c-3"]}
        session.rollback()


def test_a_dead_credential_is_recorded_and_a_read_only_feed_is_skipped(
    a: As,
    tenant_a: TenantCtx,
    db: Engine,
    settings: Settings,
    clock: FakeClock,
    app: FastAPI,
    provider: MemoryProvider,
) -> None:
    org(a, agents=("ana",))
    connect(db, settings, tenant_a.id, "ana", provider="ics")
    google = connect(db, settings, tenant_a.id, "ana")
    call = book(a, start=CALL_AT.isoformat()).json()["id"]
    clock.now = BIND_AT
    provider.dead_credentials = True
    run_jobs(app)
    assert bound_agent(a, call) == "ana"
    [job] = jobs(db, tenant_a.id)
    assert job.status is JobStatus.SUCCEEDED  # retrying cannot help: nothing to retry
    assert job.result is not None and job.result["skipped"] == 1
    with make_session_factory(db)() as session:
        row = session.get(CalendarConnection, (tenant_a.id, google))
        assert row is not None and row.status == "failed"
        assert row.failure == "write-back: invalid_grant: the refresh token was revoked"
        feed = session.get(CalendarConnection, (tenant_a.id, "cc-ana-ics"))
        assert feed is not None and feed.status == "active"  # never asked to write
    assert provider.written == {} and writes(db, tenant_a.id) == []


def test_the_written_event_synced_back_does_not_disrupt_its_call(
    a: As,
    tenant_a: TenantCtx,
    db: Engine,
    settings: Settings,
    clock: FakeClock,
    app: FastAPI,
    provider: MemoryProvider,
) -> None:
    """The provider lists our event like any other (``own`` set). What the sync's merge keeps
    (:func:`writeback.foreign`) becomes busy time: our event never does, also when a provider
    loses the marker (the key is ours); a stranger's event at the same time does, and moves the
    call to the other agent -- so the guard is what keeps the call where it is."""
    setup(a, db, settings, tenant_a)
    call, agent = booked_and_bound(a, app, clock)
    connection = f"cc-{agent}-google"
    calendar = f"{agent}@example.com"
    factory = make_session_factory(db)

    def merged() -> list[Any]:
        connector = provider.factory("google", {}, {})
        delta = connector.sync(calendar, None, T0, T0 + timedelta(days=60))
        with factory() as session:
            keys = writeback.own_keys(session, tenant_a.id, connection)
        return writeback.foreign(delta.upserts, keys)

    def mirror(events: list[Any]) -> None:
        for e in events:
            r = a.post(
                "/v1/busy",
                json={"agent": agent, "start": e.start.isoformat(), "end": e.end.isoformat()},
            )
            assert r.status_code == 201, r.text
        run_jobs(app)

    assert [e.own for e in provider.events[calendar].values()] == [call]
    assert merged() == []
    # A provider that dropped the marker (e.g. an event copied by a client): the key is ours.
    provider.add(calendar, CALL_AT, CALL_AT + 30 * M, key=f"switchboard-{call}")
    assert merged() == []
    mirror(merged())
    assert bound_agent(a, call) == agent
    # Control: a stranger's event over the call is busy time, and moves the call.
    provider.add(calendar, CALL_AT, CALL_AT + 30 * M, key="dentist")
    found = merged()
    assert [e.key for e in found] == ["dentist"]
    mirror(found)
    assert bound_agent(a, call) != agent


def test_write_back_settings_problems() -> None:
    assert writeback.settings_problems("google", {"writeback": True}, ["a@x"]) == []
    assert [e.field for e in writeback.settings_problems("ics", {"writeback": True}, ["u"])] == [
        "settings.writeback"
    ]
    assert [
        e.field for e in writeback.settings_problems("google", {"writeback": "yes"}, ["a@x"])
    ] == ["settings.writeback"]
    assert [
        e.field
        for e in writeback.settings_problems(
            "microsoft", {"writeback": True, "writeback_calendar": " "}, []
        )
    ] == ["settings.writeback_calendar"]
    assert [e.field for e in writeback.settings_problems("google", {"writeback": True}, [])] == [
        "settings.writeback_calendar"
    ]


def test_the_chosen_calendar_gets_the_event(
    a: As,
    tenant_a: TenantCtx,
    db: Engine,
    settings: Settings,
    clock: FakeClock,
    app: FastAPI,
    provider: MemoryProvider,
) -> None:
    org(a, agents=("ana",))
    connect(
        db,
        settings,
        tenant_a.id,
        "ana",
        calendars=("ana@example.com", "team@example.com"),
        extra={"writeback_calendar": "calls@example.com"},
    )
    call = book(a, start=CALL_AT.isoformat()).json()["id"]
    clock.now = BIND_AT
    run_jobs(app)
    assert [k for k, *_ in shown(provider, "calls@example.com")] == [f"switchboard-{call}"]
    assert shown(provider, "ana@example.com") == []
    assert isinstance(provider.written[f"switchboard-{call}"], CallEvent)


def test_a_resumed_connection_catches_up_and_one_turned_off_is_cleared(
    a: As,
    tenant_a: TenantCtx,
    db: Engine,
    settings: Settings,
    clock: FakeClock,
    app: FastAPI,
    provider: MemoryProvider,
) -> None:
    org(a, agents=("ana",))
    ident = connect(db, settings, tenant_a.id, "ana", status="paused")
    call = book(a, start=CALL_AT.isoformat()).json()["id"]
    clock.now = BIND_AT
    run_jobs(app)
    assert bound_agent(a, call) == "ana" and provider.written == {}  # paused: hands off
    factory = make_session_factory(db)
    with factory() as session:
        row = session.get(CalendarConnection, (tenant_a.id, ident))
        assert row is not None
        row.status = "active"
        assert writeback.queue_for_connection(session, tenant_a.id, ident, clock.now) is not None
        session.commit()
    run_jobs(app)
    assert [k for k, *_ in shown(provider, "ana@example.com")] == [f"switchboard-{call}"]
    with factory() as session:
        row = session.get(CalendarConnection, (tenant_a.id, ident))
        assert row is not None
        row.settings = {"writeback": False}
        writeback.queue_for_connection(session, tenant_a.id, ident, clock.now)
        session.commit()
    run_jobs(app)
    assert shown(provider, "ana@example.com") == [] and writes(db, tenant_a.id) == []


@postgres_only
def test_a_waiting_job_being_joined_is_not_claimed_until_the_booking_commits(
    a: As, tenant_a: TenantCtx, db: Engine, settings: Settings
) -> None:
    """Otherwise a worker could take the job between the booking's read and its commit, and
    the call added to the payload would never be written."""
    org(a)
    connect(db, settings, tenant_a.id, "ana")
    factory = make_session_factory(db)
    kinds = [writeback.WRITEBACK_JOB]
    with factory() as session:
        writeback.queue_writeback(session, tenant_a.id, "c-1", T0)
        session.commit()
    with factory() as session:
        writeback.queue_writeback(session, tenant_a.id, "c-2", T0)
        grabbed = claim(
            session_factory=factory, worker_id="w", now=T0, lease=timedelta(hours=1), kinds=kinds
        )
        assert grabbed is None  # skipped while the booking holds it
        session.commit()
    grabbed = claim(
        session_factory=factory, worker_id="w", now=T0, lease=timedelta(hours=1), kinds=kinds
    )
    assert grabbed is not None and grabbed.payload == {"calls": ["c-1", "c-2"]}
