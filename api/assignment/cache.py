"""A per-tenant cache of the solver's :class:`~solver.realtime.RealtimeIndex`, kept correct by
an organisation version stored in the database.

Building the index means reading the whole organisation (agents, skills, shifts, busy time)
and precomputing every agent's working calendar: tens of milliseconds for 200 agents, far too
slow to repeat per assignment. What changes on every assignment is only each agent's *load*
(open tickets, backlog), so a request takes the cached index, copies it (a few small arrays),
and overlays the loads it reads from the database in the same locked transaction.

The cache is valid while the tenant's organisation is unchanged (its version, kept by
:mod:`api.org_version`). The index also expires after ``max_age`` of request time (its
fairness counts and shift clipping drift) and of wall time (a backstop for writes that bypass
the ORM).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from api.org_version import VersionedCache
from solver.realtime import RealtimeIndex


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
