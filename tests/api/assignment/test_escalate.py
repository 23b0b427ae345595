"""Escalating a ticket to a capability, a tier or a team: requirements only go up, one
accountable owner stays on record, history says "escalated" and why. SQLite and PostgreSQL."""

from __future__ import annotations

from tests.api.assignment.test_assign import history, org, put_ticket
from tests.api.conftest import As, assert_problem


def test_escalate_to_a_tier_reassigns_when_the_owner_no_longer_qualifies(a: As) -> None:
    org(a)
    put_ticket(a, "E1", owner_agent="ben")
    r = a.post(
        "/v1/tickets/E1/escalate",
        json={"required_skills": {"tier:2": 2}, "reason": "customer needs tier 2"},
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["required_skills"] == {"billing": 2, "tier:2": 2}
    assert body["previous_required_skills"] == {"billing": 2}
    assert body["previous_owner"] == {"kind": "agent", "id": "ben"}
    assert body["owner"] == {"kind": "agent", "id": "cid"}  # the only tier:2 agent
    assert body["assignment"]["agent"] == "cid" and body["assignment"]["event"] == "reassigned"
    events = history(a, "E1")
    assert [e["kind"] for e in events] == ["created", "assigned", "escalated", "reassigned"]
    escalated = events[2]
    assert escalated["reason"] == "customer needs tier 2"
    assert escalated["data"]["to_required_skills"] == {"billing": 2, "tier:2": 2}
    assert escalated["from_agent"] == escalated["to_agent"] == "ben"  # still on record
    assert events[3]["from_agent"] == "ben" and events[3]["to_agent"] == "cid"


def test_escalate_to_a_capability_keeps_a_qualified_owner_and_moves_the_team(a: As) -> None:
    org(a)
    r = a.post(
        "/v1/capabilities",
        json={"id": "billing-expert", "requirements": {"billing": 3}},
    )
    assert r.status_code == 201, r.text
    put_ticket(a, "E2", owner_agent="ana")
    body = a.post(
        "/v1/tickets/E2/escalate",
        json={"capability": "billing-expert", "team": "tier2", "reason": "refund dispute"},
    ).json()
    # ana (billing 4) still qualifies: she stays the owner; tier2 becomes accountable.
    assert body["required_skills"] == {"billing": 3}
    assert body["owner"] == {"kind": "agent", "id": "ana"} and body["team"] == "tier2"
    assert body["assignment"] is None
    kinds = [e["kind"] for e in history(a, "E2")]
    assert kinds == ["created", "assigned", "escalated", "reassigned"]
    ticket = a.get("/v1/tickets/E2").json()
    assert ticket["team"] == "tier2" and ticket["owner_agent"] == "ana"


def test_escalate_without_reassigning_hands_it_to_the_team_queue(a: As) -> None:
    org(a)
    put_ticket(a, "E3", owner_agent="ben")
    body = a.post(
        "/v1/tickets/E3/escalate",
        json={
            "required_skills": {"billing": 5},
            "team": "tier2",
            "reassign": False,
            "reason": "needs a specialist we do not have yet",
        },
    ).json()
    assert body["owner"] == {"kind": "team", "id": "tier2"}
    last = history(a, "E3")[-1]
    assert last["kind"] == "reassigned" and last["to_team"] == "tier2"
    assert last["from_agent"] == "ben" and last["to_agent"] is None


def test_levels_only_go_up_unless_replaced(a: As) -> None:
    org(a)
    put_ticket(a, "E4", required_skills={"billing": 3})
    body = a.post(
        "/v1/tickets/E4/escalate", json={"required_skills": {"billing": 1}, "reason": "r"}
    ).json()
    assert body["required_skills"] == {"billing": 3}
    body = a.post(
        "/v1/tickets/E4/escalate",
        json={"required_skills": {"lang:de": 3}, "replace_skills": True, "reason": "r"},
    ).json()
    assert body["required_skills"] == {"lang:de": 3}
    assert body["owner"] == {"kind": "agent", "id": "cid"}


def test_escalate_bad_input_and_isolation(a: As, b: As) -> None:
    org(a)
    org(b)
    put_ticket(a, "E5")
    put_ticket(b, "B5")
    assert_problem(a.post("/v1/tickets/E5/escalate", json={"reason": "x"}), 422, "body")
    assert_problem(
        a.post("/v1/tickets/E5/escalate", json={"team": "nope", "reason": "x"}), 422, "team"
    )
    assert_problem(
        a.post("/v1/tickets/E5/escalate", json={"capability": "nope", "reason": "x"}),
        422,
        "capability",
    )
    assert_problem(
        a.post("/v1/tickets/E5/escalate", json={"required_skills": {"ghost": 2}, "reason": "x"}),
        422,
        "required_skills.ghost",
    )
    assert_problem(a.post("/v1/tickets/E5/escalate", json={"team": "tier2"}), 422, "reason")
    assert_problem(a.post("/v1/tickets/B5/escalate", json={"team": "tier2", "reason": "x"}), 404)
    assert b.get("/v1/tickets/B5").json()["team"] == "support"
    assert [e["kind"] for e in history(a, "E5")] == ["created"]  # nothing half-written
