"""Engines and sessions, built from :class:`~api.settings.Settings` on demand (never at import).

SQLite gets what a service needs from it: foreign keys on (off by default there), WAL so readers
never block the writer, a busy timeout instead of instant "database is locked", and our own
``BEGIN`` so a unit of work can ask for ``BEGIN IMMEDIATE`` (see :mod:`api.db.locks`) — the
``sqlite3`` module's implicit transaction handling would otherwise begin too late to lock.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
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

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        mode = conn.get_execution_options().get(SQLITE_BEGIN_OPTION, "")
        conn.exec_driver_sql("BEGIN IMMEDIATE" if mode == "IMMEDIATE" else "BEGIN")


def make_engine(settings: Settings, *, sqlite_foreign_keys: bool = True) -> Engine:
    """A new engine for ``settings.database_url``; the caller disposes of it.

    Migrations turn SQLite's foreign keys off: batch mode rebuilds a table by dropping it, and
    with foreign keys on, dropping a parent would cascade-delete its children's rows.
    """
    url = make_url(settings.database_url)
    kwargs: dict[str, Any] = {"echo": settings.db_echo}
    if url.get_backend_name() == "sqlite":
        kwargs["connect_args"] = {"check_same_thread": False}
    else:
        kwargs["pool_size"] = settings.db_pool_size
        kwargs["max_overflow"] = settings.db_pool_size
        kwargs["pool_pre_ping"] = True
    engine = create_engine(url, **kwargs)
    if url.get_backend_name() == "sqlite":
        _configure_sqlite(engine, settings.sqlite_busy_timeout_ms, foreign_keys=sqlite_foreign_keys)
    return engine


class UnitSession(Session):
    """A session whose ``commit()`` can be held back until the request's answer is known.

    A POST with an ``Idempotency-Key`` must store its response in the same transaction as its
    work (:mod:`api.idempotency`), but routes commit before their response is written. While
    ``hold_commit`` is set, ``commit()`` only flushes — constraint violations still surface at
    the route's commit, where the route handles them — and notes that a commit was asked for
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
