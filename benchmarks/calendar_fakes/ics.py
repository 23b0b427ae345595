"""A fake ICS feed server for tests and benchmarks: secret iCal addresses on 127.0.0.1.

A stdlib ``ThreadingHTTPServer`` on a free port in a daemon thread serves feeds by path, each
with an ``ETag`` and a ``Last-Modified`` (either can be switched off), answering
``If-None-Match`` / ``If-Modified-Since`` with 304. It counts requests (per path: all, full
200s, 304s) and fails on demand: a queue of faults per path (an HTTP status, with a
``Retry-After`` for 429 / 503; a stall longer than the client's timeout), a redirect, or a path
that is gone (404)::

    with FakeIcs() as server:
        url = server.put("/agent-1.ics", feed(event("u1", start, end)))
        server.fail("/agent-1.ics", 429, retry_after="1")  # the next request only
        ... connect "ics" with {"url": url} ...
        assert server.counts["/agent-1.ics"].not_modified == 1

:func:`feed` and :func:`event` write RFC 5545 text (with the Europe/Berlin VTIMEZONE when a
time names that zone), enough for tests and the calendar benchmark to build feeds quickly.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from email.utils import format_datetime, parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType


@dataclass
class Counts:
    requests: int = 0  # every request to the path
    full: int = 0  # 200s with the body
    not_modified: int = 0  # 304s
    faults: int = 0  # injected failures served


@dataclass
class _Feed:
    body: bytes
    etag: str | None
    last_modified: datetime | None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class _Fault:
    status: int | None  # None: answer normally, after the delay
    retry_after: str | None
    delay: float = 0.0


@dataclass
class _State:
    feeds: dict[str, _Feed] = field(default_factory=dict)
    redirects: dict[str, str] = field(default_factory=dict)
    faults: dict[str, list[_Fault]] = field(default_factory=dict)
    counts: dict[str, Counts] = field(default_factory=dict)
    headers: list[dict[str, str]] = field(default_factory=list)  # every request's headers
    lock: threading.Lock = field(default_factory=threading.Lock)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # a client that gave up (a timeout test) is not the server's failure


class FakeIcs:
    """The server; a context manager (``with FakeIcs() as server``)."""

    def __init__(self) -> None:
        self._state = _State()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle
    def __enter__(self) -> FakeIcs:
        state = self._state

        class Handler(_Handler):
            shared = state

        self._server = _Server(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), name="fake-ics", daemon=True
        )
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._server is not None and self._thread is not None
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    @property
    def base_url(self) -> str:
        assert self._server is not None, "use the server as a context manager"
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def url(self, path: str) -> str:
        return self.base_url + path

    # --- feeds
    def put(
        self,
        path: str,
        body: str | bytes,
        *,
        etag: bool = True,
        last_modified: datetime | bool | None = True,
        headers: dict[str, str] | None = None,
    ) -> str:
        """Serve ``body`` at ``path`` (replacing what was there); returns the feed's URL.
        The ETag is the body's digest; ``Last-Modified`` is now (or the given time), None /
        False for a server that sends no such validator; ``headers`` are sent with the body
        (a ``Content-Encoding`` the body does not have, say)."""
        data = body.encode() if isinstance(body, str) else body
        tag = f'"{hashlib.sha256(data).hexdigest()[:32]}"' if etag else None
        if last_modified is True:
            modified: datetime | None = datetime.now(UTC).replace(microsecond=0)
        elif isinstance(last_modified, datetime):
            modified = last_modified.astimezone(UTC).replace(microsecond=0)
        else:
            modified = None
        with self._state.lock:
            self._state.feeds[path] = _Feed(data, tag, modified, dict(headers or {}))
        return self.url(path)

    def redirect(self, path: str, location: str) -> None:
        """``path`` answers 302 to ``location`` (a feed that moved, or a sharing service)."""
        with self._state.lock:
            self._state.redirects[path] = location

    def remove(self, path: str) -> None:
        """The feed is gone (the secret address was reset): 404 from now on."""
        with self._state.lock:
            self._state.feeds.pop(path, None)

    def fail(
        self, path: str, status: int, *, times: int = 1, retry_after: str | None = None
    ) -> None:
        """The next ``times`` requests to ``path`` answer ``status`` (with ``Retry-After``)."""
        with self._state.lock:
            self._state.faults.setdefault(path, []).extend([_Fault(status, retry_after)] * times)

    def stall(self, path: str, seconds: float, *, times: int = 1) -> None:
        """The next ``times`` requests to ``path`` wait ``seconds`` before answering (a client
        with a shorter timeout gives up first)."""
        with self._state.lock:
            self._state.faults.setdefault(path, []).extend([_Fault(None, None, seconds)] * times)

    @property
    def counts(self) -> dict[str, Counts]:
        with self._state.lock:
            return dict(self._state.counts)

    def count(self, path: str) -> Counts:
        with self._state.lock:
            return self._state.counts.get(path, Counts())

    @property
    def requests(self) -> int:
        with self._state.lock:
            return sum(c.requests for c in self._state.counts.values())

    @property
    def request_headers(self) -> list[dict[str, str]]:
        with self._state.lock:
            return list(self._state.headers)


class _Handler(BaseHTTPRequestHandler):
    shared: _State
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:  # quiet
        pass

    def do_GET(self) -> None:
        state = self.shared
        path = self.path.split("?", 1)[0]
        with state.lock:
            counts = state.counts.setdefault(path, Counts())
            counts.requests += 1
            state.headers.append({k.lower(): v for k, v in self.headers.items()})
            queue = state.faults.get(path)
            fault = queue.pop(0) if queue else None
            if fault is not None:
                counts.faults += 1
            current = state.feeds.get(path)
            location = state.redirects.get(path)
        if fault is not None and fault.delay:
            time.sleep(fault.delay)
        if fault is not None and fault.status is not None:
            extra = {"Retry-After": fault.retry_after} if fault.retry_after is not None else {}
            self._send(fault.status, b"fault\n", "text/plain", extra)
            return
        if location is not None:
            self._send(302, b"", "text/plain", {"Location": location})
            return
        if current is None:
            self._send(404, b"not found\n", "text/plain", {})
            return
        validators: dict[str, str] = {}
        if current.etag:
            validators["ETag"] = current.etag
        if current.last_modified:
            validators["Last-Modified"] = format_datetime(current.last_modified, usegmt=True)
        if self._not_modified(current):
            with state.lock:
                counts.not_modified += 1
            self._send(304, b"", None, validators)
            return
        with state.lock:
            counts.full += 1
        self._send(200, current.body, "text/calendar; charset=utf-8", validators | current.headers)

    def _not_modified(self, current: _Feed) -> bool:
        match = self.headers.get("If-None-Match")
        if match is not None:  # RFC 9110: If-None-Match wins over If-Modified-Since
            tags = {t.strip().removeprefix("W/") for t in match.split(",")}
            return current.etag is not None and (current.etag in tags or "*" in tags)
        since = self.headers.get("If-Modified-Since")
        if since is not None and current.last_modified is not None:
            try:
                return current.last_modified <= parsedate_to_datetime(since)
            except (TypeError, ValueError):
                return False
        return False

    def _send(
        self, status: int, body: bytes, content_type: str | None, headers: dict[str, str]
    ) -> None:
        self.send_response(status)
        if content_type:
            self.send_header("Content-Type", content_type)
        for name, value in headers.items():
            self.send_header(name, value)
        if status != 304:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if status != 304:
            self.wfile.write(body)


# --- writing feeds --------------------------------------------------------------------------

BERLIN_VTIMEZONE = """BEGIN:VTIMEZONE
TZID:Europe/Berlin
BEGIN:DAYLIGHT
TZOFFSETFROM:+0100
TZOFFSETTO:+0200
TZNAME:CEST
DTSTART:19700329T020000
RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU
END:DAYLIGHT
BEGIN:STANDARD
TZOFFSETFROM:+0200
TZOFFSETTO:+0100
TZNAME:CET
DTSTART:19701025T030000
RRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU
END:STANDARD
END:VTIMEZONE"""


def ical_time(name: str, value: date | datetime) -> str:
    """``DTSTART:...`` / ``DTSTART;TZID=Europe/Berlin:...`` / ``DTSTART;VALUE=DATE:...``;
    a naive datetime is a floating time."""
    if not isinstance(value, datetime):
        return f"{name};VALUE=DATE:{value:%Y%m%d}"
    if value.tzinfo is None:
        return f"{name}:{value:%Y%m%dT%H%M%S}"
    key = getattr(value.tzinfo, "key", None)
    if key and key != "UTC":
        return f"{name};TZID={key}:{value:%Y%m%dT%H%M%S}"
    return f"{name}:{value.astimezone(UTC):%Y%m%dT%H%M%SZ}"


def event(
    uid: str,
    start: date | datetime,
    end: date | datetime | None = None,
    *,
    summary: str = "Busy",
    lines: Iterable[str] = (),
    recurrence_id: date | datetime | None = None,
) -> str:
    """One VEVENT. ``lines`` are extra content lines (RRULE:..., EXDATE..., TRANSP:...)."""
    out = ["BEGIN:VEVENT", f"UID:{uid}", "DTSTAMP:20260101T000000Z", ical_time("DTSTART", start)]
    if end is not None:
        out.append(ical_time("DTEND", end))
    if recurrence_id is not None:
        out.append(ical_time("RECURRENCE-ID", recurrence_id))
    out.append(f"SUMMARY:{summary}")
    out.extend(lines)
    out.append("END:VEVENT")
    return "\r\n".join(out)


def feed(*events: str, x_wr_timezone: str | None = None, vtimezones: Iterable[str] = ()) -> str:
    """A VCALENDAR around ``events`` (the Berlin VTIMEZONE added when an event uses it)."""
    out = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//Switchboard//fake ics//EN"]
    if x_wr_timezone:
        out.append(f"X-WR-TIMEZONE:{x_wr_timezone}")
    zones = list(vtimezones)
    if any("TZID=Europe/Berlin" in e for e in events) and not zones:
        zones = [BERLIN_VTIMEZONE]
    out.extend(z.replace("\r\n", "\n").replace("\n", "\r\n") for z in zones)
    out.extend(events)
    out.append("END:VCALENDAR")
    return "\r\n".join(out) + "\r\n"
