"""Every /c answer carries the pages' headers (no-store, no-referrer, the strict CSP, noindex,
DENY, nosniff), whoever gives it: the pages, a refusal (404, 410, 409, 415, 422, 429), the
gate's 413, the static files, the .ics, /status and the event stream. The API's answers do
not."""

from __future__ import annotations

import secrets

import httpx2
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from api.main import create_app
from api.settings import Environment, Settings
from tests.api.bookings.test_bookings import org
from tests.api.conftest import As, FakeClock, make_tenant
from tests.api.customer.conftest import (
    FIRST,
    PAGE_HEADERS,
    assert_headers,
    book,
    form_token,
    issue,
    post_form,
)


def test_every_customer_answer_carries_the_headers(
    org_a: As, client: TestClient, clock: FakeClock
) -> None:
    fresh, used, revoked = issue(org_a, "ZD-1"), issue(org_a, "ZD-2"), issue(org_a, "ZD-3")
    assert org_a.post(f"/v1/call-links/{revoked.id}/revoke").status_code == 200
    page = client.get(fresh.path).text
    seen: dict[str, httpx2.Response] = {
        "picker": client.get(fresh.path),
        "reschedule (nothing booked)": client.get(f"{fresh.path}/reschedule"),
        "ics (nothing booked)": client.get(f"{fresh.path}/call.ics"),
        "status": client.get(f"{fresh.path}/status"),
        "bad zone": client.get(fresh.path, params={"tz": "Nowhere/Else"}),
        "bad form token": post_form(
            client, f"{fresh.path}/book", {"start": FIRST, "tz": "UTC", "form_token": "x"}
        ),
        "not a form": client.post(f"{fresh.path}/book", content=b"{}"),
        "too large": client.post(
            f"{fresh.path}/book",
            content=b"a=" + b"x" * (2 * 1024 * 1024),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        ),
        "unknown": client.get(f"/c/{secrets.token_urlsafe(32)}"),
        "unknown sub-page": client.get(f"{fresh.path}/nothing/here"),
        "gone": client.get(revoked.path),
        "css": client.get("/c/static/customer.css"),
        "js": client.get("/c/static/room.js"),
        "missing static file": client.get("/c/static/none.css"),
    }
    assert book(client, used).status_code == 303
    seen["booked"] = client.get(used.path)
    seen["ics"] = client.get(f"{used.path}/call.ics")
    seen["book again (409)"] = post_form(
        client,
        f"{used.path}/book",
        {"start": FIRST, "tz": "UTC", "form_token": form_token(client.get(used.path).text)},
    )
    seen["redirect"] = post_form(
        client,
        f"{fresh.path}/book",
        {"start": FIRST, "tz": "Europe/Berlin", "form_token": form_token(page)},
    )
    statuses = {name: r.status_code for name, r in seen.items()}
    assert statuses == {
        "picker": 200,
        "reschedule (nothing booked)": 200,
        "ics (nothing booked)": 409,
        "status": 200,
        "bad zone": 422,
        "bad form token": 422,
        "not a form": 415,
        "too large": 413,
        "unknown": 404,
        "unknown sub-page": 404,
        "gone": 410,
        "css": 200,
        "js": 200,
        "missing static file": 404,
        "booked": 200,
        "ics": 200,
        "book again (409)": 409,
        "redirect": 303,
    }
    for r in seen.values():
        assert_headers(r)
    assert seen["css"].headers["content-type"].startswith("text/css")
    assert "javascript" in seen["js"].headers["content-type"]
    # The API's own answers are not pages.
    api = org_a.get("/v1/call-links")
    assert "content-security-policy" not in api.headers


def test_the_429_and_the_event_stream_carry_them_too(
    db: Engine, db_url: str, clock: FakeClock
) -> None:
    settings = Settings(
        database_url=db_url, environment=Environment.TEST, link_lookup_failures="1/minute"
    )
    with TestClient(create_app(settings, clock=clock)) as client:
        a = make_tenant(db, client, "A").admin
        org(a)
        link = issue(a)
        assert book(client, link).status_code == 303
        # The stream ends at once once the call is cancelled, so the test client can read it.
        booking = a.get("/v1/bookings").json()["items"][0]["id"]
        assert a.post(f"/v1/bookings/{booking}/cancel").status_code == 200
        events = client.get(f"{link.path}/events")
        assert events.status_code == 200
        assert events.headers["content-type"].startswith("text/event-stream")
        assert 'data: {"phase":"cancelled"}' in events.text
        assert_headers(events)
        assert client.get(f"/c/{secrets.token_urlsafe(32)}").status_code == 404
        limited = client.get(link.path)
        assert limited.status_code == 429 and "Retry-After" in limited.headers
        assert_headers(limited)
        for name, value in PAGE_HEADERS.items():
            assert limited.headers[name] == value
