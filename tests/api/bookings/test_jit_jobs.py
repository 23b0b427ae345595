"""Just-in-time binding runs by itself, on SQLite and PostgreSQL: a booking queues the
``bookings.bind`` job for the moment its call enters the lead time, the worker's claim loop
binds it with no manual call, two workers racing over the tenant's jobs bind every call once,
and a call whose only agent goes off shift becomes at risk — which the customer's link then
says, offering new times."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta

from fastapi import FastAPI
from sqlalchemy import Engine, select

from api.bookings import service
from api.db.engine import make_session_factory
from api.db.jobs import Job, JobStatus
from api.jobs import queue
from api.jobs.worker import JobRun, Worker
from api.links import service as links
from tests.api.assignment.test_assign import subscribe
from tests.api.bookings.test_bookings import DAY, book, org, outbox
from tests.api.bookings.test_call_steps import through_link
from tests.api.conftest import T0, As, FakeClock, TenantCtx

M = timedelta(minutes=1)


def bind_jobs(db: Engine, tenant_id: str) -> list[tuple[JobStatus, datetime]]:
    with make_session_factory(db)() as session:
        rows = session.scalars(
            select(Job)
            .where(Job.tenant_id == tenant_id, Job.kind == service.BIND_JOB)
            .order_by(Job.run_after)
        )
        return [(j.status, j.run_after) for j in rows]


def test_a_booking_queues_its_binding_for_the_lead_time_and_the_worker_binds_it(
    a: As, tenant_a: TenantCtx, db: Engine, clock: FakeClock, app: FastAPI
) -> None:
    org(a)
    call = book(a, start=f"{DAY}16:00:00+01:00").json()["id"]  # 15:00 UTC
    due = T0 + (7 * 60 - service.DEFAULT_LEAD.total_seconds() / 60 + 1) * M  # 13:01
    assert due == datetime.fromisoformat(f"{DAY}13:01:00+00:00")
    assert bind_jobs(db, tenant_a.id) == [(JobStatus.QUEUED, due)]
    worker = app.state.job_worker
    clock.now = due - M
    assert worker.run_once() is None  # not due yet: nothing claimed
    assert a.get(f"/v1/bookings/{call}").json()["agent"] is None
    clock.now = due
    run = worker.run_once()
    assert run is not None and run.kind == service.BIND_JOB and run.status is JobStatus.SUCCEEDED
    shown = a.get(f"/v1/bookings/{call}").json()
    assert shown["agent"] in ("ana", "ben") and shown["bound_at"] == f"{DAY}13:01:00Z"
    assert worker.run_once() is None  # nothing else left to bind: no further run queued


def test_two_workers_racing_over_the_bind_jobs_bind_each_call_once(
    a: As, tenant_a: TenantCtx, db: Engine, clock: FakeClock, app: FastAPI
) -> None:
    """Several ``bookings.bind`` jobs are due at once (a burst of agent changes queues them)
    and two service processes' workers claim them concurrently: each job is claimed by one
    worker only (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, ``BEGIN IMMEDIATE`` on SQLite), the
    runs serialize on the tenant lock, and every call is bound exactly once."""
    org(a)
    subscribe(db, tenant_a.id, "booking.agent_bound")
    calls = {book(a, ticket=t).json()["id"] for t in ("ZD-1", "ZD-2")}  # both 09:00 UTC
    clock.now = T0 + 30 * M  # within the lead time of both
    factory = make_session_factory(db)
    with factory() as session:
        for _ in range(6):
            queue.enqueue(
                session=session, tenant_id=tenant_a.id, kind=service.BIND_JOB, payload={}, now=T0
            )
        session.commit()
    first: Worker = app.state.job_worker
    second = Worker(factory, first.handlers, clock=clock, worker_id="replica-2")
    runs: dict[str, list[JobRun]] = {"replica-1": [], "replica-2": []}
    start = threading.Barrier(2)

    def drain(name: str, worker: Worker) -> None:
        start.wait()
        while (run := worker.run_once()) is not None:
            runs[name].append(run)

    threads = [
        threading.Thread(target=drain, args=("replica-1", first)),
        threading.Thread(target=drain, args=("replica-2", second)),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    ran = [r.job_id for rs in runs.values() for r in rs]
    assert len(ran) == len(set(ran))  # no job ran twice
    assert all(r.status is JobStatus.SUCCEEDED for rs in runs.values() for r in rs)
    with factory() as session:
        jobs = session.scalars(select(Job).where(Job.kind == service.BIND_JOB)).all()
        assert {j.status for j in jobs} == {JobStatus.SUCCEEDED}
        assert {j.attempts for j in jobs} == {1}
        assert {j.id for j in jobs} == set(ran)
    bound = [d["booking_id"] for t, d in outbox(db, tenant_a.id) if t == "booking.agent_bound"]
    assert sorted(bound) == sorted(calls)  # each call bound once, by whichever run came first
    agents = {a.get(f"/v1/bookings/{c}").json()["agent"] for c in calls}
    assert agents == {"ana", "ben"}
    for ticket in ("ZD-1", "ZD-2"):
        items = a.get(f"/v1/tickets/{ticket}/history").json()["items"]
        actions = [e["data"]["action"] for e in items if e["kind"] == "call_booked"]
        assert actions == ["booked", "agent_bound"]


def test_a_call_whose_only_agent_goes_off_shift_is_at_risk_and_its_link_offers_new_times(
    a: As, tenant_a: TenantCtx, db: Engine, clock: FakeClock, app: FastAPI
) -> None:
    org(a, agents=("ana",))
    subscribe(db, tenant_a.id, "booking.at_risk")
    r = a.post(
        "/v1/tickets/ZD-1/call-links",
        json={"capability_id": "net", "timezone": "Europe/Berlin", "reschedules_allowed": 0},
    )
    assert r.status_code == 201, r.text
    token = r.json()["url"].rsplit("/", 1)[1]
    call = through_link(db, token, T0 + 7 * 60 * M, clock.now, move=False)  # 15:00 UTC
    worker = app.state.job_worker
    while worker.run_once() is not None:  # whatever the booking queued and is due
        pass

    def seen() -> links.View:
        with make_session_factory(db)() as session:
            return links.view(session, links.resolve(session, token, clock.now), clock.now)

    before = seen()
    assert before.phase is links.Phase.BOOKED and before.can_reschedule is False  # none left
    # Ana's shift now ends at noon: the change queues a recheck, the worker runs it.
    shift = a.get("/v1/shifts", params={"agent": "ana"}).json()["items"][0]["id"]
    r = a.patch(f"/v1/shifts/{shift}", json={"end": f"{DAY}12:00:00Z"})
    assert r.status_code == 200, r.text
    run = worker.run_once()
    assert run is not None and run.kind == service.BIND_JOB
    shown = a.get(f"/v1/bookings/{call}").json()
    assert shown["at_risk"] is True and shown["agent"] is None
    [risk] = [d for t, d in outbox(db, tenant_a.id) if t == "booking.at_risk"]
    assert risk["booking_id"] == call and risk["reason"]["rule"] == "uncoverable"
    after = seen()
    assert after.phase is links.Phase.AT_RISK
    assert after.can_reschedule is True  # not the customer's doing: offered whatever the policy
    assert after.join_url is None and after.agent_name is None
