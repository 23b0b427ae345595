"""The one interface every calendar provider speaks, and the few types that cross it.

A connector turns a provider's calendars into *busy time* and nothing else: a :class:`BusyEvent`
carries the calendar, when, whether it blocks time (``transparency``) and the provider's key for
it -- titles, descriptions, attendees, locations and organisers are dropped inside the connector,
before anything else sees them. The service stores even less (agent, start, end, source).

Connectors are pure adapters: no database, no web framework. They take their endpoints from
configuration (national clouds and tests need it), use explicit timeouts, honour ``Retry-After``,
back off exponentially with jitter (:class:`Retry`) and never log tokens or event contents.

Errors a caller must tell apart:

- :class:`CredentialError` -- the credential is dead (``invalid_grant``, 401 after a refresh,
  a bad client secret): retrying will not help; the service fails closed and says so.
- :class:`CursorExpired` -- the incremental cursor is no longer valid (Google's 410 Gone, an
  expired Graph delta link): drop that calendar's mirror and sync it fully.
- :class:`ProviderError` -- anything else after retries (5xx, throttling that outlasted the
  budget, a malformed answer): try again later; the mirror keeps what it had.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Literal, Protocol, TypeVar

__all__ = [
    "OWN_EVENT_PREFIX",
    "BusyEvent",
    "CalendarError",
    "CallEvent",
    "Connector",
    "CredentialError",
    "CursorExpired",
    "Delta",
    "ProviderError",
    "Retry",
    "RetryLater",
    "Transparency",
    "Unsupported",
    "WatchChannel",
    "retry_after_seconds",
]

Transparency = Literal["opaque", "transparent"]

# The marker a connector recognises on an event the service itself wrote (Google: a private
# extended property; Microsoft Graph: the transactionId / a single-value extended property;
# ICS: the UID's prefix): such events are the service's own calls, never new busy time.
OWN_EVENT_PREFIX = "switchboard-"


@dataclass(frozen=True, slots=True)
class BusyEvent:
    """One span of time on one calendar, contents stripped.

    ``key`` is the provider's stable identity for this span (an event id; for a recurring
    series, the instance's id), unique within ``calendar``: the service merges deltas by it.
    ``own`` is the call id when the event is one the service wrote itself (write-back), else
    None. ``start``/``end`` are timezone-aware UTC; all-day events span whole local days.
    """

    calendar: str
    start: datetime
    end: datetime
    transparency: Transparency
    key: str
    own: str | None = None

    @property
    def busy(self) -> bool:
        return self.transparency == "opaque"


@dataclass(frozen=True, slots=True)
class Delta:
    """What changed on one calendar since a cursor.

    ``upserts`` are events added or changed (replace any earlier event with the same key),
    ``removed`` the keys of events deleted or cancelled. ``cursor`` is where the next
    incremental sync starts. ``full`` is True when this is a complete listing of the window (a
    first sync, or the provider reset the cursor): everything of this calendar not in
    ``upserts`` is gone.
    """

    calendar: str
    upserts: tuple[BusyEvent, ...] = ()
    removed: tuple[str, ...] = ()
    cursor: str | None = None
    full: bool = False
    requests: int = 0


@dataclass(frozen=True, slots=True)
class CallEvent:
    """The neutral event the service writes into a bound agent's calendar for a call.

    ``call_id`` makes the write idempotent (Google: the event id is derived from it; Graph: the
    ``transactionId``); ``title`` names the ticket, ``body`` carries the customer's details only
    when the tenant allows it.
    """

    call_id: str
    start: datetime
    end: datetime
    title: str
    body: str | None = None
    join_url: str | None = None


@dataclass(frozen=True, slots=True)
class WatchChannel:
    """A push subscription a provider holds for one calendar (Google channel, Graph
    subscription): the service renews it before ``expires_at``."""

    calendar: str
    channel_id: str
    resource_id: str | None
    expires_at: datetime


class Connector(Protocol):
    """What every provider offers. All times timezone-aware UTC."""

    provider: str

    def busy(self, calendars: Sequence[str], start: datetime, end: datetime) -> list[BusyEvent]:
        """Busy spans of ``calendars`` over ``[start, end)``, chunked as the provider needs.
        Free/busy answers may carry no event key; the connector then makes one from the span."""
        ...

    def sync(self, calendar: str, cursor: str | None, start: datetime, end: datetime) -> Delta:
        """Changes of ``calendar`` since ``cursor`` (None: a full listing of ``[start, end)``).
        Raises :class:`CursorExpired` when the cursor is no longer valid."""
        ...

    def write_event(self, calendar: str, event: CallEvent) -> str:
        """Create (or, when it already exists, update) the call's event; return its key.
        Read-only providers (ICS) raise :class:`Unsupported`."""
        ...

    def update_event(self, calendar: str, key: str, event: CallEvent) -> str:
        """Move or retitle the call's event; return its key (a missing event is re-created)."""
        ...

    def delete_event(self, calendar: str, key: str) -> None:
        """Delete the call's event; an event already gone is not an error."""
        ...

    def watch(self, calendar: str, address: str, token: str, ttl: timedelta) -> WatchChannel:
        """Ask the provider to notify ``address`` of changes to ``calendar``, proving itself
        with ``token``. Providers without push raise :class:`Unsupported`."""
        ...

    def unwatch(self, channel: WatchChannel) -> None:
        """Stop a push subscription (gone already: not an error)."""
        ...


class CalendarError(Exception):
    """A connector's failure. ``reason`` is safe to store and show: it never holds a token,
    a secret or event contents."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class CredentialError(CalendarError):
    """The credential is dead: retrying will not help until someone fixes the connection."""


class CursorExpired(CalendarError):
    """The incremental cursor is no longer valid: sync the calendar fully."""


class ProviderError(CalendarError):
    """The provider failed after the retries the budget allowed; try again later."""


class Unsupported(CalendarError):
    """The provider cannot do this at all (an ICS feed is read-only and has no push)."""


class RetryLater(CalendarError):
    """Raised *inside* a retried operation: a 429 / 503 / transient failure, with the
    provider's ``Retry-After`` in seconds when it sent one."""

    def __init__(self, reason: str, after: float | None = None) -> None:
        super().__init__(reason)
        self.after = after


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """A ``Retry-After`` header (seconds, or an HTTP date) in seconds; None if absent/bad."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


T = TypeVar("T")


@dataclass(frozen=True)
class Retry:
    """Exponential backoff with full jitter, honouring the provider's ``Retry-After``.

    ``attempts`` bounds the tries; a wait never exceeds ``max_wait`` seconds (a ``Retry-After``
    longer than that gives up at once with :class:`ProviderError`, so a throttled provider never
    holds a worker). ``sleep`` and ``rand`` are injectable for tests.
    """

    attempts: int = 4
    base: float = 0.5
    max_wait: float = 30.0
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False)
    rand: Callable[[], float] = field(default=random.random, repr=False)

    def wait(self, attempt: int, after: float | None) -> float:
        """How long to wait before try ``attempt + 1`` (``attempt`` counts from 1)."""
        if after is not None:
            return after
        cap = min(self.max_wait, self.base * 2.0 ** (attempt - 1))
        return float(self.rand()) * cap

    def run(self, what: str, operation: Callable[[], T]) -> T:
        """Run ``operation``, retrying on :class:`RetryLater`; other errors pass through."""
        for attempt in range(1, self.attempts + 1):
            try:
                return operation()
            except RetryLater as exc:
                delay = self.wait(attempt, exc.after)
                if attempt == self.attempts or delay > self.max_wait:
                    raise ProviderError(
                        f"{what}: {exc.reason} (gave up after {attempt} tries)"
                    ) from exc
                self.sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover
