"""Idempotency-Key under attack and under faults, on SQLite and PostgreSQL.

- A stored answer is replayed only to the API key that made it, and only after the route's
  own authorization passed: a lesser key re-sending an admin's request gets its 403, never the
  admin's freshly minted key, and cannot tell used Idempotency-Keys from unused ones.
- The answer is stored in the transaction of the work it describes: a failure while storing
  it (or committing) leaves neither, answers 503, and the retry runs the request exactly once;
  a crash after the route's commit rolls the work back instead of answering 500 for work done.
"""

from __future__ import annotations

import sqlite3
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from api.db.engine import UnitSession
from api.db.models import IdempotencyRecord, Team, TicketEvent
from api.idempotency import service as records
from api.org.teams.schemas import TeamOut
from tests.api.assignment.test_assign import org, put_ticket
from tests.api.conftest import As, TenantCtx, assert_problem, postgres_only


def _count(db: Engine, model: type[Any]) -> int:
    with Session(db) as s:
        return int(s.scalar(select(func.count()).select_from(model)) or 0)


def _outage(*_args: Any, **_kwargs: Any) -> Any:
    """The database failing as it does under contention (the driver's own error, wrapped)."""
    raise OperationalError(
        "UPDATE idempotency_keys ...", {}, sqlite3.OperationalError("database is locked")
    )


# --- defect 1: a replay never crosses API keys, and comes after authorization ---------------


def test_a_lesser_key_resending_an_admins_request_gets_403_not_the_minted_key(
    tenant_a: TenantCtx, db: Engine
) -> None:
    admin = tenant_a.admin
    headers = {"Idempotency-Key": "mint-1"}
    body = {"name": "ci", "scopes": ["admin"]}
    minted = admin.post("/v1/api-keys", json=body, headers=headers)
    assert minted.status_code == 201, minted.text
    secret = minted.json()["key"]

    for scopes in (("helpdesk",), ("planner",), ("helpdesk", "planner")):
        lesser = tenant_a.key(*scopes)
        r = lesser.post("/v1/api-keys", json=body, headers=headers)
        problem = assert_problem(r, 403)
        assert secret not in r.text and "idempotent-replayed" not in r.headers
        # Used and unused Idempotency-Keys look the same to it: no 422 oracle.
        unused = lesser.post("/v1/api-keys", json=body, headers={"Idempotency-Key": "never"})
        assert assert_problem(unused, 403) == problem | {"instance": problem["instance"]}
        different = lesser.post(
            "/v1/api-keys", json={"name": "other", "scopes": ["admin"]}, headers=headers
        )
        assert_problem(different, 403)
    # The admin's own retry still replays.
    again = admin.post("/v1/api-keys", json=body, headers=headers)
    assert again.status_code == 201 and again.json()["key"] == secret
    assert again.headers["idempotent-replayed"] == "true"


def test_each_api_key_has_its_own_idempotency_keys(tenant_a: TenantCtx, db: Engine) -> None:
    first, second = tenant_a.key("admin"), tenant_a.key("admin")
    headers = {"Idempotency-Key": "same-name"}
    assert first.post("/v1/teams", json={"id": "t1"}, headers=headers).status_code == 201
    # Another key of the same tenant with the same Idempotency-Key runs its own request:
    # no replay of the first key's answer, and no 422 "used with a different request".
    r = second.post("/v1/teams", json={"id": "t2"}, headers=headers)
    assert r.status_code == 201 and r.json()["id"] == "t2"
    assert "idempotent-replayed" not in r.headers
    # ...and the same request under the same Idempotency-Key is not a replay either.
    r = second.post("/v1/teams", json={"id": "t1"}, headers={"Idempotency-Key": "k-other"})
    assert_problem(r, 409)
    assert _count(db, Team) == 2


def test_an_invalid_idempotency_key_is_judged_after_authentication(a: As, db: Engine) -> None:
    """A malformed header is a 422 only for an authorized caller; others get 401/403 first."""
    bad = {"Idempotency-Key": "schlüssel".encode()}  # not ASCII, though documented as ASCII
    r = a.client.post("/v1/teams", json={"id": "t"}, headers=bad | {"Authorization": "Bearer x"})
    assert_problem(r, 401)
    assert_problem(
        a.post("/v1/teams", json={"id": "t"}, headers=bad), 422, "header.idempotency-key"
    )
    for key in (b" lead", b"trail ", b"tab\tinside", b"x" * 256, b"\x7f"):
        r = a.post("/v1/teams", json={"id": "t"}, headers={"Idempotency-Key": key})
        assert_problem(r, 422, "header.idempotency-key")
    assert _count(db, Team) == 0
    assert _count(db, IdempotencyRecord) == 0


# --- defect 2: the answer is stored with the work, or neither is ----------------------------


def test_a_fault_while_storing_the_answer_undoes_the_work_and_the_retry_runs_once(
    a: As, db: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    headers = {"Idempotency-Key": "store-fails"}
    with monkeypatch.context() as m:
        m.setattr(records, "complete", _outage)
        r = a.post("/v1/teams", json={"id": "t1", "name": "One"}, headers=headers)
    problem = assert_problem(r, 503)
    assert r.headers["retry-after"] == "1" and problem["type"].endswith("unavailable")
    assert _count(db, Team) == 0  # the work was not applied without its answer
    assert _count(db, IdempotencyRecord) == 0  # and the key was freed for the retry

    retry = a.post("/v1/teams", json={"id": "t1", "name": "One"}, headers=headers)
    assert retry.status_code == 201 and "idempotent-replayed" not in retry.headers
    again = a.post("/v1/teams", json={"id": "t1", "name": "One"}, headers=headers)
    assert again.status_code == 201 and again.headers["idempotent-replayed"] == "true"
    assert again.json() == retry.json()
    assert _count(db, Team) == 1


def test_a_fault_at_the_final_commit_leaves_neither_work_nor_answer(
    a: As, db: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    headers = {"Idempotency-Key": "commit-fails"}
    with monkeypatch.context() as m:
        m.setattr(UnitSession, "commit_now", _outage)
        assert_problem(a.post("/v1/teams", json={"id": "t1"}, headers=headers), 503)
    assert _count(db, Team) == 0
    r = a.post("/v1/teams", json={"id": "t1"}, headers=headers)
    assert r.status_code == 201 and "idempotent-replayed" not in r.headers
    assert _count(db, Team) == 1


def test_a_crash_after_the_routes_commit_is_rolled_back_not_run_twice(
    a: As, app: FastAPI, db: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before: the team was committed, the client got a 500, the key was released, and the
    retry ran the request again (a 409 here; a second shift where nothing was unique)."""
    headers = {"Idempotency-Key": "crash-after-commit"}
    # The 500 as a client sees it, not the exception re-raised into the test.
    crashing = As(TestClient(app, raise_server_exceptions=False), a.key)

    def broken(row: Any) -> Any:
        raise RuntimeError("serialising the answer failed")

    with monkeypatch.context() as m:
        m.setattr(TeamOut, "from_row", broken)
        assert crashing.post("/v1/teams", json={"id": "t1"}, headers=headers).status_code == 500
    assert _count(db, Team) == 0 and _count(db, IdempotencyRecord) == 0
    r = a.post("/v1/teams", json={"id": "t1"}, headers=headers)
    assert r.status_code == 201, r.text
    assert _count(db, Team) == 1


def test_a_database_outage_at_the_claim_is_the_usual_503(
    a: As, db: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(records, "claim", _outage)
    r = a.post("/v1/teams", json={"id": "t1"}, headers={"Idempotency-Key": "k"})
    assert_problem(r, 503)
    assert r.headers["retry-after"] == "1"
    assert _count(db, Team) == 0


def test_the_answer_and_the_work_commit_in_one_transaction(
    a: As, db: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While the route's work is flushed but not committed, no other connection sees the team
    or a completed record; both appear together at the one commit."""
    seen: list[tuple[int, int]] = []
    real = records.complete

    def watching(**kwargs: Any) -> bool:
        with Session(db) as other:
            done = other.scalar(
                select(func.count())
                .select_from(IdempotencyRecord)
                .where(IdempotencyRecord.status_code.is_not(None))
            )
            seen.append((_count(db, Team), int(done or 0)))
        return real(**kwargs)

    monkeypatch.setattr(records, "complete", watching)
    r = a.post("/v1/teams", json={"id": "t1"}, headers={"Idempotency-Key": "together"})
    assert r.status_code == 201, r.text
    assert seen == [(0, 0)]
    assert _count(db, Team) == 1
    with Session(db) as s:
        record = s.scalars(select(IdempotencyRecord)).one()
    assert record.status_code == 201 and record.completed_at is not None


def test_a_keyed_assignment_is_stored_with_its_owner_change(
    a: As, db: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    org(a)
    put_ticket(a, "ZD-1")
    headers = {"Idempotency-Key": "assign-1"}
    with monkeypatch.context() as m:
        m.setattr(records, "complete", _outage)
        assert_problem(a.post("/v1/tickets/ZD-1/assign", headers=headers), 503)
    assert a.get("/v1/tickets/ZD-1").json()["owner"]["kind"] == "team"
    assert _count(db, TicketEvent) == 1  # only "created": the assignment was rolled back

    first = a.post("/v1/tickets/ZD-1/assign", headers=headers)
    assert first.status_code == 200, first.text
    assert first.json()["owner"]["kind"] == "agent"
    again = a.post("/v1/tickets/ZD-1/assign", headers=headers)
    assert again.json() == first.json() and again.headers["idempotent-replayed"] == "true"
    assert _count(db, TicketEvent) == 2
    # Refused work is kept as the outcome too (a 404 for an unknown ticket), stored alone.
    missing = a.post("/v1/tickets/NOPE/assign", headers={"Idempotency-Key": "assign-2"})
    assert_problem(missing, 404)
    assert (
        a.post("/v1/tickets/NOPE/assign", headers={"Idempotency-Key": "assign-2"}).headers[
            "idempotent-replayed"
        ]
        == "true"
    )


@postgres_only  # on SQLite the retry's takeover waits for the first request's write lock
def test_a_claim_taken_over_as_stale_rolls_the_slow_first_request_back(
    a: As, db: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first request ran past STALE_AFTER and a retry took its claim over: the first may
    neither store its answer over the retry's record nor commit its work."""
    from datetime import timedelta

    real = records.complete
    headers = {"Idempotency-Key": "slow"}

    def retry_took_over(**kwargs: Any) -> bool:
        claim = kwargs["claim"]
        with Session(db) as other:
            other.execute(
                records.update(IdempotencyRecord)
                .where(IdempotencyRecord.key == claim.key)
                .values(created_at=claim.created_at + timedelta(minutes=3))
            )
            other.commit()
        return real(**kwargs)

    monkeypatch.setattr(records, "complete", retry_took_over)
    r = a.post("/v1/teams", json={"id": "t1"}, headers=headers)
    assert_problem(r, 409)
    assert "took it over" in r.json()["detail"]
    assert _count(db, Team) == 0
