"""A per-tenant cache of what the booking engine knows of the organisation, kept correct by the
organisation version of :mod:`api.services.realtime_cache`.

Answering a slot query or deciding a booking needs the engine's state: every agent with skills,
shifts and busy time, the capabilities, and the booked calls. Reading the agents and turning
their working time into the engine's availability grid (:func:`solver.slots.org_index`) was
most of a slot query's time (tens of milliseconds for 200 agents) and changes rarely; the calls
change with every booking. So the organisation part is cached per tenant, and each request
reads the capabilities and the live calls and places the calls on a copy of the cached grid
(:func:`solver.slots.index_from`, which gives exactly the index a fresh build would).

An entry is used only when all of these hold, else it is rebuilt (once per tenant at a time:
requests arriving together wait for one build):

- **the organisation version matches**, read from ``org_versions`` in the request's own
  transaction — for booking, cancelling, binding and rebalancing *inside the tenant lock*. Every
  ORM flush that changes an agent, an agent's skills, a shift, a busy interval, a skill or a
  team bumps it in the same transaction (``realtime_cache.install``), so a change committed by
  any process is seen by the next request of every process. The version is read before the
  organisation when building, so an entry is never labelled newer than what it holds;
- **the capabilities equal** the ones read in this transaction (capabilities are not part of
  the organisation version; they are few, and read on every request anyway);
- **the shifts and busy time it holds reach far enough** for this moment
  (:func:`api.services.solver_input.booking_reach`), and the moment is not before it was built;
- **it is younger than** ``max_wall_seconds`` of wall time: a backstop for writes that bypass
  the ORM, as in the real-time cache.

A transaction that has itself changed the organisation (not yet committed) builds from what it
sees and caches nothing.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from api.services import solver_input
from api.services.realtime_cache import changed_in_transaction, current_version
from solver.capability import BookingState, Capability
from solver.problem import Agent
from solver.slots import BookingIndex, org_index

# How much further than needed a build reads shifts and busy time, so the entry stays usable as
# the clock moves on (an entry lives at most max_wall_seconds anyway).
REACH_SLACK = timedelta(hours=1)


@dataclass(frozen=True)
class BookingOrg:
    """The organisation as the booking engine sees it: ``agents`` (shifts and busy time read up
    to ``reach``), the ``capabilities`` it was built with, and ``base``, the engine's index of
    them without calls (None when not cached: the engine builds its index as usual)."""

    agents: tuple[Agent, ...]
    capabilities: tuple[Capability, ...]
    reach: datetime
    built_at: datetime
    base: BookingIndex | None = None


@dataclass
class _Entry:
    version: int
    org: BookingOrg
    built_monotonic: float


class BookingCache:
    """Tenant -> (organisation version, :class:`BookingOrg`). Thread-safe; bounded by
    ``max_tenants`` (an entry of 200 agents and a two-week horizon holds a few MB of grid), and
    entries past ``max_wall_seconds`` are dropped whenever another is stored."""

    def __init__(self, *, max_wall_seconds: float = 60.0, max_tenants: int = 32) -> None:
        self.max_wall_seconds = max_wall_seconds
        self.max_tenants = max_tenants
        self._entries: dict[str, _Entry] = {}
        self._lock = threading.Lock()
        self._building: dict[str, threading.Lock] = {}
        self.builds = 0
        self.hits = 0

    def build_lock(self, tenant_id: str) -> threading.Lock:
        with self._lock:
            return self._building.setdefault(tenant_id, threading.Lock())

    def get(
        self,
        tenant_id: str,
        version: int,
        capabilities: tuple[Capability, ...],
        now: datetime,
        reach: datetime,
    ) -> BookingOrg | None:
        with self._lock:
            entry = self._entries.get(tenant_id)
        if entry is None or entry.version != version:
            return None
        org = entry.org
        if org.capabilities != capabilities or not (org.built_at <= now and reach <= org.reach):
            return None
        if time.monotonic() - entry.built_monotonic > self.max_wall_seconds:
            return None
        self.hits += 1
        return org

    def put(self, tenant_id: str, version: int, org: BookingOrg) -> None:
        stamp = time.monotonic()
        with self._lock:
            for key in [
                k
                for k, e in self._entries.items()
                if stamp - e.built_monotonic > self.max_wall_seconds
            ]:
                del self._entries[key]
            if tenant_id not in self._entries and len(self._entries) >= self.max_tenants:
                oldest = min(self._entries, key=lambda k: self._entries[k].built_monotonic)
                del self._entries[oldest]
            self._entries[tenant_id] = _Entry(version, org, stamp)
            self.builds += 1

    def invalidate(self, tenant_id: str | None = None) -> None:
        with self._lock:
            if tenant_id is None:
                self._entries.clear()
            else:
                self._entries.pop(tenant_id, None)


def _build(
    session: Session,
    tenant_id: str,
    now: datetime,
    capabilities: tuple[Capability, ...],
    reach: datetime,
) -> BookingOrg:
    reach = reach + REACH_SLACK
    agents = solver_input.booking_agents(session=session, tenant_id=tenant_id, start=now, end=reach)
    # The grid ends where the shifts read end: an index derived from it never looks further.
    base = org_index(BookingState(now, agents, capabilities), grid_end=reach)
    return BookingOrg(agents, capabilities, reach, now, base)


def organisation(
    *,
    session: Session,
    cache: BookingCache,
    tenant_id: str,
    now: datetime,
    capabilities: tuple[Capability, ...],
    reach: datetime,
) -> BookingOrg:
    """The tenant's organisation for the booking engine at ``now``, needing shifts and busy time
    up to ``reach``: cached while the organisation version (read in ``session``'s transaction,
    so inside the tenant lock when the caller holds it) and the capabilities hold."""
    if changed_in_transaction(session, tenant_id):
        # Changed and not committed: build from what this transaction sees, cache nothing (a
        # rollback would leave the cache ahead of the database).
        return _build(session, tenant_id, now, capabilities, reach)
    version = current_version(session, tenant_id)  # first: an entry is never newer than its data
    org = cache.get(tenant_id, version, capabilities, now, reach)
    if org is None:
        with cache.build_lock(tenant_id):
            org = cache.get(tenant_id, version, capabilities, now, reach)  # built meanwhile?
            if org is None:
                org = _build(session, tenant_id, now, capabilities, reach)
                cache.put(tenant_id, version, org)
    return org
