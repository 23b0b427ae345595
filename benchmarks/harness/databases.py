"""The benchmark databases: a SQLite file in a temp directory, or a PostgreSQL database on the
local server, dropped and re-created for each run and guarded against a concurrent run; and the
PostgreSQL backends serving it (their CPU is part of what a request costs)."""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

PG_SERVER_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
PG_BENCH_DB = "switchboard_bench"
_PG_LOCK_NS = 0x5B0B  # advisory-lock namespace of the benchmarks (the service uses 0x5B0A)


def sqlite_url(directory: Path) -> str:
    return f"sqlite:///{directory / 'switchboard_bench.db'}"


def postgres_url(server_url: str = PG_SERVER_URL, dbname: str = PG_BENCH_DB) -> str:
    return make_url(server_url).set(database=dbname).render_as_string(hide_password=False)


def connect(server_url: str = PG_SERVER_URL, dbname: str | None = None) -> Any:
    """An autocommit psycopg connection to ``dbname`` (default: the URL's own database) on the
    server of ``server_url``, for what SQLAlchemy does not do: creating and dropping databases,
    advisory locks held across a whole run, listing backends."""
    import psycopg

    u = make_url(server_url)
    return psycopg.connect(
        host=u.host or "127.0.0.1",
        port=u.port or 5432,
        user=u.username or "postgres",
        password=u.password or None,
        dbname=dbname or u.database or "postgres",
        autocommit=True,
        connect_timeout=5,
    )


@contextlib.contextmanager
def pg_exclusive(server_url: str = PG_SERVER_URL, dbname: str = PG_BENCH_DB) -> Iterator[None]:
    """Hold a server-wide advisory lock naming the benchmark database for the whole run.

    Resetting drops the database, killing its sessions: a second run started meanwhile (another
    engineer, CI) would wreck this one's measurements, so it is refused instead.
    """
    key = int.from_bytes(hashlib.blake2b(dbname.encode(), digest_size=4).digest(), "big") >> 1
    with connect(server_url) as conn:
        row = conn.execute("SELECT pg_try_advisory_lock(%s, %s)", (_PG_LOCK_NS, key)).fetchone()
        if not row or not row[0]:
            raise SystemExit(
                f"another benchmark run is using PostgreSQL database {dbname!r}; wait for it to "
                "finish or pass --pg-database NAME"
            )
        yield  # closing the connection releases the lock


def reset_postgres(server_url: str = PG_SERVER_URL, dbname: str = PG_BENCH_DB) -> str:
    """Drop and re-create the benchmark database; returns its SQLAlchemy URL."""
    with connect(server_url) as conn:
        # A previous run killed mid-way may have left sessions open on it.
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid()",
            (dbname,),
        )
        conn.execute(f'DROP DATABASE IF EXISTS "{dbname}"')
        conn.execute(f'CREATE DATABASE "{dbname}"')
    return postgres_url(server_url, dbname)


def postgres_backends(url: str) -> Callable[[], set[int]]:
    """A function listing the server pids of every session open on ``url``'s database (read
    from the default server, :data:`PG_SERVER_URL`)."""
    dbname = make_url(url).database

    def pids() -> set[int]:
        with connect(PG_SERVER_URL) as conn:
            rows = conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                (dbname,),
            ).fetchall()
        return {int(r[0]) for r in rows}

    return pids
