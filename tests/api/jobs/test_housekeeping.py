"""Housekeeping: expired Idempotency-Key records are purged in bounded batches — by every job
worker's loop, and by ``switchboard housekeeping`` — safely from several purgers at once.
(What a client sees after a purge is tested in test_idempotency.py.)"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, event, func, insert, select
from sqlalchemy.orm import Session, sessionmaker

from api.cli import main
from api.db.engine import make_session_factory
from api.db.models import IdempotencyRecord
from api.idempotency import service as idempotency
from api.jobs import housekeeping
from api.jobs.worker import Worker
from api.keys import tenants
from api.settings import Environment, Settings
from tests.api.conftest import T0, FakeClock

TTL = timedelta(hours=24)


def _tenant(factory: sessionmaker[Session]) -> str:
    with factory() as session:
        tenant, _ = tenants.create(session=session, name="housekeeping", now=T0)
        session.commit()
        return tenant.id


def _records(
    factory: sessionmaker[Session], tenant_id: str, prefix: str, *created: datetime
) -> None:
    with factory() as session:
        session.execute(
            insert(IdempotencyRecord),
            [
                {
                    "tenant_id": tenant_id,
                    "api_key_id": "key-1",
                    "key": f"{prefix}-{i}",
                    "request_hash": "h",
                    "method": "POST",
                    "path": "/v1/teams",
                    "status_code": 201,
                    "created_at": at,
                    "completed_at": at,
                }
                for i, at in enumerate(created)
            ],
        )
        session.commit()


def _keys(factory: sessionmaker[Session]) -> set[str]:
    with factory() as session:
        return set(session.scalars(select(IdempotencyRecord.key)))


def test_purge_deletes_expired_records_only_in_bounded_batches(db: Engine) -> None:
    factory = make_session_factory(db)
    tid = _tenant(factory)
    _records(factory, tid, "old", *[T0 - TTL - timedelta(minutes=m) for m in range(1, 8)])
    _records(factory, tid, "new", T0 - TTL + timedelta(minutes=1), T0 - timedelta(hours=1), T0)
    deletes: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip().upper().startswith("DELETE"):
            deletes.append(statement)

    event.listen(db, "before_cursor_execute", count)
    try:
        purged = idempotency.purge_expired(session_factory=factory, before=T0 - TTL, batch_size=3)
    finally:
        event.remove(db, "before_cursor_execute", count)
    assert purged == idempotency.Purged(deleted=7, complete=True)
    assert len(deletes) == 3  # 3 + 3 + 1 rows, one transaction each
    assert _keys(factory) == {"new-0", "new-1", "new-2"}


def test_purge_stops_at_its_time_budget_and_the_next_pass_goes_on(db: Engine) -> None:
    factory = make_session_factory(db)
    tid = _tenant(factory)
    _records(factory, tid, "old", *[T0 - TTL - timedelta(hours=h) for h in range(1, 8)])
    kwargs: dict[str, Any] = {"session_factory": factory, "before": T0 - TTL, "batch_size": 3}
    assert idempotency.purge_expired(**kwargs, time_budget=0) == idempotency.Purged(3, False)
    assert len(_keys(factory)) == 4
    assert idempotency.purge_expired(**kwargs, time_budget=60) == idempotency.Purged(4, True)
    assert _keys(factory) == set()


def test_purgers_in_parallel_delete_every_row_once(db: Engine) -> None:
    """Several processes' workers purge at the same time: no error, no row counted twice."""
    factory = make_session_factory(db)
    tid = _tenant(factory)
    _records(factory, tid, "old", *[T0 - TTL - timedelta(seconds=s) for s in range(1, 301)])
    _records(factory, tid, "new", T0)
    deleted: list[int] = []
    errors: list[BaseException] = []
    start = threading.Barrier(3)

    def purge() -> None:
        try:
            start.wait()
            while True:
                purged = idempotency.purge_expired(
                    session_factory=factory, before=T0 - TTL, batch_size=20
                )
                deleted.append(purged.deleted)
                if not purged.deleted:
                    return
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=purge) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    assert sum(deleted) == 300
    assert _keys(factory) == {"new-0"}


def test_the_worker_loop_runs_housekeeping_every_interval_and_drains_a_backlog(
    db: Engine, clock: FakeClock
) -> None:
    calls: list[datetime] = []
    results = iter([False, False, True])  # a backlog: two passes leave work behind

    def one_pass(now: datetime) -> bool:
        calls.append(now)
        return next(results, True)

    worker = Worker(
        make_session_factory(db),
        {},
        clock=clock,
        poll_seconds=0.01,
        housekeeping=one_pass,
        housekeeping_seconds=3600,
    )
    worker.start()
    try:
        deadline = time.monotonic() + 20
        while len(calls) < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.3)  # many polls more: the next pass is an hour away
    finally:
        worker.stop()
    assert calls == [T0, T0, T0]


def test_a_failing_pass_is_logged_and_retried_at_the_next_interval(
    db: Engine, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(_now: datetime) -> bool:
        raise RuntimeError("database away")

    worker = Worker(make_session_factory(db), {}, clock=clock, housekeeping=broken)
    started = time.monotonic()
    assert worker.housekeep() is True
    assert "housekeeping failed" in caplog.text
    assert not worker._housekeeping_due()
    assert worker._next_housekeeping - started >= 0.9 * worker.housekeeping_seconds
    assert Worker(make_session_factory(db), {}, clock=clock).housekeep() is None


def test_the_service_worker_housekeeps_with_the_settings(
    db: Engine, db_url: str, clock: FakeClock
) -> None:
    from fastapi.testclient import TestClient

    from api.main import create_app

    factory = make_session_factory(db)
    tid = _tenant(factory)
    _records(factory, tid, "old", T0 - timedelta(hours=3))
    _records(factory, tid, "new", T0 - timedelta(hours=1))
    settings = Settings(database_url=db_url, environment=Environment.TEST, idempotency_ttl_hours=2)
    with TestClient(create_app(settings, clock=clock)) as client:
        worker = client.app.state.job_worker  # type: ignore[attr-defined]
        assert worker.housekeeping_seconds == 300
        assert worker.housekeep() is True
    assert _keys(factory) == {"new-0"}

    off = settings.model_copy(update={"housekeeping_interval_seconds": 0})
    assert housekeeping.for_worker(factory, off) is None
    with TestClient(create_app(off, clock=clock)) as client:
        assert client.app.state.job_worker.housekeep() is None  # type: ignore[attr-defined]


def test_housekeeping_command(db: Engine, db_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    factory = make_session_factory(db)
    tid = _tenant(factory)
    now = datetime.now(UTC)
    _records(factory, tid, "old", *[now - timedelta(hours=25 + h) for h in range(5)])
    _records(factory, tid, "new", now - timedelta(hours=23))
    assert main(["housekeeping", "--database-url", db_url, "--batch-size", "2"]) == 0
    assert "deleted 5 idempotency record(s) created before" in capsys.readouterr().out
    assert _keys(factory) == {"new-0"}
    assert main(["housekeeping", "--database-url", db_url]) == 0
    assert "deleted 0 idempotency record(s)" in capsys.readouterr().out
    with Session(db) as session:
        assert session.scalar(select(func.count()).select_from(IdempotencyRecord)) == 1


def test_housekeeping_command_on_an_unmigrated_database(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    assert main(["housekeeping", "--database-url", url]) == 1
    assert "switchboard db upgrade" in capsys.readouterr().err
