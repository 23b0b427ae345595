"""A refused booking releases the tenant lock before it computes its alternatives (so the next
booking of a burst is decided meanwhile), and refusals of one state share one computation of
them; on SQLite and PostgreSQL."""

from __future__ import annotations

import sqlite3
import threading
import time
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy import Engine, text

from api.bookings import service as bookings
from api.bookings.cache import SharedAnswers
from api.bookings.routes import booking_cache
from tests.api.bookings.test_bookings import BERLIN_10, book, org
from tests.api.conftest import As, TenantCtx, assert_problem


def _lock_is_free(app: FastAPI, db: Engine, tenant_id: str) -> bool:
    """Whether another unit of work could take ``tenant_id``'s lock right now (without waiting:
    SQLite's write lock, PostgreSQL's advisory lock)."""
    if db.dialect.name == "sqlite":
        with db.connect() as conn:
            raw = conn.connection.dbapi_connection
            assert raw is not None
            cur = raw.cursor()
            cur.execute("PRAGMA busy_timeout=0")
            try:
                cur.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError:  # "database is locked": the lock is held
                return False
            finally:
                cur.execute("PRAGMA busy_timeout=5000")
            cur.execute("ROLLBACK")
            return True
    from api.db.locks import _LOCK_NAMESPACE, _advisory_key

    with db.connect() as conn:
        got = conn.execute(
            text("SELECT pg_try_advisory_xact_lock(:ns, :key)"),
            {"ns": _LOCK_NAMESPACE, "key": _advisory_key(tenant_id)},
        ).scalar_one()
        conn.rollback()
        return bool(got)


def test_alternatives_are_computed_after_the_lock_is_released(
    a: As, tenant_a: TenantCtx, app: FastAPI, db: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    org(a, agents=("ana",))
    assert book(a).status_code == 201
    real = bookings.slots.find_slots
    seen: list[bool] = []

    def watching(*args: Any, **kwargs: Any) -> Any:
        seen.append(_lock_is_free(app, db, tenant_a.id))
        return real(*args, **kwargs)

    monkeypatch.setattr(bookings.slots, "find_slots", watching)
    problem = assert_problem(book(a, ticket="ZD-2"), 409)
    assert problem["alternatives"] and BERLIN_10 not in [
        s["start"] for s in problem["alternatives"]
    ]
    assert seen == [True]  # computed once, with the lock free
    # The same start refused again in the same state: neither searched nor computed again.
    calls: list[int] = []
    monkeypatch.setattr(bookings.slots, "book", lambda *a_, **k: calls.append(1))
    again = assert_problem(book(a, ticket="ZD-3"), 409)
    assert calls == [] and seen == [True]
    assert again["alternatives"] == problem["alternatives"]
    assert again["reason"] == problem["reason"]
    assert booking_cache(app).alternatives.computed == 1


def test_shared_answers_compute_once_for_simultaneous_callers() -> None:
    shared: SharedAnswers[int] = SharedAnswers(size=2)
    runs: list[int] = []
    gate = threading.Event()

    def slow() -> int:
        runs.append(1)
        gate.wait(5)
        return 42

    got: list[int] = []
    threads = [threading.Thread(target=lambda: got.append(shared.get("k", slow))) for _ in range(8)]
    for t in threads:
        t.start()
    time.sleep(0.1)
    gate.set()
    for t in threads:
        t.join(5)
    assert got == [42] * 8 and runs == [1] and shared.computed == 1
    assert shared.get("k", lambda: 0) == 42 and shared.peek("k") == 42

    def broken() -> int:
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        shared.get("x", broken)
    assert shared.peek("x") is None and shared.get("x", lambda: 7) == 7  # failures not kept
    shared.put("y", 1)
    shared.put("z", 2)
    assert shared.peek("k") is None  # the oldest key went (size 2)
