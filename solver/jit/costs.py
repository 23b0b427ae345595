"""The binding objective's weights and its per (call, agent) costs, shared by the greedy and
the CP-SAT model so both optimise exactly the same thing."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt

from solver.capability import BookingState
from solver.plan import Reason
from solver.problem import _check_int
from solver.slots.index import BookingIndex

MAX_JIT_WEIGHT = 10_000_000

CANDIDATES_PER_CALL = 10


@dataclass(frozen=True, slots=True)
class JitWeights:
    """Integer costs of the binding objective (all minimised)."""

    uncovered: int = 100_000  # a due call left without an agent
    not_owner: int = 60  # the ticket's owner could take it but somebody else does
    day_load: int = 12  # per call the agent already has that (local) day, for each new one
    week_load: int = 2  # per call the agent already has that ISO week
    scarcity: int = 40  # x the agent's worth to other capabilities (0..~1)

    def __post_init__(self) -> None:
        # Costs are these times 10, summed over a day's calls in CP-SAT's int64 objective.
        for name in ("uncovered", "not_owner", "day_load", "week_load", "scarcity"):
            _check_int(getattr(self, name), name, minimum=0, maximum=MAX_JIT_WEIGHT)


def local_day(moment: datetime, tz: str) -> date:
    return moment.astimezone(ZoneInfo(tz)).date()


class Costs:
    """Per (call, agent) costs of the binding objective, and the candidates worth modelling.

    Costs are integers in tenths (weights x 10) so CP-SAT and the greedy agree exactly.
    """

    def __init__(
        self,
        state: BookingState,
        idx: BookingIndex,
        weights: JitWeights,
        day_load: dict[tuple[str, date], int],
        week_load: dict[tuple[str, int], int],
    ) -> None:
        self.idx = idx
        self.w = weights
        self.day_load = day_load
        self.scarce = np.rint(idx.value * weights.scarcity * 10).astype(np.int64)
        self._days: dict[tuple[int, str], date] = {}
        # Sparse loads by date/week: few agents hold bound calls on any one day.
        self.by_day: dict[date, dict[int, int]] = {}
        self.by_week: dict[int, dict[int, int]] = {}
        for (aid, d), n in day_load.items():
            self.by_day.setdefault(d, {})[idx.apos[aid]] = n
        for (aid, w), n in week_load.items():
            self.by_week.setdefault(w, {})[idx.apos[aid]] = n
        self.zones: dict[str, npt.NDArray[np.bool_]] = {}
        tz_arr = np.array(idx.timezones, dtype=object)
        for tz in set(idx.timezones):
            self.zones[tz] = tz_arr == tz

    def day_of(self, k: int, a: int) -> date:
        """The call's date in the agent's time zone (their day, for fairness)."""
        return self._day(k, self.idx.timezones[a])

    def _day(self, k: int, tz: str) -> date:
        d = self._days.get((k, tz))
        if d is None:
            d = self._days[(k, tz)] = local_day(self.idx.calls[k].start, tz)
        return d

    def owner(self, k: int) -> int:
        owner = self.idx.calls[k].owner_agent
        return self.idx.apos.get(owner, -1) if owner is not None else -1

    def costs(
        self, k: int, agents: npt.NDArray[np.int64], owner_free: bool
    ) -> npt.NDArray[np.int64]:
        """Cost of the first new call on each agent; extra calls the same day add ``day_load``."""
        c = self.scarce[agents].copy()
        load = np.zeros(self.idx.n, dtype=np.int64)
        for tz, members in self.zones.items():
            d = self._day(k, tz)
            y, wk, _ = d.isocalendar()
            for a, n in self.by_day.get(d, {}).items():
                if members[a]:
                    load[a] += self.w.day_load * 10 * n
            for a, n in self.by_week.get(y * 100 + wk, {}).items():
                if members[a]:
                    load[a] += self.w.week_load * 10 * n
        c += load[agents]
        if owner_free:
            c += np.where(agents == self.owner(k), 0, self.w.not_owner * 10)
        return c

    def candidates(self, k: int, hint: int, is_due: bool) -> list[tuple[int, int]]:
        """(agent, cost) pairs: free agents, cheapest first, plus the current cover."""
        idx = self.idx
        s, e = idx.occ_s[k], idx.occ_e[k]
        q = idx.qual[idx.cap_of[k]]
        if e <= s or q.size == 0:
            return []
        free = q[idx.grid[q, s:e].max(axis=1) == 0]
        if not is_due:  # boundary calls only need to stay coverable: a few options suffice
            keep = free[: CANDIDATES_PER_CALL // 4].tolist()
            if hint >= 0 and hint not in keep:
                keep.append(hint)
            return [(a, 0) for a in keep]
        owner = self.owner(k)
        owner_free = owner >= 0 and bool((free == owner).any())
        cost = self.costs(k, free, owner_free)
        # Many agents tie on cost; a per-call tie-break spreads the shortlists over them, or
        # every call would short-list the same few agents and fight over them.
        tie = (free * 7919 + k * 104729) % max(1, idx.n)
        order = np.lexsort((tie, cost))[:CANDIDATES_PER_CALL]
        keep = [(int(free[i]), int(cost[i])) for i in order]
        kept = {a for a, _c in keep}
        for extra in (hint, owner if owner_free else -1):
            if extra >= 0 and extra not in kept:
                hit = np.flatnonzero(free == extra)
                if hit.size:
                    keep.append((extra, int(cost[hit[0]])))
                    kept.add(extra)
        return keep

    def reasons(self, k: int, a: int) -> tuple[Reason, ...]:
        out = [Reason("qualified_and_free", "qualified, on shift and free for the whole call")]
        if a == self.owner(k):
            out.append(Reason("owner", "owns the ticket"))
        aid = self.idx.agent_ids[a]
        n = self.day_load.get((aid, self.day_of(k, a)), 0)
        out.append(Reason("day_load", f"{n} other calls that day before this one", float(n)))
        return tuple(out)
