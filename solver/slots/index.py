"""The booking index: the engine's working memory for one state, and how it follows the state.

It holds, per agent, one int8 row over the minutes of the horizon (``NOT_WORKING`` outside
working windows, +1 per call occupying the minute), per team the reserve slack per minute, and
per call its occupancy and witness agent; see :mod:`solver.slots` for why a witness and how the
search extends it. It is built once per state (:func:`index_of`) and handed over to the state a
booking or a binding derives (:func:`hand_over`); a service that keeps the organisation between
requests builds that part once (:func:`org_index`) and derives each request's index from it
(:func:`index_from`).
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import numpy.typing as npt

from solver.availability import working_windows
from solver.capability import BookingState, Call, Capability, team_reserves
from solver.errors import ProblemError
from solver.plan import Reason
from solver.problem import AgentStatus
from solver.timegrid import to_minute, to_minute_ceil

NOT_WORKING = 100  # grid mark outside working windows; occupancies add 1 on top
GRID_MARGIN = timedelta(days=1)  # so advancing `now` within a day does not force a rebuild
SEARCH_DEPTH = 2
# Open slots probe with depth 1 (a blocking call moves straight to a free agent): it keeps most of
# what depth 2 finds at a fraction of the cost (figures: benchmarks/README.md, Figures behind design
# choices). Booking runs that identical probe first, so every offered slot is bookable, then depth 2
# (finds more).
PROBE_DEPTH = 1
MAX_BRANCH = 12
ADMIT_BUDGET = 64  # placement attempts per admission (bounds the worst case, deterministic)
BUILD_BUDGET = 256

IntArray = npt.NDArray[np.int64]


class BookingIndex:
    """The engine's working memory for one state: availability grid, reserve slack, witness.

    Call ``k`` is ``state.calls[k]``. Mutating methods keep a journal so a tentative placement
    can be rolled back; callers clear the journal once they commit.
    """

    def __init__(
        self,
        state: BookingState,
        need_end: datetime | None = None,
        hint: Mapping[str, str | None] | None = None,
        *,
        base: BookingIndex | None = None,
        grid_end: datetime | None = None,
    ) -> None:
        self.origin = state.now.replace(second=0, microsecond=0)
        self.now = state.now
        # (shift d, grid length H) -> this index's windows moved by d (see _copy_organisation).
        self._moved_windows: tuple[tuple[int, int], tuple[list[tuple[int, int]], ...]] | None = None
        caps = state.capabilities
        self.caps: dict[str, Capability] = {c.id: c for c in caps}
        max_horizon = max((c.horizon for c in caps), default=timedelta(0))
        max_occ = max((c.occupancy_minutes for c in caps), default=0)
        end = state.now + max_horizon + timedelta(minutes=max_occ) + GRID_MARGIN
        if need_end is not None:
            end = max(end, need_end + GRID_MARGIN)
        for call in state.calls:
            buffer = self.caps[call.capability_id].buffer_minutes
            end = max(end, call.end + timedelta(minutes=buffer))
        self.H = to_minute_ceil(end, self.origin) + 1
        if grid_end is not None:
            self.H = max(self.H, to_minute(grid_end, self.origin))
        # What the organisation part was built from (see org_index / index_from).
        self.org_of: tuple[tuple[Any, ...], tuple[Capability, ...], Mapping[str, float]] = (
            state.agents,
            state.capabilities,
            state.team_reserve,
        )
        shift = -1 if base is None else base._shift_for(self)
        if shift >= 0:
            assert base is not None
            self._copy_organisation(base, shift)
        else:
            self._build_organisation(state)
        self._place_calls(state, hint)

    def _build_organisation(self, state: BookingState) -> None:
        agents = state.agents
        caps = state.capabilities
        self.n = len(agents)
        self.agent_ids = [a.id for a in agents]
        self.apos = {a.id: i for i, a in enumerate(agents)}
        team_ids: dict[str, int] = {}
        for a in agents:
            team_ids.setdefault(a.team, len(team_ids))
        self.team_ids = list(team_ids)
        self.team_of = np.fromiter((team_ids[a.team] for a in agents), np.int64, self.n)
        shares = team_reserves(state)
        self.team_share = np.array([shares.get(t, 0.0) for t in self.team_ids], dtype=np.float64)
        self.timezones = [a.timezone for a in agents]

        self.grid = np.full((self.n, self.H), NOT_WORKING, dtype=np.int8)
        self.windows: list[list[tuple[int, int]]] = []
        for i, a in enumerate(agents):
            ws = self._agent_windows(a)
            self.windows.append(ws)
            row = self.grid[i]
            for s, e in ws:
                row[s:e] = 0
        self._flat: tuple[IntArray, IntArray, IntArray] | None = None
        self.head = np.zeros((len(self.team_ids), self.H), dtype=np.int32)
        for i, ws in enumerate(self.windows):
            t = self.team_of[i]
            for s, e in ws:
                self.head[t, s:e] += 1
        self.team_cap = self._team_cap(np.arange(len(self.team_ids)))
        self.slack = self.team_cap.copy()

        self.qual: dict[str, IntArray] = {
            c.id: np.array(
                [i for i, a in enumerate(agents) if a.qualifies(c.requirements)], dtype=np.int64
            )
            for c in caps
        }
        self.qual_set: dict[str, frozenset[int]] = {
            cid: frozenset(q.tolist()) for cid, q in self.qual.items()
        }
        # An agent's worth to the *other* capabilities: scarce skills are kept free when there
        # is a choice, which is what leaves room for the next booking of a scarce capability.
        self.value = np.zeros(self.n, dtype=np.float64)
        for q in self.qual.values():
            if q.size:
                self.value[q] += 1.0 / q.size

    def _shift_for(self, other: BookingIndex) -> int:
        """How many minutes ``other``'s grid starts after this one's, if this index (a base of
        no calls, see :func:`org_index`) holds ``other``'s organisation over all of ``other``'s
        grid; else -1."""
        agents, caps, reserve = other.org_of
        if self.calls or agents is not self.org_of[0]:
            return -1
        if caps != self.org_of[1] or dict(reserve) != dict(self.org_of[2]):
            return -1
        d = to_minute(other.origin, self.origin)
        return d if d >= 0 and d + other.H <= self.H else -1

    def _copy_organisation(self, base: BookingIndex, d: int) -> None:
        """The organisation part of ``base`` moved ``d`` minutes on: exactly what
        :meth:`_build_organisation` computes (working windows are clipped spans, and clipping
        commutes with the shift because both origins are whole minutes). What no method
        mutates is shared with ``base`` (read-only there); the rest is copied."""
        H = self.H
        for name in ("n", "agent_ids", "apos", "team_ids", "team_of", "team_share", "timezones"):
            setattr(self, name, getattr(base, name))
        for name in ("qual", "qual_set", "value"):
            setattr(self, name, getattr(base, name))
        self.grid = base.grid[:, d : d + H].copy()
        # Every request in the same minute moves the base by the same d: the moved windows are
        # kept on the base for the next one (a tuple swapped in whole, so threads sharing the
        # base read one or the other). Each index gets its own outer list, as update_agent
        # replaces an agent's entry; the per-agent lists are never changed in place.
        memo = base._moved_windows
        if memo is None or memo[0] != (d, H):
            moved = tuple(
                [(max(s - d, 0), min(e - d, H)) for s, e in ws if e - d > 0 and s - d < H]
                for ws in base.windows
            )
            memo = base._moved_windows = ((d, H), moved)
        self.windows = list(memo[1])
        self._flat = None
        self.head = base.head[:, d : d + H].copy()
        self.team_cap = base.team_cap[:, d : d + H].copy()
        self.slack = self.team_cap.copy()

    def _place_calls(self, state: BookingState, hint: Mapping[str, str | None] | None) -> None:
        self.calls: list[Call] = []
        self.call_pos: dict[str, int] = {}
        self.cap_of: list[str] = []
        self.occ_s: list[int] = []
        self.occ_e: list[int] = []
        self.agent_of: list[int] = []
        self.bound: list[bool] = []
        self.past: set[int] = set()
        # Over but still in wrap-up: held by whoever took them until end + buffer, never moved.
        self.pinned: set[int] = set()
        self.stale: set[int] = set()  # bound to somebody who cannot take it any more
        self.occ: list[list[tuple[int, int, int]]] = [[] for _ in range(self.n)]
        self.journal: list[tuple[int, int, int]] = []  # (+1 assign / -1 unassign, call, agent)
        self.last_diagnosis = "fully_booked"  # why the last open_mask found nothing directly
        self._close(state)

        for call in state.calls:
            self._push(call)
        # The cover the caller kept (state.cover) first, exactly where it was; then the rest.
        cover = {**state.cover, **{c: a for c, a in (hint or {}).items() if a is not None}}
        # A call that has ended keeps its agent through the wrap-up buffer: the agent who took it
        # (bound, else its last cover) is occupied until end + buffer whatever their shift says
        # now, and the call is never moved (it has happened). Nobody to hold it: it is over.
        for k, call in enumerate(self.calls):
            if k in self.past or call.end > self.now:
                continue
            holder = self.apos.get(call.bound_agent or cover.get(call.id, ""), -1)
            if holder < 0:
                self.past.add(k)
                continue
            self.pinned.add(k)
            self.bound[k] = True
            self._assign(k, holder)
        order = sorted(
            (k for k in range(len(self.calls)) if k not in self.past and k not in self.pinned),
            key=lambda k: (self.occ_s[k], -self.occ_e[k], k),
        )
        for k in order:
            call = self.calls[k]
            if call.bound_agent is None:
                continue
            held_by = self.apos.get(call.bound_agent, -1)
            if held_by >= 0 and self._can_hold(k, held_by):
                self._assign(k, held_by)
                self.bound[k] = True
            else:
                self.stale.add(k)
        for k in order:
            hinted = self.apos.get(cover.get(self.calls[k].id, ""), -1)
            if (
                self.agent_of[k] < 0
                and hinted >= 0
                and hinted not in self.closed
                and self._can_hold(k, hinted)
            ):
                s, e = self.occ_s[k], self.occ_e[k]
                if int(self.slack[self.team_of[hinted], s:e].min()) >= 1:
                    self._assign(k, hinted)
        for k in order:
            if self.agent_of[k] < 0 and not self.bound[k]:
                self.place(k, SEARCH_DEPTH, [BUILD_BUDGET])
        self.journal.clear()

    # --- construction helpers ------------------------------------------------------------

    def _close(self, state: BookingState) -> None:
        """Leave the state's blocked agents out of every choice the engine makes (``qual``:
        slots, bookings, covers, bindings), while ``qual_set`` still lets them hold the calls
        bound to them. Their working minutes stay on the grid, so those bindings are not stale
        and the team's headcount is unchanged. ``qual`` may be the shared one of an
        :func:`org_index`: it is replaced, never changed in place."""
        self.closed: frozenset[int] = frozenset(
            self.apos[a] for a in state.blocked if a in self.apos
        )
        if self.closed:
            shut = np.fromiter(sorted(self.closed), np.int64, len(self.closed))
            self.qual = {cid: q[~np.isin(q, shut)] for cid, q in self.qual.items()}

    def _agent_windows(self, agent: Any) -> list[tuple[int, int]]:
        if agent.status is not AgentStatus.AVAILABLE:
            return []
        return working_windows(agent.shifts, agent.busy, self.origin, self.H)

    def _team_cap(self, teams: IntArray) -> npt.NDArray[np.int32]:
        head = self.head[teams].astype(np.float64)
        keep = np.ceil(head * self.team_share[teams, None] - 1e-9)
        return (head - keep).astype(np.int32)

    def _push(self, call: Call) -> int:
        k = len(self.calls)
        cap = self.caps[call.capability_id]
        s = max(0, to_minute(call.start, self.origin))
        e = to_minute_ceil(call.end, self.origin) + cap.buffer_minutes
        self.calls.append(call)
        self.call_pos[call.id] = k
        self.cap_of.append(call.capability_id)
        self.occ_s.append(s)
        self.occ_e.append(min(e, self.H))
        self.agent_of.append(-1)
        self.bound.append(False)
        # Over only once the wrap-up is: the agent is occupied until end + buffer.
        if e <= 0 or call.end + timedelta(minutes=cap.buffer_minutes) <= self.now:
            self.past.add(k)
        return k

    def _pop(self) -> None:
        k = len(self.calls) - 1
        assert self.agent_of[k] < 0
        call = self.calls.pop()
        del self.call_pos[call.id]
        for lst in (self.cap_of, self.occ_s, self.occ_e, self.agent_of, self.bound):
            lst.pop()
        self.past.discard(k)

    def flat_windows(self) -> tuple[IntArray, IntArray, IntArray]:
        if self._flat is None:
            owner = [i for i, ws in enumerate(self.windows) for _ in ws]
            spans = [span for ws in self.windows for span in ws]
            arr = np.array(spans, dtype=np.int64).reshape(-1, 2)
            self._flat = (np.array(owner, dtype=np.int64), arr[:, 0].copy(), arr[:, 1].copy())
        return self._flat

    def update_agent(self, i: int, agent: Any) -> None:
        """Agent ``i`` changed (shifts, busy time, status): redo their row and team headcount.

        Calls stay where they are; the caller finds those now on non-working minutes
        (grid value above ``NOT_WORKING``) and re-places them.
        """
        old, new = self.windows[i], self._agent_windows(agent)
        t = int(self.team_of[i])
        for s, e in old:
            self.head[t, s:e] -= 1
        for s, e in new:
            self.head[t, s:e] += 1
        row = self.grid[i]
        occupied = np.where(row >= NOT_WORKING, row - NOT_WORKING, row)
        row[:] = NOT_WORKING
        for s, e in new:
            row[s:e] = 0
        row += occupied
        self.windows[i] = new
        self._flat = None
        old_cap = self.team_cap[t].copy()
        self.team_cap[t] = self._team_cap(np.array([t]))[0]
        self.slack[t] += self.team_cap[t] - old_cap

    # --- the witness: journaled moves ------------------------------------------------------

    def _assign(self, k: int, a: int, log: bool = True) -> None:
        s, e = self.occ_s[k], self.occ_e[k]
        self.grid[a, s:e] += 1
        if k not in self.pinned:  # a wrap-up is not a call the team's reserve is counted on
            self.slack[self.team_of[a], s:e] -= 1
        bisect.insort(self.occ[a], (s, e, k))
        self.agent_of[k] = a
        if log:
            self.journal.append((1, k, a))

    def _unassign(self, k: int, log: bool = True) -> None:
        a = self.agent_of[k]
        s, e = self.occ_s[k], self.occ_e[k]
        self.grid[a, s:e] -= 1
        if k not in self.pinned:
            self.slack[self.team_of[a], s:e] += 1
        self.occ[a].remove((s, e, k))
        self.agent_of[k] = -1
        if log:
            self.journal.append((-1, k, a))

    def rollback(self, mark: int = 0) -> None:
        while len(self.journal) > mark:
            op, k, a = self.journal.pop()
            if op > 0:
                self._unassign(k, log=False)
            else:
                self._assign(k, a, log=False)

    def commit(self) -> None:
        self.journal.clear()

    def _can_hold(self, k: int, a: int) -> bool:
        """Agent ``a`` qualifies, works and is otherwise free for call ``k`` (reserve aside)."""
        s, e = self.occ_s[k], self.occ_e[k]
        return a in self.qual_set[self.cap_of[k]] and e > s and int(self.grid[a, s:e].max()) == 0

    def blockers(self, a: int, s: int, e: int) -> list[int]:
        """Calls whose occupancy on agent ``a`` overlaps ``[s, e)``."""
        lst = self.occ[a]
        i = max(0, bisect.bisect_left(lst, (s, -1, -1)) - 1)
        out = []
        while i < len(lst) and lst[i][0] < e:
            if lst[i][1] > s:
                out.append(lst[i][2])
            i += 1
        return out

    def team_ok(self, agents: IntArray, s: int, e: int) -> npt.NDArray[np.bool_]:
        return np.asarray(self.slack[self.team_of[agents], s:e].min(axis=1) >= 1)

    def place(
        self,
        k: int,
        depth: int,
        budget: list[int],
        frozen: frozenset[int] = frozenset(),
        *,
        allow_bound: bool = False,
        prefer: Sequence[int] = (),
        avoid: frozenset[int] = frozenset(),
        stuck: dict[int, bool] | None = None,
    ) -> bool:
        """Give call ``k`` an agent, moving at most ``depth`` levels of other calls (journaled).

        ``prefer``: agents to take first when directly free; ``avoid``: agents not to use.
        Bound calls move only with ``allow_bound`` (disruption repair's last resort).
        ``stuck`` (top level, depth 1 only): memo of "this call has no free agent to move to",
        a pure function of the grid as it is before the search, so many probes of one query
        share it and a booking's identical first probe prunes exactly the same options.
        """
        budget[0] -= 1
        if budget[0] < 0:
            return False
        s, e = self.occ_s[k], self.occ_e[k]
        q = self.qual[self.cap_of[k]]
        if e <= s or q.size == 0:
            return False
        m = self.grid[q, s:e].max(axis=1)
        free = q[m == 0]
        if avoid and free.size:
            free = free[[int(a) not in avoid for a in free]]
        if free.size:
            free = free[self.team_ok(free, s, e)]
        if free.size:
            chosen = -1
            if prefer:
                fs = set(free.tolist())
                chosen = next((p for p in prefer if p in fs), -1)
            if chosen < 0:
                chosen = int(free[np.argmin(self.value[free])])
            self._assign(k, chosen)
            return True
        if depth <= 0:
            return False
        # Working but taken: try the least valuable agents first, fewest calls to move first.
        # Blockers are looked up lazily: listing them for every agent costs more than the search.
        taken = q[(m > 0) & (m < NOT_WORKING)]
        taken = taken[np.argsort(self.value[taken], kind="stable")]
        options = []
        for a in taken.tolist():
            if a in avoid:
                continue
            bl = self.blockers(a, s, e)
            if any(
                x in frozen or x in self.pinned or (self.bound[x] and not allow_bound) for x in bl
            ):
                continue
            if stuck is not None and depth == 1 and any(self._stuck(x, stuck) for x in bl):
                continue
            options.append((len(bl), self.value[a], a, bl))
            if len(options) >= 2 * MAX_BRANCH:
                break
        options.sort(key=lambda o: (o[0], o[1], o[2]))
        inner = frozen | {k}
        for _n, _v, a, bl in options[:MAX_BRANCH]:
            mark = len(self.journal)
            for x in bl:
                self._unassign(x)
            if int(self.slack[self.team_of[a], s:e].min()) < 1:
                self.rollback(mark)
                continue
            self._assign(k, a)
            if all(
                self.place(x, depth - 1, budget, inner, allow_bound=allow_bound, avoid=avoid)
                for x in bl
            ):
                return True
            self.rollback(mark)
            if budget[0] < 0:
                return False
        return False

    def _stuck(self, x: int, memo: dict[int, bool]) -> bool:
        hit = memo.get(x)
        if hit is None:
            q = self.qual[self.cap_of[x]]
            xs, xe = self.occ_s[x], self.occ_e[x]
            free = (self.grid[q, xs:xe].max(axis=1) == 0) & (q != self.agent_of[x])
            hit = memo[x] = not bool(free.any())
        return hit

    def admit(self, k: int) -> bool:
        """Place new call ``k``: first exactly as an open-slots probe does, then deeper."""
        if self.place(k, PROBE_DEPTH, [ADMIT_BUDGET], stuck={}):
            return True
        self.rollback(0)
        return self.place(k, SEARCH_DEPTH, [ADMIT_BUDGET])

    # --- open slots, vectorized -------------------------------------------------------------

    def open_mask(self, cap_id: str, cand: IntArray, length: int) -> npt.NDArray[np.bool_]:
        """Which candidate starts (minutes) can take one more call of ``cap_id``."""
        q = self.qual[cap_id]
        n_q, n_c = q.size, cand.size
        self.last_diagnosis = "no_agent_working"
        if n_q == 0 or n_c == 0:
            return np.zeros(n_c, dtype=bool)
        rowpos = np.full(self.n, -1, dtype=np.int64)
        rowpos[q] = np.arange(n_q)

        owner, ws, we = self.flat_windows()
        r = rowpos[owner]
        sel = r >= 0
        lo = np.searchsorted(cand, ws[sel], "left")
        hi = np.searchsorted(cand, we[sel] - length, "right")
        cal = range_counts(r[sel], lo, hi, n_q, n_c)

        agent_of = np.asarray(self.agent_of, dtype=np.int64)
        placed = agent_of >= 0
        r = np.where(placed, rowpos[np.where(placed, agent_of, 0)], -1)
        sel = r >= 0
        os_ = np.asarray(self.occ_s, dtype=np.int64)[sel]
        oe_ = np.asarray(self.occ_e, dtype=np.int64)[sel]
        lo = np.searchsorted(cand, os_ - length, "right")
        hi = np.searchsorted(cand, oe_, "left")
        occ = range_counts(r[sel], lo, hi, n_q, n_c)
        fixed = np.asarray(self.bound, dtype=bool)[sel]
        imm = range_counts(r[sel][fixed], lo[fixed], hi[fixed], n_q, n_c)

        teams, inverse = np.unique(self.team_of[q], return_inverse=True)
        bad = np.zeros((teams.size, self.H + 1), dtype=np.int32)
        np.cumsum(self.slack[teams] <= 0, axis=1, out=bad[:, 1:])
        tok = (bad[:, cand + length] - bad[:, cand]) == 0
        team_rows = tok[inverse]

        works = cal > 0
        self.last_diagnosis = (
            "no_agent_working"
            if not works.any()
            else "reserve"
            if not (works & (occ == 0) & team_rows).any() and (works & (occ == 0)).any()
            else "fully_booked"
        )
        ok = (works & (occ == 0) & team_rows).any(axis=0)
        maybe = ~ok & (works & (occ > 0) & (imm == 0)).any(axis=0)
        stuck: dict[int, bool] = {}  # shared by the probes: the grid is the same for each
        for i in np.flatnonzero(maybe).tolist():
            ok[i] = self.probe(cap_id, int(cand[i]), int(cand[i]) + length, stuck)
        return np.asarray(ok, dtype=bool)

    def probe(self, cap_id: str, s: int, e: int, stuck: dict[int, bool] | None = None) -> bool:
        """Could a call of ``cap_id`` occupying ``[s, e)`` be added? Leaves nothing behind."""
        k = len(self.calls)
        self.calls.append(_PROBE)
        self.cap_of.append(cap_id)
        self.occ_s.append(s)
        self.occ_e.append(e)
        self.agent_of.append(-1)
        self.bound.append(False)
        try:
            return self.place(k, PROBE_DEPTH, [ADMIT_BUDGET], stuck={} if stuck is None else stuck)
        finally:
            self.rollback(0)
            self.calls.pop()
            for lst in (self.cap_of, self.occ_s, self.occ_e, self.agent_of, self.bound):
                lst.pop()

    def why_not(self, cap_id: str, s: int, e: int) -> Reason:
        q = self.qual[cap_id]
        m = self.grid[q, s:e].max(axis=1)
        working = m < NOT_WORKING
        free = q[m == 0]
        when = f"{_hm(self.origin, s)}–{_hm(self.origin, e)} UTC"
        if not working.any():
            return Reason(
                "no_agent_working",
                f"none of the {q.size} qualified agents works the whole of {when}",
            )
        if free.size and not self.team_ok(free, s, e).any():
            return Reason(
                "reserve",
                f"the qualified agents free at {when} are kept for ticket work (team reserve)",
                float(free.size),
            )
        n = int(working.sum())
        held = q[working & (m > 0)].tolist()
        if all(any(self.bound[x] for x in self.blockers(a, s, e)) for a in held):
            return Reason(
                "fully_booked",
                f"each of the {n} qualified agents working at {when} holds a call then that "
                "is already bound to them (or over and in its wrap-up)",
                float(n),
            )
        # The search is bounded (depth and budget): a rearrangement it did not try might fit.
        return Reason(
            "fully_booked",
            f"could not confirm cover for {when} within the search limit: the {n} qualified "
            "agents working then hold calls already booked, and no way to move those calls "
            "to make room was found",
            float(n),
        )

    # --- views -------------------------------------------------------------------------------

    def witness(self) -> dict[str, str | None]:
        return {
            c.id: (self.agent_ids[a] if (a := self.agent_of[k]) >= 0 else None)
            for k, c in enumerate(self.calls)
            if k not in self.past
        }

    def unplaced(self) -> list[int]:
        return [k for k in range(len(self.calls)) if k not in self.past and self.agent_of[k] < 0]

    def minute(self, moment: datetime) -> int:
        return to_minute(moment, self.origin)


class _Probe:
    id = "__probe__"


_PROBE: Any = _Probe()


def _hm(origin: datetime, minute: int) -> str:
    return (origin + timedelta(minutes=minute)).strftime("%Y-%m-%d %H:%M")


def range_counts(
    rows: IntArray, lo: IntArray, hi: IntArray, n_rows: int, n_cols: int
) -> npt.NDArray[np.int64]:
    """counts[r, c] = how many (row r, [lo, hi)) ranges contain column c."""
    valid = hi > lo
    rows, lo, hi = rows[valid], lo[valid], hi[valid]
    width = n_cols + 1
    size = n_rows * width
    diff = np.bincount(rows * width + lo, minlength=size) - np.bincount(
        rows * width + hi, minlength=size
    )
    return np.cumsum(diff.reshape(n_rows, width), axis=1)[:, :n_cols]


# --- the state's index: built once, handed over ----------------------------------------------


def index_of(state: BookingState, need_end: datetime | None = None) -> BookingIndex:
    """The state's index, built on first use (or when a query reaches past its grid)."""
    idx = state.booking_index
    hint = None
    if idx is not None and need_end is not None and to_minute_ceil(need_end, idx.origin) >= idx.H:
        hint, idx = idx.witness(), None  # a longer grid, the same cover
    if idx is None:
        idx = BookingIndex(state, need_end, hint)
        state.keep_index(idx)
    idx.now = state.now
    return idx


def org_index(state: BookingState, grid_end: datetime) -> BookingIndex:
    """The organisation part of an index — agents' working minutes, team headcounts and
    reserves, who qualifies for what — for ``state`` (which must hold no calls), with a grid
    reaching ``grid_end``: the base :func:`index_from` starts from.

    It is what a service caches while the organisation is unchanged. Its arrays are made
    read-only: it is shared by every index derived from it, and must never change.
    """
    if state.calls:
        raise ProblemError("calls", "an organisation index holds no calls")
    if state.blocked:  # who is blocked is applied per state, on top of the shared part
        raise ProblemError("blocked", "an organisation index blocks nobody")
    base = BookingIndex(state, grid_end=grid_end)
    shared: list[npt.NDArray[Any]] = [base.grid, base.head, base.team_cap, base.slack]
    shared += [base.team_of, base.team_share, base.value, *base.qual.values()]
    for arr in shared:
        arr.flags.writeable = False
    return base


def index_from(base: BookingIndex, state: BookingState) -> BookingIndex:
    """Attach to ``state`` the index :func:`index_of` would build for it, starting from
    ``base`` (an :func:`org_index`) instead of from the agents: its organisation part is copied
    and moved to ``state.now``, and only the calls are placed. The result equals a fresh build.

    ``base`` is used only when it describes exactly ``state``'s organisation — the *same*
    ``agents`` tuple (identity: the caller keeps it with the base), equal capabilities and team
    reserves — starting no later than ``state.now`` and reaching as far as ``state``'s grid;
    otherwise the index is built from the agents as usual (slower, same answer).
    """
    idx = BookingIndex(state, base=base)
    state.keep_index(idx)
    return idx


def hand_over(old: BookingState, new: BookingState, idx: BookingIndex) -> None:
    """Move ``idx`` (already updated to match ``new``) from ``old`` to ``new``."""
    old.keep_index(None)
    new.keep_index(idx)
    idx.now = new.now


def advance(state: BookingState, now: datetime) -> BookingState:
    """The same state at a later moment, keeping the index (nothing in it depends on now)."""
    new = state.with_now(now)
    idx = state.booking_index
    if idx is not None:
        hand_over(state, new, idx)
    return new
