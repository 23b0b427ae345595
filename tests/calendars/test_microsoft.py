"""The Microsoft 365 connector with the real msal and requests against the fake authority and
Graph (benchmarks/calendar_fakes/microsoft.py), over HTTPS with a CA made for the run."""

from __future__ import annotations

import json
import logging
import re
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import calendars
from benchmarks.calendar_fakes.microsoft import FakeMicrosoft
from calendars import microsoft
from calendars.base import (
    CallEvent,
    CredentialError,
    CursorExpired,
    ProviderError,
    Retry,
)

T0 = datetime(2026, 12, 7, tzinfo=UTC)
SENTINELS = ("SENTINEL-SUBJECT", "SENTINEL-BODY", "SENTINEL-LOCATION", "sentinel-attendee")


def no_sleep(_: float) -> None:
    pass


@pytest.fixture
def ms() -> Iterator[FakeMicrosoft]:
    with FakeMicrosoft() as fake:
        try:
            yield fake
        finally:  # close the clients' connections before the server goes
            microsoft.reset_apps()


def connect(
    ms: FakeMicrosoft, mailbox: str = "ada@contoso.com", retry: Retry | None = None, **extra: Any
) -> microsoft.MicrosoftConnector:
    connector = calendars.connect(
        "microsoft",
        ms.settings(mailbox, **extra),
        ms.credentials(),
        timeout=5,
        retry=retry or Retry(sleep=no_sleep),
    )
    assert isinstance(connector, microsoft.MicrosoftConnector)
    return connector


def private_event(
    ms: FakeMicrosoft, mailbox: str, start: datetime, hours: float = 1, **kw: Any
) -> str:
    return ms.add_event(
        mailbox,
        start,
        start + timedelta(hours=hours),
        subject=SENTINELS[0],
        body=SENTINELS[1],
        location=SENTINELS[2],
        attendees=[SENTINELS[3] + "@example.com"],
        organizer="boss-" + SENTINELS[3] + "@example.com",
        **kw,
    )


# --- tokens


def test_one_token_for_many_connectors_and_calls(ms: FakeMicrosoft) -> None:
    for i in range(5):
        ms.add_mailbox(f"agent{i}@contoso.com")
    first = connect(ms, "agent0@contoso.com")
    first.sync("primary", None, T0, T0 + timedelta(days=7))
    assert ms.token_requests == 1
    first.sync("primary", None, T0, T0 + timedelta(days=7))  # a second call
    for i in range(1, 5):  # new connectors of the same app registration
        connect(ms, f"agent{i}@contoso.com").sync("primary", None, T0, T0 + timedelta(days=7))
    assert ms.token_requests == 1
    assert ms.discovery_requests == 1
    assert ms.requests["delta"] == 6


def test_a_bad_client_secret_is_a_dead_credential(ms: FakeMicrosoft) -> None:
    ms.add_mailbox("ada@contoso.com")
    connector = calendars.connect(
        "microsoft",
        ms.settings("ada@contoso.com"),
        ms.credentials("not-the-secret"),
        timeout=5,
        retry=Retry(sleep=no_sleep),
    )
    with pytest.raises(CredentialError) as caught:
        connector.sync("primary", None, T0, T0 + timedelta(days=1))
    assert "invalid_client" in caught.value.reason
    assert "AADSTS7000215" in caught.value.reason
    assert "not-the-secret" not in caught.value.reason
    assert ms.requests["delta"] == 0


def test_a_rejected_token_is_refreshed_once(ms: FakeMicrosoft) -> None:
    ms.add_mailbox("ada@contoso.com")
    connector = connect(ms)
    connector.sync("primary", None, T0, T0 + timedelta(days=1))
    ms.revoke_tokens()
    connector.sync("primary", None, T0, T0 + timedelta(days=1))
    assert ms.token_requests == 2
    ms.reject_tokens = True
    with pytest.raises(CredentialError, match="401"):
        connector.sync("primary", None, T0, T0 + timedelta(days=1))
    assert ms.token_requests == 3


# --- getSchedule


def test_busy_chunks_schedules_and_ranges(ms: FakeMicrosoft) -> None:
    mailboxes = [f"agent{i:02d}@contoso.com" for i in range(45)]
    for i, mailbox in enumerate(mailboxes):
        # one event per mailbox, spread over 130 days
        ms.add_event(
            mailbox, T0 + timedelta(days=3 * i, hours=9), T0 + timedelta(days=3 * i, hours=10)
        )
    ms.add_event(mailboxes[0], T0 + timedelta(hours=12), T0 + timedelta(hours=13), show_as="free")
    ms.add_event(
        mailboxes[0], T0 + timedelta(hours=14), T0 + timedelta(hours=15), show_as="workingElsewhere"
    )
    ms.add_event(mailboxes[1], T0 + timedelta(hours=14), T0 + timedelta(hours=15), show_as="oof")
    ms.add_event(
        mailboxes[2], T0 + timedelta(hours=14), T0 + timedelta(hours=15), show_as="tentative"
    )
    connector = connect(ms, mailboxes[0])
    busy = connector.busy(mailboxes, T0, T0 + timedelta(days=140))
    assert ms.schedule_calls, "getSchedule was called"
    assert all(n <= 20 for n, _ in ms.schedule_calls)
    assert all(span < timedelta(days=62) for _, span in ms.schedule_calls)
    assert len(ms.schedule_calls) == 3 * 3  # ceil(45 / 20) groups x ceil(140 / 61) windows
    by_mailbox = {m: [(b.start, b.end) for b in busy if b.calendar == m] for m in mailboxes}
    for i, mailbox in enumerate(mailboxes):
        expected = [(T0 + timedelta(days=3 * i, hours=9), T0 + timedelta(days=3 * i, hours=10))]
        if i in (1, 2):
            expected.append((T0 + timedelta(hours=14), T0 + timedelta(hours=15)))
        assert sorted(by_mailbox[mailbox]) == sorted(expected), mailbox
    assert all(b.busy and b.key for b in busy)
    assert len({(b.calendar, b.key) for b in busy}) == len(busy)


def test_busy_names_the_own_mailbox_primary_and_never_reads_an_error_as_free(
    ms: FakeMicrosoft,
) -> None:
    private_event(ms, "ada@contoso.com", T0 + timedelta(hours=9))
    connector = connect(ms)
    [event] = connector.busy(["primary"], T0, T0 + timedelta(days=1))
    assert (event.calendar, event.start) == ("primary", T0 + timedelta(hours=9))
    with pytest.raises(ProviderError, match=r"nobody@contoso\.com"):
        connector.busy(["primary", "nobody@contoso.com"], T0, T0 + timedelta(days=1))


# --- delta


def test_full_then_incremental_with_removed_items(ms: FakeMicrosoft) -> None:
    mailbox = "ada@contoso.com"
    keep = private_event(ms, mailbox, T0 + timedelta(hours=9))
    move = private_event(ms, mailbox, T0 + timedelta(hours=11))
    gone = private_event(ms, mailbox, T0 + timedelta(hours=13))
    cancel = private_event(ms, mailbox, T0 + timedelta(hours=15))
    free = private_event(ms, mailbox, T0 + timedelta(hours=17), show_as="free")
    connector = connect(ms)
    end = T0 + timedelta(days=7)
    full = connector.sync("primary", None, T0, end)
    assert full.full and full.cursor and full.requests == 1
    assert {e.key for e in full.upserts} == {keep, move, gone, cancel, free}
    assert {e.key: e.transparency for e in full.upserts}[free] == "transparent"
    assert all(e.own is None for e in full.upserts)

    ms.move_event(move, T0 + timedelta(days=1, hours=8), T0 + timedelta(days=1, hours=9))
    ms.delete_event(gone)
    ms.update_event(cancel, cancelled=True)
    added = private_event(ms, mailbox, T0 + timedelta(days=2))
    delta = connector.sync("primary", full.cursor, T0, end)
    assert not delta.full
    assert {e.key: (e.start, e.end) for e in delta.upserts} == {
        move: (T0 + timedelta(days=1, hours=8), T0 + timedelta(days=1, hours=9)),
        added: (T0 + timedelta(days=2), T0 + timedelta(days=2, hours=1)),
    }
    assert set(delta.removed) == {gone, cancel}
    assert delta.cursor and delta.cursor != full.cursor

    quiet = connector.sync("primary", delta.cursor, T0, end)  # nothing changed
    assert (quiet.upserts, quiet.removed) == ((), ())


def test_next_links_are_followed(ms: FakeMicrosoft) -> None:
    ms.page_size = 3
    calendar = ms.add_calendar("ada@contoso.com", "AAMkCalendar-Second==")
    keys = {
        ms.add_event(
            "ada@contoso.com",
            T0 + timedelta(hours=h),
            T0 + timedelta(hours=h, minutes=30),
            calendar=calendar,
        )
        for h in range(10)
    }
    connector = connect(ms)
    full = connector.sync(calendar, None, T0, T0 + timedelta(days=1))
    assert {e.key for e in full.upserts} == keys
    assert {e.calendar for e in full.upserts} == {calendar}
    assert full.requests == 4  # 3 + 3 + 3 + 1
    assert ms.requests["delta"] == 4


def test_all_day_events_span_local_days(ms: FakeMicrosoft) -> None:
    day = T0 + timedelta(days=1)
    ms.add_event("ada@contoso.com", day, day + timedelta(days=1), all_day=True)
    connector = connect(ms, timezone="Europe/Paris")
    [event] = connector.sync("primary", None, T0, T0 + timedelta(days=3)).upserts
    assert event.start == datetime(2026, 12, 7, 23, tzinfo=UTC)  # midnight in Paris
    assert event.end == datetime(2026, 12, 8, 23, tzinfo=UTC)


def test_an_expired_delta_link_asks_for_a_full_sync(ms: FakeMicrosoft) -> None:
    ms.add_mailbox("ada@contoso.com")
    connector = connect(ms)
    full = connector.sync("primary", None, T0, T0 + timedelta(days=7))
    ms.expire_delta_links()
    with pytest.raises(CursorExpired):
        connector.sync("primary", full.cursor, T0, T0 + timedelta(days=7))
    # a window reaching past the round's own, or a cursor from another endpoint, too
    fresh = connector.sync("primary", None, T0, T0 + timedelta(days=7))
    with pytest.raises(CursorExpired):
        connector.sync("primary", fresh.cursor, T0, T0 + timedelta(days=15))
    connector.sync("primary", fresh.cursor, T0, T0 + timedelta(days=14))
    assert fresh.cursor is not None
    foreign = fresh.cursor.replace("https://127.0.0.1", "https://evil.example")
    with pytest.raises(CursorExpired):
        connector.sync("primary", foreign, T0, T0 + timedelta(days=7))


# --- throttling


def test_429_waits_for_retry_after_then_succeeds(ms: FakeMicrosoft) -> None:
    ms.add_mailbox("ada@contoso.com")
    waits: list[float] = []
    connector = connect(ms, retry=Retry(attempts=4, sleep=waits.append))
    ms.throttle(2, retry_after="3")
    delta = connector.sync("primary", None, T0, T0 + timedelta(days=1))
    assert waits == [3.0, 3.0]
    assert delta.full and delta.requests == 3
    ms.throttle(4, retry_after=None, status=503)
    with pytest.raises(ProviderError, match="503"):
        connector.busy(["primary"], T0, T0 + timedelta(days=1))
    assert len(waits) == 2 + 3  # backoff between the 4 tries


# --- write-back


def call(call_id: str = "call-42", hour: int = 10) -> CallEvent:
    start = T0 + timedelta(hours=hour)
    return CallEvent(call_id, start, start + timedelta(minutes=30), "Call about T-1001")


def test_writes_are_idempotent_and_read_back_as_own(ms: FakeMicrosoft) -> None:
    connector = connect(ms)
    ms.add_mailbox("ada@contoso.com")
    key = connector.write_event("primary", call())
    again = connector.write_event("primary", call())  # a retry after a lost answer
    assert again == key
    [stored] = ms.events("ada@contoso.com")
    assert stored["transactionId"] == "switchboard-call-42"
    assert stored["attendees"] == []
    assert stored["subject"] == "Call about T-1001"

    full = connector.sync("primary", None, T0, T0 + timedelta(days=1))
    [mine] = full.upserts
    assert (mine.key, mine.own) == (key, "call-42")

    moved = call(hour=14)
    assert connector.write_event("primary", moved) == key  # exists: brought to the new time
    assert connector.update_event("primary", key, call(hour=15)) == key
    [stored] = ms.events("ada@contoso.com")
    assert stored["start"]["dateTime"].startswith("2026-12-07T15:00:00")

    ms.delete_event(key)  # someone deleted it by hand
    recreated = connector.update_event("primary", key, call(hour=16))
    assert recreated != key
    delta = connector.sync("primary", full.cursor, T0, T0 + timedelta(days=1))
    assert [(e.key, e.own) for e in delta.upserts] == [(recreated, "call-42")]
    assert delta.removed == (key,)

    connector.delete_event("primary", recreated)
    connector.delete_event("primary", recreated)  # gone already: fine
    assert ms.events("ada@contoso.com") == []


def test_watch_and_unwatch(ms: FakeMicrosoft) -> None:
    ms.add_mailbox("ada@contoso.com")
    connector = connect(ms)
    channel = connector.watch(
        "primary", "https://hooks.example/graph", "s3cret-token", timedelta(days=30)
    )
    [sub] = ms.subscriptions.values()
    assert sub["clientState"] == "s3cret-token"
    assert sub["resource"] == "/users/ada@contoso.com/events"
    assert sub["changeType"] == "created,updated,deleted"
    assert channel.channel_id == sub["id"]
    assert timedelta(days=6) < channel.expires_at - datetime.now(UTC) <= timedelta(days=7)
    other = ms.add_calendar("ada@contoso.com", "AAMkSecond")
    second = connector.watch(other, "https://hooks.example/graph", "t", timedelta(hours=1))
    assert ms.subscriptions[second.channel_id]["resource"] == (
        "/users/ada@contoso.com/calendars/AAMkSecond/events"
    )
    assert timedelta(minutes=59) < second.expires_at - datetime.now(UTC) <= timedelta(hours=1)
    connector.unwatch(channel)
    connector.unwatch(channel)  # gone already: fine
    connector.unwatch(second)
    assert ms.subscriptions == {}


# --- privacy


def test_no_content_crosses_the_connector(
    ms: FakeMicrosoft, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    mailbox = "ada@contoso.com"
    for h in range(5):
        private_event(ms, mailbox, T0 + timedelta(hours=9 + h), show_as=("busy", "free")[h % 2])
    connector = connect(ms)
    out: list[Any] = [connector]
    out.append(connector.busy(["primary"], T0, T0 + timedelta(days=1)))
    full = connector.sync("primary", None, T0, T0 + timedelta(days=1))
    out.append(full)
    for event_id in list(ms.by_id):
        ms.update_event(event_id, subject=SENTINELS[0] + "-2")
    out.append(connector.sync("primary", full.cursor, T0, T0 + timedelta(days=1)))
    ms.reject_tokens = True
    with pytest.raises(CredentialError) as caught:
        connector.busy(["primary"], T0, T0 + timedelta(days=1))
    out.append(caught.value)
    text = repr(out) + str(caught.value) + caplog.text
    assert "SENTINEL-SUBJECT" in repr(ms.events(mailbox))  # the fake did carry them
    for sentinel in SENTINELS:
        assert sentinel.lower() not in text.lower()
    assert ms.client_secret not in caplog.text
    assert ms.issued and not any(token in caplog.text for token in ms.issued)
    assert "msal" in caplog.text or "urllib3" in caplog.text  # the libraries' DEBUG was seen


# --- configuration


def test_problems_name_the_fields() -> None:
    assert (
        microsoft.problems(
            {
                "tenant": "8d1f4c2e-0a3b-4c5d-9e6f-7a8b9c0d1e2f",
                "client_id": "3f2a1b0c-9d8e-4f7a-8b6c-5d4e3f2a1b0c",
                "mailbox": "ada@contoso.com",
            },
            {"client_secret": "x"},
        )
        == []
    )
    found = dict(
        microsoft.problems(
            {
                "tenant": "common",
                "client_id": "app",
                "mailbox": "ada/../x",
                "authority": "http://login.example/t",
                "graph_endpoint": "https://graph.example/v1.0?x=1",
                "ca_bundle": "/nonexistent/ca.pem",
                "timezone": "Mars/Olympus",
            },
            {"client_secret": "  "},
        )
    )
    assert set(found) == {
        "settings.tenant",
        "settings.client_id",
        "settings.mailbox",
        "settings.authority",
        "settings.graph_endpoint",
        "settings.ca_bundle",
        "settings.timezone",
        "credentials.client_secret",
    }
    assert calendars.problems("microsoft", {}, {}) == [
        ("settings.tenant", "required: the directory (tenant) id"),
        ("settings.client_id", "required: the app registration's client id"),
        ("settings.mailbox", "required: the agent's user id or UPN"),
        ("credentials.client_secret", "required: the app registration's secret"),
    ]
    with pytest.raises(CredentialError, match=r"settings\.mailbox"):
        calendars.connect("microsoft", {"tenant": "contoso.com"}, {"client_secret": "x"})


@given(
    st.datetimes(
        min_value=datetime(2000, 1, 1),  # noqa: DTZ001 (hypothesis: naive bounds)
        max_value=datetime(2100, 1, 1),  # noqa: DTZ001
        timezones=st.just(UTC),
    ),
    st.timedeltas(min_value=timedelta(seconds=1), max_value=timedelta(days=800)),
)
def test_windows_cover_the_range_in_allowed_spans(start: datetime, length: timedelta) -> None:
    windows = microsoft._windows(start, start + length, microsoft.MAX_SPAN)
    assert windows[0][0] == start and windows[-1][1] == start + length
    assert all(a < b and b - a < timedelta(days=62) for a, b in windows)
    assert all(windows[i][1] == windows[i + 1][0] for i in range(len(windows) - 1))


@given(
    st.text(min_size=1, max_size=128).filter(lambda c: not re.search(r"~r[0-9a-f]{12}$", c)),
    st.binary(min_size=6, max_size=6),
)
def test_own_call_round_trips(call_id: str, suffix: bytes) -> None:
    assert microsoft.own_call("switchboard-" + call_id) == call_id
    assert microsoft.own_call(f"switchboard-{call_id}~r{suffix.hex()}") == call_id
    assert microsoft.own_call("someone-else-" + call_id) is None
    assert microsoft.own_call(None) is None


def test_sparse_delta_items_are_completed_with_a_select(ms: FakeMicrosoft) -> None:
    event_id = private_event(ms, "ada@contoso.com", T0 + timedelta(hours=9))
    connector = connect(ms)
    full = connector.sync("primary", None, T0, T0 + timedelta(days=1))
    ms.sparse_updates = True
    ms.move_event(event_id, T0 + timedelta(hours=11), T0 + timedelta(hours=12))
    delta = connector.sync("primary", full.cursor, T0, T0 + timedelta(days=1))
    [event] = delta.upserts
    assert (event.key, event.start, event.end) == (
        event_id,
        T0 + timedelta(hours=11),
        T0 + timedelta(hours=12),
    )
    assert ms.requests["get_event"] == 1 and delta.requests == 2
    assert "SENTINEL" not in repr(delta)


def test_busy_lists_a_calendar_id_with_calendar_view(ms: FakeMicrosoft) -> None:
    ms.page_size = 2
    calendar = ms.add_calendar("ada@contoso.com", "AAMkAGSecond/Calendar+==")
    busy_ids = [
        private_event(ms, "ada@contoso.com", T0 + timedelta(hours=h), calendar=calendar)
        for h in (8, 10, 12)
    ]
    private_event(
        ms, "ada@contoso.com", T0 + timedelta(hours=14), calendar=calendar, show_as="free"
    )
    private_event(
        ms, "ada@contoso.com", T0 + timedelta(hours=16), calendar=calendar, cancelled=True
    )
    private_event(ms, "ada@contoso.com", T0 + timedelta(hours=9))  # the default calendar
    connector = connect(ms)
    busy = connector.busy([calendar, "primary"], T0, T0 + timedelta(days=1))
    assert [(b.calendar, b.key) for b in busy if b.calendar == calendar] == [
        (calendar, k) for k in busy_ids
    ]
    assert [b.start for b in busy if b.calendar == "primary"] == [T0 + timedelta(hours=9)]
    assert ms.requests["calendarView"] == 3  # 5 events, 2 a page
    assert "sentinel" not in repr(busy).lower()


def test_an_unknown_mailbox_is_a_dead_connection(ms: FakeMicrosoft) -> None:
    connector = connect(ms, "nobody@contoso.com")
    with pytest.raises(CredentialError, match="ErrorInvalidUser"):
        connector.sync("primary", None, T0, T0 + timedelta(days=1))


def test_the_fake_notifies_subscriptions(ms: FakeMicrosoft) -> None:
    received: list[Any] = []

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            received.append((self.path, self.rfile.read(length)))
            token = parse_qs(urlsplit(self.path).query).get("validationToken", [""])[0]
            data = token.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    hook = HTTPServer(("127.0.0.1", 0), Hook)
    thread = threading.Thread(target=hook.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        ms.handshake = True
        event_id = ms.add_event("ada@contoso.com", T0, T0 + timedelta(hours=1))
        connector = connect(ms)
        address = f"http://127.0.0.1:{hook.server_address[1]}/graph"
        channel = connector.watch("primary", address, "tok-123", timedelta(hours=1))
        assert len(received) == 1 and "validationToken=" in received[0][0]
        assert ms.notify(event_id) == [200]
        [notification] = json.loads(received[1][1])["value"]
        assert notification["subscriptionId"] == channel.channel_id
        assert notification["clientState"] == "tok-123"
        assert notification["resourceData"]["id"] == event_id
    finally:
        hook.shutdown()
        hook.server_close()
        thread.join(timeout=5)


@pytest.mark.slow
def test_500_mailboxes_one_token(ms: FakeMicrosoft) -> None:
    mailboxes = [f"agent{i:03d}@contoso.com" for i in range(500)]
    for mailbox in mailboxes:
        for day in range(3):
            start = T0 + timedelta(days=day, hours=9)
            ms.add_event(mailbox, start, start + timedelta(hours=1), subject=SENTINELS[0])
    connectors = [connect(ms, m) for m in mailboxes]
    fulls = [c.sync("primary", None, T0, T0 + timedelta(days=30)) for c in connectors]
    assert all(len(f.upserts) == 3 and f.requests == 1 for f in fulls)
    rounds = [
        c.sync("primary", f.cursor, T0, T0 + timedelta(days=30))
        for c, f in zip(connectors, fulls, strict=True)
    ]
    assert all(r.upserts == () and r.removed == () for r in rounds)
    assert ms.token_requests == 1
    assert ms.requests["delta"] == 1000


def test_every_request_has_a_timeout(ms: FakeMicrosoft) -> None:
    ms.add_mailbox("ada@contoso.com")
    ms.stall = 1.0
    connector = calendars.connect(
        "microsoft",
        ms.settings("ada@contoso.com"),
        ms.credentials(),
        timeout=0.2,
        retry=Retry(attempts=2, sleep=no_sleep),
    )
    began = time.monotonic()
    with pytest.raises(ProviderError, match=r"authority discovery failed: (ReadTimeout|Timeout)"):
        connector.sync("primary", None, T0, T0 + timedelta(days=1))
    assert time.monotonic() - began < 0.9  # two tries of 0.2 s, not two of 1 s
    ms.stall = 0.0
    connector.sync("primary", None, T0, T0 + timedelta(days=1))  # the token comes
    ms.stall = 1.0
    with pytest.raises(ProviderError, match="calendarView/delta: ReadTimeout"):
        connector.sync("primary", None, T0, T0 + timedelta(days=1))


def test_concurrent_connectors_share_one_token(ms: FakeMicrosoft) -> None:
    mailboxes = [f"agent{i:02d}@contoso.com" for i in range(40)]
    for mailbox in mailboxes:
        ms.add_event(mailbox, T0 + timedelta(hours=9), T0 + timedelta(hours=10))

    def sync(mailbox: str) -> int:
        delta = connect(ms, mailbox).sync("primary", None, T0, T0 + timedelta(days=1))
        return len(delta.upserts)

    with ThreadPoolExecutor(max_workers=8) as pool:
        assert list(pool.map(sync, mailboxes)) == [1] * len(mailboxes)
    assert ms.token_requests == 1


CHANGES = st.lists(
    st.tuples(
        st.sampled_from(["add", "move", "delete", "cancel", "free", "busy"]),
        st.integers(0, 1000),  # which event (modulo the live ones)
        st.integers(0, 400),  # an hour from T0 (the window is 14 days: 336 h)
    ),
    max_size=12,
)


def test_delta_rounds_keep_a_mirror_equal_to_the_calendar() -> None:
    """Merging the full listing and then every incremental round, key by key, leaves exactly
    the calendar's events of the window -- whatever was added, moved, deleted or cancelled."""
    window = (T0, T0 + timedelta(days=7))
    with FakeMicrosoft(page_size=4) as ms:

        @settings(max_examples=25)
        @given(initial=CHANGES, rounds=st.lists(CHANGES, min_size=1, max_size=3))
        def run(initial: list[tuple[str, int, int]], rounds: list[Any]) -> None:
            mailbox = f"m{uuid.uuid4().hex[:12]}@contoso.com"
            ms.add_mailbox(mailbox)
            apply(ms, mailbox, initial)
            connector = connect(ms, mailbox)
            full = connector.sync("primary", None, *window)
            mirror = {e.key: e for e in full.upserts}
            cursor = full.cursor
            for changes in rounds:
                apply(ms, mailbox, changes)
                delta = connector.sync("primary", cursor, *window)
                for key in delta.removed:
                    mirror.pop(key, None)
                mirror.update({e.key: e for e in delta.upserts})
                cursor = delta.cursor
                assert truth(ms, mailbox, window[0], window[1] + microsoft.WINDOW_SLACK) == {
                    k: (e.start, e.end, e.transparency) for k, e in mirror.items()
                }

        try:
            run()
        finally:
            microsoft.reset_apps()


def apply(ms: FakeMicrosoft, mailbox: str, changes: list[tuple[str, int, int]]) -> None:
    for verb, which, hour in changes:
        start = T0 + timedelta(hours=hour)
        live = [e["id"] for e in ms.events(mailbox)]
        if verb == "add" or not live:
            private_event(ms, mailbox, start)
            continue
        target = live[which % len(live)]
        if verb == "move":
            ms.move_event(target, start, start + timedelta(hours=2))
        elif verb == "delete":
            ms.delete_event(target)
        elif verb == "cancel":
            ms.update_event(target, cancelled=True)
        else:
            ms.update_event(target, show_as=verb)


def truth(
    ms: FakeMicrosoft, mailbox: str, start: datetime, end: datetime
) -> dict[str, tuple[datetime, datetime, str]]:
    out = {}
    for event in ms.events(mailbox):
        begins = datetime.fromisoformat(event["start"]["dateTime"][:19]).replace(tzinfo=UTC)
        ends = datetime.fromisoformat(event["end"]["dateTime"][:19]).replace(tzinfo=UTC)
        if event["isCancelled"] or ends <= start or begins >= end:
            continue
        out[event["id"]] = (begins, ends, "transparent" if event["showAs"] == "free" else "opaque")
    return out


def test_a_throttled_token_request_is_retried(ms: FakeMicrosoft) -> None:
    ms.add_mailbox("ada@contoso.com")
    waits: list[float] = []
    connector = connect(ms, retry=Retry(sleep=waits.append, rand=lambda: 1.0))
    ms.throttle_tokens(1)
    delta = connector.sync("primary", None, T0, T0 + timedelta(days=1))
    assert delta.full
    assert ms.token_requests == 2
    assert waits == [0.5]  # exponential backoff's first step (no Retry-After through msal)
