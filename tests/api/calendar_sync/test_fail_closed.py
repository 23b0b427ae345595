"""Fail closed: an agent whose calendar connection is broken (a dead credential) or stale (no
good sync for longer than ``calendar_max_staleness_seconds``) is never counted on for a new
call -- no offered slot, booking, tentative cover or just-in-time binding uses them -- while the
calls already bound to them stay bound; the helpdesk is told who was left out and why, the
customer is not; and the agent is offered again on the first request after a good sync.

Connection rows are written directly here (the sync job that maintains them is tested on its
own): a failed connection as the sync leaves it after ``invalid_grant``, a stale one as a
mirror nobody refreshed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import Engine, select

from api import calendar_trust
from api.bookings import service
from api.calendar_sync.writeback import WRITEBACK_JOB
from api.db.engine import make_session_factory
from api.db.jobs import Job, JobStatus
from api.db.models import CalendarConnection
from api.db.models import Call as CallRow
from solver.capability import BookingState, exclusions
from solver.jit import assign_due
from solver.slots import at_risk, find_slots, validate_calls, witness
from solver.slots import book as engine_book
from tests.api.bookings.test_bookings import (
    BERLIN_10,
    DAY,
    TICKET,
    book,
    org,
    outbox,
    slots,
    starts,
    subscribe,
)
from tests.api.conftest import T0, As, FakeClock, TenantCtx, assert_problem, ticket_body
from tests.api.customer.conftest import form_token, issue, post_form
from tests.api.customer.conftest import starts as page_starts
from tests.solver.test_booking_factories import at, brute_force_cover
from tests.solver.test_booking_props import organisations, requests, run_stream

STALENESS = timedelta(seconds=1800)  # the setting's default, which the test app runs with

# How a connection can leave its agent untrusted, as the sync job leaves the row, and what the
# helpdesk is then told.
BROKEN: dict[str, dict[str, Any]] = {
    "failed": {"status": "failed", "failure": "invalid_grant", "last_success_at": T0},
    "stale": {"status": "active", "last_success_at": T0 - timedelta(hours=2)},
    "never_synced": {"status": "active", "last_success_at": None},
}
SAID = {
    "failed": "agent ana excluded: calendar connection cal_ana failed: invalid_grant",
    "stale": "agent ana excluded: calendar connection cal_ana is stale: last good sync 120 min ago",
    "never_synced": "agent ana excluded: calendar connection cal_ana has not completed a sync yet",
}
# Nothing of this may reach a customer.
PRIVATE = ("cal_ana", "agent ana", "excluded", "invalid_grant", "stale", "calendar connection")


def connect(db: Engine, tenant_id: str, agent: str, now: datetime, **row: Any) -> str:
    """A calendar connection of ``agent`` (healthy: synced at ``now``, unless ``row`` says)."""
    fields: dict[str, Any] = {"status": "active", "failure": None, "last_success_at": now}
    fields |= row
    with make_session_factory(db)() as session:
        session.add(
            CalendarConnection(
                tenant_id=tenant_id,
                id=f"cal_{agent}",
                agent_id=agent,
                provider="google",
                calendars=["primary"],
                settings={},
                credentials="not-a-secret",
                cursors={},
                channels={},
                created_at=now,
                updated_at=now,
                **fields,
            )
        )
        session.commit()
    return f"cal_{agent}"


def update(db: Engine, tenant_id: str, ident: str, now: datetime, **changes: Any) -> None:
    """What the sync job does to a connection: an ORM write, committed."""
    with make_session_factory(db)() as session:
        row = session.get(CalendarConnection, (tenant_id, ident))
        assert row is not None
        for name, value in changes.items():
            setattr(row, name, value)
        row.updated_at = now
        session.commit()


def own(c: As, ticket: str, agent: str) -> None:
    """Make ``agent`` the ticket's owner: just-in-time binding prefers them when they can."""
    r = c.put(f"/v1/tickets/{ticket}", json=ticket_body(TICKET | {"owner_agent": agent}))
    assert r.status_code == 200, r.text


def excluded(body: dict[str, Any]) -> list[str]:
    return [e["detail"] for e in body["excluded"] if e["rule"] == "agent_excluded"]


def bind_jobs(db: Engine, tenant_id: str) -> list[datetime]:
    with make_session_factory(db)() as session:
        return list(
            session.scalars(
                select(Job.run_after)
                .where(
                    Job.tenant_id == tenant_id,
                    Job.kind == service.BIND_JOB,
                    Job.status == JobStatus.QUEUED,
                )
                .order_by(Job.run_after)
            )
        )


def cover_of(db: Engine, tenant_id: str, call_id: str) -> str | None:
    with make_session_factory(db)() as session:
        row = session.get(CallRow, (tenant_id, call_id))
        assert row is not None
        return row.cover_agent


def customer_page(client: TestClient, path: str) -> str:
    r = client.get(path)
    assert r.status_code == 200, r.text
    return r.text


# --------------------------------------------------------------------------- offering


@pytest.mark.parametrize("kind", sorted(BROKEN))
def test_an_untrusted_agent_yields_no_slot_named_for_the_helpdesk_and_not_the_customer(
    a: As, tenant_a: TenantCtx, db: Engine, client: TestClient, app: FastAPI, kind: str
) -> None:
    org(a, agents=("ana",))
    link = issue(a, "ZD-2")
    # Before: ana's slots are offered on both sides (and the answers are in the caches).
    assert BERLIN_10 in starts(a) and slots(a).json()["excluded"] == []
    before = customer_page(client, link.path)
    assert page_starts(before)
    builds = app.state.booking_cache.builds

    connect(db, tenant_a.id, "ana", T0, **BROKEN[kind])

    # The helpdesk: no slot, and who was left out and why.
    body = slots(a).json()
    assert body["slots"] == []
    assert excluded(body) == [SAID[kind]]
    assert "ana" not in body["reason"]["detail"]  # the reason itself names nobody
    # The customer: just no times, nothing about anybody's calendar.
    page = customer_page(client, link.path)
    assert page_starts(page) == [] and 'id="nothing-open"' in page
    assert not [word for word in PRIVATE if word in page]
    # The cached organisation was not rebuilt (a connection is not the organisation) and
    # still no answer computed before the change was served.
    assert app.state.booking_cache.builds == builds

    # Booking the start the helpdesk saw a moment ago is refused, naming the exclusion ...
    refused = book(a)
    problem = assert_problem(refused, 409)
    assert problem["excluded"] == [{"rule": "agent_excluded", "detail": SAID[kind]}]
    assert SAID[kind] in problem["detail"]
    # ... and the customer picking it from the page they loaded before is told only that it
    # was taken.
    r = post_form(
        client,
        f"{link.path}/book",
        {"start": f"{DAY}09:00:00Z", "tz": "Europe/Berlin", "form_token": form_token(before)},
    )
    assert r.status_code == 409
    assert not [word for word in PRIVATE if word in r.text]
    with make_session_factory(db)() as session:
        assert session.scalars(select(CallRow)).all() == []  # nothing was written


def test_a_start_only_the_untrusted_agent_could_cover_is_neither_offered_nor_booked(
    a: As, tenant_a: TenantCtx, db: Engine
) -> None:
    org(a)  # ana and ben
    connect(db, tenant_a.id, "ben", T0)  # ben's calendar is fine
    connect(db, tenant_a.id, "ana", T0, **BROKEN["failed"])
    assert book(a, ticket="ZD-1").status_code == 201  # ben can take 09:00 ...
    assert BERLIN_10 not in starts(a)  # ... and nobody else is counted on for it
    problem = assert_problem(book(a, ticket="ZD-2"), 409)
    assert problem["reason"]["rule"] == "fully_booked"
    assert excluded(problem) == [SAID["failed"]]
    # Starts ben is free for are still offered, with ana named as left out.
    body = slots(a).json()
    assert f"{DAY}10:30:00+01:00" in [s["start"] for s in body["slots"]]
    assert excluded(body) == [SAID["failed"]]


# --------------------------------------------------------------------------- binding


@pytest.mark.parametrize("kind", [None, *sorted(BROKEN)])
def test_jit_binding_never_chooses_an_untrusted_agent_and_says_why(
    a: As, tenant_a: TenantCtx, db: Engine, kind: str | None
) -> None:
    org(a)
    own(a, "ZD-1", "ana")  # binding prefers the ticket's owner ...
    connect(db, tenant_a.id, "ben", T0)
    call = book(a, ticket="ZD-1").json()["id"]  # 09:00 UTC
    if kind is not None:
        update(db, tenant_a.id, connect(db, tenant_a.id, "ana", T0), T0, **BROKEN[kind])
    r = a.post("/v1/bookings/bind", json={"lead_minutes": 120})
    assert r.status_code == 200, r.text
    [bound] = r.json()["bound"]
    assert bound["booking_id"] == call
    reasons = [x["detail"] for x in bound["reasons"] if x["rule"] == "agent_excluded"]
    if kind is None:
        assert bound["agent"] == "ana" and reasons == []  # ... when she can be trusted
    else:
        assert bound["agent"] == "ben" and reasons == [SAID[kind]]
    assert a.get(f"/v1/bookings/{call}").json()["agent"] == bound["agent"]


def test_calls_bound_to_the_agent_keep_their_binding(
    a: As, tenant_a: TenantCtx, db: Engine, app: FastAPI, clock: FakeClock
) -> None:
    org(a)
    own(a, "ZD-1", "ana")
    subscribe(db, tenant_a.id)
    ident = connect(db, tenant_a.id, "ana", T0)
    connect(db, tenant_a.id, "ben", T0)
    call = book(a, ticket="ZD-1").json()["id"]
    assert a.post("/v1/bookings/bind").json()["bound"][0]["agent"] == "ana"
    clock.advance(minutes=5)
    update(db, tenant_a.id, ident, clock.now, status="failed", failure="invalid_grant")
    # The failure queued a re-check at once; it moves nobody.
    assert bind_jobs(db, tenant_a.id)[0] <= clock.now
    while (run := app.state.job_worker.run_once()) is not None:
        assert run.kind in (service.BIND_JOB, WRITEBACK_JOB)
        assert run.status is JobStatus.SUCCEEDED
    out = a.post("/v1/bookings/rebalance").json()
    assert out["rebound"] == [] and out["at_risk"] == []
    assert a.post("/v1/bookings/bind").json()["bound"] == []
    assert a.get(f"/v1/bookings/{call}").json()["agent"] == "ana"
    sent = [t for t, _d in outbox(db, tenant_a.id)]
    assert sent.count("booking.agent_bound") == 1 and "booking.at_risk" not in sent
    # Ana keeps the call, and gets nothing new: at 10:30, when both are free, only ben is
    # counted on.
    later = f"{DAY}11:30:00+01:00"
    assert book(a, start=later, ticket="ZD-2").status_code == 201
    assert excluded(assert_problem(book(a, start=later, ticket="ZD-3"), 409)) == [SAID["failed"]]


# --------------------------------------------------------------------------- re-checking


def test_a_failure_rechecks_unbound_calls_it_covered_like_a_shift_change(
    a: As, tenant_a: TenantCtx, db: Engine, app: FastAPI, clock: FakeClock
) -> None:
    org(a)
    subscribe(db, tenant_a.id)
    for agent in ("ana", "ben"):
        connect(db, tenant_a.id, agent, T0)
    first = book(a, start=f"{DAY}15:00:00+01:00", ticket="ZD-1").json()["id"]  # 14:00 UTC
    second = book(a, start=f"{DAY}15:00:00+01:00", ticket="ZD-2").json()["id"]
    covers = {cover_of(db, tenant_a.id, c) for c in (first, second)}
    assert covers == {"ana", "ben"}
    worker = app.state.job_worker
    while worker.run_once() is not None:  # whatever is due now
        pass
    clock.advance(minutes=5)
    update(db, tenant_a.id, "cal_ana", clock.now, status="failed", failure="invalid_grant")
    run = worker.run_once()  # the failure's re-check, due at once
    assert run is not None and run.kind == service.BIND_JOB
    # Ben can cover one of the two calls, nobody the other: it is at risk, said once, with
    # the exclusion named to the helpdesk.
    shown = {c: a.get(f"/v1/bookings/{c}").json() for c in (first, second)}
    assert sorted(s["at_risk"] for s in shown.values()) == [False, True]
    kept = next(c for c, s in shown.items() if not s["at_risk"])
    assert cover_of(db, tenant_a.id, kept) == "ben"
    risks = [d for t, d in outbox(db, tenant_a.id) if t == "booking.at_risk"]
    assert len(risks) == 1 and risks[0]["booking_id"] != kept
    assert risks[0]["reason"]["rule"] == "uncoverable"
    assert [e["detail"] for e in risks[0]["excluded"]] == [SAID["failed"]]
    assert shown[kept]["agent"] is None  # nobody is named before binding

    # Recovery: a good sync (status back to active) re-checks again and clears the risk.
    clock.advance(minutes=5)
    update(db, tenant_a.id, "cal_ana", clock.now, status="active", failure=None)
    update(db, tenant_a.id, "cal_ana", clock.now, last_success_at=clock.now)
    assert worker.run_once() is not None
    assert [a.get(f"/v1/bookings/{c}").json()["at_risk"] for c in (first, second)] == [
        False,
        False,
    ]


def test_going_stale_rechecks_by_the_clock_and_a_good_sync_offers_the_agent_again(
    a: As, tenant_a: TenantCtx, db: Engine, app: FastAPI, clock: FakeClock
) -> None:
    org(a, agents=("ana",))
    subscribe(db, tenant_a.id)
    connect(db, tenant_a.id, "ana", T0)  # synced at 08:00: stale after 08:30
    call = book(a, start=f"{DAY}15:00:00+01:00").json()["id"]
    stale_at = T0 + STALENESS + timedelta(seconds=1)
    # Nothing is written when a mirror goes stale: the booking queued a re-check for then.
    assert stale_at in bind_jobs(db, tenant_a.id)
    worker = app.state.job_worker
    while worker.run_once() is not None:
        pass
    assert a.get(f"/v1/bookings/{call}").json()["at_risk"] is False
    assert slots(a).json()["slots"] != []

    clock.now = stale_at
    assert slots(a).json()["slots"] == []  # the very next request fails closed
    run = worker.run_once()
    assert run is not None and run.kind == service.BIND_JOB
    assert a.get(f"/v1/bookings/{call}").json()["at_risk"] is True
    [risk] = [d for t, d in outbox(db, tenant_a.id) if t == "booking.at_risk"]
    assert [e["detail"] for e in risk["excluded"]] == [
        "agent ana excluded: calendar connection cal_ana is stale: last good sync 30 min ago"
    ]

    # A good sync: the next request offers ana again (no job needed for that) ...
    clock.advance(minutes=2)
    update(db, tenant_a.id, "cal_ana", clock.now, last_success_at=clock.now)
    body = slots(a).json()
    assert body["slots"] != [] and body["excluded"] == []
    # ... and a re-check finds the call covered again.
    assert a.post("/v1/bookings/rebalance").json()["at_risk"] == []
    assert a.get(f"/v1/bookings/{call}").json()["at_risk"] is False


def test_the_staleness_edge_and_the_next_change_are_exact(
    a: As, tenant_a: TenantCtx, db: Engine
) -> None:
    """A mirror exactly ``max_staleness`` old is still trusted, a second older is not; the
    next change is when the oldest trusted mirror crosses the edge; paused connections and
    other tenants' count for nothing."""
    org(a, agents=("ana", "ben"))
    with make_session_factory(db)() as session:
        assert calendar_trust.trust(session, tenant_a.id, T0, STALENESS) == (
            calendar_trust.Trust({}, None)
        )
    connect(db, tenant_a.id, "ana", T0)
    connect(db, tenant_a.id, "ben", T0 + timedelta(minutes=10))
    with make_session_factory(db)() as session:
        edge = calendar_trust.trust(session, tenant_a.id, T0 + STALENESS, STALENESS)
        assert edge == calendar_trust.Trust({}, T0 + STALENESS)
        later = T0 + STALENESS + timedelta(seconds=1)
        past = calendar_trust.trust(session, tenant_a.id, later, STALENESS)
        assert dict(past.blocked) == {
            "ana": "calendar connection cal_ana is stale: last good sync 30 min ago"
        }
        assert past.next_stale == T0 + timedelta(minutes=10) + STALENESS
        assert calendar_trust.blocked_agents(session, "another-tenant", later, STALENESS) == {}
    update(db, tenant_a.id, "cal_ana", T0, status="paused")
    with make_session_factory(db)() as session:
        assert calendar_trust.trust(session, tenant_a.id, later, STALENESS).blocked == {}


def test_a_paused_connection_blocks_nobody(a: As, tenant_a: TenantCtx, db: Engine) -> None:
    org(a, agents=("ana",))
    connect(db, tenant_a.id, "ana", T0, status="paused", last_success_at=None)
    body = slots(a).json()
    assert BERLIN_10 in [s["start"] for s in body["slots"]] and body["excluded"] == []


# --------------------------------------------------------------------------- the property


@given(
    organisations(),
    requests,
    st.integers(1, 30),
    st.sets(st.integers(0, 4), max_size=3),
    st.integers(0, 4),
)
def test_property_no_offered_slot_needs_a_blocked_agent_and_every_one_can_be_booked(
    state: BookingState,
    stream: list[tuple[int, int, int]],
    lead_hours: int,
    picks: set[int],
    which: int,
) -> None:
    """Over generated organisations with calls booked and some bound, block a random set of
    agents (as the service does when their connections fail or go stale): bound calls keep
    their agents; no unbound call, offered slot or booking leans on a blocked agent -- checked
    by ``validate_calls`` and an exhaustive search that never lets a blocked agent cover an
    unbound call, neither sharing the engine's index --; every offered slot books; and
    just-in-time binding never chooses a blocked agent."""
    state = assign_due(run_stream(state, stream), lead=timedelta(hours=lead_hours)).state
    ids = [a.id for a in state.agents]
    blocked = {
        ids[i % len(ids)]: f"calendar connection cal_{i} failed: invalid_grant" for i in picks
    }
    kept = witness(state)
    cover = {c.id: kept[c.id] for c in state.calls if c.bound_agent is None and kept.get(c.id)}
    state = BookingState(
        state.now, state.agents, state.capabilities, state.calls, cover=cover, blocked=blocked
    )
    live = [c for c in state.calls if c.end > state.now]
    held = witness(state)
    for c in live:
        if c.bound_agent is not None:
            assert held[c.id] == c.bound_agent  # no churn: bound calls keep their agent
        else:
            assert held.get(c.id) not in blocked
    # Unbound calls only a blocked agent covered are at risk (their customers get new times).
    state = state.without_calls(at_risk(state))
    assert validate_calls(state, witness(state)) == []
    for cap in state.capabilities:
        answer = find_slots(state, cap.id, at(0, 0), at(2, 0))
        named = {r.detail.split()[1] for r in answer.excluded}
        assert named == {
            a for a in blocked if state.agent(a).qualifies(cap.requirements)
        } and answer.excluded == exclusions(state, cap.id)
        for slot in answer.slots[which::5][:3]:
            result = engine_book(state, cap.id, slot.start.astimezone(UTC), alternatives=0)
            assert result.booked and result.state is not None and result.call is not None
            state = result.state
            cover = witness(state)
            assert cover[result.call.id] not in blocked
            assert validate_calls(state, cover) == []
            assert brute_force_cover(state) is not None
    bound = assign_due(state, lead=timedelta(hours=lead_hours))
    assert not [b for b in bound.bindings if b.agent_id in blocked]
    assert validate_calls(bound.state, witness(bound.state)) == []
