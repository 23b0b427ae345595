"""Push on SQLite and PostgreSQL: the watch job makes a channel per calendar of an active
Google or Microsoft connection (none for an ICS feed), renews each before it expires and stops
the old one; the push endpoints answer Google's handshake and Graph's validation, queue a sync
for a notification carrying its channel's token (compared in constant time), and refuse an
unknown channel or a wrong token alike (403 problem+json, nothing queued); released channels
are stopped at the provider and their notifications refused."""

from __future__ import annotations

import hmac
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy import Engine, select

from api.calendar_sync import channels, connectors
from api.calendar_sync.jobs import SYNC_JOB
from api.db.engine import make_session_factory
from api.db.jobs import Job, JobStatus
from api.db.models import CalendarChannel, CalendarConnection
from api.jobs.queue import claim
from api.jobs.worker import JobContext, PermanentJobError
from api.settings import Environment, Settings
from calendars.base import Connector, WatchChannel
from tests.api.bookings.test_bookings import org
from tests.api.bookings.test_call_steps import run_jobs
from tests.api.calendar_sync.test_writeback import connect
from tests.api.conftest import T0, As, FakeClock, TenantCtx, assert_problem
from tests.calendars.memory import MemoryConnector, MemoryProvider

H = timedelta(hours=1)


@dataclass
class Watched:
    """The in-memory provider, its channels expiring on the test's clock, remembering the
    address and token each channel was made with."""

    clock: FakeClock
    store: MemoryProvider = field(default_factory=MemoryProvider)
    made: list[tuple[str, str, str, timedelta]] = field(default_factory=list)
    stopped: list[str] = field(default_factory=list)

    def factory(
        self, provider: str, settings: Mapping[str, Any], credentials: Mapping[str, Any]
    ) -> Connector:
        outer = self
        inner = MemoryConnector(self.store, provider)

        class Clocked(MemoryConnector):
            def watch(
                self, calendar: str, address: str, token: str, ttl: timedelta
            ) -> WatchChannel:
                channel = inner.watch(calendar, address, token, ttl)
                fixed = replace(
                    channel,
                    channel_id=f"{provider}-{len(outer.made)}",
                    expires_at=outer.clock.now + ttl,
                )
                outer.store.watches[-1] = fixed
                outer.made.append((calendar, address, token, ttl))
                return fixed

            def unwatch(self, channel: WatchChannel) -> None:
                inner.unwatch(channel)
                outer.stopped.append(channel.channel_id)

        return Clocked(self.store, provider)


@pytest.fixture
def provider(clock: FakeClock) -> Iterator[Watched]:
    found = Watched(clock)
    with connectors.use_factory(found.factory):
        yield found


def watch(db: Engine, tenant_id: str, connection_id: str, now: datetime) -> None:
    with make_session_factory(db)() as session:
        channels.queue_watch(session, tenant_id, connection_id, now=now)
        session.commit()


def stored(db: Engine, tenant_id: str) -> list[tuple[str, str, str, datetime]]:
    with make_session_factory(db)() as session:
        return [
            (c.connection_id, c.calendar, c.channel_id, c.expires_at)
            for c in session.scalars(
                select(CalendarChannel)
                .where(CalendarChannel.tenant_id == tenant_id)
                .order_by(CalendarChannel.connection_id, CalendarChannel.calendar)
            )
        ]


def token_of(db: Engine, settings: Settings, tenant_id: str, connection_id: str) -> str:
    with make_session_factory(db)() as session:
        row = session.get(CalendarConnection, (tenant_id, connection_id))
        assert row is not None and row.channel_token is not None
        assert len(row.channel_token) > 60  # encrypted, not the token itself
        clear = channels.open_token(settings, row.channel_token)
        assert clear is not None and clear not in row.channel_token
        return clear


def jobs_of(db: Engine, kind: str) -> list[Job]:
    with make_session_factory(db)() as session:
        found = list(session.scalars(select(Job).where(Job.kind == kind).order_by(Job.run_after)))
        session.expunge_all()
        return found


def watched(
    a: As,
    db: Engine,
    settings: Settings,
    tenant: TenantCtx,
    clock: FakeClock,
    app: FastAPI,
    provider: str = "google",
) -> str:
    org(a, agents=("ana",))
    ident = connect(
        db,
        settings,
        tenant.id,
        "ana",
        provider=provider,
        calendars=("ana@example.com", "team@example.com"),
    )
    watch(db, tenant.id, ident, clock.now)
    run_jobs(app)
    return ident


def google_headers(channel: str, token: str, state: str = "exists") -> dict[str, str]:
    return {
        "X-Goog-Channel-ID": channel,
        "X-Goog-Channel-Token": token,
        "X-Goog-Resource-State": state,
        "X-Goog-Resource-ID": "r",
        "X-Goog-Message-Number": "2",
    }


def test_the_watch_job_makes_a_channel_per_calendar_and_renews_each_before_expiry(
    a: As,
    tenant_a: TenantCtx,
    db: Engine,
    settings: Settings,
    clock: FakeClock,
    app: FastAPI,
    provider: Watched,
) -> None:
    ident = watched(a, db, settings, tenant_a, clock, app)
    ttl = timedelta(seconds=settings.calendar_channel_ttl_seconds)
    margin = timedelta(seconds=settings.calendar_channel_renew_margin_seconds)
    token = token_of(db, settings, tenant_a.id, ident)
    address = "http://127.0.0.1:8000/v1/calendar-push/google"
    assert provider.made == [
        ("ana@example.com", address, token, ttl),
        ("team@example.com", address, token, ttl),
    ]
    assert stored(db, tenant_a.id) == [
        (ident, "ana@example.com", "google-0", T0 + ttl),
        (ident, "team@example.com", "google-1", T0 + ttl),
    ]
    [renewal] = [j for j in jobs_of(db, channels.WATCH_JOB) if j.status is JobStatus.QUEUED]
    assert renewal.run_after == T0 + ttl - margin
    clock.now = renewal.run_after - timedelta(minutes=1)
    assert app.state.job_worker.run_once() is None  # not due yet
    clock.now = renewal.run_after
    run_jobs(app)
    now = clock.now
    assert stored(db, tenant_a.id) == [
        (ident, "ana@example.com", "google-2", now + ttl),
        (ident, "team@example.com", "google-3", now + ttl),
    ]
    assert provider.stopped == ["google-0", "google-1"]  # after their successors exist
    assert [w.channel_id for w in provider.store.watches] == ["google-2", "google-3"]
    assert token_of(db, settings, tenant_a.id, ident) == token  # the same secret
    [nxt] = [j for j in jobs_of(db, channels.WATCH_JOB) if j.status is JobStatus.QUEUED]
    assert nxt.run_after == now + ttl - margin


def test_a_read_only_feed_gets_no_channel_and_a_paused_connection_loses_its_own(
    a: As,
    tenant_a: TenantCtx,
    db: Engine,
    settings: Settings,
    clock: FakeClock,
    app: FastAPI,
    provider: Watched,
) -> None:
    org(a, agents=("ana",))
    feed = connect(db, settings, tenant_a.id, "ana", provider="ics")
    watch(db, tenant_a.id, feed, clock.now)
    run_jobs(app)
    assert provider.made == [] and stored(db, tenant_a.id) == []
    google = connect(db, settings, tenant_a.id, "ana")
    watch(db, tenant_a.id, google, clock.now)
    run_jobs(app)
    assert len(stored(db, tenant_a.id)) == 1
    with make_session_factory(db)() as session:
        row = session.get(CalendarConnection, (tenant_a.id, google))
        assert row is not None
        row.status = "paused"
        channels.queue_watch(session, tenant_a.id, google, now=clock.now)
        session.commit()
    run_jobs(app)
    assert stored(db, tenant_a.id) == [] and provider.store.watches == []
    assert provider.stopped == ["google-0"]  # stopped at the provider with its credentials


def test_a_deleted_connections_channels_are_forgotten_and_their_notifications_refused(
    a: As,
    tenant_a: TenantCtx,
    db: Engine,
    settings: Settings,
    clock: FakeClock,
    app: FastAPI,
    provider: Watched,
) -> None:
    ident = watched(a, db, settings, tenant_a, clock, app)
    token = token_of(db, settings, tenant_a.id, ident)
    with make_session_factory(db)() as session:
        row = session.get(CalendarConnection, (tenant_a.id, ident))
        assert row is not None
        job = channels.release(session, row, clock.now)
        assert job is not None and job.kind == channels.UNWATCH_JOB
        session.delete(row)  # what the admin API's delete does after releasing
        session.commit()
    assert [j.status for j in jobs_of(db, channels.WATCH_JOB)][-1] is JobStatus.CANCELLED
    run_jobs(app)
    # No credentials travel in a job (jobs are readable through /v1/jobs): with the connection
    # gone the channels cannot be stopped and expire by themselves; they are refused meanwhile.
    [unwatch] = jobs_of(db, channels.UNWATCH_JOB)
    assert unwatch.status is JobStatus.SUCCEEDED and "credentials" not in unwatch.payload
    assert unwatch.result == {"stopped": 0, "expire_by": (T0 + timedelta(days=2)).isoformat()}
    assert stored(db, tenant_a.id) == []
    r = a.client.post("/v1/calendar-push/google", headers=google_headers("google-0", token))
    assert_problem(r, 403, "channel")
    assert jobs_of(db, SYNC_JOB) == []


def test_push_needs_https_outside_development_and_test() -> None:
    production = Settings(
        environment=Environment.PRODUCTION,
        secret_key="x" * 40,
        public_base_url="http://switchboard.example.com",
    )
    with pytest.raises(PermanentJobError, match="https"):
        channels.push_address(production, "google")
    secure = production.model_copy(update={"public_base_url": "https://sb.example.com/"})
    assert channels.push_address(secure, "microsoft") == (
        "https://sb.example.com/v1/calendar-push/microsoft"
    )
    dev = Settings(public_base_url="http://127.0.0.1:9000")
    assert channels.push_address(dev, "google") == "http://127.0.0.1:9000/v1/calendar-push/google"


# --------------------------------------------------------------------------- Google


def test_google_handshake_and_a_change_with_the_channels_token_queue_a_sync(
    a: As,
    tenant_a: TenantCtx,
    db: Engine,
    settings: Settings,
    clock: FakeClock,
    app: FastAPI,
    provider: Watched,
) -> None:
    ident = watched(a, db, settings, tenant_a, clock, app)
    token = token_of(db, settings, tenant_a.id, ident)
    client = a.client  # no API key: the token is the proof
    r = client.post("/v1/calendar-push/google", headers=google_headers("google-0", token, "sync"))
    assert r.status_code == 200, r.text
    assert jobs_of(db, SYNC_JOB) == []  # the handshake asks for nothing
    r = client.post("/v1/calendar-push/google", headers=google_headers("google-1", token))
    assert r.status_code == 202, r.text
    [job] = jobs_of(db, SYNC_JOB)
    assert job.tenant_id == tenant_a.id and job.payload == {"connection_id": ident, "full": False}
    # Another notification while that sync waits folds into it.
    r = client.post("/v1/calendar-push/google", headers=google_headers("google-0", token))
    assert r.status_code == 202 and len(jobs_of(db, SYNC_JOB)) == 1


def test_google_unknown_channel_and_wrong_token_are_refused_alike_and_queue_nothing(
    a: As,
    tenant_a: TenantCtx,
    db: Engine,
    settings: Settings,
    clock: FakeClock,
    app: FastAPI,
    provider: Watched,
) -> None:
    ident = watched(a, db, settings, tenant_a, clock, app)
    token = token_of(db, settings, tenant_a.id, ident)
    client = a.client
    wrong = client.post(
        "/v1/calendar-push/google", headers=google_headers("google-0", token[:-1] + "x")
    )
    unknown = client.post("/v1/calendar-push/google", headers=google_headers("nope", token))
    empty = client.post(
        "/v1/calendar-push/google",
        headers={"X-Goog-Channel-ID": "google-0", "X-Goog-Resource-State": "exists"},
    )
    other = client.post(
        "/v1/calendar-push/microsoft",
        json={"value": [{"subscriptionId": "google-0", "clientState": token}]},
    )  # a Google channel's token through Graph's door
    bodies = []
    for r in (wrong, unknown, empty, other):
        body = assert_problem(r, 403, "channel")
        bodies.append({k: v for k, v in body.items() if k != "instance"})
    assert all(b == bodies[0] for b in bodies), bodies  # nothing tells them apart
    assert bodies[0]["type"] == "/problems/calendar-push-refused"
    assert jobs_of(db, SYNC_JOB) == []
    missing = client.post("/v1/calendar-push/google", headers={"X-Goog-Channel-Token": token})
    assert_problem(missing, 422, "header.x-goog-channel-id", "header.x-goog-resource-state")
    assert jobs_of(db, SYNC_JOB) == []


def test_the_token_is_compared_in_constant_time_known_channel_or_not(
    a: As,
    tenant_a: TenantCtx,
    db: Engine,
    settings: Settings,
    clock: FakeClock,
    app: FastAPI,
    provider: Watched,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ident = watched(a, db, settings, tenant_a, clock, app)
    token = token_of(db, settings, tenant_a.id, ident)
    real = hmac.compare_digest
    seen: list[tuple[bytes, bytes]] = []

    def spy(x: Any, y: Any) -> bool:
        seen.append((x, y))
        return real(x, y)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    for channel in ("google-0", "nope"):
        r = a.client.post("/v1/calendar-push/google", headers=google_headers(channel, "guess"))
        assert r.status_code == 403
    r = a.client.post("/v1/calendar-push/google", headers=google_headers("google-0", token))
    assert r.status_code == 202
    assert [y for _, y in seen] == [b"guess", b"guess", token.encode()]
    assert seen[0][0] == seen[2][0] == token.encode()  # the known channel's real token
    assert seen[1][0] not in (b"", token.encode())  # a decoy of the same kind


# --------------------------------------------------------------------------- Microsoft Graph


def test_graph_validation_echoes_the_token_as_plain_text(a: As, provider: Watched) -> None:
    r = a.client.post(
        "/v1/calendar-push/microsoft",
        params={"validationToken": "Validation: Testing client application reachability <x>"},
        headers={"content-type": "text/plain; charset=utf-8"},
    )
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain")
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.text == "Validation: Testing client application reachability <x>"
    r = a.client.post("/v1/calendar-push/microsoft", params={"validationToken": "x" * 3000})
    assert_problem(r, 422, "query.validationToken")


def test_graph_notifications_with_the_client_state_queue_a_sync_and_others_are_refused(
    a: As,
    tenant_a: TenantCtx,
    db: Engine,
    settings: Settings,
    clock: FakeClock,
    app: FastAPI,
    provider: Watched,
) -> None:
    ident = watched(a, db, settings, tenant_a, clock, app, provider="microsoft")
    token = token_of(db, settings, tenant_a.id, ident)
    url = "/v1/calendar-push/microsoft"
    client = a.client

    def note(sub: str, state: str | None, **extra: Any) -> dict[str, Any]:
        item = {"subscriptionId": sub, "changeType": "updated", "resource": "me/events/x", **extra}
        if state is not None:
            item["clientState"] = state
        return item

    refused = [
        {"value": [note("microsoft-0", "wrong")]},
        {"value": [note("microsoft-0", None)]},
        {"value": [note("unknown", token), note("microsoft-1", token[::-1])]},
    ]
    for body in refused:
        assert_problem(client.post(url, json=body), 403, "channel")
    assert jobs_of(db, SYNC_JOB) == []
    for body, where in (
        ({"value": []}, "value"),
        ({"nope": 1}, "value"),
        ({"value": [3]}, "value.0"),
    ):
        assert_problem(client.post(url, json=body), 422, where)
    r = client.post(url, content=b"{not json", headers={"content-type": "application/json"})
    assert_problem(r, 422)
    # A batch with one good notification among strangers: the good one counts.
    r = client.post(url, json={"value": [note("unknown", "x"), note("microsoft-1", token)]})
    assert r.status_code == 202, r.text
    [job] = jobs_of(db, SYNC_JOB)
    assert job.payload == {"connection_id": ident, "full": False}
    # A lifecycle notification (the subscription needs renewing) queues a watch now too.
    for j in jobs_of(db, channels.WATCH_JOB):
        assert j.status is not JobStatus.QUEUED or j.run_after > clock.now
    r = client.post(
        url, json={"value": [note("microsoft-0", token, lifecycleEvent="reauthorizationRequired")]}
    )
    assert r.status_code == 202, r.text
    due = [
        j
        for j in jobs_of(db, channels.WATCH_JOB)
        if j.status is JobStatus.QUEUED and j.run_after <= clock.now
    ]
    assert len(due) == 1


def test_a_stored_token_no_key_opens_is_replaced_with_every_channel(
    a: As,
    tenant_a: TenantCtx,
    db: Engine,
    settings: Settings,
    clock: FakeClock,
    app: FastAPI,
    provider: Watched,
) -> None:
    ident = watched(a, db, settings, tenant_a, clock, app)
    with make_session_factory(db)() as session:
        row = session.get(CalendarConnection, (tenant_a.id, ident))
        assert row is not None
        row.channel_token = "gAAAA-not-a-token"
        channels.queue_watch(session, tenant_a.id, ident, now=clock.now)
        session.commit()
    run_jobs(app)
    token = token_of(db, settings, tenant_a.id, ident)
    assert [c for _, c, _, _ in stored(db, tenant_a.id)] == ["ana@example.com", "team@example.com"]
    assert [m[2] for m in provider.made[2:]] == [token, token]
    assert sorted(provider.stopped) == ["google-0", "google-1"]


def test_a_channel_the_provider_keeps_short_is_renewed_halfway_not_in_a_loop(
    a: As,
    tenant_a: TenantCtx,
    db: Engine,
    settings: Settings,
    clock: FakeClock,
    app: FastAPI,
    provider: Watched,
) -> None:
    short = settings.model_copy(
        update={
            "calendar_channel_ttl_seconds": 3600.0,
            "calendar_channel_renew_margin_seconds": 7200.0,
        }
    )
    org(a, agents=("ana",))
    ident = connect(db, settings, tenant_a.id, "ana")
    watch(db, tenant_a.id, ident, clock.now)
    [job] = jobs_of(db, channels.WATCH_JOB)
    claimed = claim(session_factory=make_session_factory(db), worker_id="t", now=clock.now, lease=H)
    assert claimed is not None and claimed.id == job.id
    ctx = JobContext(job=claimed, session_factory=make_session_factory(db), clock=clock)
    assert channels.run_watch(ctx, short) == {"made": 1, "renewed": 0, "stopped": 0}
    [nxt] = [j for j in jobs_of(db, channels.WATCH_JOB) if j.status is JobStatus.QUEUED]
    assert nxt.run_after == T0 + H / 2  # halfway through its hour, not at once
