"""Tickets through HTTP: PUT upsert by external id, validation, history, isolation."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError

from tests.api.conftest import As, FakeClock, TenantCtx, assert_problem

T = "2026-03-02T"


def org(c: As) -> None:
    for skill in ("billing", "lang:de"):
        assert c.post("/v1/skills", json={"id": skill}).status_code == 201
    for team in ("support", "tier2"):
        assert c.post("/v1/teams", json={"id": team}).status_code == 201
    for agent in ("ana", "ben"):
        r = c.post("/v1/agents", json={"id": agent, "team": "support", "skills": {"billing": 4}})
        assert r.status_code == 201


def ticket(**extra: Any) -> dict[str, Any]:
    return {
        "team": "support",
        "required_skills": {"billing": 2},
        "priority": "high",
        "status": "new",
        "owner_agent": None,
        "created_at": f"{T}07:30:00+01:00",
        "first_response_due": f"{T}09:00:00Z",
        "resolution_due": f"{T}17:00:00Z",
        "effort_minutes": 45,
        "requester": "ceo@example.com",
    } | extra


def kinds(c: As, ticket_id: str) -> list[str]:
    r = c.get(f"/v1/tickets/{ticket_id}/history")
    assert r.status_code == 200, r.text
    return [e["kind"] for e in r.json()["items"]]


def test_put_creates_then_updates_with_history(a: As, clock: FakeClock) -> None:
    org(a)
    r = a.put("/v1/tickets/ZD-1", json=ticket())
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["owner"] == {"kind": "team", "id": "support"}
    assert body["created_at"] == f"{T}06:30:00Z"  # normalised to UTC
    assert body["status"] == "new" and body["required_skills"] == {"billing": 2}

    # The same PUT again changes nothing and records nothing.
    r = a.put("/v1/tickets/ZD-1", json=ticket())
    assert r.status_code == 200
    assert kinds(a, "ZD-1") == ["created"]

    clock.advance(minutes=5)
    r = a.put("/v1/tickets/ZD-1", json=ticket(owner_agent="ana", status="open"))
    assert r.status_code == 200 and r.json()["owner"] == {"kind": "agent", "id": "ana"}
    r = a.put(
        "/v1/tickets/ZD-1",
        json=ticket(owner_agent="ben", status="open", reason="ana went home", priority="urgent"),
    )
    assert r.status_code == 200
    r = a.put(
        "/v1/tickets/ZD-1",
        json=ticket(team="tier2", status="open", reason="needs tier 2", priority="urgent"),
    )
    assert r.json()["owner"] == {"kind": "team", "id": "tier2"}

    events = a.get("/v1/tickets/ZD-1/history").json()["items"]
    assert [e["kind"] for e in events] == [
        "created",
        "assigned",
        "status_changed",
        "reassigned",
        "updated",
        "reassigned",
    ]
    assigned, status, moved, updated, escalated = events[1:]
    assert assigned["to_agent"] == "ana" and assigned["at"] == f"{T}08:05:00Z"
    assert status["from_status"] == "new" and status["to_status"] == "open"
    assert moved["from_agent"] == "ana" and moved["to_agent"] == "ben"
    assert moved["reason"] == "ana went home"
    assert updated["data"] == {"changed": ["priority"]}
    assert escalated["from_team"] == "support" and escalated["to_team"] == "tier2"
    assert escalated["from_agent"] == "ben" and escalated["to_agent"] is None
    assert all(e["actor"] for e in events)
    assert [e["seq"] for e in events] == sorted(e["seq"] for e in events)


def test_created_with_owner_records_assignment(a: As) -> None:
    org(a)
    assert a.put("/v1/tickets/ZD-2", json=ticket(owner_agent="ana")).status_code == 201
    assert kinds(a, "ZD-2") == ["created", "assigned"]


def test_ticket_validation_names_fields(a: As) -> None:
    org(a)
    naive = ticket(resolution_due=f"{T}17:00:00")
    body = assert_problem(a.put("/v1/tickets/ZD-3", json=naive), 422, "resolution_due")
    assert "timezone" in body["errors"][0]["reason"]
    r = a.put(
        "/v1/tickets/ZD-3",
        json=ticket(team="nope", required_skills={"cooking": 2}, owner_agent="ghost"),
    )
    assert_problem(r, 422, "team", "required_skills.cooking", "owner_agent")
    r = a.put("/v1/tickets/ZD-3", json=ticket(priority="asap", status="done", effort_minutes=0))
    assert_problem(r, 422, "priority", "status", "effort_minutes")
    early = ticket(first_response_due=f"{T}05:00:00Z")
    assert_problem(a.put("/v1/tickets/ZD-3", json=early), 422, "first_response_due")
    crossed = ticket(first_response_due=f"{T}12:00:00Z", resolution_due=f"{T}10:00:00Z")
    assert_problem(a.put("/v1/tickets/ZD-3", json=crossed), 422, "resolution_due")
    assert_problem(a.put("/v1/tickets/bad id!", json=ticket()), 422, "path.ticket_id")
    assert_problem(a.get("/v1/tickets/ZD-3"), 404)  # nothing was written
    assert_problem(a.get("/v1/tickets/ZD-3/history"), 404)


def test_ticket_list_filters_and_pages(a: As) -> None:
    org(a)
    for n in range(7):
        extra = {"status": "open", "owner_agent": "ana"} if n % 2 else {}
        assert a.put(f"/v1/tickets/T-{n}", json=ticket(**extra)).status_code == 201
    opened = a.get("/v1/tickets", params={"status": "open"}).json()["items"]
    assert [t["id"] for t in opened] == ["T-1", "T-3", "T-5"]
    both = a.get("/v1/tickets", params=[("status", "open"), ("status", "new")]).json()
    assert len(both["items"]) == 7
    first = a.get("/v1/tickets", params={"limit": 4}).json()
    rest = a.get("/v1/tickets", params={"limit": 4, "cursor": first["next_cursor"]}).json()
    assert [t["id"] for t in first["items"] + rest["items"]] == [f"T-{n}" for n in range(7)]
    assert rest["next_cursor"] is None
    assert len(a.get("/v1/tickets", params={"owner_agent": "ana"}).json()["items"]) == 3
    # History pages by sequence number.
    h1 = a.get("/v1/tickets/T-1/history", params={"limit": 1}).json()
    h2 = a.get("/v1/tickets/T-1/history", params={"limit": 5, "cursor": h1["next_cursor"]}).json()
    assert [e["kind"] for e in h1["items"] + h2["items"]] == ["created", "assigned"]


def test_tickets_are_isolated_per_tenant(a: As, b: As) -> None:
    org(a)
    org(b)
    assert b.put("/v1/tickets/SECRET-1", json=ticket()).status_code == 201
    assert_problem(a.get("/v1/tickets/SECRET-1"), 404)
    assert_problem(a.get("/v1/tickets/SECRET-1/history"), 404)
    assert a.get("/v1/tickets").json()["items"] == []
    # A's PUT of the same external id creates A's own ticket; B's is untouched.
    assert a.put("/v1/tickets/SECRET-1", json=ticket(priority="low")).status_code == 201
    assert b.get("/v1/tickets/SECRET-1").json()["priority"] == "high"
    assert kinds(b, "SECRET-1") == ["created"]
    # B's agents are unknown owners for A.
    assert b.post("/v1/agents", json={"id": "b-only", "team": "support"}).status_code == 201
    r = a.put("/v1/tickets/SECRET-1", json=ticket(owner_agent="b-only"))
    assert_problem(r, 422, "owner_agent")


def test_ticket_scopes(tenant_a: TenantCtx) -> None:
    org(tenant_a.admin)
    planner = tenant_a.key("planner")
    helpdesk = tenant_a.key("helpdesk")
    assert_problem(planner.put("/v1/tickets/X", json=ticket()), 403)
    assert helpdesk.put("/v1/tickets/X", json=ticket()).status_code == 201
    assert planner.get("/v1/tickets/X").status_code == 200


def test_history_is_append_only_in_the_database(a: As, db: Engine) -> None:
    org(a)
    assert a.put("/v1/tickets/ZD-9", json=ticket()).status_code == 201
    with pytest.raises(DBAPIError, match="append-only"), db.begin() as conn:
        conn.execute(text("UPDATE ticket_events SET reason = 'rewritten'"))
