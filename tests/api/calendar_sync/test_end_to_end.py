"""End to end: the real connectors (google-api-python-client, msal + requests, httpx for ICS)
against the fake provider servers, driven through the service exactly as production runs it --
connections made with ``POST /v1/calendar-connections``, synced by the worker's jobs, read back
through the API, on SQLite and PostgreSQL.

- **Privacy**: every event in the fakes carries sentinel strings in its title, body,
  attendees, location and organiser. After a full and an incremental sync, and the write-back
  of a bound call, no sentinel is in any row of any table (reflected, not listed by hand), in
  any log record of any logger at DEBUG, in any API answer the test received, nor in any
  webhook body (the outbox is in the dump; the bodies as delivered are rebuilt with the
  deliverer's own :func:`~api.webhooks.delivery.message_body`). A positive control plants a
  sentinel where it may be stored and proves the scan finds it.
- **Fail closed**: a revoked Google grant (``invalid_grant``) fails the connection, sends
  ``calendar.sync_failed``, leaves the slots of a capability only that agent covers empty and
  the call booked on it unbound (at risk), until new credentials and a good sync; a connection
  never synced yet offers nothing; the same for mirrors older than
  ``calendar_max_staleness_seconds``, announced by housekeeping.
- **Merge, not replace**: an incremental round with no changes writes nothing and frees
  nothing; a 429 with ``Retry-After`` then success is waited out inside the sync job.

The file lives here (not in tests/calendars/) for the service fixtures of tests/api/conftest.py.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import httpx2
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, MetaData, select

from api.bookings.service import DEFAULT_LEAD
from api.calendar_sync import jobs, sync
from api.db.engine import make_session_factory
from api.db.jobs import Job, JobStatus
from api.db.models import BusyInterval
from api.db.webhooks import WebhookEvent, WebhookSubscription
from api.jobs.worker import JobRun, Worker
from api.settings import Settings
from api.webhooks.delivery import message_body
from benchmarks.calendar_fakes.google import FakeGoogle
from benchmarks.calendar_fakes.ics import FakeIcs, event, feed
from benchmarks.calendar_fakes.microsoft import FakeMicrosoft
from calendars import google as google_connector
from tests.api.conftest import T0, As, FakeClock, TenantCtx, ticket_body

H = timedelta(hours=1)
M = timedelta(minutes=1)
DAY = f"{T0.date().isoformat()}T"  # Monday 2026-03-02, T0 is 08:00 UTC
NOON = datetime.fromisoformat(f"{DAY}12:00:00+00:00")

MARK = "sntl7q"  # every sentinel holds it; the scans look for it, case-insensitively
TITLE = "SNTL7Q-title Quarterly salary review"
BODY = "SNTL7Q-body the customer's card number is 4111"
LOCATION = "SNTL7Q-location Room 101"
ATTENDEE = "sntl7q-attendee@example.org"
ORGANISER = "sntl7q-organiser@example.org"

GOOGLE_CAL = "ana@example.com"
MAILBOX = "ben@contoso.example"
ICS_PATH = "/cy-secret-4f1c.ics"
AGENTS = {"google": "ana", "microsoft": "ben", "ics": "cy"}
EVENT_TYPES = [
    "calendar.sync_failed",
    "calendar.sync_recovered",
    "booking.created",
    "booking.agent_bound",
    "booking.at_risk",
]


# --------------------------------------------------------------------------- the world


class Recording(As):
    """A client that keeps the text of every answer it received (privacy scan)."""

    def __init__(self, client: TestClient, key: str, seen: list[str]) -> None:
        super().__init__(client, key)
        self.seen = seen

    def request(self, method: str, url: str, **kwargs: Any) -> httpx2.Response:
        r = super().request(method, url, **kwargs)
        self.seen.append(f"{method} {url} {r.status_code} {r.headers} {r.text}")
        return r


@dataclass
class World:
    a: Recording
    db: Engine
    app: FastAPI
    clock: FakeClock
    settings: Settings
    tenant_id: str
    google: FakeGoogle
    microsoft: FakeMicrosoft
    ics: FakeIcs
    connections: dict[str, str] = field(default_factory=dict)  # provider -> connection id
    google_credentials: dict[str, str] = field(default_factory=dict)
    ics_path: str = ""
    seen: list[str] = field(default_factory=list)

    @property
    def worker(self) -> Worker:
        worker: Worker = self.app.state.job_worker
        return worker

    def run_jobs(self) -> list[JobRun]:
        """Everything due now, as the worker loop would run it; each job succeeded."""
        runs = self.worker.run_until_idle(max_jobs=200)
        for run in runs:
            assert run.status is JobStatus.SUCCEEDED, run
        return runs

    def connection(self, provider: str) -> dict[str, Any]:
        r = self.a.get(f"/v1/calendar-connections/{self.connections[provider]}")
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        return body

    def mirror(self, provider: str) -> list[tuple[Any, ...]]:
        """The connection's busy rows, every column."""
        with make_session_factory(self.db)() as session:
            rows = session.scalars(
                select(BusyInterval)
                .where(
                    BusyInterval.tenant_id == self.tenant_id,
                    BusyInterval.source == sync.source_of(self.connections[provider]),
                )
                .order_by(BusyInterval.id)
            )
            return [
                (r.id, r.agent_id, r.start_at, r.end_at, r.source, r.synced_at, r.updated_at)
                for r in rows
            ]

    def outbox(self) -> list[tuple[str, dict[str, Any]]]:
        with make_session_factory(self.db)() as session:
            rows = session.scalars(
                select(WebhookEvent)
                .where(WebhookEvent.tenant_id == self.tenant_id)
                .order_by(WebhookEvent.created_at, WebhookEvent.id)
            )
            return [(e.type, e.data) for e in rows]

    def results(self, runs: list[JobRun]) -> dict[str, dict[str, Any]]:
        """The sync jobs' results among ``runs``, by connection id."""
        ids = [r.job_id for r in runs if r.kind == jobs.SYNC_JOB]
        with make_session_factory(self.db)() as session:
            found = session.scalars(select(Job).where(Job.id.in_(ids)))
            return {str(j.payload["connection_id"]): dict(j.result or {}) for j in found}

    def failures(self) -> list[tuple[str, str, str]]:
        """(type, connection, reason) of the calendar webhooks in the outbox, in order."""
        return [
            (t, d["connection_id"], d.get("reason") or d.get("recovered_from") or "")
            for t, d in self.outbox()
            if t.startswith("calendar.")
        ]

    def starts(self, capability: str) -> list[str]:
        r = self.a.get(
            f"/v1/capabilities/{capability}/slots",
            params={"from": f"{DAY}08:00:00Z", "to": f"{DAY}18:00:00Z", "tz": "UTC"},
        )
        assert r.status_code == 200, r.text
        return [s["start"] for s in r.json()["slots"]]


def all_slots() -> list[str]:
    """The capability's 30-minute starts on a 09:00-17:00 UTC shift, nobody busy."""
    return [iso(datetime.fromisoformat(f"{DAY}09:00:00+00:00") + n * 30 * M) for n in range(16)]


def iso(moment: datetime) -> str:
    """As the API writes UTC times."""
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.fixture
def all_loggers(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """Every logger at DEBUG, propagating to the capture (restored afterwards)."""
    caplog.set_level(logging.DEBUG)
    saved: dict[str, tuple[int, bool, bool]] = {}
    for name, found in list(logging.root.manager.loggerDict.items()):
        if isinstance(found, logging.Logger):
            saved[name] = (found.level, found.propagate, found.disabled)
            found.setLevel(logging.DEBUG)
            found.propagate = True
            found.disabled = False
    try:
        yield caplog
    finally:
        for name, (level, propagate, disabled) in saved.items():
            logger = logging.getLogger(name)
            logger.setLevel(level)
            logger.propagate = propagate
            logger.disabled = disabled


@pytest.fixture
def world(
    tenant_a: TenantCtx,
    db: Engine,
    app: FastAPI,
    client: TestClient,
    clock: FakeClock,
    settings: Settings,
) -> Iterator[World]:
    google_connector.forget_tokens()
    seen: list[str] = []
    with FakeGoogle() as google, FakeMicrosoft() as microsoft, FakeIcs() as ics:
        yield _world(tenant_a, db, app, client, clock, settings, google, microsoft, ics, seen)
    google_connector.forget_tokens()


def _world(
    tenant: TenantCtx,
    db: Engine,
    app: FastAPI,
    client: TestClient,
    clock: FakeClock,
    settings: Settings,
    google: FakeGoogle,
    microsoft: FakeMicrosoft,
    ics: FakeIcs,
    seen: list[str],
) -> World:
    a = Recording(client, tenant.admin_key, seen)
    w = World(a, db, app, clock, settings, tenant.id, google, microsoft, ics, seen=seen)
    providers = ["google", "microsoft", "ics"]
    assert a.post("/v1/skills", json={"id": "networking"}).status_code == 201
    assert a.post("/v1/teams", json={"id": "support"}).status_code == 201
    for provider in providers:
        agent = AGENTS[provider]
        # One skill per agent: capability ``via-<provider>`` is covered by that agent alone.
        assert a.post("/v1/skills", json={"id": f"only-{agent}"}).status_code == 201
        r = a.post(
            "/v1/agents",
            json={"id": agent, "team": "support", "skills": {"networking": 3, f"only-{agent}": 3}},
        )
        assert r.status_code == 201, r.text
        r = a.post(
            "/v1/shifts",
            json={"agent": agent, "start": f"{DAY}09:00:00Z", "end": f"{DAY}17:00:00Z"},
        )
        assert r.status_code == 201, r.text
        r = a.post(
            "/v1/capabilities",
            json={
                "id": f"via-{provider}",
                "requirements": {f"only-{agent}": 1},
                "call_minutes": 30,
                "granularity_minutes": 30,
                "min_notice_minutes": 60,
                "reserve_share": 0.0,
            },
        )
        assert r.status_code == 201, r.text
    with make_session_factory(db)() as session:
        session.add(
            WebhookSubscription(
                tenant_id=tenant.id,
                id="sub_e2e",
                url="https://hooks.example/e2e",
                event_types=EVENT_TYPES,
                description="",
                enabled=True,
                secret_encrypted="x",
                created_at=T0,
                updated_at=T0,
            )
        )
        session.commit()

    # Google: a meeting at noon, a weekly series, an all-day event, a transparent one.
    google.add_calendar(GOOGLE_CAL, time_zone="Europe/Berlin")
    contents: dict[str, Any] = {
        "summary": TITLE,
        "description": BODY,
        "location": LOCATION,
        "attendees": [ATTENDEE, ORGANISER],
    }
    google.add_event(GOOGLE_CAL, NOON, NOON + H, **contents)
    google.add_recurring(GOOGLE_CAL, NOON + 2 * H, NOON + 3 * H, count=4, **contents)
    google.add_all_day(GOOGLE_CAL, date(2026, 3, 4), date(2026, 3, 5), **contents)
    google.add_event(GOOGLE_CAL, NOON + 4 * H, NOON + 5 * H, transparent=True, **contents)
    w.google_credentials = google.oauth_credentials()
    w.connections["google"] = create(
        a, "google", "ana", [GOOGLE_CAL], google.settings(writeback=True), w.google_credentials
    )

    # Microsoft 365: the same meeting at noon, and one shown as free.
    ms_contents: dict[str, Any] = {
        "subject": TITLE,
        "body": BODY,
        "location": LOCATION,
        "attendees": [ATTENDEE],
        "organizer": ORGANISER,
    }
    microsoft.add_mailbox(MAILBOX)
    microsoft.add_event(MAILBOX, NOON, NOON + H, **ms_contents)
    microsoft.add_event(MAILBOX, NOON + 4 * H, NOON + 5 * H, show_as="free", **ms_contents)
    w.connections["microsoft"] = create(
        a, "microsoft", "ben", ["primary"], microsoft.settings(MAILBOX), microsoft.credentials()
    )

    lines = [
        f"DESCRIPTION:{BODY}",
        f"LOCATION:{LOCATION}",
        f"ATTENDEE;CN=Someone:mailto:{ATTENDEE}",
        f"ORGANIZER:mailto:{ORGANISER}",
    ]
    url = ics.put(
        ICS_PATH,
        feed(
            event("noon@e2e", NOON, NOON + H, summary=TITLE, lines=lines),
            event(
                "weekly@e2e",
                NOON + 2 * H,
                NOON + 3 * H,
                summary=TITLE,
                lines=[*lines, "RRULE:FREQ=WEEKLY;COUNT=4"],
            ),
        ),
    )
    w.connections["ics"] = create(a, "ics", "cy", ["feed"], {}, {"url": url})
    w.ics_path = ICS_PATH
    return w


def create(
    a: As,
    provider: str,
    agent: str,
    calendars: list[str],
    settings: dict[str, Any],
    credentials: dict[str, Any],
) -> str:
    r = a.post(
        "/v1/calendar-connections",
        json={
            "agent_id": agent,
            "provider": provider,
            "calendars": calendars,
            "settings": settings,
            "credentials": credentials,
        },
    )
    assert r.status_code == 201, r.text
    connection_id: str = r.json()["id"]
    return connection_id


# --------------------------------------------------------------------------- privacy scans


def database_dump(engine: Engine) -> tuple[str, dict[str, int]]:
    """Every value of every row of every table the migrations made, as text, and the row
    count per table."""
    meta = MetaData()
    meta.reflect(engine)
    parts: list[str] = []
    counts: dict[str, int] = {}
    with engine.connect() as conn:
        for table in meta.sorted_tables:
            rows = conn.execute(table.select()).all()
            counts[table.name] = len(rows)
            for row in rows:
                for value in row:
                    if isinstance(value, bytes | bytearray | memoryview):
                        parts.append(bytes(value).decode("utf-8", "replace"))
                    else:
                        parts.append(str(value))
    return "\n".join(parts), counts


def log_text(caplog: pytest.LogCaptureFixture) -> str:
    parts = [caplog.text]
    for record in caplog.records:
        parts.append(record.getMessage())
        parts.append(str(record.args))
        if record.exc_text:
            parts.append(record.exc_text)
    return "\n".join(parts)


def webhook_bodies(w: World) -> list[str]:
    """The outbox's events as the deliverer would send them."""
    with make_session_factory(w.db)() as session:
        rows = session.scalars(select(WebhookEvent).where(WebhookEvent.tenant_id == w.tenant_id))
        return [message_body(e.type, e.created_at, e.data) for e in rows]


def assert_no_sentinel(where: str, text: str) -> None:
    at = text.lower().find(MARK)
    assert at < 0, f"a sentinel leaked into {where}: ...{text[max(0, at - 200) : at + 200]}..."


# --------------------------------------------------------------------------- privacy


def test_no_event_contents_reach_the_database_the_logs_the_api_or_webhooks(
    world: World, all_loggers: pytest.LogCaptureFixture
) -> None:
    w, a = world, world.a
    assert {c["status"] for c in a.get("/v1/calendar-connections").json()["items"]} == {"active"}

    # Full sync of every connection (and their push channels), through the worker.
    kinds = {run.kind for run in w.run_jobs()}
    assert "calendar.sync" in kinds
    for provider in w.connections:
        shown = w.connection(provider)
        assert shown["status"] == "active" and shown["blocked"] is False, shown
        assert shown["busy_count"] > 0, shown
    google_rows = w.mirror("google")
    # noon, the four weekly instances, the all-day event; the transparent one is not busy.
    assert len(google_rows) == 6
    assert {(r[2], r[3]) for r in w.mirror("microsoft")} == {(NOON, NOON + H)}
    assert len(w.mirror("ics")) == 5
    free = all_slots()
    busy_noon = {iso(NOON), iso(NOON + 30 * M), iso(NOON + 2 * H), iso(NOON + 150 * M)}
    assert w.starts("via-google") == [s for s in free if s not in busy_noon]
    assert iso(NOON) not in w.starts("via-microsoft")

    # Incremental: one meeting moves, one is deleted, one is added (with contents again).
    first = w.google.events(GOOGLE_CAL)[0]["id"]
    w.google.move_event(GOOGLE_CAL, first, NOON + 6 * H, NOON + 7 * H)
    [all_day] = [e["id"] for e in w.google.events(GOOGLE_CAL) if "date" in e["start"]]
    w.google.delete_event(GOOGLE_CAL, all_day)
    w.microsoft.add_event(
        MAILBOX, NOON - 2 * H, NOON - H, subject=TITLE, body=BODY, location=LOCATION
    )

    moved = event("noon@e2e", NOON + H, NOON + 2 * H, summary=TITLE, lines=[f"LOCATION:{LOCATION}"])
    w.ics.put(ICS_PATH, feed(moved))
    w.clock.advance(seconds=w.settings.calendar_poll_seconds)
    w.run_jobs()
    google_spans = {(r[2], r[3]) for r in w.mirror("google")}
    assert (NOON + 6 * H, NOON + 7 * H) in google_spans and len(google_spans) == 5
    assert (NOON - 2 * H, NOON - H) in {(r[2], r[3]) for r in w.mirror("microsoft")}
    assert {(r[2], r[3]) for r in w.mirror("ics")} == {(NOON + H, NOON + 2 * H)}

    # A call booked on the Google agent, bound just in time and written back to the calendar.
    r = a.put("/v1/tickets/ZD-1", json=ticket_body({"team": "support"}))
    assert r.status_code == 201, r.text
    call_at = NOON + 3 * H  # 15:00 UTC, free
    r = a.post(
        "/v1/bookings",
        json={"capability_id": "via-google", "ticket_id": "ZD-1", "start": iso(call_at)},
    )
    assert r.status_code == 201, r.text
    call = r.json()["id"]
    w.clock.now = call_at - 20 * M
    w.run_jobs()
    assert a.get(f"/v1/bookings/{call}").json()["agent"] == "ana"
    written = [e for e in w.google.events(GOOGLE_CAL) if "switchboardCall" in str(e)]
    assert len(written) == 1, written
    # The next sync reads the service's own event back, and it is not busy time.
    w.clock.advance(seconds=w.settings.calendar_poll_seconds)
    before = len(w.mirror("google"))
    w.run_jobs()
    assert len(w.mirror("google")) == before
    assert a.get(f"/v1/bookings/{call}").json()["agent"] == "ana"

    # Every read an admin or a helpdesk makes.
    for provider in w.connections:
        a.get(f"/v1/calendar-connections/{w.connections[provider]}")
    a.get("/v1/calendar-connections")
    for agent in ("ana", "ben", "cy"):
        a.get("/v1/busy", params={"agent": agent})
    a.get("/v1/busy")
    for provider in w.connections:
        w.starts(f"via-{provider}")
    a.get("/v1/bookings")
    a.get(f"/v1/bookings/{call}")
    a.get("/v1/tickets/ZD-1/history")
    a.get("/v1/jobs")
    a.get("/metrics")

    dump, counts = database_dump(w.db)
    assert counts["busy_intervals"] >= 7 and counts["calendar_connections"] == len(w.connections)
    assert counts["webhook_events"] > 0 and counts["jobs"] > 0
    assert_no_sentinel("the database", dump)
    logs = log_text(all_loggers)
    # The capture really is at DEBUG for the libraries (urllib3 logs each request line there).
    assert any(
        r.levelno == logging.DEBUG and r.name.startswith("urllib3") for r in all_loggers.records
    )
    assert_no_sentinel("the logs", logs)
    assert len(w.seen) > 20
    assert_no_sentinel("an API answer", "\n".join(w.seen))
    bodies = webhook_bodies(w)
    assert any('"booking.agent_bound"' in b for b in bodies)
    assert_no_sentinel("a webhook body", "\n".join(bodies))
    # What the fakes served did carry the sentinels: the scans had something to miss.
    assert MARK in str(w.google.events(GOOGLE_CAL)).lower()
    assert MARK in str(w.microsoft.events(MAILBOX)).lower()

    # Positive control: a sentinel put where the service may store text is found by the scan.
    r = a.post("/v1/agents", json={"id": "dan", "team": "support", "name": f"{TITLE} planted"})
    assert r.status_code == 201, r.text
    with pytest.raises(AssertionError, match="leaked into the database"):
        assert_no_sentinel("the database", database_dump(w.db)[0])


# --------------------------------------------------------------------------- fail closed


def test_a_revoked_google_grant_fails_closed_loudly_and_recovers_with_new_credentials(
    world: World,
) -> None:
    w, a = world, world.a
    google = w.connections["google"]
    w.run_jobs()
    assert w.connection("google")["blocked"] is False
    offered = w.starts("via-google")
    assert offered
    # A call on the Google agent, booked while the calendar is healthy.
    assert a.put("/v1/tickets/ZD-1", json=ticket_body({"team": "support"})).status_code == 201
    call_at = NOON + 3 * H
    r = a.post(
        "/v1/bookings",
        json={"capability_id": "via-google", "ticket_id": "ZD-1", "start": iso(call_at)},
    )
    assert r.status_code == 201, r.text
    call = r.json()["id"]

    # The user revoked the grant: the token endpoint answers invalid_grant.
    w.google.revoke(w.google_credentials["refresh_token"])
    w.clock.advance(seconds=w.settings.calendar_poll_seconds)
    results = w.results(w.run_jobs())
    assert results[google]["outcome"] == "credential_error"
    shown = w.connection("google")
    assert shown["status"] == "failed" and shown["blocked"] is True, shown
    assert "invalid_grant" in (shown["failure"] or "") + (shown["last_error"] or ""), shown
    assert google in shown["block_reason"]
    assert w.failures() == [("calendar.sync_failed", google, "credential")]
    assert w.connection("microsoft")["blocked"] is False
    mirrored = len(w.mirror("google"))
    assert mirrored > 0  # what was mirrored stays: busy is never freed by a failure

    assert w.starts("via-google") == []  # never offered
    assert w.starts("via-microsoft")  # the others are not affected
    # Just in time for the call: the polls fail again (announced once), and with the engine's
    # fail-closed rules the call is not bound to the blocked agent.
    w.clock.now = call_at - DEFAULT_LEAD + M
    w.run_jobs()
    assert w.failures() == [("calendar.sync_failed", google, "credential")]
    bound = a.get(f"/v1/bookings/{call}").json()
    assert bound["agent"] is None and bound["at_risk"] is True, bound
    assert w.starts("via-google") == []

    # New credentials: failed until a sync with them succeeds, then offered again.
    fresh = w.google.oauth_credentials()
    r = a.patch(f"/v1/calendar-connections/{google}", json={"credentials": fresh})
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "failed" and r.json()["blocked"] is True
    w.run_jobs()
    shown = w.connection("google")
    assert shown["status"] == "active" and shown["blocked"] is False, shown
    assert shown["failure"] is None and shown["consecutive_failures"] == 0
    assert w.failures() == [
        ("calendar.sync_failed", google, "credential"),
        ("calendar.sync_recovered", google, "credential"),
    ]
    assert len(w.mirror("google")) == mirrored
    assert w.starts("via-google")
    assert a.get(f"/v1/bookings/{call}").json()["agent"] == "ana"


def test_an_agent_whose_calendar_never_synced_is_not_offered(world: World) -> None:
    w = world
    for provider in w.connections:
        assert w.connection(provider)["blocked"] is True
        assert w.starts(f"via-{provider}") == []
    w.run_jobs()
    for provider in w.connections:
        assert w.starts(f"via-{provider}"), provider


def test_a_stale_mirror_fails_closed_and_the_next_good_sync_recovers_it(world: World) -> None:
    w = world
    w.run_jobs()
    assert all(w.starts(f"via-{p}") for p in w.connections)
    # Nobody syncs for longer than the staleness limit (the worker was down).
    w.clock.advance(seconds=w.settings.calendar_max_staleness_seconds + 60)
    for provider in w.connections:
        shown = w.connection(provider)
        assert shown["blocked"] is True and "stale" in shown["block_reason"], shown
        assert shown["status"] == "active"
    assert all(w.starts(f"via-{p}") == [] for p in w.connections)
    # Housekeeping announces each stale mirror once.
    w.worker.housekeep()
    w.worker.housekeep()
    stale = sorted((c, r) for t, c, r in w.failures() if t == "calendar.sync_failed")
    assert stale == sorted((c, "stale") for c in w.connections.values())
    # The worker is back: the polls are due, each succeeds, each recovers loudly.
    results = w.results(w.run_jobs())
    assert {results[c]["outcome"] for c in w.connections.values()} == {"ok"}
    for provider in w.connections:
        shown = w.connection(provider)
        assert shown["blocked"] is False and shown["lag_seconds"] == 0, shown
    recovered = sorted(c for t, c, _ in w.failures() if t == "calendar.sync_recovered")
    assert recovered == sorted(w.connections.values())
    later = w.clock.now + timedelta(hours=1)
    r = w.a.get(
        "/v1/capabilities/via-google/slots",
        params={"from": iso(later), "to": f"{DAY}18:00:00Z", "tz": "UTC"},
    )
    assert r.status_code == 200 and r.json()["slots"], r.text


# --------------------------------------------------------------------------- merge, not replace


def test_a_quiet_incremental_round_frees_nothing_and_a_429_is_waited_out(world: World) -> None:
    w = world
    results = w.results(w.run_jobs())
    assert {r["outcome"] for r in results.values()} == {"ok"}
    before = {p: w.mirror(p) for p in w.connections}
    busy = w.a.get("/v1/busy").json()["items"]
    counts = {p: w.connection(p)["busy_count"] for p in w.connections}
    lists = w.google.requests["events.list"]
    deltas = w.microsoft.requests["delta"]

    # A round in which nothing changed: asked incrementally, nothing written, nothing freed.
    w.clock.advance(seconds=w.settings.calendar_poll_seconds)
    results = w.results(w.run_jobs())
    for provider, connection in w.connections.items():
        got = results[connection]
        assert got["outcome"] == "ok", got
        assert (got["inserted"], got["updated"], got["deleted"]) == (0, 0, 0), got
        assert got["busy_count"] == counts[provider]
        assert w.mirror(provider) == before[provider]  # synced_at and updated_at too
    assert w.google.requests["events.list"] == lists + 1
    assert w.google.log[-1].query.get("syncToken")  # incremental, not a fresh listing
    assert w.microsoft.requests["delta"] == deltas + 1
    assert w.a.get("/v1/busy").json()["items"] == busy

    # Throttled: 429 with Retry-After: 1, then the answer. The sync waits and succeeds.
    w.google.fail_next(1, 429, retry_after="1")
    w.microsoft.throttle(1, retry_after="1")
    w.ics.fail(w.ics_path, 429, retry_after="1")
    w.clock.advance(seconds=w.settings.calendar_poll_seconds)
    started = time.monotonic()
    results = w.results(w.run_jobs())
    waited = time.monotonic() - started
    # One second for each provider: without Retry-After the backoff's first wait is under 0.5 s.
    assert waited >= len(w.connections), waited
    assert {r["outcome"] for r in results.values()} == {"ok"}
    assert w.google.requests["events.list"] == lists + 3  # the 429 and its retry
    for provider in w.connections:
        shown = w.connection(provider)
        assert shown["last_error"] is None and shown["consecutive_failures"] == 0, shown
        assert w.mirror(provider) == before[provider]
    assert w.failures() == []
