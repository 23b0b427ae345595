"""Engines and sessions, built from :class:`~api.settings.Settings` on demand (never at import).

SQLite gets what a service needs from it: foreign keys on (off by default there), WAL so readers
never block the writer, a busy timeout instead of instant "database is locked", and our own
``BEGIN`` so a unit of work can ask for ``BEGIN IMMEDIATE`` (see :mod:`api.db.locks`) — the
``sqlite3`` module's implicit transaction handling would otherwise begin too late to lock.

PostgreSQL gets bounds on every wait, so a database that does not answer is a quick error (the
error map makes it a 503) rather than a request hung for minutes:

- connecting gives up after ``db_connect_timeout_seconds``;
- the server cancels a statement, a lock wait or a transaction left idle by its client after
  ``db_statement_timeout_seconds``, ``db_lock_timeout_seconds`` and
  ``db_idle_in_transaction_timeout_seconds`` (connection options, no extra round trip);
- TCP keepalives and ``tcp_user_timeout`` close a connection whose peer vanished;
- :class:`ReplyBoundConnection` waits at most ``db_reply_timeout_seconds`` for any answer, then
  closes the connection: behind a proxy or load balancer a partition still acknowledges every
  packet, and nothing below the client can notice it;
- a pooled connection is pinged on checkout within the connect timeout (not the reply timeout),
  so a pool of connections cut by a partition is found out in seconds and replaced;
- waiting for a free pooled connection gives up after ``db_pool_timeout_seconds``.

Engines never put statement parameters in exceptions or logs (``hide_parameters``): they hold
customer data.
"""

from __future__ import annotations

import sqlite3
import threading
from typing import Any

import psycopg
from psycopg.errors import _WaitTimeout
from sqlalchemy import URL, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import InvalidatePoolError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from api.settings import Settings

SQLITE_BEGIN_OPTION = "switchboard_sqlite_begin"


def _configure_sqlite(engine: Engine, busy_timeout_ms: int, *, foreign_keys: bool) -> None:
    in_memory = engine.url.database in (None, "", ":memory:")

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # autocommit at the driver; we emit BEGIN ourselves
        cur = dbapi_conn.cursor()
        try:
            cur.execute(f"PRAGMA foreign_keys={'ON' if foreign_keys else 'OFF'}")
            cur.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
            if not in_memory:
                cur.execute("PRAGMA journal_mode=WAL")
                cur.execute("PRAGMA synchronous=NORMAL")
        finally:
            cur.close()

    # SQLite has one writer. The writers of this process queue on a lock of their own before
    # BEGIN IMMEDIATE instead of in SQLite's busy handler, which polls with sleeps of up to
    # 100 ms and in no order: in a burst of writers that added up to seconds of latency, and a
    # writer unlucky enough to sleep through the whole busy timeout got a 503 while the lock
    # was free most of the time. A lock released at commit or rollback wakes the next waiter at
    # once. Writers of other processes still meet at SQLite's lock (and its busy timeout).
    writer = threading.Lock()
    held = "switchboard.sqlite_writer"

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        mode = conn.get_execution_options().get(SQLITE_BEGIN_OPTION, "")
        if mode != "IMMEDIATE" or in_memory:
            conn.exec_driver_sql("BEGIN")
            return
        if not writer.acquire(timeout=busy_timeout_ms / 1000):
            raise OperationalError(
                "BEGIN IMMEDIATE", None, sqlite3.OperationalError("database is locked")
            )
        conn.info[held] = True
        try:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        except BaseException:
            _release(conn)
            raise

    def _release(conn: Any) -> None:
        if conn.info.pop(held, False):
            writer.release()

    event.listen(engine, "commit", _release)
    event.listen(engine, "rollback", _release)

    @event.listens_for(engine, "checkin")
    def _on_checkin(_dbapi_conn: Any, record: Any) -> None:
        # A connection returned without its transaction ended through the Connection (an
        # invalidated one): its lock is released all the same.
        if record.info.pop(held, False):
            writer.release()


class ReplyBoundConnection(psycopg.Connection[Any]):
    """A psycopg connection that waits a bounded time for the server's answer.

    Every operation (execute, commit, rollback) goes through :meth:`wait`; psycopg leaves its
    timeout unset, so a silent server is waited for forever. Past ``reply_timeout`` the
    connection is closed (its protocol state is unknown mid-exchange) and the caller gets an
    ``OperationalError``, which SQLAlchemy sees as a disconnect: the connection is discarded
    and the pool refreshed.
    """

    reply_timeout: float | None = None

    def wait(self, gen: Any, interval: float = 0.1, timeout: float | None = None) -> Any:
        if timeout is None:
            timeout = self.reply_timeout
        try:
            return super().wait(gen, interval, timeout)
        except _WaitTimeout:
            # psycopg's (private) "this wait timed out": only ours is unbounded by the caller.
            self.pgconn.finish()
            raise psycopg.OperationalError(
                f"no answer from the database within {timeout:g} s; connection closed"
            ) from None

    def ping(self, timeout: float) -> None:
        """One round trip bounded by ``timeout`` (the pool's checkout check). In autocommit,
        as SQLAlchemy's own ping: an implicit transaction left open would keep the next user
        from choosing autocommit or an isolation level."""
        saved, self.reply_timeout = self.reply_timeout, timeout
        transactional = not self.autocommit
        try:
            if transactional:
                self.autocommit = True
            with self.cursor() as cur:
                cur.execute("SELECT 1")
        finally:
            self.reply_timeout = saved
            if transactional and not self.closed:
                self.autocommit = False


def _millis(seconds: float) -> int:
    return round(seconds * 1000)


def postgres_connect_args(url: URL, settings: Settings) -> dict[str, Any]:
    """libpq parameters bounding every wait (see the module docstring). The URL's own
    ``options`` (a test's ``search_path``, say) are kept and ours appended."""
    server = {
        "statement_timeout": settings.db_statement_timeout_seconds,
        "lock_timeout": settings.db_lock_timeout_seconds,
        "idle_in_transaction_session_timeout": settings.db_idle_in_transaction_timeout_seconds,
    }
    given = url.query.get("options", "")
    options = [given] if isinstance(given, str) and given else list(given or ())
    options += [f"-c {name}={_millis(value)}" for name, value in server.items()]
    tcp = settings.db_tcp_timeout_seconds
    return {
        "connect_timeout": settings.db_connect_timeout_seconds,
        "options": " ".join(options),
        # A silent peer is probed after tcp/2 s, three times tcp/6 s apart: gone within ~tcp s.
        "keepalives": 1,
        "keepalives_idle": max(1, tcp // 2),
        "keepalives_interval": max(1, tcp // 6),
        "keepalives_count": 3,
        "tcp_user_timeout": tcp * 1000,
    }


def _configure_postgres(engine: Engine, settings: Settings) -> None:
    reply_timeout = settings.db_reply_timeout_seconds
    ping_timeout = float(settings.db_connect_timeout_seconds)

    @event.listens_for(engine, "do_connect")
    def _connect(_dialect: Any, _record: Any, cargs: Any, cparams: dict[str, Any]) -> Any:
        conn = ReplyBoundConnection.connect(*cargs, **cparams)
        conn.reply_timeout = reply_timeout
        return conn

    @event.listens_for(engine, "connect")
    def _fresh(_dbapi_conn: Any, record: Any) -> None:
        record.info["fresh"] = True

    @event.listens_for(engine, "checkout")
    def _ping(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        # SQLAlchemy's pool_pre_ping would wait the full reply timeout on a connection that a
        # partition cut; this ping waits only as long as a new connection may take.
        if record.info.pop("fresh", False):
            return  # just connected: it answered a moment ago
        try:
            dbapi_conn.ping(ping_timeout)
        except psycopg.Error as exc:
            # The others went the same way (a restart, a partition): the pool drops every
            # connection older than now, so no other request pays a ping for a dead one, and
            # makes this request one new connection (bounded by the connect timeout); if that
            # fails too, the request gets the connect error.
            raise InvalidatePoolError(f"pooled connection is gone: {type(exc).__name__}") from exc


def make_engine(settings: Settings, *, sqlite_foreign_keys: bool = True) -> Engine:
    """A new engine for ``settings.database_url``; the caller disposes of it.

    Migrations turn SQLite's foreign keys off: batch mode rebuilds a table by dropping it, and
    with foreign keys on, dropping a parent would cascade-delete its children's rows.
    """
    url = make_url(settings.database_url)
    # Statement parameters hold customer data: never in an exception's text or a log line.
    kwargs: dict[str, Any] = {"echo": settings.db_echo, "hide_parameters": True}
    sqlite = url.get_backend_name() == "sqlite"
    if sqlite:
        kwargs["connect_args"] = {"check_same_thread": False}
    else:
        kwargs["pool_size"] = settings.db_pool_size
        kwargs["max_overflow"] = settings.db_pool_size
        kwargs["pool_timeout"] = settings.db_pool_timeout_seconds
        kwargs["connect_args"] = postgres_connect_args(url, settings)
    engine = create_engine(url, **kwargs)
    if sqlite:
        _configure_sqlite(engine, settings.sqlite_busy_timeout_ms, foreign_keys=sqlite_foreign_keys)
    else:
        _configure_postgres(engine, settings)
    return engine


class UnitSession(Session):
    """A session whose ``commit()`` can be held back until the request's answer is known.

    A POST with an ``Idempotency-Key`` must store its response in the same transaction as its
    work (:mod:`api.idempotency.middleware`), but routes commit before their response is
    written. While ``hold_commit`` is set, ``commit()`` only flushes — constraint violations
    still surface at the route's commit, where the route handles them — and notes that a
    commit was asked for
    (``commit_held``); the owner of the request then adds the response and commits for real
    with :meth:`commit_now`. Every other session commits as usual.
    """

    hold_commit = False
    commit_held = False

    def commit(self) -> None:
        if self.hold_commit:
            self.flush()
            self.commit_held = True
            return
        super().commit()

    def rollback(self) -> None:
        self.commit_held = False
        super().rollback()

    def commit_now(self) -> None:
        """Commit, whatever ``hold_commit`` says."""
        self.hold_commit = False
        self.commit_held = False
        super().commit()


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    # Rows stay readable after commit: routes commit, then serialise what they wrote.
    return sessionmaker(engine, class_=UnitSession, expire_on_commit=False, autoflush=True)


def writer_engine(engine: Engine) -> Engine:
    """``engine`` for units of work that write: on SQLite every transaction begins with
    ``BEGIN IMMEDIATE``, taking the write lock up front.

    A deferred ``BEGIN`` that reads and then writes asks SQLite to upgrade its read lock, and
    SQLite refuses that at once (``database is locked``, the busy timeout does not apply) when
    another writer committed since the read began: concurrent writers failed instead of waiting
    their turn. Taken up front, the lock is waited for (``busy_timeout``) like any other.
    PostgreSQL needs nothing: ``engine`` itself is returned."""
    if engine.dialect.name != "sqlite":
        return engine
    return engine.execution_options(**{SQLITE_BEGIN_OPTION: "IMMEDIATE"})
