"""Webhooks through the real HTTP stack, on SQLite and PostgreSQL.

Deliveries go to a real HTTP receiver on 127.0.0.1 (a threaded ``http.server`` scripted to fail
first), driven by ``Deliverer.run_once`` with the test's clock and a seeded rng: no sleeping.
Signatures are checked with the ``standardwebhooks`` reference library, whose ``verify`` compares
the timestamp with the real time, so the fake clock starts at the real "now".
"""

from __future__ import annotations

import dataclasses
import json
import random
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session
from standardwebhooks import Webhook

from api import events
from api.db.webhooks import WebhookDelivery, WebhookEvent, WebhookSubscription
from api.main import create_app
from api.settings import Environment, Settings
from api.webhooks.delivery import Deliverer
from tests.api.conftest import As, FakeClock, TenantCtx, assert_problem, make_tenant, ticket_body

MAX_ATTEMPTS = 4


# --- a scripted receiver ---------------------------------------------------------------------


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """Answers POSTs with the scripted (status, headers) in order, then 200; records each."""

    port: int = 0
    script: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    got_one: threading.Event = field(default_factory=threading.Event)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def fail_next(self, *statuses: int | tuple[int, dict[str, str]]) -> None:
        for s in statuses:
            self.script.append(s if isinstance(s, tuple) else (s, {}))

    def ids(self) -> list[str]:
        return [r.headers["webhook-id"] for r in self.received]


def _handler(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            with receiver.lock:
                receiver.received.append(
                    Received({k.lower(): v for k, v in self.headers.items()}, body)
                )
                status, headers = receiver.script.pop(0) if receiver.script else (200, {})
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("content-length", "2")
            self.end_headers()
            self.wfile.write(b"ok")
            receiver.got_one.set()

        def log_message(self, format: str, *args: Any) -> None:
            pass  # keep test output clean

    return Handler


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    rec = Receiver()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(rec))
    server.daemon_threads = True
    rec.port = server.server_address[1]
    # serve_forever checks for shutdown() once per poll interval (0.5 s by default): every test
    # would wait up to that long in teardown (27 s over the file), for nothing.
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    yield rec
    server.shutdown()
    server.server_close()
    thread.join(5)


# --- app, clock and deliverer ----------------------------------------------------------------


def _real_now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(_real_now())


def _settings(db_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": db_url,
        "environment": Environment.TEST,
        "webhook_allow_private_urls": True,
        "webhook_allow_http": True,
        "webhook_max_attempts": MAX_ATTEMPTS,
        "webhook_backoff_base_seconds": 10.0,
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
def settings(db: Engine, db_url: str) -> Settings:
    return _settings(db_url)


class FakeDNS:
    """A resolver the test controls (also changes mid-test, like DNS rebinding)."""

    def __init__(self, table: dict[str, list[str]]) -> None:
        self.table = table

    def __call__(self, host: str, port: int) -> list[str]:
        if host not in self.table:
            raise OSError(f"unknown host {host}")
        return self.table[host]


@pytest.fixture
def dns(app: FastAPI) -> FakeDNS:
    resolver = FakeDNS({"hooks.example.test": ["93.184.216.34"]})
    app.state.webhook_resolver = resolver
    return resolver


def make_deliverer(
    app: FastAPI, settings: Settings, clock: FakeClock, resolver: Any = None, seed: int = 7
) -> Deliverer:
    return Deliverer(
        app.state.session_factory,
        settings,
        clock=clock,
        rng=random.Random(seed),
        resolver=resolver,
    )


@pytest.fixture
def deliverer(
    client: TestClient, app: FastAPI, settings: Settings, clock: FakeClock
) -> Iterator[Deliverer]:
    with make_deliverer(app, settings, clock) as d:
        yield d


def subscribe(
    who: As, url: str, types: tuple[str, ...] = ("ticket.assigned",), **extra: Any
) -> tuple[str, str]:
    r = who.post("/v1/webhooks", json={"url": url, "event_types": list(types), **extra})
    assert r.status_code == 201, r.text
    return r.json()["id"], r.json()["secret"]


def sample_data(app: FastAPI, type: str, **data: Any) -> dict[str, Any]:
    """A payload ``type``'s documented schema accepts, with ``data``'s fields over it."""
    if type == "queue.optimized":
        base: dict[str, Any] = {
            "job_id": "job_1",
            "team_id": None,
            "changes": 0,
            "skipped": 0,
            "status": "OPTIMAL",
            "objective": None,
        }
    else:
        _, payload = events.ticket_step_notice(
            {"ticket_id": "T-1", "kind": "assigned", "at": app.state.clock(), "actor": "key_1"}
        )
        owner = events.ticket_owner_payload(
            ticket_id="T-1",
            agent_id="ann",
            team_id="support",
            from_agent_id=None,
            from_team_id="support",
            source="realtime",
            reasons=[],
        )
        base = {**payload, **owner}
    return {**base, **data}


def emit(app: FastAPI, tenant_id: str, type: str = "ticket.assigned", **data: Any) -> str | None:
    """Emit through the production function in its own committed unit of work."""
    with app.state.session_factory() as session:
        events.emit(
            session=session,
            tenant_id=tenant_id,
            type=type,
            data=sample_data(app, type, **data),
            now=app.state.clock(),
        )
        session.commit()
        ids = session.scalars(
            select(WebhookEvent.id)
            .where(WebhookEvent.tenant_id == tenant_id)
            .order_by(WebhookEvent.id.desc())
        ).all()
    return ids[0] if ids else None


def deliveries(who: As, webhook_id: str) -> list[dict[str, Any]]:
    r = who.get(f"/v1/webhooks/{webhook_id}/deliveries")
    assert r.status_code == 200, r.text
    items: list[dict[str, Any]] = r.json()["items"]
    return items


def advance_to(clock: FakeClock, iso: str) -> None:
    clock.now = max(clock.now, datetime.fromisoformat(iso))


# --- subscriptions ---------------------------------------------------------------------------


def test_secret_is_shown_once_and_stored_encrypted(
    a: As, tenant_a: TenantCtx, db: Engine, receiver: Receiver
) -> None:
    r = a.post(
        "/v1/webhooks",
        json={"url": receiver.url, "event_types": ["ticket.assigned"], "description": "crm"},
    )
    assert r.status_code == 201, r.text
    created = r.json()
    secret = created["secret"]
    assert secret.startswith("whsec_") and len(secret) > 40
    Webhook(secret)  # the reference library accepts it as a key
    wid = created["id"]
    shown = [a.get(f"/v1/webhooks/{wid}").json(), *a.get("/v1/webhooks").json()["items"]]
    patched = a.patch(f"/v1/webhooks/{wid}", json={"description": "crm v2"})
    shown.append(patched.json())
    for body in shown:
        assert "secret" not in body and secret not in json.dumps(body)
    with Session(db) as s:
        stored = s.scalars(select(WebhookSubscription.secret_encrypted)).one()
    assert secret not in stored and secret.removeprefix("whsec_") not in stored


def test_crud_and_bad_bodies(a: As, receiver: Receiver) -> None:
    wid, _ = subscribe(a, receiver.url, ("ticket.assigned", "queue.optimized"))
    r = a.patch(f"/v1/webhooks/{wid}", json={"enabled": False, "event_types": ["booking.created"]})
    assert r.status_code == 200, r.text
    assert r.json()["enabled"] is False and r.json()["event_types"] == ["booking.created"]
    assert a.get(f"/v1/webhooks/{wid}").json()["enabled"] is False

    assert_problem(
        a.post("/v1/webhooks", json={"url": receiver.url, "event_types": []}), 422, "event_types"
    )
    assert_problem(
        a.post("/v1/webhooks", json={"url": receiver.url, "event_types": ["ticket.eaten"]}),
        422,
        "event_types[0]",
    )
    assert_problem(
        a.post(
            "/v1/webhooks",
            json={"url": receiver.url, "event_types": ["ticket.assigned", "ticket.assigned"]},
        ),
        422,
        "event_types",
    )
    assert_problem(a.patch(f"/v1/webhooks/{wid}", json={"url": None}), 422, "url")

    assert a.delete(f"/v1/webhooks/{wid}").status_code == 204
    assert_problem(a.get(f"/v1/webhooks/{wid}"), 404)
    assert a.get("/v1/webhooks").json()["items"] == []


def test_helpdesk_scope_required(tenant_a: TenantCtx, receiver: Receiver) -> None:
    planner = tenant_a.key("planner")
    assert_problem(planner.get("/v1/webhooks"), 403)
    helpdesk = tenant_a.key("helpdesk")
    subscribe(helpdesk, receiver.url)


# --- URL validation --------------------------------------------------------------------------


@pytest.fixture
def strict(
    db: Engine, db_url: str, clock: FakeClock
) -> Iterator[tuple[FastAPI, TenantCtx, Settings]]:
    """An app with the production defaults: https only, public addresses only."""
    settings = Settings(database_url=db_url, environment=Environment.TEST)
    app = create_app(settings, clock=clock)
    app.state.webhook_resolver = FakeDNS(
        {
            "hooks.example.test": ["93.184.216.34"],
            "sneaky.example.test": ["93.184.216.34", "10.1.2.3"],
            "localhost": ["127.0.0.1", "::1"],
        }
    )
    with TestClient(app) as c:
        tenant = make_tenant(db, c, "Strict")
        yield app, tenant, settings


BAD_URLS = [
    ("https://127.0.0.1/hook", "loopback"),
    ("https://localhost:8443/hook", "loopback"),
    ("https://[::1]/hook", "loopback"),
    ("https://10.0.0.7/hook", "private"),
    ("https://192.168.1.20/hook", "private"),
    ("https://169.254.169.254/latest/meta-data", "link-local"),
    ("https://[fe80::1]/hook", "link-local"),
    ("https://224.0.0.251/hook", "multicast"),
    ("https://0.0.0.0/hook", "unspecified"),
    ("https://[::ffff:10.0.0.1]/hook", "private"),
    # Every address is checked, and a name is refused without saying what it resolves to.
    ("https://sneaky.example.test/hook", "public addresses only"),
    ("https://nowhere.example.test/hook", "public addresses only"),
    ("http://hooks.example.test/hook", "https"),
    ("ftp://hooks.example.test/hook", "https"),
    ("https://user:pw@hooks.example.test/hook", "password"),
    ("not a url", "https"),
]


def test_bad_urls_are_422_naming_url_and_reason(
    strict: tuple[FastAPI, TenantCtx, Settings],
) -> None:
    # One app for every case (a loop, not parametrize): building an app per case is the cost.
    who = strict[1].admin
    for url, reason in BAD_URLS:
        r = who.post("/v1/webhooks", json={"url": url, "event_types": ["ticket.assigned"]})
        body = assert_problem(r, 422, "url")
        assert reason in body["errors"][0]["reason"], (url, body)
    assert who.get("/v1/webhooks").json()["items"] == []


def test_refusing_a_local_receiver_names_the_setting_that_allows_it(
    strict: tuple[FastAPI, TenantCtx, Settings],
) -> None:
    """A developer pointing a webhook at a receiver on their machine learns what to set."""
    who = strict[1].admin
    local = {
        "http://127.0.0.1:9000/hook": "SWITCHBOARD_WEBHOOK_ALLOW_HTTP",
        "http://localhost:9000/hook": "SWITCHBOARD_WEBHOOK_ALLOW_HTTP",
        "https://127.0.0.1:9443/hook": "SWITCHBOARD_WEBHOOK_ALLOW_PRIVATE_URLS",
        "https://localhost:9443/hook": "SWITCHBOARD_WEBHOOK_ALLOW_PRIVATE_URLS",
        "https://10.0.0.7/hook": "SWITCHBOARD_WEBHOOK_ALLOW_PRIVATE_URLS",
    }
    for url, setting in local.items():
        r = who.post("/v1/webhooks", json={"url": url, "event_types": ["ticket.assigned"]})
        body = assert_problem(r, 422, "url")
        assert setting in body["errors"][0]["reason"], (url, body)


def test_public_urls_pass_and_patch_is_checked_too(
    strict: tuple[FastAPI, TenantCtx, Settings],
) -> None:
    who = strict[1].admin
    wid, _ = subscribe(who, "https://hooks.example.test/hook")
    subscribe(who, "https://93.184.216.34:8443/x?y=1")
    assert_problem(who.patch(f"/v1/webhooks/{wid}", json={"url": "https://10.0.0.1/"}), 422, "url")
    assert who.get(f"/v1/webhooks/{wid}").json()["url"] == "https://hooks.example.test/hook"


def test_private_targets_allowed_when_operator_says_so(a: As, dns: FakeDNS) -> None:
    # The default fixture's settings allow private addresses and http (a local receiver).
    subscribe(a, "http://127.0.0.1:9/hook")
    subscribe(a, "http://10.0.0.7/hook")


def test_dns_rebinding_is_refused_at_delivery(
    strict: tuple[FastAPI, TenantCtx, Settings], receiver: Receiver, clock: FakeClock
) -> None:
    app, tenant, settings = strict
    who = tenant.admin
    dns: FakeDNS = app.state.webhook_resolver
    wid, _ = subscribe(who, f"https://hooks.example.test:{receiver.port}/hook")
    emit(app, tenant.id)
    dns.table["hooks.example.test"] = ["127.0.0.1"]  # the name now points inside
    with make_deliverer(app, settings, clock, resolver=dns) as d:
        stats = d.run_once()
    assert stats.attempted == 1 and stats.retrying == 1
    assert receiver.received == []
    [delivery] = deliveries(who, wid)
    assert delivery["status"] == "pending"
    assert "destination refused" in delivery["last_error"]
    assert "loopback" in delivery["attempt_log"][0]["error"]


def test_delivery_goes_to_the_checked_address_with_the_original_host(
    a: As,
    tenant_a: TenantCtx,
    app: FastAPI,
    settings: Settings,
    clock: FakeClock,
    receiver: Receiver,
) -> None:
    dns = FakeDNS({"receiver.example.test": ["127.0.0.1"]})
    app.state.webhook_resolver = dns
    subscribe(a, f"http://receiver.example.test:{receiver.port}/hook")
    emit(app, tenant_a.id)
    with make_deliverer(app, settings, clock, resolver=dns) as d:
        assert d.run_once().delivered == 1
    assert receiver.received[0].headers["host"] == f"receiver.example.test:{receiver.port}"


# --- delivery --------------------------------------------------------------------------------


def test_delivery_is_signed_standard_webhooks_style(
    a: As,
    tenant_a: TenantCtx,
    app: FastAPI,
    deliverer: Deliverer,
    receiver: Receiver,
    clock: FakeClock,
) -> None:
    wid, secret = subscribe(a, receiver.url)
    event_id = emit(app, tenant_a.id, ticket_id="T-9", agent_id="ann", at=clock.now)
    assert event_id is not None
    assert receiver.received == []  # nothing is sent until the deliverer runs

    stats = deliverer.run_once()
    assert (stats.events_dispatched, stats.deliveries_created, stats.delivered) == (1, 1, 1)
    [got] = receiver.received
    payload = Webhook(secret).verify(got.body, got.headers)  # raises if the signature is wrong
    assert payload["type"] == "ticket.assigned"
    assert payload["data"] == events.normalize_data(
        sample_data(app, "ticket.assigned", ticket_id="T-9", agent_id="ann", at=clock.now)
    )
    assert payload["data"]["at"] == clock.now.isoformat()
    assert got.headers["webhook-id"] == event_id
    assert got.headers["webhook-timestamp"] == str(int(clock.now.timestamp()))
    assert got.headers["webhook-signature"].startswith("v1,")
    assert got.headers["content-type"] == "application/json"
    with pytest.raises(Exception, match="signature"):
        Webhook("whsec_" + "QUFB" * 8).verify(got.body, got.headers)

    [delivery] = deliveries(a, wid)
    assert delivery["status"] == "delivered" and delivery["attempts"] == 1
    assert delivery["next_attempt_at"] is None and delivery["delivered_at"] is not None
    assert delivery["event"]["id"] == event_id
    [attempt] = delivery["attempt_log"]
    assert attempt["status_code"] == 200 and attempt["outcome"] == "delivered"
    assert attempt["latency_ms"] >= 0 and attempt["error"] is None
    assert secret not in json.dumps(delivery)
    assert deliverer.run_once().attempted == 0  # delivered means done


def test_events_reach_only_matching_enabled_subscriptions(
    a: As,
    tenant_a: TenantCtx,
    app: FastAPI,
    deliverer: Deliverer,
    receiver: Receiver,
    db: Engine,
) -> None:
    # No subscription wants it: emit writes nothing to the outbox.
    assert emit(app, tenant_a.id, "queue.optimized") is None
    wants_queue, _ = subscribe(a, receiver.url, ("queue.optimized",))
    wants_tickets, _ = subscribe(a, receiver.url, ("ticket.assigned", "ticket.reassigned"))
    paused, _ = subscribe(a, receiver.url, ("queue.optimized",), enabled=False)
    emit(app, tenant_a.id, "queue.optimized", team_id="t1")
    stats = deliverer.run_once()
    assert stats.deliveries_created == 1 and stats.delivered == 1
    assert len(deliveries(a, wants_queue)) == 1
    assert deliveries(a, wants_tickets) == [] and deliveries(a, paused) == []
    assert json.loads(receiver.received[0].body)["type"] == "queue.optimized"


def test_emit_is_part_of_the_callers_transaction(
    a: As, tenant_a: TenantCtx, app: FastAPI, db: Engine, receiver: Receiver
) -> None:
    subscribe(a, receiver.url)
    with app.state.session_factory() as session:
        data = sample_data(app, "ticket.assigned")
        events.emit(session=session, tenant_id=tenant_a.id, type="ticket.assigned", data=data)
        session.rollback()
    with Session(db) as s:
        assert s.scalars(select(WebhookEvent)).all() == []
    with app.state.session_factory() as session, pytest.raises(ValueError):
        events.emit(session=session, tenant_id=tenant_a.id, type="ticket.eaten", data={})
    with app.state.session_factory() as session, pytest.raises(ValueError, match="schema"):
        # A payload its type's documented schema does not describe is refused, subscribed or not.
        events.emit(session=session, tenant_id=tenant_a.id, type="ticket.assigned", data={})


def test_retries_with_backoff_then_succeeds(
    a: As,
    tenant_a: TenantCtx,
    app: FastAPI,
    deliverer: Deliverer,
    receiver: Receiver,
    clock: FakeClock,
) -> None:
    wid, secret = subscribe(a, receiver.url)
    receiver.fail_next(500, 502)
    event_id = emit(app, tenant_a.id)
    start = clock.now

    assert deliverer.run_once().retrying == 1
    [d1] = deliveries(a, wid)
    wait1 = (datetime.fromisoformat(d1["next_attempt_at"]) - start).total_seconds()
    assert 5 <= wait1 <= 10  # base 10 s, equal jitter
    assert d1["last_status_code"] == 500 and d1["last_error"] == "HTTP 500"
    clock.advance(seconds=wait1 - 1)
    assert deliverer.run_once().attempted == 0  # not due yet

    advance_to(clock, d1["next_attempt_at"])
    t2 = clock.now
    assert deliverer.run_once().retrying == 1
    [d2] = deliveries(a, wid)
    wait2 = (datetime.fromisoformat(d2["next_attempt_at"]) - t2).total_seconds()
    assert 10 <= wait2 <= 20  # doubled

    advance_to(clock, d2["next_attempt_at"])
    assert deliverer.run_once().delivered == 1
    [d3] = deliveries(a, wid)
    assert d3["status"] == "delivered" and d3["attempts"] == 3
    assert [(x["number"], x["status_code"], x["outcome"]) for x in d3["attempt_log"]] == [
        (1, 500, "retry"),
        (2, 502, "retry"),
        (3, 200, "delivered"),
    ]
    assert receiver.ids() == [event_id] * 3  # the same message id on every retry
    for got in receiver.received:
        Webhook(secret).verify(got.body, got.headers)
    stamps = [int(g.headers["webhook-timestamp"]) for g in receiver.received]
    assert stamps == sorted(stamps) and len(set(stamps)) == 3  # each attempt signed anew


def test_retry_after_is_honoured_on_429(
    a: As,
    tenant_a: TenantCtx,
    app: FastAPI,
    deliverer: Deliverer,
    receiver: Receiver,
    clock: FakeClock,
) -> None:
    wid, _ = subscribe(a, receiver.url)
    receiver.fail_next((429, {"Retry-After": "120"}))
    emit(app, tenant_a.id)
    start = clock.now
    assert deliverer.run_once().retrying == 1
    [d] = deliveries(a, wid)
    assert datetime.fromisoformat(d["next_attempt_at"]) == start + timedelta(seconds=120)
    clock.advance(seconds=119)
    assert deliverer.run_once().attempted == 0
    clock.advance(seconds=1)
    assert deliverer.run_once().delivered == 1
    assert len(receiver.received) == 2


def test_retry_after_as_http_date_on_503(
    a: As,
    tenant_a: TenantCtx,
    app: FastAPI,
    deliverer: Deliverer,
    receiver: Receiver,
    clock: FakeClock,
) -> None:
    wid, _ = subscribe(a, receiver.url)
    when = clock.now + timedelta(minutes=5)
    receiver.fail_next((503, {"Retry-After": when.strftime("%a, %d %b %Y %H:%M:%S GMT")}))
    emit(app, tenant_a.id)
    deliverer.run_once()
    [d] = deliveries(a, wid)
    assert datetime.fromisoformat(d["next_attempt_at"]) == when


def test_gives_up_after_max_attempts_then_replay(
    a: As,
    tenant_a: TenantCtx,
    app: FastAPI,
    deliverer: Deliverer,
    receiver: Receiver,
    clock: FakeClock,
) -> None:
    wid, secret = subscribe(a, receiver.url)
    receiver.fail_next(*([500] * MAX_ATTEMPTS))
    event_id = emit(app, tenant_a.id)
    outcomes = []
    for _ in range(MAX_ATTEMPTS):
        stats = deliverer.run_once()
        outcomes += [o for _, o in stats.outcomes]
        [d] = deliveries(a, wid)
        if d["next_attempt_at"]:
            advance_to(clock, d["next_attempt_at"])
    assert outcomes == ["retry"] * (MAX_ATTEMPTS - 1) + ["failed"]
    [d] = deliveries(a, wid)
    assert d["status"] == "failed" and d["attempts"] == MAX_ATTEMPTS
    assert d["next_attempt_at"] is None
    clock.advance(seconds=60)  # (small: the replay below is verified against real time)
    assert deliverer.run_once().attempted == 0  # failed is final
    assert len(receiver.received) == MAX_ATTEMPTS
    assert [
        x["status"]
        for x in deliveries(
            a,
            wid,
        )
    ] == ["failed"]
    assert a.get(f"/v1/webhooks/{wid}/deliveries", params={"status": "failed"}).json()["items"]
    assert (
        a.get(f"/v1/webhooks/{wid}/deliveries", params={"status": "pending"}).json()["items"] == []
    )

    r = a.post(f"/v1/webhooks/{wid}/deliveries/{d['id']}/replay")
    assert r.status_code == 202, r.text
    assert r.json()["status"] == "pending"
    assert datetime.fromisoformat(r.json()["next_attempt_at"]) == clock.now
    assert deliverer.run_once().delivered == 1
    one = a.get(f"/v1/webhooks/{wid}/deliveries/{d['id']}").json()
    assert one["status"] == "delivered" and one["attempts"] == MAX_ATTEMPTS + 1
    assert [x["number"] for x in one["attempt_log"]] == list(range(1, MAX_ATTEMPTS + 2))
    assert receiver.ids() == [event_id] * (MAX_ATTEMPTS + 1)
    Webhook(secret).verify(receiver.received[-1].body, receiver.received[-1].headers)

    # A delivered message can be replayed too (the receiver lost it): sent once more.
    assert a.post(f"/v1/webhooks/{wid}/deliveries/{d['id']}/replay").status_code == 202
    assert deliverer.run_once().delivered == 1
    assert len(receiver.received) == MAX_ATTEMPTS + 2


def test_unreachable_receiver_is_logged_and_retried(
    a: As, tenant_a: TenantCtx, app: FastAPI, deliverer: Deliverer, receiver: Receiver
) -> None:
    import socket

    with socket.socket() as s:  # a port with nobody listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    wid, _ = subscribe(a, f"http://127.0.0.1:{port}/hook")
    emit(app, tenant_a.id)
    assert deliverer.run_once().retrying == 1
    [d] = deliveries(a, wid)
    [attempt] = d["attempt_log"]
    assert attempt["status_code"] is None and "ConnectError" in attempt["error"]


def test_redirects_are_not_followed(
    a: As, tenant_a: TenantCtx, app: FastAPI, deliverer: Deliverer, receiver: Receiver
) -> None:
    wid, _ = subscribe(a, receiver.url)
    receiver.fail_next((302, {"Location": "http://10.0.0.1/"}))
    emit(app, tenant_a.id)
    assert deliverer.run_once().retrying == 1
    assert deliveries(a, wid)[0]["last_status_code"] == 302
    assert len(receiver.received) == 1


def test_disabled_subscription_holds_its_deliveries(
    a: As, tenant_a: TenantCtx, app: FastAPI, deliverer: Deliverer, receiver: Receiver
) -> None:
    wid, _ = subscribe(a, receiver.url)
    emit(app, tenant_a.id)
    deliverer.fan_out()
    assert a.patch(f"/v1/webhooks/{wid}", json={"enabled": False}).json()["enabled"] is False
    assert deliverer.run_once().attempted == 0
    [d] = deliveries(a, wid)
    assert_problem(a.post(f"/v1/webhooks/{wid}/deliveries/{d['id']}/replay"), 409)
    assert a.patch(f"/v1/webhooks/{wid}", json={"enabled": True}).json()["enabled"] is True
    assert deliverer.run_once().delivered == 1


def test_deleting_a_webhook_drops_its_deliveries(
    a: As,
    tenant_a: TenantCtx,
    app: FastAPI,
    deliverer: Deliverer,
    receiver: Receiver,
    db: Engine,
) -> None:
    wid, _ = subscribe(a, receiver.url)
    emit(app, tenant_a.id)
    deliverer.fan_out()
    assert a.delete(f"/v1/webhooks/{wid}").status_code == 204
    assert deliverer.run_once().attempted == 0
    with Session(db) as s:
        assert s.scalars(select(WebhookDelivery)).all() == []


# --- tenant isolation ------------------------------------------------------------------------


def test_tenants_never_see_or_touch_each_others_webhooks(
    a: As,
    b: As,
    tenant_a: TenantCtx,
    tenant_b: TenantCtx,
    app: FastAPI,
    deliverer: Deliverer,
    receiver: Receiver,
) -> None:
    a_wid, _ = subscribe(a, receiver.url)
    b_wid, _ = subscribe(b, receiver.url)
    receiver.fail_next(500)
    emit(app, tenant_a.id, ticket_id="A-1")
    deliverer.run_once()
    [a_delivery] = deliveries(a, a_wid)
    assert deliveries(b, b_wid) == []  # A's event went to A's subscription only

    assert [w["id"] for w in b.get("/v1/webhooks").json()["items"]] == [b_wid]
    for method, path in [
        ("GET", f"/v1/webhooks/{a_wid}"),
        ("PATCH", f"/v1/webhooks/{a_wid}"),
        ("DELETE", f"/v1/webhooks/{a_wid}"),
        ("GET", f"/v1/webhooks/{a_wid}/deliveries"),
        ("GET", f"/v1/webhooks/{a_wid}/deliveries/{a_delivery['id']}"),
        ("POST", f"/v1/webhooks/{a_wid}/deliveries/{a_delivery['id']}/replay"),
        # A's delivery under B's own webhook id is unknown too.
        ("GET", f"/v1/webhooks/{b_wid}/deliveries/{a_delivery['id']}"),
        ("POST", f"/v1/webhooks/{b_wid}/deliveries/{a_delivery['id']}/replay"),
    ]:
        kwargs: dict[str, Any] = {"json": {"enabled": False}} if method == "PATCH" else {}
        assert_problem(b.request(method, path, **kwargs), 404)
    assert a.get(f"/v1/webhooks/{a_wid}").json()["enabled"] is True
    assert deliveries(a, a_wid)[0]["attempts"] == 1  # B's replay did nothing


# --- several deliverers ----------------------------------------------------------------------


def test_concurrent_deliverers_never_send_twice(
    a: As,
    tenant_a: TenantCtx,
    app: FastAPI,
    settings: Settings,
    clock: FakeClock,
    receiver: Receiver,
) -> None:
    subscribe(a, receiver.url)
    subscribe(a, receiver.url, ("ticket.assigned", "ticket.reassigned"))
    n_events = 12
    with app.state.session_factory() as session:
        for i in range(n_events):
            events.emit(
                session=session,
                tenant_id=tenant_a.id,
                type="ticket.assigned",
                data=sample_data(app, "ticket.assigned", ticket_id=f"T-{i}"),
                now=clock.now,
            )
        session.commit()
    workers = [make_deliverer(app, settings, clock, seed=i) for i in range(3)]
    barrier = threading.Barrier(len(workers))
    errors: list[BaseException] = []

    def work(d: Deliverer) -> None:
        try:
            barrier.wait(10)
            while d.run_once().busy:
                pass
        except BaseException as exc:  # surfaced below: a thread cannot fail the test itself
            errors.append(exc)

    # Small batches so the workers interleave and really compete for the same rows.
    for d in workers:
        d.policy = dataclasses.replace(d.policy, batch_size=2)
    threads = [threading.Thread(target=work, args=(d,)) for d in workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    for d in workers:
        d.close()
    assert errors == []
    sent = [
        (r.headers["webhook-id"], int(json.loads(r.body)["data"]["ticket_id"][2:]))
        for r in receiver.received
    ]
    assert len(sent) == 2 * n_events  # two subscriptions, every event to each
    with app.state.session_factory() as session:
        rows = session.scalars(select(WebhookDelivery)).all()
    assert len(rows) == 2 * n_events
    assert all(r.status.value == "delivered" and r.attempts == 1 for r in rows)
    assert sorted(i for _, i in sent) == sorted(list(range(n_events)) * 2)


def test_a_claim_excludes_others_until_its_lease_runs_out(
    a: As,
    tenant_a: TenantCtx,
    app: FastAPI,
    settings: Settings,
    clock: FakeClock,
    receiver: Receiver,
) -> None:
    wid, _ = subscribe(a, receiver.url)
    emit(app, tenant_a.id)
    first, second = make_deliverer(app, settings, clock), make_deliverer(app, settings, clock)
    with first, second:
        first.fan_out()
        [claim] = first.claim()
        assert second.claim() == []  # in flight: nobody else may take it
        assert_problem(a.post(f"/v1/webhooks/{wid}/deliveries/{claim.delivery_id}/replay"), 409)
        # The first worker dies; once its lease is over the delivery is taken again.
        clock.now += first.policy.lease
        [again] = second.claim()
        assert again.delivery_id == claim.delivery_id and again.number == 2
        assert second.attempt(again) == "delivered"
        # The first worker wakes up late: its attempt is logged, but cannot undo the outcome.
        receiver.fail_next(500)
        assert first.attempt(claim) == "retry"
    one = a.get(f"/v1/webhooks/{wid}/deliveries/{claim.delivery_id}").json()
    assert one["status"] == "delivered" and one["attempts"] == 2
    assert sorted(x["number"] for x in one["attempt_log"]) == [1, 2]


# --- the background thread -------------------------------------------------------------------


def test_background_deliverer_runs_in_the_app_lifespan(
    db: Engine, db_url: str, receiver: Receiver
) -> None:
    settings = _settings(db_url, webhook_deliverer=True, webhook_poll_seconds=0.05)
    app = create_app(settings)  # the wall clock: this one really runs
    with TestClient(app) as c:
        tenant = make_tenant(db, c, "Live")
        _, secret = subscribe(tenant.admin, receiver.url)
        emit(app, tenant.id)
        assert receiver.got_one.wait(10), "the background deliverer sent nothing"
    got = receiver.received[0]
    Webhook(secret).verify(got.body, got.headers)


def test_unreadable_secret_is_never_sent_unsigned(
    a: As,
    tenant_a: TenantCtx,
    app: FastAPI,
    settings: Settings,
    clock: FakeClock,
    receiver: Receiver,
) -> None:
    wid, _ = subscribe(a, receiver.url)
    emit(app, tenant_a.id)
    rotated = settings.model_copy(update={"secret_key": SecretStr("another-key-" * 4)})
    with make_deliverer(app, rotated, clock) as d:
        assert d.run_once().retrying == 1
    assert receiver.received == []
    [delivery] = deliveries(a, wid)
    assert "cannot be decrypted" in delivery["attempt_log"][0]["error"]


def test_finished_deliveries_are_purged_after_the_retention(
    a: As,
    tenant_a: TenantCtx,
    app: FastAPI,
    deliverer: Deliverer,
    receiver: Receiver,
    clock: FakeClock,
    db: Engine,
) -> None:
    wid, _ = subscribe(a, receiver.url)
    emit(app, tenant_a.id, ticket_id="done")
    deliverer.run_once()  # delivered
    receiver.fail_next(*([500] * 10))
    emit(app, tenant_a.id, ticket_id="still-trying")
    deliverer.run_once()  # pending, retrying
    clock.advance(days=31)
    assert deliverer.purge(clock.now - timedelta(days=30)) == 1
    with Session(db) as s:
        kept = s.scalars(select(WebhookEvent)).all()
        assert [e.data["ticket_id"] for e in kept] == ["still-trying"]
        assert len(s.scalars(select(WebhookDelivery)).all()) == 1
    assert [d["event"]["data"]["ticket_id"] for d in deliveries(a, wid)] == ["still-trying"]


def test_a_batch_is_sent_concurrently_and_recorded(
    a: As,
    tenant_a: TenantCtx,
    app: FastAPI,
    deliverer: Deliverer,
    receiver: Receiver,
) -> None:
    wid, _ = subscribe(a, receiver.url)
    for i in range(5):
        emit(app, tenant_a.id, ticket_id=f"T-{i}")
    stats = deliverer.run_once()
    assert stats.delivered == 5 and len(receiver.received) == 5
    assert {d["status"] for d in deliveries(a, wid)} == {"delivered"}


def test_assigning_a_ticket_over_http_reaches_the_receiver_signed(
    a: As,
    tenant_a: TenantCtx,
    app: FastAPI,
    deliverer: Deliverer,
    receiver: Receiver,
    clock: FakeClock,
) -> None:
    """End to end: the assignment endpoint emits, the deliverer sends, the receiver verifies."""
    _, secret = subscribe(a, receiver.url, ("ticket.assigned", "ticket.reassigned"))

    def at(hours: float) -> str:
        return (clock.now + timedelta(hours=hours)).isoformat()

    assert a.post("/v1/skills", json={"id": "billing"}).status_code == 201
    assert a.post("/v1/teams", json={"id": "support"}).status_code == 201
    r = a.post("/v1/agents", json={"id": "ana", "team": "support", "skills": {"billing": 3}})
    assert r.status_code == 201, r.text
    r = a.post("/v1/shifts", json={"agent": "ana", "start": at(-1), "end": at(8)})
    assert r.status_code == 201, r.text
    ticket = {
        "team": "support",
        "required_skills": {"billing": 2},
        "priority": "high",
        "created_at": at(-0.5),
        "first_response_due": at(2),
        "effort_minutes": 30,
    }
    assert a.put("/v1/tickets/ZD-7", json=ticket_body(ticket)).status_code in (200, 201)
    r = a.post("/v1/tickets/ZD-7/assign")
    assert r.status_code == 200, r.text
    assert r.json()["agent"] == "ana"
    assert receiver.received == []  # nothing is sent inside the request

    assert deliverer.run_once().delivered == 1
    [got] = receiver.received
    payload = Webhook(secret).verify(got.body, got.headers)
    assert payload["type"] == "ticket.assigned"
    assert payload["data"]["ticket_id"] == "ZD-7" and payload["data"]["agent_id"] == "ana"


def _accepts(secret: str, got: Received) -> bool:
    """What a Standard Webhooks receiver holding ``secret`` decides (the reference library)."""
    try:
        Webhook(secret).verify(got.body, got.headers)
    except Exception as exc:
        assert "signature" in str(exc).lower(), exc
        return False
    return True


def test_rotating_the_secret_signs_with_the_new_one(
    a: As,
    b: As,
    tenant_a: TenantCtx,
    app: FastAPI,
    deliverer: Deliverer,
    receiver: Receiver,
) -> None:
    wid, old = subscribe(a, receiver.url)
    assert_problem(b.post(f"/v1/webhooks/{wid}/rotate-secret"), 404)
    r = a.post(f"/v1/webhooks/{wid}/rotate-secret", json={"overlap_seconds": 0})
    assert r.status_code == 200, r.text
    new = r.json()["secret"]
    assert new.startswith("whsec_") and new != old
    assert r.json()["previous_secret_expires_at"] is None
    emit(app, tenant_a.id)
    deliverer.run_once()
    [got] = receiver.received
    assert _accepts(new, got) and not _accepts(old, got)
    assert len(got.headers["webhook-signature"].split()) == 1


def test_a_rotated_secret_keeps_signing_for_the_overlap(
    a: As,
    tenant_a: TenantCtx,
    app: FastAPI,
    deliverer: Deliverer,
    receiver: Receiver,
    clock: FakeClock,
) -> None:
    """During the overlap a receiver holding either secret accepts every delivery (each carries
    both signatures); from its end on, only the new secret verifies. ``verify`` checks the
    timestamp against the real time, so the overlap here is a minute, not a day."""
    wid, old = subscribe(a, receiver.url)
    r = a.post(f"/v1/webhooks/{wid}/rotate-secret", json={"overlap_seconds": 60})
    assert r.status_code == 200, r.text
    new = r.json()["secret"]
    expires = datetime.fromisoformat(r.json()["previous_secret_expires_at"])
    assert expires == clock.now + timedelta(seconds=60)
    assert a.get(f"/v1/webhooks/{wid}").json()["previous_secret_expires_at"] is not None
    stored = a.get(f"/v1/webhooks/{wid}").text
    assert old not in stored and new not in stored

    emit(app, tenant_a.id, ticket_id="T-during")
    clock.advance(seconds=59)  # the last second of the overlap
    emit(app, tenant_a.id, ticket_id="T-late-in-overlap")
    assert deliverer.run_once().delivered == 2
    for got in receiver.received:
        assert len(got.headers["webhook-signature"].split(" ")) == 2
        assert got.headers["webhook-signature"].split(" ")[0].startswith("v1,")
        assert _accepts(old, got) and _accepts(new, got)

    clock.advance(seconds=1)  # the overlap is over: only the new secret signs
    emit(app, tenant_a.id, ticket_id="T-after")
    assert deliverer.run_once().delivered == 1
    got = receiver.received[-1]
    assert len(got.headers["webhook-signature"].split(" ")) == 1
    assert _accepts(new, got) and not _accepts(old, got)


def test_a_retry_after_the_overlap_is_signed_with_the_new_secret_only(
    a: As,
    tenant_a: TenantCtx,
    app: FastAPI,
    deliverer: Deliverer,
    receiver: Receiver,
    clock: FakeClock,
) -> None:
    """Secrets are chosen per attempt, at the attempt's start: a delivery first tried during
    the overlap and retried after it carries only the new signature then."""
    wid, old = subscribe(a, receiver.url)
    new = a.post(f"/v1/webhooks/{wid}/rotate-secret", json={"overlap_seconds": 30}).json()["secret"]
    receiver.fail_next(500)
    emit(app, tenant_a.id)
    assert deliverer.run_once().retrying == 1
    assert _accepts(old, receiver.received[0]) and _accepts(new, receiver.received[0])
    clock.advance(seconds=40)
    assert deliverer.run_once().delivered == 1
    assert _accepts(new, receiver.received[1]) and not _accepts(old, receiver.received[1])


def test_the_default_overlap_is_the_setting_and_a_second_rotation_drops_the_oldest(
    a: As,
    tenant_a: TenantCtx,
    app: FastAPI,
    settings: Settings,
    deliverer: Deliverer,
    receiver: Receiver,
    clock: FakeClock,
) -> None:
    wid, first = subscribe(a, receiver.url)
    r = a.post(f"/v1/webhooks/{wid}/rotate-secret")  # no body: the server's overlap
    assert r.status_code == 200, r.text
    second = r.json()["secret"]
    assert settings.webhook_secret_overlap_seconds == 24 * 3600
    expires = datetime.fromisoformat(r.json()["previous_secret_expires_at"])
    assert expires == clock.now + timedelta(hours=24)
    third = a.post(f"/v1/webhooks/{wid}/rotate-secret").json()["secret"]
    emit(app, tenant_a.id)
    deliverer.run_once()
    [got] = receiver.received
    assert _accepts(third, got) and _accepts(second, got) and not _accepts(first, got)


@pytest.mark.parametrize("overlap", [-1, 7 * 24 * 3600 + 1, "1h", True])
def test_a_bad_overlap_is_422_naming_it(a: As, receiver: Receiver, overlap: Any) -> None:
    wid, _ = subscribe(a, receiver.url)
    r = a.post(f"/v1/webhooks/{wid}/rotate-secret", json={"overlap_seconds": overlap})
    body = assert_problem(r, 422)
    assert any("overlap_seconds" in e["field"] for e in body["errors"]), body
    assert a.get(f"/v1/webhooks/{wid}").json()["previous_secret_expires_at"] is None
