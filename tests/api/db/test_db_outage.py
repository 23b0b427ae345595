"""Which database errors are an outage (a 503) and which are bugs, and the throttled log line."""

from __future__ import annotations

import logging
import sqlite3

import psycopg
import pytest
from psycopg import errors as pg_errors
from sqlalchemy import exc as sa_exc

from api.db.outage import Backoff, ThrottledLog, classify
from api.errors import database_unavailable_problem
from api.settings import Settings


def wrapped(cls: type[sa_exc.DBAPIError], driver: Exception, **kw: bool) -> sa_exc.DBAPIError:
    return cls("INSERT INTO t VALUES (%(x)s)", {"x": "secret"}, driver, **kw)


@pytest.mark.parametrize(
    ("error", "busy"),
    [
        (sa_exc.TimeoutError("QueuePool limit reached"), True),
        (wrapped(sa_exc.OperationalError, sqlite3.OperationalError("database is locked")), True),
        (wrapped(sa_exc.OperationalError, pg_errors.LockNotAvailable("lock timeout")), True),
        (wrapped(sa_exc.OperationalError, pg_errors.QueryCanceled("statement timeout")), True),
        (wrapped(sa_exc.OperationalError, psycopg.OperationalError("refused\nDETAIL")), False),
        (wrapped(sa_exc.InterfaceError, psycopg.InterfaceError("connection closed")), False),
        (
            wrapped(
                sa_exc.DBAPIError, psycopg.DatabaseError("SSL SYSCALL"), connection_invalidated=True
            ),
            False,
        ),
        (psycopg.OperationalError("raw, from a pool checkout"), False),
        (sa_exc.DisconnectionError("pooled connection is gone"), False),
    ],
)
def test_an_outage_is_a_503_saying_how_long_to_wait(error: Exception, busy: bool) -> None:
    found = classify(error)
    assert found is not None and found.busy is busy
    assert "secret" not in found.reason and "INSERT" not in found.reason
    assert "\n" not in found.reason
    problem = database_unavailable_problem(error)
    assert problem is not None and problem.status == 503
    assert problem.headers() == {"Retry-After": "1" if busy else "5"}


@pytest.mark.parametrize(
    "error",
    [
        wrapped(sa_exc.IntegrityError, psycopg.IntegrityError("duplicate key")),
        wrapped(sa_exc.ProgrammingError, psycopg.ProgrammingError("syntax error")),
        wrapped(sa_exc.DataError, psycopg.DataError("NUL character")),
        ValueError("not the database"),
    ],
)
def test_anything_else_is_not_an_outage(error: Exception) -> None:
    assert classify(error) is None
    assert database_unavailable_problem(error) is None


def test_a_repeated_line_is_held_back_and_counted(caplog: pytest.LogCaptureFixture) -> None:
    now = [100.0]
    throttled = ThrottledLog(logging.getLogger("test"), every=10.0, clock=lambda: now[0])
    with caplog.at_level(logging.INFO):
        assert [throttled.log(logging.WARNING, "a", "down: %s", i) for i in range(3)] == [
            True,
            False,
            False,
        ]
        assert throttled.log(logging.WARNING, "b", "another kind")  # its own budget
        now[0] += 11
        assert throttled.log(logging.WARNING, "a", "down: %s", 3)
        throttled.recovered("test", 4)
        assert throttled.log(logging.WARNING, "a", "down: %s", 4)  # a new outage: at once
    assert [r.getMessage() for r in caplog.records] == [
        "down: 0",
        "another kind",
        "down: 3 (2 more like it in the last 11 s)",
        "database answers again (test) after 4 failed round(s)",
        "down: 4",
    ]


def test_backoff_doubles_to_its_cap_and_resets() -> None:
    backoff = Backoff(1.0, 8.0)
    waits = [backoff.failed() for _ in range(6)]
    for wait, ceiling in zip(waits, [1, 2, 4, 8, 8, 8], strict=True):
        assert ceiling / 2 <= wait <= ceiling
    assert backoff.succeeded() == 6
    assert backoff.failed() <= 1.0


def test_the_reply_timeout_must_outlast_the_statement_timeout() -> None:
    # Else a slow statement would be taken for a dead network and its connection dropped.
    with pytest.raises(ValueError, match="db_reply_timeout_seconds"):
        Settings(db_statement_timeout_seconds=40.0)
    assert Settings(db_statement_timeout_seconds=40.0, db_reply_timeout_seconds=45.0)
