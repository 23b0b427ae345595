"""The ICS feed connector (calendars/ics.py) against a fake feed server on 127.0.0.1."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any
from unittest.mock import patch
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import calendars
from benchmarks.calendar_fakes.ics import BERLIN_VTIMEZONE, FakeIcs, event, feed
from calendars import ics
from calendars.base import (
    BusyEvent,
    CallEvent,
    CredentialError,
    CursorExpired,
    ProviderError,
    Retry,
    Unsupported,
    WatchChannel,
)

BERLIN = ZoneInfo("Europe/Berlin")
WINDOW = (datetime(2026, 1, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC))
SECRET = "private-3f9c2a7d51e04b6c8e2f"  # the secret part of a real address
PATH = f"/calendar/ical/agent%40example.com/{SECRET}/basic.ics"


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def berlin(*args: int) -> datetime:
    return datetime(*args, tzinfo=BERLIN)  # type: ignore[misc]


@pytest.fixture
def server() -> Iterator[FakeIcs]:
    with FakeIcs() as fake:
        yield fake


@pytest.fixture
def sleeps() -> list[float]:
    return []


def connector(
    server: FakeIcs,
    sleeps: list[float] | None = None,
    *,
    path: str = PATH,
    settings: dict[str, Any] | None = None,
    timeout: float = 5.0,
    attempts: int = 4,
) -> Any:
    waits = sleeps if sleeps is not None else []
    return calendars.connect(
        "ics",
        settings or {},
        {"url": server.url(path)},
        timeout=timeout,
        retry=Retry(attempts=attempts, max_wait=30.0, sleep=waits.append, rand=lambda: 0.5),
    )


def listing(server: FakeIcs, body: str, **kwargs: Any) -> dict[str, BusyEvent]:
    server.put(PATH, body)
    delta = connector(server, **kwargs).sync("cal", None, *WINDOW)
    assert delta.full
    keys = [e.key for e in delta.upserts]
    assert len(keys) == len(set(keys))
    return {e.key: e for e in delta.upserts}


# --- expansion ------------------------------------------------------------------------------


def test_weekly_recurrence_keeps_local_time_across_both_dst_changes(server: FakeIcs) -> None:
    weekly = event(
        "weekly-1",
        berlin(2026, 3, 16, 10),
        berlin(2026, 3, 16, 11),
        lines=["RRULE:FREQ=WEEKLY;UNTIL=20261110T000000Z"],
    )
    found = listing(server, feed(weekly))
    starts = sorted(e.start for e in found.values())
    assert len(starts) == 35  # 16 March .. 9 November, every Monday
    for e in found.values():
        local = e.start.astimezone(BERLIN)
        assert (local.hour, local.minute, local.weekday()) == (10, 0, 0)
        assert e.end - e.start == timedelta(hours=1)
        assert e.start.tzinfo is UTC and e.transparency == "opaque"
    # 29 March 2026 and 25 October 2026 are the changes: UTC shifts by an hour each time.
    assert found["weekly-1#20260323T090000Z"].start == utc(2026, 3, 23, 9)
    assert found["weekly-1#20260330T080000Z"].start == utc(2026, 3, 30, 8)
    assert found["weekly-1#20261019T080000Z"].start == utc(2026, 10, 19, 8)
    assert found["weekly-1#20261026T090000Z"].start == utc(2026, 10, 26, 9)


def test_exdate_and_moved_instance(server: FakeIcs) -> None:
    series = event(
        "standup",
        berlin(2026, 3, 2, 9),
        berlin(2026, 3, 2, 9, 30),
        lines=[
            "RRULE:FREQ=WEEKLY;COUNT=5",
            "EXDATE;TZID=Europe/Berlin:20260309T090000",
        ],
    )
    moved = event(
        "standup",
        berlin(2026, 3, 18, 14),
        berlin(2026, 3, 18, 15),
        recurrence_id=berlin(2026, 3, 16, 9),
    )
    found = listing(server, feed(series, moved))
    assert sorted(found) == [
        "standup#20260302T080000Z",
        "standup#20260316T080000Z",  # the moved one keeps its original start as its key
        "standup#20260323T080000Z",
        "standup#20260330T070000Z",  # summer time
    ]
    assert found["standup#20260316T080000Z"].start == utc(2026, 3, 18, 13)
    assert found["standup#20260316T080000Z"].end == utc(2026, 3, 18, 14)
    assert not any(e.start.date() == date(2026, 3, 9) for e in found.values())


def test_all_day_events_span_whole_local_days(server: FakeIcs) -> None:
    body = feed(
        event("holiday", date(2026, 3, 29), date(2026, 3, 31)),  # two days, DST on the first
        event("one-day", date(2026, 7, 1)),  # no DTEND: one day
    )
    found = listing(server, body, settings={"timezone": "Europe/Berlin"})
    assert found["holiday"].start == utc(2026, 3, 28, 23)
    assert found["holiday"].end == utc(2026, 3, 30, 22)
    assert found["one-day"].start == utc(2026, 6, 30, 22)
    assert found["one-day"].end == utc(2026, 7, 1, 22)
    # Without a zone anywhere, dates are UTC days.
    found = listing(server, body)
    assert (found["one-day"].start, found["one-day"].end) == (utc(2026, 7, 1), utc(2026, 7, 2))


def test_floating_times_and_the_feeds_own_zone(server: FakeIcs) -> None:
    body = [event("float", datetime(2026, 1, 5, 9), datetime(2026, 1, 5, 10))]  # noqa: DTZ001
    found = listing(server, feed(*body), settings={"timezone": "Europe/Berlin"})
    assert found["float"].start == utc(2026, 1, 5, 8)
    found = listing(server, feed(*body), settings={"timezone": "America/New_York"})
    assert found["float"].start == utc(2026, 1, 5, 14)
    # A feed that names its zone (Google's X-WR-TIMEZONE) is read in it.
    found = listing(
        server, feed(*body, x_wr_timezone="Europe/Berlin"), settings={"timezone": "UTC"}
    )
    assert found["float"].start == utc(2026, 1, 5, 8)
    # A narrow window finds it by its UTC time, not its wall-clock digits.
    server.put(PATH, feed(*body))
    conn = connector(server, settings={"timezone": "America/New_York"})
    assert [
        e.key for e in conn.busy(["cal"], utc(2026, 1, 5, 13, 30), utc(2026, 1, 5, 14, 30))
    ] == ["float"]
    assert conn.busy(["cal"], utc(2026, 1, 5, 8, 30), utc(2026, 1, 5, 10, 30)) == []
    # An unknown X-WR-TIMEZONE is ignored, not fatal.
    found = listing(
        server, feed(*body, x_wr_timezone="Mars/Olympus"), settings={"timezone": "Europe/Berlin"}
    )
    assert found["float"].start == utc(2026, 1, 5, 8)


def test_outlook_windows_zone_names_and_unknown_zones(server: FakeIcs) -> None:
    """Outlook names zones the Windows way, with a VTIMEZONE; a TZID nobody defines is read
    as local time in the connection's zone (like a floating time)."""
    windows = BERLIN_VTIMEZONE.replace("TZID:Europe/Berlin", "TZID:W. Europe Standard Time")
    body = feed(
        "BEGIN:VEVENT\r\nUID:o1\r\nDTSTART;TZID=W. Europe Standard Time:20260316T100000\r\n"
        "DTEND;TZID=W. Europe Standard Time:20260316T110000\r\n"
        "RRULE:FREQ=WEEKLY;COUNT=3\r\nEND:VEVENT",
        "BEGIN:VEVENT\r\nUID:o2\r\nDTSTART;TZID=Atlantis Standard Time:20260316T100000\r\n"
        "DTEND;TZID=Atlantis Standard Time:20260316T110000\r\nEND:VEVENT",
        vtimezones=[windows],
    )
    found = listing(server, body, settings={"timezone": "America/New_York"})
    assert [e.start for e in found.values() if e.key.startswith("o1")] == [
        utc(2026, 3, 16, 9),
        utc(2026, 3, 23, 9),
        utc(2026, 3, 30, 8),
    ]
    assert found["o2"].start == utc(2026, 3, 16, 14)  # 10:00 in New York (summer time)


def test_google_utc_recurrence_follows_x_wr_timezone(server: FakeIcs) -> None:
    """Google writes some recurring events in UTC and names the calendar's zone only in
    X-WR-TIMEZONE: the series recurs at the local time, across the DST change."""
    weekly = event(
        "g-weekly",
        utc(2026, 3, 23, 9),
        utc(2026, 3, 23, 10),
        lines=["RRULE:FREQ=WEEKLY;COUNT=2"],
    )
    found = listing(server, feed(weekly, x_wr_timezone="Europe/Berlin"))
    assert sorted(e.start for e in found.values()) == [utc(2026, 3, 23, 9), utc(2026, 3, 30, 8)]


def test_transparent_cancelled_and_cancelled_instance(server: FakeIcs) -> None:
    body = feed(
        event("free", utc(2026, 2, 2, 9), utc(2026, 2, 2, 10), lines=["TRANSP:TRANSPARENT"]),
        event("gone", utc(2026, 2, 3, 9), utc(2026, 2, 3, 10), lines=["STATUS:CANCELLED"]),
        event("daily", utc(2026, 2, 4, 9), utc(2026, 2, 4, 10), lines=["RRULE:FREQ=DAILY;COUNT=3"]),
        event(
            "daily",
            utc(2026, 2, 5, 9),
            utc(2026, 2, 5, 10),
            recurrence_id=utc(2026, 2, 5, 9),
            lines=["STATUS:CANCELLED"],
        ),
        event("empty", utc(2026, 2, 6, 9), utc(2026, 2, 6, 9)),  # zero length: blocks nothing
        # DTEND before DTSTART: recurring-ical-events reads the span the right way round, and
        # busy is the safe reading of a sloppy event.
        event("backwards", utc(2026, 2, 7, 9), utc(2026, 2, 7, 8)),
    )
    found = listing(server, body)
    assert sorted(found) == [
        "backwards",
        "daily#20260204T090000Z",
        "daily#20260206T090000Z",
        "free",
    ]
    assert (found["backwards"].start, found["backwards"].end) == (
        utc(2026, 2, 7, 8),
        utc(2026, 2, 7, 9),
    )
    assert found["free"].transparency == "transparent" and not found["free"].busy
    busy = connector(server).busy(["cal"], *WINDOW)
    assert sorted(e.key for e in busy) == [
        "backwards",
        "daily#20260204T090000Z",
        "daily#20260206T090000Z",
    ]


def test_outlooks_busy_status_decides_over_transp(server: FakeIcs) -> None:
    def status(uid: str, *lines: str) -> str:
        return event(uid, utc(2026, 2, 2, 9), utc(2026, 2, 2, 10), lines=lines)

    found = listing(
        server,
        feed(
            status("free", "TRANSP:TRANSPARENT", "X-MICROSOFT-CDO-BUSYSTATUS:FREE"),
            status("elsewhere", "TRANSP:OPAQUE", "X-MICROSOFT-CDO-BUSYSTATUS:WORKINGELSEWHERE"),
            status("tentative", "TRANSP:TRANSPARENT", "X-MICROSOFT-CDO-BUSYSTATUS:TENTATIVE"),
            status("away", "X-MICROSOFT-CDO-BUSYSTATUS:OOF"),
            status("plain-free", "TRANSP:TRANSPARENT"),
            status("series", "X-MICROSOFT-CDO-BUSYSTATUS:FREE", "RRULE:FREQ=DAILY;COUNT=2"),
        ),
    )
    assert {k: e.transparency for k, e in found.items()} == {
        "free": "transparent",
        "elsewhere": "transparent",
        "tentative": "opaque",
        "away": "opaque",
        "plain-free": "transparent",
        "series#20260202T090000Z": "transparent",
        "series#20260203T090000Z": "transparent",
    }


def test_the_services_own_events_are_marked(server: FakeIcs) -> None:
    body = feed(
        event("switchboard-call_42", utc(2026, 2, 2, 9), utc(2026, 2, 2, 10)),
        event("switchboard-call_43@switchboard", utc(2026, 2, 3, 9), utc(2026, 2, 3, 10)),
        event("someone-else", utc(2026, 2, 4, 9), utc(2026, 2, 4, 10)),
    )
    found = listing(server, body)
    assert found["switchboard-call_42"].own == "call_42"
    assert found["switchboard-call_43@switchboard"].own == "call_43"
    assert found["someone-else"].own is None


def test_busy_is_limited_to_the_window_and_labels_each_calendar(server: FakeIcs) -> None:
    body = feed(
        event("before", utc(2026, 2, 1, 8), utc(2026, 2, 1, 9)),
        event("straddles", utc(2026, 2, 1, 9, 30), utc(2026, 2, 1, 10, 30)),
        event("inside", utc(2026, 2, 1, 11), utc(2026, 2, 1, 12)),
        event("at-end", utc(2026, 2, 1, 12), utc(2026, 2, 1, 13)),
    )
    server.put(PATH, body)
    found = connector(server).busy(["a", "b", "a"], utc(2026, 2, 1, 10), utc(2026, 2, 1, 12))
    assert sorted((e.calendar, e.key) for e in found) == [
        ("a", "inside"),
        ("a", "straddles"),
        ("b", "inside"),
        ("b", "straddles"),
    ]
    assert server.count(PATH).requests == 1  # one fetch for every label


# --- sync: conditional GET, digests, the window --------------------------------------------


def counting_parses(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    parses: list[int] = []
    real = ics._parse

    def parse(body: bytes, *args: Any) -> Any:
        parses.append(len(body))
        return real(body, *args)

    monkeypatch.setattr(ics, "_parse", parse)
    return parses


def test_not_modified_is_an_empty_delta_without_parsing(
    server: FakeIcs, monkeypatch: pytest.MonkeyPatch
) -> None:
    parses = counting_parses(monkeypatch)
    server.put(PATH, feed(event("a", utc(2026, 2, 2, 9), utc(2026, 2, 2, 10))))
    conn = connector(server)
    first = conn.sync("cal", None, *WINDOW)
    assert first.full and [e.key for e in first.upserts] == ["a"] and len(parses) == 1
    again = conn.sync("cal", first.cursor, *WINDOW)
    assert again.upserts == () and again.removed == () and not again.full
    assert again.cursor == first.cursor and again.requests == 1
    assert len(parses) == 1
    assert server.count(PATH).not_modified == 1
    sent = server.request_headers[-1]
    assert sent["if-none-match"] and sent["if-modified-since"]
    assert "if-none-match" not in server.request_headers[0]


def test_last_modified_alone_gives_304(server: FakeIcs) -> None:
    body = feed(event("a", utc(2026, 2, 2, 9), utc(2026, 2, 2, 10)))
    server.put(PATH, body, etag=False, last_modified=utc(2026, 1, 1))
    conn = connector(server)
    first = conn.sync("cal", None, *WINDOW)
    again = conn.sync("cal", first.cursor, *WINDOW)
    assert not again.full and again.upserts == () and server.count(PATH).not_modified == 1
    server.put(
        PATH, body.replace("T090000Z", "T080000Z"), etag=False, last_modified=utc(2026, 1, 2)
    )
    changed = conn.sync("cal", again.cursor, *WINDOW)
    assert changed.full and changed.upserts[0].start == utc(2026, 2, 2, 8)


def test_same_body_without_validators_is_recognised_by_its_digest(
    server: FakeIcs, monkeypatch: pytest.MonkeyPatch
) -> None:
    parses = counting_parses(monkeypatch)
    body = feed(event("a", utc(2026, 2, 2, 9), utc(2026, 2, 2, 10)))
    server.put(PATH, body, etag=False, last_modified=False)
    conn = connector(server)
    first = conn.sync("cal", None, *WINDOW)
    again = conn.sync("cal", first.cursor, *WINDOW)
    assert server.count(PATH).full == 2  # no validators: the body comes again
    assert not again.full and again.upserts == () and len(parses) == 1
    assert "if-none-match" not in server.request_headers[-1]


def test_a_changed_feed_is_listed_in_full(server: FakeIcs) -> None:
    server.put(
        PATH,
        feed(
            event("a", utc(2026, 2, 2, 9), utc(2026, 2, 2, 10)),
            event("b", utc(2026, 2, 3, 9), utc(2026, 2, 3, 10)),
        ),
    )
    conn = connector(server)
    first = conn.sync("cal", None, *WINDOW)
    server.put(
        PATH,
        feed(
            event("a", utc(2026, 2, 2, 11), utc(2026, 2, 2, 12)),  # moved
            event("c", utc(2026, 2, 4, 9), utc(2026, 2, 4, 10)),  # b deleted, c added
        ),
    )
    changed = conn.sync("cal", first.cursor, *WINDOW)
    assert changed.full and changed.cursor != first.cursor
    assert [(e.key, e.start) for e in changed.upserts] == [
        ("a", utc(2026, 2, 2, 11)),
        ("c", utc(2026, 2, 4, 9)),
    ]
    assert server.count(PATH).full == 2
    assert conn.sync("cal", changed.cursor, *WINDOW).upserts == ()


def test_a_window_past_the_listing_fetches_again(server: FakeIcs) -> None:
    """A full listing covers the window plus the lookahead; a window sliding past that is
    listed afresh even though the feed did not change (a weekly series' next instances)."""
    server.put(
        PATH,
        feed(
            event(
                "w", utc(2026, 2, 2, 9), utc(2026, 2, 2, 10), lines=["RRULE:FREQ=WEEKLY;COUNT=20"]
            )
        ),
    )
    conn = connector(server)
    start, end = utc(2026, 2, 1), utc(2026, 3, 1)
    first = conn.sync("cal", None, start, end)
    assert max(e.start for e in first.upserts) < end + ics.LOOKAHEAD
    assert any(e.start >= end for e in first.upserts)  # the lookahead is listed too
    slid = conn.sync("cal", first.cursor, start + timedelta(days=3), end + timedelta(days=3))
    assert not slid.full and server.count(PATH).not_modified == 1
    past = conn.sync("cal", slid.cursor, start + timedelta(days=8), end + timedelta(days=8))
    assert past.full and server.count(PATH).full == 2
    assert max(e.start for e in past.upserts) >= end + timedelta(days=8)
    earlier = conn.sync("cal", past.cursor, start, end)  # before the covered start
    assert earlier.full and server.count(PATH).full == 3


def test_an_unreadable_cursor_expires(server: FakeIcs) -> None:
    server.put(PATH, feed())
    conn = connector(server)
    for cursor in ("", "nonsense", '{"v": 99}', '{"v": 1, "start": "x"}'):
        with pytest.raises(CursorExpired):
            conn.sync("cal", cursor, *WINDOW)
    assert server.requests == 0


# --- errors ---------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [401, 403, 404, 410])
def test_a_revoked_address_is_a_dead_credential(
    server: FakeIcs, sleeps: list[float], status: int
) -> None:
    server.put(PATH, feed())
    server.fail(PATH, status)
    with pytest.raises(CredentialError, match=str(status)) as caught:
        connector(server, sleeps).sync("cal", None, *WINDOW)
    assert sleeps == [] and server.count(PATH).requests == 1
    assert SECRET not in caught.value.reason


def test_a_removed_feed_is_a_dead_credential(server: FakeIcs) -> None:
    server.put(PATH, feed())
    server.remove(PATH)
    with pytest.raises(CredentialError, match="404"):
        connector(server).busy(["cal"], *WINDOW)


def test_429_waits_for_retry_after_then_succeeds(server: FakeIcs, sleeps: list[float]) -> None:
    server.put(PATH, feed(event("a", utc(2026, 2, 2, 9), utc(2026, 2, 2, 10))))
    server.fail(PATH, 429, retry_after="7")
    server.fail(PATH, 503, retry_after="2")
    delta = connector(server, sleeps).sync("cal", None, *WINDOW)
    assert [e.key for e in delta.upserts] == ["a"]
    assert sleeps == [7.0, 2.0] and delta.requests == 3


def test_a_retry_after_past_the_budget_gives_up_at_once(
    server: FakeIcs, sleeps: list[float]
) -> None:
    server.put(PATH, feed())
    server.fail(PATH, 429, retry_after="3600")
    with pytest.raises(ProviderError, match="429"):
        connector(server, sleeps).sync("cal", None, *WINDOW)
    assert sleeps == [] and server.count(PATH).requests == 1


def test_500s_back_off_then_give_up(server: FakeIcs, sleeps: list[float]) -> None:
    server.put(PATH, feed())
    server.fail(PATH, 500, times=10)
    with pytest.raises(ProviderError, match="500") as caught:
        connector(server, sleeps, attempts=3).sync("cal", None, *WINDOW)
    assert server.count(PATH).requests == 3
    assert sleeps == [0.25, 0.5]  # full jitter (rand 0.5) of 0.5 s, 1 s
    assert not isinstance(caught.value, CredentialError)


def test_redirects_are_followed_but_never_to_plain_http_elsewhere(
    server: FakeIcs, sleeps: list[float], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="httpx")
    moved = f"/moved/{SECRET}-2.ics"
    server.put(moved, feed(event("a", utc(2026, 2, 2, 9), utc(2026, 2, 2, 10))))
    server.redirect(PATH, server.url(moved))
    assert [e.key for e in connector(server).busy(["cal"], *WINDOW)] == ["a"]
    assert server.count(moved).full == 1
    assert SECRET not in caplog.text and caplog.text.count("[ics feed address]") == 2
    server.redirect(PATH, f"http://calendar.example.com/{SECRET}.ics")
    with pytest.raises(ProviderError, match="plain http") as caught:
        connector(server, sleeps).busy(["cal"], *WINDOW)
    assert sleeps == [] and not any(SECRET in repr(e) for e in chain(caught.value))


def test_a_body_that_cannot_be_decoded_is_a_provider_error(
    server: FakeIcs, sleeps: list[float]
) -> None:
    server.put(PATH, feed(), headers={"Content-Encoding": "gzip"})  # it is not gzip
    with pytest.raises(ProviderError, match=r"could not be read \(DecodingError\)") as caught:
        connector(server, sleeps).sync("cal", None, *WINDOW)
    assert sleeps == [] and not any(SECRET in repr(e) for e in chain(caught.value))


def test_an_unexpected_status_is_a_provider_error(server: FakeIcs, sleeps: list[float]) -> None:
    server.put(PATH, feed())
    server.fail(PATH, 418)
    with pytest.raises(ProviderError, match="418"):
        connector(server, sleeps).sync("cal", None, *WINDOW)
    assert sleeps == []


def test_an_unreachable_or_slow_feed_is_a_provider_error(sleeps: list[float]) -> None:
    with FakeIcs() as gone:
        url = gone.url(PATH)
    conn = calendars.connect(
        "ics", {}, {"url": url}, retry=Retry(attempts=2, sleep=sleeps.append, rand=lambda: 0)
    )
    with pytest.raises(ProviderError, match="could not be reached") as caught:
        conn.sync("cal", None, *WINDOW)
    assert len(sleeps) == 1
    assert not any(SECRET in repr(e) for e in chain(caught.value))  # httpx's error is dropped
    with FakeIcs() as slow:
        slow.put(PATH, feed())
        slow.stall(PATH, 1.0, times=2)
        with pytest.raises(ProviderError, match="timed out"):
            connector(slow, timeout=0.2, attempts=2).sync("cal", None, *WINDOW)
        assert slow.count(PATH).requests == 2


def chain(exc: BaseException | None) -> list[BaseException]:
    """An exception and everything chained to it (what a logged traceback could show)."""
    found: list[BaseException] = []
    while exc is not None and exc not in found:
        found.append(exc)
        exc = exc.__cause__ or exc.__context__
    return found


SENTINEL = "SENTINEL-7f3a"


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (f"<html><body>{SENTINEL} sign in</body></html>", "does not begin with BEGIN:VCALENDAR"),
        ("", "does not begin with BEGIN:VCALENDAR"),
        (
            feed(event("x", utc(2026, 2, 2, 9), utc(2026, 2, 2, 10), summary=SENTINEL)).replace(
                "DTSTART:", f"DTSTART:{SENTINEL}"
            ),
            r"could not be expanded \(BrokenCalendarProperty\)",
        ),
        (
            feed(
                event(
                    "x",
                    utc(2026, 2, 2, 9),
                    utc(2026, 2, 2, 10),
                    summary=SENTINEL,
                    lines=[f"RRULE:FREQ={SENTINEL}"],
                )
            ),
            r"could not be expanded \(BadRuleStringFormat\)",
        ),
        (
            feed(event("x", utc(2026, 2, 2, 9), utc(2026, 2, 2, 10), summary=SENTINEL)).split(
                "END:VEVENT"
            )[0],  # cut off mid-way
            r"not valid iCalendar \(ValueError\)",
        ),
    ],
    ids=["html", "empty", "bad-date", "bad-rrule", "truncated"],
)
def test_an_unparsable_feed_names_the_problem_without_quoting_it(
    server: FakeIcs, body: str, problem: str
) -> None:
    server.put(PATH, body)
    with pytest.raises(ProviderError, match=problem) as caught:
        connector(server).sync("cal", None, *WINDOW)
    assert "ICS feed" in caught.value.reason
    assert SENTINEL not in caught.value.reason and SENTINEL not in str(caught.value)
    assert not any(SENTINEL in repr(e) or SENTINEL in str(e) for e in chain(caught.value))


def test_a_feed_is_read_only_and_has_no_push(server: FakeIcs) -> None:
    conn = connector(server)
    call = CallEvent("call-1", utc(2026, 2, 2, 9), utc(2026, 2, 2, 10), "Call T-1")
    channel = WatchChannel("cal", "ch", None, utc(2026, 2, 3))
    with pytest.raises(Unsupported, match="read-only"):
        conn.write_event("cal", call)
    with pytest.raises(Unsupported, match="read-only"):
        conn.update_event("cal", "k", call)
    with pytest.raises(Unsupported, match="read-only"):
        conn.delete_event("cal", "k")
    with pytest.raises(Unsupported, match="push"):
        conn.watch("cal", "https://example.invalid/hook", "token", timedelta(days=1))
    with pytest.raises(Unsupported, match="push"):
        conn.unwatch(channel)
    assert server.requests == 0


# --- settings and credentials ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        (None, "required"),
        ("", "required"),
        (42, "required"),
        ("ftp://calendar.example.com/x.ics", "https"),
        ("file:///etc/passwd", "https"),
        ("http://calendar.example.com/secret.ics", "loopback"),
        ("http://10.0.0.8/secret.ics", "loopback"),
        ("https:///no-host.ics", "no host"),
        ("https://calendar.example.com:port/x.ics", "not a URL"),
        ("https://calendar.example.com/a b.ics", "spaces"),
    ],
)
def test_problems_with_the_address(url: object, reason: str) -> None:
    found = calendars.problems("ics", {}, {"url": url})
    assert [f for f, _ in found] == ["credentials.url"]
    assert reason in found[0][1]
    if isinstance(url, str) and url:
        assert url not in found[0][1]  # the address is a secret: never quoted
    with pytest.raises(CredentialError, match=r"credentials\.url"):
        calendars.connect("ics", {}, {"url": url})


@pytest.mark.parametrize(
    "url",
    [
        "https://calendar.google.com/calendar/ical/x%40group/private-abc/basic.ics",
        "webcal://outlook.office365.com/owa/calendar/abc/reachcalendar.ics",
        "http://127.0.0.1:8123/x.ics",
        "http://localhost/x.ics",
        "http://[::1]:9/x.ics",
    ],
)
def test_usable_addresses(url: str) -> None:
    assert calendars.problems("ics", {"timezone": "Europe/Berlin"}, {"url": url}) == []
    conn = calendars.connect("ics", {}, {"url": url})
    assert conn.provider == "ics"
    assert conn.url.startswith(("https://", "http://"))  # webcal:// is fetched over https
    assert url.split("/")[-2] not in repr(conn)


def test_problems_with_the_timezone() -> None:
    found = calendars.problems("ics", {"timezone": "Mars/Olympus"}, {"url": "https://a.b/c"})
    assert found == [("settings.timezone", "must be an IANA time zone such as Europe/Berlin")]
    assert calendars.problems("ics", {"timezone": 5}, {"url": "https://a.b/c"})[0][0] == (
        "settings.timezone"
    )


# --- privacy ----------------------------------------------------------------------------------


def test_contents_never_leave_the_connector(
    server: FakeIcs, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    sentinel_lines = [
        f"DESCRIPTION:{SENTINEL}-description",
        f"LOCATION:{SENTINEL}-location",
        f"ATTENDEE;CN={SENTINEL}-attendee:mailto:{SENTINEL}-attendee@example.com",
        f"ORGANIZER;CN={SENTINEL}-organizer:mailto:{SENTINEL}-organizer@example.com",
        f"CATEGORIES:{SENTINEL}-category",
        f"COMMENT:{SENTINEL}-comment",
    ]
    body = feed(
        event(
            "p1",
            utc(2026, 2, 2, 9),
            utc(2026, 2, 2, 10),
            summary=f"{SENTINEL}-summary",
            lines=sentinel_lines,
        ),
        event(
            "p2",
            berlin(2026, 2, 3, 9),
            berlin(2026, 2, 3, 10),
            summary=f"{SENTINEL}-summary",
            lines=[*sentinel_lines, "RRULE:FREQ=DAILY;COUNT=3"],
        ),
    )
    server.put(PATH, body)
    conn = connector(server)
    delta = conn.sync("cal", None, *WINDOW)
    again = conn.sync("cal", delta.cursor, *WINDOW)
    busy = conn.busy(["cal"], *WINDOW)
    assert len(delta.upserts) == 4 and len(busy) == 4
    for thing in (delta, again, busy, conn):
        assert SENTINEL not in repr(thing)
    assert SENTINEL not in caplog.text
    # The address is the credential: httpx logs each request's URL, ours masked.
    assert SECRET not in repr(conn) and SECRET not in str(delta.cursor)
    assert "HTTP Request" in caplog.text and "[ics feed address]" in caplog.text
    assert SECRET not in caplog.text


# --- properties -------------------------------------------------------------------------------

ZONES = ["UTC", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata"]


@st.composite
def feeds(draw: st.DrawFn) -> str:
    """Feeds of a few events: zoned, UTC, floating or all-day; single or recurring (with moved
    or cancelled instances); DTEND or DURATION; transparent or cancelled; with alarms and folded
    descriptions; over a year and a half."""
    zone = ZoneInfo(draw(st.sampled_from(ZONES)))
    events = []
    for n in range(draw(st.integers(0, 6))):
        day = date(2025, 10, 1) + timedelta(days=draw(st.integers(0, 540)))
        kind = draw(st.sampled_from(["zoned", "utc", "floating", "date"]))
        if kind == "date":
            start: date | datetime = day
            length = timedelta(days=draw(st.integers(1, 3)))
            duration = f"P{length.days}D"
        else:
            naive = datetime.combine(day, datetime.min.time()) + timedelta(
                minutes=draw(st.integers(0, 24 * 60 - 1))
            )
            start = (
                naive.replace(tzinfo=zone)
                if kind == "zoned"
                else naive.replace(tzinfo=UTC)
                if kind == "utc"
                else naive
            )
            length = timedelta(minutes=draw(st.integers(0, 3 * 24 * 60)))
            duration = f"PT{int(length.total_seconds() // 60)}M"
        ending = draw(st.sampled_from(["dtend", "duration", "none", "backwards"]))
        lines = [f"DURATION:{duration}"] if ending == "duration" else []
        count = draw(st.integers(0, 30))  # 0: a single event
        if count:
            lines.append(f"RRULE:FREQ=DAILY;COUNT={count}")
        lines += draw(st.sampled_from([[], ["TRANSP:TRANSPARENT"], ["TRANSP:OPAQUE"]]))
        lines += draw(
            st.sampled_from(
                [[], *([f"X-MICROSOFT-CDO-BUSYSTATUS:{w}"] for w in ("FREE", "BUSY", "OOF"))]
            )
        )
        if draw(st.integers(0, 5)) == 0:
            lines.append("STATUS:CANCELLED")
        if draw(st.booleans()):
            lines += ["BEGIN:VALARM", "ACTION:DISPLAY", "TRIGGER:-PT15M", "END:VALARM"]
        if draw(st.booleans()):
            lines.append("DESCRIPTION:" + "z" * 70 + "\r\n " + "w" * 70)
        uid = draw(st.sampled_from([f"e{n}", f"urn:uuid:{n}-x", f"switchboard-c{n}@x"]))
        finish = {"dtend": start + length, "backwards": start - length}.get(ending)
        events.append(event(uid, start, finish, lines=lines))
        if count and draw(st.booleans()):  # an instance moved (or cancelled)
            rid = start + timedelta(days=draw(st.integers(0, count - 1)))
            moved = rid + (
                timedelta(days=draw(st.integers(-3, 3)))
                if kind == "date"
                else timedelta(minutes=draw(st.integers(-3000, 3000)))
            )
            extra = ["STATUS:CANCELLED"] if draw(st.booleans()) else []
            events.append(event(uid, moved, moved + length, recurrence_id=rid, lines=extra))
    return feed(*events)


@st.composite
def windows(draw: st.DrawFn) -> tuple[datetime, datetime]:
    start = utc(2025, 12, 1) + timedelta(hours=draw(st.integers(0, 24 * 500)))
    return start, start + timedelta(hours=draw(st.integers(1, 24 * 90)))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(feeds(), windows(), st.sampled_from(ZONES))
def test_every_occurrence_is_an_aware_utc_span_in_the_window(
    body: str, window: tuple[datetime, datetime], zone: str
) -> None:
    start, end = window
    found = ics.expand(body.encode(), "cal", start, end, ZoneInfo(zone))
    assert len({e.key for e in found}) == len(found)
    for e in found:
        assert e.start.tzinfo is UTC and e.end.tzinfo is UTC
        assert e.end > e.start
        assert e.end > start and e.start < end
    # A wider window lists a superset: nothing is lost at the edges.
    wider = ics.expand(
        body.encode(), "cal", start - timedelta(days=3), end + timedelta(days=3), ZoneInfo(zone)
    )
    assert set(found) <= set(wider)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(feeds(), windows(), st.sampled_from(ZONES))
def test_the_window_cut_and_the_fast_path_agree_with_the_parser(
    body: str, window: tuple[datetime, datetime], zone: str
) -> None:
    start, end = window
    found = ics.expand(body.encode(), "cal", start, end, ZoneInfo(zone))
    whole = ics._essentials  # without a window and without the fast path: the parser reads all
    with patch.object(ics, "_essentials", lambda text, *window: whole(text, fast=False)):
        unfiltered = ics.expand(body.encode(), "cal", start, end, ZoneInfo(zone))
    assert found == unfiltered


def test_only_what_busy_time_needs_is_parsed() -> None:
    body = feed(
        event(
            "u1",
            berlin(2026, 2, 2, 9),
            berlin(2026, 2, 2, 10),
            summary=f"{SENTINEL}-summary",
            lines=[
                f"DESCRIPTION:{SENTINEL}-a\r\n {SENTINEL}-folded",
                f'ATTENDEE;CN="{SENTINEL}: quoted":mailto:{SENTINEL}@example.com',
                "TRANSP:TRANSPARENT",
                "BEGIN:VALARM",
                f"DESCRIPTION:{SENTINEL}-alarm",
                "END:VALARM",
            ],
        ),
        f"BEGIN:VTODO\r\nUID:t1\r\nSUMMARY:{SENTINEL}-todo\r\nEND:VTODO",
        x_wr_timezone="Europe/Berlin",
    ).replace("PRODID:", f"X-WR-CALNAME:{SENTINEL}-name\r\nPRODID:")
    kept = ics._essentials(body.encode(), fast=False)[0].decode()
    assert SENTINEL not in kept
    assert kept.split("\r\n")[:4] == [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "X-WR-TIMEZONE:Europe/Berlin",
        "BEGIN:VTIMEZONE",
    ]
    assert "TZOFFSETFROM:+0100" in kept and "RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU" in kept
    assert (
        "BEGIN:VEVENT\r\nUID:u1\r\nDTSTART;TZID=Europe/Berlin:20260202T090000\r\n"
        "DTEND;TZID=Europe/Berlin:20260202T100000\r\nTRANSP:TRANSPARENT\r\nEND:VEVENT"
    ) in kept
    assert "VALARM" not in kept and "VTODO" not in kept
    assert kept.endswith("END:VCALENDAR\r\n")


def test_old_single_events_are_cut_before_parsing_but_series_are_kept() -> None:
    body = feed(
        event("old", utc(2024, 5, 1, 9), utc(2024, 5, 1, 10)),
        event("old-series", utc(2024, 5, 1, 9), utc(2024, 5, 1, 10), lines=["RRULE:FREQ=DAILY"]),
        event("late", utc(2027, 5, 1, 9), utc(2027, 5, 1, 10)),
        event("near", date(2026, 1, 30)),  # a day outside the window: kept (two days' margin)
        event("in", utc(2026, 2, 2, 9), utc(2026, 2, 2, 10)),
    )
    kept = ics._essentials(body.encode(), utc(2026, 2, 1), utc(2026, 3, 1), fast=False)[0].decode()
    uids = [line for line in kept.split("\r\n") if line.startswith("UID:")]
    assert uids == ["UID:old-series", "UID:near", "UID:in"]
    found = ics.expand(body.encode(), "cal", utc(2026, 2, 1), utc(2026, 3, 1), UTC)
    assert {e.key.split("#")[0] for e in found} == {"old-series", "in"}


def test_plain_single_events_are_read_without_the_parser() -> None:
    plain = [
        event("utc", utc(2026, 2, 2, 9), utc(2026, 2, 2, 10), lines=["TRANSP:TRANSPARENT"]),
        event("urn:uuid:1", berlin(2026, 2, 2, 9), berlin(2026, 2, 2, 10)),
        event("day", date(2026, 2, 2)),
        event("float", datetime(2026, 2, 2, 9), lines=["STATUS:CONFIRMED"]),  # noqa: DTZ001
    ]
    parsed = [
        event("series", utc(2026, 2, 2, 9), utc(2026, 2, 2, 10), lines=["RRULE:FREQ=DAILY"]),
        event("dur", utc(2026, 2, 2, 9), lines=["DURATION:PT1H"]),
        event("mixed", date(2026, 2, 2), utc(2026, 2, 3)),
        event("twice", utc(2026, 2, 2, 9), utc(2026, 2, 2, 10), lines=["STATUS:CANCELLED"] * 2),
        event("param", utc(2026, 2, 2, 9), utc(2026, 2, 2, 10), lines=["TRANSP;X=1:OPAQUE"]),
        "BEGIN:VEVENT\r\nUID:win\r\nDTSTART;TZID=W. Europe Standard Time:20260202T090000\r\n"
        "END:VEVENT",
        "BEGIN:VEVENT\r\nUID:bad\r\nDTSTART:20261302T090000Z\r\nEND:VEVENT",
    ]
    text, singles = ics._essentials(feed(*plain, *parsed).encode())
    assert [s.uid for s in singles] == ["utc", "urn:uuid:1", "day", "float"]
    uids = [line for line in text.decode().split("\r\n") if line.startswith("UID:")]
    assert uids == [f"UID:{u}" for u in ("series", "dur", "mixed", "twice", "param", "win", "bad")]


def test_a_uid_shared_with_a_series_is_left_to_the_parser() -> None:
    """A sloppy feed repeats a series' UID on an event with no RECURRENCE-ID: whatever the
    parser makes of it, the fast path must not read it differently."""
    body = feed(
        event("dup", utc(2026, 2, 2, 9), utc(2026, 2, 2, 10), lines=["RRULE:FREQ=DAILY;COUNT=3"]),
        event("dup", utc(2026, 2, 10, 9), utc(2026, 2, 10, 10)),
    ).encode()
    assert ics._essentials(body)[1] == []
    whole = ics._essentials
    found = ics.expand(body, "cal", *WINDOW, UTC)
    with patch.object(ics, "_essentials", lambda text, *window: whole(text, fast=False)):
        assert ics.expand(body, "cal", *WINDOW, UTC) == found


@pytest.mark.parametrize("freq", ["SECONDLY", "MINUTELY"])
def test_a_series_repeating_more_often_than_hourly_is_refused_not_expanded(
    server: FakeIcs, sleeps: list[float], freq: str
) -> None:
    """Expanding FREQ=SECONDLY over a year would be tens of millions of occurrences (a worker
    held for minutes): the feed is refused as a provider error (the mirror keeps what it had)."""
    storm = event(
        "storm", utc(2026, 2, 2, 9), utc(2026, 2, 2, 9, 0, 1), lines=[f"RRULE:FREQ={freq}"]
    )
    server.put(PATH, feed(storm))
    with pytest.raises(ProviderError, match="more often than hourly"):
        connector(server, sleeps).sync("cal", None, *WINDOW)
