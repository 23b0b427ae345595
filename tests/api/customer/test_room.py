"""The waiting room's event stream against the real server, on SQLite and PostgreSQL: it
tells the phase at once, keeps the connection alive with comments, tells admission (with the
join URL) when it happens, ends when the client goes away, when the call is cancelled, and
after its longest life."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import datetime

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select, update

from api.customer import stream
from api.db.engine import make_session_factory
from api.db.models import Call
from api.main import create_app
from api.settings import Settings
from tests.api.conftest import As, FakeClock
from tests.api.customer.conftest import Link, book, issue, serving

WAITING = datetime.fromisoformat("2026-03-02T08:55:00+00:00")
JOIN = "https://meet.example.com/support-{booking_id}"


@pytest.fixture(autouse=True)
def fast_stream(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(stream, "POLL_SECONDS", 0.05)
    monkeypatch.setattr(stream, "HEARTBEAT_SECONDS", 0.2)
    monkeypatch.setattr(stream, "MAX_SECONDS", 30.0)


@pytest.fixture
def served(settings: Settings, clock: FakeClock) -> Iterator[tuple[FastAPI, httpx.Client]]:
    app = create_app(settings, clock=clock)
    with serving(app) as base, httpx.Client(base_url=base, timeout=20) as http:
        yield app, http


def waiting_link(a: As, client: TestClient, clock: FakeClock) -> tuple[Link, str]:
    assert a.put("/v1/policies", json={"call_room": {"meeting_url_template": JOIN}}).is_success
    link = issue(a)
    assert book(client, link).status_code == 303
    booking = a.get("/v1/bookings").json()["items"][0]["id"]
    clock.now = WAITING
    return link, booking


def messages(r: httpx.Response) -> Iterator[tuple[str, str]]:
    """("phase", data JSON) per event and ("comment", text) per comment, as they come."""
    block: list[str] = []
    for line in r.iter_lines():
        if line:
            block.append(line)
            continue
        if not block:
            continue
        if all(line.startswith(":") for line in block):
            yield "comment", block[0][1:].strip()
        else:
            fields = dict(line.split(": ", 1) for line in block)
            yield fields["event"], fields["data"]
        block = []


def wait_until(check: object, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_the_stream_tells_admission_and_ends_when_the_client_leaves(
    org_a: As,
    client: TestClient,
    clock: FakeClock,
    db: Engine,
    served: tuple[FastAPI, httpx.Client],
) -> None:
    app, http = served
    link, booking = waiting_link(org_a, client, clock)
    streams = app.state.customer_streams
    with http.stream("GET", f"{link.path}/events") as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        got = messages(r)
        assert next(got) == ("phase", '{"phase":"waiting"}')
        assert next(got)[0] == "comment"  # the heartbeat, while nothing changes
        assert streams.active == 1
        with make_session_factory(db)() as session:
            session.execute(
                update(Call).where(Call.id == booking).values(admitted_at=WAITING, admitted_by="x")
            )
            session.commit()
        event = next(e for e in got if e[0] == "phase")
        assert json.loads(event[1]) == {
            "phase": "admitted",
            "join_url": f"https://meet.example.com/support-{booking}",
        }
    # The client went away: the stream notices within a poll or two and ends.
    wait_until(lambda: streams.active == 0)
    assert streams.opened == 1


def test_the_stream_ends_when_the_call_is_cancelled(
    org_a: As, client: TestClient, clock: FakeClock, served: tuple[FastAPI, httpx.Client]
) -> None:
    app, http = served
    link, booking = waiting_link(org_a, client, clock)
    with http.stream("GET", f"{link.path}/events") as r:
        got = messages(r)
        assert next(got) == ("phase", '{"phase":"waiting"}')
        assert org_a.post(f"/v1/bookings/{booking}/cancel").status_code == 200
        rest = list(got)  # ends by itself: the server closed the stream
    assert ("phase", '{"phase":"cancelled"}') in rest
    assert rest[-1] == ("phase", '{"phase":"cancelled"}')
    wait_until(lambda: app.state.customer_streams.active == 0)


def test_the_stream_ends_after_its_longest_life(
    org_a: As,
    client: TestClient,
    clock: FakeClock,
    served: tuple[FastAPI, httpx.Client],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(stream, "MAX_SECONDS", 0.5)
    _, http = served
    link, _ = waiting_link(org_a, client, clock)
    started = time.monotonic()
    with http.stream("GET", f"{link.path}/events") as r:
        got = list(messages(r))
    assert got[0] == ("phase", '{"phase":"waiting"}')
    assert 0.4 < time.monotonic() - started < 10
    assert {kind for kind, _ in got[1:]} <= {"comment"}


def test_status_says_the_same_as_the_stream(
    org_a: As, client: TestClient, clock: FakeClock, db: Engine
) -> None:
    link, booking = waiting_link(org_a, client, clock)
    assert client.get(f"{link.path}/status").json() == {"phase": "waiting"}
    with make_session_factory(db)() as session:
        session.execute(update(Call).values(admitted_at=WAITING, admitted_by="x"))
        session.commit()
        assert session.scalars(select(Call.id)).one() == booking
    assert client.get(f"{link.path}/status").json() == {
        "phase": "admitted",
        "join_url": f"https://meet.example.com/support-{booking}",
    }
    page = client.get(link.path).text
    assert f'<a id="join" href="https://meet.example.com/support-{booking}"' in page
    assert 'id="agent-name"' not in page  # show_agent_name is off by default
