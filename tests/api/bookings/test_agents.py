"""The agent's side of a call, through HTTP on SQLite and PostgreSQL: admit (from the waiting
room's opening to the end), mark a no-show (after the start, never once admitted), complete
(after admission or the start) — only the bound agent's action counts — each a history step and
a webhook carrying the ticket's context; automatic admission recorded by the bookings job at the
start; and an agent's day of calls with each ticket's context."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi import FastAPI
from sqlalchemy import Engine

from tests.api.assignment.test_assign import subscribe
from tests.api.bookings.test_bookings import DAY, book, org, outbox
from tests.api.conftest import T0, As, FakeClock, TenantCtx, assert_problem

M = timedelta(minutes=1)
NINE = T0 + 60 * M  # the first call's start (BERLIN_10), 09:00 UTC
STEPS = ("call_admitted", "call_no_show", "call_completed")
EVENTS = ("booking.admitted", "booking.no_show", "booking.completed", "booking.agent_bound")


def act(c: As, booking: str, action: str, agent: str) -> Any:
    return c.post(f"/v1/bookings/{booking}/{action}", json={"agent_id": agent})


def bind(c: As, lead_minutes: int = 120) -> dict[str, str]:
    r = c.post("/v1/bookings/bind", json={"lead_minutes": lead_minutes})
    assert r.status_code == 200, r.text
    return {b["booking_id"]: b["agent"] for b in r.json()["bound"]}


def steps(c: As, ticket: str) -> list[dict[str, Any]]:
    items = c.get(f"/v1/tickets/{ticket}/history").json()["items"]
    return [e for e in items if e["kind"] in STEPS]


def test_only_the_bound_agent_admits_and_only_in_the_waiting_rooms_time(
    a: As, tenant_a: TenantCtx, db: Engine, clock: FakeClock
) -> None:
    org(a)
    subscribe(db, tenant_a.id, *EVENTS)
    call = book(a, ticket="ZD-1").json()["id"]  # 09:00-09:30 UTC
    later = book(a, start=f"{DAY}16:00:00+01:00", ticket="ZD-2").json()["id"]  # 15:00 UTC
    agent = bind(a)[call]
    other = "ben" if agent == "ana" else "ana"

    # Another agent, an unbound call, an unknown call, a missing agent_id.
    assert_problem(act(a, call, "admit", other), 409, "agent_id")
    problem = assert_problem(act(a, later, "admit", agent), 409, "agent_id")
    assert "no agent is bound" in problem["errors"][0]["reason"]
    assert_problem(act(a, "call_nope", "admit", agent), 404)
    assert_problem(a.post(f"/v1/bookings/{call}/admit", json={}), 422, "agent_id")
    # Before the waiting room opens (10 minutes before the call by default).
    clock.now = NINE - 11 * M
    problem = assert_problem(act(a, call, "admit", agent), 409)
    assert f"{DAY}08:50:00+00:00" in problem["detail"]
    assert steps(a, "ZD-1") == []

    clock.now = NINE - 10 * M
    r = act(a, call, "admit", agent)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["admitted_at"] == f"{DAY}08:50:00Z" and body["admitted_by"] == agent
    assert body["status"] == "booked" and body["completed_at"] is None
    clock.now = NINE - 5 * M
    again = act(a, call, "admit", agent)  # twice is harmless: the first admission stands
    assert again.status_code == 200 and again.json()["admitted_at"] == f"{DAY}08:50:00Z"
    assert_problem(act(a, call, "admit", other), 409, "agent_id")  # still not theirs

    [step] = steps(a, "ZD-1")
    assert step["kind"] == "call_admitted" and step["actor"] not in (None, "system", agent)
    assert step["data"]["agent_id"] == agent  # the agent; the actor is the API key's id
    assert step["data"]["booking_id"] == call and step["data"]["automatic"] is False
    [sent] = [d for t, d in outbox(db, tenant_a.id) if t == "booking.admitted"]
    assert sent["agent_id"] == agent and sent["automatic"] is False
    assert sent["admitted_at"] == "2026-03-02T08:50:00+00:00"
    assert sent["ticket"] == {
        "id": "ZD-1",
        "priority": "normal",
        "status": "new",
        "team_id": "support",
        "owner_agent_id": None,
        "channel": "email",
    }

    # Until the end, not after.
    owner = bind(a, lead_minutes=600)[later]
    clock.now = T0 + 7 * 60 * M + 30 * M  # 15:30, the later call's end
    problem = assert_problem(act(a, later, "admit", owner), 409)
    assert "over" in problem["detail"]
    clock.now -= M
    assert act(a, later, "admit", owner).status_code == 200


def test_no_show_after_the_start_complete_after_admission_and_each_told_once(
    a: As, tenant_a: TenantCtx, db: Engine, clock: FakeClock
) -> None:
    org(a)
    subscribe(db, tenant_a.id, *EVENTS)
    met = book(a, ticket="ZD-1").json()["id"]  # 09:00 UTC
    absent = book(a, ticket="ZD-2").json()["id"]  # 09:00 UTC too: the other agent
    agents = bind(a)
    clock.now = NINE - 5 * M
    # Before the start: no no-show, and nothing to complete before admission.
    assert_problem(act(a, absent, "no-show", agents[absent]), 409)
    assert_problem(act(a, met, "complete", agents[met]), 409)
    assert act(a, met, "admit", agents[met]).status_code == 200
    # Admitted: completing is allowed even before the start; a no-show is not.
    assert_problem(act(a, met, "no-show", agents[met]), 409)
    r = act(a, met, "complete", agents[met])
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "completed" and r.json()["completed_at"] == f"{DAY}08:55:00Z"

    clock.now = NINE + 5 * M
    assert_problem(act(a, absent, "no-show", agents[met]), 409, "agent_id")  # not theirs
    r = act(a, absent, "no-show", agents[absent])
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "no_show" and r.json()["completed_at"] == f"{DAY}09:05:00Z"
    # Twice is harmless; the other closings are refused; a no-show is over, not cancellable.
    assert act(a, absent, "no-show", agents[absent]).json()["status"] == "no_show"
    assert act(a, met, "complete", agents[met]).json()["completed_at"] == f"{DAY}08:55:00Z"
    assert_problem(act(a, absent, "complete", agents[absent]), 409)
    assert_problem(act(a, met, "no-show", agents[met]), 409)
    assert_problem(a.post(f"/v1/bookings/{absent}/cancel"), 409)

    def listed(status: str) -> list[str]:
        r = a.get("/v1/bookings", params={"status": status})
        assert r.status_code == 200, r.text
        return [b["id"] for b in r.json()["items"]]

    assert listed("no_show") == [absent] and listed("completed") == [met]
    assert listed("booked") == []

    assert [s["kind"] for s in steps(a, "ZD-1")] == ["call_admitted", "call_completed"]
    [no_show] = steps(a, "ZD-2")
    assert no_show["kind"] == "call_no_show" and no_show["data"]["agent_id"] == agents[absent]
    sent = [(t, d["booking_id"], d["agent_id"]) for t, d in outbox(db, tenant_a.id)]
    closed = [s for s in sent if s[0] in ("booking.completed", "booking.no_show")]
    assert closed == [
        ("booking.completed", met, agents[met]),
        ("booking.no_show", absent, agents[absent]),
    ]


def test_a_call_whose_end_passed_unclosed_can_still_be_closed_by_its_agent(
    a: As, clock: FakeClock, app: FastAPI
) -> None:
    """The bookings job stores a call whose end passed as completed (by the clock, without
    ``completed_at``); its agent may still say what happened afterwards."""
    org(a, agents=("ana",))
    call = book(a).json()["id"]
    bind(a)
    clock.now = NINE + 45 * M
    while app.state.job_worker.run_once() is not None:
        pass
    shown = a.get(f"/v1/bookings/{call}").json()
    assert shown["status"] == "completed" and shown["completed_at"] is None
    r = act(a, call, "no-show", "ana")
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "no_show" and r.json()["completed_at"] == f"{DAY}09:45:00Z"


def test_agent_actions_need_the_helpdesk_scope(a: As, tenant_a: TenantCtx) -> None:
    org(a, agents=("ana",))
    call = book(a).json()["id"]
    bind(a)
    assert_problem(act(tenant_a.key("planner"), call, "admit", "ana"), 403)
    assert act(tenant_a.key("helpdesk"), call, "admit", "ana").status_code == 409  # too early


def test_automatic_admission_is_recorded_by_the_bookings_job_at_the_start(
    a: As, tenant_a: TenantCtx, db: Engine, clock: FakeClock, app: FastAPI
) -> None:
    org(a, agents=("ana",))
    subscribe(db, tenant_a.id, *EVENTS)
    r = a.patch("/v1/policies", json={"call_room": {"admission": "auto"}})
    assert r.status_code == 200, r.text
    call = book(a).json()["id"]  # 09:00 UTC
    worker = app.state.job_worker
    run = worker.run_once()  # the booking's run: due now (within the lead time), binds
    assert run is not None and run.kind == "bookings.bind"
    assert a.get(f"/v1/bookings/{call}").json()["agent"] == "ana"
    assert a.get(f"/v1/bookings/{call}").json()["admitted_at"] is None
    clock.now = NINE - M
    assert worker.run_once() is None  # the next run is queued for the start itself
    clock.now = NINE
    assert worker.run_once() is not None
    shown = a.get(f"/v1/bookings/{call}").json()
    assert shown["admitted_at"] == f"{DAY}09:00:00Z" and shown["admitted_by"] == "ana"
    [step] = steps(a, "ZD-1")
    assert step["actor"] == "system" and step["data"]["automatic"] is True
    [sent] = [d for t, d in outbox(db, tenant_a.id) if t == "booking.admitted"]
    assert sent["automatic"] is True and sent["agent_id"] == "ana"
    assert sent["ticket"]["id"] == "ZD-1"
    # Recorded once: later runs and the agent's own admission change nothing.
    assert a.post("/v1/bookings/rebalance").status_code == 200
    clock.now = NINE + M
    assert act(a, call, "admit", "ana").json()["admitted_at"] == f"{DAY}09:00:00Z"
    assert len(steps(a, "ZD-1")) == 1
    assert act(a, call, "complete", "ana").status_code == 200


def test_an_agent_admits_nothing_automatically_by_default(
    a: As, clock: FakeClock, app: FastAPI
) -> None:
    org(a, agents=("ana",))
    call = book(a).json()["id"]
    worker = app.state.job_worker
    clock.now = NINE + M
    while worker.run_once() is not None:
        pass
    assert a.get(f"/v1/bookings/{call}").json()["admitted_at"] is None


# --------------------------------------------------------------------------- an agent's day


def day(c: As, agent: str, **params: str) -> Any:
    return c.get(f"/v1/agents/{agent}/calls", params=params)


def test_an_agents_day_lists_their_calls_by_start_with_the_tickets_context(
    a: As, clock: FakeClock
) -> None:
    org(a, agents=("ana",))
    r = a.put(
        "/v1/tickets/ZD-5",
        json={
            "team": "support",
            "required_skills": {"networking": 2},
            "priority": "urgent",
            "status": "open",
            "effort_minutes": 30,
            "owner_agent": "ana",
            "requester": "kim@example.com",
            "channel": "chat",
            "created_at": f"{DAY}07:00:00Z",
            "resolution_due": f"{DAY}18:00:00Z",
        },
    )
    assert r.status_code == 201, r.text
    late = book(a, start=f"{DAY}16:00:00+01:00", ticket="ZD-1").json()["id"]  # 15:00 UTC
    early = book(a, ticket="ZD-5").json()["id"]  # 09:00 UTC
    gone = book(a, start=f"{DAY}12:00:00+01:00", ticket="ZD-2").json()["id"]  # 11:00 UTC
    unbound = book(a, start=f"{DAY}17:00:00+01:00", ticket="ZD-4").json()["id"]  # 16:00 UTC
    bound = bind(a, lead_minutes=7 * 60 + 30)  # all but the 16:00 call
    assert set(bound) == {late, early, gone}
    assert a.post(f"/v1/bookings/{gone}/cancel").status_code == 200

    r = day(a, "ana", date=DAY[:-1])
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["agent_id"], body["date"], body["tz"]) == ("ana", DAY[:-1], "UTC")
    assert (body["from"], body["to"]) == (f"{DAY}00:00:00Z", "2026-03-03T00:00:00Z")
    assert [c["id"] for c in body["calls"]] == [early, late]  # by start; not cancelled
    first = body["calls"][0]
    assert first["ticket"] == {
        "id": "ZD-5",
        "priority": "urgent",
        "status": "open",
        "team": "support",
        "owner_agent": "ana",
        "channel": "chat",
        "requester": "kim@example.com",
        "first_response_due": first["ticket"]["first_response_due"],  # the SLA policy's
        "resolution_due": f"{DAY}18:00:00Z",
        "required_skills": {"networking": 2},
    }
    assert first["status"] == "booked" and first["agent"] == "ana"
    assert first["admitted_at"] is None and first["at_risk"] is False
    assert first["room_opens_at"] == f"{DAY}08:50:00Z"
    assert unbound not in {c["id"] for c in body["calls"]}
    with_cancelled = day(a, "ana", date=DAY[:-1], include_cancelled="true").json()["calls"]
    assert [c["id"] for c in with_cancelled] == [early, gone, late]
    assert with_cancelled[1]["status"] == "cancelled"

    # The day is cut in the zone asked: 15:00 UTC is midnight in Tokyo, the next day.
    tokyo = day(a, "ana", date=DAY[:-1], tz="Asia/Tokyo").json()
    assert [c["id"] for c in tokyo["calls"]] == [early]
    assert tokyo["from"] == "2026-03-01T15:00:00Z"
    assert [c["id"] for c in day(a, "ana", date="2026-03-03", tz="Asia/Tokyo").json()["calls"]] == [
        late
    ]
    # Default zone: the agent's; default day: today there.
    assert a.patch("/v1/agents/ana", json={"timezone": "Asia/Tokyo"}).status_code == 200
    clock.now = T0 + 17 * 60 * M  # 01:00 on 3 March in Tokyo
    mine = day(a, "ana").json()
    assert (mine["date"], mine["tz"]) == ("2026-03-03", "Asia/Tokyo")
    assert [c["id"] for c in mine["calls"]] == [late]
    assert mine["calls"][0]["status"] == "completed"  # its end has passed: shown completed


def test_an_agents_day_refuses_bad_input(a: As, b: As) -> None:
    org(a, agents=("ana",))
    assert_problem(day(a, "nobody"), 404)
    assert_problem(day(b, "ana"), 404)  # another tenant's agent is unknown here
    assert_problem(day(a, "ana", date="2026-02-30"), 422, "query.date")
    assert_problem(day(a, "ana", date="yesterday"), 422, "query.date")
    assert_problem(day(a, "ana", date="9999-12-31"), 422, "query.date")
    assert_problem(day(a, "ana", date="0001-01-01", tz="Asia/Tokyo"), 422, "query.date")
    assert_problem(day(a, "ana", tz="Mars/Olympus"), 422, "query.tz")
    assert day(a, "ana", date="2026-03-02").json()["calls"] == []


def test_an_admitted_call_keeps_its_agent_whatever_the_rechecks_find(
    a: As, tenant_a: TenantCtx, db: Engine, clock: FakeClock, app: FastAPI
) -> None:
    """Once the customer is with their agent, a calendar event or a status change landing on
    the call's time moves nothing: no rebinding, no at-risk report, and the agent can still
    close the call."""
    org(a)
    subscribe(db, tenant_a.id, *EVENTS, "booking.at_risk")
    call = book(a).json()["id"]
    agent = bind(a)[call]
    other = "ben" if agent == "ana" else "ana"
    clock.now = NINE - 5 * M
    assert act(a, call, "admit", agent).status_code == 200
    clock.now = NINE + 5 * M
    busy = {"agent": agent, "start": f"{DAY}09:10:00Z", "end": f"{DAY}09:20:00Z"}
    assert a.post("/v1/busy", json=busy).status_code == 201
    while app.state.job_worker.run_once() is not None:
        pass
    out = a.post("/v1/bookings/rebalance").json()
    assert out["rebound"] == [] and out["at_risk"] == []
    assert a.get(f"/v1/bookings/{call}").json()["agent"] == agent
    assert a.post("/v1/busy", json=busy | {"agent": other}).status_code == 201
    assert a.post("/v1/bookings/rebalance").json()["at_risk"] == []
    shown = a.get(f"/v1/bookings/{call}").json()
    assert shown["agent"] == agent and shown["at_risk"] is False
    sent = [t for t, _ in outbox(db, tenant_a.id)]
    assert sent.count("booking.agent_bound") == 1 and "booking.at_risk" not in sent
    clock.now = NINE + 20 * M
    assert act(a, call, "complete", agent).status_code == 200
