"""The ticket stays the truth, through HTTP on SQLite and PostgreSQL: solving or closing a
ticket cancels its open calls (or keeps and flags them) by the tenant's policy, with the
customer-visible reason, history and webhooks; one live call per ticket unless the helpdesk asks
for more; a capability that does not cover the ticket's required skills is refused (or booked
with a warning)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi import FastAPI
from sqlalchemy import Engine

from tests.api.assignment.test_assign import subscribe
from tests.api.bookings.test_bookings import (
    BERLIN_10,
    DAY,
    TICKET,
    book,
    org,
    outbox,
    starts,
)
from tests.api.conftest import T0, As, FakeClock, TenantCtx, assert_problem, ticket_body

NOON = f"{DAY}13:00:00+01:00"  # 12:00 UTC


def put(c: As, ticket: str, **extra: Any) -> Any:
    return c.put(f"/v1/tickets/{ticket}", json=ticket_body(TICKET | extra))


def booking(c: As, call_id: str) -> dict[str, Any]:
    r = c.get(f"/v1/bookings/{call_id}")
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def kinds(c: As, ticket: str) -> list[str]:
    return [e["kind"] for e in c.get(f"/v1/tickets/{ticket}/history").json()["items"]]


BOOKING_EVENTS = ("booking.created", "booking.cancelled", "booking.flagged")


def test_solving_a_ticket_cancels_its_open_calls_and_tells_everyone(
    a: As, tenant_a: TenantCtx, db: Engine, clock: FakeClock
) -> None:
    org(a)
    subscribe(db, tenant_a.id, *BOOKING_EVENTS)
    past = book(a, ticket="ZD-1").json()["id"]  # 09:00-09:30 UTC
    clock.now = T0 + timedelta(hours=1, minutes=45)  # 09:45: the first call is over
    soon = book(a, start=NOON, ticket="ZD-1").json()["id"]
    other = book(a, start=NOON, ticket="ZD-2").json()["id"]
    r = put(a, "ZD-1", status="solved", reason="fixed on the phone")
    assert r.status_code == 200, r.text

    cancelled = booking(a, soon)
    assert cancelled["status"] == "cancelled" and cancelled["cancel_reason"] == "ticket_solved"
    assert cancelled["cancelled_at"] is not None and cancelled["flagged"] is False
    assert booking(a, past)["status"] == "completed"  # over: untouched
    assert booking(a, past)["cancel_reason"] is None
    assert booking(a, other)["status"] == "booked"  # another ticket's call
    assert kinds(a, "ZD-1")[-2:] == ["status_changed", "call_cancelled"]
    last = a.get("/v1/tickets/ZD-1/history").json()["items"][-1]
    assert last["data"]["booking_id"] == soon and last["data"]["reason"] == "ticket_solved"
    assert last["reason"] == f"call {soon} cancelled: the ticket is solved"
    sent = [d for t, d in outbox(db, tenant_a.id) if t == "booking.cancelled"]
    assert [(d["booking_id"], d["reason"]) for d in sent] == [(soon, "ticket_solved")]

    # Reopening does not un-cancel; the freed capacity is bookable again.
    assert put(a, "ZD-1", status="open").status_code == 200
    assert booking(a, soon)["status"] == "cancelled"
    again = book(a, start=NOON, ticket="ZD-1")
    assert again.status_code == 201, again.text


def test_closing_says_closed_and_a_cancelled_call_through_the_api_says_requested(
    a: As, tenant_a: TenantCtx, db: Engine
) -> None:
    org(a)
    subscribe(db, tenant_a.id, *BOOKING_EVENTS)
    mine = book(a, ticket="ZD-1").json()["id"]
    other = book(a, ticket="ZD-2").json()["id"]
    assert a.post(f"/v1/bookings/{other}/cancel").json()["cancel_reason"] == "requested"
    assert put(a, "ZD-1", status="closed").status_code == 200
    assert booking(a, mine)["cancel_reason"] == "ticket_closed"
    reasons = [d["reason"] for t, d in outbox(db, tenant_a.id) if t == "booking.cancelled"]
    assert sorted(reasons) == ["requested", "ticket_closed"]  # same clock: ids tie


def test_keep_policy_keeps_and_flags_the_calls_once(a: As, tenant_a: TenantCtx, db: Engine) -> None:
    org(a)
    subscribe(db, tenant_a.id, *BOOKING_EVENTS)
    assert a.patch("/v1/policies", json={"calls_on_done": "keep"}).status_code == 200
    call = book(a, ticket="ZD-1").json()["id"]
    assert put(a, "ZD-1", status="solved").status_code == 200
    kept = booking(a, call)
    assert kept["status"] == "booked" and kept["cancel_reason"] is None
    assert kept["flagged"] is True and kept["flag_reason"] == "ticket_solved"
    assert kept["flagged_at"] is not None
    assert kinds(a, "ZD-1")[-2:] == ["status_changed", "call_flagged"]
    # Closed after solved: still one flag, one event.
    assert put(a, "ZD-1", status="closed").status_code == 200
    assert booking(a, call)["flag_reason"] == "ticket_solved"
    assert kinds(a, "ZD-1").count("call_flagged") == 1
    flagged = [d for t, d in outbox(db, tenant_a.id) if t == "booking.flagged"]
    assert [(d["booking_id"], d["reason"]) for d in flagged] == [(call, "ticket_solved")]
    assert not [t for t, _ in outbox(db, tenant_a.id) if t == "booking.cancelled"]
    # The flag is visible in the list too.
    listed = a.get("/v1/bookings", params={"ticket_id": "ZD-1"}).json()["items"]
    assert [b["flagged"] for b in listed] == [True]


def test_a_refused_status_change_touches_no_call(a: As) -> None:
    org(a)
    call = book(a, ticket="ZD-1").json()["id"]
    r = put(a, "ZD-1", status="solved", team="nope")
    assert_problem(r, 422, "team")
    assert booking(a, call)["status"] == "booked"
    assert a.get("/v1/tickets/ZD-1").json()["status"] == "new"


def test_one_live_call_per_ticket_unless_asked_or_allowed(a: As, clock: FakeClock) -> None:
    org(a)
    first = book(a, ticket="ZD-1").json()["id"]
    second = book(a, start=NOON, ticket="ZD-1")
    problem = assert_problem(second, 409, "ticket_id")
    assert first in problem["detail"] and first in problem["errors"][0]["reason"]
    assert "allow_additional" in problem["errors"][0]["reason"]
    extra = book(a, start=NOON, ticket="ZD-1", allow_additional=True)
    assert extra.status_code == 201, extra.text
    # Two live now; the policy allows two: a third still needs asking.
    assert a.patch("/v1/policies", json={"live_calls_per_ticket": 2}).status_code == 200
    third = book(a, start=f"{DAY}15:00:00+01:00", ticket="ZD-1")
    assert_problem(third, 409, "ticket_id")
    # Cancelled or over calls are not live.
    assert a.post(f"/v1/bookings/{extra.json()['id']}/cancel").status_code == 200
    assert book(a, start=f"{DAY}15:00:00+01:00", ticket="ZD-1").status_code == 201
    clock.now = T0 + timedelta(hours=1, minutes=45)  # the 09:00 call is over
    assert book(a, start=f"{DAY}16:00:00+01:00", ticket="ZD-1").status_code == 201
    assert book(a, start=f"{DAY}17:00:00+01:00", ticket="ZD-1").status_code == 409


def test_a_capability_must_cover_the_tickets_skills(a: As) -> None:
    org(a)
    assert a.post("/v1/skills", json={"id": "billing"}).status_code == 201
    # Missing skill, and a level above the capability's.
    assert put(a, "ZD-1", required_skills={"networking": 3, "billing": 1}).status_code == 200
    problem = assert_problem(book(a, ticket="ZD-1"), 422, "capability_id")
    said = " | ".join(e["reason"] for e in problem["errors"])
    assert "billing at level 1 (the capability requires none)" in said
    assert "networking at level 3 (the capability requires level 2)" in said
    assert len(problem["errors"]) == 2
    assert a.get("/v1/bookings").json()["items"] == []
    # Equal levels cover.
    assert put(a, "ZD-2", required_skills={"networking": 2}).status_code == 200
    r = book(a, ticket="ZD-2")
    assert r.status_code == 201 and r.json()["warnings"] == []
    # warn: booked, with the missing skills named.
    assert a.patch("/v1/policies", json={"capability_coverage": "warn"}).status_code == 200
    r = book(a, ticket="ZD-1")
    assert r.status_code == 201, r.text
    [warning] = r.json()["warnings"]
    assert "billing at level 1" in warning and "networking at level 3" in warning
    history = a.get("/v1/tickets/ZD-1/history").json()["items"]
    assert history[-1]["data"]["warnings"] == [warning]


def test_slot_freed_by_solving_is_offered_again(a: As, app: FastAPI) -> None:
    org(a, agents=("ana",))
    assert book(a, ticket="ZD-1").status_code == 201
    assert BERLIN_10 not in starts(a)
    assert put(a, "ZD-1", status="solved").status_code == 200
    assert BERLIN_10 in starts(a)
