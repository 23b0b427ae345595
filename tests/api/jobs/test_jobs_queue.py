"""The job queue on SQLite and PostgreSQL: racing claimers never share a job, leases recover,
retries back off, cancellation and lost leases roll a handler's effects back."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session, sessionmaker

from api.db.engine import make_session_factory
from api.db.jobs import Job, JobStatus
from api.jobs import queue
from api.jobs.worker import JobContext, PermanentJobError, Worker
from api.keys import tenants
from tests.api.conftest import T0, FakeClock

KIND = "test.record"


@pytest.fixture
def factory(db: Engine) -> sessionmaker[Session]:
    return make_session_factory(db)


@pytest.fixture
def tenant_id(factory: sessionmaker[Session]) -> str:
    with factory() as session:
        tenant, _ = tenants.create(session=session, name="jobs", now=T0)
        session.commit()
        return tenant.id


def enqueue_many(factory: sessionmaker[Session], tenant_id: str, n: int, **kw: Any) -> list[str]:
    with factory() as session:
        ids = [
            queue.enqueue(
                session=session, tenant_id=tenant_id, kind=KIND, payload={"i": i}, now=T0, **kw
            ).id
            for i in range(n)
        ]
        session.commit()
    return ids


def statuses(factory: sessionmaker[Session]) -> Counter[str]:
    with factory() as session:
        return Counter(s.value for s in session.scalars(select(Job.status)))


def test_racing_claimers_take_every_job_exactly_once(
    factory: sessionmaker[Session], tenant_id: str
) -> None:
    ids = enqueue_many(factory, tenant_id, 60)
    taken: list[list[str]] = [[] for _ in range(4)]
    start = threading.Barrier(4)

    def claimer(k: int) -> None:
        start.wait()
        while True:
            job = queue.claim(
                session_factory=factory, worker_id=f"w{k}", now=T0, lease=timedelta(minutes=1)
            )
            if job is None:
                return
            taken[k].append(job.id)

    threads = [threading.Thread(target=claimer, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    everything = [j for part in taken for j in part]
    assert sorted(everything) == sorted(ids)  # all claimed, none twice
    assert statuses(factory) == Counter({"running": 60})


def test_two_workers_run_every_job_exactly_once(
    factory: sessionmaker[Session], tenant_id: str
) -> None:
    ids = enqueue_many(factory, tenant_id, 30)
    runs: list[tuple[str, str]] = []
    lock = threading.Lock()

    def record(ctx: JobContext) -> dict[str, Any]:
        # The effect and the completion commit together, as production handlers do.
        with ctx.session_factory() as session:
            session.execute(text("SELECT 1"))
            ctx.complete(session, {"i": ctx.payload["i"]})
            session.commit()
        with lock:
            runs.append((ctx.job.id, ctx.job.token.split("/")[0]))
        return {}

    workers = [
        Worker(factory, {KIND: record}, clock=FakeClock(), worker_id=f"w{k}", lease_seconds=30)
        for k in range(2)
    ]
    start = threading.Barrier(2)

    def drive(w: Worker) -> None:
        start.wait()
        w.run_until_idle()

    threads = [threading.Thread(target=drive, args=(w,)) for w in workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    counts = Counter(job_id for job_id, _ in runs)
    assert set(counts) == set(ids)
    assert max(counts.values()) == 1
    assert statuses(factory) == Counter({"succeeded": 30})
    with factory() as session:
        results = {j.id: j.result for j in session.scalars(select(Job))}
    assert sorted(r["i"] for r in results.values() if r) == list(range(30))


def test_stale_lease_is_recovered_and_the_old_claim_cannot_finish(
    factory: sessionmaker[Session], tenant_id: str
) -> None:
    [job_id] = enqueue_many(factory, tenant_id, 1)
    clock = FakeClock()
    crashed = queue.claim(
        session_factory=factory, worker_id="dead", now=clock(), lease=timedelta(seconds=30)
    )
    assert crashed is not None and crashed.id == job_id

    ran: list[str] = []
    worker = Worker(
        factory,
        {KIND: lambda ctx: ran.append(ctx.job.id) or {"ok": True}},
        clock=clock,
        lease_seconds=30,
    )
    assert worker.run_once() is None  # the lease is still valid: nothing to do
    clock.advance(seconds=31)
    run = worker.run_once()
    assert run is not None and run.status is JobStatus.SUCCEEDED and ran == [job_id]

    # The first worker wakes up: its completion is refused, so its effects would roll back.
    with factory() as session, pytest.raises(queue.LeaseLost):
        queue.complete(session=session, job=crashed, now=clock(), result={"late": True})
    with factory() as session:
        job = session.get(Job, job_id)
        assert job is not None
        assert job.status is JobStatus.SUCCEEDED and job.result == {"ok": True}
        assert job.attempts == 2


def test_stale_lease_on_the_last_attempt_fails_the_job(
    factory: sessionmaker[Session], tenant_id: str
) -> None:
    enqueue_many(factory, tenant_id, 1, max_attempts=1)
    assert queue.claim(session_factory=factory, worker_id="x", now=T0, lease=timedelta(seconds=5))
    assert queue.recover_stale(session_factory=factory, now=T0 + timedelta(seconds=6)) == 1
    assert statuses(factory) == Counter({"failed": 1})


def test_a_failing_handler_is_retried_with_backoff_then_succeeds(
    factory: sessionmaker[Session], tenant_id: str
) -> None:
    [job_id] = enqueue_many(factory, tenant_id, 1)
    clock = FakeClock()
    calls: list[int] = []

    def flaky(ctx: JobContext) -> dict[str, Any]:
        calls.append(ctx.job.attempts)
        if len(calls) == 1:
            raise RuntimeError("solver host busy")
        return {"attempt": ctx.job.attempts}

    worker = Worker(factory, {KIND: flaky}, clock=clock, retry_base_seconds=10)
    run = worker.run_once()
    assert run is not None and run.status is JobStatus.QUEUED
    assert run.error is not None and "solver host busy" in run.error
    assert worker.run_once() is None  # not due before the backoff
    clock.advance(seconds=10)
    run = worker.run_once()
    assert run is not None and run.status is JobStatus.SUCCEEDED
    with factory() as session:
        job = session.get(Job, job_id)
        assert job is not None and job.result == {"attempt": 2} and job.error is None


def test_permanent_errors_and_exhausted_attempts_fail(
    factory: sessionmaker[Session], tenant_id: str
) -> None:
    enqueue_many(factory, tenant_id, 1)
    enqueue_many(factory, tenant_id, 1, max_attempts=1)

    def bad(ctx: JobContext) -> dict[str, Any]:
        if ctx.job.max_attempts == 1:
            raise RuntimeError("boom")  # retryable, but this was the only attempt
        raise PermanentJobError("team 'x' does not exist")

    runs = Worker(factory, {KIND: bad}, clock=FakeClock()).run_until_idle()
    assert [r.status for r in runs] == [JobStatus.FAILED, JobStatus.FAILED]
    with factory() as session:
        errors = sorted(j.error or "" for j in session.scalars(select(Job)))
    assert errors[0].startswith("PermanentJobError") and errors[1].startswith("RuntimeError")


def test_cancelling_a_running_job_rolls_back_its_effects(
    factory: sessionmaker[Session], tenant_id: str
) -> None:
    [job_id] = enqueue_many(factory, tenant_id, 1)
    clock = FakeClock()

    def cancelled_midway(ctx: JobContext) -> dict[str, Any]:
        with ctx.session_factory() as session:
            queue.cancel(session=session, tenant_id=ctx.tenant_id, job_id=ctx.job.id, now=clock())
            session.commit()
        with ctx.session_factory() as session:
            assert not ctx.still_owned(session)
            session.add(
                Job(
                    id="effect",
                    tenant_id=ctx.tenant_id,
                    kind="effect",
                    payload={},
                    status=JobStatus.QUEUED,
                    attempts=0,
                    max_attempts=1,
                    run_after=clock(),
                    created_at=clock(),
                    updated_at=clock(),
                )
            )
            ctx.complete(session, {"applied": True})  # raises LeaseLost: nothing commits
            session.commit()
        return {}

    run = Worker(factory, {KIND: cancelled_midway}, clock=clock).run_once()
    assert run is not None and run.status is None
    with factory() as session:
        assert session.get(Job, "effect") is None
        job = session.get(Job, job_id)
        assert job is not None and job.status is JobStatus.CANCELLED and job.result is None


def test_jobs_of_unknown_kinds_and_future_jobs_are_left_alone(
    factory: sessionmaker[Session], tenant_id: str
) -> None:
    enqueue_many(factory, tenant_id, 1, run_after=T0 + timedelta(hours=1))
    with factory() as session:
        queue.enqueue(session=session, tenant_id=tenant_id, kind="other", payload={}, now=T0)
        session.commit()
    worker = Worker(factory, {KIND: lambda ctx: {}}, clock=FakeClock())
    assert worker.run_until_idle() == []
    assert statuses(factory) == Counter({"queued": 2})
    with factory() as session:
        assert queue.depth(session=session) == {"queued": 2, "running": 0}


def test_a_draining_worker_claims_without_asking_first_and_an_idle_one_asks(
    factory: sessionmaker[Session], tenant_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    enqueue_many(factory, tenant_id, 3)
    enqueue_many(factory, tenant_id, 1, run_after=T0 + timedelta(hours=1))
    worker = Worker(factory, {KIND: lambda ctx: {}}, clock=FakeClock())
    asked: list[bool] = []
    due_exists = worker._due_exists

    def counting() -> bool:
        found = due_exists()
        asked.append(found)
        return found

    claims: list[str | None] = []
    claim = queue.claim

    def counting_claim(**kw: Any) -> queue.ClaimedJob | None:
        job = claim(**kw)
        claims.append(job.id if job else None)
        return job

    monkeypatch.setattr(worker, "_due_exists", counting)
    monkeypatch.setattr(queue, "claim", counting_claim)
    runs = worker.run_until_idle()
    assert len(runs) == 3 and all(r.status is JobStatus.SUCCEEDED for r in runs)
    # Asked once before the first job; after each job it claimed at once, the last claim
    # finding nothing due (the future job stays queued).
    assert asked == [True]
    assert len(claims) == 4 and claims[-1] is None
    # Idle: every poll asks first, and never claims (no write transaction).
    assert worker.run_once() is None and worker.run_once() is None
    assert asked == [True, False, False] and len(claims) == 4
    assert statuses(factory) == Counter({"succeeded": 3, "queued": 1})


def test_waiting_finds_the_queued_job_of_a_key_only(
    factory: sessionmaker[Session], tenant_id: str
) -> None:
    with factory() as session:
        other, _ = tenants.create(session=session, name="other", now=T0)
        first = queue.enqueue(
            session=session, tenant_id=tenant_id, kind=KIND, payload={}, now=T0, dedupe_key="x"
        ).id
        queue.enqueue(
            session=session, tenant_id=other.id, kind=KIND, payload={}, now=T0, dedupe_key="y"
        )
        queue.enqueue(session=session, tenant_id=tenant_id, kind="other", payload={}, now=T0)
        session.commit()

    def found(tenant: str, key: str, kind: str = KIND) -> str | None:
        with factory() as session:
            job = queue.waiting(session=session, tenant_id=tenant, kind=kind, dedupe_key=key)
            return None if job is None else job.id

    assert found(tenant_id, "x") == first
    assert found(tenant_id, "y") is None and found(other.id, "x") is None
    assert found(tenant_id, "x", kind="other") is None
    # Claimed (running, then done), it no longer waits.
    Worker(factory, {KIND: lambda ctx: {}}, clock=FakeClock()).run_until_idle()
    assert found(tenant_id, "x") is None


def test_background_thread_runs_a_job_when_notified(
    factory: sessionmaker[Session], tenant_id: str
) -> None:
    done = threading.Event()

    def handler(ctx: JobContext) -> dict[str, Any]:
        done.set()
        return {}

    # A long poll interval: only notify() can make the job run within the wait below.
    worker = Worker(factory, {KIND: handler}, clock=FakeClock(), poll_seconds=60)
    worker.start()
    try:
        enqueue_many(factory, tenant_id, 1)
        worker.notify()
        assert done.wait(20)
    finally:
        worker.stop()
    assert statuses(factory) == Counter({"succeeded": 1})
