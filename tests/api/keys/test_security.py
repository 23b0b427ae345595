"""API keys stored hashed, settings refusing unsafe values, and the per-tenant write lock."""

from __future__ import annotations

import hashlib
import threading
import time

import pytest
from pydantic import ValidationError
from sqlalchemy import Engine, select, text

from api.db.engine import make_session_factory
from api.db.locks import lock_tenant
from api.db.models import ApiKey, Team
from api.settings import DEFAULT_DATABASE_URL, Environment, Settings
from tests.api.conftest import T0, As, TenantCtx, assert_problem, make_tenant, postgres_only


def test_keys_are_stored_hashed_and_shown_once(tenant_a: TenantCtx, db: Engine) -> None:
    r = tenant_a.admin.post("/v1/api-keys", json={"name": "zendesk", "scopes": ["helpdesk"]})
    assert r.status_code == 201
    created = r.json()
    plaintext = created["key"]
    with db.connect() as conn:
        rows = conn.execute(select(ApiKey)).all()
        dump = " ".join(str(v) for row in rows for v in row)
    assert plaintext not in dump  # not stored anywhere, in any column
    (row,) = [r for r in rows if r.id == created["id"]]
    assert row.key_hash == hashlib.sha256(plaintext.encode()).hexdigest()
    assert plaintext.startswith(f"sb_{row.prefix}_")
    # Listing never shows a secret again.
    listed = tenant_a.admin.get("/v1/api-keys").json()
    assert all("key" not in k for k in listed)
    # The key works, until it is revoked.
    helpdesk = As(tenant_a.admin.client, plaintext)
    assert helpdesk.get("/v1/teams").status_code == 200
    assert tenant_a.admin.delete(f"/v1/api-keys/{created['id']}").status_code == 200
    assert_problem(helpdesk.get("/v1/teams"), 401)
    # A key with the right prefix but a wrong secret is refused.
    forged = plaintext[:-4] + ("AAAA" if not plaintext.endswith("AAAA") else "BBBB")
    assert_problem(As(tenant_a.admin.client, forged).get("/v1/teams"), 401)


def test_unknown_scope_is_422(a: As) -> None:
    assert_problem(a.post("/v1/api-keys", json={"scopes": ["root"]}), 422, "scopes[0]")
    assert_problem(a.post("/v1/api-keys", json={"scopes": []}), 422, "scopes")


def test_settings_refuse_unsafe_values(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("DATABASE_URL", "SWITCHBOARD_DATABASE_URL", "SWITCHBOARD_SECRET_KEY"):
        monkeypatch.delenv(name, raising=False)
    assert Settings().database_url == DEFAULT_DATABASE_URL
    with pytest.raises(ValidationError, match="SECRET_KEY"):
        Settings(environment=Environment.PRODUCTION)
    with pytest.raises(ValidationError, match="SECRET_KEY"):
        Settings(environment=Environment.PRODUCTION, secret_key="short")
    strong = "x" * 40
    with pytest.raises(ValidationError, match="PRIVATE_URLS"):
        Settings(environment="production", secret_key=strong, webhook_allow_private_urls=True)
    assert Settings(environment="production", secret_key=strong).environment == "production"
    with pytest.raises(ValidationError, match="psycopg"):
        Settings(database_url="postgresql://u@h/db")
    with pytest.raises(ValidationError, match="sqlite"):
        Settings(database_url="mysql://u@h/db")
    # The environment is read when Settings is built, not when the module was imported.
    monkeypatch.setenv("DATABASE_URL", "postgresql+psycopg://u@db.example/sb")
    assert Settings().database_url == "postgresql+psycopg://u@db.example/sb"


def test_lock_tenant_serializes_read_modify_write(tenant_a: TenantCtx, db: Engine) -> None:
    """Without the lock, these increments would lose updates; with it, none is lost."""
    factory = make_session_factory(db)
    with factory() as s:
        s.add(Team(tenant_id=tenant_a.id, id="counter", name="0", created_at=T0, updated_at=T0))
        s.commit()
    errors: list[BaseException] = []

    def bump(times: int) -> None:
        try:
            for _ in range(times):
                with factory() as s:
                    lock_tenant(s, tenant_a.id)
                    row = s.get(Team, (tenant_a.id, "counter"))
                    assert row is not None
                    value = int(row.name)
                    time.sleep(0.005)  # widen the race window
                    row.name = str(value + 1)
                    s.commit()
        except BaseException as exc:  # surfaced in the main thread
            errors.append(exc)

    threads = [threading.Thread(target=bump, args=(5,)) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with factory() as s:
        assert s.get(Team, (tenant_a.id, "counter")).name == "15"  # type: ignore[union-attr]


def test_lock_tenant_must_open_the_unit_of_work(tenant_a: TenantCtx, db: Engine) -> None:
    with make_session_factory(db)() as s:
        s.execute(text("SELECT 1"))
        with pytest.raises(RuntimeError, match="first statement"):
            lock_tenant(s, tenant_a.id)


@postgres_only  # SQLite has one writer: BEGIN IMMEDIATE serializes every tenant (by design)
def test_postgres_locks_one_tenant_not_all(db: Engine, client: object) -> None:
    assert db.dialect.name == "postgresql"
    from fastapi.testclient import TestClient

    assert isinstance(client, TestClient)
    t1 = make_tenant(db, client, "one")
    t2 = make_tenant(db, client, "two")
    factory = make_session_factory(db)
    holder = factory()
    lock_tenant(holder, t1.id)
    try:
        other = threading.Event()
        same = threading.Event()

        def take(tenant_id: str, done: threading.Event) -> None:
            with factory() as s:
                lock_tenant(s, tenant_id)
                done.set()
                s.commit()

        threading.Thread(target=take, args=(t2.id, other), daemon=True).start()
        assert other.wait(5), "another tenant's lock must not wait"
        waiter = threading.Thread(target=take, args=(t1.id, same), daemon=True)
        waiter.start()
        assert not same.wait(0.3), "the same tenant's lock must wait"
    finally:
        holder.commit()
        holder.close()
    assert same.wait(5)
    waiter.join(5)
