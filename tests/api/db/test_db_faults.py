"""The service with a broken network between it and PostgreSQL (issue 8, defect 6 and the log
noise of defect 8).

A :class:`~benchmarks.harness.tcp_proxy.TcpProxy` sits between the app and the test database.
While it refuses or black-holes connections, reads and writes answer 503 problem+json with
``Retry-After`` within a few seconds (never a 500, never a hang), ``/healthz`` stays 200 and fast
even with every worker thread stuck, ``/readyz`` says 503 fast, nothing logged carries SQL or its
parameters, and once the proxy forwards again the same app serves again. A write cut off in the
middle of its transaction leaves nothing behind.

PostgreSQL only: SQLite has no network to lose.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import anyio.to_thread
import httpx2
import psycopg
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url

from api.main import create_app
from api.settings import Environment, Settings
from api.webhooks.delivery import BackgroundDeliverer, Deliverer
from benchmarks.harness.tcp_proxy import TcpProxy
from tests.api.conftest import FakeClock, TenantCtx, make_tenant, postgres_only

pytestmark = postgres_only

T = "2026-03-02T"
# Small on purpose: the test waits for each of them.
FAULT_SETTINGS: dict[str, Any] = {
    "db_pool_size": 2,
    "db_connect_timeout_seconds": 2,
    "db_statement_timeout_seconds": 2.0,
    "db_reply_timeout_seconds": 3.0,
    "db_pool_timeout_seconds": 1.0,
    "db_ready_timeout_seconds": 1.0,
}
# Worst case through a black hole: a pooled connection's ping (the connect timeout), then one
# new connection (the connect timeout again), plus slack for a loaded machine.
FAST = 7.0
SECRET = "ceo@example.com"  # a value a request carries: it must never reach the log


def ticket(**extra: Any) -> dict[str, Any]:
    """A whole ticket (PUT replaces)."""
    return {
        "status": "new",
        "owner_agent": None,
        "team": "support",
        "required_skills": {"billing": 2},
        "priority": "high",
        "first_response_due": f"{T}09:00:00Z",
        "resolution_due": f"{T}17:00:00Z",
        "effort_minutes": 45,
        "requester": SECRET,
    } | extra


@pytest.fixture
def proxy(db_url: str) -> Iterator[TcpProxy]:
    u = make_url(db_url)
    with TcpProxy(u.host or "127.0.0.1", u.port or 5432) as p:
        yield p


@pytest.fixture
def proxied(db: Engine, db_url: str, proxy: TcpProxy, clock: FakeClock) -> Iterator[TestClient]:
    """The app on a database URL that goes through the proxy (same schema, same search_path)."""
    url = make_url(db_url).set(host="127.0.0.1", port=proxy.port)
    settings = Settings(
        database_url=url.render_as_string(hide_password=False),
        environment=Environment.TEST,
        **FAULT_SETTINGS,
    )
    # A 503 for the idempotency middleware's own database work comes through the unhandled
    # handler, which Starlette re-raises after answering: look at the answer, not the raise.
    with TestClient(create_app(settings, clock=clock), raise_server_exceptions=False) as c:
        yield c


@pytest.fixture
def tenant(db: Engine, proxied: TestClient) -> TenantCtx:
    ctx = make_tenant(db, proxied, "Tenant A")
    a = ctx.admin
    assert a.post("/v1/skills", json={"id": "billing"}).status_code == 201
    assert a.post("/v1/teams", json={"id": "support"}).status_code == 201
    return ctx


def direct(db_url: str) -> psycopg.Connection[Any]:
    """A connection that bypasses the proxy, in the test's private schema."""
    u = make_url(db_url)
    return psycopg.connect(
        host=u.host,
        port=u.port,
        user=u.username,
        dbname=u.database,
        options=str(u.query["options"]),
        connect_timeout=3,
    )


def timed(call: Any, *args: Any, **kwargs: Any) -> tuple[httpx2.Response, float]:
    started = time.perf_counter()
    r = call(*args, **kwargs)
    return r, time.perf_counter() - started


def assert_unavailable(r: httpx2.Response, seconds: float) -> None:
    assert r.status_code == 503, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert int(r.headers["retry-after"]) >= 1
    body = r.json()
    assert body["status"] == 503 and body["type"] == "/problems/unavailable", body
    assert seconds < FAST, f"took {seconds:.1f} s"


def assert_quiet_log(caplog: pytest.LogCaptureFixture) -> None:
    """At most a few lines about the outage, none with SQL or what the requests carried."""
    ours = [r for r in caplog.records if r.levelno >= logging.WARNING]
    text = "\n".join(r.getMessage() + (r.exc_text or "") for r in ours)
    for needle in (SECRET, "INSERT", "SELECT", "UPDATE ", "parameters"):
        assert needle not in text, text
    assert len(ours) <= 4, text
    assert not [r for r in ours if r.exc_info], "a traceback for an outage"


def outage_requests(a: Any, n: int) -> list[tuple[httpx2.Response, float]]:
    """A read, a write and a keyed POST at once: all must be quick 503s."""
    with ThreadPoolExecutor(3) as pool:
        calls = [
            pool.submit(timed, a.get, "/v1/tickets/T-1"),
            pool.submit(timed, a.put, f"/v1/tickets/T-out-{n}", json=ticket()),
            pool.submit(
                timed,
                a.post,
                "/v1/teams",
                json={"id": f"tier{n}"},
                headers={"Idempotency-Key": f"outage-{n}"},
            ),
        ]
        return [call.result(timeout=30) for call in calls]


def test_a_refused_database_is_a_fast_503_and_the_app_recovers(
    proxied: TestClient, proxy: TcpProxy, tenant: TenantCtx, caplog: pytest.LogCaptureFixture
) -> None:
    a = tenant.admin
    assert a.put("/v1/tickets/T-1", json=ticket()).status_code == 201
    assert proxied.get("/readyz").status_code == 200

    proxy.refuse()
    with caplog.at_level(logging.INFO):
        for r, seconds in outage_requests(a, 1):
            assert_unavailable(r, seconds)
        r, seconds = timed(proxied.get, "/readyz")
        assert_unavailable(r, seconds)
        assert r.json()["database"] == "unavailable"
        r, seconds = timed(proxied.get, "/healthz")
        assert r.status_code == 200 and seconds < 0.5
        # A scrape still answers (without the job queue's depth), and logs no traceback.
        r, seconds = timed(proxied.get, "/metrics")
        assert r.status_code == 200 and seconds < FAST
    assert_quiet_log(caplog)

    proxy.forward()
    assert proxied.get("/readyz").status_code == 200
    assert a.get("/v1/tickets/T-1").status_code == 200
    assert a.put("/v1/tickets/T-2", json=ticket()).status_code == 201


def test_a_black_holed_database_is_a_fast_503_and_health_stays_up(
    proxied: TestClient, proxy: TcpProxy, tenant: TenantCtx, caplog: pytest.LogCaptureFixture
) -> None:
    a = tenant.admin
    assert a.put("/v1/tickets/T-1", json=ticket()).status_code == 201

    # Four request threads in all, and four requests stuck on the database: every worker thread
    # is taken (and with the readiness check, every pooled connection), yet the probes answer.
    hung = 4

    async def few_threads() -> None:
        anyio.to_thread.current_default_thread_limiter().total_tokens = 4

    assert proxied.portal is not None
    proxied.portal.call(few_threads)
    proxy.blackhole()
    with caplog.at_level(logging.INFO), ThreadPoolExecutor(hung) as pool:
        stuck = [pool.submit(timed, a.get, f"/v1/tickets/T-{i}") for i in range(hung)]
        r, seconds = timed(proxied.get, "/healthz")
        assert r.status_code == 200 and seconds < 0.5, seconds
        r, seconds = timed(proxied.get, "/readyz")
        assert_unavailable(r, 2.5)
        assert seconds < 2.5, seconds
        for future in stuck:
            assert_unavailable(*future.result(timeout=30))
        for r, seconds in outage_requests(a, 2):
            assert_unavailable(r, seconds)
    assert_quiet_log(caplog)

    proxy.forward()
    assert proxied.get("/readyz").status_code == 200
    assert a.get("/v1/tickets/T-1").status_code == 200
    assert a.put("/v1/tickets/T-3", json=ticket()).status_code == 201


def test_an_exhausted_pool_is_a_quick_503(proxied: TestClient, tenant: TenantCtx) -> None:
    engine = proxied.app.state.engine  # type: ignore[attr-defined]
    a = tenant.admin
    with contextlib.ExitStack() as stack:
        for _ in range(2 * FAULT_SETTINGS["db_pool_size"]):  # the pool and its overflow
            stack.enter_context(engine.connect())
        r, seconds = timed(a.get, "/v1/tickets/T-1")
        assert_unavailable(r, seconds)
        assert r.headers["retry-after"] == "1"  # busy, not down: a connection frees up soon
    assert a.get("/v1/tickets/T-1").status_code == 404


def test_a_write_cut_off_mid_transaction_leaves_nothing(
    proxied: TestClient, proxy: TcpProxy, tenant: TenantCtx, db_url: str
) -> None:
    a = tenant.admin
    assert a.put("/v1/tickets/T-1", json=ticket()).status_code == 201

    def count(conn: psycopg.Connection[Any], table: str, ticket_id: str) -> int:
        column = "ticket_id" if table == "ticket_events" else "id"
        row = conn.execute(
            f"SELECT count(*) FROM {table} WHERE tenant_id = %s AND {column} = %s",
            (tenant.id, ticket_id),
        ).fetchone()
        assert row is not None
        return int(row[0])

    with direct(db_url) as blocker, direct(db_url) as watcher:
        watcher.autocommit = True
        # The ticket's INSERT goes through, its history row waits for this lock: the request is
        # then in the middle of its transaction when the network goes.
        blocker.execute("LOCK TABLE ticket_events IN EXCLUSIVE MODE")
        result: dict[str, Any] = {}
        put = threading.Thread(
            target=lambda: result.update(r=timed(a.put, "/v1/tickets/T-cut", json=ticket()))
        )
        put.start()
        deadline = time.monotonic() + 5
        waiting = "SELECT count(*) FROM pg_locks WHERE NOT granted AND relation = %s::regclass"
        while watcher.execute(waiting, ("ticket_events",)).fetchone() == (0,):
            assert time.monotonic() < deadline, "the PUT never reached its second INSERT"
            time.sleep(0.02)
        proxy.blackhole()
        blocker.commit()  # the server finishes the INSERT; its answer never reaches the app
        put.join(15)
        r, seconds = result["r"]
        assert_unavailable(r, seconds)
        assert count(watcher, "tickets", "T-cut") == 0

        proxy.forward()
        # Created now, not "updated": the cut-off transaction never committed anything.
        assert a.put("/v1/tickets/T-cut", json=ticket()).status_code == 201
        assert count(watcher, "tickets", "T-cut") == 1
        assert count(watcher, "ticket_events", "T-cut") == 1


def test_background_loops_back_off_quietly_and_recover(
    proxied: TestClient, proxy: TcpProxy, tenant: TenantCtx, caplog: pytest.LogCaptureFixture
) -> None:
    state = proxied.app.state  # type: ignore[attr-defined]
    worker = state.job_worker  # built but not started in the test environment
    assert worker.poll_seconds == 1.0
    with Deliverer(state.session_factory, state.settings) as deliverer:
        loop = BackgroundDeliverer(deliverer, poll_seconds=1.0)
        proxy.refuse()
        with caplog.at_level(logging.INFO):
            polls = [worker.poll() for _ in range(6)]
            rounds = [loop.round() for _ in range(6)]
        # The wait doubles from the poll interval (half of it jitter) up to the 30 s cap.
        for waits in (polls, rounds):
            assert 0.5 <= waits[0] <= 1.0 and 2.0 <= waits[2] <= 4.0, waits
            assert 15.0 <= waits[5] <= 30.0, waits
        lines = [r for r in caplog.records if r.levelno >= logging.WARNING]
        assert not [r for r in lines if r.exc_info], "a traceback per failed round"
        # One line per loop and kind of failure (the worker's first round also housekeeps).
        assert 2 <= len(lines) <= 4, [r.getMessage() for r in lines]
        assert_quiet_log(caplog)

        proxy.forward()
        caplog.clear()
        with caplog.at_level(logging.INFO):
            assert worker.poll() == 1.0
            assert loop.round() == 1.0
        assert sum("answers again" in r.getMessage() for r in caplog.records) == 2


def test_the_checkout_ping_leaves_no_transaction_open(db: Engine) -> None:
    # A pooled connection is pinged on checkout; were the ping's transaction left open, the
    # next user could not switch the connection to autocommit (nor pick an isolation level).
    with db.connect() as conn:
        conn.execute(text("SELECT 1"))
    with db.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        assert conn.execute(text("SELECT 1")).scalar() == 1
