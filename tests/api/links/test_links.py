"""Call links on SQLite and PostgreSQL: the helpdesk issues, lists, reads and revokes them
(``/v1/tickets/{id}/call-links``, ``/v1/call-links``); the customer's side
(:mod:`api.links.service`) books once through a link, reschedules atomically, cancels, and
gets an RFC 5545 calendar file whose UID survives reschedules.

The customer's pages (``/c/...``) drive the same functions; their tests are in
``tests/api/customer``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import icalendar
import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from api.bookings.service import BookingRefused
from api.db.engine import make_session_factory
from api.db.models import Call, CallLink
from api.links import service as links
from api.links import tokens
from tests.api.assignment.test_assign import subscribe as subscribe_to
from tests.api.bookings.test_bookings import TICKET, org, outbox
from tests.api.conftest import T0, As, FakeClock, TenantCtx, assert_problem, ticket_body

NOON = datetime.fromisoformat("2026-03-02T12:00:00+00:00")
ONE = datetime.fromisoformat("2026-03-02T13:00:00+00:00")
BERLIN = "Europe/Berlin"


def issue(c: As, ticket: str = "ZD-1", **extra: Any) -> dict[str, Any]:
    body = {"capability_id": "net", "timezone": BERLIN, "locale": "de-DE"} | extra
    r = c.post(f"/v1/tickets/{ticket}/call-links", json=body)
    assert r.status_code == 201, r.text
    out: dict[str, Any] = r.json()
    return out


def token_of(link: dict[str, Any]) -> str:
    return urlsplit(link["url"]).path.rsplit("/", 1)[1]


@pytest.fixture
def session(db: Engine) -> Iterator[Session]:
    with make_session_factory(db)() as s:
        yield s


def form(session: Session, token: str) -> str:
    link = links.resolve(session, token, T0).link
    session.rollback()
    return tokens.form_token(link.form_key, link.id)


# --------------------------------------------------------------------------- helpdesk API


def test_a_link_is_issued_once_with_its_url_and_only_its_tokens_hash_is_kept(
    a: As, db: Engine, session: Session
) -> None:
    org(a)
    link = issue(a, display_name="Dana", reschedules_allowed=2)
    assert link["status"] == "active" and link["booking_id"] is None
    assert link["url"].startswith("http://127.0.0.1:8000/c/")
    token = token_of(link)
    assert len(token) >= 43  # 256 bits of URL-safe base64
    assert link["expires_at"] == (T0 + timedelta(days=7)).isoformat().replace("+00:00", "Z") or (
        datetime.fromisoformat(link["expires_at"]) == T0 + timedelta(days=7)
    )
    assert link["locale"] == "de-DE" and link["timezone"] == BERLIN
    row = session.scalars(select(CallLink)).one()
    assert row.token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert token not in str({c.name: getattr(row, c.name) for c in CallLink.__table__.columns})

    read = a.get(f"/v1/call-links/{link['id']}")
    assert read.status_code == 200 and "url" not in read.json()
    assert token not in read.text
    history = a.get("/v1/tickets/ZD-1/history").json()["items"]
    assert history[-1]["kind"] == "call_link_created"
    assert token not in a.get("/v1/tickets/ZD-1/history").text


def test_bad_links_are_refused_naming_the_field(a: As) -> None:
    org(a)
    r = a.post("/v1/tickets/ZD-1/call-links", json={"capability_id": "nope"})
    assert_problem(r, 422, "capability_id")
    r = a.post("/v1/tickets/ZD-404/call-links", json={"capability_id": "net"})
    assert r.status_code == 404
    r = a.post("/v1/tickets/ZD-1/call-links", json={"capability_id": "net", "locale": "xx-QQ"})
    assert_problem(r, 422, "locale")
    r = a.post("/v1/tickets/ZD-1/call-links", json={"capability_id": "net", "timezone": "Mars/X"})
    assert_problem(r, 422, "timezone")
    r = a.post(
        "/v1/tickets/ZD-1/call-links",
        json={
            "capability_id": "net",
            "not_before": "2026-03-03T10:00:00Z",
            "not_after": "2026-03-03T09:00:00Z",
        },
    )
    assert_problem(r, 422, "not_after")
    r = a.post(
        "/v1/tickets/ZD-1/call-links",
        json={"capability_id": "net", "expires_at": "2026-03-01T10:00:00Z"},
    )
    assert_problem(r, 422, "expires_at")
    r = a.post(
        "/v1/tickets/ZD-1/call-links", json={"capability_id": "net", "reschedules_allowed": 99}
    )
    assert_problem(r, 422, "reschedules_allowed")
    r = a.put("/v1/tickets/ZD-2", json=ticket_body(TICKET | {"status": "solved"}))
    assert r.status_code == 200, r.text
    r = a.post("/v1/tickets/ZD-2/call-links", json={"capability_id": "net"})
    assert_problem(r, 409, "ticket_id")
    assert a.get("/v1/call-links").json()["items"] == []  # nothing half-written


def test_list_filters_by_ticket_and_status_and_revoke_is_idempotent(
    a: As, b: As, clock: FakeClock, tenant_a: TenantCtx, db: Engine
) -> None:
    org(a)
    subscribe_to(db, tenant_a.id, "call_link.created", "call_link.revoked")
    one = issue(a, "ZD-1")
    two = issue(a, "ZD-2", expires_at=(T0 + timedelta(hours=1)).isoformat())
    three = issue(a, "ZD-2")
    listed = a.get("/v1/call-links", params={"ticket_id": "ZD-2"}).json()["items"]
    assert sorted(x["id"] for x in listed) == sorted([two["id"], three["id"]])  # same clock

    r = a.post(f"/v1/call-links/{three['id']}/revoke")
    assert r.status_code == 200 and r.json()["status"] == "revoked"
    again = a.post(f"/v1/call-links/{three['id']}/revoke")
    assert again.status_code == 200 and again.json()["revoked_at"] == r.json()["revoked_at"]
    clock.advance(hours=2)
    by_status = {
        s: [x["id"] for x in a.get("/v1/call-links", params={"status": s}).json()["items"]]
        for s in ("active", "expired", "revoked", "booked")
    }
    assert by_status == {
        "active": [one["id"]],
        "expired": [two["id"]],
        "revoked": [three["id"]],
        "booked": [],
    }
    # Another tenant sees none of them.
    assert b.get(f"/v1/call-links/{one['id']}").status_code == 404
    assert b.post(f"/v1/call-links/{one['id']}/revoke").status_code == 404
    assert b.get("/v1/call-links").json()["items"] == []
    sent = [(t, d["link_id"]) for t, d in outbox(db, tenant_a.id)]
    assert ("call_link.revoked", three["id"]) in sent
    assert sum(1 for t, _ in sent if t == "call_link.revoked") == 1
    assert sum(1 for t, _ in sent if t == "call_link.created") == 3
    assert all("url" not in d and "token" not in d for _, d in outbox(db, tenant_a.id))


# --------------------------------------------------------------------------- customer side


def test_resolving_says_404_for_unknown_and_410_for_revoked_or_expired(
    a: As, session: Session
) -> None:
    org(a)
    link = issue(a, expires_at=(T0 + timedelta(hours=1)).isoformat())
    token = token_of(link)
    assert links.resolve(session, token, T0).link.id == link["id"]
    session.rollback()
    for bad in ("x" * 43, token[:-1] + ("A" if token[-1] != "A" else "B"), "", "a/b", "é" * 10):
        with pytest.raises(links.LinkUnknown):
            links.resolve(session, bad, T0)
        session.rollback()
    with pytest.raises(links.LinkGone) as gone:
        links.resolve(session, token, T0 + timedelta(hours=2))
    assert gone.value.why is links.LinkStatus.EXPIRED
    session.rollback()
    assert a.post(f"/v1/call-links/{link['id']}/revoke").status_code == 200
    with pytest.raises(links.LinkGone) as gone:
        links.resolve(session, token, T0)
    assert gone.value.why is links.LinkStatus.REVOKED


def _book(session: Session, token: str, start: datetime, **kw: Any) -> Any:
    done = links.book(
        session=session,
        token=token,
        start=start,
        tz=BERLIN,
        form_token=kw.pop("form_token", None) or form(session, token),
        now=T0,
        **kw,
    )
    session.commit()
    return done


def test_a_link_books_once_then_is_the_handle_of_its_call(a: As, session: Session) -> None:
    org(a)
    link = issue(a)
    token = token_of(link)
    with pytest.raises(Exception) as bad_form:
        links.book(session=session, token=token, start=NOON, tz=BERLIN, form_token="x", now=T0)
    assert "form_token" in str(getattr(bad_form.value, "errors", ""))
    session.rollback()
    done = _book(session, token, NOON)
    assert done.row.link_id == link["id"]
    with pytest.raises(links.LinkUsed):
        _book(session, token, ONE)
    session.rollback()
    shown = a.get(f"/v1/call-links/{link['id']}").json()
    assert shown["status"] == "booked" and shown["booking_id"] == done.row.id
    listed = a.get("/v1/call-links").json()["items"]
    assert [(x["id"], x["status"]) for x in listed] == [(link["id"], "booked")]
    seen = links.view(session, links.resolve(session, token, T0), T0)
    assert seen.phase is links.Phase.BOOKED and seen.call is not None
    assert seen.can_reschedule and seen.can_cancel and seen.agent_name is None
    assert seen.join_url is None
    session.rollback()
    # A day after the call it is gone.
    with pytest.raises(links.LinkGone):
        links.resolve(session, token, NOON + timedelta(days=8))


def test_a_start_outside_the_links_window_names_start(a: As, session: Session) -> None:
    org(a)
    link = issue(a, not_before="2026-03-02T12:30:00Z", not_after="2026-03-02T15:00:00Z")
    token = token_of(link)
    with pytest.raises(Exception) as refused:
        _book(session, token, NOON)
    assert [e.field for e in refused.value.errors] == ["start"]  # type: ignore[attr-defined]
    session.rollback()
    lo, hi = links.window(_row(session), T0)
    assert lo.hour == 12 and hi.hour == 15


def _row(session: Session) -> CallLink:
    return session.scalars(select(CallLink)).one()


def test_reschedule_moves_the_call_atomically_and_counts(
    a: As, session: Session, tenant_a: TenantCtx, db: Engine
) -> None:
    org(a, agents=("ana",))
    subscribe_to(db, tenant_a.id, "booking.rescheduled", "booking.created", "booking.cancelled")
    link = issue(a, reschedules_allowed=1)
    token = token_of(link)
    first = _book(session, token, NOON).row.id
    # Another customer takes 13:00 (the only agent): moving there is refused, nothing changes.
    r = a.post(
        "/v1/bookings",
        json={"capability_id": "net", "ticket_id": "ZD-2", "start": ONE.isoformat(), "tz": "UTC"},
    )
    assert r.status_code == 201, r.text
    with pytest.raises(BookingRefused):
        links.reschedule(
            session=session,
            token=token,
            start=ONE,
            tz=BERLIN,
            form_token=form(session, token),
            now=T0,
        )
    session.rollback()
    assert session.get(Call, (tenant_a.id, first)).status.value == "booked"  # type: ignore[union-attr]
    later = ONE + timedelta(hours=1)
    moved = links.reschedule(
        session=session,
        token=token,
        start=later,
        tz=BERLIN,
        form_token=form(session, token),
        now=T0,
    )
    session.commit()
    old = session.get(Call, (tenant_a.id, first))
    assert old is not None and old.status.value == "cancelled"
    assert old.cancel_reason is not None and old.cancel_reason.value == "rescheduled"
    row = _row(session)
    assert row.booking_id == moved.row.id and row.sequence == 1 and row.reschedules_used == 1
    kinds = [e["kind"] for e in a.get("/v1/tickets/ZD-1/history").json()["items"]]
    assert kinds.count("call_rescheduled") == 1 and kinds.count("call_cancelled") == 0
    types = [t for t, _ in outbox(db, tenant_a.id)]
    assert types.count("booking.rescheduled") == 1 and "booking.cancelled" not in types
    # The link's one reschedule is used up.
    seen = links.view(session, links.resolve(session, token, T0), T0)
    assert not seen.can_reschedule and seen.can_cancel


def test_cancel_and_the_calendar_file(a: As, session: Session) -> None:
    org(a)
    link = issue(a)
    token = token_of(link)
    _book(session, token, NOON)
    seen = links.view(session, links.resolve(session, token, T0), T0)
    first = icalendar.Calendar.from_ical(links.ics(seen, url="https://x/c/t", now=T0))
    session.rollback()
    links.cancel(session=session, token=token, form_token=form(session, token), now=T0)
    session.commit()
    seen = links.view(session, links.resolve(session, token, T0), T0)
    assert seen.phase is links.Phase.CANCELLED and seen.cancel_reason is not None
    assert seen.cancel_reason.value == "customer" and not seen.can_cancel
    second = icalendar.Calendar.from_ical(links.ics(seen, url="https://x/c/t", now=T0))
    (e1,) = first.walk("VEVENT")
    (e2,) = second.walk("VEVENT")
    assert e1["UID"] == e2["UID"] == f"{link['id']}@switchboard"
    assert int(e1["SEQUENCE"]) == 0 and int(e2["SEQUENCE"]) == 1
    assert str(e2["STATUS"]) == "CANCELLED" and str(second["METHOD"]) == "CANCEL"
    assert e1.decoded("DTSTART") == NOON
    text = links.ics(seen, url="https://x/c/t", now=T0).decode()
    assert "ana" not in text and "ben" not in text  # names no agent
    with pytest.raises(Exception):  # noqa: B017 - a Conflict: nothing left to cancel
        links.cancel(session=session, token=token, form_token=form(session, token), now=T0)


def test_the_waiting_room_reveals_the_join_url_only_when_admitted(
    a: As, session: Session, tenant_a: TenantCtx
) -> None:
    org(a)
    r = a.patch(
        "/v1/policies",
        json={
            "call_room": {
                "meeting_url_template": "https://meet.example.com/{booking_id}",
                "show_agent_name": True,
            }
        },
    )
    assert r.status_code == 200, r.text
    r = a.patch("/v1/agents/ana", json={"name": "Ana Admitter"})
    assert r.status_code == 200, r.text
    link = issue(a)
    token = token_of(link)
    call_id = _book(session, token, NOON).row.id
    soon = NOON - timedelta(minutes=5)
    seen = links.view(session, links.resolve(session, token, soon), soon)
    assert seen.phase is links.Phase.WAITING and seen.join_url is None
    assert seen.agent_name is None
    session.rollback()
    call = session.get(Call, (tenant_a.id, call_id))
    assert call is not None
    call.bound_agent = "ana"
    call.admitted_at = soon
    call.admitted_by = "ana"
    session.commit()
    seen = links.view(session, links.resolve(session, token, soon), soon)
    assert seen.phase is links.Phase.ADMITTED
    assert seen.join_url == f"https://meet.example.com/{call_id}"
    assert seen.agent_name == "Ana Admitter"


def test_a_link_whose_ticket_was_solved_shows_closed_and_books_nothing(
    a: As, session: Session
) -> None:
    org(a)
    token = token_of(issue(a))
    r = a.put("/v1/tickets/ZD-1", json=ticket_body(TICKET | {"status": "solved"}))
    assert r.status_code == 200, r.text
    assert links.view(session, links.resolve(session, token, T0), T0).phase is links.Phase.CLOSED
    session.rollback()
    with pytest.raises(Exception) as refused:
        _book(session, token, NOON)
    assert [e.field for e in refused.value.errors] == ["ticket_id"]  # type: ignore[attr-defined]
