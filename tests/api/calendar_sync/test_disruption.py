"""New busy time from a calendar sync disrupts booked calls exactly as a shift change does: the
merge's commit queues the booking engine's re-check (``bookings.bind``), which rebinds a bound
call whose agent is now busy (``booking.agent_bound`` with the previous agent) or, when nobody
else can take it, marks it at risk (``booking.at_risk``). The service's own write-back event
over the call disrupts nothing. And overlapping busy intervals of one agent (calendar events
overlap each other and manual busy time) are accepted all the way to the slots."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
from fastapi import FastAPI
from sqlalchemy import Engine

from api.bookings import service
from api.calendar_sync import connectors, jobs
from api.calendar_sync.writeback import WRITEBACK_JOB
from api.db.engine import make_session_factory
from api.db.jobs import JobStatus
from api.jobs.worker import Worker
from api.settings import Environment, Settings
from solver.availability import working_windows
from solver.problem import Interval
from tests.api.assignment.test_assign import subscribe
from tests.api.bookings.test_bookings import DAY, book, org, outbox, starts
from tests.api.calendar_sync.test_sync import connect, mirror
from tests.api.conftest import T0, As, FakeClock, TenantCtx
from tests.calendars.memory import MemoryProvider


@pytest.fixture
def settings(db: Engine, db_url: str) -> Settings:
    """These tests are about disruption, not staleness: their connections' mirrors stay
    trusted however far the clock moves (fail closed is tested in test_fail_closed.py)."""
    return Settings(
        database_url=db_url,
        environment=Environment.TEST,
        calendar_max_staleness_seconds=365 * 86400,
    )


M = timedelta(minutes=1)
CALL = datetime.fromisoformat(f"{DAY}15:00:00+00:00")  # 16:00 in Berlin
DUE = CALL - service.DEFAULT_LEAD + M


@pytest.fixture
def provider() -> Iterator[MemoryProvider]:
    memory = MemoryProvider()
    with connectors.use_factory(memory.factory):
        yield memory


def bound_call(a: As, app: FastAPI, clock: FakeClock) -> tuple[str, str]:
    """A call at 15:00 UTC, bound just in time; (its id, its agent)."""
    call = book(a, start=f"{DAY}16:00:00+01:00").json()["id"]
    clock.now = DUE
    worker: Worker = app.state.job_worker
    while worker.run_once() is not None:
        pass
    agent = a.get(f"/v1/bookings/{call}").json()["agent"]
    assert agent in ("ana", "ben")
    return call, agent


def sync_now(db: Engine, app: FastAPI, tenant_id: str, connection: str, now: datetime) -> list[str]:
    """Queue a sync of ``connection`` and let the worker run everything due; the kinds run."""
    with make_session_factory(db)() as session:
        jobs.queue_sync(session, tenant_id, connection, now=now)
        session.commit()
    worker: Worker = app.state.job_worker
    kinds = []
    while (run := worker.run_once()) is not None:
        assert run.status is JobStatus.SUCCEEDED, run
        kinds.append(run.kind)
    return kinds


def test_a_synced_event_over_a_bound_call_rebinds_it_as_a_shift_change_would(
    a: As,
    tenant_a: TenantCtx,
    db: Engine,
    settings: Settings,
    clock: FakeClock,
    app: FastAPI,
    provider: MemoryProvider,
) -> None:
    org(a)
    subscribe(db, tenant_a.id, "booking.agent_bound", "booking.at_risk")
    call, agent = bound_call(a, app, clock)
    other = "ben" if agent == "ana" else "ana"
    connect(db, settings, tenant_a.id, agent=agent, now=clock.now)
    provider.add("cal-1", CALL - 30 * M, CALL + 30 * M)  # a meeting over the call
    kinds = sync_now(db, app, tenant_a.id, "conn-1", clock.now)
    # The merge queued a re-check, run after it (the new connection queued one too, which
    # may run first; the rebinding queues the calendars' write-back).
    after = kinds[kinds.index(jobs.SYNC_JOB) + 1 :]
    assert service.BIND_JOB in after
    assert set(kinds) <= {jobs.SYNC_JOB, service.BIND_JOB, WRITEBACK_JOB}
    shown = a.get(f"/v1/bookings/{call}").json()
    assert shown["agent"] == other and shown["at_risk"] is False
    bound = [d for t, d in outbox(db, tenant_a.id) if t == "booking.agent_bound"]
    assert {(d["agent_id"], d["previous_agent_id"]) for d in bound} == {
        (agent, None),
        (other, agent),
    }
    items = a.get("/v1/tickets/ZD-1/history").json()["items"]
    actions = [e["data"]["action"] for e in items if e["kind"] == "call_booked"]
    assert actions == ["booked", "agent_bound", "agent_rebound"]


def test_a_synced_event_nobody_can_cover_for_marks_the_call_at_risk(
    a: As,
    tenant_a: TenantCtx,
    db: Engine,
    settings: Settings,
    clock: FakeClock,
    app: FastAPI,
    provider: MemoryProvider,
) -> None:
    org(a, agents=("ana",))
    subscribe(db, tenant_a.id, "booking.at_risk")
    call, agent = bound_call(a, app, clock)
    connect(db, settings, tenant_a.id, agent=agent, now=clock.now)
    provider.add("cal-1", CALL, CALL + 15 * M)
    sync_now(db, app, tenant_a.id, "conn-1", clock.now)
    shown = a.get(f"/v1/bookings/{call}").json()
    assert shown["at_risk"] is True and shown["agent"] is None
    [risk] = [d for t, d in outbox(db, tenant_a.id) if t == "booking.at_risk"]
    assert risk["booking_id"] == call and risk["previous_agent_id"] == agent
    assert risk["reason"]["rule"] == "uncoverable"


def test_the_services_own_event_over_the_call_disrupts_nothing(
    a: As,
    tenant_a: TenantCtx,
    db: Engine,
    settings: Settings,
    clock: FakeClock,
    app: FastAPI,
    provider: MemoryProvider,
) -> None:
    org(a, agents=("ana",))
    call, agent = bound_call(a, app, clock)
    connect(db, settings, tenant_a.id, agent=agent, now=clock.now)
    provider.add("cal-1", CALL, CALL + 30 * M, key=f"switchboard-{call}", own=call)
    kinds = sync_now(db, app, tenant_a.id, "conn-1", clock.now)
    # A new connection, and its first good sync, re-check the booked calls (whether its agent
    # is trusted changed); the re-check finds the call where it was.
    assert jobs.SYNC_JOB in kinds and set(kinds) <= {jobs.SYNC_JOB, service.BIND_JOB}
    shown = a.get(f"/v1/bookings/{call}").json()
    assert shown["agent"] == agent and shown["at_risk"] is False
    assert mirror(db, tenant_a.id) == set()


def test_overlapping_busy_intervals_of_one_agent_are_accepted_up_to_the_slots(
    a: As,
    tenant_a: TenantCtx,
    db: Engine,
    settings: Settings,
    clock: FakeClock,
    app: FastAPI,
    provider: MemoryProvider,
) -> None:
    org(a, agents=("ana",))
    free = starts(a)
    # A manual interval and two calendar events, all overlapping, 12:00-14:00 UTC together.
    r = a.post(
        "/v1/busy", json={"agent": "ana", "start": f"{DAY}12:30:00Z", "end": f"{DAY}13:15:00Z"}
    )
    assert r.status_code == 201, r.text
    connect(db, settings, tenant_a.id, agent="ana")
    noon = datetime.fromisoformat(f"{DAY}12:00:00+00:00")
    provider.add("cal-1", noon, noon + 90 * M)
    provider.add("cal-1", noon + 60 * M, noon + 120 * M)
    sync_now(db, app, tenant_a.id, "conn-1", T0)
    assert len(a.get("/v1/busy", params={"agent": "ana"}).json()["items"]) == 3
    gone = {f"{DAY}{hm}:00+01:00" for hm in ("13:00", "13:30", "14:00", "14:30")}  # Berlin
    assert gone <= set(free)
    assert starts(a) == [s for s in free if s not in gone]
    # The solver's working time: shifts minus the union of (overlapping) busy time.
    shift = Interval(noon - 180 * M, noon + 300 * M)
    busy = [
        Interval(noon, noon + 90 * M),
        Interval(noon + 60 * M, noon + 120 * M),
        Interval(noon + 30 * M, noon + 75 * M),
    ]
    assert working_windows([shift], busy, noon - 180 * M, 24 * 60) == [(0, 180), (300, 480)]
