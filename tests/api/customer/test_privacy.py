"""Privacy: the customer's pages never name an agent before admission.

A booked call bound to an agent whose id, name and team carry a sentinel
(``SENTINEL-AGENT-…``): every /c page, static file, header, the .ics, ``/status`` and the
event stream are walked before the room opens, in the waiting room and after admission, and
none says the sentinel; after admission, only the agent's display name appears, and only where
the tenant allows it (``call_room.show_agent_name``). On SQLite and PostgreSQL, against the
real server (the event stream needs one).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select, update

from api.customer import stream
from api.db.engine import make_session_factory
from api.db.models import Call
from api.main import create_app
from api.settings import Settings
from tests.api.bookings.test_bookings import DAY
from tests.api.conftest import As, FakeClock, ticket_body
from tests.api.customer.conftest import Link, book, issue, serving

SENTINEL = "sentinel-agent"  # looked for case-insensitively
AGENTS = {
    "SENTINEL-AGENT-ana@example.com": "SENTINEL-AGENT-NAME Ana Lopez",
    "SENTINEL-AGENT-ben@example.com": "SENTINEL-AGENT-NAME Ben Okafor",
}
TEAM = "SENTINEL-AGENT-team"
JOIN = "https://meet.example.com/support-{booking_id}"
WAITING = datetime.fromisoformat("2026-03-02T08:55:00+00:00")  # the room opens at 08:50


def sentinel_org(c: As, *, show_agent_name: bool) -> None:
    assert c.post("/v1/skills", json={"id": "networking"}).status_code == 201
    assert c.post("/v1/teams", json={"id": TEAM}).status_code == 201
    for agent, name in AGENTS.items():
        body = {"id": agent, "name": name, "team": TEAM, "skills": {"networking": 3}}
        assert c.post("/v1/agents", json=body).status_code == 201
        shift = {"agent": agent, "start": f"{DAY}09:00:00Z", "end": f"{DAY}17:00:00Z"}
        assert c.post("/v1/shifts", json=shift).status_code == 201
    cap = {
        "id": "net",
        "requirements": {"networking": 2},
        "call_minutes": 30,
        "granularity_minutes": 30,
        "min_notice_minutes": 60,
    }
    assert c.post("/v1/capabilities", json=cap).status_code == 201
    ticket = {"team": TEAM, "required_skills": {"networking": 2}, "created_at": f"{DAY}07:00:00Z"}
    assert c.put("/v1/tickets/ZD-1", json=ticket_body(ticket)).status_code == 201
    room = {"show_agent_name": show_agent_name, "meeting_url_template": JOIN}
    r = c.put("/v1/policies", json={"call_room": room})
    assert r.status_code == 200, r.text


def booked_and_bound(c: As, client: TestClient, db: Engine) -> tuple[Link, Call]:
    link = issue(c)
    assert book(client, link).status_code == 303
    r = c.post("/v1/bookings/bind", json={"lead_minutes": 120})
    assert r.status_code == 200, r.text
    with make_session_factory(db)() as session:
        call = session.scalars(select(Call)).one()
    assert call.bound_agent in AGENTS  # the scenario is what the test is about
    return link, call


def admit(db: Engine, call: Call, at: datetime) -> None:
    # Set on the row directly: the agents' admission API (POST /v1/bookings/{id}/admit) is
    # another helper's work; the page only reads admitted_at / admitted_by.
    with make_session_factory(db)() as session:
        session.execute(
            update(Call)
            .where(Call.id == call.id)
            .values(admitted_at=at, admitted_by=call.bound_agent)
        )
        session.commit()


def sse(http: httpx.Client, path: str, events: int) -> str:
    """The first ``events`` messages (events and heartbeat comments) of ``path``'s stream."""
    seen: list[str] = []
    with http.stream("GET", path) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        seen.append(json.dumps(dict(r.headers)))
        block: list[str] = []
        for line in r.iter_lines():
            if line:
                block.append(line)
                continue
            if block:
                seen.append("\n".join(block))
                block = []
                if len(seen) > events:
                    break
    return "\n".join(seen)


def crawl(http: httpx.Client, link: Link) -> str:
    """Everything a customer (or their browser) can fetch through the link, with headers."""
    out: list[str] = []
    for path in (
        link.path,
        f"{link.path}?tz=America/New_York&lang=en",
        f"{link.path}/reschedule",
        f"{link.path}/call.ics",
        f"{link.path}/status",
        "/c/static/customer.css",
        "/c/static/room.js",
    ):
        r = http.get(path)
        assert r.status_code == 200, (path, r.status_code)
        out.append(json.dumps(dict(r.headers)))
        out.append(r.text)
    out.append(sse(http, f"{link.path}/events", 3))
    return "\n".join(out)


@pytest.fixture
def fast_stream(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(stream, "POLL_SECONDS", 0.05)
    monkeypatch.setattr(stream, "HEARTBEAT_SECONDS", 0.1)
    monkeypatch.setattr(stream, "MAX_SECONDS", 5.0)


@pytest.fixture
def server(settings: Settings, clock: FakeClock) -> Iterator[httpx.Client]:
    with (
        serving(create_app(settings, clock=clock)) as base,
        httpx.Client(base_url=base, timeout=20) as http,
    ):
        yield http


@pytest.mark.usefixtures("fast_stream")
@pytest.mark.parametrize("show_agent_name", [True, False], ids=["name-shown", "name-hidden"])
def test_no_agent_is_named_before_admission_and_only_the_name_after(
    a: As,
    client: TestClient,
    db: Engine,
    clock: FakeClock,
    server: httpx.Client,
    show_agent_name: bool,
) -> None:
    sentinel_org(a, show_agent_name=show_agent_name)
    link, call = booked_and_bound(a, client, db)
    assert call.bound_agent is not None
    name = AGENTS[call.bound_agent]

    before = crawl(server, link)  # confirmation: the room is not open yet
    assert 'id="confirmation"' in before
    assert SENTINEL not in before.lower()

    clock.now = WAITING
    waiting = crawl(server, link)
    assert 'data-phase="waiting"' in waiting and '"phase":"waiting"' in waiting
    assert SENTINEL not in waiting.lower()
    assert "meet.example.com" not in waiting  # the join URL waits for admission too

    admit(db, call, WAITING)
    after = crawl(server, link)
    assert 'data-phase="admitted"' in after
    assert f'<a id="join" href="https://meet.example.com/support-{call.id}"' in after
    if show_agent_name:
        assert f'<strong id="agent-name">{name}</strong>' in after
        assert f'"agent_name":"{name}"' in after  # /status and the stream
        after = after.replace(name, "")
    else:
        # (room.js, crawled too, knows the field's name: the JSON key is what must not come)
        assert 'id="agent-name"' not in after and '"agent_name"' not in after
    assert SENTINEL not in after.lower()
