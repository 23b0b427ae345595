"""An agent going away or offline: their unstarted tickets are re-routed by policy (real-time
reassignment, the team queue when nobody fits, back to the queue, or kept); started work stays.
Through HTTP on SQLite and PostgreSQL."""

from __future__ import annotations

from sqlalchemy import Engine

from tests.api.assignment.test_assign import history, org, outbox, put_ticket, subscribe
from tests.api.conftest import As, TenantCtx, assert_problem


def owner(c: As, ticket_id: str) -> dict[str, str]:
    return c.get(f"/v1/tickets/{ticket_id}").json()["owner"]


def test_going_offline_reassigns_unstarted_work_and_keeps_started_work(
    a: As, db: Engine, tenant_a: TenantCtx
) -> None:
    org(a)
    subscribe(db, tenant_a.id, "ticket.reassigned")
    put_ticket(a, "N1", owner_agent="ana", priority="urgent")
    put_ticket(a, "N2", owner_agent="ana", required_skills={"billing": 4}, priority="low")
    put_ticket(a, "O1", owner_agent="ana", status="open")
    r = a.post("/v1/agents/ana/status", json={"status": "offline", "reason": "sick"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "offline" and body["policy"] == "reassign"
    assert body["kept"] == ["O1"]
    moved = {c["ticket"]: c for c in body["rerouted"]}
    # N1 needs billing 2: ben fits exactly. N2 needs billing 4: only ana had it -> team queue.
    assert moved["N1"]["to"] == {"kind": "agent", "id": "ben"}
    assert moved["N2"]["to"] == {"kind": "team", "id": "support"}
    assert moved["N1"]["event"] == moved["N2"]["event"] == "reassigned"
    assert moved["N1"]["reasons"][0] == {
        "rule": "available",
        "detail": "agent ana is offline",
        "value": 0.0,
    }
    assert owner(a, "N1") == {"kind": "agent", "id": "ben"}
    assert owner(a, "N2") == {"kind": "team", "id": "support"}
    assert owner(a, "O1") == {"kind": "agent", "id": "ana"}
    last = history(a, "N2")[-1]
    assert last["kind"] == "reassigned" and last["from_agent"] == "ana" and last["to_agent"] is None
    assert last["reason"].startswith("sick (reroute: agent ana is offline")
    assert a.get("/v1/agents/ana").json()["status"] == "offline"
    sent = {d["ticket_id"]: d for kind, d in outbox(db, tenant_a.id) if kind == "ticket.reassigned"}
    assert set(sent) == {"N1", "N2"} and sent["N1"]["source"] == "reroute"


def test_queue_and_keep_policies(a: As) -> None:
    org(a)
    put_ticket(a, "Q1", owner_agent="ben")
    put_ticket(a, "K1", owner_agent="cid", team="tier2", required_skills={})
    body = a.post("/v1/agents/ben/status", json={"status": "away", "reroute": "queue"}).json()
    assert [c["ticket"] for c in body["rerouted"]] == ["Q1"]
    assert owner(a, "Q1") == {"kind": "team", "id": "support"}
    body = a.post("/v1/agents/cid/status", json={"status": "away", "reroute": "keep"}).json()
    assert body["rerouted"] == [] and body["kept"] == ["K1"]
    assert owner(a, "K1") == {"kind": "agent", "id": "cid"}
    # Coming back changes no ticket.
    body = a.post("/v1/agents/cid/status", json={"status": "available"}).json()
    assert body["status"] == "available" and body["rerouted"] == []


def test_patching_the_agent_status_reroutes_by_the_default_policy(a: As) -> None:
    org(a)
    put_ticket(a, "P1", owner_agent="ben")
    r = a.patch("/v1/agents/ben", json={"status": "away"})
    assert r.status_code == 200 and r.json()["status"] == "away"
    new_owner = owner(a, "P1")
    assert new_owner["kind"] == "agent" and new_owner["id"] != "ben"
    assert history(a, "P1")[-1]["data"]["source"] == "reroute"
    # Other PATCHes (no status) move nothing.
    r = a.patch("/v1/agents/ana", json={"capacity": 3})
    assert r.status_code == 200 and owner(a, "P1") == new_owner


def test_rerouted_tickets_respect_capacity(a: As) -> None:
    org(a, capacity=1)
    for i in range(3):
        put_ticket(a, f"C{i}", owner_agent="cid", team="tier2", required_skills={})
    assert a.patch("/v1/agents/cid", json={"capacity": 3}).status_code == 200
    body = a.post("/v1/agents/cid/status", json={"status": "offline"}).json()
    to = sorted(c["to"]["id"] for c in body["rerouted"])
    # ana and ben take one each (capacity 1); the third waits in tier2's queue.
    assert to == ["ana", "ben", "tier2"]


def test_status_is_tenant_isolated_and_checked(a: As, b: As) -> None:
    org(a)
    org(b)
    put_ticket(b, "B1", owner_agent="ana")
    assert_problem(a.post("/v1/agents/ghost/status", json={"status": "away"}), 404)
    assert_problem(a.post("/v1/agents/ana/status", json={"status": "asleep"}), 422, "status")
    assert a.post("/v1/agents/ana/status", json={"status": "offline"}).status_code == 200
    # B's ana is someone else: untouched, and so is B's ticket.
    assert b.get("/v1/agents/ana").json()["status"] == "available"
    assert owner(b, "B1") == {"kind": "agent", "id": "ana"}
