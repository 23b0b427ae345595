"""Team scope through HTTP, on SQLite and PostgreSQL: the tenant's ``team_scope`` policy
(default ``team_only``), a team's own ``scope`` overriding it, in the real-time path and the
batch optimizer; when a ticket is borrowed, the assign response, the history row and the
webhook all name the lending team."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from sqlalchemy import Engine

from tests.api.assignment.test_assign import history, org, outbox, put_ticket, subscribe
from tests.api.assignment.test_jobs_optimize import FAST, run_worker
from tests.api.conftest import As, TenantCtx, assert_problem


def fill_support(c: As) -> None:
    """ana and ben (support, capacity 1) each take one support ticket."""
    for i in range(2):
        put_ticket(c, f"F{i}")
        assert c.post(f"/v1/tickets/F{i}/assign").json()["agent"] in ("ana", "ben")


def lent_reasons(reasons: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in reasons if r["rule"] == "team_scope"]


def test_teams_carry_a_nullable_scope(a: As) -> None:
    r = a.post("/v1/teams", json={"id": "support"})
    assert r.status_code == 201 and r.json()["scope"] is None
    r = a.post("/v1/teams", json={"id": "tier2", "scope": "borrow"})
    assert r.status_code == 201 and r.json()["scope"] == "borrow"
    r = a.patch("/v1/teams/tier2", json={"scope": "team_only"})
    assert r.status_code == 200 and r.json()["scope"] == "team_only"
    assert a.get("/v1/teams/tier2").json()["scope"] == "team_only"
    r = a.patch("/v1/teams/tier2", json={"scope": None})  # back to the tenant's policy
    assert r.status_code == 200 and r.json()["scope"] is None
    assert_problem(a.patch("/v1/teams/tier2", json={"scope": "anyone"}), 422, "scope")
    assert_problem(a.post("/v1/teams", json={"id": "x", "scope": 3}), 422, "scope")
    assert a.get("/v1/teams/x").status_code == 404
    r = a.post("/v1/teams/import", json=[{"id": "ops", "scope": "borrow"}, {"id": "qa"}])
    assert r.status_code == 201, r.text
    scopes = {t["id"]: t["scope"] for t in a.get("/v1/teams").json()["items"]}
    assert scopes == {"ops": "borrow", "qa": None, "support": None, "tier2": None}


def test_team_only_is_the_default_and_keeps_a_team_s_ticket_in_its_queue(a: As) -> None:
    org(a, capacity=1, team_scope=None)
    fill_support(a)
    put_ticket(a, "T")
    out = a.post("/v1/tickets/T/assign").json()
    # cid (tier2) has billing 3 and room, but support works only its own tickets.
    assert out["agent"] is None and out["owner"] == {"kind": "team", "id": "support"}
    assert out["reasons"][0]["rule"] == "capacity"

    # Only another team has the skill: the scope is the reason it waits.
    put_ticket(a, "DE", required_skills={"lang:de": 3})
    out = a.post("/v1/tickets/DE/assign").json()
    assert out["agent"] is None
    assert out["reasons"][0]["rule"] == "team_scope"
    assert "no agent of team support has the skills" in out["reasons"][0]["detail"]


def test_borrowing_names_the_lending_team_in_the_answer_history_and_webhook(
    a: As, db: Engine, tenant_a: TenantCtx
) -> None:
    org(a, capacity=1, team_scope="borrow")
    fill_support(a)
    subscribe(db, tenant_a.id, "ticket.assigned")
    put_ticket(a, "T")
    out = a.post("/v1/tickets/T/assign").json()
    assert out["agent"] == "cid"
    [lent] = lent_reasons(out["reasons"])
    assert lent["detail"].startswith("borrowed from team tier2")
    last = history(a, "T")[-1]
    assert last["kind"] == "assigned" and last["to_agent"] == "cid"
    assert "borrowed from team tier2" in last["reason"]
    assert lent_reasons(last["data"]["reasons"]) == [lent]
    [(kind, data)] = outbox(db, tenant_a.id)
    assert kind == "ticket.assigned"
    assert any("borrowed from team tier2" in r["detail"] for r in data["reasons"])


def test_borrow_prefers_the_own_team(a: As) -> None:
    org(a, capacity=1, team_scope="borrow")
    put_ticket(a, "T")
    out = a.post("/v1/tickets/T/assign").json()
    assert out["agent"] == "ben" and lent_reasons(out["reasons"]) == []
    assert {alt["agent"] for alt in out["alternatives"]} == {"ana"}


def test_a_team_s_scope_overrides_the_policy_both_ways(a: As) -> None:
    org(a, capacity=1, team_scope="borrow")
    fill_support(a)
    put_ticket(a, "T")
    assert a.patch("/v1/teams/support", json={"scope": "team_only"}).status_code == 200
    assert a.post("/v1/tickets/T/assign", json={"dry_run": True}).json()["agent"] is None
    assert a.patch("/v1/teams/support", json={"scope": None}).status_code == 200
    assert a.post("/v1/tickets/T/assign", json={"dry_run": True}).json()["agent"] == "cid"

    # Policy team_only, the team borrows.
    assert a.patch("/v1/policies", json={"team_scope": "team_only"}).status_code == 200
    assert a.post("/v1/tickets/T/assign", json={"dry_run": True}).json()["agent"] is None
    assert a.patch("/v1/teams/support", json={"scope": "borrow"}).status_code == 200
    assert a.post("/v1/tickets/T/assign", json={"dry_run": True}).json()["agent"] == "cid"


def optimize_changes(a: As, app: FastAPI) -> dict[str, dict[str, Any]]:
    r = a.post("/v1/queue/optimize", json=FAST)
    assert r.status_code == 202, r.text
    run = run_worker(app)
    assert run is not None
    result = a.get(r.json()["links"]["self"]).json()["result"]
    return {c["ticket"]: c for c in result["changes"]}


def test_the_batch_optimizer_keeps_team_only_tickets_in_their_team(a: As, app: FastAPI) -> None:
    org(a, capacity=1, team_scope=None)
    for i in range(3):
        put_ticket(a, f"Q{i}")
    changes = optimize_changes(a, app)
    # Two support agents with one slot each: the third ticket stays in the queue, cid idles.
    assert sorted(c["to"]["id"] for c in changes.values()) == ["ana", "ben"]
    owners = [a.get(f"/v1/tickets/Q{i}").json()["owner"] for i in range(3)]
    assert owners.count({"kind": "team", "id": "support"}) == 1


def test_the_batch_optimizer_borrows_when_the_team_is_full_and_says_so(a: As, app: FastAPI) -> None:
    org(a, capacity=1, team_scope=None)
    assert a.patch("/v1/teams/support", json={"scope": "borrow"}).status_code == 200
    for i in range(3):
        put_ticket(a, f"Q{i}")
    changes = optimize_changes(a, app)
    assert sorted(c["to"]["id"] for c in changes.values()) == ["ana", "ben", "cid"]
    [lent] = [c for c in changes.values() if c["to"]["id"] == "cid"]
    last = history(a, lent["ticket"])[-1]
    assert last["data"]["source"] == "optimizer"
    [why] = lent_reasons(last["data"]["reasons"])
    assert why["detail"].startswith("borrowed from team tier2")
    assert "borrowed from team tier2" in last["reason"]


def test_reroute_stays_in_the_team_under_team_only_and_borrows_under_borrow(a: As) -> None:
    org(a, capacity=1, team_scope=None)
    put_ticket(a, "B", owner_agent="ben")  # ben is full
    put_ticket(a, "N", owner_agent="ana")
    body = a.post("/v1/agents/ana/status", json={"status": "offline"}).json()
    # cid (tier2) has billing 3 and room, but support's tickets stay in support.
    assert [c["to"] for c in body["rerouted"]] == [{"kind": "team", "id": "support"}]

    assert a.post("/v1/agents/ana/status", json={"status": "available"}).status_code == 200
    assert a.post("/v1/tickets/N/assign").json()["agent"] == "ana"
    assert a.patch("/v1/policies", json={"team_scope": "borrow"}).status_code == 200
    body = a.post("/v1/agents/ana/status", json={"status": "offline"}).json()
    [moved] = body["rerouted"]
    assert moved["to"] == {"kind": "agent", "id": "cid"}
    assert any("borrowed from team tier2" in r["detail"] for r in moved["reasons"])
