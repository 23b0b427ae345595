"""Channels through HTTP on SQLite and PostgreSQL: a ticket's channel (built-in or the tenant's
own), agents' capacity per channel honoured by assignment, /v1/solve and the optimizer's plan,
and live channels re-offered from the team queue the moment an agent frees up."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Engine

from api.assignment import live
from tests.api.assignment.test_assign import DAY, history, org, outbox, put_ticket, subscribe
from tests.api.conftest import As, TenantCtx, assert_problem, ticket_body


def owner(c: As, ticket_id: str) -> dict[str, str]:
    return c.get(f"/v1/tickets/{ticket_id}").json()["owner"]


def cap(c: As, agent: str, **caps: int) -> None:
    r = c.patch(f"/v1/agents/{agent}", json={"channel_capacity": caps})
    assert r.status_code == 200, r.text
    assert r.json()["channel_capacity"] == caps


def assign(c: As, ticket_id: str) -> dict[str, Any]:
    r = c.post(f"/v1/tickets/{ticket_id}/assign", json={})
    assert r.status_code == 200, r.text
    return r.json()


# ---------------------------------------------------------------------------- the ticket
def test_a_ticket_has_a_channel_email_by_default_and_lists_filter_by_it(a: As) -> None:
    org(a)
    assert put_ticket(a, "E1")["channel"] == "email"
    assert put_ticket(a, "C1", channel="chat")["channel"] == "chat"
    assert put_ticket(a, "P1", channel="phone")["channel"] == "phone"
    assert a.get("/v1/tickets/C1").json()["channel"] == "chat"
    r = a.get("/v1/tickets", params={"channel": ["chat", "phone"]})
    assert [t["id"] for t in r.json()["items"]] == ["C1", "P1"]
    assert [t["id"] for t in a.get("/v1/tickets?channel=email").json()["items"]] == ["E1"]
    # A change of channel is an update in the history.
    put_ticket(a, "E1", channel="web_form")
    last = history(a, "E1")[-1]
    assert last["kind"] == "updated" and last["data"]["changed"] == ["channel"]


def test_an_unknown_channel_is_a_422_until_the_tenant_declares_it(a: As) -> None:
    org(a)
    body = {"team": "support", "channel": "whatsapp-biz"}
    problem = assert_problem(a.put("/v1/tickets/X1", json=ticket_body(body)), 422, "channel")
    assert "unknown channel 'whatsapp-biz'" in problem["errors"][0]["reason"]
    assert a.get("/v1/tickets/X1").status_code == 404  # nothing stored
    r = a.patch("/v1/policies", json={"channels": [{"id": "whatsapp-biz", "live": True}]})
    assert r.status_code == 200, r.text
    assert r.json()["channels"] == [{"id": "whatsapp-biz", "live": True}]
    assert a.put("/v1/tickets/X1", json=ticket_body(body)).status_code == 201
    # A built-in one cannot be declared, nor one twice.
    assert_problem(a.patch("/v1/policies", json={"channels": [{"id": "chat"}]}), 422, "channels")
    twice = {"channels": [{"id": "kiosk"}, {"id": "kiosk"}]}
    assert_problem(a.patch("/v1/policies", json=twice), 422, "channels")
    # A channel still in use cannot be dropped.
    assert_problem(a.patch("/v1/policies", json={"channels": []}), 409)
    assert a.get("/v1/policies").json()["channels"] == [{"id": "whatsapp-biz", "live": True}]


# ---------------------------------------------------------------------------- the agent
def test_agents_carry_a_capacity_per_channel(a: As) -> None:
    org(a)
    assert a.get("/v1/agents/ana").json()["channel_capacity"] == {}
    cap(a, "ana", chat=2, email=10)
    problem = assert_problem(
        a.patch("/v1/agents/ana", json={"channel_capacity": {"fax": 1}}),
        422,
        "channel_capacity.fax",
    )
    assert "unknown channel 'fax'" in problem["errors"][0]["reason"]
    assert_problem(
        a.patch("/v1/agents/ana", json={"channel_capacity": {"chat": -1}}),
        422,
        "channel_capacity.chat",
    )
    assert a.get("/v1/agents/ana").json()["channel_capacity"] == {"chat": 2, "email": 10}
    body = {"id": "dan", "team": "support", "channel_capacity": {"phone": 1}}
    r = a.post("/v1/agents", json=body)
    assert r.status_code == 201 and r.json()["channel_capacity"] == {"phone": 1}
    rows = [{"id": "eve", "team": "support", "channel_capacity": {"chat": 3}}]
    assert a.post("/v1/agents/import", json=rows).status_code == 201
    assert a.get("/v1/agents/eve").json()["channel_capacity"] == {"chat": 3}
    bad = [{"id": "fay", "team": "support", "channel_capacity": {"pager": 3}}]
    assert_problem(a.post("/v1/agents/import", json=bad), 422, "channel_capacity.pager")
    csv_text = "id,team,channel_capacity\ngus,support,chat=2;phone=1\n"
    r = a.post("/v1/agents/import", content=csv_text, headers={"Content-Type": "text/csv"})
    assert r.status_code == 201, r.text
    assert a.get("/v1/agents/gus").json()["channel_capacity"] == {"chat": 2, "phone": 1}


# ---------------------------------------------------------------------------- assignment
def test_assignment_honours_each_agents_chat_capacity(a: As) -> None:
    org(a, capacity=5)
    for agent in ("ana", "ben", "cid"):
        cap(a, agent, chat=1)
    agents = set()
    for i in range(3):
        put_ticket(a, f"C{i}", channel="chat")
        agents.add(assign(a, f"C{i}")["agent"])
    assert agents == {"ana", "ben", "cid"}
    put_ticket(a, "C3", channel="chat")
    body = assign(a, "C3")
    assert body["agent"] is None
    assert body["reasons"][0]["rule"] == "channel_capacity"
    assert "all at their chat capacity" in body["reasons"][0]["detail"]
    # Email is not capped: the total capacity still has room.
    put_ticket(a, "E1")
    assert assign(a, "E1")["agent"] is not None


def test_solve_honours_channel_capacity(a: As) -> None:
    shift = [{"start": f"{DAY}07:00:00Z", "end": f"{DAY}17:00:00Z"}]
    problem = {
        "now": f"{DAY}08:00:00Z",
        "agents": [
            {
                "id": "ana",
                "team": "s",
                "capacity": 5,
                "channel_capacity": {"chat": 1},
                "shifts": shift,
            },
            {"id": "ben", "team": "s", "capacity": 5, "shifts": shift, "open_tickets": 4},
        ],
        "tickets": [
            {"id": f"T{i}", "team": "s", "created_at": f"{DAY}07:00:00Z", "channel": "chat"}
            for i in range(3)
        ],
        "policy": "optimizer",
        "time_limit_seconds": 1,
    }
    r = a.post("/v1/solve", json=problem)
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["violations"] == []
    placed = [x["agent_id"] for x in out["assignments"]]
    assert placed.count("ana") == 1 and placed.count("ben") == 1
    assert len(out["queued"]) == 1


# ---------------------------------------------------------------------------- live channels
def test_a_solved_chat_frees_its_agent_for_the_next_chat_in_the_queue_at_once(
    a: As, db: Engine, tenant_a: TenantCtx
) -> None:
    org(a, capacity=1)
    subscribe(db, tenant_a.id, "ticket.assigned")
    for agent in ("ana", "ben", "cid"):
        put_ticket(a, f"H-{agent}", owner_agent=agent, status="open")  # everyone is full
    put_ticket(a, "C1", channel="chat", created_at=f"{DAY}07:40:00Z", priority="normal")
    put_ticket(a, "C2", channel="chat", created_at=f"{DAY}07:50:00Z", priority="urgent")
    put_ticket(a, "E1", channel="email", created_at=f"{DAY}07:00:00Z", priority="urgent")
    assert assign(a, "C1")["agent"] is None and assign(a, "C2")["agent"] is None

    # ben solves his ticket: the most urgent waiting chat (C2) is his in the same request.
    put_ticket(a, "H-ben", owner_agent="ben", status="solved")
    assert owner(a, "C2") == {"kind": "agent", "id": "ben"}
    assert owner(a, "C1") == {"kind": "team", "id": "support"}  # nobody else is free
    assert owner(a, "E1") == {"kind": "team", "id": "support"}  # email waits for assign
    last = history(a, "C2")[-1]
    assert last["kind"] == "assigned" and last["to_agent"] == "ben"
    assert last["data"]["source"] == "live_queue"
    assert last["data"]["reasons"][0]["rule"] == "live_queue"
    assert "chat is a live channel" in last["data"]["reasons"][0]["detail"]
    # (The helpdesk's own PUTs that set owners emit ticket.assigned too, with no source.)
    sent = [d for kind, d in outbox(db, tenant_a.id) if kind == "ticket.assigned"]
    assert [(d["ticket_id"], d["agent_id"], d["source"]) for d in sent if d["source"]] == [
        ("C2", "ben", "live_queue")
    ]

    # ana's ticket is reassigned away from her by the helpdesk: she takes C1.
    put_ticket(a, "H-ana", owner_agent=None, status="open")
    assert owner(a, "C1") == {"kind": "agent", "id": "ana"}


def test_a_chat_moved_back_to_the_queue_is_offered_again_at_once(a: As) -> None:
    org(a, capacity=1)
    put_ticket(a, "C1", channel="chat", owner_agent="ben")
    # The helpdesk takes it off ben: a live chat does not wait while ben is free.
    body = put_ticket(a, "C1", channel="chat", owner_agent=None)
    assert body["owner"]["kind"] == "agent"


def test_an_agent_back_at_work_takes_the_waiting_live_queue(a: As) -> None:
    org(a, capacity=1)
    r = a.post("/v1/agents/ana/status", json={"status": "away", "reroute": "keep"})
    assert r.status_code == 200
    for agent in ("ben", "cid"):
        put_ticket(a, f"H-{agent}", owner_agent=agent, status="open")
    put_ticket(a, "P1", channel="phone")
    assert assign(a, "P1")["agent"] is None
    r = a.post("/v1/agents/ana/status", json={"status": "available"})
    assert r.status_code == 200, r.text
    assert owner(a, "P1") == {"kind": "agent", "id": "ana"}
    assert history(a, "P1")[-1]["data"]["source"] == "live_queue"


def test_patching_an_agent_available_or_roomier_offers_the_live_queue(a: As) -> None:
    org(a, capacity=1)
    for agent in ("ana", "ben", "cid"):
        put_ticket(a, f"H-{agent}", owner_agent=agent, status="open")
    put_ticket(a, "M1", channel="messaging")
    put_ticket(a, "W1", channel="web_form")
    assert assign(a, "M1")["agent"] is None and assign(a, "W1")["agent"] is None
    r = a.patch("/v1/agents/ana", json={"capacity": 2})
    assert r.status_code == 200, r.text
    assert owner(a, "M1") == {"kind": "agent", "id": "ana"}
    assert owner(a, "W1") == {"kind": "team", "id": "support"}  # not a live channel


def test_a_tenant_live_channel_is_re_offered_and_a_channel_cap_still_holds(a: As) -> None:
    org(a, capacity=3)
    r = a.patch("/v1/policies", json={"channels": [{"id": "kiosk", "live": True}]})
    assert r.status_code == 200
    for agent in ("ana", "ben", "cid"):
        cap(a, agent, kiosk=1)
    for i, agent in enumerate(("ana", "ben", "cid")):
        put_ticket(a, f"K{i}", channel="kiosk", owner_agent=agent, status="open")
    put_ticket(a, "K9", channel="kiosk")
    assert assign(a, "K9")["agent"] is None  # everyone at their kiosk cap, not their total
    put_ticket(a, "K1", channel="kiosk", owner_agent="ben", status="closed")
    assert owner(a, "K9") == {"kind": "agent", "id": "ben"}


def test_escalating_a_ticket_away_frees_its_agent_for_a_waiting_chat(a: As) -> None:
    org(a, capacity=1)
    put_ticket(a, "H-ana", owner_agent="ana", status="open")
    put_ticket(a, "H-cid", owner_agent="cid", status="open", team="tier2")
    put_ticket(a, "B1", owner_agent="ben", status="open")
    put_ticket(a, "C1", channel="chat")
    assert assign(a, "C1")["agent"] is None
    r = a.post(
        "/v1/tickets/B1/escalate",
        json={"required_skills": {"billing": 4}, "reassign": False, "reason": "expert"},
    )
    assert r.status_code == 200, r.text
    assert owner(a, "C1") == {"kind": "agent", "id": "ben"}


def test_the_optimizer_job_honours_channel_capacity(a: As, app: Any) -> None:
    org(a, capacity=4)
    for agent in ("ana", "ben", "cid"):
        cap(a, agent, chat=1)
    for i in range(5):
        put_ticket(a, f"C{i}", channel="chat")
    r = a.post("/v1/queue/optimize", json={"time_limit_s": 2.0, "seed": 3})
    assert r.status_code == 202, r.text
    run = app.state.job_worker.run_once()
    assert run is not None, run
    done = a.get(r.json()["links"]["self"]).json()
    assert done["status"] == "succeeded", done
    owners = [owner(a, f"C{i}") for i in range(5)]
    agents = [o["id"] for o in owners if o["kind"] == "agent"]
    assert sorted(agents) == ["ana", "ben", "cid"]  # one chat each, two wait


def test_a_failed_re_offer_leaves_the_helpdesks_committed_change(
    a: As, monkeypatch: pytest.MonkeyPatch
) -> None:
    org(a, capacity=1)
    put_ticket(a, "H-ben", owner_agent="ben", status="open")
    put_ticket(a, "C1", channel="chat")

    def boom(**_: Any) -> list[live.Offered]:
        raise RuntimeError("the offer broke")

    monkeypatch.setattr(live, "offer", boom)
    body = put_ticket(a, "H-ben", owner_agent="ben", status="solved")
    assert body["status"] == "solved"
    assert a.get("/v1/tickets/H-ben").json()["status"] == "solved"
    assert owner(a, "C1") == {"kind": "team", "id": "support"}


def test_the_most_urgent_live_ticket_goes_first_however_many_older_ones_wait(a: As) -> None:
    org(a, capacity=1)
    for agent in ("ana", "ben", "cid"):
        put_ticket(a, f"H-{agent}", owner_agent=agent, status="open")
    for i in range(6):  # older, normal chats: more than one free-up looks at
        put_ticket(a, f"N{i}", channel="chat", priority="normal", created_at=f"{DAY}07:0{i}:00Z")
    put_ticket(a, "U1", channel="phone", priority="urgent", created_at=f"{DAY}07:59:00Z")
    put_ticket(a, "H-ana", owner_agent="ana", status="closed")
    assert owner(a, "U1") == {"kind": "agent", "id": "ana"}
    assert all(owner(a, f"N{i}")["kind"] == "team" for i in range(6))


@pytest.mark.parametrize(
    ("support_scope", "cid_takes_it"), [("borrow", True), ("team_only", False)]
)
def test_a_team_that_lends_by_its_own_scope_is_re_offered_to_another_teams_freed_agent(
    a: As, support_scope: str, cid_takes_it: bool
) -> None:
    # The tenant keeps teams to themselves (team_only); support's own scope says otherwise.
    org(a, capacity=1, team_scope=None)
    r = a.patch("/v1/teams/support", json={"scope": support_scope})
    assert r.status_code == 200, r.text
    for agent in ("ana", "ben"):
        put_ticket(a, f"H-{agent}", owner_agent=agent, status="open")  # support is full
    put_ticket(a, "H-cid", team="tier2", owner_agent="cid", status="open")  # so is tier2
    put_ticket(a, "C1", channel="chat")
    assert assign(a, "C1")["agent"] is None
    put_ticket(a, "H-cid", team="tier2", owner_agent="cid", status="solved")  # cid frees up
    expected = {"kind": "agent", "id": "cid"} if cid_takes_it else {"kind": "team", "id": "support"}
    assert owner(a, "C1") == expected
