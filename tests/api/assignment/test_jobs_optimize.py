"""Queue re-optimization as a job, end to end through HTTP on SQLite and PostgreSQL, without
sleeping: POST -> 202 + status URL; the test runs the app's worker once; the job's result lists
every change with its reasons and the solve's stats; owners, history and webhooks follow."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy import Engine

from api.assignment import optimize as optimize_job
from api.db.engine import make_session_factory
from api.db.jobs import Job, JobStatus
from api.jobs import queue as job_queue
from tests.api.assignment.test_assign import DAY, history, org, outbox, put_ticket, subscribe
from tests.api.conftest import T0, As, TenantCtx, assert_problem

FAST = {"time_limit_s": 2.0, "seed": 3}


def run_worker(app: FastAPI) -> Any:
    return app.state.job_worker.run_once()


def test_optimize_job_lifecycle_applies_the_plan(
    a: As, app: FastAPI, db: Engine, tenant_a: TenantCtx
) -> None:
    org(a)
    subscribe(db, tenant_a.id, "queue.optimized", "ticket.assigned", "ticket.reassigned")
    for i in range(5):
        put_ticket(a, f"Q{i}", priority=["low", "normal", "high", "urgent", "high"][i])
    put_ticket(a, "DE", team="tier2", required_skills={"lang:de": 4})
    # Started work stays with its agent: it is not part of the queue.
    put_ticket(a, "BUSY", owner_agent="ana", status="open")
    r = a.post("/v1/queue/optimize", json=FAST)
    assert r.status_code == 202, r.text
    job = r.json()
    assert r.headers["location"] == f"/v1/jobs/{job['id']}" == job["links"]["self"]
    assert job["status"] == "queued" and job["kind"] == optimize_job.OPTIMIZE_JOB
    assert a.get(job["links"]["self"]).json()["status"] == "queued"

    run = run_worker(app)
    assert run is not None and run.status is JobStatus.SUCCEEDED, run
    done = a.get(job["links"]["self"]).json()
    assert done["status"] == "succeeded" and done["attempts"] == 1
    result = done["result"]
    stats = result["stats"]
    assert stats["status"] in ("optimal", "feasible")
    assert set(stats["parts"]) >= {"sla_breaches", "unassigned", "churn", "total"}
    assert stats["bound"] is not None and stats["gap"] is not None
    assert result["tickets"] == 6 and result["skipped"] == []
    changed = {c["ticket"]: c for c in result["changes"]}
    # Five free slots (3 agents x capacity 2, ana holds BUSY) for six tickets: the
    # low-priority one stays with its team's queue, which is no change.
    assert set(changed) == {"Q1", "Q2", "Q3", "Q4", "DE"} and result["unchanged"] == 1
    assert a.get("/v1/tickets/Q0").json()["owner"] == {"kind": "team", "id": "support"}
    assert changed["DE"]["to"] == {"kind": "agent", "id": "cid"}
    for change in changed.values():
        assert change["from"]["kind"] == "team" and change["event"] == "assigned"
        assert change["why"], change
        owner = a.get(f"/v1/tickets/{change['ticket']}").json()["owner"]
        assert owner == change["to"]
        last = history(a, change["ticket"])[-1]
        assert last["kind"] == "assigned" and last["data"]["source"] == "optimizer"
        assert last["data"]["job_id"] == job["id"]
    # Capacity 2 per agent, 3 agents: nobody holds more than that (ana also holds BUSY).
    held: dict[str, int] = {"ana": 1}
    for change in changed.values():
        if change["to"]["kind"] == "agent":
            held[change["to"]["id"]] = held.get(change["to"]["id"], 0) + 1
    assert max(held.values()) <= 2
    assert a.get("/v1/tickets/BUSY").json()["owner"] == {"kind": "agent", "id": "ana"}
    assert [e["kind"] for e in history(a, "BUSY")] == ["created", "assigned"]

    sent = outbox(db, tenant_a.id)
    kinds = [kind for kind, _ in sent]
    # The plan's five, and the helpdesk's own PUT of BUSY to ana (source null).
    assert kinds.count("ticket.assigned") == 6 and kinds.count("queue.optimized") == 1
    by_source = sorted(
        (d["source"] or "", d["ticket_id"]) for k, d in sent if k == "ticket.assigned"
    )
    assert by_source == [("", "BUSY"), *sorted(("optimizer", t) for t in changed)]
    [optimized] = [data for kind, data in outbox(db, tenant_a.id) if kind == "queue.optimized"]
    assert optimized["job_id"] == job["id"] and optimized["changes"] == 5

    # Nothing left to do, and a second run of the same queue changes nothing (churn).
    assert run_worker(app) is None
    again = a.post("/v1/queue/optimize", json=FAST).json()
    run_worker(app)
    result = a.get(f"/v1/jobs/{again['id']}").json()["result"]
    assert result["changes"] == [] and result["unchanged"] == 6


def test_tickets_changed_while_solving_are_skipped(
    a: As, app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    org(a)
    put_ticket(a, "K1")
    put_ticket(a, "K2")
    real = optimize_job.optimize

    def optimize_while_the_helpdesk_writes(problem: Any, params: Any) -> Any:
        plan = real(problem, params)
        put_ticket(a, "K2", owner_agent="ana", reason="taken by hand meanwhile")
        return plan

    monkeypatch.setattr(optimize_job, "optimize", optimize_while_the_helpdesk_writes)
    job = a.post("/v1/queue/optimize", json=FAST).json()
    run_worker(app)
    result = a.get(f"/v1/jobs/{job['id']}").json()["result"]
    assert [c["ticket"] for c in result["changes"]] == ["K1"]
    assert result["skipped"] == [
        {"ticket": "K2", "why": "the ticket changed while the plan was solved"}
    ]
    assert a.get("/v1/tickets/K2").json()["owner"] == {"kind": "agent", "id": "ana"}


def test_a_team_queue_only(a: As, app: FastAPI) -> None:
    org(a)
    put_ticket(a, "S1")
    put_ticket(a, "T1", team="tier2", required_skills={"tier:2": 2})
    job = a.post("/v1/queue/optimize", json={"team": "tier2", **FAST}).json()
    assert job["payload"]["team"] == "tier2"
    run_worker(app)
    result = a.get(f"/v1/jobs/{job['id']}").json()["result"]
    assert [c["ticket"] for c in result["changes"]] == ["T1"]
    assert a.get("/v1/tickets/S1").json()["owner"]["kind"] == "team"


def test_bad_requests_are_problems(a: As) -> None:
    org(a)
    assert_problem(a.post("/v1/queue/optimize", json={"team": "nope"}), 422, "team")
    assert_problem(a.post("/v1/queue/optimize", json={"time_limit_s": 0}), 422, "time_limit_s")
    assert_problem(a.post("/v1/queue/optimize", json={"time_limit_s": 301}), 422, "time_limit_s")
    assert_problem(a.get("/v1/jobs/not-a-job"), 404)
    assert_problem(a.get("/v1/jobs", params={"cursor": "garbage"}), 422, "query.cursor")


def test_cancel_a_queued_job_and_jobs_are_tenant_isolated(a: As, b: As, app: FastAPI) -> None:
    org(a)
    put_ticket(a, "C1")
    job = a.post("/v1/queue/optimize", json=FAST).json()
    url = job["links"]["self"]
    # Tenant B cannot see, list or cancel A's job: it does not exist for them.
    assert_problem(b.get(url), 404)
    assert_problem(b.post(f"{url}/cancel"), 404)
    assert b.get("/v1/jobs").json()["items"] == []
    assert [j["id"] for j in a.get("/v1/jobs").json()["items"]] == [job["id"]]

    r = a.post(f"{url}/cancel")
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    assert run_worker(app) is None
    assert a.get("/v1/tickets/C1").json()["owner"]["kind"] == "team"
    assert a.post(f"{url}/cancel").json()["status"] == "cancelled"  # idempotent


def test_finished_jobs_cannot_be_cancelled_and_lists_page(a: As, app: FastAPI) -> None:
    org(a)
    ids = [a.post("/v1/queue/optimize", json=FAST).json()["id"] for _ in range(3)]
    run_worker(app)
    first = a.get("/v1/jobs", params={"status": "succeeded"}).json()["items"]
    assert len(first) == 1
    assert_problem(a.post(f"/v1/jobs/{first[0]['id']}/cancel"), 409)
    page1 = a.get("/v1/jobs", params={"limit": 2}).json()
    page2 = a.get("/v1/jobs", params={"limit": 2, "cursor": page1["next_cursor"]}).json()
    listed = [j["id"] for j in page1["items"] + page2["items"]]
    assert sorted(listed) == sorted(ids) and page2["next_cursor"] is None


def test_a_retried_optimize_request_enqueues_one_job(a: As) -> None:
    org(a)
    headers = {"Idempotency-Key": "reopt-1"}
    first = a.post("/v1/queue/optimize", json=FAST, headers=headers)
    again = a.post("/v1/queue/optimize", json=FAST, headers=headers)
    assert first.status_code == again.status_code == 202
    assert again.headers.get("idempotent-replayed") == "true"
    assert again.json()["id"] == first.json()["id"]
    assert again.headers["location"] == first.headers["location"]
    assert len(a.get("/v1/jobs").json()["items"]) == 1


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"max_moves": -1}, "max_moves"),
        ({"max_moves": "x"}, "max_moves"),
        ({"max_moves": 1.5}, "max_moves"),
        ({"max_moves": True}, "max_moves"),
        ({"max_moves": 1_000_001}, "max_moves"),
        ({"move_saving": 0}, "move_saving"),
        ({"move_saving": "x"}, "move_saving"),
    ],
)
def test_a_bad_move_budget_is_a_problem_naming_it(a: As, body: dict[str, Any], field: str) -> None:
    assert_problem(a.post("/v1/queue/optimize", json=body), 422, field)
    assert a.get("/v1/jobs").json()["items"] == []  # nothing was queued


def held_queue(a: As) -> None:
    """Six new urgent tickets ana holds, due within two hours, an hour of work each: she can
    finish two in time, ben and cid are free; and one new ticket ben holds that he lacks the
    skill for (he cannot keep it, so it moves whatever the budget). Run again, it hands every
    ticket back to its holder, still new."""
    for i in range(6):
        put_ticket(
            a,
            f"H{i}",
            owner_agent="ana",
            priority="urgent",
            effort_minutes=60,
            resolution_due=f"{DAY}10:00:00Z",
        )
    put_ticket(a, "X", owner_agent="ben", required_skills={"billing": 4}, priority="normal")


def moved_from_an_agent(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["ticket"]: c for c in result["changes"] if c["from"]["kind"] == "agent"}


def test_a_move_budget_of_zero_keeps_every_held_ticket_its_holder_can_keep(
    a: As, app: FastAPI
) -> None:
    org(a, capacity=10)
    held_queue(a)
    # Unbudgeted, the optimizer hands some of ana's urgent work to ben and cid.
    free = a.post("/v1/queue/optimize", json=FAST | {"move_saving": 1}).json()
    assert free["payload"]["max_moves"] is None and free["payload"]["move_saving"] == 1
    run_worker(app)
    result = a.get(free["links"]["self"]).json()["result"]
    moved = moved_from_an_agent(result)
    assert {t for t in moved if t.startswith("H")}, result
    assert "X" in moved

    held_queue(a)
    job = a.post("/v1/queue/optimize", json=FAST | {"max_moves": 0}).json()
    assert job["payload"]["max_moves"] == 0
    run = run_worker(app)
    assert run is not None and run.status is JobStatus.SUCCEEDED, run
    result = a.get(job["links"]["self"]).json()["result"]
    moved = moved_from_an_agent(result)
    assert set(moved) <= {"X"}, moved  # only the ticket its holder cannot keep
    for i in range(6):
        assert a.get(f"/v1/tickets/H{i}").json()["owner"] == {"kind": "agent", "id": "ana"}
    assert any("budget 0 move(s)" in n for n in result["stats"]["notes"]), result["stats"]
    for change in moved.values():
        churn = [w for w in change["why"] if w["rule"] == "churn"]
        assert churn and "cannot hold it" in churn[0]["detail"], change


def test_a_job_stored_before_the_move_budget_existed_still_runs(
    a: As, app: FastAPI, db: Engine, tenant_a: TenantCtx
) -> None:
    org(a)
    put_ticket(a, "OLD")
    with make_session_factory(db)() as session:
        job = job_queue.enqueue(
            session=session,
            tenant_id=tenant_a.id,
            kind=optimize_job.OPTIMIZE_JOB,
            payload={"team": None, "time_limit_s": 1.0, "seed": 0},  # no max_moves, move_saving
            now=T0,
        )
        session.commit()
    run = run_worker(app)
    assert run is not None and run.status is JobStatus.SUCCEEDED, run
    result = a.get(f"/v1/jobs/{job.id}").json()["result"]
    assert [c["ticket"] for c in result["changes"]] == ["OLD"]
    assert not any("budget" in n for n in result["stats"]["notes"])


def test_a_stored_payload_with_a_bad_budget_fails_the_job_for_good(
    app: FastAPI, db: Engine, tenant_a: TenantCtx
) -> None:
    with make_session_factory(db)() as session:
        job = job_queue.enqueue(
            session=session,
            tenant_id=tenant_a.id,
            kind=optimize_job.OPTIMIZE_JOB,
            payload={"team": None, "time_limit_s": 1.0, "seed": 0, "max_moves": "3"},
            now=T0,
            max_attempts=3,
        )
        session.commit()
    run = run_worker(app)
    assert run is not None and run.status is JobStatus.FAILED, run
    with make_session_factory(db)() as session:
        stored = session.get(Job, job.id)
        assert stored is not None and stored.attempts == 1
        assert stored.error is not None and "max_moves" in stored.error
