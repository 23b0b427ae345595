"""Microsoft 365: busy time from Exchange Online through msal and Microsoft Graph.

One connection is one mailbox (``settings.mailbox``, a user id or UPN) read by an app
registration (``settings.tenant``, ``settings.client_id``, ``credentials.client_secret``) with
*application* permissions and admin consent. ``Calendars.ReadBasic`` (events without bodies or
extended properties) covers getSchedule, calendarView and its delta; write-back needs
``Calendars.ReadWrite``. An admin should limit the app to the agents' mailboxes (an Exchange
application access policy, or RBAC for Applications): the permission is tenant-wide otherwise.
Optional settings: ``authority`` and ``graph_endpoint`` (national clouds, tests), ``ca_bundle``
(a CA bundle to trust instead of the system's), ``timezone`` (IANA; the zone whose days an
all-day event covers, default UTC).

- **Tokens**: msal's ``ConfidentialClientApplication`` with the client secret; the application
  object, its token cache and its HTTP session are shared by every connector of the same
  (authority, client id, secret) -- a sync of 500 mailboxes of one app registration fetches one
  token, not 500. msal reports failure as a dict with ``error``; a bad secret or an app that is
  not allowed (``invalid_client`` / ``unauthorized_client``) is a :class:`CredentialError`.
  A 401 from Graph drops the rejected token from the cache and tries once more with a new one;
  a second 401 is a :class:`CredentialError`.
- **busy()**: ``POST /users/{mailbox}/calendar/getSchedule`` with at most 20 schedules and less
  than 62 days per call (chunked). ``busy``/``oof``/``tentative`` items are busy time,
  ``free``/``workingElsewhere`` are not. The schedules are SMTP addresses; ``primary`` (or
  ``calendar``) names the connection's own mailbox. Any other name is a calendar id of the
  connection's mailbox, listed with ``calendarView`` (``$select``: no contents asked for).
- **sync()**: ``calendarView/delta`` over the window (plus :data:`WINDOW_SLACK`, because a delta
  round's window is fixed by its first request), following ``@odata.nextLink``; the cursor
  keeps the round's ``@odata.deltaLink`` and the end of its window. An incremental sync asked
  for a window reaching past the round's end, a delta link on another host, a 410 or a
  ``syncStateNotFound`` / ``resyncRequired`` error raise :class:`CursorExpired`.
- **Privacy**: Graph has no busy-only scope for delta, so every event is stripped *here*: only
  id, start, end, isAllDay, showAs, isCancelled and transactionId are read; subject, body,
  location, attendees and organiser are never copied out of the parsed answer, never logged,
  never put in an error's reason.
- **Own events**: the event the service writes carries ``transactionId`` =
  ``switchboard-<call id>`` (Graph dedupes creates by it, and returns it on later reads of the
  event, delta included). A single-value extended property would need ``$expand``, which
  delta does not support, so the transactionId is what marks an event as the service's own.
- **Push**: ``POST /subscriptions`` on ``/users/{mailbox}/calendars/{id}/events`` (the default
  calendar: ``/users/{mailbox}/events``) with ``clientState`` = the channel token, for at most
  7 days (Graph's limit for Outlook resources).

Nothing here logs. msal logs at DEBUG (its token-cache event, with the secret and tokens
masked as ``********``, the authority and the client id) and urllib3 logs each request line
(method, URL, status) at DEBUG -- URLs carry the mailbox and delta tokens, never event contents
or bearer tokens; keep those loggers above DEBUG in production.
"""

from __future__ import annotations

import functools
import hashlib
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msal
import requests

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
    Transparency,
    WatchChannel,
    retry_after_seconds,
)

__all__ = [
    "DEFAULT_AUTHORITY_HOST",
    "DEFAULT_GRAPH_ENDPOINT",
    "MAX_SCHEDULES",
    "MAX_SPAN",
    "WINDOW_SLACK",
    "MicrosoftConnector",
    "from_config",
    "problems",
    "reset_apps",
]

DEFAULT_AUTHORITY_HOST = "https://login.microsoftonline.com"
DEFAULT_GRAPH_ENDPOINT = "https://graph.microsoft.com/v1.0"

# getSchedule: at most 20 schedules per call, and a window of less than 62 days.
MAX_SCHEDULES = 20
MAX_SPAN = timedelta(days=61)
# A delta round covers the window of its first request, for good: a full listing reaches this
# far past the asked end, so that incremental rounds stay valid while the service's window
# slides forward; once the asked end passes the round's, the cursor expires (full resync).
WINDOW_SLACK = timedelta(days=7)
# Graph keeps a subscription on Outlook resources for at most 10,080 minutes.
MAX_SUBSCRIPTION = timedelta(minutes=10080) - timedelta(minutes=5)
PAGE_SIZE = 100
MAX_PAGES = 10_000

DEFAULT_CALENDARS = frozenset({"primary", "calendar"})
BUSY_STATUSES = frozenset({"busy", "oof", "tentative"})
FREE_SHOW_AS = frozenset({"free", "workingelsewhere"})
RESYNC_CODES = frozenset({"syncstatenotfound", "resyncrequired", "syncstateinvalid"})
DEAD_CREDENTIAL_ERRORS = frozenset(
    {"invalid_client", "unauthorized_client", "invalid_grant", "invalid_scope"}
)
DEAD_MAILBOX_CODES = frozenset(
    {"ErrorInvalidUser", "MailboxNotEnabledForRESTAPI", "ErrorNonExistentMailbox"}
)
TRANSIENT_TOKEN_ERRORS = frozenset({"temporarily_unavailable", "server_error", "slow_down"})
# Only these event fields are ever read from Graph's answers.
EVENT_FIELDS = "id,start,end,isAllDay,showAs,isCancelled,transactionId,type"
PREFER_UTC = 'outlook.timezone="UTC"'
# A re-created event (the old one was deleted by someone) gets a transactionId of its own,
# derived from the missing event's key so that a retried re-create is still deduplicated.
_RECREATED = re.compile(r"~r[0-9a-f]{12}$")

_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_DOMAIN = re.compile(
    r"^(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}$"
)
_MAILBOX = re.compile(r"^[^\s/\\?#@%]{1,64}@[A-Za-z0-9.-]{1,253}$")
_ERROR_CODE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_AADSTS = re.compile(r"AADSTS\d{4,8}")


# --- configuration


@dataclass(frozen=True, slots=True)
class Config:
    """A connection's settings, checked (:func:`problems`)."""

    tenant: str
    client_id: str
    mailbox: str
    authority: str
    graph_endpoint: str
    ca_bundle: str | None = None
    timezone: str = "UTC"

    @property
    def scope(self) -> str:
        """The ``.default`` scope of the Graph endpoint's host (national clouds differ)."""
        parts = urlsplit(self.graph_endpoint)
        return f"{parts.scheme}://{parts.netloc}/.default"


def _text(value: Any) -> str | None:
    return value.strip() if isinstance(value, str) and value.strip() else None


def _https_problem(value: Any, *, need_path: bool) -> str | None:
    if not isinstance(value, str) or not value.strip():
        return "must be a non-empty https URL"
    parts = urlsplit(value.strip())
    if parts.scheme != "https" or not parts.hostname:
        return "must be an https URL with a host"
    if parts.query or parts.fragment or parts.username or parts.password:
        return "must not carry a query, a fragment or user info"
    if need_path and not parts.path.strip("/"):
        return "must name the tenant in its path (https://login.microsoftonline.com/<tenant>)"
    return None


def problems(settings: Mapping[str, Any], credentials: Mapping[str, Any]) -> list[tuple[str, str]]:
    """``(field, reason)`` for each thing wrong with a Microsoft 365 connection; empty when it
    is usable. Reasons never repeat a secret's value."""
    found: list[tuple[str, str]] = []
    tenant = settings.get("tenant")
    if _text(tenant) is None:
        found.append(("settings.tenant", "required: the directory (tenant) id"))
    elif str(tenant).strip().lower() in {"common", "organizations", "consumers"}:
        found.append(("settings.tenant", "must name one directory, not common/organizations"))
    elif not (_GUID.match(str(tenant).strip()) or _DOMAIN.match(str(tenant).strip())):
        found.append(("settings.tenant", "must be a directory id (GUID) or a verified domain"))
    client_id = settings.get("client_id")
    if _text(client_id) is None:
        found.append(("settings.client_id", "required: the app registration's client id"))
    elif not _GUID.match(str(client_id).strip()):
        found.append(("settings.client_id", "must be a GUID (the application (client) id)"))
    mailbox = settings.get("mailbox")
    if _text(mailbox) is None:
        found.append(("settings.mailbox", "required: the agent's user id or UPN"))
    elif not (_GUID.match(str(mailbox).strip()) or _MAILBOX.match(str(mailbox).strip())):
        found.append(("settings.mailbox", "must be a user id (GUID) or a UPN like a@b.com"))
    if settings.get("authority") is not None:
        reason = _https_problem(settings["authority"], need_path=True)
        if reason:
            found.append(("settings.authority", reason))
    if settings.get("graph_endpoint") is not None:
        reason = _https_problem(settings["graph_endpoint"], need_path=False)
        if reason:
            found.append(("settings.graph_endpoint", reason))
    bundle = settings.get("ca_bundle")
    if bundle is not None:
        if _text(bundle) is None:
            found.append(("settings.ca_bundle", "must be the path of a CA bundle (PEM)"))
        elif not Path(str(bundle)).is_file():
            found.append(("settings.ca_bundle", "no such file"))
    zone = settings.get("timezone")
    if zone is not None:
        try:
            ZoneInfo(str(zone))
        except (ZoneInfoNotFoundError, ValueError):
            found.append(("settings.timezone", "must be an IANA time zone like Europe/Paris"))
    if _text(credentials.get("client_secret")) is None:
        found.append(("credentials.client_secret", "required: the app registration's secret"))
    return found


def _config(settings: Mapping[str, Any]) -> Config:
    tenant = str(settings["tenant"]).strip()
    authority = _text(settings.get("authority")) or f"{DEFAULT_AUTHORITY_HOST}/{tenant}"
    graph = _text(settings.get("graph_endpoint")) or DEFAULT_GRAPH_ENDPOINT
    return Config(
        tenant=tenant,
        client_id=str(settings["client_id"]).strip(),
        mailbox=str(settings["mailbox"]).strip(),
        authority=authority.rstrip("/"),
        graph_endpoint=graph.rstrip("/"),
        ca_bundle=_text(settings.get("ca_bundle")),
        timezone=_text(settings.get("timezone")) or "UTC",
    )


def from_config(
    settings: Mapping[str, Any],
    credentials: Mapping[str, Any],
    *,
    timeout: float,
    retry: Retry,
) -> MicrosoftConnector:
    """The connector of one connection. No I/O: the token is fetched on first use.
    Settings that :func:`problems` rejects make a :class:`CredentialError` (the connection
    cannot work until someone fixes it)."""
    wrong = problems(settings, credentials)
    if wrong:
        raise CredentialError("invalid configuration: " + "; ".join(f"{f}: {r}" for f, r in wrong))
    return MicrosoftConnector(
        _config(settings), str(credentials["client_secret"]).strip(), timeout=timeout, retry=retry
    )


# --- the shared msal application (one per app registration)


@dataclass
class _App:
    """An app registration's msal application, token cache and HTTP session."""

    session: Any  # requests.Session, with a default timeout
    lock: threading.Lock
    client: Any = None  # msal.ConfidentialClientApplication, built on first use


_APPS: OrderedDict[tuple[str, str, str, str | None, float], _App] = OrderedDict()
_APPS_LOCK = threading.Lock()
MAX_APPS = 64


def _session(ca_bundle: str | None, timeout: float) -> Any:
    session = requests.Session()
    # msal sends its discovery and token requests through this session without a timeout:
    # give every request one (an explicit ``timeout=`` still wins). The CA bundle goes on each
    # request too: requests lets REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE override a session's
    # ``verify``, never a request's.
    verify: str | bool = ca_bundle if ca_bundle else True
    session.verify = verify
    setattr(session, "request", functools.partial(session.request, timeout=timeout, verify=verify))  # noqa: B010
    return session


def _shared_app(config: Config, secret: str, timeout: float) -> _App:
    digest = hashlib.sha256(secret.encode()).hexdigest()
    key = (config.authority.lower(), config.client_id.lower(), digest, config.ca_bundle, timeout)
    with _APPS_LOCK:
        app = _APPS.get(key)
        if app is not None:
            _APPS.move_to_end(key)
            return app
        app = _App(session=_session(config.ca_bundle, timeout), lock=threading.Lock())
        _APPS[key] = app
        while len(_APPS) > MAX_APPS:
            _, old = _APPS.popitem(last=False)
            old.session.close()
        return app


def reset_apps() -> None:
    """Forget every shared application and close its session (tests; a key rotation)."""
    with _APPS_LOCK:
        for app in _APPS.values():
            app.session.close()
        _APPS.clear()


# --- helpers


def _iso(moment: datetime) -> str:
    """A UTC instant as Graph's dateTime (no offset; the time zone is said beside it)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")


def _iso_z(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _aware(moment: datetime, name: str) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware")
    return moment.astimezone(UTC)


def _graph_time(value: Any, what: str) -> datetime:
    """Graph's ``{"dateTime": ..., "timeZone": ...}`` as an aware UTC datetime."""
    if not isinstance(value, Mapping) or not isinstance(value.get("dateTime"), str):
        raise ProviderError(f"{what}: a malformed time in the answer")
    raw = value["dateTime"]
    zone_name = value.get("timeZone") or "UTC"
    match = re.match(
        r"^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2})?)(\.\d+)?(Z|[+-]\d{2}:\d{2})?$", raw
    )
    if not match:
        raise ProviderError(f"{what}: a malformed time in the answer")
    # Graph writes seven fractional digits: keep microseconds.
    text = match.group(1) + (match.group(2) or "")[:7] + (match.group(3) or "")
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ProviderError(f"{what}: a malformed time in the answer") from None
    if moment.tzinfo is None:
        if zone_name in {"UTC", "Etc/UTC", "Coordinated Universal Time"}:
            moment = moment.replace(tzinfo=UTC)
        else:
            try:
                moment = moment.replace(tzinfo=ZoneInfo(zone_name))
            except (ZoneInfoNotFoundError, ValueError):
                raise ProviderError(f"{what}: an unexpected time zone in the answer") from None
    return moment.astimezone(UTC)


def _span_key(start: datetime, end: datetime) -> str:
    return f"fb:{start:%Y%m%dT%H%M%SZ}-{end:%Y%m%dT%H%M%SZ}"


def _error_code(response: Any) -> str:
    """Graph's error code (``ErrorItemNotFound``...), if it looks like one: never a message."""
    try:
        body = response.json()
    except ValueError:
        return ""
    if isinstance(body, Mapping):
        error = body.get("error")
        code = error.get("code") if isinstance(error, Mapping) else None
        if isinstance(code, str) and _ERROR_CODE.match(code):
            return code
    return ""


def _windows(start: datetime, end: datetime, span: timedelta) -> list[tuple[datetime, datetime]]:
    out = []
    cursor = start
    while cursor < end:
        out.append((cursor, min(end, cursor + span)))
        cursor += span
    return out


def own_call(transaction_id: Any) -> str | None:
    """The call id an event's transactionId marks it with, or None (not the service's)."""
    if not isinstance(transaction_id, str) or not transaction_id.startswith(OWN_EVENT_PREFIX):
        return None
    call = _RECREATED.sub("", transaction_id[len(OWN_EVENT_PREFIX) :])
    return call or None


# --- the connector


class MicrosoftConnector:
    """Microsoft 365 mailbox calendars through Microsoft Graph (:mod:`calendars.microsoft`)."""

    provider = "microsoft"

    def __init__(self, config: Config, secret: str, *, timeout: float, retry: Retry) -> None:
        self.config = config
        self._secret = secret
        self.timeout = timeout
        self.retry = retry
        self._app = _shared_app(config, secret, timeout)
        self._zone = ZoneInfo(config.timezone)
        self._origin = urlsplit(config.graph_endpoint)
        self._mailbox = quote(config.mailbox, safe="@")
        self.requests = 0  # Graph requests this connector made (tokens not counted)

    def __repr__(self) -> str:
        return f"MicrosoftConnector(mailbox={self.config.mailbox!r})"

    # --- tokens

    def _client(self) -> Any:
        # Called with the app's lock held.
        if self._app.client is None:
            try:
                self._app.client = msal.ConfidentialClientApplication(
                    self.config.client_id,
                    client_credential=self._secret,
                    authority=self.config.authority,
                    http_client=self._app.session,
                    instance_discovery=False,
                    token_cache=msal.TokenCache(),
                )
            except ValueError:
                raise CredentialError(
                    "the authority's OpenID configuration cannot be read (is the tenant right?)"
                ) from None
            except (requests.RequestException, msal.exceptions.MsalServiceError) as exc:
                raise RetryLater(f"authority discovery failed: {type(exc).__name__}") from None
        return self._app.client

    def _token(self) -> str:
        with self._app.lock:
            client = self._client()
            try:
                result = client.acquire_token_for_client(scopes=[self.config.scope])
            except (requests.RequestException, msal.exceptions.MsalServiceError) as exc:
                raise RetryLater(f"token request failed: {type(exc).__name__}") from None
            except ValueError:  # msal found no JSON in the answer (a proxy's error page...)
                raise RetryLater("token request: a malformed answer") from None
        if not isinstance(result, Mapping):
            raise ProviderError("token request: no answer from the authority")
        token = result.get("access_token")
        if isinstance(token, str) and token:
            return token
        error = str(result.get("error") or "unknown_error")
        codes = _AADSTS.findall(str(result.get("error_description") or ""))
        reason = f"token request: {error}" + (f" ({codes[0]})" if codes else "")
        if error in DEAD_CREDENTIAL_ERRORS:
            raise CredentialError(reason)
        if error in TRANSIENT_TOKEN_ERRORS:
            raise RetryLater(reason)
        raise ProviderError(reason)

    def _forget(self, token: str) -> None:
        """Drop a token Graph rejected, so the next :meth:`_token` asks for a new one."""
        with self._app.lock:
            client = self._app.client
            if client is None:
                return
            cache = client.token_cache
            kind = cache.CredentialType.ACCESS_TOKEN
            for entry in list(cache.search(kind, query={"secret": token})):
                cache.remove_at(entry)

    # --- HTTP

    def _url(self, path: str) -> str:
        return self.config.graph_endpoint + path

    def _same_origin(self, url: str) -> bool:
        """Whether a link Graph handed out points into the configured endpoint (the bearer
        token is never sent anywhere else)."""
        try:
            parts = urlsplit(url)
            port, ours = parts.port or 443, self._origin.port or 443
        except ValueError:
            return False
        return (
            parts.scheme == self._origin.scheme == "https"
            and (parts.hostname or "").lower() == (self._origin.hostname or "").lower()
            and port == ours
            and not parts.username
            and parts.path.lower().startswith(self._origin.path.lower())
        )

    def _send(
        self, method: str, url: str, token: str, what: str, headers: Mapping[str, str], **kw: Any
    ) -> Any:
        self.requests += 1
        try:
            return self._app.session.request(
                method,
                url,
                headers={"Authorization": f"Bearer {token}", **headers},
                timeout=self.timeout,
                allow_redirects=False,
                **kw,
            )
        except (requests.Timeout, requests.ConnectionError) as exc:
            raise RetryLater(f"{what}: {type(exc).__name__}") from None
        except requests.RequestException as exc:
            raise ProviderError(f"{what}: {type(exc).__name__}") from None

    def _request(
        self,
        method: str,
        url: str,
        what: str,
        *,
        prefer: str = PREFER_UTC,
        check: Callable[[Any], None] | None = None,
        **kw: Any,
    ) -> Any:
        """One Graph request under the retry policy: a 401 refreshes the token once, 429 / 503
        / 504 (and 502, connection failures) are retried with their ``Retry-After``. Returns
        the response whatever its status otherwise; ``check`` may raise on it inside the
        retried operation."""
        headers = {"Prefer": prefer, "Accept": "application/json"}

        def attempt() -> Any:
            token = self._token()
            response = self._send(method, url, token, what, headers, **kw)
            if response.status_code == 401:
                response.close()
                self._forget(token)
                response = self._send(method, url, self._token(), what, headers, **kw)
                if response.status_code == 401:
                    response.close()
                    raise CredentialError(f"{what}: 401 from Microsoft Graph after a new token")
            if response.status_code in (429, 502, 503, 504):
                after = retry_after_seconds(response.headers.get("Retry-After"))
                response.close()
                raise RetryLater(f"{what}: HTTP {response.status_code}", after)
            if check is not None:
                check(response)
            return response

        return self.retry.run(what, attempt)

    def _fail(self, response: Any, what: str) -> CalendarError:
        code = _error_code(response)
        reason = f"{what}: HTTP {response.status_code}" + (f" {code}" if code else "")
        if response.status_code == 403 or code in DEAD_MAILBOX_CODES:
            # The app is not allowed into this mailbox (missing permission or an access
            # policy), or there is no such mailbox: retrying will not help until an admin
            # fixes the connection.
            return CredentialError(reason)
        return ProviderError(reason)

    def _json(self, response: Any, what: str) -> dict[str, Any]:
        try:
            body = response.json()
        except ValueError:
            raise ProviderError(f"{what}: a malformed answer (not JSON)") from None
        if not isinstance(body, dict):
            raise ProviderError(f"{what}: a malformed answer")
        return body

    # --- paths

    def _calendar_path(self, calendar: str) -> str:
        if calendar in DEFAULT_CALENDARS:
            return f"/users/{self._mailbox}/calendar"
        return f"/users/{self._mailbox}/calendars/{quote(calendar, safe='')}"

    def _view_path(self, calendar: str) -> str:
        if calendar in DEFAULT_CALENDARS:
            return f"/users/{self._mailbox}/calendarView/delta"
        return f"/users/{self._mailbox}/calendars/{quote(calendar, safe='')}/calendarView/delta"

    def _event_path(self, key: str) -> str:
        return f"/users/{self._mailbox}/events/{quote(key, safe='')}"

    # --- busy

    def busy(self, calendars: Sequence[str], start: datetime, end: datetime) -> list[BusyEvent]:
        """Busy spans over ``[start, end)``. A calendar that is a mailbox (an SMTP address,
        or ``primary`` for the connection's own) is read with getSchedule; any other is a
        calendar id of the connection's mailbox, read with calendarView (ids as keys)."""
        start, end = _aware(start, "start"), _aware(end, "end")
        if end <= start or not calendars:
            return []
        mailboxes = [c for c in calendars if c in DEFAULT_CALENDARS or "@" in c]
        found = self._schedules(mailboxes, start, end) if mailboxes else []
        for calendar in dict.fromkeys(c for c in calendars if c not in mailboxes):
            found.extend(self._listed(calendar, start, end))
        return sorted(found, key=lambda b: (b.calendar, b.start, b.end, b.key))

    def _listed(self, calendar: str, start: datetime, end: datetime) -> list[BusyEvent]:
        what = "calendarView"
        url = self._url(self._calendar_path(calendar) + "/calendarView")
        params: dict[str, str] | None = {
            "startDateTime": _iso_z(start),
            "endDateTime": _iso_z(end),
            "$select": EVENT_FIELDS,
            "$top": str(PAGE_SIZE),
        }
        found: dict[str, BusyEvent] = {}
        for _ in range(MAX_PAGES):
            response = self._request("GET", url, what, params=params)
            if response.status_code != 200:
                raise self._fail(response, what)
            page = self._json(response, what)
            items = page.get("value")
            if not isinstance(items, list):
                raise ProviderError(f"{what}: a malformed answer")
            for item in items:
                if not isinstance(item, Mapping) or not isinstance(item.get("id"), str):
                    raise ProviderError(f"{what}: an item without an id")
                if item.get("isCancelled") or item.get("type") == "seriesMaster":
                    continue
                event = self._event(calendar, item, what)
                if event is not None and event.busy and event.end > start and event.start < end:
                    found[event.key] = event
            next_link = page.get("@odata.nextLink")
            if not isinstance(next_link, str):
                return list(found.values())
            if not self._same_origin(next_link):
                raise ProviderError(f"{what}: a next link outside the Graph endpoint")
            url, params = next_link, None
        raise ProviderError(f"{what}: more than {MAX_PAGES} pages")

    def _schedules(
        self, calendars: Sequence[str], start: datetime, end: datetime
    ) -> list[BusyEvent]:
        # schedule (lower-cased) -> the names the caller gave for it
        names: dict[str, list[str]] = {}
        schedules: list[str] = []
        for calendar in calendars:
            schedule = self.config.mailbox if calendar in DEFAULT_CALENDARS else calendar
            if schedule.lower() not in names:
                names[schedule.lower()] = []
                schedules.append(schedule)
            if calendar not in names[schedule.lower()]:
                names[schedule.lower()].append(calendar)
        found: dict[tuple[str, str], BusyEvent] = {}
        url = self._url(f"/users/{self._mailbox}/calendar/getSchedule")
        for first in range(0, len(schedules), MAX_SCHEDULES):
            group = schedules[first : first + MAX_SCHEDULES]
            for lo, hi in _windows(start, end, MAX_SPAN):
                body = {
                    "schedules": group,
                    "startTime": {"dateTime": _iso(lo), "timeZone": "UTC"},
                    "endTime": {"dateTime": _iso(hi), "timeZone": "UTC"},
                    "availabilityViewInterval": 60,
                }
                response = self._request("POST", url, "getSchedule", json=body)
                if response.status_code != 200:
                    raise self._fail(response, "getSchedule")
                answer = self._json(response, "getSchedule").get("value")
                if not isinstance(answer, list):
                    raise ProviderError("getSchedule: a malformed answer")
                seen: set[str] = set()
                for info in answer:
                    if not isinstance(info, Mapping) or not isinstance(info.get("scheduleId"), str):
                        raise ProviderError("getSchedule: a malformed answer")
                    schedule = info["scheduleId"].lower()
                    if schedule not in names:
                        continue
                    error = info.get("error")
                    if error:
                        code = error.get("responseCode") if isinstance(error, Mapping) else None
                        code = code if isinstance(code, str) and _ERROR_CODE.match(code) else ""
                        raise ProviderError(
                            f"getSchedule: no free/busy for {info['scheduleId']} {code}".strip()
                        )
                    seen.add(schedule)
                    for item in info.get("scheduleItems") or ():
                        if not isinstance(item, Mapping):
                            raise ProviderError("getSchedule: a malformed answer")
                        if str(item.get("status", "")).lower() not in BUSY_STATUSES:
                            continue
                        s = _graph_time(item.get("start"), "getSchedule")
                        e = _graph_time(item.get("end"), "getSchedule")
                        if e <= s or e <= start or s >= end:
                            continue
                        key = _span_key(s, e)
                        for name in names[schedule]:
                            found.setdefault((name, key), BusyEvent(name, s, e, "opaque", key))
                missing = {g.lower() for g in group} - seen
                if missing:
                    # Never read an unanswered schedule as free.
                    raise ProviderError(f"getSchedule: {len(missing)} schedule(s) not answered")
        return list(found.values())

    # --- sync

    def _event(self, calendar: str, item: Mapping[str, Any], what: str) -> BusyEvent | None:
        """A delta item as busy time, its contents dropped; None when it spans nothing."""
        key = item["id"]
        start = _graph_time(item.get("start"), what)
        end = _graph_time(item.get("end"), what)
        if item.get("isAllDay") is True:
            # An all-day event covers whole days of the mailbox's zone (settings.timezone).
            start = datetime.combine(start.date(), time(), self._zone).astimezone(UTC)
            end = datetime.combine(end.date(), time(), self._zone).astimezone(UTC)
        if end <= start:
            return None
        show_as = str(item.get("showAs") or "busy").lower()
        transparency: Transparency = "transparent" if show_as in FREE_SHOW_AS else "opaque"
        return BusyEvent(
            calendar, start, end, transparency, key, own_call(item.get("transactionId"))
        )

    def _complete(self, item: Mapping[str, Any], what: str) -> Mapping[str, Any]:
        """A delta item that carries only what changed: read the few fields we need."""
        url = self._url(self._event_path(item["id"]))
        response = self._request("GET", url, what, params={"$select": EVENT_FIELDS})
        if response.status_code == 404:
            return {"id": item["id"], "@removed": {"reason": "deleted"}}
        if response.status_code != 200:
            raise self._fail(response, what)
        body = self._json(response, what)
        return {k: body.get(k) for k in EVENT_FIELDS.split(",")} | {"id": item["id"]}

    def sync(self, calendar: str, cursor: str | None, start: datetime, end: datetime) -> Delta:
        start, end = _aware(start, "start"), _aware(end, "end")
        what = "calendarView/delta"
        before = self.requests
        params: dict[str, str] | None
        if cursor is None:
            window_end = end + WINDOW_SLACK
            url = self._url(self._view_path(calendar))
            params = {"startDateTime": _iso_z(start), "endDateTime": _iso_z(window_end)}
        else:
            window_end, url = self._parse_cursor(cursor)
            if end > window_end:
                raise CursorExpired("the delta round's window ends before the asked window")
            params = None

        def check(response: Any) -> None:
            if response.status_code < 400:
                return
            if response.status_code == 410 or _error_code(response).lower() in RESYNC_CODES:
                response.close()
                raise CursorExpired(f"{what}: the delta link is no longer valid")

        upserts: dict[str, BusyEvent] = {}
        removed: dict[str, None] = {}
        for _ in range(MAX_PAGES):
            response = self._request(
                "GET",
                url,
                what,
                params=params,
                prefer=f"{PREFER_UTC}, odata.maxpagesize={PAGE_SIZE}",
                check=check,
            )
            if response.status_code != 200:
                raise self._fail(response, what)
            page = self._json(response, what)
            items = page.get("value")
            if not isinstance(items, list):
                raise ProviderError(f"{what}: a malformed answer")
            for item in items:
                self._take(calendar, item, upserts, removed, what)
            next_link = page.get("@odata.nextLink")
            delta_link = page.get("@odata.deltaLink")
            if isinstance(next_link, str):
                if not self._same_origin(next_link):
                    raise ProviderError(f"{what}: a next link outside the Graph endpoint")
                url, params = next_link, None
                continue
            if isinstance(delta_link, str):
                if not self._same_origin(delta_link):
                    raise ProviderError(f"{what}: a delta link outside the Graph endpoint")
                return Delta(
                    calendar,
                    upserts=tuple(upserts.values()),
                    removed=() if cursor is None else tuple(removed),
                    cursor=f"{_iso_z(window_end)}|{delta_link}",
                    full=cursor is None,
                    requests=self.requests - before,
                )
            raise ProviderError(f"{what}: an answer with neither a next nor a delta link")
        raise ProviderError(f"{what}: more than {MAX_PAGES} pages")

    def _take(
        self,
        calendar: str,
        item: Any,
        upserts: dict[str, BusyEvent],
        removed: dict[str, None],
        what: str,
    ) -> None:
        if not isinstance(item, Mapping) or not isinstance(item.get("id"), str) or not item["id"]:
            raise ProviderError(f"{what}: an item without an id")
        key = item["id"]
        if item.get("type") == "seriesMaster":
            return  # a calendar view lists the occurrences, never the master
        gone = "@removed" in item or bool(item.get("isCancelled"))
        if not gone and not (
            isinstance(item.get("start"), Mapping) and isinstance(item.get("end"), Mapping)
        ):
            item = self._complete(item, what)
        event = (
            None
            if "@removed" in item or item.get("isCancelled")
            else self._event(calendar, item, what)
        )
        upserts.pop(key, None)
        removed.pop(key, None)
        if event is None:
            removed[key] = None
        else:
            upserts[key] = event

    def _parse_cursor(self, cursor: str) -> tuple[datetime, str]:
        stamp, sep, link = cursor.partition("|")
        try:
            window_end = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
        except ValueError:
            window_end = None
        if not sep or window_end is None or window_end.tzinfo is None or not link:
            raise CursorExpired("the cursor is not a Microsoft delta cursor")
        if not self._same_origin(link):
            raise CursorExpired("the delta link belongs to another Graph endpoint")
        return window_end, link

    # --- write-back

    def _event_body(self, event: CallEvent) -> dict[str, Any]:
        text = event.body or ""
        if event.join_url:
            text = f"{text}\n\n{event.join_url}" if text else event.join_url
        return {
            "subject": event.title,
            "body": {"contentType": "text", "content": text},
            "start": {"dateTime": _iso(_aware(event.start, "start")), "timeZone": "UTC"},
            "end": {"dateTime": _iso(_aware(event.end, "end")), "timeZone": "UTC"},
            "showAs": "busy",
            "isReminderOn": False,
            "responseRequested": False,
            "allowNewTimeProposals": False,
        }

    def _create(self, calendar: str, event: CallEvent, transaction_id: str) -> str:
        what = "create event"
        url = self._url(self._calendar_path(calendar) + "/events")
        body = self._event_body(event) | {"transactionId": transaction_id, "attendees": []}
        response = self._request("POST", url, what, json=body)
        if response.status_code not in (200, 201):
            raise self._fail(response, what)
        created = self._json(response, what)
        key = created.get("id")
        if not isinstance(key, str) or not key:
            raise ProviderError(f"{what}: an answer without an id")
        # Graph answers a repeated transactionId with the event it made the first time: an
        # earlier try of this call's write. Bring it to what is asked now.
        try:
            same = _graph_time(created.get("start"), what) == _aware(
                event.start, "start"
            ) and _graph_time(created.get("end"), what) == _aware(event.end, "end")
        except ProviderError:
            same = False
        if not same or created.get("subject") != event.title:
            self._patch(key, event)
        return key

    def _patch(self, key: str, event: CallEvent) -> bool:
        """PATCH the event; False when it is gone."""
        what = "update event"
        response = self._request(
            "PATCH", self._url(self._event_path(key)), what, json=self._event_body(event)
        )
        if response.status_code == 404:
            return False
        if response.status_code not in (200, 204):
            raise self._fail(response, what)
        return True

    def write_event(self, calendar: str, event: CallEvent) -> str:
        return self._create(calendar, event, OWN_EVENT_PREFIX + event.call_id)

    def update_event(self, calendar: str, key: str, event: CallEvent) -> str:
        if self._patch(key, event):
            return key
        # Someone deleted it: a new event, with a transactionId of its own (Graph would hand
        # back the deleted one for the first) derived from the missing key.
        suffix = hashlib.sha256(key.encode()).hexdigest()[:12]
        return self._create(calendar, event, f"{OWN_EVENT_PREFIX}{event.call_id}~r{suffix}")

    def delete_event(self, calendar: str, key: str) -> None:
        what = "delete event"
        response = self._request("DELETE", self._url(self._event_path(key)), what)
        if response.status_code not in (200, 204, 404):
            raise self._fail(response, what)

    # --- push

    def watch(self, calendar: str, address: str, token: str, ttl: timedelta) -> WatchChannel:
        what = "create subscription"
        if not token or len(token) > 128:
            raise ValueError("a Graph clientState is 1 to 128 characters")
        expires = datetime.now(UTC) + min(ttl, MAX_SUBSCRIPTION)
        # Graph documents event subscriptions on /users/{id}/events (the whole mailbox) and
        # /users/{id}/calendars/{id}/events; the default calendar takes the former (a change
        # to another calendar of the mailbox only costs an incremental sync).
        resource = (
            f"/users/{self._mailbox}/events"
            if calendar in DEFAULT_CALENDARS
            else self._calendar_path(calendar) + "/events"
        )
        body = {
            "changeType": "created,updated,deleted",
            "notificationUrl": address,
            "resource": resource,
            "expirationDateTime": expires.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
            "clientState": token,
        }
        response = self._request("POST", self._url("/subscriptions"), what, json=body)
        if response.status_code not in (200, 201):
            raise self._fail(response, what)
        answer = self._json(response, what)
        channel_id = answer.get("id")
        if not isinstance(channel_id, str) or not channel_id:
            raise ProviderError(f"{what}: an answer without an id")
        stamp = answer.get("expirationDateTime")
        try:
            expires_at = datetime.fromisoformat(str(stamp).replace("Z", "+00:00"))
        except ValueError:
            expires_at = expires
        if expires_at.tzinfo is None:
            expires_at = expires_at.replace(tzinfo=UTC)
        return WatchChannel(calendar, channel_id, None, expires_at.astimezone(UTC))

    def unwatch(self, channel: WatchChannel) -> None:
        what = "delete subscription"
        url = self._url(f"/subscriptions/{quote(channel.channel_id, safe='')}")
        response = self._request("DELETE", url, what)
        if response.status_code not in (200, 204, 404):
            raise self._fail(response, what)
