"""ICS feeds: a secret iCal address (Google's or Outlook's "secret address") read as busy time.

The feed's URL *is* the credential -- whoever has it reads the calendar -- so it lives in the
connection's ``credentials`` (``{"url": ...}``) and never appears in a reason, a cursor, a repr
or a log line (httpx logs every request's URL at INFO: :class:`_RedactFeedUrls` masks ours).
``https://`` (or ``webcal://``, fetched over https) is required; plain ``http://`` only for a
loopback address (tests, a local proxy), and a redirect to plain http elsewhere is refused.
``settings`` may hold ``timezone``, the IANA zone for floating times and all-day dates of a feed
that does not name its own (``X-WR-TIMEZONE``); the default is UTC.

Fetching: one GET per sync with explicit timeouts, conditional (``If-None-Match`` /
``If-Modified-Since`` from the last answer's ``ETag`` / ``Last-Modified``), 429 / 5xx and network
failures retried through :meth:`calendars.base.Retry.run` honouring ``Retry-After``. 401, 403,
404 and 410 mean the secret address was revoked or rotated: :class:`CredentialError`. A body that
is not iCalendar (an HTML login page) or cannot be expanded is a :class:`ProviderError` naming
the problem, never quoting the feed.

Before anything parses it, the feed is cut to the properties that say *when* and *whether*
(UID, DTSTART, DTEND, DURATION, RRULE, RDATE, EXDATE, RECURRENCE-ID, STATUS, TRANSP, Outlook's
busy status, the time zones): SUMMARY, DESCRIPTION, LOCATION, ATTENDEE, ORGANIZER, alarms and
to-dos never reach the parser, an error message or an object here. Single events more than two
days outside the window are cut too (a secret feed carries its calendar's whole history), and
single events in a plain form (UTC, DATE, floating or an IANA TZID) are read without the parser;
series, overrides and anything unusual go through ``icalendar``. Reading is linear in the feed
and mostly proportional to the window's events; a property test holds the cut and the fast path
to the parser's answer.

Expansion: ``icalendar`` parses, ``recurring-ical-events`` expands RRULE / RDATE / EXDATE and
RECURRENCE-ID overrides (it also applies ``X-WR-TIMEZONE`` through its dependency
``x-wr-timezone``, which Google's feeds need: their times are UTC and the calendar's zone is only
named there). TZID resolves through the feed's VTIMEZONE, an IANA name or a Windows zone name
(Outlook); a TZID nobody defines is read like a floating time. Floating times are local times in
the feed's X-WR-TIMEZONE, else the connection's ``timezone``; DATE values are whole local days
in the same zone. A DTEND before DTSTART is read the right way round (busy is the safe reading).
``TRANSP:TRANSPARENT`` is kept as transparent (Outlook's ``X-MICROSOFT-CDO-BUSYSTATUS``, when
present, decides instead: FREE and WORKINGELSEWHERE are transparent); ``STATUS:CANCELLED`` (a
whole series or one instance) is not returned. An occurrence's key is its UID, plus its
RECURRENCE-ID (the original start, in UTC) when the UID is a recurring series, so it stays the
same across fetches, even for an instance that was moved. A UID beginning with
:data:`calendars.base.OWN_EVENT_PREFIX` is an event the service wrote: ``own`` is the call id.

Sync: a feed has no delta. Without a cursor (or when the window asked for reaches past what the
cursor covered) the connector fetches unconditionally and lists every occurrence:
``Delta(full=True)``. With a cursor, a 304 or a body with the same SHA-256 digest as last time
means nothing changed: an empty, non-full Delta, nothing parsed. A changed body is listed in
full again (the service replaces the calendar's mirror on ``full``). A full listing covers the
window asked for plus :data:`LOOKAHEAD`, so a window sliding forward with the clock (the service
asks for now .. now + horizon every poll) does not force a refetch on every poll; the occurrences
past the window's end in it are real busy time too.

A feed is read-only and has no push: ``write_event``, ``update_event``, ``delete_event``,
``watch`` and ``unwatch`` raise :class:`calendars.base.Unsupported`.

One connection is one feed: the calendar ids the service passes only label what comes back.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import logging
import re
import ssl
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import httpx
import icalendar
import recurring_ical_events

from calendars.base import (
    OWN_EVENT_PREFIX,
    BusyEvent,
    CalendarError,
    CallEvent,
    CredentialError,
    CursorExpired,
    Delta,
    ProviderError,
    Retry,
    RetryLater,
    Unsupported,
    WatchChannel,
    retry_after_seconds,
)

__all__ = ["LOOKAHEAD", "MAX_FEED_BYTES", "IcsConnector", "from_config", "problems"]

PROVIDER = "ics"
# A full listing covers the window asked for plus this much (see the module's docstring).
LOOKAHEAD = timedelta(days=7)
# A larger body is refused (a misconfigured URL serving a file, not a calendar).
MAX_FEED_BYTES = 32 * 1024 * 1024
# Occurrences are asked of recurring-ical-events over the window widened by this much, then
# placed in UTC and filtered exactly: floating and all-day ones are compared by local time.
_PAD = timedelta(days=2)
_TOO_OFTEN = frozenset({"SECONDLY", "MINUTELY"})
_CURSOR_VERSION = 1
_USER_AGENT = "switchboard-calendar-sync"
_LOOPBACK_NAMES = {"localhost"}


# --- settings and credentials -------------------------------------------------------------


def _is_loopback(host: str | None) -> bool:
    if not host:
        return False
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _url_problem(url: object) -> str | None:
    """Why ``url`` cannot be a feed's address, or None. Never quotes it (it is a secret)."""
    if not isinstance(url, str) or not url.strip():
        return "required: the feed's secret address (https://...)"
    if any(c.isspace() for c in url.strip()):
        return "must not contain spaces"
    try:
        parts = urlsplit(url.strip())
        host = parts.hostname
        _ = parts.port  # a non-numeric port raises here
    except ValueError:
        return "is not a URL"
    scheme = parts.scheme.lower()
    if scheme not in ("https", "webcal", "http"):
        return "must be an https:// (or webcal://) address"
    if not host:
        return "has no host"
    if scheme == "http" and not _is_loopback(host):
        # The address is the credential: over plain HTTP anyone on the path reads it.
        return "must use https:// (plain http:// only for a loopback address)"
    return None


def _zone(name: object) -> ZoneInfo | None:
    if not isinstance(name, str) or not name:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def problems(settings: Mapping[str, Any], credentials: Mapping[str, Any]) -> list[tuple[str, str]]:
    """``(field, reason)`` for each thing wrong with an ICS connection; empty when usable."""
    found: list[tuple[str, str]] = []
    reason = _url_problem(credentials.get("url"))
    if reason is not None:
        found.append(("credentials.url", reason))
    timezone = settings.get("timezone")
    if timezone is not None and _zone(timezone) is None:
        found.append(("settings.timezone", "must be an IANA time zone such as Europe/Berlin"))
    return found


def from_config(
    settings: Mapping[str, Any],
    credentials: Mapping[str, Any],
    *,
    timeout: float,
    retry: Retry,
) -> IcsConnector:
    """The connector of one ICS connection. Raises :class:`CredentialError` when the
    credentials cannot be used at all (``problems()`` says why, field by field)."""
    found = problems(settings, credentials)
    if found:
        raise CredentialError("; ".join(f"{field} {reason}" for field, reason in found))
    url = str(credentials["url"]).strip()
    if url.lower().startswith("webcal://"):
        url = "https://" + url[len("webcal://") :]
    return IcsConnector(
        url=url,
        timezone=_zone(settings.get("timezone")) or ZoneInfo("UTC"),
        timeout=timeout,
        retry=retry,
    )


# --- keeping the address out of httpx's log ------------------------------------------------


class _RedactFeedUrls(logging.Filter):
    """httpx logs ``HTTP Request: GET <url> ...`` at INFO: for a feed's address (recognised by
    its digest; the addresses themselves are not kept) the URL is replaced by its origin."""

    def __init__(self) -> None:
        super().__init__()
        self._digests: set[str] = set()
        self._lock = threading.Lock()

    @staticmethod
    def _digest(url: str) -> str:
        return hashlib.sha256(url.encode()).hexdigest()

    def remember(self, url: httpx.URL) -> None:
        digest = self._digest(str(url))
        with self._lock:
            self._digests.add(digest)

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and any(isinstance(a, httpx.URL) for a in args):
            record.args = tuple(
                f"{a.scheme}://{a.netloc.decode()}/[ics feed address]"
                if isinstance(a, httpx.URL) and self._digest(str(a)) in self._digests
                else a
                for a in args
            )
        return True


_REDACT = _RedactFeedUrls()
logging.getLogger("httpx").addFilter(_REDACT)


class _PlainRedirect(Exception):
    """A redirect to plain http:// off the machine: the next address may be secret too."""


def _each_request(request: httpx.Request) -> None:
    """Before each request (the first and every redirect): mask its URL in httpx's log, and
    refuse to send it in clear to another machine."""
    _REDACT.remember(request.url)
    if request.url.scheme != "https" and not _is_loopback(request.url.host):
        raise _PlainRedirect


_SSL_CONTEXT: ssl.SSLContext | None = None


def _ssl_context() -> ssl.SSLContext:
    """One verifying TLS context for every feed (building one reads the CA bundle: ~10 ms)."""
    global _SSL_CONTEXT
    if _SSL_CONTEXT is None:
        import certifi

        _SSL_CONTEXT = ssl.create_default_context(cafile=certifi.where())
    return _SSL_CONTEXT


# --- the cursor ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Cursor:
    """What the last good fetch left: the HTTP validators, the body's digest and the window
    the listing covered. Serialized as JSON: none of it is secret or event contents."""

    etag: str | None
    last_modified: str | None
    digest: str
    start: datetime
    end: datetime

    def dump(self) -> str:
        return json.dumps(
            {
                "v": _CURSOR_VERSION,
                "etag": self.etag,
                "last_modified": self.last_modified,
                "digest": self.digest,
                "start": self.start.isoformat(),
                "end": self.end.isoformat(),
            },
            sort_keys=True,
            separators=(",", ":"),
        )

    @classmethod
    def load(cls, text: str) -> _Cursor:
        try:
            data = json.loads(text)
            if data["v"] != _CURSOR_VERSION:
                raise ValueError("version")
            start = datetime.fromisoformat(data["start"])
            end = datetime.fromisoformat(data["end"])
            if start.tzinfo is None or end.tzinfo is None:
                raise ValueError("naive")
            etag, last_modified, digest = data["etag"], data["last_modified"], data["digest"]
            if not isinstance(digest, str) or not all(
                v is None or isinstance(v, str) for v in (etag, last_modified)
            ):
                raise ValueError("types")
        except (ValueError, KeyError, TypeError) as exc:
            raise CursorExpired(f"the ICS cursor is not readable ({type(exc).__name__})") from None
        return cls(etag, last_modified, digest, start, end)

    def covers(self, start: datetime, end: datetime) -> bool:
        return self.start <= start and end <= self.end


# --- fetching -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Fetched:
    body: bytes | None  # None: 304 Not Modified
    etag: str | None
    last_modified: str | None
    requests: int


_RETRY_STATUSES = {429, 500, 502, 503, 504}
_DEAD_STATUSES = {401, 403, 404, 410}


def _utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError("times must be timezone-aware")
    return moment.astimezone(UTC)


@dataclass
class IcsConnector:
    """The connector of one ICS feed (see the module's docstring)."""

    url: str
    timezone: tzinfo
    timeout: float
    retry: Retry
    provider: str = PROVIDER

    def __repr__(self) -> str:  # the URL is the credential: never in a repr
        return f"IcsConnector(timezone={self.timezone!s}, timeout={self.timeout})"

    # --- HTTP
    def _fetch(self, etag: str | None = None, last_modified: str | None = None) -> _Fetched:
        headers = {"User-Agent": _USER_AGENT, "Accept": "text/calendar, */*;q=0.1"}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        conditional = bool(etag or last_modified)
        attempts = 0

        def attempt() -> _Fetched:
            # Errors are raised outside the ``except`` blocks: httpx's exceptions carry the
            # request (the secret address), and a chained ``__context__`` would keep it.
            nonlocal attempts
            attempts += 1
            failure: CalendarError
            try:
                with (
                    httpx.Client(
                        timeout=httpx.Timeout(self.timeout),
                        verify=_ssl_context(),
                        follow_redirects=True,
                        max_redirects=5,
                        event_hooks={"request": [_each_request]},
                    ) as client,
                    client.stream("GET", self.url, headers=headers) as response,
                ):
                    return self._answer(response, conditional, attempts)
            except _PlainRedirect:
                failure = ProviderError("the ICS feed redirects to a plain http:// address")
            except httpx.TimeoutException:
                failure = RetryLater("the ICS feed timed out")
            except httpx.TooManyRedirects:
                failure = ProviderError("the ICS feed redirects too often")
            except (httpx.InvalidURL, httpx.UnsupportedProtocol):
                failure = CredentialError("the ICS feed's address is not usable")
            except httpx.TransportError as exc:
                failure = RetryLater(f"the ICS feed could not be reached ({type(exc).__name__})")
            except (httpx.HTTPError, httpx.StreamError) as exc:  # a bad encoding, a broken stream
                failure = ProviderError(f"the ICS feed could not be read ({type(exc).__name__})")
            raise failure

        return self.retry.run("ICS feed", attempt)

    def _answer(self, response: httpx.Response, conditional: bool, attempts: int) -> _Fetched:
        status = response.status_code
        if status == 304 and conditional:
            return _Fetched(None, None, None, attempts)
        if status in _DEAD_STATUSES:
            raise CredentialError(
                f"the ICS feed answered HTTP {status}: its secret address was revoked or changed"
            )
        if status in _RETRY_STATUSES:
            raise RetryLater(
                f"the ICS feed answered HTTP {status}",
                retry_after_seconds(response.headers.get("Retry-After")),
            )
        if status != 200:
            raise ProviderError(f"the ICS feed answered HTTP {status}")
        chunks: list[bytes] = []
        size = 0
        for chunk in response.iter_bytes():
            size += len(chunk)
            if size > MAX_FEED_BYTES:
                raise ProviderError(f"the ICS feed is larger than {MAX_FEED_BYTES} bytes")
            chunks.append(chunk)
        return _Fetched(
            b"".join(chunks),
            response.headers.get("ETag"),
            response.headers.get("Last-Modified"),
            attempts,
        )

    # --- the Connector interface
    def busy(self, calendars: Sequence[str], start: datetime, end: datetime) -> list[BusyEvent]:
        """Busy (opaque) occurrences over ``[start, end)``; one fetch labelled with each
        calendar id asked for (a connection has one feed)."""
        start, end = _utc(start), _utc(end)
        labels = list(dict.fromkeys(calendars))
        if not labels or start >= end:
            return []
        fetched = self._fetch()
        assert fetched.body is not None  # unconditional: never a 304
        events = [e for e in expand(fetched.body, labels[0], start, end, self.timezone) if e.busy]
        return [
            event if label == labels[0] else _relabel(event, label)
            for label in labels
            for event in events
        ]

    def sync(self, calendar: str, cursor: str | None, start: datetime, end: datetime) -> Delta:
        """A full listing, or nothing when the feed did not change (see the module's docstring).
        A cursor this connector cannot read raises :class:`CursorExpired`."""
        start, end = _utc(start), _utc(end)
        last = _Cursor.load(cursor) if cursor is not None else None
        if last is not None and last.covers(start, end):
            fetched = self._fetch(last.etag, last.last_modified)
            if fetched.body is None:
                return Delta(calendar, cursor=cursor, requests=fetched.requests)
            digest = hashlib.sha256(fetched.body).hexdigest()
            if digest == last.digest:
                kept = _Cursor(fetched.etag, fetched.last_modified, digest, last.start, last.end)
                return Delta(calendar, cursor=kept.dump(), requests=fetched.requests)
        else:
            fetched = self._fetch()
        assert fetched.body is not None  # unconditional or changed
        horizon = end + LOOKAHEAD
        events = tuple(expand(fetched.body, calendar, start, horizon, self.timezone))
        listed = _Cursor(
            fetched.etag,
            fetched.last_modified,
            hashlib.sha256(fetched.body).hexdigest(),
            start,
            horizon,
        )
        return Delta(calendar, events, (), listed.dump(), full=True, requests=fetched.requests)

    def write_event(self, calendar: str, event: CallEvent) -> str:
        raise Unsupported("an ICS feed is read-only: the call's event cannot be written")

    def update_event(self, calendar: str, key: str, event: CallEvent) -> str:
        raise Unsupported("an ICS feed is read-only: the call's event cannot be moved")

    def delete_event(self, calendar: str, key: str) -> None:
        raise Unsupported("an ICS feed is read-only: the call's event cannot be deleted")

    def watch(self, calendar: str, address: str, token: str, ttl: timedelta) -> WatchChannel:
        raise Unsupported("an ICS feed has no push notifications: it is polled")

    def unwatch(self, channel: WatchChannel) -> None:
        raise Unsupported("an ICS feed has no push notifications: it is polled")


def _relabel(event: BusyEvent, calendar: str) -> BusyEvent:
    return BusyEvent(calendar, event.start, event.end, event.transparency, event.key, event.own)


# --- parsing and expansion ----------------------------------------------------------------


# What is kept of a feed before it is parsed at all: the properties that say *when* and
# *whether* (and the time zones' definitions). Everything else -- SUMMARY, DESCRIPTION, LOCATION,
# ATTENDEE, ORGANIZER, attachments, alarms, to-dos -- is cut from the text first, so no parser,
# no error message and no object here ever holds it; it also makes parsing several times faster.
_KEEP_COMPONENTS = {b"VCALENDAR", b"VEVENT", b"VTIMEZONE", b"STANDARD", b"DAYLIGHT"}
_KEEP_CALENDAR = {b"VERSION", b"CALSCALE", b"X-WR-TIMEZONE"}
_KEEP_EVENT = {
    b"UID",
    b"DTSTART",
    b"DTEND",
    b"DURATION",
    b"RRULE",
    b"RDATE",
    b"EXDATE",
    b"EXRULE",
    b"RECURRENCE-ID",
    b"STATUS",
    b"TRANSP",
    b"X-MICROSOFT-CDO-BUSYSTATUS",
}
_BUSYSTATUS = "X-MICROSOFT-CDO-BUSYSTATUS"
# Outlook's own free/busy word, when present, decides over TRANSP (a "Free" or "Working
# elsewhere" event blocks nothing; "Tentative", "Busy" and "Away" do).
_FREE_STATUSES = {"FREE", "WORKINGELSEWHERE"}


def _transparent(transp: str, busystatus: str) -> bool:
    if busystatus:
        return busystatus.upper() in _FREE_STATUSES
    return transp.upper() == "TRANSPARENT"


_NAME_END = re.compile(rb"[;:]")


@dataclass(slots=True)
class _Block:
    """One VEVENT's kept lines, and what the window cut and the fast path need to know of it."""

    lines: list[bytes]
    uid: bytes | None = None  # the UID line's value, when plain (no parameters, no escapes)
    recurring: bool = False
    start: date | None = None  # the local date of DTSTART, when readable
    end: date | None = None  # of DTEND (or DTSTART's, for an event without an end)
    judged: bool = True  # False: DURATION or an unreadable time; never cut early
    closed: bool = False


@dataclass(frozen=True, slots=True)
class _Single:
    """A single event (no series anywhere under its UID) in a form read without a parser:
    UTC, DATE, floating or an IANA TZID; DTEND or none."""

    uid: str
    start: bytes  # the DTSTART line
    end: bytes | None  # the DTEND line
    cancelled: bool
    transparent: bool


def _line_date(line: bytes) -> date | None:
    """The date of a DTSTART / DTEND line's value (its first eight digits), or None."""
    value = line.rsplit(b":", 1)[-1].strip()
    if len(value) < 8 or not value[:8].isdigit():
        return None
    try:
        return date(int(value[:4]), int(value[4:6]), int(value[6:8]))
    except ValueError:
        return None


_SIMPLE_TIME = re.compile(
    rb"(?i:DTSTART|DTEND)"
    rb"(?:;(?i:VALUE)=(?P<value>(?i:DATE|DATE-TIME)))?"
    rb"(?:;(?i:TZID)=(?P<tzid>[A-Za-z0-9_+\-]+(?:/[A-Za-z0-9_+\-]+){0,2}))?"
    rb":(?P<digits>\d{8}(?:T\d{6}(?P<z>Z)?)?)"
)


def _simple_time(line: bytes, zone: tzinfo) -> datetime | None:
    """A DTSTART / DTEND line in a plain form as aware UTC, or None (then the parser reads the
    event): ``...Z``, ``;VALUE=DATE:...``, floating, or ``;TZID=<IANA name>:...``."""
    match = _SIMPLE_TIME.fullmatch(line)
    if match is None:
        return None
    digits, tzid, value = match["digits"], match["tzid"], match["value"]
    is_date = len(digits) == 8
    if is_date != (value is not None and value.upper() == b"DATE") or (
        tzid and (match["z"] or is_date)
    ):
        return None
    try:
        day = date(int(digits[:4]), int(digits[4:6]), int(digits[6:8]))
        if is_date:
            return datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)
        clock = time(int(digits[9:11]), int(digits[11:13]), int(digits[13:15]))
    except ValueError:
        return None
    if match["z"]:
        return datetime.combine(day, clock, tzinfo=UTC)
    where: tzinfo = zone
    if tzid:
        named = _zone(tzid.decode())
        if named is None:
            return None
        where = named
    return datetime.combine(day, clock, tzinfo=where).astimezone(UTC)


def _time_kind(line: bytes) -> str | None:
    """``date``, ``floating`` or ``fixed`` (UTC or a TZID) for a plain DTSTART / DTEND line;
    None when the line is not plain (see :func:`_simple_time`)."""
    if _simple_time(line, UTC) is None:
        return None
    match = _SIMPLE_TIME.fullmatch(line)
    assert match is not None
    if len(match["digits"]) == 8:
        return "date"
    return "fixed" if match["z"] or match["tzid"] else "floating"


def _single_span(single: _Single, zone: tzinfo) -> tuple[datetime, datetime]:
    """A plain single event's span in UTC (an all-day event without DTEND: one day; a timed
    one: no time at all, as RFC 5545 says)."""
    begins = _simple_time(single.start, zone)
    assert begins is not None  # _read_single checked the form
    if single.end is not None:
        ends = _simple_time(single.end, zone)
        assert ends is not None
        return begins, ends
    if _time_kind(single.start) == "date":
        day = _line_date(single.start)
        assert day is not None
        return begins, _as_utc(day + timedelta(days=1), zone)
    return begins, begins


def _essentials(
    body: bytes, start: datetime | None = None, end: datetime | None = None, *, fast: bool = True
) -> tuple[bytes, list[_Single]]:
    """``body`` (iCalendar text) with only what busy time needs: unfolded content lines of the
    kept components and properties, CRLF-joined. Linear in the feed.

    With a window, a single (non-recurring) event whose local dates lie wholly more than two
    days outside it is cut too: a secret feed carries its calendar's whole history, and only
    the window's events need parsing. Two days covers every zone's offset; a series (RRULE,
    RDATE) and an override of one of its instances (RECURRENCE-ID) are always kept.

    With ``fast``, single events whose times are in a plain form (:func:`_simple_time`) are
    returned apart, to be read without the parser (most of a real feed; several times faster);
    the rest -- series, overrides, Windows or custom zones, DURATION -- stay in the text."""
    logical: list[bytes] = []
    for raw in body.split(b"\n"):
        line = raw[:-1] if raw.endswith(b"\r") else raw
        if line[:1] in (b" ", b"\t") and logical:
            logical[-1] += line[1:]  # a folded line continues the one before (RFC 5545 3.1)
        elif line:
            logical.append(line)
    kept: list[bytes | _Block] = []
    stack: list[bytes] = []  # the components we are in
    block: _Block | None = None  # the VEVENT being read
    dropping = 0  # depth inside a component that is cut whole (VALARM, VTODO, ...)
    series: set[bytes | None] = set()  # the UIDs of series and overrides
    for line in logical:
        match = _NAME_END.search(line)
        name = (line[: match.start()] if match else line).strip().upper()
        value = line[match.end() :].strip().upper() if match else b""
        if name == b"BEGIN":
            if dropping or value not in _KEEP_COMPONENTS:
                dropping += 1
                continue
            stack.append(value)
            if value == b"VEVENT":
                block = _Block([b"BEGIN:VEVENT"])
            elif block is not None:
                block.lines.append(b"BEGIN:" + value)
            else:
                kept.append(b"BEGIN:" + value)
        elif name == b"END":
            if dropping:
                dropping -= 1
                continue
            if stack:
                stack.pop()
            if block is not None:
                block.lines.append(b"END:" + value)
                if value == b"VEVENT":
                    if block.end is None and block.start is not None:
                        block.end = block.start + timedelta(days=1)
                    if block.recurring:
                        series.add(block.uid)
                    block.closed = True
                    kept.append(block)
                    block = None
            else:
                kept.append(b"END:" + value)
        elif dropping or not stack:
            continue
        elif stack[-1] == b"VEVENT":
            if name not in _KEEP_EVENT or block is None:
                continue
            block.lines.append(line)
            if name == b"UID":
                uid_value = line[4:] if line[:4].upper() == b"UID:" else b""
                plain = uid_value and uid_value.strip() == uid_value and b"\\" not in uid_value
                block.uid = uid_value if plain else None
            elif name in (b"RRULE", b"RDATE", b"EXRULE", b"RECURRENCE-ID"):
                block.recurring = True
            elif name in (b"DTSTART", b"DTEND"):
                when = _line_date(line)
                block.judged = block.judged and when is not None
                if name == b"DTSTART":
                    block.start = when
                else:
                    block.end = when
            elif name == b"DURATION":
                block.judged = False
        elif stack[-1] == b"VCALENDAR":
            if name in _KEEP_CALENDAR:
                kept.append(line)
        elif block is not None:  # a component inside a VEVENT that is kept: none today
            block.lines.append(line)
        else:  # VTIMEZONE and its STANDARD / DAYLIGHT: all of it (TZID, offsets, rules)
            kept.append(line)
    if block is not None:  # a VEVENT never closed (a cut-off feed): the parser says so
        kept.append(block)
    first = start.date() - timedelta(days=2) if start is not None else None
    last = end.date() + timedelta(days=2) if end is not None else None
    out: list[bytes] = []
    singles: list[_Single] = []
    for item in kept:
        if not isinstance(item, _Block):
            out.append(item)
            continue
        single = not item.recurring and item.uid not in series
        outside = (
            single
            and item.judged
            and item.start is not None
            and item.end is not None
            and (
                (first is not None and item.end < first) or (last is not None and item.start > last)
            )
        )
        if outside:
            continue
        if fast and single and item.closed and item.judged and item.uid is not None:
            read = _read_single(item)
            if read is not None:
                singles.append(read)
                continue
        out.extend(item.lines)
    return b"\r\n".join(out) + b"\r\n", singles


def _read_single(block: _Block) -> _Single | None:
    """The block as a :class:`_Single`, or None when some line is not in a plain form."""
    assert block.uid is not None
    try:
        uid = block.uid.decode()
    except UnicodeDecodeError:
        return None
    starts: list[bytes] = []
    ends: list[bytes] = []
    seen: set[bytes] = set()
    cancelled = False
    transp = busystatus = ""
    for line in block.lines[1:-1]:
        match = _NAME_END.search(line)
        name = (line[: match.start()] if match else line).upper()
        if name in seen:
            return None  # a property twice: the parser's reading decides
        seen.add(name)
        if name == b"DTSTART":
            starts.append(line)
        elif name == b"DTEND":
            ends.append(line)
        elif name in (b"STATUS", b"TRANSP", _BUSYSTATUS.encode()):
            if match is None or match.group() != b":":
                return None  # parameters: let the parser read it
            try:
                word = line[match.end() :].decode()
            except UnicodeDecodeError:
                return None
            if word != word.strip() or "\\" in word:
                return None
            if name == b"STATUS":
                cancelled = word.upper() == "CANCELLED"
            elif name == b"TRANSP":
                transp = word
            else:
                busystatus = word
        elif name != b"UID":
            return None
    if len(starts) != 1:
        return None
    kind = _time_kind(starts[0])
    if kind is None or (ends and _time_kind(ends[0]) != kind):
        return None  # an unreadable time, or DTSTART and DTEND of different kinds
    return _Single(
        uid, starts[0], ends[0] if ends else None, cancelled, _transparent(transp, busystatus)
    )


def _parse(
    body: bytes, start: datetime | None = None, end: datetime | None = None
) -> tuple[icalendar.Calendar, list[_Single]]:
    """The feed as a calendar (only its essentials) and its plain single events (see
    :func:`_essentials`), or :class:`ProviderError` naming what is wrong (never quoting)."""
    head = body[:64].lstrip(b"\xef\xbb\xbf \t\r\n").upper()
    if not head.startswith(b"BEGIN:VCALENDAR"):
        raise ProviderError(
            "the ICS feed is not an iCalendar file (it does not begin with BEGIN:VCALENDAR)"
        )
    # The parser's messages quote the offending line: only the error's name is kept, and the
    # ProviderError is raised outside the ``except`` so it does not chain the original.
    text, singles = _essentials(body, start, end)
    problem = ""
    try:
        parsed = icalendar.Calendar.from_ical(text)
    except Exception as exc:
        problem = type(exc).__name__
    if problem:
        raise ProviderError(f"the ICS feed is not valid iCalendar ({problem})")
    if not isinstance(parsed, icalendar.Calendar):
        raise ProviderError("the ICS feed is not a single VCALENDAR")
    return parsed, singles


def _local_zone(calendar: icalendar.Calendar, fallback: tzinfo) -> tzinfo:
    """The zone of the feed's floating times and dates: its X-WR-TIMEZONE when that names a
    real zone (an unknown one is dropped, so expansion does not fail on it), else ``fallback``."""
    named = calendar.get("X-WR-TIMEZONE")
    if named is None:
        return fallback
    zone = _zone(str(named))
    if zone is None:
        del calendar["X-WR-TIMEZONE"]
        return fallback
    return zone


def _as_utc(value: date | datetime, zone: tzinfo) -> datetime:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=zone)  # floating: local time (fold 0 in a gap/overlap)
        return value.astimezone(UTC)
    return datetime.combine(value, time(0), tzinfo=zone).astimezone(UTC)


def _stamp(value: date | datetime, zone: tzinfo) -> str:
    """A RECURRENCE-ID (or original start) as it goes into a key: UTC, or the date."""
    if isinstance(value, datetime):
        return _as_utc(value, zone).strftime("%Y%m%dT%H%M%SZ")
    return value.strftime("%Y%m%d")


def _recurring_uids(calendar: icalendar.Calendar) -> set[str]:
    uids: set[str] = set()
    for component in calendar.walk("VEVENT"):
        if any(name in component for name in ("RRULE", "RDATE", "RECURRENCE-ID")):
            uids.add(str(component.get("UID", "")))
    return uids


def _occurrences(
    calendar: icalendar.Calendar, start: datetime, end: datetime
) -> list[icalendar.Event]:
    problem = ""
    try:
        if _too_often(calendar):
            problem = "an event repeats more often than hourly"
        else:
            query = recurring_ical_events.of(calendar)
            return list(query.between(start - _PAD, end + _PAD))
    except Exception as exc:  # InvalidCalendar, BadRuleStringFormat, a broken DTSTART, ...
        problem = type(exc).__name__  # its message quotes the feed: not kept, not chained
    raise ProviderError(f"the ICS feed's events could not be expanded ({problem})")


def _too_often(calendar: icalendar.Calendar) -> bool:
    """Whether a series repeats secondly or minutely: expanded over the window that would be
    millions of occurrences (a worker held for minutes), and no calendar makes meetings so."""
    for component in calendar.walk("VEVENT"):
        rules = component.get("RRULE")
        for rule in rules if isinstance(rules, list) else [rules]:
            try:
                freq = {str(f).upper() for f in rule.get("FREQ", [])} if rule is not None else set()
            except Exception:  # a broken rule: the expansion names it
                continue
            if freq & _TOO_OFTEN:
                return True
    return False


def expand(
    body: bytes, calendar: str, start: datetime, end: datetime, timezone: tzinfo
) -> list[BusyEvent]:
    """Every occurrence of the feed ``body`` overlapping ``[start, end)`` (aware), contents
    dropped, sorted by start. Cancelled events and empty spans are left out."""
    parsed, singles = _parse(body, start, end)
    zone = _local_zone(parsed, timezone)
    recurring = _recurring_uids(parsed)
    found: dict[str, BusyEvent] = {}

    def add(uid: str, begins: datetime, ends: datetime, transparent: bool, stamp: str) -> None:
        if ends < begins:  # DTEND before DTSTART: read the right way round, as busy
            begins, ends = ends, begins
        if ends == begins or ends <= start or begins >= end:
            return
        if not uid:
            key = f"~{begins:%Y%m%dT%H%M%SZ}/{ends:%Y%m%dT%H%M%SZ}"
        elif stamp:
            key = f"{uid}#{stamp}"
        else:
            key = uid
        if key in found:  # the same UID twice (a THISANDFUTURE range, a sloppy feed)
            key = f"{key}#{begins:%Y%m%dT%H%M%SZ}"
        own = None
        if uid.startswith(OWN_EVENT_PREFIX):
            own = uid[len(OWN_EVENT_PREFIX) :].partition("@")[0] or None
        found[key] = BusyEvent(
            calendar, begins, ends, "transparent" if transparent else "opaque", key, own
        )

    for component in _occurrences(parsed, start, end):
        if str(component.get("STATUS", "")).upper() == "CANCELLED":
            continue
        problem = ""
        try:
            begins = _as_utc(component.decoded("DTSTART"), zone)
            ends = _as_utc(component.decoded("DTEND"), zone) if "DTEND" in component else begins
        except Exception as exc:
            problem = type(exc).__name__
        if problem:
            raise ProviderError(f"the ICS feed has an event with an unreadable time ({problem})")
        uid = str(component.get("UID", ""))
        stamp = ""
        if uid in recurring:
            rid = component.get("RECURRENCE-ID")
            stamp = _stamp(rid.dt if rid is not None else component.decoded("DTSTART"), zone)
        transparent = _transparent(
            str(component.get("TRANSP", "")), str(component.get(_BUSYSTATUS, ""))
        )
        add(uid, begins, ends, transparent, stamp)
    for single in singles:
        if not single.cancelled:
            begins, ends = _single_span(single, zone)
            add(single.uid, begins, ends, single.transparent, "")
    return sorted(found.values(), key=lambda e: (e.start, e.end, e.key))
