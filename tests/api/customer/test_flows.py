"""The customer's way through their link, on SQLite and PostgreSQL: pick a time, book it, see
the confirmation (and the same link shows the booking again), download the .ics, move the call
(the old one cancelled, the new one booked, the event's UID kept and its SEQUENCE counted),
cancel it, the at-risk notice offering new times, and the page when nothing is open."""

from __future__ import annotations

from datetime import datetime

import icalendar
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select, update

from api.db.engine import make_session_factory
from api.db.models import Call, CallLink, CallStatus
from tests.api.conftest import T0, As, FakeClock
from tests.api.customer.conftest import (
    FIRST,
    SECOND,
    assert_headers,
    book,
    by_id,
    form_token,
    issue,
    legends,
    post_form,
    starts,
)


def calls(engine: Engine) -> list[Call]:
    with make_session_factory(engine)() as session:
        return list(session.scalars(select(Call).order_by(Call.start_at, Call.id)))


def link_row(engine: Engine, link_id: str) -> CallLink:
    with make_session_factory(engine)() as session:
        return session.scalars(select(CallLink).where(CallLink.id == link_id)).one()


def test_pick_shows_open_starts_by_day_in_the_customers_zone_and_locale(
    org_a: As, client: TestClient
) -> None:
    link = issue(org_a)
    r = client.get(link.path)
    assert r.status_code == 200, r.text
    assert_headers(r)
    page = r.text
    assert '<html lang="en">' in page
    assert starts(page)[:2] == [FIRST, SECOND]
    # One fieldset per day, its legend the day in German; times in Berlin (UTC+1 that day).
    assert legends(page) == ["Montag, 2. März 2026"]
    assert '<label for="slot-0"><span lang="de">10:00</span></label>' in page
    assert 'action="/c/' + link.token + '/book"' in page
    assert '<select name="tz" id="tz">' in page and 'id="tz-apply"' in page
    assert '<option value="Europe/Berlin" selected>' in page
    # Another zone, another language.
    r = client.get(link.path, params={"tz": "America/New_York", "lang": "en"})
    assert r.status_code == 200
    assert legends(r.text) == ["Monday, March 2, 2026"]
    assert '<span lang="en">4:00\u202fAM</span>' in r.text
    assert '<input type="hidden" name="tz" value="America/New_York">' in r.text


def test_an_unknown_zone_is_said_and_the_links_zone_used(org_a: As, client: TestClient) -> None:
    link = issue(org_a)
    r = client.get(link.path, params={"tz": "Mars/Olympus"})
    assert r.status_code == 422
    assert by_id(r.text, "error") and "Mars/Olympus" in r.text
    assert starts(r.text)[0] == FIRST  # the link's zone, Berlin: still the picker
    for params in ({"tz": "x" * 500}, {"tz": "../../etc/passwd"}, {"lang": "zz-nope" * 20}):
        r = client.get(link.path, params=params)
        assert r.status_code == 422 and by_id(r.text, "error"), params
        assert r.headers["content-type"].startswith("text/html")
        assert starts(r.text)[0] == FIRST


def test_book_then_the_same_link_shows_the_booking(
    org_a: As, client: TestClient, db: Engine
) -> None:
    link = issue(org_a, display_name="Kim")
    r = book(client, link)
    assert r.status_code == 303 and r.headers["location"] == link.path
    assert_headers(r)
    page = client.get(link.path).text
    assert by_id(page, "confirmation")
    assert "Montag, 2. März 2026, 10:00" in page
    assert 'id="ticket-ref">ZD-1<' in page
    assert f'<a id="ics" href="{link.path}/call.ics">' in page
    assert f'<a id="reschedule" href="{link.path}/reschedule">' in page
    assert f'<form id="cancel" method="post" action="{link.path}/cancel"' in page
    booked = calls(db)
    assert [(c.status, c.start_at.isoformat()) for c in booked] == [
        (CallStatus.BOOKED, "2026-03-02T09:00:00+00:00")
    ]
    assert booked[0].link_id == link.id
    # Booking again through it: refused, and the page shows the booking (409, not an error page).
    again = post_form(
        client,
        f"{link.path}/book",
        {"start": SECOND, "tz": "Europe/Berlin", "form_token": form_token(page)},
    )
    assert again.status_code == 409
    assert by_id(again.text, "already-booked") and by_id(again.text, "confirmation")
    assert len(calls(db)) == 1


def test_a_start_just_taken_is_the_picker_again_with_the_nearest_first(
    org_a: As, client: TestClient
) -> None:
    one, two, three = issue(org_a, "ZD-1"), issue(org_a, "ZD-2"), issue(org_a, "ZD-3")
    # ZD-3's customer loads the picker; meanwhile ana and ben are both taken at 09:00.
    stale = client.get(three.path).text
    assert book(client, one).status_code == 303
    assert book(client, two).status_code == 303
    r = post_form(
        client,
        f"{three.path}/book",
        {"start": FIRST, "tz": "Europe/Berlin", "form_token": form_token(stale)},
    )
    assert r.status_code == 409, r.text
    assert_headers(r)
    assert by_id(r.text, "taken")
    offered = starts(r.text)
    assert FIRST not in offered
    assert offered[0] == SECOND  # the nearest alternative first
    assert 'id="alt-0"' in r.text


def test_a_forged_or_missing_form_token_is_refused_and_books_nothing(
    org_a: As, client: TestClient, db: Engine
) -> None:
    link = issue(org_a)
    for token in ("", "0" * 64):
        r = post_form(
            client,
            f"{link.path}/book",
            {"start": FIRST, "tz": "Europe/Berlin", "form_token": token},
        )
        assert r.status_code == 422, r.text
        assert by_id(r.text, "error") and "reload the page" in r.text
        assert starts(r.text)  # the picker again
    assert calls(db) == []
    # A form that is not a browser's form.
    r = client.post(f"{link.path}/book", json={"start": FIRST})
    assert r.status_code == 415
    assert_headers(r)


def test_ics_then_reschedule_keeps_the_uid_and_counts_the_sequence(
    org_a: As, client: TestClient, db: Engine
) -> None:
    link = issue(org_a)
    assert book(client, link).status_code == 303
    first = client.get(f"{link.path}/call.ics")
    assert first.status_code == 200
    assert first.headers["content-type"].startswith("text/calendar")
    assert_headers(first)
    event = icalendar.Calendar.from_ical(first.content).walk("VEVENT")[0]
    uid, sequence = str(event["UID"]), int(event["SEQUENCE"])
    assert event.decoded("DTSTART") == datetime.fromisoformat(FIRST)

    page = client.get(f"{link.path}/reschedule")
    assert page.status_code == 200
    assert f'action="{link.path}/reschedule"' in page.text
    assert SECOND in starts(page.text)
    r = post_form(
        client,
        f"{link.path}/reschedule",
        {"start": SECOND, "tz": "Europe/Berlin", "form_token": form_token(page.text)},
    )
    assert r.status_code == 303, r.text
    old, new = calls(db)
    assert old.status is CallStatus.CANCELLED and old.cancel_reason == "rescheduled"
    assert new.status is CallStatus.BOOKED and new.start_at == datetime.fromisoformat(SECOND)
    assert link_row(db, link.id).sequence == 1
    event = icalendar.Calendar.from_ical(client.get(f"{link.path}/call.ics").content).walk(
        "VEVENT"
    )[0]
    assert str(event["UID"]) == uid and int(event["SEQUENCE"]) == sequence + 1
    assert event.decoded("DTSTART") == datetime.fromisoformat(SECOND)
    # The one reschedule allowed is used: no more offer to move it.
    page = client.get(link.path).text
    assert by_id(page, "confirmation") and not by_id(page, "reschedule")
    r = client.get(f"{link.path}/reschedule")
    assert by_id(r.text, "not-movable") and not starts(r.text)


def test_cancel_shows_the_cancelled_call_and_why(org_a: As, client: TestClient, db: Engine) -> None:
    link = issue(org_a)
    assert book(client, link).status_code == 303
    token = form_token(client.get(link.path).text)
    r = post_form(client, f"{link.path}/cancel", {"form_token": token, "tz": "Europe/Berlin"})
    assert r.status_code == 303
    (call,) = calls(db)
    assert call.status is CallStatus.CANCELLED and call.cancel_reason == "customer"
    page = client.get(link.path).text
    assert by_id(page, "cancelled") and "you cancelled it" in page
    ics = icalendar.Calendar.from_ical(client.get(f"{link.path}/call.ics").content)
    assert str(ics["METHOD"]) == "CANCEL"
    # Cancelling again: the page says there is nothing to cancel (409), not an error page.
    r = post_form(client, f"{link.path}/cancel", {"form_token": token, "tz": "Europe/Berlin"})
    assert r.status_code == 409 and by_id(r.text, "cancelled") and by_id(r.text, "error")


def test_a_call_cancelled_because_its_ticket_was_solved_says_so(
    org_a: As, client: TestClient
) -> None:
    from tests.api.bookings.test_bookings import set_status

    link = issue(org_a)
    assert book(client, link).status_code == 303
    set_status(org_a, "ZD-1", "solved")
    page = client.get(link.path).text
    assert by_id(page, "cancelled") and "your ticket was solved" in page


def test_at_risk_shows_the_notice_and_offers_new_times(
    org_a: As, client: TestClient, db: Engine, clock: FakeClock
) -> None:
    link = issue(org_a)
    assert book(client, link).status_code == 303
    # Nobody can take it any more (what the JIT job marks): the room says so, offers times.
    with make_session_factory(db)() as session:
        session.execute(update(Call).values(at_risk_since=T0))
        session.commit()
    r = client.get(link.path)
    assert r.status_code == 200
    assert 'id="room"' in r.text and 'data-phase="at_risk"' in r.text
    assert by_id(r.text, "at-risk")
    assert f'<a id="reschedule" href="{link.path}/reschedule">' in r.text
    assert SECOND in starts(r.text)
    r = post_form(
        client,
        f"{link.path}/reschedule",
        {"start": SECOND, "tz": "Europe/Berlin", "form_token": form_token(r.text)},
    )
    assert r.status_code == 303, r.text
    assert by_id(client.get(link.path).text, "confirmation")
    # Moving an at-risk call costs nothing: the one reschedule allowed is still there.
    assert link_row(db, link.id).reschedules_used == 0


def test_the_waiting_room_before_admission_has_a_refresh_link_and_no_join(
    org_a: As, client: TestClient, clock: FakeClock
) -> None:
    link = issue(org_a)
    assert book(client, link).status_code == 303
    clock.now = datetime.fromisoformat("2026-03-02T08:55:00+00:00")  # the room opens at 08:50
    r = client.get(link.path)
    assert 'id="room"' in r.text and 'data-phase="waiting"' in r.text
    assert by_id(r.text, "refresh") and not by_id(r.text, "join")
    assert '<script src="/c/static/room.js" defer></script>' in r.text
    assert client.get(f"{link.path}/status").json() == {"phase": "waiting"}


def test_nothing_open_says_we_will_contact_you_with_the_ticket(
    org_a: As, client: TestClient
) -> None:
    # A window on Sunday, when nobody is on shift.
    link = issue(
        org_a,
        not_before="2026-03-08T09:00:00Z",
        not_after="2026-03-08T17:00:00Z",
    )
    r = client.get(link.path)
    assert r.status_code == 200
    assert by_id(r.text, "nothing-open") and "ZD-1" in r.text and "contact you" in r.text
    assert starts(r.text) == [] and not by_id(r.text, "book")


def test_a_get_never_consumes_the_link(org_a: As, client: TestClient, db: Engine) -> None:
    link = issue(org_a)
    for path in ("", "/reschedule", "/status", "/call.ics"):
        client.get(f"{link.path}{path}")
        client.get(f"{link.path}{path}")
    row = link_row(db, link.id)
    assert row.booking_id is None and row.sequence == 0 and calls(db) == []
    assert book(client, link).status_code == 303


def test_after_the_call_the_link_shows_it_is_over_and_then_is_gone(
    org_a: As, client: TestClient, clock: FakeClock
) -> None:
    link = issue(org_a)
    assert book(client, link).status_code == 303
    clock.now = datetime.fromisoformat("2026-03-02T09:45:00+00:00")  # the 09:00 call ended
    page = client.get(link.path)
    assert page.status_code == 200 and by_id(page.text, "over")
    assert not by_id(page.text, "reschedule") and not by_id(page.text, "cancel")
    assert client.get(f"{link.path}/status").json() == {"phase": "over"}
    # Gone a day after the call's end, or at the link's own expiry if that is later (a week).
    clock.now = datetime.fromisoformat("2026-03-09T07:59:00+00:00")
    assert client.get(link.path).status_code == 200
    clock.now = datetime.fromisoformat("2026-03-09T08:00:00+00:00")
    assert client.get(link.path).status_code == 410


def test_admitted_without_a_meeting_url_says_the_specialist_calls(
    org_a: As, client: TestClient, clock: FakeClock, db: Engine
) -> None:
    link = issue(org_a)
    assert book(client, link).status_code == 303
    clock.now = datetime.fromisoformat("2026-03-02T08:55:00+00:00")
    with make_session_factory(db)() as session:
        # The agents' admission API is another helper's: the page only reads these columns.
        session.execute(update(Call).values(admitted_at=clock.now, admitted_by="ana"))
        session.commit()
    page = client.get(link.path).text
    assert 'data-phase="admitted"' in page and by_id(page, "call-you")
    assert not by_id(page, "join") and not by_id(page, "agent-name") and "ana" not in page


def test_a_move_to_a_start_just_taken_changes_nothing_and_offers_the_nearest(
    org_a: As, client: TestClient, db: Engine
) -> None:
    mine = issue(org_a, "ZD-1")
    assert book(client, mine).status_code == 303
    stale = client.get(f"{mine.path}/reschedule").text
    assert SECOND in starts(stale)
    # Meanwhile both agents are taken at 09:30.
    for ticket in ("ZD-2", "ZD-3"):
        assert book(client, issue(org_a, ticket), start=SECOND).status_code == 303
    r = post_form(
        client,
        f"{mine.path}/reschedule",
        {"start": SECOND, "tz": "Europe/Berlin", "form_token": form_token(stale), "lang": "en"},
    )
    assert r.status_code == 409, r.text
    assert by_id(r.text, "taken") and f'action="{mine.path}/reschedule"' in r.text
    assert SECOND not in starts(r.text)
    assert '<input type="hidden" name="lang" value="en">' in r.text  # the language kept
    # Nothing moved: the call stays at 09:00 and the reschedule is still there to use.
    mine_calls = [c for c in calls(db) if c.link_id == mine.id]
    assert [(c.status, c.start_at) for c in mine_calls] == [
        (CallStatus.BOOKED, datetime.fromisoformat(FIRST))
    ]
    row = link_row(db, mine.id)
    assert row.sequence == 0 and row.reschedules_used == 0
    assert by_id(client.get(mine.path).text, "reschedule")


def test_the_zone_and_language_asked_for_follow_the_customer_through_a_booking(
    org_a: As, client: TestClient
) -> None:
    link = issue(org_a)
    page = client.get(link.path, params={"tz": "America/New_York", "lang": "en"}).text
    r = post_form(
        client,
        f"{link.path}/book",
        {
            "start": FIRST,
            "tz": "America/New_York",
            "lang": "en",
            "form_token": form_token(page),
        },
    )
    assert r.status_code == 303
    assert r.headers["location"] == f"{link.path}?tz=America%2FNew_York&lang=en"
    page = client.get(r.headers["location"]).text
    assert "Monday, March 2, 2026, 4:00\u202fAM" in page
