"""Idempotency-Key on POSTs: replay, mismatch, per-tenant keys, and what is not stored."""

from __future__ import annotations

from sqlalchemy import Engine, func, select
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
    a.post("/v1/teams", json={"id": "missing"})
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
    from api.services import idempotency as records
    from tests.api.conftest import T0

    factory = make_session_factory(db)
    args = {
        "tenant_id": tenant_a.id,
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
