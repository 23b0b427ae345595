"""Fixtures for the service tests: the real app, the real HTTP stack, a real database.

Every API test runs on SQLite and on PostgreSQL (the session fixture ``db_url`` is
parametrized), except the few marked :data:`postgres_only`, which test what only PostgreSQL
has. PostgreSQL comes from ``SWITCHBOARD_TEST_DATABASE_URL`` or the local server
(postgresql+psycopg://postgres@127.0.0.1:5432/switchboard_test, created if missing); without a
reachable server those tests skip with the reason, so a machine without PostgreSQL still passes.

Schemas are built once per session by ``alembic upgrade head`` (the migrations are what is
tested, not ``create_all``), and every test starts from empty tables (emptied: much faster
than rebuilding). On PostgreSQL each session works in a private schema of the test database, so
several engineers or CI jobs can share it without truncating each other's tables.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx2
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, MetaData, text
from sqlalchemy.engine import make_url

from api.db import migrate
from api.db.engine import make_engine, make_session_factory
from api.keys import tenants
from api.main import create_app
from api.settings import Environment, Settings
from tests.conftest import worker_id

DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/switchboard_test"
T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)  # a Monday morning


# --- PostgreSQL plumbing -------------------------------------------------------------------


def pg_base_url() -> str:
    return os.environ.get("SWITCHBOARD_TEST_DATABASE_URL", DEFAULT_PG_URL)


def pg_connect(url: str, dbname: str | None = None) -> Any:
    import psycopg

    u = make_url(url)
    return psycopg.connect(
        host=u.host or "127.0.0.1",
        port=u.port or 5432,
        user=u.username or "postgres",
        password=u.password or None,
        dbname=dbname or u.database,
        autocommit=True,
        connect_timeout=3,
    )


def pg_unavailable(url: str) -> str | None:
    """Create the test database if missing; the reason to skip when no server answers."""
    import psycopg

    dbname = make_url(url).database
    try:
        with pg_connect(url, "postgres") as conn:
            found = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (dbname,))
            if found.fetchone() is None:
                # Another session may create it meanwhile: that is just as good.
                with contextlib.suppress(psycopg.errors.DuplicateDatabase):
                    conn.execute(f'CREATE DATABASE "{dbname}"')
    except psycopg.OperationalError as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return (
            f"PostgreSQL not reachable at {make_url(url).host}:{make_url(url).port}: {first_line}"
        )
    return None


def with_search_path(url: str, schema: str) -> str:
    u = make_url(url).update_query_dict({"options": f"-csearch_path={schema}"})
    return u.render_as_string(hide_password=False)


class PgSchema:
    """A private schema in the test database, dropped on exit."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        # Per process (each xdist worker migrates its own) and unique even across machines.
        self.name = f"t{worker_id()}_{os.getpid()}_{uuid.uuid4().hex[:10]}"
        self.url = with_search_path(base_url, self.name)

    def __enter__(self) -> PgSchema:
        with pg_connect(self.base_url) as conn:
            conn.execute(f'CREATE SCHEMA "{self.name}"')
        return self

    def __exit__(self, *exc: object) -> None:
        with pg_connect(self.base_url) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{self.name}" CASCADE')


# --- databases -----------------------------------------------------------------------------

BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres),
]

# For a test of what only PostgreSQL has (its exclusion constraints, row-level locking): run
# it there alone instead of generating a SQLite variant that could only skip.
postgres_only = pytest.mark.parametrize("db_url", BACKENDS[1:], indirect=True, scope="session")


@pytest.fixture(scope="session")
def pg_url() -> str:
    """The base PostgreSQL test URL, or a skip saying why there is none."""
    url = pg_base_url()
    reason = pg_unavailable(url)
    if reason:
        if os.environ.get("SWITCHBOARD_REQUIRE_POSTGRES"):
            # CI runs the suite against PostgreSQL too: there, a missing server is a failure.
            pytest.fail(f"SWITCHBOARD_REQUIRE_POSTGRES is set but {reason}")
        pytest.skip(reason)
    return url


@pytest.fixture(scope="session", params=BACKENDS)
def db_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A migrated, empty database of each backend, shared by the session."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'switchboard.db'}"
        migrate.upgrade(url)
        yield url
        return
    with PgSchema(request.getfixturevalue("pg_url")) as schema:
        migrate.upgrade(schema.url)
        yield schema.url


@pytest.fixture(scope="session")
def db_engine(db_url: str) -> Iterator[Engine]:
    engine = make_engine(Settings(database_url=db_url, environment=Environment.TEST))
    yield engine
    engine.dispose()


_TABLES: dict[str, list[str]] = {}


def _tables(engine: Engine) -> list[str]:
    """Every table the migrations made (not only this package's metadata: jobs, webhooks and
    later packages add their own), children before parents. Reflected once per database."""
    key = str(engine.url)
    if key not in _TABLES:
        meta = MetaData()
        meta.reflect(engine)
        ordered = [t.name for t in meta.sorted_tables if t.name != "alembic_version"]
        _TABLES[key] = list(reversed(ordered))
    return _TABLES[key]


_SEQUENCES: dict[str, list[str]] = {}


def _sequences(engine: Engine) -> list[str]:
    """The PostgreSQL sequences the migrations made in this session's schema (a serial column
    such as ``ticket_events.seq``'s), looked up once per database."""
    key = str(engine.url)
    if key not in _SEQUENCES:
        with engine.connect() as conn:
            found = conn.execute(
                text(
                    "SELECT sequence_name FROM information_schema.sequences "
                    "WHERE sequence_schema = current_schema() ORDER BY sequence_name"
                )
            )
            _SEQUENCES[key] = list(found.scalars())
    return _SEQUENCES[key]


def truncate_all(engine: Engine, *, new_tables: bool = False) -> None:
    """Every table emptied, children before parents, and on PostgreSQL every sequence restarted
    (as ``TRUNCATE ... RESTART IDENTITY`` would). DELETE, not TRUNCATE, on PostgreSQL too: a
    TRUNCATE of the ~30 tables makes new files for each and took ~90 ms a test, DELETE of the
    few rows a test leaves ~3 ms (measured; ~650 PostgreSQL tests, about 55 s of the suite).

    A DELETE leaves the planner's statistics of earlier tests' rows behind; ``new_tables``
    (a test marked ``new_tables``) TRUNCATEs instead, so the tables plan as a new database's."""
    names = _tables(engine)
    if new_tables and engine.dialect.name == "postgresql":
        with engine.begin() as conn:
            conn.execute(text(f"TRUNCATE {', '.join(names)} RESTART IDENTITY CASCADE"))
        return
    sequences = _sequences(engine) if engine.dialect.name == "postgresql" else []
    with engine.begin() as conn:
        for name in names:
            conn.execute(text(f"DELETE FROM {name}"))
        for seq in sequences:
            conn.execute(text(f'ALTER SEQUENCE "{seq}" RESTART'))


@pytest.fixture
def db(db_engine: Engine, request: pytest.FixtureRequest) -> Engine:
    """The session's database, emptied for this test (``@pytest.mark.new_tables``: with no
    planner statistics left either, see :func:`truncate_all`)."""
    truncate_all(db_engine, new_tables=request.node.get_closest_marker("new_tables") is not None)
    return db_engine


# --- the app -------------------------------------------------------------------------------


class FakeClock:
    """A settable clock: tests decide what "now" is."""

    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kwargs: float) -> None:
        self.now += timedelta(**kwargs)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def settings(db: Engine, db_url: str) -> Settings:
    return Settings(database_url=db_url, environment=Environment.TEST)


@pytest.fixture
def app(settings: Settings, clock: FakeClock) -> FastAPI:
    return create_app(settings, clock=clock)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as c:
        yield c


# --- tenants -------------------------------------------------------------------------------


class As:
    """A client speaking with one API key: ``a.get("/v1/skills")``."""

    def __init__(self, client: TestClient, key: str) -> None:
        self.client = client
        self.key = key

    def request(self, method: str, url: str, **kwargs: Any) -> httpx2.Response:
        headers = {"Authorization": f"Bearer {self.key}", **kwargs.pop("headers", {})}
        return self.client.request(method, url, headers=headers, **kwargs)

    def get(self, url: str, **kwargs: Any) -> httpx2.Response:
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> httpx2.Response:
        return self.request("POST", url, **kwargs)

    def put(self, url: str, **kwargs: Any) -> httpx2.Response:
        return self.request("PUT", url, **kwargs)

    def patch(self, url: str, **kwargs: Any) -> httpx2.Response:
        return self.request("PATCH", url, **kwargs)

    def delete(self, url: str, **kwargs: Any) -> httpx2.Response:
        return self.request("DELETE", url, **kwargs)


@dataclass
class TenantCtx:
    id: str
    admin_key: str
    admin: As

    def key(self, *scopes: str) -> As:
        """A new key of this tenant with ``scopes``, minted through the API."""
        r = self.admin.post("/v1/api-keys", json={"name": "test", "scopes": list(scopes)})
        assert r.status_code == 201, r.text
        return As(self.admin.client, r.json()["key"])


def make_tenant(engine: Engine, client: TestClient, name: str) -> TenantCtx:
    with make_session_factory(engine)() as session:
        tenant, key = tenants.create(session=session, name=name, now=T0)
        session.commit()
    return TenantCtx(id=tenant.id, admin_key=key, admin=As(client, key))


@pytest.fixture
def tenant_a(db: Engine, client: TestClient) -> TenantCtx:
    return make_tenant(db, client, "Tenant A")


@pytest.fixture
def tenant_b(db: Engine, client: TestClient) -> TenantCtx:
    return make_tenant(db, client, "Tenant B")


@pytest.fixture
def a(tenant_a: TenantCtx) -> As:
    """Tenant A's admin client (admin passes every scope check)."""
    return tenant_a.admin


@pytest.fixture
def b(tenant_b: TenantCtx) -> As:
    return tenant_b.admin


def assert_problem(r: httpx2.Response, status: int, *fields: str) -> dict[str, Any]:
    """``r`` is an RFC 9457 problem with ``status`` naming each of ``fields``."""
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json"), r.headers
    body = r.json()
    for key in ("type", "title", "status", "detail", "instance"):
        assert key in body, body
    assert body["status"] == status
    named = {e["field"] for e in body.get("errors", [])}
    for f in fields:
        assert f in named, (f, body)
    return body


# What PUT /v1/tickets/{id} requires besides the team (a full replacement, api/tickets/schemas.py),
# at the values most tests do not care about. A test that is about one of them says it.
TICKET_REQUIRED = {
    "required_skills": {},
    "priority": "normal",
    "status": "new",
    "effort_minutes": 30,
    "owner_agent": None,
}


def ticket_body(body: dict[str, Any]) -> dict[str, Any]:
    """``body`` as a whole ticket: the required fields it leaves out at :data:`TICKET_REQUIRED`."""
    return TICKET_REQUIRED | body
