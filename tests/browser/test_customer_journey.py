"""A customer's whole journey through their call link, in a real Chromium against the real
service (uvicorn on loopback, SQLite), everything seeded through the HTTP API.

The helpdesk issues a link for ticket ZD-1 in Europe/Berlin. On a phone-sized screen
(390×844) the customer opens it, switches the zone to America/New_York, picks the first open
start and books it; the confirmation shows that start in New York time (and not in Berlin
time). The same link in a second tab shows the booking, not the picker. The service's clock
then moves to five minutes before the call: the link shows the waiting room. The call is bound
to an agent (``POST /v1/bookings/bind``) and that agent admits the customer (``POST
/v1/bookings/{id}/admit``): the join link appears in the open waiting room without a reload.

axe-core checks the picker, the confirmation and the waiting room (no serious or critical
violation, WCAG 2.1 AA and best practices); no page scrolls sideways at 390 px; no page trips
its own Content-Security-Policy. The picker's screenshot and axe's reports go to the artefacts
directory (``tmp/artefacts``; SWITCHBOARD_SCREENSHOT_TO_DOCS=1 also refreshes
docs/customer-picker.png, the README's picture).
"""

from __future__ import annotations

import os
import re
import shutil
import struct
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import httpx

from api.db.engine import make_engine, make_session_factory
from api.keys import tenants
from tests.browser.live import Live
from tests.browser.tools import PHONE, axe_violations, serious

ROOT = Path(__file__).resolve().parents[2]
LINK_ZONE = "Europe/Berlin"
CUSTOMER_ZONE = "America/New_York"
AGENTS = {"ana": "Ana Lindqvist", "ben": "Ben Okafor"}
MEETING = "https://meet.example.com/support-{booking_id}"


# --------------------------------------------------------------------------- seeding


def helpdesk(live: Live) -> httpx.Client:
    """A tenant (created as ``switchboard tenant create`` does: tenants have no HTTP route)
    and an HTTP client speaking with its first admin key."""
    engine = make_engine(live.settings)
    try:
        with make_session_factory(engine)() as session:
            _, key = tenants.create(session=session, name="Browser Co", now=live.clock())
            session.commit()
    finally:
        engine.dispose()
    return httpx.Client(
        base_url=live.base, headers={"Authorization": f"Bearer {key}"}, timeout=30.0
    )


def ok(r: httpx.Response, status: int = 200) -> Any:
    assert r.status_code == status, f"{r.request.method} {r.request.url}: {r.status_code} {r.text}"
    return r.json()


def seed(api: httpx.Client, now: datetime) -> None:
    """Two agents with networking 3 on shift from an hour ago for eight hours; capability
    ``net`` (30-minute calls, 15-minute grid, 15 minutes' notice, nothing held back for
    tickets); ticket ZD-1 needing networking 2; a waiting room with a meeting URL template that
    the bound agent opens (admission ``agent``) and that names the agent once admitted."""
    ok(api.post("/v1/skills", json={"id": "networking"}), 201)
    ok(api.post("/v1/teams", json={"id": "support", "name": "Support"}), 201)
    for agent, name in AGENTS.items():
        body = {"id": agent, "name": name, "team": "support", "skills": {"networking": 3}}
        ok(api.post("/v1/agents", json=body), 201)
        shift = {
            "agent": agent,
            "start": (now - timedelta(hours=1)).isoformat(),
            "end": (now + timedelta(hours=7)).isoformat(),
        }
        ok(api.post("/v1/shifts", json=shift), 201)
    capability = {
        "id": "net",
        "name": "Network troubleshooting",
        "requirements": {"networking": 2},
        "call_minutes": 30,
        "granularity_minutes": 15,
        "min_notice_minutes": 15,
        "reserve_share": 0.0,
    }
    ok(api.post("/v1/capabilities", json=capability), 201)
    ticket = {
        "team": "support",
        "required_skills": {"networking": 2},
        "priority": "normal",
        "status": "open",
        "effort_minutes": 30,
        "owner_agent": None,
        "created_at": (now - timedelta(minutes=30)).isoformat(),
    }
    ok(api.put("/v1/tickets/ZD-1", json=ticket), 201)
    room = {
        "meeting_url_template": MEETING,
        "admission": "agent",
        "show_agent_name": True,
        "opens_minutes_before": 10,
    }
    ok(api.put("/v1/policies", json={"call_room": room}))


# --------------------------------------------------------------------------- page checks


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    width, height = struct.unpack(">II", data[16:24])
    return int(width), int(height)


def no_sideways_scroll(page: Any) -> None:
    width = page.evaluate(
        "() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]"
    )
    assert width[0] <= width[1], f"{page.url} scrolls sideways at 390 px: {width}"


def accessible(page: Any, name: str, artefacts: Path) -> None:
    bad = serious(axe_violations(page, name, artefacts))
    assert not bad, f"axe on the {name} page:\n" + "\n".join(bad)


def clock_forms(at: datetime) -> tuple[str, str]:
    """``at``'s time of day as a page may write it: 24-hour (``09:05``) and 12-hour
    (``9:05``, the AM/PM marker apart)."""
    return f"{at.hour:02d}:{at.minute:02d}", f"{at.hour % 12 or 12}:{at.minute:02d}"


def shows_time(text: str, at: datetime) -> bool:
    """Whether ``text`` writes ``at``'s time of day (either form, as a whole token). A UTC
    offset (``GMT-05:00``) is not a time of day: a sign before the digits rules the token out."""
    return any(
        re.search(rf"(?<![\d:+\-\u2212]){re.escape(f)}(?![\d])", text) for f in clock_forms(at)
    )


def plain(text: str) -> str:
    """Text with the no-break spaces CLDR puts in times (``9:00\u202fAM``) made plain."""
    return re.sub(r"[\s\u00a0\u202f]+", " ", text)


# --------------------------------------------------------------------------- the steps


def picker_in_the_links_zone(page: Any, url: str, artefacts: Path) -> None:
    """The link opens on the picker in its own zone, with the customer pages' headers; the
    screenshot, the phone-width check and axe."""
    first = page.goto(url)
    assert first is not None and first.status == 200, first and first.status
    assert "default-src 'none'" in first.headers["content-security-policy"]
    assert first.headers["cache-control"] == "no-store"
    page.wait_for_selector('form[action$="/book"] input[name="start"]', state="attached")
    assert page.locator("select#tz").input_value() == LINK_ZONE
    no_sideways_scroll(page)
    shot = page.screenshot(path=str(artefacts / "customer-picker.png"))
    assert png_size(shot) == (PHONE["width"], PHONE["height"])
    if os.environ.get("SWITCHBOARD_SCREENSHOT_TO_DOCS") == "1":
        shutil.copyfile(artefacts / "customer-picker.png", ROOT / "docs/customer-picker.png")
    accessible(page, "picker", artefacts)


def pick_the_first_start_in(page: Any, zone: str, now: datetime) -> datetime:
    """Change the zone, then click the first open start's label; answers that start."""
    page.select_option("select#tz", zone)
    with page.expect_navigation():
        page.click("#tz-apply")
    assert parse_qs(urlsplit(page.url).query)["tz"] == [zone]
    assert page.locator("select#tz").input_value() == zone
    assert page.locator('form[action$="/book"] input[name="tz"]').input_value() == zone
    choice = page.locator('input[type="radio"][name="start"]').first
    start = datetime.fromisoformat(choice.get_attribute("value").replace("Z", "+00:00"))
    assert start.tzinfo is not None and start > now
    # The radio's label (by ``for`` or around it) writes the start in the chosen zone; the
    # customer clicks that text.
    label = choice.element_handle().evaluate_handle("el => el.labels[0]").as_element()
    assert label is not None, "the first start's radio has no label"
    assert shows_time(plain(label.inner_text()), start.astimezone(ZoneInfo(zone))), (
        label.inner_text()
    )
    label.click()
    assert choice.is_checked()
    return start


def book_and_confirm(page: Any, start: datetime, artefacts: Path) -> None:
    """Book: the confirmation writes the start in New York time (and not in Berlin time)."""
    with page.expect_navigation():
        page.click("button#book")
    page.wait_for_selector("#confirmation")
    assert page.locator('input[name="start"]').count() == 0
    confirmation = plain(page.locator("#confirmation").inner_text())
    assert shows_time(confirmation, start.astimezone(ZoneInfo(CUSTOMER_ZONE))), confirmation
    assert not shows_time(confirmation, start.astimezone(ZoneInfo(LINK_ZONE))), confirmation
    assert re.search(r"New[ _]York|Eastern", confirmation), confirmation
    assert "ZD-1" in confirmation
    assert page.locator("a#ics").get_attribute("href").endswith("/call.ics")
    no_sideways_scroll(page)
    accessible(page, "confirmation", artefacts)


def another_tab_shows_the_booking(context: Any, url: str) -> None:
    second = context.new_page()
    try:
        again = second.goto(url)
        assert again is not None and again.status == 200
        second.wait_for_selector("#confirmation")
        assert second.locator('input[name="start"]').count() == 0
        assert second.locator("button#book").count() == 0
    finally:
        second.close()


def the_waiting_room(page: Any, url: str, artefacts: Path) -> None:
    page.goto(url)
    page.wait_for_selector('main#room[data-phase="waiting"]')
    assert page.locator("#join").count() == 0
    assert page.locator("#agent-name").count() == 0  # nobody is named before admission
    no_sideways_scroll(page)
    accessible(page, "waiting", artefacts)


def admitted_without_a_reload(page: Any, api: httpx.Client, booking_id: str) -> None:
    """Bind the call to an agent, who admits the customer: the join link (and the agent's
    name) appears in the open page, which was not loaded again."""
    page.evaluate("() => { window.stillThisDocument = true; }")
    bound = ok(api.post("/v1/bookings/bind", json={"lead_minutes": 30}))
    assert [b["booking_id"] for b in bound["bound"]] == [booking_id], bound
    agent = bound["bound"][0]["agent"]
    admitted = ok(api.post(f"/v1/bookings/{booking_id}/admit", json={"agent_id": agent}))
    assert admitted["admitted_by"] == agent and admitted["admitted_at"] is not None

    join = page.wait_for_selector("a#join", timeout=30_000)
    assert join is not None
    assert join.get_attribute("href") == MEETING.format(booking_id=booking_id)
    assert page.evaluate("() => window.stillThisDocument === true"), "the page was reloaded"
    assert page.locator("main#room").get_attribute("data-phase") == "admitted"
    assert AGENTS[agent] in page.locator("#agent-name").inner_text()
    no_sideways_scroll(page)


# --------------------------------------------------------------------------- the journey


def test_a_customer_books_waits_and_is_admitted_in_a_real_browser(
    browser: Any, live: Live, artefacts: Path
) -> None:
    with helpdesk(live) as api:
        seed(api, live.clock())
        link = ok(
            api.post(
                "/v1/tickets/ZD-1/call-links",
                json={"capability_id": "net", "timezone": LINK_ZONE, "locale": "en"},
            ),
            201,
        )
        url = link["url"]
        assert url.startswith(f"{live.base}/c/")

        context = browser.new_context(viewport=PHONE, locale="en-US")
        csp_errors: list[str] = []

        def watch(page: Any) -> None:
            def seen(message: Any) -> None:
                if "Content Security Policy" in message.text:
                    csp_errors.append(message.text)

            page.on("console", seen)

        context.on("page", watch)
        try:
            page = context.new_page()
            picker_in_the_links_zone(page, url, artefacts)
            start = pick_the_first_start_in(page, CUSTOMER_ZONE, live.clock())
            book_and_confirm(page, start, artefacts)

            booked = ok(api.get(f"/v1/call-links/{link['id']}"))
            booking_id = booked["booking_id"]
            assert booked["status"] == "booked" and booking_id
            call = ok(api.get(f"/v1/bookings/{booking_id}"))
            assert datetime.fromisoformat(call["start"]) == start

            another_tab_shows_the_booking(context, url)
            live.clock.jump_to(start - timedelta(minutes=5))  # the room opens 10 minutes before
            the_waiting_room(page, url, artefacts)
            admitted_without_a_reload(page, api, booking_id)
            assert csp_errors == [], csp_errors
        finally:
            context.close()
