"""Google Calendar through google-api-python-client: busy time in, the call's event out.

Two ways to authorise (``settings["auth"]``):

- ``"oauth"`` (the default): a user's refresh token; ``credentials`` holds ``client_id``,
  ``client_secret`` and ``refresh_token`` from a consent that granted :data:`SCOPES`.
- ``"service_account"``: a Google Workspace service account with domain-wide delegation,
  acting as ``settings["subject"]`` (the agent's email); ``credentials`` holds
  ``service_account_info``, the key file's JSON object. An admin allows the service account's
  client id for exactly :data:`SCOPES` in the Admin console (Security > API controls >
  Domain-wide delegation).

``settings["api_endpoint"]`` (default :data:`DEFAULT_API_ENDPOINT`; the ``/calendar/v3/`` path
is part of it) and ``settings["token_uri"]`` (default :data:`DEFAULT_TOKEN_URI`) point the
client elsewhere: sovereign deployments and the tests' fake server.

What is read: ``freebusy.query`` (:meth:`GoogleConnector.busy`) and ``events.list`` with
``singleEvents`` and sync tokens (:meth:`GoogleConnector.sync`), asking only for each event's id,
status, start, end, transparency and private extended properties (``fields=``); titles,
descriptions, attendees, locations and organisers are never requested and, should a server send
them anyway, dropped here. What is written: one neutral event per bound call, no attendees (so
nobody is emailed), its id derived from the call id (:func:`event_id`) so a retried insert cannot
duplicate it, marked with the private extended property ``switchboardCall`` so that reading it
back flags it as the service's own (``BusyEvent.own``).

Speed: the bundled discovery document is parsed once per process and the API resources built
once per endpoint; each connector brings only its own authorised HTTP channel (explicit
timeout), and credentials -- with their access tokens -- are reused across connectors of the
same connection until they expire. A connector is meant for one thread at a time (httplib2).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import functools
import hashlib
import json
import re
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import google_auth_httplib2
import httplib2
from google.auth import crypt
from google.auth import exceptions as auth_exceptions
from google.oauth2 import credentials as oauth_credentials
from google.oauth2 import service_account
from googleapiclient import discovery, discovery_cache
from googleapiclient import errors as api_errors
from googleapiclient.errors import HttpError

from calendars.base import (
    BusyEvent,
    CallEvent,
    CredentialError,
    CursorExpired,
    Delta,
    ProviderError,
    Retry,
    RetryLater,
    Transparency,
    WatchChannel,
    retry_after_seconds,
)

__all__ = [
    "DEFAULT_API_ENDPOINT",
    "DEFAULT_TOKEN_URI",
    "READ_SCOPE",
    "SCOPES",
    "WRITE_SCOPE",
    "GoogleConnector",
    "event_id",
    "forget_tokens",
    "from_config",
    "problems",
]

DEFAULT_API_ENDPOINT = "https://www.googleapis.com/calendar/v3/"
DEFAULT_TOKEN_URI = "https://oauth2.googleapis.com/token"

READ_SCOPE = "https://www.googleapis.com/auth/calendar.events.freebusy"
WRITE_SCOPE = "https://www.googleapis.com/auth/calendar.events.owned"
SCOPES: tuple[str, ...] = (READ_SCOPE, WRITE_SCOPE)
"""The OAuth scopes a Google connection needs, and no more.

- ``calendar.events.freebusy`` ("See the availability on Google calendars you have access
  to") reads busy time: it is accepted by ``freebusy.query``, ``events.list`` (the sync, sync
  tokens included), ``events.watch`` and ``channels.stop``. ``calendar.freebusy`` alone would
  do for free/busy queries but not for the incremental sync; ``calendar.readonly`` and
  ``calendar.events.readonly`` would do but show every event's contents.
- ``calendar.events.owned`` ("See, create, change, and delete events on Google calendars you
  own") writes the call's event into the agent's own calendar and reads back the marker that
  tells the service's own events apart. No scope narrower than it allows ``events.insert``.

Which method accepts which scope is the ``scopes`` list of each method in Google's discovery
document for Calendar v3 (bundled with google-api-python-client).
"""

OWN_PROPERTY = "switchboardCall"
"""The private extended property that carries the call id on an event the service wrote."""

FREEBUSY_MAX_CALENDARS = 50  # freebusy.query: "calendarExpansionMax ... Maximum value is 50"
# freebusy.query refuses long ranges ("The requested time range is too long"; about 90 days
# in practice, undocumented): each query covers at most this much.
FREEBUSY_MAX_SPAN = timedelta(days=60)
PAGE_SIZE = 2500  # events.list maxResults: at most 2500
EVENT_FIELDS = (
    "nextPageToken,nextSyncToken,timeZone,"
    "items(id,status,start,end,transparency,extendedProperties/private)"
)
_RATE_REASONS = frozenset(
    {"rateLimitExceeded", "userRateLimitExceeded", "quotaExceeded", "dailyLimitExceeded"}
)
_SAFE_CODE = re.compile(r"^[A-Za-z][A-Za-z0-9_.]{0,63}$")
_EVENT_ID = re.compile(r"^[a-v0-9]{5,1024}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
_AUTHS = ("oauth", "service_account")
# google-auth's constructors are untyped; called through these.
_SIGNER: Any = crypt.RSASigner
_SERVICE_ACCOUNT: Any = service_account.Credentials
_USER_CREDENTIALS: Any = oauth_credentials.Credentials


# --- configuration ---------------------------------------------------------------------------


def _url_problem(value: Any, *, needs_path: bool) -> str | None:
    if not isinstance(value, str) or not value:
        return "must be a URL"
    parts = urlsplit(value)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        return "must be an https:// URL"
    if parts.scheme == "http" and parts.hostname not in _LOCAL_HOSTS:
        return "must be an https:// URL (plain http only on this machine)"
    if parts.query or parts.fragment:
        return "must not carry a query or a fragment"
    if needs_path and parts.path.strip("/") == "":
        return "must include the API's path, e.g. https://www.googleapis.com/calendar/v3/"
    return None


def problems(settings: Mapping[str, Any], credentials: Mapping[str, Any]) -> list[tuple[str, str]]:
    """``(field, reason)`` for everything wrong with a Google connection's configuration;
    reasons never repeat a secret."""
    found: list[tuple[str, str]] = []
    auth = settings.get("auth", "oauth")
    if auth not in _AUTHS:
        found.append(("settings.auth", f"must be one of {', '.join(_AUTHS)}"))
    for name, needs_path in (("api_endpoint", True), ("token_uri", False)):
        if name in settings:
            reason = _url_problem(settings[name], needs_path=needs_path)
            if reason:
                found.append((f"settings.{name}", reason))
    if auth == "oauth":
        for name in ("client_id", "client_secret", "refresh_token"):
            value = credentials.get(name)
            if not isinstance(value, str) or not value.strip():
                found.append((f"credentials.{name}", "is required (a non-empty string)"))
    elif auth == "service_account":
        subject = settings.get("subject")
        if not isinstance(subject, str) or not _EMAIL.match(subject):
            found.append(
                ("settings.subject", "is required: the email address of the user to act as")
            )
        found.extend(_service_account_problems(credentials.get("service_account_info")))
    return found


def _service_account_problems(info: Any) -> list[tuple[str, str]]:
    field = "credentials.service_account_info"
    if not isinstance(info, Mapping):
        return [(field, "is required: the service account key file's JSON object")]
    if info.get("type", "service_account") != "service_account":
        return [(field, "is not a service account key (its type is not service_account)")]
    found: list[tuple[str, str]] = []
    if not isinstance(info.get("client_email"), str) or not _EMAIL.match(info["client_email"]):
        found.append((f"{field}.client_email", "is required (the service account's email)"))
    key = info.get("private_key")
    if not isinstance(key, str) or not key:
        found.append((f"{field}.private_key", "is required (a PEM private key)"))
    else:
        try:  # loads and signs: an EC key loads too, and fails only when it signs
            _SIGNER.from_service_account_info(
                {"private_key": key, "private_key_id": info.get("private_key_id")}
            ).sign(b"probe")
        except Exception:  # whatever the reason, the key cannot sign Google's assertions
            found.append((f"{field}.private_key", "is not a PEM-encoded RSA private key"))
    return found


def from_config(
    settings: Mapping[str, Any],
    credentials: Mapping[str, Any],
    *,
    timeout: float,
    retry: Retry,
) -> GoogleConnector:
    """The connector of one Google connection. A configuration :func:`problems` rejects is a
    dead credential here (:class:`CredentialError`): retrying cannot fix it."""
    found = problems(settings, credentials)
    if found:
        raise CredentialError("; ".join(f"{field} {reason}" for field, reason in found))
    api_endpoint = str(settings.get("api_endpoint", DEFAULT_API_ENDPOINT))
    if not api_endpoint.endswith("/"):
        api_endpoint += "/"  # the client joins method paths onto it
    token_uri = str(settings.get("token_uri", DEFAULT_TOKEN_URI))
    google_credentials = _credentials(settings, credentials, token_uri)
    return GoogleConnector(
        api_endpoint=api_endpoint,
        credentials=google_credentials,
        timeout=timeout,
        retry=retry,
    )


# Credentials (and the access tokens they hold) by connection, so that a connector made for
# every sync job does not fetch a new access token each time. Keyed by a hash of everything
# that makes up the credential, so a changed secret is a new entry; bounded.
_CREDENTIALS: OrderedDict[str, Any] = OrderedDict()
_CREDENTIALS_MAX = 4096
_credentials_lock = threading.Lock()


def forget_tokens() -> None:
    """Drop every cached credential and access token (tests; a key rotation)."""
    with _credentials_lock:
        _CREDENTIALS.clear()


def _credentials(
    settings: Mapping[str, Any], credentials: Mapping[str, Any], token_uri: str
) -> Any:
    auth = settings.get("auth", "oauth")
    subject = settings.get("subject") if auth == "service_account" else None
    fingerprint = hashlib.sha256(
        json.dumps([auth, token_uri, subject, dict(credentials)], sort_keys=True).encode()
    ).hexdigest()
    with _credentials_lock:
        cached = _CREDENTIALS.get(fingerprint)
        if cached is not None:
            _CREDENTIALS.move_to_end(fingerprint)
            return cached
    made: Any
    if auth == "service_account":
        info = dict(credentials["service_account_info"])
        info["token_uri"] = token_uri
        made = _SERVICE_ACCOUNT.from_service_account_info(
            info, scopes=list(SCOPES), subject=subject
        )
    else:
        # The scopes are those the user consented to; asking for them again on each refresh
        # could only fail (invalid_scope) when the consent was narrower.
        made = _USER_CREDENTIALS(
            token=None,
            refresh_token=credentials["refresh_token"],
            client_id=credentials["client_id"],
            client_secret=credentials["client_secret"],
            token_uri=token_uri,
        )
    with _credentials_lock:
        made = _CREDENTIALS.setdefault(fingerprint, made)
        while len(_CREDENTIALS) > _CREDENTIALS_MAX:
            _CREDENTIALS.popitem(last=False)
    return made


# --- the API resources, built once per endpoint ----------------------------------------------


class _NoChannel:
    """The HTTP channel the shared resources are built with: never used, each request is
    executed on its connector's own authorised channel."""

    credentials = None

    def request(self, *args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a shared Google API resource was executed without a channel")


_DOCUMENT: dict[str, Any] | None = None
_RESOURCES: dict[str, tuple[Any, Any, Any]] = {}
_resources_lock = threading.Lock()


def _resources(api_endpoint: str) -> tuple[Any, Any, Any]:
    """``(events, freebusy, channels)`` of Calendar v3 at ``api_endpoint``, from the discovery
    document bundled with the client (parsed once; building the nested resources costs about a
    millisecond each, so they are built once per endpoint and shared: building a request does
    not touch them)."""
    global _DOCUMENT
    with _resources_lock:
        found = _RESOURCES.get(api_endpoint)
        if found is None:
            if _DOCUMENT is None:
                _DOCUMENT = json.loads(discovery_cache.get_static_doc("calendar", "v3"))
            service = discovery.build_from_document(
                _DOCUMENT, http=_NoChannel(), client_options={"api_endpoint": api_endpoint}
            )
            found = (service.events(), service.freebusy(), service.channels())
            _RESOURCES[api_endpoint] = found
        return found


# --- event ids, times ------------------------------------------------------------------------


def _b32hex(data: bytes) -> str:
    return base64.b32hexencode(data).decode().rstrip("=").lower()


def event_id(call_id: str) -> str:
    """The Google event id of ``call_id``'s event, so that a retried insert names the same
    event: ``sbcall`` and the call id in base32hex (Google's alphabet for ids: a-v and 0-9, 5
    to 1024 characters), which maps back to the call (:func:`call_of`); a call id too long for
    that gives ``sbhash`` and its SHA-256 instead."""
    encoded = _b32hex(call_id.encode())
    if len(encoded) > 1000:
        return "sbhash" + _b32hex(hashlib.sha256(call_id.encode()).digest())
    return "sbcall" + encoded


def call_of(key: str) -> str | None:
    """The call id an :func:`event_id` was made from, when it can be read back; else None."""
    if not key.startswith("sbcall") or not _EVENT_ID.match(key):
        return None
    body = key[6:].upper()
    try:
        return base64.b32hexdecode(body + "=" * (-len(body) % 8)).decode()
    except (binascii.Error, ValueError):
        return None


def _rfc3339(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError("times must be timezone-aware")
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")  # keeps microseconds


def _zone(name: Any) -> ZoneInfo:
    if isinstance(name, str) and name:
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            pass
    return ZoneInfo("UTC")


def _moment(value: Any, zone: ZoneInfo) -> datetime:
    """An event's ``start``/``end`` object in UTC: ``dateTime`` as given; an all-day ``date``
    is that local day's midnight in the calendar's zone."""
    if not isinstance(value, Mapping):
        raise ValueError("no start/end")
    if isinstance(value.get("dateTime"), str):
        moment = datetime.fromisoformat(value["dateTime"])
        if moment.tzinfo is None:
            named = value.get("timeZone")
            moment = moment.replace(tzinfo=_zone(named) if named else zone)
        return moment.astimezone(UTC)
    if isinstance(value.get("date"), str):
        day = date.fromisoformat(value["date"])
        return datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)
    raise ValueError("neither dateTime nor date")


def _busy_event(calendar: str, item: Mapping[str, Any], zone: ZoneInfo) -> BusyEvent:
    """Only what may cross: the calendar, the span, transparency, the id and the own marker."""
    start = _moment(item.get("start"), zone)
    end = _moment(item.get("end"), zone)
    if end < start:
        raise ValueError("ends before it starts")
    transparency: Transparency = (
        "transparent" if item.get("transparency") == "transparent" else "opaque"
    )
    key = str(item["id"])
    own = None
    extended = item.get("extendedProperties")
    if isinstance(extended, Mapping) and isinstance(extended.get("private"), Mapping):
        marker = extended["private"].get(OWN_PROPERTY)
        own = marker if isinstance(marker, str) and marker else None
    # Without the marker (a grant that hides extended properties), the id still tells.
    return BusyEvent(calendar, start, end, transparency, key, own or call_of(key))


def _spans(start: datetime, end: datetime, most: timedelta) -> list[tuple[datetime, datetime]]:
    spans = []
    while start < end:
        stop = min(end, start + most)
        spans.append((start, stop))
        start = stop
    return spans


# --- errors ----------------------------------------------------------------------------------


def _google_reason(exc: HttpError) -> str | None:
    """Google's machine reason (``rateLimitExceeded``, ``fullSyncRequired``...), if it is one:
    never the message, which may quote the request."""
    try:
        payload = json.loads(exc.content)
        error = payload["error"]
        reason = error.get("errors", [{}])[0].get("reason") or error.get("status")
    except (ValueError, KeyError, IndexError, TypeError, AttributeError):
        return None
    return reason if isinstance(reason, str) and _SAFE_CODE.match(reason) else None


def _http_failure(what: str, exc: HttpError, *, cursor: bool) -> Exception:
    status = int(exc.resp.status)
    reason = _google_reason(exc)
    said = f"{what}: HTTP {status}" + (f" {reason}" if reason else "")
    if status == 401:
        return CredentialError(f"{said} after refreshing the access token")
    if status == 410 and cursor:
        return CursorExpired(f"{said}: the sync token is no longer valid")
    if status == 429 or status >= 500 or (status == 403 and reason in _RATE_REASONS):
        return RetryLater(said, retry_after_seconds(exc.resp.get("retry-after")))
    if status == 403:
        return CredentialError(
            f"{said}: the grant lacks a scope or access to the calendar "
            f"(needs {', '.join(s.rsplit('/', 1)[1] for s in SCOPES)})"
        )
    if status == 404:
        return ProviderError(f"{said}: no such calendar or event")
    return ProviderError(said)


def _refresh_failure(what: str, exc: auth_exceptions.RefreshError) -> Exception:
    code = None
    if len(exc.args) > 1 and isinstance(exc.args[1], Mapping):
        candidate = exc.args[1].get("error")
        code = candidate if isinstance(candidate, str) and _SAFE_CODE.match(candidate) else None
    if getattr(exc, "retryable", False):
        return RetryLater(f"{what}: the token endpoint failed ({code or 'temporarily'})")
    return CredentialError(f"{what}: the token endpoint refused the credential ({code or 'error'})")


# --- the connector ---------------------------------------------------------------------------


class GoogleConnector:
    """:class:`calendars.base.Connector` for Google Calendar (see the module's docstring)."""

    provider = "google"

    def __init__(
        self, *, api_endpoint: str, credentials: Any, timeout: float, retry: Retry
    ) -> None:
        self.retry = retry
        self.requests = 0  # HTTP calls to the API, retries included (token refreshes are not)
        self._events, self._freebusy, self._channels = _resources(api_endpoint)
        self._http = google_auth_httplib2.AuthorizedHttp(
            credentials, http=httplib2.Http(timeout=timeout)
        )

    def __repr__(self) -> str:  # never the credentials
        return f"GoogleConnector(requests={self.requests})"

    def close(self) -> None:
        """Close the connections this connector keeps open (also done when it is collected)."""
        http = getattr(self, "_http", None)
        if http is not None:
            http.close()

    def __enter__(self) -> GoogleConnector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        self.close()

    # --- the one way a request goes out
    def _call(
        self,
        what: str,
        build: Callable[[], Any],
        *,
        cursor: bool = False,
        tolerate: frozenset[int] = frozenset(),
    ) -> Any:
        """Run the request ``build()`` makes on this connector's channel, retried by
        :attr:`retry`; a status in ``tolerate`` answers None instead of failing."""

        def attempt() -> Any:
            self.requests += 1
            try:
                return build().execute(http=self._http, num_retries=0)
            except HttpError as exc:
                if int(exc.resp.status) in tolerate:
                    return None
                raise _http_failure(what, exc, cursor=cursor) from None
            except auth_exceptions.RefreshError as exc:
                raise _refresh_failure(what, exc) from None
            except auth_exceptions.TransportError:
                raise RetryLater(f"{what}: the token endpoint could not be reached") from None
            except auth_exceptions.GoogleAuthError as exc:  # the credential cannot be used
                raise CredentialError(f"{what}: {type(exc).__name__}") from None
            except (OSError, httplib2.HttpLib2Error) as exc:
                raise RetryLater(f"{what}: {type(exc).__name__}") from None
            except (ValueError, api_errors.Error) as exc:  # e.g. a 2xx whose body is not JSON
                raise ProviderError(f"{what}: a malformed answer ({type(exc).__name__})") from None

        return self.retry.run(what, attempt)

    # --- reading
    def busy(self, calendars: Sequence[str], start: datetime, end: datetime) -> list[BusyEvent]:
        wanted = list(dict.fromkeys(calendars))
        spans: dict[str, list[tuple[datetime, datetime]]] = {c: [] for c in wanted}
        for first in range(0, len(wanted), FREEBUSY_MAX_CALENDARS):
            chunk = wanted[first : first + FREEBUSY_MAX_CALENDARS]
            for lo, hi in _spans(start, end, FREEBUSY_MAX_SPAN):
                body = {
                    "timeMin": _rfc3339(lo),
                    "timeMax": _rfc3339(hi),
                    "timeZone": "UTC",
                    "items": [{"id": c} for c in chunk],
                }
                answer = self._call(
                    "freebusy.query",
                    functools.partial(self._freebusy.query, body=body, fields="calendars"),
                )
                found = answer.get("calendars", {}) if isinstance(answer, Mapping) else {}
                for calendar in chunk:
                    info = found.get(calendar)
                    if not isinstance(info, Mapping):
                        raise ProviderError(f"freebusy.query: no answer for calendar {calendar}")
                    if info.get("errors"):
                        reasons = {
                            str(e.get("reason"))
                            for e in info["errors"]
                            if isinstance(e, Mapping) and _SAFE_CODE.match(str(e.get("reason")))
                        }
                        raise ProviderError(
                            f"freebusy.query: calendar {calendar}: "
                            f"{', '.join(sorted(reasons)) or 'error'}"
                        )
                    try:
                        for period in info.get("busy", []):
                            a = _moment({"dateTime": period["start"]}, ZoneInfo("UTC"))
                            b = _moment({"dateTime": period["end"]}, ZoneInfo("UTC"))
                            if b > a:
                                spans[calendar].append((a, b))
                    except (KeyError, TypeError, ValueError):
                        raise ProviderError("freebusy.query: a malformed busy period") from None
        out: list[BusyEvent] = []
        for calendar in wanted:
            merged: list[list[datetime]] = []
            for a, b in sorted(spans[calendar]):
                if merged and a <= merged[-1][1]:
                    merged[-1][1] = max(merged[-1][1], b)
                else:
                    merged.append([a, b])
            out.extend(
                BusyEvent(calendar, a, b, "opaque", f"busy:{_rfc3339(a)}/{_rfc3339(b)}")
                for a, b in merged
            )
        return out

    def sync(self, calendar: str, cursor: str | None, start: datetime, end: datetime) -> Delta:
        upserts: dict[str, BusyEvent] = {}
        removed: set[str] = set()
        page_token: str | None = None
        before = self.requests
        while True:
            params: dict[str, Any] = {
                "calendarId": calendar,
                "singleEvents": True,
                "showDeleted": True,
                "maxResults": PAGE_SIZE,
                "fields": EVENT_FIELDS,
            }
            if cursor is not None:
                params["syncToken"] = cursor  # Google refuses timeMin/timeMax with it
            else:
                params["timeMin"] = _rfc3339(start)
                params["timeMax"] = _rfc3339(end)
            if page_token is not None:
                params["pageToken"] = page_token
            page = self._call(
                "events.list",
                functools.partial(self._events.list, **params),
                cursor=cursor is not None,
            )
            if not isinstance(page, Mapping):
                raise ProviderError("events.list: a malformed answer")
            zone = _zone(page.get("timeZone"))
            for item in page.get("items", []):
                if not isinstance(item, Mapping) or not isinstance(item.get("id"), str):
                    raise ProviderError("events.list: an event without an id")
                key = item["id"]
                if item.get("status") == "cancelled":
                    upserts.pop(key, None)
                    removed.add(key)
                    continue
                try:
                    event = _busy_event(calendar, item, zone)
                except (ValueError, TypeError, KeyError):
                    raise ProviderError("events.list: an event with malformed times") from None
                if event.end > start and event.start < end:
                    upserts[key] = event
                    removed.discard(key)
                else:  # moved out of the window: no longer busy time the mirror keeps
                    upserts.pop(key, None)
                    removed.add(key)
            page_token = page.get("nextPageToken")
            if not page_token:
                next_cursor = page.get("nextSyncToken")
                break
        if not isinstance(next_cursor, str) or not next_cursor:
            raise ProviderError("events.list: the last page carried no nextSyncToken")
        full = cursor is None
        return Delta(
            calendar,
            tuple(sorted(upserts.values(), key=lambda e: (e.start, e.key))),
            () if full else tuple(sorted(removed)),
            next_cursor,
            full=full,
            requests=self.requests - before,
        )

    # --- writing
    @staticmethod
    def _body(event: CallEvent) -> dict[str, Any]:
        """The neutral event: a title, the details only when given, no attendees (nobody is
        emailed), private visibility, the call id as a private extended property."""
        return {
            "summary": event.title,
            "description": event.body or "",
            "location": event.join_url or "",
            "start": {"dateTime": _rfc3339(event.start), "timeZone": "UTC"},
            "end": {"dateTime": _rfc3339(event.end), "timeZone": "UTC"},
            "transparency": "opaque",
            "visibility": "private",
            "status": "confirmed",
            "extendedProperties": {"private": {OWN_PROPERTY: event.call_id}},
        }

    def write_event(self, calendar: str, event: CallEvent) -> str:
        key = event_id(event.call_id)
        created = self._call(
            "events.insert",
            lambda: self._events.insert(
                calendarId=calendar,
                body={"id": key, **self._body(event)},
                sendUpdates="none",
                fields="id",
            ),
            tolerate=frozenset({409}),
        )
        if created is None:  # already there (a retried insert, or deleted before): update it
            self._patch(calendar, key, event)
        return key

    def _patch(self, calendar: str, key: str, event: CallEvent) -> bool:
        done = self._call(
            "events.patch",
            lambda: self._events.patch(
                calendarId=calendar,
                eventId=key,
                body=self._body(event),
                sendUpdates="none",
                fields="id",
            ),
            tolerate=frozenset({404, 410}),
        )
        return done is not None

    def update_event(self, calendar: str, key: str, event: CallEvent) -> str:
        if self._patch(calendar, key, event):
            return key
        return self.write_event(calendar, event)

    def delete_event(self, calendar: str, key: str) -> None:
        self._call(
            "events.delete",
            lambda: self._events.delete(calendarId=calendar, eventId=key, sendUpdates="none"),
            tolerate=frozenset({404, 410}),
        )

    # --- push
    def watch(self, calendar: str, address: str, token: str, ttl: timedelta) -> WatchChannel:
        seconds = max(1, int(ttl.total_seconds()))
        sent: list[str] = []

        def request() -> Any:
            # A new channel id per try: a retry after a lost answer must not reuse the id of
            # a channel Google may have opened (that one lapses after its ttl).
            sent.append(str(uuid.uuid4()))
            body = {
                "id": sent[-1],
                "type": "web_hook",
                "address": address,
                "token": token,
                "params": {"ttl": str(seconds)},
            }
            return self._events.watch(calendarId=calendar, body=body)

        answer = self._call("events.watch", request)
        expires = datetime.now(UTC) + timedelta(seconds=seconds)
        resource = None
        if isinstance(answer, Mapping):
            with contextlib.suppress(KeyError, TypeError, ValueError):
                expires = datetime.fromtimestamp(int(answer["expiration"]) / 1000, UTC)
            resource = answer.get("resourceId")
        return WatchChannel(
            calendar, sent[-1], resource if isinstance(resource, str) else None, expires
        )

    def unwatch(self, channel: WatchChannel) -> None:
        body: dict[str, str] = {"id": channel.channel_id}
        if channel.resource_id:
            body["resourceId"] = channel.resource_id
        self._call(
            "channels.stop",
            lambda: self._channels.stop(body=body),
            tolerate=frozenset({404}),
        )
