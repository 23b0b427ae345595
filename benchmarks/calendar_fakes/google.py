"""A fake Google Calendar API v3 and OAuth token endpoint on 127.0.0.1, for driving the real
google-api-python-client and google-auth against it (tests, the service's end-to-end tests,
``benchmarks/calendars.py``).

    with FakeGoogle() as google:
        creds = google.oauth_credentials()              # client_id, client_secret, refresh_token
        google.add_calendar("agent@example.com", time_zone="Europe/Berlin")
        google.add_event("agent@example.com", start, end, summary="SENTINEL-title")
        settings = {"api_endpoint": google.api_endpoint, "token_uri": google.token_uri}
        ...
        google.requests["events.list"]                  # how many times it was asked

What it speaks (``api_endpoint`` is ``http://127.0.0.1:PORT/calendar/v3/``):

- ``POST /token``: the ``refresh_token`` grant (clients from :meth:`oauth_credentials`) and the
  JWT bearer grant of service accounts (keys from :meth:`add_service_account`; the assertion's
  RS256 signature, issuer, audience, expiry, subject and scopes are checked). Access tokens
  expire after ``token_ttl`` seconds.
- ``freeBusy`` (at most 50 calendars and 90 days per query, like Google), ``events.list`` with
  ``timeMin``/``timeMax``, ``showDeleted``, paging (``pageToken``; ``maxResults`` capped by
  ``page_size``) and sync tokens (refused together with ``timeMin``/``timeMax``; an unknown or
  expired one answers 410 ``fullSyncRequired``), ``events.insert`` (a client-chosen id must be
  base32hex, 5-1024 characters; a taken one answers 409), ``events.patch``,
  ``events.delete`` (a deleted event stays as ``cancelled``, as at Google; deleting it again
  answers 410), ``events.watch`` and ``channels.stop``.
- Partial responses: ``fields=`` is applied (``items(id,start)``, ``a/b`` paths).
- Scopes: each method accepts the scopes Google's discovery document lists for it (bundled
  with google-api-python-client); a token without one answers 403 ``insufficientPermissions``.

Calendars hold events already expanded the way ``singleEvents=true`` returns them: a recurring
series is its instances (``recurringEventId``, ``originalStartTime``). Events carry whatever
summary, description, location and attendees a test gives them (sentinel strings, to prove
nothing of them leaves the connector).

Push: :meth:`push` notifies the channels watching a calendar as Google does.

Faults: :meth:`fail_next` (the next N API answers: 429 with ``Retry-After``, 401, 503...),
:meth:`expire_sync_tokens` (410), :meth:`revoke` (the token endpoint answers
``invalid_grant``). Every request is counted by kind in :attr:`requests` and logged in
:attr:`log` (method, kind, query parameters).
"""

from __future__ import annotations

import base64
import contextlib
import copy
import itertools
import json
import re
import secrets
import socket
import threading
import time as clock
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit
from zoneinfo import ZoneInfo

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from googleapiclient import discovery_cache

SCOPE_PREFIX = "https://www.googleapis.com/auth/"
# What an admin grants a Switchboard connection (README): read busy time, write its own events.
DEFAULT_GRANTED_SCOPES = (
    SCOPE_PREFIX + "calendar.events.freebusy",
    SCOPE_PREFIX + "calendar.events.owned",
)
GOOGLE_TOKEN_URI = "https://oauth2.googleapis.com/token"
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
FREEBUSY_MAX_CALENDARS = 50
FREEBUSY_MAX_SPAN = timedelta(days=90)
_EVENT_ID = re.compile(r"^[a-v0-9]{5,1024}$")


def _method_scopes() -> dict[str, frozenset[str]]:
    """Which scopes each Calendar v3 method accepts, from Google's own discovery document."""
    document = json.loads(discovery_cache.get_static_doc("calendar", "v3"))
    found: dict[str, frozenset[str]] = {}
    for resource, desc in document["resources"].items():
        for name, method in desc.get("methods", {}).items():
            found[f"{resource}.{name}"] = frozenset(method.get("scopes", ()))
    return found


METHOD_SCOPES = _method_scopes()


@dataclass
class Grant:
    """What an access token stands for."""

    scopes: frozenset[str]
    expires: float
    subject: str | None = None


@dataclass
class Channel:
    id: str
    resource_id: str
    calendar: str
    address: str
    token: str | None
    expiration_ms: int


@dataclass
class Fault:
    status: int
    retry_after: str | None
    reason: str
    lost: bool = False  # the request takes effect; only its answer is the fault
    raw: bytes | None = None  # the answer's body as is (not Google's error JSON)


@dataclass
class Logged:
    method: str
    kind: str
    path: str
    query: dict[str, str]
    body: Any = None


@dataclass
class _Calendar:
    time_zone: str
    events: dict[str, dict[str, Any]] = field(default_factory=dict)
    seq: dict[str, int] = field(default_factory=dict)  # event id -> change number


class _Reply(Exception):
    """Answer the request with this status and body."""

    def __init__(
        self, status: int, body: Any = None, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(status)
        self.status = status
        self.body = body
        self.headers = dict(headers or {})


def _error(status: int, reason: str, message: str = "", domain: str = "global") -> _Reply:
    return _Reply(
        status,
        {
            "error": {
                "code": status,
                "message": message or reason,
                "errors": [{"domain": domain, "reason": reason, "message": message or reason}],
            }
        },
    )


# --- partial responses (fields=) ---------------------------------------------------------------


def parse_fields(spec: str) -> dict[str, Any]:
    """``a,b/c,d(e,f)`` as a tree: name -> subtree, None for "all of it"."""
    pos = 0

    def parse_list() -> dict[str, Any]:
        nonlocal pos
        tree: dict[str, Any] = {}
        while True:
            match = re.match(r"[A-Za-z0-9_*]+(?:/[A-Za-z0-9_*]+)*", spec[pos:])
            if not match:
                raise _error(400, "invalidParameter", "Invalid field selection")
            path = match.group(0).split("/")
            pos += match.end()
            sub: dict[str, Any] | None = None
            if pos < len(spec) and spec[pos] == "(":
                pos += 1
                sub = parse_list()
                if pos >= len(spec) or spec[pos] != ")":
                    raise _error(400, "invalidParameter", "Invalid field selection")
                pos += 1
            node = tree
            for name in path[:-1]:
                child = node.get(name, {})
                if child is None:
                    break
                node = node.setdefault(name, child)
            else:
                node[path[-1]] = sub
            if pos < len(spec) and spec[pos] == ",":
                pos += 1
                continue
            return tree

    tree = parse_list()
    if pos != len(spec):
        raise _error(400, "invalidParameter", "Invalid field selection")
    return tree


def select_fields(value: Any, tree: dict[str, Any] | None) -> Any:
    if tree is None or "*" in tree:
        return value
    if isinstance(value, list):
        return [select_fields(v, tree) for v in value]
    if isinstance(value, dict):
        return {k: select_fields(value[k], sub) for k, sub in tree.items() if k in value}
    return value


# --- times -----------------------------------------------------------------------------------


def _utc(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise ValueError("no offset")
    return moment.astimezone(UTC)


def _z(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _b64url(data: bytes) -> bytes:
    return base64.urlsafe_b64decode(data + b"=" * (-len(data) % 4))


class FakeGoogle:
    """A Google Calendar and its token endpoint in a daemon thread; a context manager."""

    def __init__(self, *, page_size: int = 2500, token_ttl: int = 3600) -> None:
        self.page_size = page_size
        self.token_ttl = token_ttl
        self.requests: Counter[str] = Counter()
        self.log: list[Logged] = []
        self.channels: dict[str, Channel] = {}
        self._calendars: dict[str, _Calendar] = {}
        self._clients: dict[str, str] = {}  # client_id -> client_secret
        self._refresh: dict[str, tuple[str, frozenset[str]]] = {}  # token -> (client, scopes)
        self._revoked_all = False
        self._service_accounts: dict[str, rsa.RSAPublicKey] = {}
        self._tokens: dict[str, Grant] = {}
        self._sync_tokens: dict[str, tuple[str, int]] = {}  # token -> (calendar, seq)
        self._pages: dict[str, list[dict[str, Any]]] = {}
        self._faults: list[Fault] = []
        self._seq = 0
        self._messages = 0
        self._ids = itertools.count(1)
        self._lock = threading.RLock()
        self._serving: set[socket.socket] = set()  # connections being served (closed by stop)
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.api_endpoint = ""
        self.token_uri = ""

    # --- lifecycle
    def start(self) -> FakeGoogle:
        server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        server.daemon_threads = True
        server.fake = self  # type: ignore[attr-defined]
        self._server = server
        port = server.server_address[1]
        self.api_endpoint = f"http://127.0.0.1:{port}/calendar/v3/"
        self.token_uri = f"http://127.0.0.1:{port}/token"
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        with self._lock:
            for connection in self._serving:  # idle keep-alive connections: end their threads
                with contextlib.suppress(OSError):
                    connection.shutdown(socket.SHUT_RDWR)
            self._serving.clear()

    def __enter__(self) -> FakeGoogle:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def settings(self, **more: Any) -> dict[str, Any]:
        """A connection's settings pointing at this fake."""
        return {"api_endpoint": self.api_endpoint, "token_uri": self.token_uri, **more}

    # --- credentials
    def oauth_credentials(self, scopes: Iterable[str] = DEFAULT_GRANTED_SCOPES) -> dict[str, str]:
        """A new OAuth client and a refresh token granting ``scopes``."""
        with self._lock:
            client_id = f"client-{next(self._ids)}.apps.example"
            secret = secrets.token_urlsafe(12)
            refresh = "1//" + secrets.token_urlsafe(24)
            self._clients[client_id] = secret
            self._refresh[refresh] = (client_id, frozenset(scopes))
        return {"client_id": client_id, "client_secret": secret, "refresh_token": refresh}

    def add_service_account(self, client_email: str, public_key: rsa.RSAPublicKey) -> None:
        """Trust assertions signed by ``public_key``'s private key for ``client_email``
        (domain-wide delegation: any subject)."""
        with self._lock:
            self._service_accounts[client_email] = public_key

    def revoke(self, refresh_token: str | None = None) -> None:
        """The token endpoint answers ``invalid_grant`` for ``refresh_token`` (None: for every
        refresh token and service account), and the access tokens already issued die."""
        with self._lock:
            if refresh_token is None:
                self._revoked_all = True
            else:
                self._refresh.pop(refresh_token, None)
            self._tokens.clear()

    # --- calendars and events
    def add_calendar(self, calendar: str, *, time_zone: str = "UTC") -> None:
        with self._lock:
            if calendar in self._calendars:
                self._calendars[calendar].time_zone = time_zone
            else:
                self._calendars[calendar] = _Calendar(time_zone)

    def _cal(self, calendar: str) -> _Calendar:
        if calendar not in self._calendars:
            self._calendars[calendar] = _Calendar("UTC")
        return self._calendars[calendar]

    def _bump(self, calendar: str, event_id: str) -> None:
        self._seq += 1
        self._cal(calendar).seq[event_id] = self._seq

    def _local(self, calendar: str, moment: datetime) -> dict[str, str]:
        zone = self._cal(calendar).time_zone
        return {"dateTime": moment.astimezone(ZoneInfo(zone)).isoformat(), "timeZone": zone}

    def _store(
        self,
        calendar: str,
        start: dict[str, str],
        end: dict[str, str],
        *,
        event_id: str | None,
        summary: str | None,
        description: str | None,
        location: str | None,
        attendees: Iterable[str],
        transparent: bool,
        private: Mapping[str, str] | None,
        extra: Mapping[str, Any] | None = None,
    ) -> str:
        event_id = event_id or f"ev{next(self._ids):06d}"
        event: dict[str, Any] = {
            "kind": "calendar#event",
            "id": event_id,
            "status": "confirmed",
            "htmlLink": f"https://calendar.example/event?eid={event_id}",
            "iCalUID": f"{event_id}@google.com",
            "start": start,
            "end": end,
            "organizer": {"email": calendar, "self": True},
            "creator": {"email": calendar},
            "reminders": {"useDefault": True},
            "eventType": "default",
        }
        if summary is not None:
            event["summary"] = summary
        if description is not None:
            event["description"] = description
        if location is not None:
            event["location"] = location
        people = [{"email": a, "displayName": a, "responseStatus": "accepted"} for a in attendees]
        if people:
            event["attendees"] = people
        if transparent:
            event["transparency"] = "transparent"
        if private:
            event["extendedProperties"] = {"private": dict(private)}
        event.update(extra or {})
        self._cal(calendar).events[event_id] = event
        self._bump(calendar, event_id)
        return event_id

    def add_event(
        self,
        calendar: str,
        start: datetime,
        end: datetime,
        *,
        event_id: str | None = None,
        summary: str | None = None,
        description: str | None = None,
        location: str | None = None,
        attendees: Iterable[str] = (),
        transparent: bool = False,
        private: Mapping[str, str] | None = None,
    ) -> str:
        """A timed event (aware datetimes), rendered in the calendar's zone; its id."""
        with self._lock:
            return self._store(
                calendar,
                self._local(calendar, start),
                self._local(calendar, end),
                event_id=event_id,
                summary=summary,
                description=description,
                location=location,
                attendees=attendees,
                transparent=transparent,
                private=private,
            )

    def add_all_day(
        self,
        calendar: str,
        first: date,
        end: date,
        *,
        event_id: str | None = None,
        summary: str | None = None,
        description: str | None = None,
        location: str | None = None,
        attendees: Iterable[str] = (),
        transparent: bool = False,
    ) -> str:
        """An all-day event from ``first`` to ``end`` (exclusive, as Google's ``end.date``)."""
        with self._lock:
            return self._store(
                calendar,
                {"date": first.isoformat()},
                {"date": end.isoformat()},
                event_id=event_id,
                summary=summary,
                description=description,
                location=location,
                attendees=attendees,
                transparent=transparent,
                private=None,
            )

    def add_recurring(
        self,
        calendar: str,
        start: datetime,
        end: datetime,
        *,
        count: int,
        every: timedelta = timedelta(days=7),
        summary: str | None = None,
        description: str | None = None,
        location: str | None = None,
        attendees: Iterable[str] = (),
    ) -> list[str]:
        """A series as ``singleEvents=true`` lists it: ``count`` instances ``every`` apart,
        each with the series' ``recurringEventId``; their ids."""
        with self._lock:
            series = f"rec{next(self._ids):06d}"
            ids = []
            for n in range(count):
                a, b = start + n * every, end + n * every
                ids.append(
                    self._store(
                        calendar,
                        self._local(calendar, a),
                        self._local(calendar, b),
                        event_id=f"{series}_{a.astimezone(UTC):%Y%m%dT%H%M%SZ}",
                        summary=summary,
                        description=description,
                        location=location,
                        attendees=attendees,
                        transparent=False,
                        private=None,
                        extra={
                            "recurringEventId": series,
                            "originalStartTime": self._local(calendar, a),
                        },
                    )
                )
            return ids

    def move_event(self, calendar: str, event_id: str, start: datetime, end: datetime) -> None:
        with self._lock:
            event = self._cal(calendar).events[event_id]
            event["start"] = self._local(calendar, start)
            event["end"] = self._local(calendar, end)
            self._bump(calendar, event_id)

    def delete_event(self, calendar: str, event_id: str) -> None:
        """Delete (cancel) an event: it stays listed as ``cancelled`` with ``showDeleted`` and
        in incremental syncs, as at Google."""
        with self._lock:
            self._cal(calendar).events[event_id]["status"] = "cancelled"
            self._bump(calendar, event_id)

    def event(self, calendar: str, event_id: str) -> dict[str, Any]:
        """A copy of one stored event (everything, for assertions)."""
        with self._lock:
            return copy.deepcopy(self._calendars[calendar].events[event_id])

    def events(self, calendar: str) -> list[dict[str, Any]]:
        with self._lock:
            found = self._calendars.get(calendar)
            return copy.deepcopy(list(found.events.values())) if found else []

    # --- push
    def push(self, calendar: str, state: str = "exists") -> list[int]:
        """Notify every channel watching ``calendar`` the way Google does (a POST with no body
        and ``X-Goog-*`` headers; ``state`` is ``sync`` for the first message of a channel,
        ``exists`` for a change); the HTTP status each address answered (0: unreachable)."""
        with self._lock:
            watching = [c for c in self.channels.values() if c.calendar == calendar]
            self._messages += 1
            number = self._messages
        statuses = []
        for channel in watching:
            headers = {
                "X-Goog-Channel-ID": channel.id,
                "X-Goog-Channel-Expiration": formatdate(channel.expiration_ms / 1000, usegmt=True),
                "X-Goog-Resource-ID": channel.resource_id,
                "X-Goog-Resource-URI": f"{self.api_endpoint}calendars/{calendar}/events?alt=json",
                "X-Goog-Resource-State": state,
                "X-Goog-Message-Number": str(number),
            }
            if channel.token is not None:
                headers["X-Goog-Channel-Token"] = channel.token
            request = urllib.request.Request(
                channel.address, data=b"", headers=headers, method="POST"
            )
            try:
                with urllib.request.urlopen(request, timeout=5) as answer:
                    statuses.append(int(answer.status))
            except urllib.error.HTTPError as exc:
                statuses.append(int(exc.code))
            except OSError:
                statuses.append(0)
        return statuses

    # --- faults
    def fail_next(
        self,
        count: int = 1,
        status: int = 429,
        *,
        retry_after: str | None = None,
        reason: str | None = None,
        lost: bool = False,
        raw: bytes | None = None,
    ) -> None:
        """The next ``count`` API requests (not the token endpoint) answer ``status`` (with
        ``Retry-After`` and Google's error ``reason`` when given). ``lost``: the request still
        takes effect, only its answer is lost -- what a retry must not duplicate. ``raw``: the
        body sent instead of Google's error JSON (a proxy's HTML page, a truncated answer)."""
        default = {
            429: "rateLimitExceeded",
            401: "authError",
            403: "rateLimitExceeded",
            410: "deleted",
        }.get(status, "backendError")
        with self._lock:
            self._faults.extend(
                Fault(status, retry_after, reason or default, lost, raw) for _ in range(count)
            )

    def expire_sync_tokens(self) -> None:
        """Every sync token handed out so far answers 410 Gone (``fullSyncRequired``)."""
        with self._lock:
            self._sync_tokens.clear()

    @property
    def total_requests(self) -> int:
        return sum(self.requests.values())

    # --- serving (called by the handler, under no lock)
    def handle(
        self, method: str, path: str, query: dict[str, str], headers: Mapping[str, str], raw: bytes
    ) -> _Reply:
        if path == "/token" and method == "POST":
            return self._token(raw)
        prefix = "/calendar/v3/"
        if not path.startswith(prefix):
            raise _error(404, "notFound")
        rest = path[len(prefix) :]
        parts = [unquote(p) for p in rest.split("/")]
        route: tuple[str, str | None, str | None]
        if method == "POST" and parts == ["freeBusy"]:
            route = ("freebusy.query", None, None)
        elif method == "POST" and parts == ["channels", "stop"]:
            route = ("channels.stop", None, None)
        elif len(parts) == 3 and parts[0] == "calendars" and parts[2] == "events":
            kinds = {"GET": "events.list", "POST": "events.insert"}
            route = (kinds.get(method, ""), parts[1], None)
        elif len(parts) == 4 and parts[0] == "calendars" and parts[2:] == ["events", "watch"]:
            route = ("events.watch" if method == "POST" else "", parts[1], None)
        elif len(parts) == 4 and parts[0] == "calendars" and parts[2] == "events":
            kinds = {"PATCH": "events.patch", "DELETE": "events.delete", "GET": "events.get"}
            route = (kinds.get(method, ""), parts[1], parts[3])
        else:
            raise _error(404, "notFound")
        kind, calendar, event_id = route
        if not kind:
            raise _error(405, "methodNotAllowed")
        body = json.loads(raw) if raw else None
        with self._lock:
            self.requests[kind] += 1
            self.log.append(Logged(method, kind, path, query, body))
            self._authorise(kind, headers)
            fault = self._faults.pop(0) if self._faults else None
            if fault is not None and not fault.lost:
                raise self._fault(fault)
            answer: dict[str, Any] | None = None  # None: 204 No Content
            if kind == "freebusy.query":
                answer = self._freebusy(body or {})
            elif kind == "channels.stop":
                self._stop(body or {})
            elif kind == "events.list":
                answer = self._list(str(calendar), query)
            elif kind == "events.insert":
                answer = self._insert(str(calendar), body or {})
            elif kind == "events.patch":
                answer = self._patch(str(calendar), str(event_id), body or {})
            elif kind == "events.delete":
                self._delete(str(calendar), str(event_id))
            elif kind == "events.get":
                answer = self._get(str(calendar), str(event_id))
            else:
                answer = self._watch(str(calendar), body or {})
            if fault is not None:
                raise self._fault(fault)
        if answer is None:
            return _Reply(204)
        if "fields" in query:
            answer = select_fields(answer, parse_fields(query["fields"]))
        return _Reply(200, answer)

    @staticmethod
    def _fault(fault: Fault) -> _Reply:
        reply = _error(fault.status, fault.reason, domain="usageLimits")
        if fault.raw is not None:
            reply.body = fault.raw
        if fault.retry_after is not None:
            reply.headers["Retry-After"] = fault.retry_after
        return reply

    def _authorise(self, kind: str, headers: Mapping[str, str]) -> None:
        auth = headers.get("authorization", "")
        grant = self._tokens.get(auth[7:]) if auth.startswith("Bearer ") else None
        if grant is None or grant.expires < clock.time():
            raise _error(401, "authError", "Invalid Credentials")
        if not grant.scopes & METHOD_SCOPES.get(kind, frozenset()):
            raise _error(403, "insufficientPermissions", "Insufficient Permission")

    def _issue(self, scopes: frozenset[str], subject: str | None) -> dict[str, Any]:
        token = "ya29." + secrets.token_urlsafe(24)
        self._tokens[token] = Grant(scopes, clock.time() + self.token_ttl, subject)
        return {
            "access_token": token,
            "expires_in": self.token_ttl,
            "token_type": "Bearer",
            "scope": " ".join(sorted(scopes)),
        }

    def _token(self, raw: bytes) -> _Reply:
        form = {k: v[0] for k, v in parse_qs(raw.decode()).items()}
        grant_type = form.get("grant_type")
        with self._lock:
            self.requests["token"] += 1
            self.log.append(Logged("POST", "token", "/token", {"grant_type": str(grant_type)}))
            if grant_type == "refresh_token":
                client = form.get("client_id", "")
                if self._clients.get(client) != form.get("client_secret"):
                    return _Reply(401, {"error": "invalid_client", "error_description": "bad"})
                found = self._refresh.get(form.get("refresh_token", ""))
                if self._revoked_all or found is None or found[0] != client:
                    return _Reply(
                        400,
                        {"error": "invalid_grant", "error_description": "Token has been revoked."},
                    )
                return _Reply(200, self._issue(found[1], None))
            if grant_type == JWT_BEARER:
                claims = self._verify(form.get("assertion", ""))
                if claims is None or self._revoked_all:
                    return _Reply(
                        400, {"error": "invalid_grant", "error_description": "Invalid JWT."}
                    )
                if not claims.get("sub"):
                    return _Reply(
                        401,
                        {"error": "unauthorized_client", "error_description": "no subject"},
                    )
                scopes = frozenset(str(claims.get("scope", "")).split())
                return _Reply(200, self._issue(scopes, str(claims["sub"])))
            return _Reply(400, {"error": "unsupported_grant_type"})

    def _verify(self, assertion: str) -> dict[str, Any] | None:
        """The claims of an RS256 assertion from a known service account, else None."""
        try:
            head, payload, signature = assertion.encode().split(b".")
            header = json.loads(_b64url(head))
            claims = json.loads(_b64url(payload))
            key = self._service_accounts.get(claims.get("iss", ""))
            if header.get("alg") != "RS256" or key is None:
                return None
            key.verify(
                _b64url(signature), head + b"." + payload, padding.PKCS1v15(), hashes.SHA256()
            )
        except (ValueError, InvalidSignature, AttributeError):
            return None
        now = clock.time()
        # google-auth names Google's token endpoint as the audience whatever token_uri is
        audiences = (self.token_uri, GOOGLE_TOKEN_URI)
        if claims.get("aud") not in audiences or not claims.get("iat", now + 1) <= now + 60:
            return None
        if not float(claims.get("exp", 0)) > now:
            return None
        return dict(claims)

    # --- the methods
    def _span(self, calendar: _Calendar, event: Mapping[str, Any]) -> tuple[datetime, datetime]:
        def at(value: Mapping[str, str]) -> datetime:
            if "dateTime" in value:
                return _utc(value["dateTime"])
            day = date.fromisoformat(value["date"])
            return datetime.combine(day, time(0), tzinfo=ZoneInfo(calendar.time_zone))

        return at(event["start"]), at(event["end"])

    def _freebusy(self, body: Mapping[str, Any]) -> dict[str, Any]:
        items = body.get("items") or []
        if len(items) > FREEBUSY_MAX_CALENDARS:
            raise _error(400, "tooManyCalendarsRequested", "Too many calendars requested")
        try:
            lo, hi = _utc(body["timeMin"]), _utc(body["timeMax"])
        except (KeyError, ValueError) as exc:
            raise _error(400, "badRequest", "timeMin/timeMax") from exc
        if hi <= lo:
            raise _error(400, "timeRangeEmpty", "The specified time range is empty.")
        if hi - lo > FREEBUSY_MAX_SPAN:
            raise _error(400, "timeRangeTooLong", "The requested time range is too long.")
        answer: dict[str, Any] = {}
        for item in items:
            cal_id = item.get("id", "")
            calendar = self._calendars.get(cal_id)
            if calendar is None:
                missing = [{"domain": "global", "reason": "notFound"}]
                answer[cal_id] = {"errors": missing, "busy": []}
                continue
            spans = sorted(
                (max(a, lo), min(b, hi))
                for e in calendar.events.values()
                if e.get("status") != "cancelled" and e.get("transparency") != "transparent"
                for a, b in [self._span(calendar, e)]
                if b > lo and a < hi
            )
            merged: list[list[datetime]] = []
            for a, b in spans:
                if merged and a <= merged[-1][1]:
                    merged[-1][1] = max(merged[-1][1], b)
                else:
                    merged.append([a, b])
            answer[cal_id] = {"busy": [{"start": _z(a), "end": _z(b)} for a, b in merged]}
        return {
            "kind": "calendar#freeBusy",
            "timeMin": _z(lo),
            "timeMax": _z(hi),
            "calendars": answer,
        }

    @staticmethod
    def _listed(event: Mapping[str, Any]) -> dict[str, Any]:
        if event.get("status") == "cancelled":  # what Google keeps of a deleted event
            keep = ("kind", "id", "status", "recurringEventId", "originalStartTime")
            return {k: copy.deepcopy(event[k]) for k in keep if k in event}
        return copy.deepcopy(dict(event))

    def _list(self, cal_id: str, query: Mapping[str, str]) -> dict[str, Any]:
        calendar = self._calendars.get(cal_id)
        if calendar is None:
            raise _error(404, "notFound", "Not Found")
        if "pageToken" in query:
            pages = self._pages.get(query["pageToken"])
            if pages is None:
                raise _error(400, "invalid", "Invalid page token")
            return pages.pop(0) if len(pages) > 1 else self._pages.pop(query["pageToken"])[0]
        if "syncToken" in query:
            for refused in ("timeMin", "timeMax", "updatedMin", "q", "orderBy", "iCalUID"):
                if refused in query:
                    raise _error(400, "invalid", f"{refused} cannot be used with a sync token")
            if query.get("showDeleted") == "false":
                raise _error(400, "invalid", "showDeleted=false cannot be used with a sync token")
            found = self._sync_tokens.get(query["syncToken"])
            if found is None or found[0] != cal_id:
                raise _error(410, "fullSyncRequired", "Sync token is no longer valid")
            since = found[1]
            chosen = [e for k, e in calendar.events.items() if calendar.seq[k] > since]
        else:
            lo = _utc(query["timeMin"]) if "timeMin" in query else None
            hi = _utc(query["timeMax"]) if "timeMax" in query else None
            deleted = query.get("showDeleted") == "true"
            chosen = []
            for event in calendar.events.values():
                if event.get("status") == "cancelled" and not deleted:
                    continue
                a, b = self._span(calendar, event)
                if (lo is None or b > lo) and (hi is None or a < hi):
                    chosen.append(event)
        chosen.sort(key=lambda e: calendar.seq[e["id"]])
        sync_token = f"sync-{secrets.token_urlsafe(12)}"
        self._sync_tokens[sync_token] = (cal_id, self._seq)
        size = min(self.page_size, int(query.get("maxResults", 250)), 2500)
        chunks = [chosen[i : i + size] for i in range(0, len(chosen), size)] or [[]]
        head = {
            "kind": "calendar#events",
            "summary": cal_id,
            "updated": _z(datetime.now(UTC)),
            "timeZone": calendar.time_zone,
            "accessRole": "owner",
            "defaultReminders": [],
        }
        pages = [{**head, "items": [self._listed(e) for e in chunk]} for chunk in chunks]
        pages[-1]["nextSyncToken"] = sync_token
        if len(pages) > 1:
            page_token = f"page-{secrets.token_urlsafe(12)}"
            for page in pages[:-1]:
                page["nextPageToken"] = page_token
            self._pages[page_token] = pages[1:]
        return pages[0]

    def _insert(self, cal_id: str, body: Mapping[str, Any]) -> dict[str, Any]:
        calendar = self._calendars.get(cal_id)
        if calendar is None:
            raise _error(404, "notFound", "Not Found")
        event_id = body.get("id")
        if event_id is not None:
            if not isinstance(event_id, str) or not _EVENT_ID.match(event_id):
                raise _error(400, "invalid", "Invalid resource id value.")
            if event_id in calendar.events:
                raise _error(409, "duplicate", "The requested identifier already exists.")
        else:
            event_id = f"ev{next(self._ids):06d}"
        if "start" not in body or "end" not in body:
            raise _error(400, "required", "Missing end time.")
        event = {"kind": "calendar#event", "status": "confirmed", **copy.deepcopy(dict(body))}
        event["id"] = event_id
        calendar.events[event_id] = event
        self._bump(cal_id, event_id)
        return copy.deepcopy(event)

    def _patch(self, cal_id: str, event_id: str, body: Mapping[str, Any]) -> dict[str, Any]:
        calendar = self._calendars.get(cal_id)
        if calendar is None or event_id not in calendar.events:
            raise _error(404, "notFound", "Not Found")
        event = calendar.events[event_id]
        for key, value in body.items():
            if key != "id":
                event[key] = copy.deepcopy(value)
        self._bump(cal_id, event_id)
        return copy.deepcopy(event)

    def _delete(self, cal_id: str, event_id: str) -> None:
        calendar = self._calendars.get(cal_id)
        if calendar is None or event_id not in calendar.events:
            raise _error(404, "notFound", "Not Found")
        if calendar.events[event_id].get("status") == "cancelled":
            raise _error(410, "deleted", "Resource has been deleted")
        calendar.events[event_id]["status"] = "cancelled"
        self._bump(cal_id, event_id)

    def _get(self, cal_id: str, event_id: str) -> dict[str, Any]:
        calendar = self._calendars.get(cal_id)
        if calendar is None or event_id not in calendar.events:
            raise _error(404, "notFound", "Not Found")
        return copy.deepcopy(calendar.events[event_id])

    def _watch(self, cal_id: str, body: Mapping[str, Any]) -> dict[str, Any]:
        if cal_id not in self._calendars:
            raise _error(404, "notFound", "Not Found")
        if body.get("type") != "web_hook" or not body.get("address") or not body.get("id"):
            raise _error(400, "required", "id, type web_hook and address are required")
        if body["id"] in self.channels:
            raise _error(400, "channelIdNotUnique", "Channel id not unique")
        ttl = int((body.get("params") or {}).get("ttl", 604800))
        channel = Channel(
            id=str(body["id"]),
            resource_id=f"res-{secrets.token_urlsafe(9)}",
            calendar=cal_id,
            address=str(body["address"]),
            token=body.get("token"),
            expiration_ms=int((clock.time() + ttl) * 1000),
        )
        self.channels[channel.id] = channel
        return {
            "kind": "api#channel",
            "id": channel.id,
            "resourceId": channel.resource_id,
            "resourceUri": f"{self.api_endpoint}calendars/{cal_id}/events?alt=json",
            "token": channel.token,
            "expiration": str(channel.expiration_ms),
        }

    def _stop(self, body: Mapping[str, Any]) -> None:
        channel = self.channels.get(str(body.get("id")))
        if channel is None or channel.resource_id != body.get("resourceId"):
            raise _error(404, "notFound", "Channel not found")
        del self.channels[channel.id]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: httplib2 reuses its connection

    def setup(self) -> None:
        super().setup()
        # One write per answer and no Nagle: otherwise each answer waits ~40 ms for the
        # client's delayed ACK.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        fake: FakeGoogle = self.server.fake  # type: ignore[attr-defined]
        with fake._lock:
            fake._serving.add(self.connection)

    def finish(self) -> None:
        fake: FakeGoogle = self.server.fake  # type: ignore[attr-defined]
        with fake._lock:
            fake._serving.discard(self.connection)
        with contextlib.suppress(OSError):
            super().finish()

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def _serve(self) -> None:
        fake: FakeGoogle = self.server.fake  # type: ignore[attr-defined]
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        parts = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        headers = {k.lower(): v for k, v in self.headers.items()}
        try:
            reply = fake.handle(self.command, parts.path, query, headers, raw)
        except _Reply as exc:
            reply = exc
        except Exception as exc:  # a bug in the fake: say so, do not hang the client
            reply = _error(500, "backendError", f"fake: {type(exc).__name__}: {exc}")
        if reply.body is None or isinstance(reply.body, bytes):
            payload = reply.body or b""
        else:
            payload = json.dumps(reply.body).encode()
        self.send_response(reply.status)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        if payload:
            self.send_header("Content-Type", "application/json; charset=UTF-8")
        self.send_header("Content-Length", str(len(payload)))
        self._headers_buffer.append(b"\r\n" + payload)  # type: ignore[attr-defined]
        self.flush_headers()

    do_GET = do_POST = do_PATCH = do_DELETE = do_PUT = _serve


def service_account_key(client_email: str) -> tuple[dict[str, str], rsa.RSAPublicKey]:
    """A fresh service account key file (JSON object) and its public key, for tests."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    info = {
        "type": "service_account",
        "project_id": "switchboard-test",
        "private_key_id": secrets.token_hex(20),
        "private_key": pem,
        "client_email": client_email,
        "client_id": str(secrets.randbelow(10**20)),
        "token_uri": GOOGLE_TOKEN_URI,
    }
    return info, key.public_key()
