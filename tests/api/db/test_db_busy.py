"""A database that is up but cannot take the write now, on both backends: a 503 saying "busy"
(``Retry-After: 1``) after the configured wait, logged in one line without SQL or parameters.

SQLite: another connection holds the write lock past ``sqlite_busy_timeout_ms``. PostgreSQL:
another transaction holds a table lock past ``db_lock_timeout_seconds`` (without a lock timeout
the request would wait for as long as the holder, forever in the worst case).
"""

from __future__ import annotations

import logging
import time

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from api.db.engine import SQLITE_BEGIN_OPTION
from api.main import create_app
from api.settings import Environment, Settings
from tests.api.conftest import FakeClock, assert_problem, make_tenant, ticket_body

SECRET = "vip@example.com"


def test_a_locked_database_is_a_quick_503_logged_without_sql(
    db: Engine, db_url: str, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    settings = Settings(
        database_url=db_url,
        environment=Environment.TEST,
        sqlite_busy_timeout_ms=200,
        db_lock_timeout_seconds=0.2,
    )
    with TestClient(create_app(settings, clock=clock)) as client:
        a = make_tenant(db, client, "Tenant A").admin
        assert a.post("/v1/teams", json={"id": "support"}).status_code == 201
        body = {"team": "support", "requester": SECRET}
        with db.connect() as holder:
            if db.dialect.name == "sqlite":
                holder.execution_options(**{SQLITE_BEGIN_OPTION: "IMMEDIATE"}).begin()
            else:
                holder.execute(text("LOCK TABLE tickets IN EXCLUSIVE MODE"))
            started = time.perf_counter()
            with caplog.at_level(logging.INFO):
                r = a.put("/v1/tickets/T-1", json=ticket_body(body))
            took = time.perf_counter() - started
            holder.rollback()
        assert_problem(r, 503)
        assert r.headers["retry-after"] == "1"
        # The 503 came while the holder still held the lock, so the request did not wait for it
        # (without a lock timeout it would have waited as long as the holder: here, forever).
        # The wait itself is the 0.2 s timeout: alone this takes ~0.5 s, but on a loaded CI
        # machine one run took 7.0 s against the 5 s bound that was here, so the bound is only
        # "not waiting for the holder", with room for load; latency belongs in benchmarks.
        assert took < 30, took
        lines = [rec for rec in caplog.records if rec.levelno >= logging.WARNING]
        assert len(lines) == 1, [rec.getMessage() for rec in lines]
        logged = lines[0].getMessage() + (lines[0].exc_text or "")
        for needle in ("INSERT", "tickets", SECRET, "parameters"):
            assert needle not in logged, logged
        # The lock gone, the same write goes through.
        assert a.put("/v1/tickets/T-1", json=ticket_body(body)).status_code == 201
