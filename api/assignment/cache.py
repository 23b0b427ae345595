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

Booked calls hold agents (:func:`api.solver_input.call_holds`: busy time for ticket work), and
calls are booked, bound, moved and cancelled without an organisation change. So an entry keeps
the organisation without calls (``problem``) and the index built with the holds it last saw; a
request reads the holds (one small indexed query) and, when they differ, only the held agents'
working calendars are recomputed from the cached organisation -- no organisation read, and only
when a call changed (:meth:`OrgIndex.with_holds`, :meth:`RealtimeIndex.with_busy`).
"""

from __future__ import annotations

import threading
from datetime import datetime, timedelta

from api.org_version import VersionedCache
from api.solver_input import Holds, holds_by_agent
from solver.realtime import RealtimeIndex


class OrgIndex:
    """The real-time index of the organisation without calls (``base``), and the index of it
    with the call holds it was last asked for."""

    __slots__ = ("_current", "_lock", "base")

    def __init__(self, base: RealtimeIndex, holds: Holds) -> None:
        self.base = base
        self._lock = threading.Lock()
        self._current = (holds, _with_holds(base, holds))

    @property
    def origin(self) -> datetime:
        return self.base.origin

    @property
    def horizon_end(self) -> datetime:
        horizon_end = self.base.problem.horizon_end
        assert horizon_end is not None
        return horizon_end

    def with_holds(self, holds: Holds) -> RealtimeIndex:
        """The index of the organisation with ``holds`` as busy time (recomputed only when
        they differ from the last ones, and then only the held agents' calendars; concurrent
        readers of the old holds keep their index)."""
        seen, index = self._current
        if seen == holds:
            return index
        with self._lock:
            seen, index = self._current
            if seen != holds:
                index = _with_holds(self.base, holds)
                self._current = (holds, index)
        return index


def _with_holds(base: RealtimeIndex, holds: Holds) -> RealtimeIndex:
    return base.with_busy(holds_by_agent(holds)) if holds else base


class RealtimeCache(VersionedCache[OrgIndex]):
    """Tenant -> (organisation version, :class:`OrgIndex`); an entry also serves only requests
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

    def fresh(self, entry: OrgIndex, now: datetime) -> bool:
        """Whether ``entry`` may serve a request at ``now``."""
        return entry.origin <= now < entry.origin + self.max_age
