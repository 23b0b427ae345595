"""A per-tenant cache of the solver's :class:`~solver.realtime.RealtimeIndex`, kept correct by
an organisation version stored in the database.

Building the index means reading the whole organisation (agents, skills, shifts, busy time)
and precomputing every agent's working calendar: tens of milliseconds for 200 agents, far too
slow to repeat per assignment. What changes on every assignment is only each agent's *load*
(open tickets, backlog), so a request takes the cached index, copies it (a few small arrays),
and overlays the loads it reads from the database in the same locked transaction.

The cache is valid while the tenant's organisation is unchanged. Every ORM flush that
touches an agent, an agent's skill, a shift, a busy interval, a skill or a team bumps
``org_versions.version`` for that tenant in the same transaction (a ``before_flush`` listener,
:func:`install`), and so do such rows written without a flush by bulk imports (a hook of
:func:`api.db.inserts.insert_many`), so every process — however many replicas — sees the
change on its next request and rebuilds. The index also expires after ``max_age`` of request
time (its fairness counts and shift clipping drift) and of wall time (a backstop for writes
that bypass the ORM).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Generic, TypeVar

from sqlalchemy import BigInteger, ForeignKey, String, Table, bindparam, event, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Mapped, Session, mapped_column

from api.db import inserts
from api.db.base import Base
from api.db.models import Agent, AgentSkill, BusyInterval, Shift, Skill, Team
from solver.realtime import RealtimeIndex

ORG_MODELS: tuple[type[Any], ...] = (Agent, AgentSkill, BusyInterval, Shift, Skill, Team)
_ORG_TABLES = frozenset(model.__table__ for model in ORG_MODELS)


class OrgVersion(Base):
    """How many times a tenant's organisation changed; the realtime cache's validity key."""

    __tablename__ = "org_versions"

    tenant_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True
    )
    version: Mapped[int] = mapped_column(BigInteger)


def _tenants_touched(session: Session) -> set[str]:
    touched: set[str] = set()
    for obj in (*session.new, *session.deleted):
        if isinstance(obj, ORG_MODELS):
            touched.add(obj.tenant_id)
    for obj in session.dirty:
        if isinstance(obj, ORG_MODELS) and session.is_modified(obj, include_collections=False):
            touched.add(obj.tenant_id)
    return touched


def bump(session: Session, tenant_id: str) -> None:
    """Increment the tenant's organisation version in the session's transaction."""
    table = OrgVersion.__table__
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = insert(table).values(tenant_id=tenant_id, version=1)
    stmt = stmt.on_conflict_do_update(
        index_elements=[table.c.tenant_id], set_={"version": table.c.version + 1}
    )
    session.connection().execute(stmt)


_BUMPED = "switchboard.org_bumped"


def _bump_once(session: Session, tenants: set[str]) -> None:
    """Bump each of ``tenants`` not bumped yet in this transaction (once per transaction is
    enough: the version only has to differ from any a cache was built for)."""
    bumped: set[str] = session.info.setdefault(_BUMPED, set())
    for tenant_id in sorted(tenants - bumped):  # sorted: one lock order
        bump(session, tenant_id)
        bumped.add(tenant_id)


def _before_flush(session: Session, _context: Any, _instances: Any) -> None:
    _bump_once(session, _tenants_touched(session))


def _before_insert_many(session: Session, table: Table, rows: inserts.Rows) -> None:
    if table in _ORG_TABLES:
        _bump_once(session, {row["tenant_id"] for row in rows})


def _transaction_ended(session: Session, *_args: Any) -> None:
    session.info.pop(_BUMPED, None)


def changed_in_transaction(session: Session, tenant_id: str) -> bool:
    """Whether this session's open transaction changed the tenant's organisation."""
    return tenant_id in session.info.get(_BUMPED, ())


_LISTENERS = (
    ("before_flush", _before_flush),
    ("after_commit", _transaction_ended),
    ("after_rollback", _transaction_ended),
)


def install() -> None:
    """Register the version-bumping flush listeners (idempotent; called by ``create_app`` and
    the worker command, never at import)."""
    for name, fn in _LISTENERS:
        if not event.contains(Session, name, fn):
            event.listen(Session, name, fn)
    inserts.on_insert(_before_insert_many)


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
        the whole organisation at the same time (measured at start: 8 concurrent builds)."""
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


class RealtimeCache(VersionedCache[RealtimeIndex]):
    """Tenant -> (organisation version, real-time index); an index also serves only requests
    within ``max_age`` of its origin (its fairness counts and shift clipping drift)."""

    def __init__(
        self,
        *,
        max_age: timedelta = timedelta(minutes=10),
        max_wall_seconds: float = 60.0,
        max_tenants: int = 256,
    ) -> None:
        super().__init__(max_wall_seconds=max_wall_seconds, max_tenants=max_tenants)
        self.max_age = max_age

    def fresh(self, index: RealtimeIndex, now: datetime) -> bool:
        """Whether ``index`` may serve a request at ``now``."""
        return index.origin <= now < index.origin + self.max_age


def with_loads(
    base: RealtimeIndex, now: datetime, held: Mapping[str, tuple[int, int]]
) -> RealtimeIndex:
    """A copy of ``base`` whose agents hold exactly ``held`` (agent -> (open tickets, backlog
    minutes)) at ``now``; agents absent from ``held`` hold nothing.

    Equivalent to building a fresh index at ``now`` with those loads (a test holds it to that);
    see :meth:`RealtimeIndex.with_loads`.
    """
    return base.with_loads(now, held)


def mark_full(index: RealtimeIndex, agent_id: str) -> RealtimeIndex:
    """A copy of ``index`` in which ``agent_id`` holds as many tickets as their capacity, so is
    no candidate (they filled up since the loads were read)."""
    return index.with_full(agent_id)
