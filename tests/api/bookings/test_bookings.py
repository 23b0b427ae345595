"""Bookings through HTTP on SQLite and PostgreSQL: open slots in the customer's time zone that
never name an agent, booking and its 409 with alternatives, cancel freeing capacity, bad input,
tenant isolation, Idempotency-Key replay, just-in-time binding (endpoint and job), rebalancing
after an agent drops out, history and webhook events, and the PostgreSQL exclusion constraint.

The race of two bookings for the last coverable slot is in ``test_booking_race.py``.
"""

from __future__ import annotations

import random
import threading
from datetime import datetime, timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select, text
from sqlalchemy.exc import IntegrityError

from api.bookings import service
from api.bookings.routes import booking_cache
from api.db.engine import make_session_factory
from api.db.locks import lock_tenant
from api.db.models import Call, CallStatus
from api.db.webhooks import WebhookEvent, WebhookSubscription
from api.main import create_app
from api.org.intervals.schemas import BusyCreate
from api.org.intervals.service import busy as busy_service
from api.settings import Settings
from solver.slots import validate_calls, witness
from tests.api.conftest import (
    T0,
    As,
    FakeClock,
    TenantCtx,
    assert_problem,
    postgres_only,
    ticket_body,
)

DAY = f"{T0.date().isoformat()}T"  # Monday 2026-03-02; Berlin is UTC+1 that day
BERLIN_10 = f"{DAY}10:00:00+01:00"  # 09:00 UTC: the first start after the hour's notice


def org(c: As, agents: tuple[str, ...] = ("ana", "ben"), *, reserve: float = 0.0) -> None:
    """Agents with networking 3 on shift 09:00-17:00 UTC today; capability ``net`` (30-minute
    calls on a 30-minute grid, one hour's notice); tickets ZD-1..ZD-4."""
    assert c.post("/v1/skills", json={"id": "networking"}).status_code == 201
    assert c.post("/v1/teams", json={"id": "support"}).status_code == 201
    for agent in agents:
        r = c.post("/v1/agents", json={"id": agent, "team": "support", "skills": {"networking": 3}})
        assert r.status_code == 201, r.text
        r = c.post(
            "/v1/shifts",
            json={"agent": agent, "start": f"{DAY}09:00:00Z", "end": f"{DAY}17:00:00Z"},
        )
        assert r.status_code == 201, r.text
    r = c.post(
        "/v1/capabilities",
        json={
            "id": "net",
            "requirements": {"networking": 2},
            "call_minutes": 30,
            "granularity_minutes": 30,
            "min_notice_minutes": 60,
            "reserve_share": reserve,
        },
    )
    assert r.status_code == 201, r.text
    for n in range(1, 5):
        r = c.put(f"/v1/tickets/ZD-{n}", json=ticket_body(TICKET))
        assert r.status_code == 201, r.text


TICKET = {
    "team": "support",
    "required_skills": {"networking": 2},
    "priority": "normal",
    "created_at": f"{DAY}07:00:00Z",
    "effort_minutes": 30,
}


def set_status(c: As, ticket: str, status: str) -> None:
    r = c.put(f"/v1/tickets/{ticket}", json=ticket_body(TICKET | {"status": status}))
    assert r.status_code == 200, r.text


def book(
    c: As,
    start: str = BERLIN_10,
    ticket: str = "ZD-1",
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> Any:
    body = {"capability_id": "net", "ticket_id": ticket, "start": start, "tz": "Europe/Berlin"}
    return c.post("/v1/bookings", json=body | extra, headers=headers or {})


def slots(c: As, **params: str) -> Any:
    query = {"from": f"{DAY}08:00:00Z", "to": f"{DAY}18:00:00Z", "tz": "Europe/Berlin"} | params
    return c.get("/v1/capabilities/net/slots", params=query)


def starts(c: As) -> list[str]:
    r = slots(c)
    assert r.status_code == 200, r.text
    return [s["start"] for s in r.json()["slots"]]


def subscribe(engine: Engine, tenant_id: str) -> None:
    with make_session_factory(engine)() as session:
        session.add(
            WebhookSubscription(
                tenant_id=tenant_id,
                id="sub_test",
                url="https://example.com/hook",
                event_types=[
                    "booking.created",
                    "booking.cancelled",
                    "booking.agent_bound",
                    "booking.at_risk",
                ],
                description="",
                enabled=True,
                secret_encrypted="x",
                created_at=T0,
                updated_at=T0,
            )
        )
        session.commit()


def outbox(engine: Engine, tenant_id: str) -> list[tuple[str, dict[str, Any]]]:
    with make_session_factory(engine)() as session:
        rows = session.scalars(
            select(WebhookEvent)
            .where(WebhookEvent.tenant_id == tenant_id)
            .order_by(WebhookEvent.created_at, WebhookEvent.id)
        )
        return [(e.type, e.data) for e in rows]


def call_events(c: As, ticket: str) -> list[dict[str, Any]]:
    r = c.get(f"/v1/tickets/{ticket}/history")
    assert r.status_code == 200, r.text
    steps = ("call_booked", "call_cancelled", "call_flagged")
    return [e for e in r.json()["items"] if e["kind"] in steps]


# --------------------------------------------------------------------------- slots


def test_slots_are_in_the_customers_zone_and_never_name_an_agent(a: As) -> None:
    org(a)
    r = slots(a)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["reason"] is None
    got = [s["start"] for s in body["slots"]]
    # 09:00-17:00 UTC is 10:00-18:00 in Berlin; the last 30-minute call starts 17:30.
    assert got[0] == BERLIN_10
    assert got[-1] == f"{DAY}17:30:00+01:00"
    assert len(got) == 16
    assert all(s["end"].endswith("+01:00") for s in body["slots"])
    assert set(body["slots"][0]) == {"start", "end"}
    for name in ("ana", "ben"):
        assert name not in r.text
    # Another zone, another offset, the same instants.
    r = slots(a, tz="America/New_York")
    assert r.json()["slots"][0]["start"] == f"{DAY}04:00:00-05:00"


def test_no_slots_say_why(a: As) -> None:
    org(a)
    r = slots(a, **{"from": f"{DAY}18:00:00Z", "to": f"{DAY}23:00:00Z"})
    assert r.status_code == 200
    assert r.json()["slots"] == []
    assert r.json()["reason"]["rule"] == "no_agent_working"


# --------------------------------------------------------------------------- book, cancel


def test_booking_fills_the_pool_then_409_names_the_reason_and_alternatives(
    a: As, tenant_a: TenantCtx, db: Engine
) -> None:
    org(a)
    subscribe(db, tenant_a.id)
    first = book(a, ticket="ZD-1")
    assert first.status_code == 201, first.text
    body = first.json()
    assert first.headers["location"] == f"/v1/bookings/{body['id']}"
    assert body["status"] == "booked"
    assert body["start"] == f"{DAY}09:00:00Z"
    assert body["start_local"] == BERLIN_10
    assert body["agent"] is None and body["bound_at"] is None  # nobody is named yet
    assert body["at_risk"] is False
    assert book(a, ticket="ZD-2").status_code == 201  # two agents, two calls at once

    refused = book(a, ticket="ZD-3")
    problem = assert_problem(refused, 409)
    assert problem["reason"]["rule"] == "fully_booked"
    alternatives = [s["start"] for s in problem["alternatives"]]
    assert alternatives and BERLIN_10 not in alternatives
    assert alternatives[0] == f"{DAY}10:30:00+01:00"  # the nearest open start
    assert "ana" not in refused.text and "ben" not in refused.text
    assert BERLIN_10 not in starts(a)

    events = call_events(a, "ZD-1")
    assert [e["data"]["action"] for e in events] == ["booked"]
    assert events[0]["data"]["booking_id"] == body["id"]
    assert call_events(a, "ZD-3") == []  # refused: nothing written
    created = [d for t, d in outbox(db, tenant_a.id) if t == "booking.created"]
    assert len(created) == 2 and body["id"] in {d["booking_id"] for d in created}
    assert all("agent_id" not in d for d in created)


def test_cancel_frees_capacity(a: As, tenant_a: TenantCtx, db: Engine) -> None:
    org(a)
    subscribe(db, tenant_a.id)
    ids = [book(a, ticket=t).json()["id"] for t in ("ZD-1", "ZD-2")]
    assert book(a, ticket="ZD-3").status_code == 409

    r = a.post(f"/v1/bookings/{ids[0]}/cancel", json={"reason": "customer rescheduled"})
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "cancelled" and r.json()["cancelled_at"] == f"{DAY}08:00:00Z"
    assert BERLIN_10 in starts(a)
    assert book(a, ticket="ZD-3").status_code == 201
    # Cancelling twice is harmless and changes nothing more.
    assert a.post(f"/v1/bookings/{ids[0]}/cancel").json()["status"] == "cancelled"
    assert [e["data"]["action"] for e in call_events(a, "ZD-1")] == ["booked", "cancelled"]
    assert [t for t, _ in outbox(db, tenant_a.id)].count("booking.cancelled") == 1
    assert_problem(a.post("/v1/bookings/call_nope/cancel"), 404)


def test_list_filters_and_pages(a: As, clock: FakeClock) -> None:
    org(a)
    made = []
    for h, t in (("11", "ZD-1"), ("12", "ZD-2"), ("13", "ZD-1")):
        r = book(a, start=f"{DAY}{h}:00:00+01:00", ticket=t, allow_additional=True)
        made.append(r.json()["id"])
        clock.advance(seconds=1)  # ids sort by creation time (to the millisecond)
    a.post(f"/v1/bookings/{made[1]}/cancel")
    r = a.get("/v1/bookings", params={"limit": 2})
    assert r.status_code == 200
    page1 = r.json()
    assert [b["id"] for b in page1["items"]] == made[:2]
    page2 = a.get("/v1/bookings", params={"limit": 2, "cursor": page1["next_cursor"]}).json()
    assert [b["id"] for b in page2["items"]] == made[2:] and page2["next_cursor"] is None
    assert [b["id"] for b in a.get("/v1/bookings?ticket_id=ZD-1").json()["items"]] == [
        made[0],
        made[2],
    ]
    assert [b["id"] for b in a.get("/v1/bookings?status=cancelled").json()["items"]] == [made[1]]
    r = a.get("/v1/bookings", params={"from": f"{DAY}11:30:00Z", "status": "booked"})
    assert [b["id"] for b in r.json()["items"]] == [made[2]]
    assert a.get(f"/v1/bookings/{made[0]}").json()["ticket_id"] == "ZD-1"


def test_a_call_whose_end_has_passed_reads_as_completed_before_any_job_stores_it(
    a: As, tenant_a: TenantCtx, db: Engine, clock: FakeClock, app: FastAPI
) -> None:
    """Completion is stored by the bookings job (bind/rebalance), which may not run for a
    while; reads derive it meanwhile, filters included. No history event or webhook either way
    (the job sends none for completion), so the two views never disagree on what was told."""
    org(a)
    subscribe(db, tenant_a.id)
    early = book(a, ticket="ZD-1").json()["id"]  # 09:00-09:30 UTC
    later = book(a, start=f"{DAY}12:00:00+01:00", ticket="ZD-2").json()["id"]  # 11:00-11:30

    def shown() -> dict[str, str]:
        return {b["id"]: b["status"] for b in a.get("/v1/bookings").json()["items"]}

    def listed(status: str) -> list[str]:
        return [b["id"] for b in a.get("/v1/bookings", params={"status": status}).json()["items"]]

    clock.now = T0 + timedelta(hours=1, minutes=15)  # the first call is under way
    assert shown() == {early: "booked", later: "booked"}
    clock.now = T0 + timedelta(hours=1, minutes=30)  # ... and over, to the minute
    assert shown() == {early: "completed", later: "booked"}
    assert a.get(f"/v1/bookings/{early}").json()["status"] == "completed"
    assert listed("completed") == [early] and listed("booked") == [later]
    with make_session_factory(db)() as session:  # nothing was written by reading
        stored = session.get(Call, (tenant_a.id, early))
        assert stored is not None and stored.status is CallStatus.BOOKED
    assert_problem(a.post(f"/v1/bookings/{early}/cancel"), 409)  # over: as before
    events = [t for t, _ in outbox(db, tenant_a.id)]
    # The job stores it; every read stays the same.
    while app.state.job_worker.run_once() is not None:
        pass
    with make_session_factory(db)() as session:
        stored = session.get(Call, (tenant_a.id, early))
        assert stored is not None and stored.status is CallStatus.COMPLETED
    assert shown() == {early: "completed", later: "booked"}
    assert listed("completed") == [early] and listed("booked") == [later]
    assert [t for t, _ in outbox(db, tenant_a.id)][: len(events)] == events
    assert "booking.completed" not in {t for t, _ in outbox(db, tenant_a.id)}


def test_bad_input_is_422_naming_the_field(a: As) -> None:
    org(a)
    assert_problem(book(a, start=f"{DAY}09:00:00"), 422, "start")  # naive
    assert_problem(book(a, start=f"{DAY}10:10:00+01:00"), 422, "start")  # off the grid
    assert_problem(book(a, start=f"{DAY}10:00:30+01:00"), 422, "start")  # not a whole minute
    assert_problem(book(a, capability_id="nope"), 422, "capability_id")
    assert_problem(book(a, ticket="ZD-404"), 422, "ticket_id")
    assert_problem(book(a, tz="Mars/Olympus"), 422, "tz")
    assert_problem(book(a, agent="ana"), 422, "agent")  # a customer cannot pick a person
    assert_problem(slots(a, tz="Mars/Olympus"), 422, "query.tz")
    assert_problem(slots(a, **{"from": f"{DAY}08:00:00"}), 422, "query.from")
    assert_problem(slots(a, to=f"{DAY}07:00:00Z"), 422, "query.to")
    assert_problem(slots(a, to="2026-05-01T00:00:00Z"), 422, "query.to")  # too wide a window
    assert_problem(a.get("/v1/capabilities/nope/slots"), 404)
    assert_problem(a.post("/v1/bookings/bind", json={"lead_minutes": -1}), 422, "lead_minutes")
    # A start outside the booking window is refused by the engine, with alternatives.
    problem = assert_problem(book(a, start=f"{DAY}09:30:00+01:00"), 409)
    assert problem["reason"]["rule"] == "outside_booking_window"
    assert a.get("/v1/bookings").json()["items"] == []


@pytest.mark.parametrize("status", ["solved", "closed"])
def test_a_call_for_a_finished_ticket_is_refused_and_nothing_is_written(
    a: As, tenant_a: TenantCtx, db: Engine, app: FastAPI, status: str
) -> None:
    org(a)
    subscribe(db, tenant_a.id)
    set_status(a, "ZD-1", status)
    problem = assert_problem(book(a, ticket="ZD-1"), 409, "ticket_id")
    assert status in problem["detail"]
    assert a.get("/v1/bookings").json()["items"] == []
    assert call_events(a, "ZD-1") == []
    assert [t for t, _ in outbox(db, tenant_a.id) if t.startswith("booking.")] == []
    assert app.state.job_worker.run_once() is None  # no bind run was queued either
    # Bad input stays a 422 whatever the ticket's status; pending work may still get a call.
    assert_problem(book(a, ticket="ZD-1", start=f"{DAY}10:10:00+01:00"), 422, "start")
    set_status(a, "ZD-2", "pending")
    assert book(a, ticket="ZD-2").status_code == 201


def test_the_grid_follows_the_customers_zone(a: As) -> None:
    """Starts fall every 30 minutes from *local* midnight: for Kathmandu (UTC+05:45) that is
    :15 and :45 past the hour in UTC, so 10:00 UTC was never offered there."""
    org(a)
    assert_problem(book(a, start=f"{DAY}10:00:00Z", tz="Asia/Kathmandu"), 422, "start")
    r = book(a, start=f"{DAY}16:00:00+05:45", tz="Asia/Kathmandu")
    assert r.status_code == 201, r.text
    assert r.json()["start"] == f"{DAY}10:15:00Z"
    assert r.json()["start_local"] == f"{DAY}16:00:00+05:45"
    kathmandu = slots(a, tz="Asia/Kathmandu").json()["slots"]
    assert kathmandu[0]["start"] == f"{DAY}15:00:00+05:45"  # 09:15 UTC


def test_tenants_are_isolated(a: As, b: As) -> None:
    org(a)
    mine = book(a).json()["id"]
    assert_problem(b.get(f"/v1/bookings/{mine}"), 404)
    assert_problem(b.post(f"/v1/bookings/{mine}/cancel"), 404)
    assert_problem(b.get("/v1/capabilities/net/slots"), 404)
    # Booking against another tenant's capability is exactly like booking an unknown one.
    assert_problem(book(b), 422, "capability_id")
    assert b.get("/v1/bookings").json()["items"] == []
    assert b.post("/v1/bookings/bind").json()["bound"] == []
    assert a.get(f"/v1/bookings/{mine}").json()["status"] == "booked"


def test_idempotency_key_replays_the_same_booking(a: As) -> None:
    org(a)
    headers = {"Idempotency-Key": "book-ZD-1-once"}
    first = book(a, headers=headers)
    again = book(a, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.json()["id"] == first.json()["id"]
    assert again.headers["idempotent-replayed"] == "true"
    assert len(a.get("/v1/bookings").json()["items"]) == 1
    assert_problem(book(a, ticket="ZD-2", headers=headers), 422)  # same key, other request


def test_helpdesk_scope_is_needed_to_book(tenant_a: TenantCtx, a: As) -> None:
    org(a)
    planner = tenant_a.key("planner")
    assert_problem(book(planner), 403)
    assert slots(planner).status_code == 200  # reading is fine with any key
    assert book(tenant_a.key("helpdesk")).status_code == 201


# --------------------------------------------------------------------------- binding


def test_jit_binds_within_the_lead_time_and_the_binding_is_visible(
    a: As, tenant_a: TenantCtx, db: Engine, clock: FakeClock, app: FastAPI
) -> None:
    org(a)
    subscribe(db, tenant_a.id)
    soon = book(a, ticket="ZD-1").json()["id"]  # 09:00 UTC: within 2 h of 08:00
    later = book(a, start=f"{DAY}16:00:00+01:00", ticket="ZD-2").json()["id"]  # 15:00 UTC
    r = a.post("/v1/bookings/bind", json={"lead_minutes": 120})
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["due"] == 1 and out["at_risk"] == []
    assert [b["booking_id"] for b in out["bound"]] == [soon]
    agent = out["bound"][0]["agent"]
    assert agent in ("ana", "ben") and out["bound"][0]["previous_agent"] is None

    shown = a.get(f"/v1/bookings/{soon}").json()
    assert shown["agent"] == agent and shown["bound_at"] == f"{DAY}08:00:00Z"
    assert a.get(f"/v1/bookings/{later}").json()["agent"] is None
    assert [b["id"] for b in a.get(f"/v1/bookings?agent={agent}").json()["items"]] == [soon]
    bound = call_events(a, "ZD-1")[-1]
    assert bound["data"]["action"] == "agent_bound" and bound["to_agent"] == agent
    sent = [d for t, d in outbox(db, tenant_a.id) if t == "booking.agent_bound"]
    assert [(d["booking_id"], d["agent_id"]) for d in sent] == [(soon, agent)]
    # Binding again changes nothing.
    assert a.post("/v1/bookings/bind").json()["bound"] == []

    # The background job: each booking queued one for when its call enters the lead time.
    worker = app.state.job_worker
    assert worker.run_once() is not None  # the first call's job, due now: nothing new to bind
    assert a.get(f"/v1/bookings/{later}").json()["agent"] is None
    clock.advance(hours=5, minutes=1)  # the 15:00 call is within two hours; its run is due
    assert worker.run_once() is not None
    assert a.get(f"/v1/bookings/{later}").json()["agent"] in ("ana", "ben")
    assert a.get(f"/v1/bookings/{soon}").json()["status"] == "completed"


def test_rebalance_rebinds_when_an_agent_drops_out_and_reports_calls_at_risk(
    a: As, tenant_a: TenantCtx, db: Engine
) -> None:
    org(a)
    subscribe(db, tenant_a.id)
    call = book(a, ticket="ZD-1").json()["id"]
    first = a.post("/v1/bookings/bind").json()["bound"][0]["agent"]
    other = "ben" if first == "ana" else "ana"
    # Nothing changed: nothing moves.
    r = a.post("/v1/bookings/rebalance")
    assert r.status_code == 200, r.text
    assert r.json()["rebound"] == [] and r.json()["at_risk"] == [] and r.json()["checked"] == 1

    busy = {"agent": first, "start": f"{DAY}08:30:00Z", "end": f"{DAY}10:00:00Z"}
    assert a.post("/v1/busy", json=busy).status_code == 201
    out = a.post("/v1/bookings/rebalance").json()
    assert [(b["booking_id"], b["agent"], b["previous_agent"]) for b in out["rebound"]] == [
        (call, other, first)
    ]
    assert a.get(f"/v1/bookings/{call}").json()["agent"] == other
    assert call_events(a, "ZD-1")[-1]["data"]["action"] == "agent_rebound"

    assert a.post("/v1/busy", json=busy | {"agent": other}).status_code == 201
    out = a.post("/v1/bookings/rebalance").json()
    assert [r["booking_id"] for r in out["at_risk"]] == [call]
    shown = a.get(f"/v1/bookings/{call}").json()
    assert shown["at_risk"] is True and shown["agent"] is None
    assert a.post("/v1/bookings/rebalance").json()["at_risk"] != []  # still at risk ...
    risks = [d for t, d in outbox(db, tenant_a.id) if t == "booking.at_risk"]
    assert len(risks) == 1 and risks[0]["previous_agent_id"] == other  # ... but said once


def test_unbound_future_calls_that_lose_cover_are_reported(a: As) -> None:
    org(a, agents=("ana",))
    call = book(a, start=f"{DAY}15:00:00+01:00").json()["id"]
    r = a.patch("/v1/agents/ana", json={"status": "offline"})
    assert r.status_code == 200, r.text
    out = a.post("/v1/bookings/rebalance").json()
    assert [x["booking_id"] for x in out["at_risk"]] == [call]
    assert out["at_risk"][0]["reason"]["rule"] == "uncoverable"
    assert a.patch("/v1/agents/ana", json={"status": "available"}).status_code == 200
    assert a.post("/v1/bookings/rebalance").json()["at_risk"] == []
    assert a.get(f"/v1/bookings/{call}").json()["at_risk"] is False


# --------------------------------------------------------------------------- the database


def _call(tenant: str, ident: str, agent: str | None, start: datetime, **kw: Any) -> Call:
    return Call(
        tenant_id=tenant,
        id=ident,
        capability_id="net",
        ticket_id="ZD-1",
        start_at=start,
        end_at=start + timedelta(minutes=30),
        occupied_until=start + timedelta(minutes=40),
        timezone="UTC",
        status=kw.pop("status", CallStatus.BOOKED),
        bound_agent=agent,
        created_at=T0,
        updated_at=T0,
        **kw,
    )


@postgres_only  # the exclusion constraint is PostgreSQL's (SQLite relies on the tenant lock)
def test_postgres_refuses_overlapping_bound_calls_of_one_agent(
    a: As, tenant_a: TenantCtx, db: Engine
) -> None:
    assert db.dialect.name == "postgresql"
    org(a)
    factory = make_session_factory(db)
    nine = T0 + timedelta(hours=1)
    with factory() as s:
        s.add_all(
            [
                _call(tenant_a.id, "c1", "ana", nine),
                _call(tenant_a.id, "c2", "ben", nine),  # another agent: fine
                _call(tenant_a.id, "c3", None, nine),  # unbound: the engine's business
                _call(tenant_a.id, "c4", "ana", nine + timedelta(minutes=40)),  # touches only
                _call(tenant_a.id, "c5", "ana", nine, status=CallStatus.CANCELLED),
            ]
        )
        s.commit()
    with factory() as s:
        # Inside c1's buffer (09:30-09:40): refused, when the deferred constraint is checked.
        s.add(_call(tenant_a.id, "c6", "ana", nine + timedelta(minutes=35)))
        with pytest.raises(IntegrityError, match="ex_calls_agent_no_overlap"):
            s.commit()


def test_a_shorter_buffer_lets_back_to_back_calls_bind_to_one_agent(a: As) -> None:
    """Bound calls keep the agent until end + buffer in the database too (the PostgreSQL
    constraint); when a capability's buffer shrinks, binding uses the new one on both sides."""
    org(a, agents=("ana",))
    assert a.patch("/v1/capabilities/net", json={"buffer_minutes": 10}).status_code == 200
    first = book(a).json()["id"]
    assert a.post("/v1/bookings/bind").json()["bound"][0]["agent"] == "ana"
    assert book(a, start=f"{DAY}10:30:00+01:00", ticket="ZD-2").status_code == 409  # buffer
    assert a.patch("/v1/capabilities/net", json={"buffer_minutes": 0}).status_code == 200
    second = book(a, start=f"{DAY}10:30:00+01:00", ticket="ZD-2")
    assert second.status_code == 201, second.text
    r = a.post("/v1/bookings/bind")
    assert r.status_code == 200, r.text
    assert [b["booking_id"] for b in r.json()["bound"]] == [second.json()["id"]]
    assert {a.get(f"/v1/bookings/{i}").json()["agent"] for i in (first, second.json()["id"])} == {
        "ana"
    }


def test_an_agent_change_queues_a_recheck_that_rebinds(a: As, app: FastAPI) -> None:
    """Whoever changes an agent (here: new calendar busy time through /v1/busy), the same
    commit queues the bookings job, and its run moves the call off the agent who dropped out."""
    org(a)
    call = book(a).json()["id"]
    first = a.post("/v1/bookings/bind").json()["bound"][0]["agent"]
    worker = app.state.job_worker
    while worker.run_once() is not None:  # the job queued by the booking itself
        pass
    busy = {"agent": first, "start": f"{DAY}08:45:00Z", "end": f"{DAY}09:15:00Z"}
    assert a.post("/v1/busy", json=busy).status_code == 201
    run = worker.run_once()
    assert run is not None and run.kind == "bookings.bind"
    shown = a.get(f"/v1/bookings/{call}").json()
    assert shown["agent"] not in (None, first)
    assert worker.run_once() is None  # one change, one run
    assert a.patch("/v1/agents/ana", json={"capacity": 5}).status_code == 200
    assert worker.run_once() is not None  # ana changed and a call is booked: re-checked
    # With no call booked any more, agent changes queue nothing.
    assert a.post(f"/v1/bookings/{call}/cancel").status_code == 200
    assert a.patch("/v1/agents/ana", json={"capacity": 4}).status_code == 200
    assert worker.run_once() is None


def test_a_stream_of_offered_slots_always_books_and_stays_coverable(
    a: As, tenant_a: TenantCtx, db: Engine, clock: FakeClock, app: FastAPI
) -> None:
    """Three capabilities sharing five agents (with a team reserve): every start the slots
    endpoint offers is booked at once (201), cancels free room, and afterwards the stored
    calls are jointly coverable by the engine's independent check, and the slots answered from
    the cached organisation are exactly those of a state built from scratch."""
    org(a, agents=("ana", "ben", "cid", "dan", "eve"), reserve=0.2)
    for skill in ("lang:de", "billing"):
        assert a.post("/v1/skills", json={"id": skill}).status_code == 201
    for agent, extra in (("ana", {"lang:de": 4}), ("cid", {"lang:de": 5}), ("eve", {"billing": 3})):
        r = a.patch(f"/v1/agents/{agent}", json={"skills": {"networking": 3, **extra}})
        assert r.status_code == 200, r.text
    for cap, reqs in (("net-de", {"networking": 2, "lang:de": 4}), ("bill", {"billing": 2})):
        body = {"id": cap, "requirements": reqs, "granularity_minutes": 30, "reserve_share": 0.2}
        assert a.post("/v1/capabilities", json=body | {"min_notice_minutes": 60}).status_code == 201
    # Tickets get several calls, of capabilities that do not cover them: the policies allow it.
    r = a.put("/v1/policies", json={"live_calls_per_ticket": 20, "capability_coverage": "warn"})
    assert r.status_code == 200, r.text
    rng = random.Random(7)
    booked: list[str] = []
    for n in range(30):
        cap = rng.choice(["net", "net-de", "bill"])
        offered = a.get(
            f"/v1/capabilities/{cap}/slots",
            params={"from": f"{DAY}08:00:00Z", "to": f"{DAY}18:00:00Z", "tz": "Europe/Berlin"},
        ).json()["slots"]
        if offered:
            body = {"capability_id": cap, "ticket_id": f"ZD-{n % 4 + 1}", "tz": "Europe/Berlin"}
            r = a.post("/v1/bookings", json=body | {"start": rng.choice(offered)["start"]})
            assert r.status_code == 201, r.text  # offered means bookable
            booked.append(r.json()["id"])
        if booked and rng.random() < 0.2:
            victim = booked.pop(rng.randrange(len(booked)))
            assert a.post(f"/v1/bookings/{victim}/cancel").status_code == 200
        clock.advance(seconds=1)
    assert len(booked) >= 10
    with make_session_factory(db)() as session:
        state, rows = service._load(session, tenant_a.id, clock.now)
    assert set(rows) == set(booked)
    assert validate_calls(state, witness(state)) == []
    assert booking_cache(app).hits > 0
    for cap in ("net", "net-de", "bill"):
        answers = []
        for cache in (booking_cache(app), None):
            with make_session_factory(db)() as session:
                answers.append(
                    service.open_slots(
                        session=session,
                        tenant_id=tenant_a.id,
                        capability_id=cap,
                        now=clock.now,
                        start=None,
                        end=None,
                        tz="Europe/Berlin",
                        cache=cache,
                    )
                )
        assert answers[0] == answers[1], cap


def test_rebalance_rebinds_a_stale_binding_beyond_the_lead_time(a: As) -> None:
    org(a)
    call = book(a, start=f"{DAY}16:00:00+01:00").json()["id"]  # 15:00 UTC
    first = a.post("/v1/bookings/bind", json={"lead_minutes": 8 * 60}).json()["bound"][0]["agent"]
    other = "ben" if first == "ana" else "ana"
    busy = {"agent": first, "start": f"{DAY}14:50:00Z", "end": f"{DAY}15:10:00Z"}
    assert a.post("/v1/busy", json=busy).status_code == 201
    out = a.post("/v1/bookings/rebalance", json={"lead_minutes": 120}).json()
    assert out["bound"] == []  # nothing is due within two hours
    assert [(b["booking_id"], b["agent"], b["previous_agent"]) for b in out["rebound"]] == [
        (call, other, first)
    ]
    assert out["rebound"][0]["reasons"][0]["rule"] == "rebound"
    assert a.get(f"/v1/bookings/{call}").json()["agent"] == other


# ----------------------------------------------------------------- the cached organisation


def test_slots_follow_every_change_of_the_organisation_and_reuse_it_otherwise(
    a: As, app: FastAPI
) -> None:
    """The engine's organisation is cached per tenant (``api.bookings.cache``): a slot
    query or a booking that finds it unchanged reuses it, and the next query after any change to
    a shift, busy time, an agent's skills or status, or a capability shows the change."""
    org(a, agents=("ana",))
    full = starts(a)
    assert len(full) == 16  # 10:00 .. 17:30 Berlin
    cache = booking_cache(app)
    builds, hits = cache.builds, cache.hits
    assert starts(a) == full and starts(a) == full
    assert (cache.builds, cache.hits) == (builds, hits + 2)

    def changed(path: str, method: str, body: dict[str, Any]) -> list[str]:
        r = a.request(method, path, json=body)
        assert r.status_code in (200, 201), r.text
        now = starts(a)
        assert starts(a) == now  # one rebuild per change, then reused
        return now

    shift = a.get("/v1/shifts", params={"agent": "ana"}).json()["items"][0]["id"]
    assert changed(f"/v1/shifts/{shift}", "PATCH", {"end": f"{DAY}12:00:00Z"}) == full[:6]
    busy = {"agent": "ana", "start": f"{DAY}09:00:00Z", "end": f"{DAY}10:00:00Z"}
    assert changed("/v1/busy", "POST", busy) == full[2:6]
    assert changed("/v1/agents/ana", "PATCH", {"skills": {"networking": 1}}) == []
    assert slots(a).json()["reason"]["rule"] == "no_qualified_agents"
    assert changed("/v1/agents/ana", "PATCH", {"skills": {"networking": 2}}) == full[2:6]
    assert changed("/v1/agents/ana", "PATCH", {"status": "offline"}) == []
    assert changed("/v1/agents/ana", "PATCH", {"status": "available"}) == full[2:6]
    # Capabilities are not part of the organisation version: compared on every request.
    assert changed("/v1/capabilities/net", "PATCH", {"call_minutes": 60}) == full[2:5]
    assert cache.builds == builds + 7
    # A booking reuses the organisation too (and booking changes no part of it).
    builds = cache.builds
    assert book(a, start=full[2]).status_code == 201
    assert cache.builds == builds
    assert full[2] not in starts(a) and cache.builds == builds


def test_a_change_made_by_another_process_is_seen_through_the_database(
    a: As, tenant_a: TenantCtx, app: FastAPI, settings: Settings, clock: FakeClock, db: Engine
) -> None:
    """Nothing tells this app's cache about a change made elsewhere: the organisation version
    is read from the database on every request. Writes that bypass the ORM bump no version; the
    wall-time backstop bounds how long they go unseen."""
    org(a, agents=("ana",))
    full = starts(a)
    elsewhere = create_app(settings, clock=clock)  # another replica of the service
    with TestClient(elsewhere) as other:
        busy = {"agent": "ana", "start": f"{DAY}09:00:00Z", "end": f"{DAY}10:00:00Z"}
        assert As(other, tenant_a.admin_key).post("/v1/busy", json=busy).status_code == 201
    assert starts(a) == full[2:]

    with db.begin() as conn:  # behind the ORM's back: no version bump
        conn.execute(
            text("UPDATE shifts SET end_at = :end WHERE tenant_id = :t"),
            {"end": T0 + timedelta(hours=4), "t": tenant_a.id},
        )
    assert starts(a) == full[2:]  # still the cached organisation ...
    booking_cache(app).max_wall_seconds = 0.0
    assert starts(a) == full[2:6]  # ... until the backstop expires it


def test_a_booking_reads_the_organisation_version_inside_the_tenant_lock(
    a: As, tenant_a: TenantCtx, app: FastAPI, db: Engine
) -> None:
    """The slot was offered from the cache; before the booking gets the tenant lock, the only
    agent becomes busy (committed by a transaction holding the lock). The booking must decide on
    the organisation as it is once it holds the lock: refused, nothing written."""
    org(a, agents=("ana",))
    assert BERLIN_10 in starts(a)  # the organisation is cached now
    answers: list[Any] = []
    with make_session_factory(db)() as session:
        lock_tenant(session, tenant_a.id)
        busy_service.create(
            session=session,
            tenant_id=tenant_a.id,
            data=BusyCreate(
                agent="ana", start=T0 + timedelta(minutes=30), end=T0 + timedelta(hours=2)
            ),
            now=T0,
        )
        session.flush()
        customer = threading.Thread(target=lambda: answers.append(book(a)))
        customer.start()
        customer.join(0.5)
        assert answers == []  # waiting for the lock
        session.commit()
    customer.join(30)
    assert_problem(answers[0], 409)
    assert a.get("/v1/bookings").json()["items"] == []
    assert BERLIN_10 not in starts(a)
