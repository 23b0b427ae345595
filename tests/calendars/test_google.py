"""The Google connector, driven through the real google-api-python-client and google-auth
against the fake Google on 127.0.0.1 (benchmarks/calendar_fakes/google.py)."""

from __future__ import annotations

import re
import socket
import threading
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import given
from hypothesis import strategies as st

import calendars
from benchmarks.calendar_fakes.google import (
    DEFAULT_GRANTED_SCOPES,
    FakeGoogle,
    parse_fields,
    select_fields,
    service_account_key,
)
from calendars import google as gcal
from calendars.base import (
    CallEvent,
    CredentialError,
    CursorExpired,
    ProviderError,
    Retry,
)

T0 = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
WINDOW = (T0 - timedelta(days=7), T0 + timedelta(days=30))
SENTINELS = ("SENTINEL-TITLE", "SENTINEL-BODY", "SENTINEL-PLACE", "sentinel-guest@example.org")
CAL = "agent@example.com"


def private(**more: Any) -> dict[str, Any]:
    """An event's contents, every field a sentinel."""
    return {
        "summary": SENTINELS[0],
        "description": SENTINELS[1],
        "location": SENTINELS[2],
        "attendees": [SENTINELS[3]],
        **more,
    }


def assert_private(*objects: object) -> None:
    for obj in objects:
        text = repr(obj)
        for sentinel in SENTINELS:
            assert sentinel not in text, f"{sentinel} leaked into {type(obj).__name__}"


class Waits:
    """A Retry's sleep that records the waits instead of sleeping."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


@pytest.fixture
def google() -> Iterator[FakeGoogle]:
    gcal.forget_tokens()
    with FakeGoogle() as fake:
        fake.add_calendar(CAL)
        yield fake


def connect(
    fake: FakeGoogle,
    credentials: dict[str, Any] | None = None,
    *,
    retry: Retry | None = None,
    timeout: float = 5.0,
    **settings: Any,
) -> gcal.GoogleConnector:
    connector = calendars.connect(
        "google",
        fake.settings(**settings),
        credentials if credentials is not None else fake.oauth_credentials(),
        timeout=timeout,
        retry=retry or Retry(sleep=lambda s: None),
    )
    assert isinstance(connector, gcal.GoogleConnector)
    return connector


# --- sync ------------------------------------------------------------------------------------


def test_a_full_sync_pages_through_everything_and_keeps_only_busy_time() -> None:
    gcal.forget_tokens()
    with FakeGoogle(page_size=3) as fake:
        fake.add_calendar(CAL, time_zone="Europe/Berlin")
        ids = [
            fake.add_event(
                CAL, T0 + timedelta(hours=i), T0 + timedelta(hours=i, minutes=30), **private()
            )
            for i in range(7)
        ]
        free = fake.add_event(CAL, T0, T0 + timedelta(hours=8), transparent=True, **private())
        gone = fake.add_event(CAL, T0, T0 + timedelta(hours=1), **private())
        fake.delete_event(CAL, gone)
        fake.add_event(CAL, T0 - timedelta(days=30), T0 - timedelta(days=29), **private())

        delta = connect(fake).sync(CAL, None, *WINDOW)

        assert delta.full and delta.cursor and delta.removed == ()
        assert {e.key for e in delta.upserts} == {*ids, free}  # not the deleted, not outside
        assert delta.requests == 3  # 9 listed (the deleted one too: showDeleted) / 3 a page
        by_key = {e.key: e for e in delta.upserts}
        assert by_key[ids[2]].start == T0 + timedelta(hours=2)  # Berlin offsets read as UTC
        assert by_key[ids[2]].start.tzinfo == UTC
        assert by_key[free].transparency == "transparent" and not by_key[free].busy
        assert all(by_key[i].busy and by_key[i].own is None for i in ids)
        assert_private(delta, *delta.upserts)
        first = next(entry for entry in fake.log if entry.kind == "events.list")
        assert first.query["singleEvents"] == "true" and first.query["showDeleted"] == "true"
        assert first.query["timeMin"] == "2026-11-30T09:00:00Z"
        assert "summary" not in first.query["fields"] and "items(" in first.query["fields"]


def test_an_incremental_sync_returns_only_what_changed(google: FakeGoogle) -> None:
    keep = google.add_event(CAL, T0, T0 + timedelta(hours=1), **private())
    move = google.add_event(CAL, T0 + timedelta(hours=2), T0 + timedelta(hours=3), **private())
    drop = google.add_event(CAL, T0 + timedelta(hours=4), T0 + timedelta(hours=5), **private())
    away = google.add_event(CAL, T0 + timedelta(hours=6), T0 + timedelta(hours=7))
    connector = connect(google)
    full = connector.sync(CAL, None, *WINDOW)
    assert {e.key for e in full.upserts} == {keep, move, drop, away}

    google.move_event(CAL, move, T0 + timedelta(days=1), T0 + timedelta(days=1, hours=1))
    google.delete_event(CAL, drop)
    google.move_event(CAL, away, T0 + timedelta(days=90), T0 + timedelta(days=90, hours=1))
    new = google.add_event(CAL, T0 + timedelta(days=2), T0 + timedelta(days=2, hours=1))
    delta = connector.sync(CAL, full.cursor, *WINDOW)

    assert not delta.full and delta.cursor and delta.cursor != full.cursor
    assert {e.key: e.start for e in delta.upserts} == {
        move: T0 + timedelta(days=1),
        new: T0 + timedelta(days=2),
    }
    assert delta.removed == tuple(sorted([drop, away]))  # deleted; moved out of the window
    listed = [entry for entry in google.log if entry.kind == "events.list"][-1]
    assert listed.query["syncToken"] == full.cursor
    assert "timeMin" not in listed.query and "timeMax" not in listed.query
    assert_private(delta)

    quiet = connector.sync(CAL, delta.cursor, *WINDOW)
    assert quiet.upserts == () and quiet.removed == () and quiet.requests == 1


def test_recurring_instances_are_separate_keys_and_a_cancelled_one_is_removed(
    google: FakeGoogle,
) -> None:
    instances = google.add_recurring(
        CAL, T0, T0 + timedelta(hours=1), count=4, **private(attendees=[SENTINELS[3]])
    )
    connector = connect(google)
    full = connector.sync(CAL, None, *WINDOW)
    assert sorted(e.start for e in full.upserts) == [T0 + timedelta(days=7 * n) for n in range(4)]
    assert {e.key for e in full.upserts} == set(instances)

    google.delete_event(CAL, instances[1])
    delta = connector.sync(CAL, full.cursor, *WINDOW)
    assert delta.removed == (instances[1],) and delta.upserts == ()


def test_an_expired_sync_token_is_cursor_expired_and_a_full_sync_recovers(
    google: FakeGoogle,
) -> None:
    google.add_event(CAL, T0, T0 + timedelta(hours=1))
    connector = connect(google)
    cursor = connector.sync(CAL, None, *WINDOW).cursor
    google.expire_sync_tokens()
    with pytest.raises(CursorExpired) as caught:
        connector.sync(CAL, cursor, *WINDOW)
    assert "410" in caught.value.reason and str(cursor) not in caught.value.reason
    assert google.requests["events.list"] == 2  # a 410 is not retried
    again = connector.sync(CAL, None, *WINDOW)
    assert again.full and len(again.upserts) == 1


def test_all_day_events_are_whole_local_days_in_the_calendars_zone(google: FakeGoogle) -> None:
    google.add_calendar(CAL, time_zone="America/New_York")
    winter = google.add_all_day(CAL, date(2026, 12, 8), date(2026, 12, 9), **private())
    # 2027-03-14: clocks go forward in New York; that local day is 23 hours long.
    spring = google.add_all_day(CAL, date(2027, 3, 14), date(2027, 3, 16))
    delta = connect(google).sync(CAL, None, T0, T0 + timedelta(days=120))
    by_key = {e.key: e for e in delta.upserts}
    assert (by_key[winter].start, by_key[winter].end) == (
        datetime(2026, 12, 8, 5, tzinfo=UTC),
        datetime(2026, 12, 9, 5, tzinfo=UTC),
    )
    assert (by_key[spring].start, by_key[spring].end) == (
        datetime(2027, 3, 14, 5, tzinfo=UTC),
        datetime(2027, 3, 16, 4, tzinfo=UTC),
    )


def test_an_answer_that_is_not_json_is_a_provider_error(google: FakeGoogle) -> None:
    connector = connect(google)
    google.fail_next(1, 200, raw=b"<html>a proxy's page</html>")
    with pytest.raises(ProviderError, match="malformed answer"):
        connector.sync(CAL, None, *WINDOW)
    google.fail_next(1, 502, raw=b"<html>Bad Gateway</html>")  # retried, then fine
    assert connector.sync(CAL, None, *WINDOW).full


def test_an_unknown_calendar_is_a_provider_error(google: FakeGoogle) -> None:
    with pytest.raises(ProviderError, match="404"):
        connect(google).sync("nobody@example.com", None, *WINDOW)


# --- retries and failures ---------------------------------------------------------------------


def test_429_is_retried_after_the_servers_retry_after(google: FakeGoogle) -> None:
    google.add_event(CAL, T0, T0 + timedelta(hours=1))
    waits = Waits()
    connector = connect(google, retry=Retry(attempts=4, sleep=waits))
    google.fail_next(2, 429, retry_after="7")
    delta = connector.sync(CAL, None, *WINDOW)
    assert len(delta.upserts) == 1
    assert waits.waits == [7.0, 7.0]
    assert delta.requests == 3 and google.requests["events.list"] == 3


def test_rate_limit_403_and_5xx_back_off_and_give_up_as_provider_error(
    google: FakeGoogle,
) -> None:
    waits = Waits()
    connector = connect(google, retry=Retry(attempts=3, base=1.0, sleep=waits, rand=lambda: 0.5))
    google.fail_next(1, 403, reason="userRateLimitExceeded")
    google.fail_next(5, 503)
    with pytest.raises(ProviderError) as caught:
        connector.sync(CAL, None, *WINDOW)
    assert "503" in caught.value.reason and "3 tries" in caught.value.reason
    assert waits.waits == [0.5, 1.0]  # full jitter: rand() * base * 2**(n-1)


def test_a_retry_after_longer_than_the_budget_gives_up_at_once(google: FakeGoogle) -> None:
    waits = Waits()
    connector = connect(google, retry=Retry(max_wait=30, sleep=waits))
    google.fail_next(1, 429, retry_after="120")
    with pytest.raises(ProviderError, match="429"):
        connector.busy([CAL], T0, T0 + timedelta(days=1))
    assert waits.waits == []


def test_a_revoked_refresh_token_is_a_credential_error(google: FakeGoogle) -> None:
    credentials = google.oauth_credentials()
    google.revoke(credentials["refresh_token"])
    with pytest.raises(CredentialError) as caught:
        connect(google, credentials).sync(CAL, None, *WINDOW)
    assert "invalid_grant" in caught.value.reason
    for secret in credentials.values():
        assert secret not in caught.value.reason
    assert google.requests["events.list"] == 0 and google.requests["token"] == 1


def test_a_401_is_refreshed_once_but_a_401_after_refresh_is_a_credential_error(
    google: FakeGoogle,
) -> None:
    connector = connect(google)
    google.fail_next(1, 401)  # the token died: google-auth refreshes and retries
    assert connector.sync(CAL, None, *WINDOW).full
    assert google.requests["token"] == 2

    google.fail_next(3, 401)  # still refused after refreshing (twice)
    with pytest.raises(CredentialError, match="401 authError after refreshing"):
        connector.sync(CAL, None, *WINDOW)


def test_a_missing_scope_is_a_credential_error_naming_the_scopes(google: FakeGoogle) -> None:
    read_only = google.oauth_credentials(scopes=[gcal.READ_SCOPE])
    connector = connect(google, read_only)
    assert connector.sync(CAL, None, *WINDOW).full  # reading needs only the freebusy scope
    assert connector.busy([CAL], T0, T0 + timedelta(days=1)) == []
    with pytest.raises(CredentialError, match=r"403 insufficientPermissions.*events\.owned"):
        connector.write_event(CAL, CallEvent("call-1", T0, T0 + timedelta(hours=1), "T-1"))


def test_the_scopes_constant_is_what_every_method_needs() -> None:
    assert set(gcal.SCOPES) == set(DEFAULT_GRANTED_SCOPES)
    assert gcal.SCOPES == (
        "https://www.googleapis.com/auth/calendar.events.freebusy",
        "https://www.googleapis.com/auth/calendar.events.owned",
    )


def test_a_server_that_never_answers_times_out() -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    port = listener.getsockname()[1]
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])  # and never answer
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        gcal.forget_tokens()
        connector = calendars.connect(
            "google",
            {
                "api_endpoint": f"http://127.0.0.1:{port}/calendar/v3/",
                "token_uri": f"http://127.0.0.1:{port}/token",
            },
            {"client_id": "c", "client_secret": "s", "refresh_token": "r"},
            timeout=0.2,
            retry=Retry(attempts=2, sleep=lambda s: None),
        )
        started = datetime.now(UTC)
        with pytest.raises(ProviderError, match="2 tries"):
            connector.sync(CAL, None, *WINDOW)
        assert datetime.now(UTC) - started < timedelta(seconds=5)
    finally:
        stop.set()
        thread.join()
        for conn in accepted:
            conn.close()
        listener.close()


# --- credentials ------------------------------------------------------------------------------


def test_a_service_account_acts_as_the_agent_through_the_jwt_grant(google: FakeGoogle) -> None:
    info, public_key = service_account_key("sync@project.iam.example")
    google.add_service_account(info["client_email"], public_key)
    google.add_event(CAL, T0, T0 + timedelta(hours=1))
    connector = connect(google, {"service_account_info": info}, auth="service_account", subject=CAL)
    delta = connector.sync(CAL, None, *WINDOW)
    assert len(delta.upserts) == 1
    assert google.requests["token"] == 1
    grants = list(google._tokens.values())
    assert [g.subject for g in grants] == [CAL]
    assert grants[0].scopes == frozenset(gcal.SCOPES)
    key = connector.write_event(CAL, CallEvent("call-9", T0, T0 + timedelta(hours=1), "T-9"))
    assert google.event(CAL, key)["summary"] == "T-9"


def test_a_service_account_key_the_server_does_not_trust_is_a_credential_error(
    google: FakeGoogle,
) -> None:
    info, _ = service_account_key("rogue@project.iam.example")
    connector = connect(google, {"service_account_info": info}, auth="service_account", subject=CAL)
    with pytest.raises(CredentialError, match="invalid_grant") as caught:
        connector.sync(CAL, None, *WINDOW)
    assert "PRIVATE KEY" not in caught.value.reason


def test_access_tokens_are_reused_across_connectors_of_one_connection(google: FakeGoogle) -> None:
    credentials = google.oauth_credentials()
    for _ in range(3):
        connect(google, credentials).sync(CAL, None, *WINDOW)
    assert google.requests["token"] == 1 and google.requests["events.list"] == 3
    connect(google).sync(CAL, None, *WINDOW)  # another connection: its own token
    assert google.requests["token"] == 2


def test_problems_name_each_bad_field_and_never_a_secret() -> None:
    secret = "SECRET-VALUE-123"
    assert gcal.problems({}, {"client_id": "a", "client_secret": "b", "refresh_token": "c"}) == []
    found = dict(
        gcal.problems(
            {"auth": "oauth", "api_endpoint": "http://calendar.example/calendar/v3/"},
            {"client_id": secret, "client_secret": " "},
        )
    )
    assert set(found) == {
        "settings.api_endpoint",
        "credentials.client_secret",
        "credentials.refresh_token",
    }
    assert "https" in found["settings.api_endpoint"]
    assert dict(gcal.problems({"api_endpoint": "https://x.example/"}, {}))[
        "settings.api_endpoint"
    ].startswith("must include the API's path")
    assert dict(gcal.problems({"auth": "magic"}, {})) == {
        "settings.auth": "must be one of oauth, service_account"
    }
    bad_key = {"type": "service_account", "client_email": "x@y.example", "private_key": secret}
    found = dict(
        gcal.problems(
            {"auth": "service_account", "subject": "not-an-email"},
            {"service_account_info": bad_key},
        )
    )
    assert set(found) == {"settings.subject", "credentials.service_account_info.private_key"}
    assert all(secret not in reason for reason in found.values())
    ec_key = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    not_rsa = {**bad_key, "private_key": ec_key.decode()}
    assert gcal.problems(
        {"auth": "service_account", "subject": CAL}, {"service_account_info": not_rsa}
    ) == [("credentials.service_account_info.private_key", "is not a PEM-encoded RSA private key")]
    good, _ = service_account_key("sync@project.iam.example")
    assert (
        gcal.problems({"auth": "service_account", "subject": CAL}, {"service_account_info": good})
        == []
    )
    assert calendars.problems("google", {"auth": "service_account"}, {}) == [
        ("settings.subject", "is required: the email address of the user to act as"),
        (
            "credentials.service_account_info",
            "is required: the service account key file's JSON object",
        ),
    ]
    with pytest.raises(CredentialError, match=r"credentials\.refresh_token") as caught:
        gcal.from_config({}, {"client_id": secret}, timeout=1, retry=Retry())
    assert secret not in caught.value.reason


# --- free/busy --------------------------------------------------------------------------------


def test_busy_chunks_calendars_by_50_and_the_range_and_joins_spans_across_chunks(
    google: FakeGoogle,
) -> None:
    agents = [f"agent{n:03d}@example.com" for n in range(120)]
    for agent in agents:
        google.add_calendar(agent)
    # Spans the boundary between the first and the second 60-day query.
    cut = T0 + gcal.FREEBUSY_MAX_SPAN
    google.add_event(agents[0], cut - timedelta(hours=1), cut + timedelta(hours=1), **private())
    google.add_event(agents[119], T0 + timedelta(days=100), T0 + timedelta(days=100, hours=2))
    google.add_event(agents[60], T0, T0 + timedelta(hours=1), transparent=True)
    connector = connect(google)

    busy = connector.busy([*agents, agents[0]], T0, T0 + timedelta(days=150))

    assert google.requests["freebusy.query"] == 3 * 3  # ceil(120/50) x ceil(150/60)
    bodies = [e.body for e in google.log if e.kind == "freebusy.query"]
    assert max(len(b["items"]) for b in bodies) == 50
    assert [(e.calendar, e.start, e.end) for e in busy] == [
        (agents[0], cut - timedelta(hours=1), cut + timedelta(hours=1)),
        (agents[119], T0 + timedelta(days=100), T0 + timedelta(days=100, hours=2)),
    ]
    assert all(e.busy and e.key.startswith("busy:") for e in busy)
    assert_private(busy)


def test_busy_for_a_calendar_google_cannot_read_fails_closed(google: FakeGoogle) -> None:
    with pytest.raises(ProviderError, match=r"nobody@example\.com: notFound"):
        connect(google).busy([CAL, "nobody@example.com"], T0, T0 + timedelta(days=1))


# --- write-back -------------------------------------------------------------------------------


def call(call_id: str = "call-42", hours: int = 1, body: str | None = None) -> CallEvent:
    return CallEvent(call_id, T0, T0 + timedelta(hours=hours), "Call T-42", body)


def test_a_retried_insert_makes_one_event_and_it_is_neutral(google: FakeGoogle) -> None:
    connector = connect(google)
    key = connector.write_event(CAL, call())
    again = connector.write_event(CAL, call(hours=2))  # a retry after a lost answer
    assert key == again == gcal.event_id("call-42")
    assert len(google.events(CAL)) == 1
    assert google.requests["events.insert"] == 2 and google.requests["events.patch"] == 1
    stored = google.event(CAL, key)
    assert stored["summary"] == "Call T-42" and "attendees" not in stored
    assert stored["end"]["dateTime"] == "2026-12-07T11:00:00Z"
    assert stored["extendedProperties"] == {"private": {"switchboardCall": "call-42"}}
    assert stored["visibility"] == "private"
    inserts = [e for e in google.log if e.kind in ("events.insert", "events.patch")]
    assert all(e.query["sendUpdates"] == "none" for e in inserts)


def test_an_insert_whose_answer_was_lost_is_not_duplicated_by_the_retry(
    google: FakeGoogle,
) -> None:
    # The insert lands but its answer is a 503: the connector's retry meets a 409 and patches.
    connector = connect(google, retry=Retry(sleep=lambda s: None))
    google.fail_next(1, 503, lost=True)
    key = connector.write_event(CAL, call(hours=3))
    assert [e["id"] for e in google.events(CAL)] == [key]
    assert google.event(CAL, key)["end"]["dateTime"] == "2026-12-07T12:00:00Z"
    assert google.requests["events.insert"] == 2 and google.requests["events.patch"] == 1


def test_the_services_own_events_come_back_flagged(google: FakeGoogle) -> None:
    connector = connect(google)
    full = connector.sync(CAL, None, *WINDOW)
    key = connector.write_event(CAL, call("call-7", body="customer details"))
    delta = connector.sync(CAL, full.cursor, *WINDOW)
    assert [(e.key, e.own, e.busy) for e in delta.upserts] == [(key, "call-7", True)]
    assert gcal.call_of(key) == "call-7"


def test_an_own_event_without_its_marker_is_still_known_by_its_id(google: FakeGoogle) -> None:
    connector = connect(google)
    key = connector.write_event(CAL, call("call-8"))
    google._calendars[CAL].events[key].pop("extendedProperties")  # hidden from this grant
    other = google.add_event(CAL, T0, T0 + timedelta(hours=1), private={"switchboardCall": ""})
    own = {e.key: e.own for e in connector.sync(CAL, None, *WINDOW).upserts}
    assert own == {key: "call-8", other: None}


def test_update_moves_the_event_and_recreates_a_deleted_one(google: FakeGoogle) -> None:
    connector = connect(google)
    key = connector.write_event(CAL, call())
    assert connector.update_event(CAL, key, call(hours=2)) == key
    assert google.event(CAL, key)["end"]["dateTime"] == "2026-12-07T11:00:00Z"

    google.delete_event(CAL, key)  # the agent deleted it in Google Calendar
    assert connector.update_event(CAL, key, call(hours=3)) == key
    assert google.event(CAL, key)["status"] == "confirmed"

    missing = gcal.event_id("call-77")
    assert connector.update_event(CAL, missing, call("call-77")) == missing
    assert google.event(CAL, missing)["status"] == "confirmed"


def test_deleting_an_event_already_gone_is_fine(google: FakeGoogle) -> None:
    connector = connect(google)
    key = connector.write_event(CAL, call())
    connector.delete_event(CAL, key)
    connector.delete_event(CAL, key)  # 410 Gone
    connector.delete_event(CAL, gcal.event_id("never-written"))  # 404
    assert google.event(CAL, key)["status"] == "cancelled"


@given(st.text(max_size=400), st.text(max_size=400))
def test_event_ids_are_valid_google_ids_one_per_call(call_id: str, other: str) -> None:
    key = gcal.event_id(call_id)
    assert re.fullmatch(r"[a-v0-9]{5,1024}", key)
    assert gcal.call_of(key) in (call_id, None)
    if len(call_id.encode()) <= 600:  # a usual call id reads back
        assert gcal.call_of(key) == call_id
    assert (gcal.event_id(other) == key) == (other == call_id)


def test_event_ids_differ_between_calls() -> None:
    keys = {gcal.event_id(f"call-{n}") for n in range(1000)}
    assert len(keys) == 1000
    assert gcal.call_of("ev000001") is None and gcal.call_of("sbcall!!") is None
    assert gcal.call_of(gcal.event_id("x" * 700)) is None  # hashed


# --- push -------------------------------------------------------------------------------------


def test_watch_opens_a_channel_and_unwatch_stops_it(google: FakeGoogle) -> None:
    connector = connect(google)
    channel = connector.watch(
        CAL, "https://switchboard.example/push/google", "tok-1", timedelta(hours=6)
    )
    held = google.channels[channel.channel_id]
    assert (held.calendar, held.address, held.token) == (
        CAL,
        "https://switchboard.example/push/google",
        "tok-1",
    )
    assert channel.resource_id == held.resource_id and channel.calendar == CAL
    expected = datetime.now(UTC) + timedelta(hours=6)
    assert abs(channel.expires_at - expected) < timedelta(minutes=1)
    connector.unwatch(channel)
    assert google.channels == {}
    connector.unwatch(channel)  # gone already: fine


def test_a_watch_retried_after_a_lost_answer_opens_a_channel_under_a_new_id(
    google: FakeGoogle,
) -> None:
    connector = connect(google)
    google.fail_next(1, 503, lost=True)  # Google opened the channel; the answer was lost
    channel = connector.watch(CAL, "https://switchboard.example/push", "tok", timedelta(hours=1))
    assert len(google.channels) == 2 and channel.channel_id in google.channels
    assert google.channels[channel.channel_id].resource_id == channel.resource_id


def test_the_fake_pushes_notifications_the_way_google_does(google: FakeGoogle) -> None:
    received: list[dict[str, str]] = []

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            received.append({k.lower(): v for k, v in self.headers.items()})
            self.send_response(204)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02})
    thread.start()
    try:
        address = f"http://127.0.0.1:{server.server_address[1]}/push/google"
        channel = connect(google).watch(CAL, address, "tok-2", timedelta(hours=1))
        assert google.push(CAL) == [204]
        assert google.push("someone-else@example.com") == []
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
    [headers] = received
    assert headers["x-goog-channel-id"] == channel.channel_id
    assert headers["x-goog-channel-token"] == "tok-2"
    assert headers["x-goog-resource-id"] == channel.resource_id
    assert headers["x-goog-resource-state"] == "exists"


# --- privacy ----------------------------------------------------------------------------------


def test_no_sentinel_reaches_anything_the_connector_returns_or_raises(google: FakeGoogle) -> None:
    google.add_calendar(CAL, time_zone="Asia/Tokyo")
    google.add_event(CAL, T0, T0 + timedelta(hours=1), **private())
    google.add_all_day(CAL, date(2026, 12, 9), date(2026, 12, 10), **private())
    google.add_recurring(
        CAL, T0 + timedelta(days=1), T0 + timedelta(days=1, hours=1), count=3, **private()
    )
    connector = connect(google)
    full = connector.sync(CAL, None, *WINDOW)
    google.add_event(CAL, T0 + timedelta(hours=3), T0 + timedelta(hours=4), **private())
    delta = connector.sync(CAL, full.cursor, *WINDOW)
    busy = connector.busy([CAL], *WINDOW)
    assert len(full.upserts) == 5 and len(delta.upserts) == 1 and len(busy) >= 4
    google.fail_next(1, 400, reason="badRequest")
    with pytest.raises(ProviderError) as caught:
        connector.sync(CAL, None, *WINDOW)
    assert_private(full, delta, busy, connector, caught.value, caught.value.reason)
    # and none was even sent: the fake applies fields= the way Google does
    for logged in google.log:
        if logged.kind == "events.list":
            assert "summary" not in logged.query["fields"]


# --- sharing ----------------------------------------------------------------------------------


def test_connectors_in_threads_share_the_api_resources_safely(google: FakeGoogle) -> None:
    agents = [f"agent{n:02d}@example.com" for n in range(24)]
    for n, agent in enumerate(agents):
        google.add_calendar(agent)
        for k in range(n % 4 + 1):
            google.add_event(agent, T0 + timedelta(days=k), T0 + timedelta(days=k, hours=1))
    credentials = [google.oauth_credentials() for _ in agents]
    found: dict[str, int] = {}
    failures: list[BaseException] = []

    def work(first: int) -> None:
        try:
            for n in range(first, len(agents), 4):
                with connect(google, credentials[n]) as connector:
                    found[agents[n]] = len(connector.sync(agents[n], None, *WINDOW).upserts)
        except BaseException as exc:  # reported below
            failures.append(exc)

    threads = [threading.Thread(target=work, args=(first,)) for first in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert found == {agent: n % 4 + 1 for n, agent in enumerate(agents)}
    assert gcal._resources(google.api_endpoint) is gcal._resources(google.api_endpoint)


def test_the_fake_applies_partial_responses_like_google() -> None:
    tree = parse_fields(gcal.EVENT_FIELDS)
    page = {
        "kind": "calendar#events",
        "timeZone": "UTC",
        "nextSyncToken": "s",
        "items": [
            {
                "id": "a",
                "summary": SENTINELS[0],
                "start": {"dateTime": "2026-12-07T09:00:00Z"},
                "attendees": [{"email": SENTINELS[3]}],
                "extendedProperties": {"private": {"x": "1"}, "shared": {"y": SENTINELS[1]}},
            }
        ],
    }
    assert select_fields(page, tree) == {
        "timeZone": "UTC",
        "nextSyncToken": "s",
        "items": [
            {
                "id": "a",
                "start": {"dateTime": "2026-12-07T09:00:00Z"},
                "extendedProperties": {"private": {"x": "1"}},
            }
        ],
    }
