"""A fake Microsoft identity platform and Microsoft Graph, over HTTPS, for the real msal and
requests (tests, the service's end-to-end tests, ``benchmarks/calendars.py``).

msal refuses plain-HTTP authorities, so the fake serves both the authority and Graph over
HTTPS with a certificate from a CA made for this run (trustme); ``ca_bundle`` is that CA's PEM,
which a connection's ``settings.ca_bundle`` points at. One stdlib ``ThreadingHTTPServer`` on
127.0.0.1, port 0, in a daemon thread, speaking HTTP/1.1 keep-alive (a TLS handshake per
connection, not per request: 500 mailboxes sync quickly).

    with FakeMicrosoft() as ms:
        ms.add_event("ada@contoso.com", start, end, subject="SENTINEL")
        connector = calendars.connect("microsoft", ms.settings("ada@contoso.com"),
                                      ms.credentials())

What it speaks (paths under ``authority`` = ``<base>/<tenant>`` and ``graph_endpoint`` =
``<base>/v1.0``):

- ``GET <authority>/v2.0/.well-known/openid-configuration`` and ``POST
  <authority>/oauth2/v2.0/token`` (client_credentials; the secret in the body or HTTP Basic;
  a wrong secret is 401 ``invalid_client``, an unknown client 400 ``unauthorized_client``).
- ``POST /users/{m}/calendar/getSchedule`` (at most 20 schedules, less than 62 days: more is a
  400, as Graph does), answering the default calendar of each known mailbox.
- ``GET /users/{m}/calendarView/delta`` and ``/users/{m}/calendars/{c}/calendarView/delta``:
  ``startDateTime``/``endDateTime``, pages of ``page_size`` (or ``Prefer:
  odata.maxpagesize``) with ``@odata.nextLink``, then ``@odata.deltaLink``; a delta link
  returns what changed since, removed events as ``{"id", "@removed"}``.
- ``GET /users/{m}/calendar/calendarView`` and ``/users/{m}/calendars/{c}/calendarView``
  (``$select``, ``$top``, paged with ``$skip`` next links).
- ``POST /users/{m}/calendar[s/{c}]/events`` (a repeated ``transactionId`` returns the event
  made the first time), ``GET/PATCH/DELETE /users/{m}/events/{id}``.
- ``POST /subscriptions``, ``DELETE /subscriptions/{id}``.

Every event the tests add carries whatever subject, body, location and attendees they give
(sentinels), and Graph-like answers include them all: the connector must strip them.

Counters: ``requests`` (a Counter by route name: ``getSchedule``, ``delta``, ``calendarView``,
``create``, ``patch``, ``delete``, ``get_event``, ``subscribe``, ``unsubscribe``),
``token_requests``, ``discovery_requests``, and ``schedule_calls`` (schedules and span of each
getSchedule).
Faults: :meth:`throttle` (the next N Graph answers are 429/503 with ``Retry-After``),
:meth:`throttle_tokens` (the next N token requests are 429),
:meth:`revoke_tokens` (tokens issued so far are refused: one 401), ``reject_tokens`` (every
Graph request is 401), :meth:`expire_delta_links` (410 ``syncStateNotFound``), a wrong client
secret, ``stall`` (every answer waits that many seconds), ``sparse_updates`` (incremental delta
items carry only id and subject). :meth:`notify` posts Graph change notifications to the
subscriptions' URLs.
"""

from __future__ import annotations

import base64
import itertools
import json
import re
import secrets
import socket
import ssl
import tempfile
import threading
import time as time_module
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlencode, urlsplit
from zoneinfo import ZoneInfo

import trustme

DEFAULT_TENANT = "8d1f4c2e-0a3b-4c5d-9e6f-7a8b9c0d1e2f"
DEFAULT_CLIENT_ID = "3f2a1b0c-9d8e-4f7a-8b6c-5d4e3f2a1b0c"
DEFAULT_SECRET = "fake-client-secret-value"
MAX_SCHEDULES = 20
MAX_SCHEDULE_SPAN = timedelta(days=62)
MAX_SUBSCRIPTION = timedelta(minutes=10080)


def _graph_dt(moment: datetime) -> dict[str, str]:
    return {
        "dateTime": moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.0000000"),
        "timeZone": "UTC",
    }


def _parse_graph_dt(value: dict[str, Any]) -> datetime:
    moment = datetime.fromisoformat(str(value["dateTime"])[:26])
    zone = value.get("timeZone") or "UTC"
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC if zone == "UTC" else ZoneInfo(zone))
    return moment.astimezone(UTC)


@dataclass
class _Event:
    id: str
    mailbox: str
    calendar: str
    start: datetime
    end: datetime
    subject: str = ""
    body: str = ""
    location: str = ""
    attendees: tuple[str, ...] = ()
    organizer: str = ""
    show_as: str = "busy"
    all_day: bool = False
    cancelled: bool = False
    transaction_id: str | None = None

    def overlaps(self, start: datetime, end: datetime) -> bool:
        return self.end > start and self.start < end

    def render(self) -> dict[str, Any]:
        """The event as Graph answers it: contents and all."""
        out: dict[str, Any] = {
            "@odata.etag": f'W/"{secrets.token_hex(4)}"',
            "id": self.id,
            "createdDateTime": "2026-01-01T00:00:00Z",
            "subject": self.subject,
            "bodyPreview": self.body[:255],
            "body": {"contentType": "html", "content": f"<html><body>{self.body}</body></html>"},
            "importance": "normal",
            "sensitivity": "normal",
            "isAllDay": self.all_day,
            "isCancelled": self.cancelled,
            "isOrganizer": not self.organizer,
            "showAs": self.show_as,
            "type": "singleInstance",
            "start": _graph_dt(self.start),
            "end": _graph_dt(self.end),
            "location": {"displayName": self.location, "locationType": "default"},
            "locations": [{"displayName": self.location}] if self.location else [],
            "attendees": [
                {
                    "type": "required",
                    "status": {"response": "none"},
                    "emailAddress": {"name": a, "address": a},
                }
                for a in self.attendees
            ],
            "organizer": {
                "emailAddress": {
                    "name": self.organizer or self.mailbox,
                    "address": self.organizer or self.mailbox,
                }
            },
            "onlineMeeting": None,
        }
        if self.transaction_id is not None:
            out["transactionId"] = self.transaction_id
        return out


@dataclass
class _Calendar:
    id: str
    events: dict[str, _Event] = field(default_factory=dict)
    log: list[tuple[int, str]] = field(default_factory=list)  # (sequence, event id) per change


@dataclass
class _Mailbox:
    address: str
    default: str
    calendars: dict[str, _Calendar] = field(default_factory=dict)


@dataclass
class _DeltaState:
    mailbox: str
    calendar: str
    start: datetime
    end: datetime
    position: int
    epoch: int
    pending: list[dict[str, Any]] = field(default_factory=list)  # a round's remaining pages


class FakeMicrosoft:
    """The fake authority and Graph (module docstring). Use as a context manager."""

    def __init__(
        self,
        *,
        tenant: str = DEFAULT_TENANT,
        client_id: str = DEFAULT_CLIENT_ID,
        client_secret: str = DEFAULT_SECRET,
        page_size: int = 50,
        token_lifetime: int = 3600,
        handshake: bool = False,
    ) -> None:
        self.tenant = tenant
        self.apps = {client_id: client_secret}
        self.client_id = client_id
        self.client_secret = client_secret
        self.page_size = page_size
        self.token_lifetime = token_lifetime
        self.handshake = handshake  # validate a subscription's notificationUrl as Graph does
        # Incremental delta items carry only their id and subject (Graph: "at least the
        # properties that have been updated"): the connector must read the times itself.
        self.sparse_updates = False
        self.stall = 0.0  # seconds every answer (authority and Graph) waits: timeouts
        self.lock = threading.RLock()
        self.mailboxes: dict[str, _Mailbox] = {}
        self.by_id: dict[str, _Event] = {}
        self.transactions: dict[tuple[str, str], str] = {}  # (mailbox, transactionId) -> id
        self.subscriptions: dict[str, dict[str, Any]] = {}
        self.requests: Counter[str] = Counter()
        self.token_requests = 0
        self.discovery_requests = 0
        self.schedule_calls: list[tuple[int, timedelta]] = []
        self.reject_tokens = False
        self.issued: list[str] = []  # every access token handed out (privacy checks)
        self._tokens: set[str] = set()
        self._faults: list[tuple[int, str | None]] = []
        self._token_faults = 0
        self._token_retry_after = "0"
        self._states: dict[str, _DeltaState] = {}
        self._epoch = 0
        self._seq = itertools.count(1)
        self._ids = itertools.count(1)
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._dir: tempfile.TemporaryDirectory[str] | None = None
        self.ca_bundle = ""

    # --- lifecycle

    def __enter__(self) -> FakeMicrosoft:
        ca = trustme.CA()
        cert = ca.issue_cert("127.0.0.1", "localhost")
        self._dir = tempfile.TemporaryDirectory(prefix="fake-microsoft-")
        self.ca_bundle = str(Path(self._dir.name) / "ca.pem")
        ca.cert_pem.write_to_path(self.ca_bundle)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        cert.configure_cert(context)
        server = _TLSServer(("127.0.0.1", 0), _Handler, context)
        server.fake = self
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, args=(0.05,), name="fake-microsoft", daemon=True
        )
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._dir is not None:
            self._dir.cleanup()

    @property
    def base_url(self) -> str:
        assert self._server is not None, "use FakeMicrosoft as a context manager"
        return f"https://127.0.0.1:{self._server.server_address[1]}"

    @property
    def authority(self) -> str:
        return f"{self.base_url}/{self.tenant}"

    @property
    def graph_endpoint(self) -> str:
        return f"{self.base_url}/v1.0"

    def settings(self, mailbox: str, **extra: Any) -> dict[str, Any]:
        """A connection's settings for ``mailbox`` against this fake."""
        return {
            "tenant": self.tenant,
            "client_id": self.client_id,
            "mailbox": mailbox,
            "authority": self.authority,
            "graph_endpoint": self.graph_endpoint,
            "ca_bundle": self.ca_bundle,
            **extra,
        }

    def credentials(self, secret: str | None = None) -> dict[str, Any]:
        return {"client_secret": self.client_secret if secret is None else secret}

    # --- what a test does

    def add_mailbox(self, address: str) -> str:
        """Make ``address`` a known mailbox (idempotent); its default calendar's id."""
        with self.lock:
            box = self.mailboxes.get(address.lower())
            if box is None:
                default = f"cal-{secrets.token_hex(6)}"
                box = _Mailbox(address, default, {default: _Calendar(default)})
                self.mailboxes[address.lower()] = box
            return box.default

    def add_calendar(self, address: str, calendar: str | None = None) -> str:
        with self.lock:
            self.add_mailbox(address)
            box = self.mailboxes[address.lower()]
            calendar = calendar or f"cal-{secrets.token_hex(6)}"
            box.calendars.setdefault(calendar, _Calendar(calendar))
            return calendar

    def add_event(
        self,
        mailbox: str,
        start: datetime,
        end: datetime,
        *,
        calendar: str | None = None,
        subject: str = "",
        body: str = "",
        location: str = "",
        attendees: Iterable[str] = (),
        organizer: str = "",
        show_as: str = "busy",
        all_day: bool = False,
        cancelled: bool = False,
        transaction_id: str | None = None,
    ) -> str:
        """Add an event (``all_day``: ``start``/``end`` are taken as dates); its id."""
        with self.lock:
            default = self.add_mailbox(mailbox)
            cal = self._calendar(mailbox, calendar or default)
            if all_day:
                start = datetime.combine(start.date(), time(), UTC)
                end = datetime.combine(end.date(), time(), UTC)
            event = _Event(
                id=f"AAMkAG{next(self._ids):06d}{secrets.token_hex(4)}=",
                mailbox=self.mailboxes[mailbox.lower()].address,
                calendar=cal.id,
                start=start.astimezone(UTC),
                end=end.astimezone(UTC),
                subject=subject,
                body=body,
                location=location,
                attendees=tuple(attendees),
                organizer=organizer,
                show_as=show_as,
                all_day=all_day,
                cancelled=cancelled,
                transaction_id=transaction_id,
            )
            self._store(event)
            if transaction_id:
                self.transactions[(event.mailbox.lower(), transaction_id)] = event.id
            return event.id

    def move_event(self, event_id: str, start: datetime, end: datetime) -> None:
        with self.lock:
            event = self.by_id[event_id]
            event.start, event.end = start.astimezone(UTC), end.astimezone(UTC)
            self._changed(event)

    def update_event(self, event_id: str, **fields: Any) -> None:
        """Change fields of an event (``show_as``, ``cancelled``, ``subject``...)."""
        with self.lock:
            event = self.by_id[event_id]
            for name, value in fields.items():
                setattr(event, name, value)
            self._changed(event)

    def delete_event(self, event_id: str) -> None:
        with self.lock:
            event = self.by_id.pop(event_id)
            cal = self._calendar(event.mailbox, event.calendar)
            del cal.events[event_id]
            cal.log.append((next(self._seq), event_id))
            if event.transaction_id:
                self.transactions.pop((event.mailbox.lower(), event.transaction_id), None)

    def events(self, mailbox: str, calendar: str | None = None) -> list[dict[str, Any]]:
        """The events of a calendar (default: the default one) as Graph renders them."""
        with self.lock:
            box = self.mailboxes[mailbox.lower()]
            cal = box.calendars[calendar or box.default]
            return [e.render() for e in cal.events.values()]

    def default_calendar(self, mailbox: str) -> str:
        return self.add_mailbox(mailbox)

    # --- faults

    def throttle(self, count: int, retry_after: str | None = "1", status: int = 429) -> None:
        """The next ``count`` Graph answers are ``status`` with this ``Retry-After``."""
        with self.lock:
            self._faults.extend([(status, retry_after)] * count)

    def throttle_tokens(self, count: int, retry_after: str = "0") -> None:
        """The next ``count`` token requests are 429 ``temporarily_unavailable`` (msal keeps
        a throttled answer for ``Retry-After`` seconds and answers it again meanwhile)."""
        with self.lock:
            self._token_faults += count
            self._token_retry_after = retry_after

    def revoke_tokens(self) -> None:
        """Every token issued so far is refused (401) from now on; new ones work."""
        with self.lock:
            self._tokens.clear()

    def expire_delta_links(self) -> None:
        """Every delta link handed out so far answers 410 ``syncStateNotFound``."""
        with self.lock:
            self._epoch += 1

    def notify(self, event_id: str, change_type: str = "updated") -> list[int]:
        """POST a change notification for ``event_id`` to each subscription on its calendar,
        as Graph does; the HTTP statuses received."""
        with self.lock:
            event = self.by_id.get(event_id)
            targets = [
                s
                for s in self.subscriptions.values()
                if event is not None and self._covers(s["resource"], event)
            ]
        statuses = []
        resource = f"Users/{event.mailbox}/Events/{event_id}" if event else ""
        for sub in targets:
            payload = {
                "value": [
                    {
                        "subscriptionId": sub["id"],
                        "subscriptionExpirationDateTime": sub["expirationDateTime"],
                        "changeType": change_type,
                        "resource": resource,
                        "resourceData": {
                            "@odata.type": "#Microsoft.Graph.Event",
                            "@odata.id": resource,
                            "id": event_id,
                        },
                        "clientState": sub["clientState"],
                        "tenantId": self.tenant,
                    }
                ]
            }
            statuses.append(_post_json(sub["notificationUrl"], payload))
        return statuses

    # --- internals (lock held)

    def _calendar(self, mailbox: str, calendar: str) -> _Calendar:
        return self.mailboxes[mailbox.lower()].calendars[calendar]

    def _store(self, event: _Event) -> None:
        cal = self._calendar(event.mailbox, event.calendar)
        cal.events[event.id] = event
        self.by_id[event.id] = event
        cal.log.append((next(self._seq), event.id))

    def _changed(self, event: _Event) -> None:
        self._calendar(event.mailbox, event.calendar).log.append((next(self._seq), event.id))

    def _covers(self, resource: str, event: _Event) -> bool:
        parts = [unquote(p) for p in resource.strip("/").split("/")]
        if (
            len(parts) < 3
            or parts[0].lower() != "users"
            or parts[1].lower() != event.mailbox.lower()
        ):
            return False
        if parts[2] == "calendar":
            return event.calendar == self.mailboxes[event.mailbox.lower()].default
        if parts[2] == "calendars" and len(parts) >= 4:
            return parts[3] == event.calendar
        return parts[2] == "events"

    def _issue(self) -> str:
        token = secrets.token_urlsafe(24)
        self._tokens.add(token)
        self.issued.append(token)
        return token


def _post_json(url: str, payload: Any) -> int:
    request = urllib.request.Request(
        url,
        data=b"" if payload is None else json.dumps(payload).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


class _TLSServer(ThreadingHTTPServer):
    daemon_threads = True
    fake: FakeMicrosoft

    def __init__(self, address: tuple[str, int], handler: Any, context: ssl.SSLContext) -> None:
        super().__init__(address, handler)
        self.context = context

    def finish_request(self, request: Any, client_address: Any) -> None:
        # The TLS handshake happens in the connection's own thread, never in accept(). No
        # Nagle: a response's headers and body are two writes, and a delayed ACK would hold the
        # second for 40 ms.
        try:
            request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn = self.context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            request.close()
            return
        try:
            super().finish_request(conn, client_address)
        finally:
            conn.close()

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client hanging up is no news


class _Reply(Exception):
    def __init__(self, status: int, body: Any = None, headers: dict[str, str] | None = None):
        super().__init__(status)
        self.status, self.body, self.headers = status, body, headers or {}


def _graph_error(status: int, code: str, message: str) -> _Reply:
    return _Reply(status, {"error": {"code": code, "message": message}})


_ROUTES: list[tuple[str, re.Pattern[str], str]] = [
    ("POST", re.compile(r"^/users/([^/]+)/calendar/getSchedule$"), "getSchedule"),
    ("GET", re.compile(r"^/users/([^/]+)/calendarView/delta$"), "delta"),
    ("GET", re.compile(r"^/users/([^/]+)/calendar/calendarView$"), "calendarView"),
    ("GET", re.compile(r"^/users/([^/]+)/calendars/([^/]+)/calendarView$"), "calendarView"),
    ("GET", re.compile(r"^/users/([^/]+)/calendars/([^/]+)/calendarView/delta$"), "delta"),
    ("POST", re.compile(r"^/users/([^/]+)/calendar/events$"), "create"),
    ("POST", re.compile(r"^/users/([^/]+)/calendars/([^/]+)/events$"), "create"),
    ("GET", re.compile(r"^/users/([^/]+)/events/([^/]+)$"), "get_event"),
    ("PATCH", re.compile(r"^/users/([^/]+)/events/([^/]+)$"), "patch"),
    ("DELETE", re.compile(r"^/users/([^/]+)/events/([^/]+)$"), "delete"),
    ("POST", re.compile(r"^/subscriptions$"), "subscribe"),
    ("DELETE", re.compile(r"^/subscriptions/([^/]+)$"), "unsubscribe"),
]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 30
    server: _TLSServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PATCH(self) -> None:
        self._dispatch("PATCH")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    # --- plumbing

    def _dispatch(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        fake = self.server.fake
        if fake.stall:
            time_module.sleep(fake.stall)
        url = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        try:
            if url.path.startswith(f"/{fake.tenant}/"):
                self._authority(fake, method, url.path[len(fake.tenant) + 1 :], raw)
            elif url.path.startswith("/v1.0/"):
                self._graph(fake, method, url.path[len("/v1.0") :], query, raw)
            else:
                raise _Reply(404, {"error": "not_found"})
        except _Reply as reply:
            self._send(reply.status, reply.body, reply.headers)

    def _send(self, status: int, body: Any, headers: dict[str, str]) -> None:
        data = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        if body is not None:
            self.send_header("Content-Type", "application/json")
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if data:
            self.wfile.write(data)

    # --- the authority

    def _authority(self, fake: FakeMicrosoft, method: str, path: str, raw: bytes) -> None:
        if method == "GET" and path == "/v2.0/.well-known/openid-configuration":
            with fake.lock:
                fake.discovery_requests += 1
            base = fake.authority
            raise _Reply(
                200,
                {
                    "issuer": f"{base}/v2.0",
                    "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                    "token_endpoint": f"{base}/oauth2/v2.0/token",
                    "token_endpoint_auth_methods_supported": [
                        "client_secret_post",
                        "client_secret_basic",
                    ],
                    "response_types_supported": ["code", "id_token", "token"],
                    "subject_types_supported": ["pairwise"],
                    "id_token_signing_alg_values_supported": ["RS256"],
                },
            )
        if method == "POST" and path == "/oauth2/v2.0/token":
            form = {k: v[-1] for k, v in parse_qs(raw.decode()).items()}
            client_id, secret = form.get("client_id"), form.get("client_secret")
            auth = self.headers.get("Authorization", "")
            if auth.startswith("Basic "):
                user, _, password = base64.b64decode(auth[6:]).decode().partition(":")
                client_id, secret = unquote(user), unquote(password)
            with fake.lock:
                fake.token_requests += 1
                if fake._token_faults:
                    fake._token_faults -= 1
                    raise _Reply(
                        429,
                        {
                            "error": "temporarily_unavailable",
                            "error_description": "AADSTS50196: too many requests",
                        },
                        {"Retry-After": fake._token_retry_after},
                    )
                if form.get("grant_type") != "client_credentials":
                    raise _Reply(
                        400,
                        {
                            "error": "unsupported_grant_type",
                            "error_description": "AADSTS70003: unsupported grant",
                        },
                    )
                if client_id not in fake.apps:
                    raise _Reply(
                        400,
                        {
                            "error": "unauthorized_client",
                            "error_description": "AADSTS700016: Application "
                            "not found in the directory.",
                        },
                    )
                if secret != fake.apps[client_id]:
                    raise _Reply(
                        401,
                        {
                            "error": "invalid_client",
                            "error_description": "AADSTS7000215: Invalid client secret provided.",
                            "error_codes": [7000215],
                        },
                    )
                if not str(form.get("scope", "")).endswith("/.default"):
                    raise _Reply(
                        400,
                        {"error": "invalid_scope", "error_description": "AADSTS1002012: bad scope"},
                    )
                token = fake._issue()
            raise _Reply(
                200,
                {
                    "token_type": "Bearer",
                    "expires_in": fake.token_lifetime,
                    "ext_expires_in": fake.token_lifetime,
                    "access_token": token,
                },
            )
        raise _Reply(404, {"error": "not_found"})

    # --- Graph

    def _graph(
        self, fake: FakeMicrosoft, method: str, path: str, query: dict[str, str], raw: bytes
    ) -> None:
        for verb, pattern, route in _ROUTES:
            match = pattern.match(path)
            if verb == method and match:
                name = route
                break
        else:
            raise _graph_error(404, "BadRequest", "Resource not found for the segment.")
        args = [unquote(a) for a in match.groups()]
        with fake.lock:
            fake.requests[name] += 1
            auth = self.headers.get("Authorization", "")
            if fake.reject_tokens or not auth.startswith("Bearer ") or auth[7:] not in fake._tokens:
                raise _graph_error(401, "InvalidAuthenticationToken", "Access token is empty.")
            if fake._faults:
                status, after = fake._faults.pop(0)
                raise _Reply(
                    status,
                    {
                        "error": {
                            "code": "TooManyRequests" if status == 429 else "ServiceUnavailable",
                            "message": "later",
                        }
                    },
                    {"Retry-After": after} if after is not None else {},
                )
            body = json.loads(raw) if raw else {}
            handler = getattr(self, f"_g_{name}")
            handler(fake, args, query, body)

    def _mailbox(self, fake: FakeMicrosoft, address: str) -> _Mailbox:
        box = fake.mailboxes.get(address.lower())
        if box is None:
            raise _graph_error(404, "ErrorInvalidUser", "The requested user is invalid.")
        return box

    def _g_getSchedule(self, fake: FakeMicrosoft, args: list[str], query: Any, body: Any) -> None:
        self._mailbox(fake, args[0])
        schedules = body.get("schedules") or body.get("Schedules") or []
        start = _parse_graph_dt(body.get("startTime") or body["StartTime"])
        end = _parse_graph_dt(body.get("endTime") or body["EndTime"])
        fake.schedule_calls.append((len(schedules), end - start))
        if len(schedules) > MAX_SCHEDULES:
            raise _graph_error(400, "ErrorInvalidParameter", "Too many schedules.")
        if end - start >= MAX_SCHEDULE_SPAN or end <= start:
            raise _graph_error(400, "ErrorInvalidTimeInterval", "Bad time interval.")
        interval = int(body.get("availabilityViewInterval") or 30)
        slots = max(1, int((end - start) / timedelta(minutes=interval)))
        value = []
        for schedule in schedules:
            box = fake.mailboxes.get(str(schedule).lower())
            if box is None:
                value.append(
                    {
                        "scheduleId": schedule,
                        "availabilityView": "",
                        "error": {
                            "message": "not found",
                            "responseCode": "ErrorMailRecipientNotFound",
                        },
                    }
                )
                continue
            items = []
            for e in box.calendars[box.default].events.values():
                if e.cancelled or not e.overlaps(start, end):
                    continue
                items.append(
                    {
                        "isPrivate": False,
                        "status": e.show_as,
                        "subject": e.subject,
                        "location": e.location,
                        "isMeeting": bool(e.attendees),
                        "isRecurring": False,
                        "isException": False,
                        "isReminderSet": True,
                        "start": _graph_dt(e.start),
                        "end": _graph_dt(e.end),
                    }
                )
            value.append(
                {
                    "scheduleId": schedule,
                    "availabilityView": "0" * slots,
                    "scheduleItems": items,
                    "workingHours": {
                        "daysOfWeek": ["monday"],
                        "startTime": "08:00:00.0000000",
                        "endTime": "17:00:00.0000000",
                        "timeZone": {"name": "UTC"},
                    },
                }
            )
        raise _Reply(
            200,
            {
                "@odata.context": "https://graph.microsoft.com/v1.0/$metadata"
                "#Collection(microsoft.graph.scheduleInformation)",
                "value": value,
            },
        )

    def _page_size(self, fake: FakeMicrosoft) -> int:
        match = re.search(r"odata\.maxpagesize=(\d+)", self.headers.get("Prefer", ""))
        return max(1, min(fake.page_size, int(match.group(1)) if match else fake.page_size))

    def _g_delta(
        self, fake: FakeMicrosoft, args: list[str], query: dict[str, str], body: Any
    ) -> None:
        box = self._mailbox(fake, args[0])
        calendar = args[1] if len(args) > 1 else box.default
        if calendar not in box.calendars:
            raise _graph_error(404, "ErrorItemNotFound", "The calendar was not found.")
        cal = box.calendars[calendar]
        link = (
            f"{fake.graph_endpoint}/users/{box.address}/calendars/{quote(calendar, safe='')}"
            "/calendarView/delta"
        )
        position = cal.log[-1][0] if cal.log else 0
        if "$skiptoken" in query:
            state = fake._states.get(query["$skiptoken"])
            if state is None or state.epoch != fake._epoch:
                raise _graph_error(410, "SyncStateNotFound", "The sync state is gone.")
            items = state.pending
        elif "$deltatoken" in query:
            state = fake._states.get(query["$deltatoken"])
            if state is None or state.epoch != fake._epoch:
                raise _graph_error(
                    410, "SyncStateNotFound", "The sync state generation is not found."
                )
            changed = dict.fromkeys(i for s, i in cal.log if s > state.position)
            items = []
            for event_id in changed:
                event = cal.events.get(event_id)
                if event is not None and event.overlaps(state.start, state.end):
                    rendered = event.render()
                    if fake.sparse_updates:  # Graph may send only what changed
                        rendered = {k: rendered[k] for k in ("id", "@odata.etag", "subject")}
                    items.append(rendered)
                else:
                    items.append(
                        {
                            "@odata.type": "#microsoft.graph.event",
                            "id": event_id,
                            "@removed": {"reason": "deleted"},
                        }
                    )
            state = _DeltaState(
                box.address, calendar, state.start, state.end, position, fake._epoch
            )
        else:
            try:
                start = datetime.fromisoformat(query["startDateTime"].replace("Z", "+00:00"))
                end = datetime.fromisoformat(query["endDateTime"].replace("Z", "+00:00"))
            except (KeyError, ValueError):
                raise _graph_error(
                    400, "ErrorInvalidParameter", "startDateTime and endDateTime are required."
                ) from None
            start = start if start.tzinfo else start.replace(tzinfo=UTC)
            end = end if end.tzinfo else end.replace(tzinfo=UTC)
            items = [e.render() for e in cal.events.values() if e.overlaps(start, end)]
            state = _DeltaState(box.address, calendar, start, end, position, fake._epoch)
        size = self._page_size(fake)
        page, rest = items[:size], items[size:]
        out: dict[str, Any] = {
            "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#Collection(event)",
            "value": page,
        }
        token = secrets.token_urlsafe(16)
        if rest:
            fake._states[token] = _DeltaState(
                state.mailbox, calendar, state.start, state.end, state.position, state.epoch, rest
            )
            out["@odata.nextLink"] = f"{link}?$skiptoken={token}"
        else:
            fake._states[token] = state
            out["@odata.deltaLink"] = f"{link}?$deltatoken={token}"
        raise _Reply(200, out)

    def _g_calendarView(
        self, fake: FakeMicrosoft, args: list[str], query: dict[str, str], body: Any
    ) -> None:
        box = self._mailbox(fake, args[0])
        calendar = args[1] if len(args) > 1 else box.default
        if calendar not in box.calendars:
            raise _graph_error(404, "ErrorItemNotFound", "The calendar was not found.")
        try:
            start = datetime.fromisoformat(query["startDateTime"].replace("Z", "+00:00"))
            end = datetime.fromisoformat(query["endDateTime"].replace("Z", "+00:00"))
        except (KeyError, ValueError):
            raise _graph_error(
                400, "ErrorInvalidParameter", "startDateTime and endDateTime are required."
            ) from None
        events = [
            e.render() for e in box.calendars[calendar].events.values() if e.overlaps(start, end)
        ]
        if "$select" in query:
            keep = set(query["$select"].split(",")) | {"id"}
            events = [{k: v for k, v in e.items() if k in keep} for e in events]
        size = min(fake.page_size, int(query.get("$top") or fake.page_size))
        skip = int(query.get("$skip") or 0)
        out: dict[str, Any] = {"value": events[skip : skip + size]}
        if skip + size < len(events):
            following = urlencode(query | {"$skip": str(skip + size)})
            out["@odata.nextLink"] = (
                f"{fake.graph_endpoint}/users/{box.address}/calendars/{quote(calendar, safe='')}"
                f"/calendarView?{following}"
            )
        raise _Reply(200, out)

    def _g_create(self, fake: FakeMicrosoft, args: list[str], query: Any, body: Any) -> None:
        box = self._mailbox(fake, args[0])
        calendar = args[1] if len(args) > 1 else box.default
        if calendar not in box.calendars:
            raise _graph_error(404, "ErrorItemNotFound", "The calendar was not found.")
        tid = body.get("transactionId")
        if tid and (box.address.lower(), tid) in fake.transactions:
            existing = fake.by_id[fake.transactions[(box.address.lower(), tid)]]
            raise _Reply(201, existing.render())
        content = (body.get("body") or {}).get("content", "")
        event_id = fake.add_event(
            box.address,
            _parse_graph_dt(body["start"]),
            _parse_graph_dt(body["end"]),
            calendar=calendar,
            subject=body.get("subject", ""),
            body=content,
            location=(body.get("location") or {}).get("displayName", ""),
            attendees=[a["emailAddress"]["address"] for a in body.get("attendees") or ()],
            show_as=body.get("showAs", "busy"),
            transaction_id=tid,
        )
        raise _Reply(201, fake.by_id[event_id].render())

    def _event(self, fake: FakeMicrosoft, args: list[str]) -> _Event:
        box = self._mailbox(fake, args[0])
        event = fake.by_id.get(args[1])
        if event is None or event.mailbox.lower() != box.address.lower():
            raise _graph_error(
                404, "ErrorItemNotFound", "The specified object was not found in the store."
            )
        return event

    def _g_get_event(
        self, fake: FakeMicrosoft, args: list[str], query: dict[str, str], body: Any
    ) -> None:
        rendered = self._event(fake, args).render()
        if "$select" in query:
            keep = set(query["$select"].split(",")) | {"id"}
            rendered = {k: v for k, v in rendered.items() if k in keep}
        raise _Reply(200, rendered)

    def _g_patch(self, fake: FakeMicrosoft, args: list[str], query: Any, body: Any) -> None:
        event = self._event(fake, args)
        if "start" in body:
            event.start = _parse_graph_dt(body["start"])
        if "end" in body:
            event.end = _parse_graph_dt(body["end"])
        if "subject" in body:
            event.subject = body["subject"]
        if "body" in body:
            event.body = (body["body"] or {}).get("content", "")
        if "showAs" in body:
            event.show_as = body["showAs"]
        fake._changed(event)
        raise _Reply(200, event.render())

    def _g_delete(self, fake: FakeMicrosoft, args: list[str], query: Any, body: Any) -> None:
        event = self._event(fake, args)
        fake.delete_event(event.id)
        raise _Reply(204)

    def _g_subscribe(self, fake: FakeMicrosoft, args: list[str], query: Any, body: Any) -> None:
        for name in ("changeType", "notificationUrl", "resource", "expirationDateTime"):
            if not body.get(name):
                raise _graph_error(400, "InvalidRequest", f"{name} is required.")
        expires = datetime.fromisoformat(str(body["expirationDateTime"]).replace("Z", "+00:00"))
        if expires - datetime.now(UTC) > MAX_SUBSCRIPTION:
            raise _graph_error(400, "InvalidRequest", "expirationDateTime is too far.")
        if len(str(body.get("clientState") or "")) > 128:
            raise _graph_error(400, "InvalidRequest", "clientState is too long.")
        if fake.handshake:
            token = secrets.token_urlsafe(8)
            url = f"{body['notificationUrl']}?validationToken={token}"
            if _post_json(url, None) != 200:
                raise _graph_error(400, "InvalidRequest", "Subscription validation failed.")
        sub = {
            "id": f"sub-{secrets.token_hex(8)}",
            "resource": body["resource"],
            "applicationId": fake.client_id,
            "changeType": body["changeType"],
            "clientState": body.get("clientState"),
            "notificationUrl": body["notificationUrl"],
            "expirationDateTime": expires.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "creatorId": fake.client_id,
        }
        fake.subscriptions[sub["id"]] = sub
        raise _Reply(201, sub)

    def _g_unsubscribe(self, fake: FakeMicrosoft, args: list[str], query: Any, body: Any) -> None:
        if fake.subscriptions.pop(args[0], None) is None:
            raise _graph_error(404, "ResourceNotFound", "The object was not found.")
        raise _Reply(204)
