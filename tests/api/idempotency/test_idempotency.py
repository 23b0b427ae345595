"""Idempotency-Key on POSTs: replay, mismatch, per-tenant keys, and what is not stored."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy import Engine, func, select, update
from sqlalchemy.orm import Session

from api.db.models import IdempotencyRecord, Team
from tests.api.conftest import As, FakeClock, TenantCtx, assert_problem


def _teams(db: Engine) -> int:
    with Session(db) as s:
        return int(s.scalar(select(func.count()).select_from(Team)) or 0)


def test_replay_returns_first_response_and_writes_once(a: As, db: Engine) -> None:
    key = {"Idempotency-Key": "create-team-1"}
    first = a.post("/v1/teams", json={"id": "t1", "name": "One"}, headers=key)
    assert first.status_code == 201
    assert "idempotent-replayed" not in first.headers
    again = a.post("/v1/teams", json={"id": "t1", "name": "One"}, headers=key)
    assert again.status_code == 201  # not the 409 a second create would get
    assert again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    assert _teams(db) == 1
    # Without the key, the same POST really runs again.
    assert_problem(a.post("/v1/teams", json={"id": "t1", "name": "One"}), 409)


def test_same_key_different_body_is_422(a: As, db: Engine) -> None:
    key = {"Idempotency-Key": "k-42"}
    assert a.post("/v1/teams", json={"id": "t1"}, headers=key).status_code == 201
    r = a.post("/v1/teams", json={"id": "t2"}, headers=key)
    body = assert_problem(r, 422, "header.idempotency-key")
    assert body["type"].endswith("idempotency-mismatch")
    # A different path with the same key is a different request too.
    assert_problem(a.post("/v1/skills", json={"id": "t1"}, headers=key), 422)
    assert _teams(db) == 1


def test_keys_are_per_tenant(a: As, b: As) -> None:
    key = {"Idempotency-Key": "shared-name"}
    assert a.post("/v1/teams", json={"id": "a-team"}, headers=key).status_code == 201
    # B using the same key string runs B's own request: no replay of A's response, no 422.
    r = b.post("/v1/teams", json={"id": "b-team"}, headers=key)
    assert r.status_code == 201 and r.json()["id"] == "b-team"
    assert "idempotent-replayed" not in r.headers


def test_client_errors_are_replayed_auth_errors_are_not(tenant_a: TenantCtx, db: Engine) -> None:
    a = tenant_a.admin
    key = {"Idempotency-Key": "bad-agent"}
    first = a.post("/v1/agents", json={"id": "x", "team": "missing"}, headers=key)
    assert_problem(first, 422, "team")
    # The outcome of that request is kept, even once the team exists.
    assert a.post("/v1/teams", json={"id": "missing"}).status_code == 201
    again = a.post("/v1/agents", json={"id": "x", "team": "missing"}, headers=key)
    assert again.status_code == 422 and again.headers["idempotent-replayed"] == "true"

    helpdesk = tenant_a.key("helpdesk")
    key = {"Idempotency-Key": "forbidden-first"}
    assert_problem(helpdesk.post("/v1/teams", json={"id": "t9"}, headers=key), 403)
    # A 403 says nothing about the request: the key was released, not burnt.
    assert a.post("/v1/teams", json={"id": "t9"}, headers=key).status_code == 201


def test_invalid_key_and_unauthenticated_requests(a: As, db: Engine) -> None:
    r = a.post("/v1/teams", json={"id": "t"}, headers={"Idempotency-Key": "x" * 300})
    assert_problem(r, 422, "header.idempotency-key")
    r = a.client.post("/v1/teams", json={"id": "t"}, headers={"Idempotency-Key": "k"})
    assert_problem(r, 401)
    with Session(db) as s:
        assert s.scalar(select(func.count()).select_from(IdempotencyRecord)) == 0


def test_expired_keys_run_again(a: As, clock: FakeClock) -> None:
    key = {"Idempotency-Key": "old"}
    assert a.post("/v1/teams", json={"id": "t1"}, headers=key).status_code == 201
    clock.advance(hours=25)  # past the default 24 h
    r = a.post("/v1/teams", json={"id": "t2"}, headers=key)
    assert r.status_code == 201 and "idempotent-replayed" not in r.headers


def test_openapi_documents_the_header(a: As) -> None:
    spec = a.client.get("/openapi.json").json()
    params = spec["paths"]["/v1/teams"]["post"]["parameters"]
    assert any(p["name"] == "Idempotency-Key" for p in params)
    assert spec["openapi"].startswith("3.1")


def test_claim_in_progress_and_stale_takeover(tenant_a: TenantCtx, db: Engine) -> None:
    from datetime import timedelta

    from api.db.engine import make_session_factory
    from api.idempotency import service as records
    from tests.api.conftest import T0

    factory = make_session_factory(db)
    args = {
        "tenant_id": tenant_a.id,
        "api_key_id": "key-1",
        "key": "k",
        "request_hash": "h",
        "method": "POST",
        "path": "/v1/x",
        "ttl": timedelta(hours=24),
    }
    with factory() as s:
        assert records.claim(session=s, now=T0, **args)[0] is records.Outcome.PROCEED
    with factory() as s:
        soon = T0 + timedelta(seconds=5)
        assert records.claim(session=s, now=soon, **args)[0] is records.Outcome.IN_PROGRESS
    with factory() as s:
        # The first request died without releasing: after STALE_AFTER a retry takes over once.
        later = T0 + records.STALE_AFTER + timedelta(seconds=1)
        assert records.claim(session=s, now=later, **args)[0] is records.Outcome.PROCEED
        assert records.claim(session=s, now=later, **args)[0] is records.Outcome.IN_PROGRESS


def test_stored_responses_are_sealed_at_rest(a: As, db: Engine) -> None:
    """An API key is shown once: it must not sit readable in the idempotency table."""
    headers = {"Idempotency-Key": "seal-1"}
    body = {"name": "bot", "scopes": ["helpdesk"]}
    first = a.post("/v1/api-keys", json=body, headers=headers)
    assert first.status_code == 201, first.text
    secret = first.json()["key"]
    with Session(db) as s:
        stored = s.scalars(select(IdempotencyRecord.response_body)).all()
    assert stored and all(row and secret.encode() not in row for row in stored)
    replay = a.post("/v1/api-keys", json=body, headers=headers)
    assert replay.status_code == 201
    assert replay.json()["key"] == secret
    assert replay.headers["idempotent-replayed"] == "true"


def test_housekeeping_purges_expired_keys_and_a_retry_then_runs_anew(
    a: As, app: FastAPI, clock: FakeClock, db: Engine
) -> None:
    old = {"Idempotency-Key": "old"}
    fresh = {"Idempotency-Key": "fresh"}
    assert a.post("/v1/teams", json={"id": "t1"}, headers=old).status_code == 201
    clock.advance(hours=20)
    assert a.post("/v1/teams", json={"id": "t2"}, headers=fresh).status_code == 201
    clock.advance(hours=5)  # "old" is 25 h old, past the default 24 h; "fresh" is 5 h old

    assert app.state.job_worker.housekeep() is True  # what the worker's loop runs
    with Session(db) as s:
        assert set(s.scalars(select(IdempotencyRecord.key))) == {"fresh"}

    # The fresh key still replays its first response...
    again = a.post("/v1/teams", json={"id": "t2"}, headers=fresh)
    assert again.status_code == 201 and again.headers["idempotent-replayed"] == "true"
    # ...the purged one is a new request: it runs again, and t1 exists by now.
    r = a.post("/v1/teams", json={"id": "t1"}, headers=old)
    assert_problem(r, 409)
    assert "idempotent-replayed" not in r.headers
    assert _teams(db) == 2


def test_claim_looks_again_when_the_expired_record_is_purged_meanwhile(
    tenant_a: TenantCtx, db: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Housekeeping deletes an expired record between a retry's read and its takeover: the
    retry runs (a new request), instead of the 409 "in progress" a lost takeover used to say
    (and, on SQLite, instead of "database is locked" from upgrading a stale read transaction)."""
    from datetime import timedelta

    from api.db.engine import make_session_factory
    from api.idempotency import service as records
    from tests.api.conftest import T0

    factory = make_session_factory(db)
    args = {
        "tenant_id": tenant_a.id,
        "api_key_id": "key-1",
        "key": "k",
        "method": "POST",
        "path": "/v1/x",
    }
    ttl = timedelta(hours=24)
    with factory() as s:
        assert records.claim(session=s, request_hash="h1", now=T0, ttl=ttl, **args)[0] is (
            records.Outcome.PROCEED
        )
    later = T0 + ttl + timedelta(hours=1)
    take_over = records._take_over

    def purged_first(**kwargs: Any) -> bool:
        assert records.purge_expired(session_factory=factory, before=later - ttl).deleted == 1
        return take_over(**kwargs)

    monkeypatch.setattr(records, "_take_over", purged_first)
    with factory() as s:
        outcome, _ = records.claim(session=s, request_hash="h2", now=later, ttl=ttl, **args)
    assert outcome is records.Outcome.PROCEED
    with factory() as s:
        record = s.get(IdempotencyRecord, (tenant_a.id, "key-1", "k"))
        assert record is not None and record.request_hash == "h2" and record.created_at == later


def test_a_key_still_running_or_unreadable_is_a_409_saying_which(
    a: As, db: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    headers = {"Idempotency-Key": "twice"}
    first = a.post("/v1/teams", json={"id": "t1", "name": "One"}, headers=headers)
    assert first.status_code == 201, first.text
    # The stored response no longer decrypts (the service's secret key changed since).
    with Session(db) as s:
        s.execute(update(IdempotencyRecord).values(response_body=b"not a fernet token"))
        s.commit()
    again = a.post("/v1/teams", json={"id": "t1", "name": "One"}, headers=headers)
    body = assert_problem(again, 409)
    assert body["type"] == "/problems/idempotency-unreadable" and body["title"] == "Conflict"
    assert "secret key changed" in body["detail"] and body["instance"] == "/v1/teams"
    # The first request with this key is still running.
    from api.idempotency import service as records

    monkeypatch.setattr(records, "claim", lambda **_: (records.Outcome.IN_PROGRESS, None))
    busy = a.post("/v1/teams", json={"id": "t2", "name": "Two"}, headers={"Idempotency-Key": "k"})
    body = assert_problem(busy, 409)
    assert body["type"] == "/problems/idempotency-in-progress"
    assert "still running" in body["detail"]
    assert _teams(db) == 1
