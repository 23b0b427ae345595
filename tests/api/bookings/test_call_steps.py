"""The ticket stays the truth, on SQLite and PostgreSQL: every step of a call's life — link
created, booked, rescheduled, cancelled, bound, rebound, at risk, admitted, no-show, completed —
driven through the API, the customer's link service and the bookings job (never by calling the
step's writer), lands on the ticket's history and in the webhook outbox, each ``booking.*``
event with the ticket's context as it stood then. (Signing and delivering outbox rows is tested
in tests/api/webhooks.)"""

from __future__ import annotations

from datetime import datetime, timedelta

from fastapi import FastAPI
from sqlalchemy import Engine

from api.bookings.cache import BookingCache
from api.db.engine import make_session_factory
from api.db.models import TicketEvent
from api.enums import TicketEventKind
from api.events import EventType
from api.links import service as links
from api.links import tokens
from tests.api.assignment.test_assign import subscribe
from tests.api.bookings.test_bookings import DAY, TICKET, book, org, outbox
from tests.api.conftest import T0, As, FakeClock, TenantCtx, ticket_body

M = timedelta(minutes=1)


def issue_link(c: As, ticket: str = "ZD-1") -> str:
    """A call link for ``ticket`` (capability ``net``); answers its token."""
    r = c.post(
        f"/v1/tickets/{ticket}/call-links",
        json={"capability_id": "net", "timezone": "Europe/Berlin", "reschedules_allowed": 2},
    )
    assert r.status_code == 201, r.text
    url: str = r.json()["url"]
    return url.rsplit("/", 1)[1]


def through_link(
    db: Engine,
    token: str,
    start: datetime,
    now: datetime,
    *,
    move: bool,
    cache: BookingCache | None = None,
) -> str:
    """What the customer's pages do: book (or reschedule) through the link, with its form
    token (and the app's booking ``cache``, which carries its settings, if given); answers the
    call's id."""
    with make_session_factory(db)() as session:
        found = links.resolve(session, token, now)
        form = tokens.form_token(found.link.form_key, found.link.id)
        session.rollback()
        step = links.reschedule if move else links.book
        done = step(
            session=session,
            token=token,
            start=start,
            tz="Europe/Berlin",
            form_token=form,
            now=now,
            cache=cache,
        )
        session.commit()
        return done.row.id


def run_jobs(app: FastAPI) -> int:
    ran = 0
    while app.state.job_worker.run_once() is not None:
        ran += 1
    return ran


def history(c: As, ticket: str) -> list[tuple[str, str | None]]:
    r = c.get(f"/v1/tickets/{ticket}/history")
    assert r.status_code == 200, r.text
    return [(e["kind"], (e["data"] or {}).get("action")) for e in r.json()["items"]]


def test_every_step_of_a_call_is_on_the_ticket_and_goes_out_with_the_tickets_context(
    a: As, tenant_a: TenantCtx, db: Engine, clock: FakeClock, app: FastAPI
) -> None:
    org(a)
    subscribe(db, tenant_a.id, *(t.value for t in EventType))
    run_jobs(app)

    def tick() -> None:  # one step per moment: the outbox's order is the steps' order
        clock.advance(seconds=1)

    # 1. link created
    token = issue_link(a)
    tick()
    # 2. booked by the customer through it (09:30 UTC), 3. moved to 10:30 UTC
    first = through_link(db, token, T0 + 90 * M, clock.now, move=False)
    tick()
    call = through_link(db, token, T0 + 150 * M, clock.now, move=True)
    assert a.get(f"/v1/bookings/{first}").json()["cancel_reason"] == "rescheduled"
    tick()
    # The helpdesk changes the ticket: later events tell its context as it is then.
    r = a.put("/v1/tickets/ZD-1", json=ticket_body(TICKET | {"priority": "high"}))
    assert r.status_code == 200, r.text
    tick()
    # 4. bound by the job queued for the lead time (10:30 - 2 h + 1 min), nobody calling it
    assert run_jobs(app) == 1  # due now: the call is not within the lead time yet
    assert a.get(f"/v1/bookings/{call}").json()["agent"] is None
    clock.now = T0 + 30 * M
    assert run_jobs(app) == 0  # not yet
    clock.now = T0 + 31 * M
    assert run_jobs(app) == 1
    agent = a.get(f"/v1/bookings/{call}").json()["agent"]
    other = "ben" if agent == "ana" else "ana"
    tick()
    # 5. rebound: the agent's calendar fills (the commit queues a recheck)
    busy = {"agent": agent, "start": f"{DAY}10:15:00Z", "end": f"{DAY}11:15:00Z"}
    r = a.post("/v1/busy", json=busy)
    assert r.status_code == 201, r.text
    gone = r.json()["id"]
    assert run_jobs(app) == 1
    assert a.get(f"/v1/bookings/{call}").json()["agent"] == other
    tick()
    # 6. at risk: the other one's too
    assert a.post("/v1/busy", json=busy | {"agent": other}).status_code == 201
    assert run_jobs(app) == 1
    assert a.get(f"/v1/bookings/{call}").json()["at_risk"] is True
    tick()
    # ... and bound again when the first agent is free after all
    assert a.delete(f"/v1/busy/{gone}").status_code == 204
    assert run_jobs(app) == 1
    assert a.get(f"/v1/bookings/{call}").json()["agent"] == agent
    # 7. admitted by the bound agent in the waiting room's time, 8. completed
    clock.now = T0 + 145 * M
    r = a.post(f"/v1/bookings/{call}/admit", json={"agent_id": agent})
    assert r.status_code == 200, r.text
    clock.now = T0 + 170 * M
    r = a.post(f"/v1/bookings/{call}/complete", json={"agent_id": agent})
    assert r.status_code == 200, r.text
    tick()
    # 9. a no-show of another call of the ticket, booked by the helpdesk (12:00 UTC)
    absent = book(a, start=f"{DAY}13:00:00+01:00").json()["id"]
    tick()
    bound = a.post("/v1/bookings/bind", json={"lead_minutes": 240}).json()["bound"]
    [(booked, who)] = [(b["booking_id"], b["agent"]) for b in bound]
    assert booked == absent
    clock.now = T0 + 245 * M
    r = a.post(f"/v1/bookings/{absent}/no-show", json={"agent_id": who})
    assert r.status_code == 200, r.text
    tick()
    # 10. cancelled
    dropped = book(a, start=f"{DAY}15:00:00+01:00").json()["id"]
    tick()
    assert a.post(f"/v1/bookings/{dropped}/cancel").status_code == 200

    steps = [s for s in history(a, "ZD-1") if s[0] not in ("created", "updated")]
    assert steps == [
        ("call_link_created", None),
        ("call_booked", "booked"),
        ("call_rescheduled", None),
        ("call_booked", "agent_bound"),
        ("call_booked", "agent_rebound"),
        ("call_booked", "at_risk"),
        ("call_booked", "agent_bound"),
        ("call_admitted", "admitted"),
        ("call_completed", "completed"),
        ("call_booked", "booked"),
        ("call_booked", "agent_bound"),
        ("call_no_show", "no_show"),
        ("call_booked", "booked"),
        ("call_cancelled", "cancelled"),
    ]

    sent = outbox(db, tenant_a.id)
    bookings = [(t, d) for t, d in sent if t.startswith("booking.")]
    assert [t for t, _ in bookings] == [
        "booking.created",
        "booking.rescheduled",
        "booking.agent_bound",
        "booking.agent_bound",
        "booking.at_risk",
        "booking.agent_bound",
        "booking.admitted",
        "booking.completed",
        "booking.created",
        "booking.agent_bound",
        "booking.no_show",
        "booking.created",
        "booking.cancelled",
    ]
    context = {
        "id": "ZD-1",
        "priority": "normal",
        "status": "new",
        "team_id": "support",
        "owner_agent_id": None,
        "channel": "email",
    }
    assert [d["ticket"] for _, d in bookings[:2]] == [context] * 2
    assert [d["ticket"] for _, d in bookings[2:]] == [context | {"priority": "high"}] * 11
    assert all(d["ticket_id"] == "ZD-1" for _, d in bookings)
    # The KPIs see the same steps: the link's call 150 minutes after the link was made (the
    # moved-away call does not count), one reassignment, admitted 5 minutes early (waits 0).
    r = a.get("/v1/kpis", params={"from": f"{DAY}07:00:00Z"})
    assert r.status_code == 200, r.text
    kpi = r.json()
    assert kpi["calls_booked"] == 4
    assert (kpi["link_lead_time_minutes"]["count"], kpi["link_lead_time_minutes"]["p50"]) == (
        1,
        150.0,
    )
    assert kpi["call_reassignments"] == 1 and kpi["no_shows"] == 1
    assert (kpi["admission_wait_minutes"]["count"], kpi["admission_wait_minutes"]["p90"]) == (
        1,
        0.0,
    )

    # Every history step went out as its ticket.* event too, and the link as call_link.*.
    told = [t for t, _ in sent if t.startswith(("ticket.call", "call_link."))]
    assert sorted(told) == sorted(["call_link.created", *(f"ticket.{k}" for k, _ in steps)])


def test_every_kind_of_history_step_can_be_stored(a: As, tenant_a: TenantCtx, db: Engine) -> None:
    """The database's CHECK on ``ticket_events.kind`` knows every kind the code writes (0013
    added six kinds to the enum without it; 0014 fixes that)."""
    org(a)
    with make_session_factory(db)() as session:
        for kind in TicketEventKind:
            session.add(
                TicketEvent(
                    tenant_id=tenant_a.id,
                    ticket_id="ZD-1",
                    kind=kind,
                    at=T0,
                    actor=None,
                    reason=None,
                    data={},
                )
            )
        session.commit()
    kinds = {e["kind"] for e in a.get("/v1/tickets/ZD-1/history").json()["items"]}
    assert kinds >= {k.value for k in TicketEventKind}
