"""A per-tenant cache of what the booking engine knows of the organisation, kept correct by the
organisation version of :mod:`api.org_version`.

Answering a slot query or deciding a booking needs the engine's state: every agent with skills,
shifts and busy time, the capabilities, and the booked calls. Reading the agents and turning their
working time into the engine's availability grid (:func:`solver.slots.org_index`) is most of an
uncached slot query's time (figures: benchmarks/README.md, Capability booking) and changes rarely;
the calls change with every booking. So the organisation part is cached per tenant, and each request
reads the capabilities and the live calls and places the calls on a copy of the cached grid
(:func:`solver.slots.index_from`, which gives exactly the index a fresh build would).

An entry is used only when all of these hold, else it is rebuilt (once per tenant at a time:
requests arriving together wait for one build):

- **the organisation version matches**, read from ``org_versions`` in the request's own
  transaction — for booking, cancelling, binding and rebalancing *inside the tenant lock*. Every
  ORM flush that changes an agent, an agent's skills, a shift, a busy interval, a skill or a
  team bumps it in the same transaction, and so does a bulk import of them
  (:mod:`api.org_version`), so a change committed by any process is seen by the next
  request of every process. The version is read before the
  organisation when building, so an entry is never labelled newer than what it holds;
- **the capabilities equal** the ones read in this transaction (capabilities are not part of
  the organisation version; they are few, and read on every request anyway);
- **the shifts and busy time it holds reach far enough** for this moment
  (:func:`api.solver_input.booking_reach`), and the moment is not before it was built;
- **it is younger than** ``max_wall_seconds`` of wall time: a backstop for writes that bypass
  the ORM, as in the real-time cache.

A transaction that has itself changed the organisation (not yet committed) builds from what it
sees and caches nothing.

Who is *blocked* (an agent whose calendar cannot be trusted: :mod:`api.calendar_trust`) is not
part of the organisation: it changes with the clock (a mirror going stale) without any write,
so no version could tell. Each request reads it (one indexed query) and puts it on its own
state; the engine applies it on top of the cached grid (the grid itself does not depend on it),
and the answers shared between requests key on it (``_state_key`` in
:mod:`api.bookings.service`).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Generic, TypeVar

from sqlalchemy.orm import Session

from api import solver_input
from api.calendar_trust import DEFAULT_MAX_STALENESS
from api.org_version import VersionedCache
from solver.capability import BookingState, Capability, SlotAnswer
from solver.problem import Agent
from solver.slots import BookingIndex, org_index

# How much further than needed a build reads shifts and busy time, so the entry stays usable as
# the clock moves on (an entry lives at most max_wall_seconds anyway).
REACH_SLACK = timedelta(hours=1)

T = TypeVar("T")


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


class BookingCache(VersionedCache[BookingOrg]):
    """Tenant -> (organisation version, :class:`BookingOrg`); bounded by ``max_tenants`` (an
    entry of 200 agents and a two-week horizon holds a few MB of grid). ``alternatives`` shares
    the open starts around a refused booking between refusals of the same state
    (:class:`SharedAnswers`), and ``refusals`` the engine's reason for refusing a start in a
    state, so the same start asked again of the same state is refused without searching again;
    ``slot_answers`` the open starts of a window between slot queries of the same state (the
    customers' pickers). The state those share by includes who is blocked (fail closed), so no
    answer computed before an agent was blocked or unblocked is served after."""

    def __init__(
        self,
        *,
        max_wall_seconds: float = 60.0,
        max_tenants: int = 32,
        max_staleness: timedelta = DEFAULT_MAX_STALENESS,
    ) -> None:
        super().__init__(max_wall_seconds=max_wall_seconds, max_tenants=max_tenants)
        # How old a calendar mirror may be before its agent fails closed (the app's setting
        # ``calendar_max_staleness_seconds``); who is blocked is read on every request and is
        # not part of the cached organisation (:func:`api.calendar_trust.trust`).
        self.max_staleness = max_staleness
        self.alternatives: SharedAnswers[Any] = SharedAnswers()
        self.refusals: SharedAnswers[Any] = SharedAnswers()
        self.slot_answers: SharedAnswers[SlotAnswer] = SharedAnswers()


class Identity:
    """A key part equal only to the very same object (held, so its id is not reused): the
    agents tuple of one cached organisation, compared without hashing every agent."""

    __slots__ = ("obj",)

    def __init__(self, obj: object) -> None:
        self.obj = obj

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Identity) and other.obj is self.obj

    def __hash__(self) -> int:
        return id(self.obj)


@dataclass
class _Pending:
    done: threading.Event = field(default_factory=threading.Event)
    value: Any = None
    failed: BaseException | None = None


class SharedAnswers(Generic[T]):
    """Key -> one computed answer, shared: the first caller of a key computes it, callers of
    the same key meanwhile wait for that result instead of computing it again, and later callers
    reuse it while it is among the ``size`` most recent keys. Only for pure functions of the
    key (a failure is not kept: the next caller tries again)."""

    def __init__(self, size: int = 64) -> None:
        self._size = size
        self._lock = threading.Lock()
        self._entries: OrderedDict[Hashable, _Pending] = OrderedDict()
        self.computed = 0  # how many times an answer was computed rather than shared

    def peek(self, key: Hashable) -> T | None:
        """The answer kept for ``key`` if one was computed (never waits)."""
        with self._lock:
            entry = self._entries.get(key)
        if entry is None or not entry.done.is_set() or entry.failed is not None:
            return None
        return entry.value  # type: ignore[no-any-return]

    def put(self, key: Hashable, value: T) -> None:
        """Keep ``value`` as the answer for ``key``."""
        entry = _Pending(value=value)
        entry.done.set()
        with self._lock:
            self._entries[key] = entry
            self._entries.move_to_end(key)
            while len(self._entries) > self._size:
                self._entries.popitem(last=False)

    def get(self, key: Hashable, compute: Callable[[], T]) -> T:
        with self._lock:
            entry = self._entries.get(key)
            mine = entry is None
            if entry is None:
                entry = self._entries[key] = _Pending()
                while len(self._entries) > self._size:
                    self._entries.popitem(last=False)
            else:
                self._entries.move_to_end(key)
        if not mine:
            entry.done.wait()
            if entry.failed is None:
                return entry.value  # type: ignore[no-any-return]
            return compute()
        try:
            entry.value = compute()
            self.computed += 1
        except BaseException as exc:
            entry.failed = exc
            with self._lock:
                if self._entries.get(key) is entry:
                    del self._entries[key]
            raise
        finally:
            entry.done.set()
        return entry.value  # type: ignore[no-any-return]


def usable(
    org: BookingOrg, capabilities: tuple[Capability, ...], now: datetime, reach: datetime
) -> bool:
    """Whether ``org`` was built with these capabilities, not after ``now``, and holds shifts
    and busy time up to ``reach``."""
    return org.capabilities == capabilities and org.built_at <= now and reach <= org.reach


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
    return cache.get_or_build(
        session,
        tenant_id,
        lambda org: usable(org, capabilities, now, reach),
        lambda: _build(session, tenant_id, now, capabilities, reach),
    )
