"""Breach-risk rules through the periodic job, on SQLite and PostgreSQL: a ticket that will miss
its deadline with its overloaded owner is re-routed within the team (or borrowed, or escalated)
by the tenant's policy, with the why on its history and a ``ticket.breach_risk`` webhook; with
``none`` only the history and the webhook; tickets on track are left alone; the job is
idempotent and queued per tenant by housekeeping, each run queueing the next."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi import FastAPI
from sqlalchemy import Engine, delete, select

from api.db.engine import make_session_factory
from api.db.jobs import Job, JobStatus
from api.db.webhooks import WebhookEvent
from api.jobs import housekeeping
from tests.api.assignment.test_assign import DAY, history, org, outbox, put_ticket, subscribe
from tests.api.conftest import T0, As, FakeClock, TenantCtx

JOB = "tickets.breach_risk"
EVENTS = ("ticket.breach_risk", "ticket.reassigned", "ticket.assigned")


def held(c: As, ticket_id: str, due: str, **extra: Any) -> None:
    """An open, hour-long ticket of ana's (support, billing 2) due at ``due`` today (UTC)."""
    body = {
        "owner_agent": "ana",
        "status": "open",
        "first_response_due": None,
        "resolution_due": f"{DAY}{due}:00Z",
        "effort_minutes": 60,
    }
    put_ticket(c, ticket_id, **(body | extra))


def overloaded(c: As) -> None:
    """ana works R1 08-09, R2 09-10, R3 10-11 in deadline order: R3 (due 10:30) misses; R1 and
    R2 have a quarter of an hour to spare."""
    held(c, "R1", "09:15")
    held(c, "R2", "10:15")
    held(c, "R3", "10:30")


def forget_outbox(db: Engine, tenant_id: str) -> None:
    """Drop the events the setup's own ticket writes emitted (``ticket.created``, ...): the
    tests look at what the checks tell."""
    with make_session_factory(db)() as session:
        session.execute(delete(WebhookEvent).where(WebhookEvent.tenant_id == tenant_id))
        session.commit()


def run_checks(app: FastAPI) -> list[dict[str, Any]]:
    """One housekeeping pass (queues the checks), then every due job; the checks' results."""
    worker = app.state.job_worker
    worker.housekeep()
    runs = worker.run_until_idle(max_jobs=20)
    ran = [r.job_id for r in runs if r.kind == JOB]
    assert all(r.status is JobStatus.SUCCEEDED for r in runs), runs
    with app.state.session_factory() as session:
        return [dict(session.get(Job, job_id).result) for job_id in ran]


def owner(c: As, ticket_id: str) -> dict[str, str]:
    body: dict[str, str] = c.get(f"/v1/tickets/{ticket_id}").json()["owner"]
    return body


def kinds(c: As, ticket_id: str) -> list[str]:
    return [e["kind"] for e in history(c, ticket_id)]


def jobs(db: Engine, tenant_id: str) -> list[Job]:
    with make_session_factory(db)() as session:
        return list(
            session.scalars(
                select(Job)
                .where(Job.tenant_id == tenant_id, Job.kind == JOB)
                .order_by(Job.run_after)
            )
        )


def test_an_overloaded_owners_ticket_is_rerouted_within_the_team(
    a: As, tenant_a: TenantCtx, db: Engine, app: FastAPI, clock: FakeClock
) -> None:
    org(a, capacity=5)
    subscribe(db, tenant_a.id, *EVENTS)
    overloaded(a)
    forget_outbox(db, tenant_a.id)
    [result] = run_checks(app)
    assert result["rerouted"] == 1 and result["at_risk"] == 1 and result["checked"] == 3
    assert result["next_queued"] is True
    assert owner(a, "R3") == {"kind": "agent", "id": "ben"}
    assert owner(a, "R1") == owner(a, "R2") == {"kind": "agent", "id": "ana"}
    steps = history(a, "R3")
    assert [s["kind"] for s in steps[-2:]] == ["breach_risk", "reassigned"]
    risk, moved = steps[-2], steps[-1]
    assert risk["data"]["action"] == "rerouted" and risk["data"]["policy"] == "reroute"
    assert risk["data"]["deadline"] == "resolution"
    assert risk["data"]["expected"] == (T0 + timedelta(hours=3)).isoformat()  # 11:00
    assert risk["from_agent"] == "ana" and risk["to_agent"] == "ben"
    assert (
        "resolution due 2026-03-02 10:30 UTC; with ana expected 2026-03-02 11:00 UTC"
        in (risk["reason"])
    )
    assert moved["from_agent"] == "ana" and moved["to_agent"] == "ben"
    assert moved["data"]["source"] == "breach_risk"
    sent = dict(outbox(db, tenant_a.id))  # one request time: their ids may sort either way
    assert set(sent) == {"ticket.breach_risk", "ticket.reassigned"}
    data = sent["ticket.breach_risk"]
    assert (
        data["ticket_id"],
        data["from_agent_id"],
        data["details"]["action"],
        data["to_agent_id"],
    ) == (
        "R3",
        "ana",
        "rerouted",
        "ben",
    )
    assert sent["ticket.reassigned"]["source"] == "breach_risk"

    # Idempotent: the next run (a minute later) finds everything on track.
    clock.advance(seconds=61)
    [again] = run_checks(app)
    assert again["at_risk"] == 0
    assert kinds(a, "R3").count("breach_risk") == 1
    assert len(outbox(db, tenant_a.id)) == 2


def test_tickets_on_track_are_left_alone(
    a: As, tenant_a: TenantCtx, db: Engine, app: FastAPI
) -> None:
    org(a, capacity=5)
    subscribe(db, tenant_a.id, *EVENTS)
    held(a, "R1", "09:00")
    held(a, "R2", "10:00")  # exactly on time: on track
    forget_outbox(db, tenant_a.id)
    [result] = run_checks(app)
    assert result["at_risk"] == 0 and result["checked"] == 2
    assert "breach_risk" not in kinds(a, "R1") + kinds(a, "R2")
    assert outbox(db, tenant_a.id) == []


def test_policy_none_records_and_tells_once_and_moves_nothing(
    a: As, tenant_a: TenantCtx, db: Engine, app: FastAPI, clock: FakeClock
) -> None:
    org(a, capacity=5)
    subscribe(db, tenant_a.id, *EVENTS)
    r = a.patch("/v1/policies", json={"breach_risk": {"action": "none"}})
    assert r.status_code == 200, r.text
    overloaded(a)
    forget_outbox(db, tenant_a.id)
    [result] = run_checks(app)
    assert result["recorded"] == 1 and result["rerouted"] == 0
    assert owner(a, "R3") == {"kind": "agent", "id": "ana"}
    assert kinds(a, "R3")[-1] == "breach_risk"
    assert history(a, "R3")[-1]["data"]["action"] == "recorded"
    assert [t for t, _ in outbox(db, tenant_a.id)] == ["ticket.breach_risk"]
    clock.advance(seconds=61)
    [again] = run_checks(app)
    assert again["already_recorded"] == 1 and again["recorded"] == 0
    assert kinds(a, "R3").count("breach_risk") == 1
    assert len(outbox(db, tenant_a.id)) == 1
    # A new due date is a new risk: recorded again.
    held(a, "R3", "10:45")
    clock.advance(seconds=61)
    [third] = run_checks(app)
    assert third["recorded"] == 1
    assert kinds(a, "R3").count("breach_risk") == 2


def test_nobody_who_would_also_miss_it(a: As, app: FastAPI) -> None:
    org(a, capacity=5)
    overloaded(a)
    # ben is as busy: taking R3 would miss it (and his own work).
    for t, due in (("B1", "09:00"), ("B2", "10:00"), ("B3", "11:00")):
        held(a, t, due, owner_agent="ben")
    [result] = run_checks(app)
    assert result["recorded"] == 1 and result["rerouted"] == 0
    assert owner(a, "R3") == {"kind": "agent", "id": "ana"}
    assert history(a, "R3")[-1]["data"]["action"] == "recorded"


def test_escalate_moves_it_to_the_escalation_team(
    a: As, tenant_a: TenantCtx, db: Engine, app: FastAPI
) -> None:
    org(a, capacity=5)
    subscribe(db, tenant_a.id, *EVENTS)
    policy = {"action": "escalate", "escalate_to_team": "tier2", "escalate_to_tier": "tier:2"}
    assert a.patch("/v1/policies", json={"breach_risk": policy}).status_code == 200
    overloaded(a)
    forget_outbox(db, tenant_a.id)
    [result] = run_checks(app)
    assert result["escalated"] == 1
    assert owner(a, "R3") == {"kind": "agent", "id": "cid"}  # tier2, tier:2 3, billing 3
    ticket = a.get("/v1/tickets/R3").json()
    assert ticket["team"] == "tier2" and ticket["required_skills"] == {"billing": 2, "tier:2": 1}
    assert kinds(a, "R3")[-3:] == ["breach_risk", "escalated", "reassigned"]
    sent = dict(outbox(db, tenant_a.id))
    assert sent["ticket.breach_risk"]["details"]["action"] == "escalated"
    assert sent["ticket.breach_risk"]["to_team_id"] == "tier2"


def test_escalate_goes_to_the_team_queue_when_nobody_there_can_make_it(a: As, app: FastAPI) -> None:
    org(a, capacity=5)
    policy = {"action": "escalate", "escalate_to_team": "tier2"}
    assert a.patch("/v1/policies", json={"breach_risk": policy}).status_code == 200
    assert a.post("/v1/agents/cid/status", json={"status": "away"}).status_code == 200
    overloaded(a)
    [result] = run_checks(app)
    assert result["escalated"] == 1
    assert owner(a, "R3") == {"kind": "team", "id": "tier2"}
    # In a team's queue it is no longer an agent's risk: the next run leaves it.
    assert "breach_risk" in kinds(a, "R3")


def test_borrow_takes_another_teams_agent_when_the_team_cannot(
    a: As, tenant_a: TenantCtx, db: Engine, app: FastAPI
) -> None:
    org(a, capacity=5)
    subscribe(db, tenant_a.id, *EVENTS)
    assert a.patch("/v1/policies", json={"breach_risk": {"action": "borrow"}}).status_code == 200
    assert a.post("/v1/agents/ben/status", json={"status": "away"}).status_code == 200
    overloaded(a)
    forget_outbox(db, tenant_a.id)
    [result] = run_checks(app)
    assert result["borrowed"] == 1
    ticket = a.get("/v1/tickets/R3").json()
    assert ticket["owner"] == {"kind": "agent", "id": "cid"} and ticket["team"] == "support"
    risk = history(a, "R3")[-2]
    assert risk["data"]["action"] == "borrowed"
    assert "borrowed from team tier2" in risk["reason"]


def test_housekeeping_queues_one_check_per_tenant_with_work(
    a: As, tenant_a: TenantCtx, db: Engine, app: FastAPI, clock: FakeClock
) -> None:
    org(a, capacity=5)
    factory = make_session_factory(db)
    # No agent-held ticket with a due date: nothing to check, nothing queued.
    put_ticket(a, "Q1", first_response_due=None)
    assert housekeeping.queue_breach_checks(factory, now=clock.now, every_seconds=60) == 0
    overloaded(a)
    assert housekeeping.queue_breach_checks(factory, now=clock.now, every_seconds=0) == 0
    assert housekeeping.queue_breach_checks(factory, now=clock.now, every_seconds=60) == 1
    assert housekeeping.queue_breach_checks(factory, now=clock.now, every_seconds=60) == 0
    assert [j.status for j in jobs(db, tenant_a.id)] == [JobStatus.QUEUED]
    app.state.job_worker.run_until_idle(max_jobs=5)
    done, following = jobs(db, tenant_a.id)
    assert done.status is JobStatus.SUCCEEDED and following.status is JobStatus.QUEUED
    assert following.run_after == clock.now + timedelta(seconds=60)
    # Housekeeping does not start a second chain while one is queued.
    assert housekeeping.queue_breach_checks(factory, now=clock.now, every_seconds=60) == 0
