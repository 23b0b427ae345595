"""What the organisation is, as of which change: the one listener that notices a change, the
per-tenant version it bumps, and the cache of anything built from the organisation.

Everything the service builds from the organisation (the real-time index,
:mod:`api.assignment.cache`; the booking engine's grid, :mod:`api.bookings.cache`)
is valid while the tenant's organisation is unchanged. Every ORM flush that touches an agent, an
agent's skill, a shift, a busy interval, a skill or a team bumps ``org_versions.version`` for that
tenant in the same transaction (a ``before_flush`` listener), and so do such rows written without
a flush by bulk imports (a hook of :func:`api.db.inserts.insert_many`), so every process --
however many replicas -- sees the change on its next request and rebuilds.

The same listener tells whoever subscribed (:func:`on_cover_change`, registered by
:mod:`api.wiring`) which tenants' *cover* changed at commit: who works when, with what (agents,
their skills, shifts, busy time), with the earliest ``updated_at`` of the changed rows -- and
whose calendar can be trusted (a calendar connection created, deleted, failing or recovering;
that bumps no version: see ``_TRUST_FIELDS``). The
booking engine re-checks booked calls then. One listener, one list of what the organisation is.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

from sqlalchemy import Table, bindparam, event, inspect, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from api.db import inserts
from api.db.base import table_of
from api.db.models import (
    Agent,
    AgentSkill,
    BusyInterval,
    CalendarConnection,
    OrgVersion,
    Shift,
    Skill,
    Team,
    TenantPolicies,
)

# What the caches are built from: a change to any of these changes the organisation's version.
ORG_MODELS: tuple[type[Any], ...] = (
    Agent,
    AgentSkill,
    BusyInterval,
    Shift,
    Skill,
    Team,
    TenantPolicies,
)
_ORG_TABLES = frozenset(table_of(model) for model in ORG_MODELS)
# What can take an agent away from a booked call (or give one back): who works when, with what.
COVER_MODELS: tuple[type[Any], ...] = (Agent, AgentSkill, Shift, BusyInterval)
_COVER_TABLES = frozenset(table_of(model) for model in COVER_MODELS)
# Whether an agent's calendar can be trusted changes their cover too (fail closed:
# api.calendar_trust), but not the organisation the caches hold: who is blocked is read on every
# request (it also changes by the clock alone, as a mirror goes stale). A connection created,
# deleted, or changing status, agent, failure (a stale mirror announced, or its recovery) or
# first success re-checks the booked calls; a routine sync (a newer last_success_at) does not.
_TRUST_FIELDS = ("status", "agent_id", "failure")

Stamps = dict[str, datetime | None]
"""tenant -> the earliest ``updated_at`` of its changed cover rows (None: no time known)."""
CoverHook = Callable[[Session, Stamps], None]

_BUMPED = "switchboard.org_bumped"  # session.info: tenants bumped in this transaction
_COVER = "switchboard.org_cover"  # session.info: Stamps noted in this transaction
_cover_hooks: list[CoverHook] = []


def bump(session: Session, tenant_id: str) -> None:
    """Increment the tenant's organisation version in the session's transaction."""
    table = table_of(OrgVersion)
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = insert(table).values(tenant_id=tenant_id, version=1)
    stmt = stmt.on_conflict_do_update(
        index_elements=[table.c.tenant_id], set_={"version": table.c.version + 1}
    )
    session.connection().execute(stmt)


def _bump_once(session: Session, tenants: set[str]) -> None:
    """Bump each of ``tenants`` not bumped yet in this transaction (once per transaction is
    enough: the version only has to differ from any a cache was built for)."""
    bumped: set[str] = session.info.setdefault(_BUMPED, set())
    for tenant_id in sorted(tenants - bumped):  # sorted: one lock order
        bump(session, tenant_id)
        bumped.add(tenant_id)


def _note(seen: Stamps, tenant_id: str, stamp: datetime | None) -> None:
    """Record a change of ``tenant_id``'s cover at ``stamp``, keeping the earliest time known."""
    earlier = seen.get(tenant_id)
    if tenant_id not in seen or (stamp is not None and (earlier is None or stamp < earlier)):
        seen[tenant_id] = stamp


def _trust_changed(session: Session, obj: CalendarConnection) -> bool:
    """Whether this flush of a calendar connection may change whether its agent is blocked."""
    if obj in session.new or obj in session.deleted:
        return True
    state = inspect(obj)
    for name in _TRUST_FIELDS:
        history = state.attrs[name].history
        if history.added and history.added != history.deleted:
            return True
    success = state.attrs["last_success_at"].history
    return bool(success.added) and success.deleted == [None]


def _before_flush(session: Session, _context: Any, _instances: Any) -> None:
    touched: set[str] = set()
    cover: Stamps = session.info.setdefault(_COVER, {})
    for obj in (*session.new, *session.dirty, *session.deleted):
        if isinstance(obj, CalendarConnection):
            if _trust_changed(session, obj):
                _note(cover, obj.tenant_id, obj.updated_at)
            continue
        if not isinstance(obj, ORG_MODELS):
            continue
        if obj in session.dirty and not session.is_modified(obj, include_collections=False):
            continue
        touched.add(obj.tenant_id)
        if isinstance(obj, COVER_MODELS):
            # The services stamp rows with the request's clock; agent skills carry no stamp.
            _note(cover, obj.tenant_id, getattr(obj, "updated_at", None))
    _bump_once(session, touched)


def _before_insert_many(session: Session, table: Table, rows: inserts.Rows) -> None:
    if table in _ORG_TABLES:
        _bump_once(session, {row["tenant_id"] for row in rows})
    if table in _COVER_TABLES:
        cover: Stamps = session.info.setdefault(_COVER, {})
        for row in rows:
            _note(cover, row["tenant_id"], row.get("updated_at"))


def _before_commit(session: Session) -> None:
    if not _cover_hooks:
        return
    session.flush()  # commit would flush next anyway; this lets before_flush see everything
    cover: Stamps = session.info.pop(_COVER, {})
    if cover:
        for hook in _cover_hooks:
            hook(session, cover)


def _transaction_ended(session: Session, *_args: Any) -> None:
    session.info.pop(_BUMPED, None)
    session.info.pop(_COVER, None)


def changed_in_transaction(session: Session, tenant_id: str) -> bool:
    """Whether this session's open transaction changed the tenant's organisation."""
    return tenant_id in session.info.get(_BUMPED, ())


_LISTENERS = (
    ("before_flush", _before_flush),
    ("before_commit", _before_commit),
    ("after_commit", _transaction_ended),
    ("after_rollback", _transaction_ended),
)


def install() -> None:
    """Register the listener (idempotent; called by :mod:`api.wiring`, never at import)."""
    for name, fn in _LISTENERS:
        if not event.contains(Session, name, fn):
            event.listen(Session, name, fn)
    inserts.on_insert(_before_insert_many)


def on_cover_change(hook: CoverHook) -> None:
    """Call ``hook(session, stamps)`` before a commit that changed some tenant's cover, in that
    transaction (idempotent)."""
    if hook not in _cover_hooks:
        _cover_hooks.append(hook)


_VERSION = select(OrgVersion.__table__.c.version).where(
    OrgVersion.__table__.c.tenant_id == bindparam("tenant")
)


def current_version(session: Session, tenant_id: str) -> int:
    found = session.connection().execute(_VERSION, {"tenant": tenant_id}).scalar()
    return int(found or 0)


T = TypeVar("T")


@dataclass
class _Entry(Generic[T]):
    version: int
    value: T
    built_monotonic: float


class VersionedCache(Generic[T]):
    """Tenant -> (organisation version, value), for anything built from the organisation.

    Thread-safe; bounded by ``max_tenants`` (the oldest entry goes first). An entry serves only
    the version it was built for, for at most ``max_wall_seconds`` of wall time (a backstop for
    writes that bypass the ORM); subclasses add their own validity checks in :meth:`usable`.
    """

    def __init__(self, *, max_wall_seconds: float = 60.0, max_tenants: int = 256) -> None:
        self.max_wall_seconds = max_wall_seconds
        self.max_tenants = max_tenants
        self._entries: dict[str, _Entry[T]] = {}
        self._lock = threading.Lock()
        self._building: dict[str, threading.Lock] = {}
        self.builds = 0
        self.hits = 0

    def build_lock(self, tenant_id: str) -> threading.Lock:
        """Held while building ``tenant_id``'s value, so that requests arriving together after
        a change (or at start) build it once and the rest wait for it, instead of each reading
        the whole organisation at the same time (figures: benchmarks/README.md, Figures behind
        design choices)."""
        with self._lock:
            return self._building.setdefault(tenant_id, threading.Lock())

    def lookup(self, tenant_id: str, version: int, usable: Callable[[T], bool]) -> T | None:
        """The tenant's value if it was built for ``version``, is young enough and ``usable``."""
        with self._lock:
            entry = self._entries.get(tenant_id)
        if entry is None or entry.version != version or not usable(entry.value):
            return None
        if time.monotonic() - entry.built_monotonic > self.max_wall_seconds:
            return None
        self.hits += 1
        return entry.value

    def put(self, tenant_id: str, version: int, value: T) -> None:
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
            self._entries[tenant_id] = _Entry(version, value, stamp)
            self.builds += 1

    def invalidate(self, tenant_id: str | None = None) -> None:
        with self._lock:
            if tenant_id is None:
                self._entries.clear()
            else:
                self._entries.pop(tenant_id, None)

    def get_or_build(
        self,
        session: Session,
        tenant_id: str,
        usable: Callable[[T], bool],
        build: Callable[[], T],
    ) -> T:
        """The cached value for the organisation ``session``'s transaction sees, or a new one
        from ``build()`` (itself reading through ``session``).

        The version is read first, in the caller's transaction (inside the tenant lock when the
        caller holds it), so an entry is never labelled newer than the data it was built from.
        A transaction that changed the organisation and has not committed builds from what it
        sees and caches nothing (a rollback would leave the cache ahead of the database).
        """
        if changed_in_transaction(session, tenant_id):
            return build()
        version = current_version(session, tenant_id)
        value = self.lookup(tenant_id, version, usable)
        if value is None:
            with self.build_lock(tenant_id):
                value = self.lookup(tenant_id, version, usable)  # built meanwhile?
                if value is None:
                    value = build()
                    self.put(tenant_id, version, value)
        return value
