"""An in-memory calendar provider that speaks :class:`calendars.base.Connector`, for the
service's tests (the real connectors are tested against fake provider servers).

A :class:`MemoryProvider` holds calendars of events; every change is logged, so a cursor is
a position in the log and an incremental sync returns what changed since. Switches make it fail
the ways real providers do: a dead credential, an expired cursor, a transient error. Events the
service writes (write-back) land in ``written`` and, like real providers, show up in the
calendar too -- marked as the service's own.

    provider = MemoryProvider()
    with connectors.use_factory(provider.factory):
        provider.add("cal-1", start, end)            # busy
        ... run a sync job ...
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from calendars.base import (
    OWN_EVENT_PREFIX,
    BusyEvent,
    CallEvent,
    Connector,
    CredentialError,
    CursorExpired,
    Delta,
    ProviderError,
    Transparency,
    WatchChannel,
)


@dataclass
class MemoryProvider:
    """Calendars by id; each a dict of event key -> BusyEvent, plus a change log."""

    events: dict[str, dict[str, BusyEvent]] = field(default_factory=dict)
    log: list[tuple[str, str]] = field(default_factory=list)  # (calendar, key) per change
    written: dict[str, CallEvent] = field(default_factory=dict)  # key -> the service's event
    watches: list[WatchChannel] = field(default_factory=list)
    dead_credentials: bool = False
    expire_cursors: bool = False
    failing: bool = False
    requests: int = 0
    epoch: int = 0  # bumped by expire(): older cursors are invalid
    _ids: itertools.count[int] = field(default_factory=itertools.count)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # --- what a test does
    def add(
        self,
        calendar: str,
        start: datetime,
        end: datetime,
        *,
        key: str | None = None,
        transparency: Transparency = "opaque",
        own: str | None = None,
    ) -> str:
        with self._lock:
            key = key or f"ev{next(self._ids)}"
            event = BusyEvent(calendar, start, end, transparency, key, own)
            self.events.setdefault(calendar, {})[key] = event
            self.log.append((calendar, key))
            return key

    def remove(self, calendar: str, key: str) -> None:
        with self._lock:
            self.events.get(calendar, {}).pop(key, None)
            self.log.append((calendar, key))

    def expire(self) -> None:
        """Invalidate every cursor handed out so far (a 410 Gone next time)."""
        self.epoch += 1

    def factory(
        self, provider: str, settings: Mapping[str, Any], credentials: Mapping[str, Any]
    ) -> Connector:
        return MemoryConnector(self, provider)


@dataclass
class MemoryConnector:
    store: MemoryProvider
    provider: str

    def _call(self) -> None:
        self.store.requests += 1
        if self.store.dead_credentials:
            raise CredentialError("invalid_grant: the refresh token was revoked")
        if self.store.failing:
            raise ProviderError("503 from the provider (gave up after 4 tries)")

    def busy(self, calendars: Sequence[str], start: datetime, end: datetime) -> list[BusyEvent]:
        self._call()
        return [
            e
            for c in calendars
            for e in self.store.events.get(c, {}).values()
            if e.busy and e.end > start and e.start < end
        ]

    def sync(self, calendar: str, cursor: str | None, start: datetime, end: datetime) -> Delta:
        self._call()
        with self.store._lock:
            position = len(self.store.log)
            next_cursor = f"{self.store.epoch}:{position}"
            current = self.store.events.get(calendar, {})
            if cursor is None:
                window = tuple(e for e in current.values() if e.end > start and e.start < end)
                return Delta(calendar, window, (), next_cursor, full=True, requests=1)
            epoch, _, since = cursor.partition(":")
            if self.store.expire_cursors or int(epoch) != self.store.epoch:
                raise CursorExpired("410 Gone: the sync token is no longer valid")
            keys = {k for c, k in self.store.log[int(since) :] if c == calendar}
            upserts = tuple(current[k] for k in sorted(keys) if k in current)
            removed = tuple(sorted(k for k in keys if k not in current))
            return Delta(calendar, upserts, removed, next_cursor, requests=1)

    def write_event(self, calendar: str, event: CallEvent) -> str:
        self._call()
        key = OWN_EVENT_PREFIX + event.call_id
        self.store.written[key] = event
        self.store.add(calendar, event.start, event.end, key=key, own=event.call_id)
        return key

    def update_event(self, calendar: str, key: str, event: CallEvent) -> str:
        self._call()
        self.store.written[key] = event
        self.store.add(calendar, event.start, event.end, key=key, own=event.call_id)
        return key

    def delete_event(self, calendar: str, key: str) -> None:
        self._call()
        self.store.written.pop(key, None)
        self.store.remove(calendar, key)

    def watch(self, calendar: str, address: str, token: str, ttl: timedelta) -> WatchChannel:
        self._call()

        channel = WatchChannel(
            calendar, f"ch{len(self.store.watches)}", None, datetime.now(UTC) + ttl
        )
        self.store.watches.append(channel)
        return channel

    def unwatch(self, channel: WatchChannel) -> None:
        self._call()
        self.store.watches = [w for w in self.store.watches if w != channel]
