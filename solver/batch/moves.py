"""The churn guard: a ticket its owner could keep changes hands only when that saves an SLA.

Reassigning work an agent already holds is one of the things this product exists to prevent,
yet the objective prices a move at ``ObjectiveWeights.churn`` (60) while load balance, expertise
waste and lateness are priced per ticket: left alone, the flow and the search move owned tickets
to shave a few load units. This post-pass makes every move earn its place.

Why a post-pass rather than a higher churn weight: pricing a move at 1,000-3,000 in the
objective also holds churn down, but the search then cannot pass through moves on its way to a
better plan, and it loses more lateness (tight M, figures in benchmarks/README.md); here the
search explores freely and only the moves that pay for themselves stay.

A *move* is an owned ticket, in its owner's *keep set*, that ends with another agent or the team
queue. The keep set (:func:`keep_set`) is, per owner, the owned tickets the owner is qualified
and available for, as many as fit together in the owner's free slots, working minutes and
channel caps (highest priority, earliest deadline first); an owned ticket outside it must move
whatever we do (its owner is away, unqualified or full) and is *forced*, not counted.

For each move, :func:`guard` prices its *revert*: the ticket back on its owner at the best
position, and, when the owner has no room, one of the owner's other (not-owned-by-them) tickets
handed to the agent the ticket went to (or to the queue), whichever is cheapest. A move's
*value* is the SLA cost (breach penalties, priority-weighted lateness and unassigned penalties,
in objective units) its revert would add — what the move saves. Moves worth less than
``min_saving`` (:meth:`~solver.batch.params.BatchParams.min_move_saving`) are reverted; with
``max_moves`` the least valuable are reverted until the budget holds. Reverts are
applied greedily in ascending value, each value re-priced on the current plan before it is
acted on. A revert never creates a new move (it only evicts tickets not owned by that agent),
so the count falls with each one and any budget, 0 included, is met. The plan stays valid:
every revert checks slots, working minutes and channel caps, and qualification is the pair list.
"""

from __future__ import annotations

import heapq
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from solver.batch.data import BatchData, IntArray
from solver.batch.localsearch import Batch, exchange_rows, insert_rows
from solver.batch.state import State, price

# How often one move's value may be re-priced (it changed since it was queued) before the
# guard takes the fresh value as final: bounds the lazy greedy's work.
_MAX_REPRICE = 4


@dataclass(frozen=True, slots=True)
class Move:
    """An owned ticket kept away from its owner, and the SLA cost that saves."""

    ticket: int
    owner: int
    agent: int  # -1: the team queue
    value: int  # SLA cost (objective units) its revert would add
    saves: tuple[tuple[int, int], ...]  # (ticket, SLA cost saved), largest first


@dataclass(frozen=True, slots=True)
class Guarded:
    """The guarded plan: sequences, the moves it keeps, forced moves, reverts made."""

    sequences: dict[int, list[int]]
    moves: dict[int, Move]  # by ticket
    forced: tuple[int, ...]  # owned tickets their owner cannot hold (not counted)
    reverted: int

    @property
    def moved(self) -> int:
        return len(self.moves)


@dataclass(frozen=True, slots=True)
class _Revert:
    new: dict[int, list[int]]  # agent -> new sequence
    left: list[int]  # tickets sent to the queue
    value: int  # SLA cost it adds (negative: it saves)


def keep_set(data: BatchData) -> tuple[IntArray, IntArray]:
    """Owned tickets their owner can keep all together, and the forced ones (sorted rows).

    Per owner, candidates are the owned tickets qualified for the owner (a pair exists: skills,
    availability, room for the ticket alone, team scope), taken highest priority weight first,
    then earliest resolution deadline, then row, while they fit the owner's free slots, working
    minutes and channel caps together.
    """
    owner = data.owner
    owned = np.flatnonzero(owner >= 0)
    if len(owned) == 0:
        z = np.zeros(0, dtype=np.int64)
        return z, z
    n_a = max(1, data.n_agents)
    want = owned * n_a + owner[owned]
    keys = data.pair_key
    idx = np.minimum(np.searchsorted(keys, want), max(0, len(keys) - 1))
    has_pair = keys[idx] == want if len(keys) else np.zeros(len(owned), dtype=bool)
    cand = owned[has_pair]
    order = np.lexsort((cand, data.res_due[cand], -data.pw[cand], owner[cand]))
    cand = cand[order]
    keep: list[int] = []
    held: dict[int, list[int]] = {}
    minutes: dict[int, int] = {}
    for t in cand.tolist():
        o = int(owner[t])
        mine = held.setdefault(o, [])
        used = minutes.get(o, int(data.backlog[o]))
        eff = int(data.effort[t])
        if (
            len(mine) + 1 <= int(data.slots[o])
            and used + eff <= int(data.total[o])
            and data.channel_fits(o, mine, t)
        ):
            mine.append(t)
            minutes[o] = used + eff
            keep.append(t)
    keep_arr = np.asarray(sorted(keep), dtype=np.int64)
    forced = np.setdiff1d(owned, keep_arr).astype(np.int64)
    return keep_arr, forced


class _Guard:
    def __init__(
        self, data: BatchData, sequences: Mapping[int, Sequence[int]], keep: IntArray
    ) -> None:
        self.data = data
        self.in_keep = np.zeros(data.n_tickets, dtype=bool)
        self.in_keep[keep] = True
        self.state = State(data, {a: list(s) for a, s in sequences.items()})
        self.n_a = max(1, data.n_agents)
        self.unassigned = data.weights.unassigned * data.pw

    # -- feasibility and pricing --------------------------------------------------------------
    def _room(self, a: int, seq: Sequence[int]) -> bool:
        d = self.data
        if len(seq) > int(d.slots[a]):
            return False
        if int(d.backlog[a]) + int(d.effort[list(seq)].sum()) > int(d.total[a]):
            return False
        return d.channel_ok(a, list(seq))

    def _qualified(self, t: int, a: int) -> bool:
        keys = self.data.pair_key
        if len(keys) == 0:
            return False
        want = t * self.n_a + a
        i = int(np.searchsorted(keys, want))
        return i < len(keys) and int(keys[i]) == want

    def _pain(self, a: int, seq: Sequence[int]) -> int:
        if not seq:
            return 0
        b = Batch(self.data)
        b.add(a, np.asarray(seq, dtype=np.int64)[None, :])
        return int(b.late()[0][0])

    def _best_insert(self, a: int, base: list[int], x: int) -> tuple[list[int], int]:
        """``base`` with ``x`` at its cheapest position on ``a``, and that sequence's pain."""
        rows = insert_rows(np.asarray(base, dtype=np.int64), np.asarray([x], dtype=np.int64))[0]
        b = Batch(self.data)
        b.add(a, rows)
        late = b.late()[0]
        p = int(np.argmin(late))
        return rows[p].tolist(), int(late[p])

    # -- a move's revert ----------------------------------------------------------------------
    def revert(self, t: int) -> _Revert | None:
        """The cheapest way to put ``t`` back on its owner; None when none fits."""
        st, d = self.state, self.data
        o, b = int(d.owner[t]), int(st.agent_of[t])
        seq_o = list(st.seq(o))
        pain_o = st.pain.get(o, 0)
        if b >= 0:
            b_without = [x for x in st.seq(b) if x != t]
            pain_b_without = self._pain(b, b_without)
            base_b = st.pain.get(b, 0)
        else:
            b_without, pain_b_without, base_b = [], 0, int(self.unassigned[t])
        options: list[_Revert] = []
        # 1. Room on the owner: just put it back.
        if self._room(o, [*seq_o, t]):
            new_o, p = self._best_insert(o, seq_o, t)
            new = {o: new_o} if b < 0 else {o: new_o, b: b_without}
            options.append(_Revert(new, [], p + pain_b_without - pain_o - base_b))
        # 2. Swap out one ticket the owner holds for someone else: it takes t's place on b.
        if seq_o:
            arr_o = np.asarray(seq_o, dtype=np.int64)
            evictable = d.owner[arr_o] != o
            if evictable.any():
                n = len(arr_o)
                rows = exchange_rows(arr_o, np.full(n, t, dtype=np.int64))  # (n, n, n)
                batch = Batch(d)
                batch.add(o, rows)
                late = batch.late()[0].reshape(n, n)
                for i in np.flatnonzero(evictable).tolist():
                    u = int(arr_o[i])
                    j = int(np.argmin(late[i]))
                    new_o = rows[i, j].tolist()
                    if not self._room(o, new_o):
                        continue
                    if b >= 0 and self._qualified(u, b) and self._room(b, [*b_without, u]):
                        new_b, pb = self._best_insert(b, b_without, u)
                        value = int(late[i, j]) + pb - pain_o - base_b
                        options.append(_Revert({o: new_o, b: new_b}, [], value))
                    new = {o: new_o} if b < 0 else {o: new_o, b: b_without}
                    value = int(late[i, j]) + pain_b_without + int(self.unassigned[u])
                    options.append(_Revert(new, [u], value - pain_o - base_b))
        if not options:
            # 3. Minutes or a channel cap bind: send the owner's largest other tickets to the
            # queue until t fits (its own owned tickets go last).
            rest = sorted(
                (x for x in seq_o if not (self.in_keep[x] and int(d.owner[x]) == o)),
                key=lambda x: (int(d.owner[x]) == o, -int(d.effort[x]), x),
            )
            keep = list(seq_o)
            left: list[int] = []
            for u in rest:
                if self._room(o, [*keep, t]):
                    break
                keep.remove(u)
                left.append(u)
            if not self._room(o, [*keep, t]):
                return None
            new_o, p = self._best_insert(o, keep, t)
            new = {o: new_o} if b < 0 else {o: new_o, b: b_without}
            value = p + pain_b_without + int(self.unassigned[left].sum()) - pain_o - base_b
            options.append(_Revert(new, left, value))
        return min(options, key=lambda r: (r.value, len(r.left)))

    def apply(self, r: _Revert) -> None:
        self.state.commit(r.new, r.left)

    def saves(self, t: int, r: _Revert) -> tuple[tuple[int, int], ...]:
        """The tickets whose SLA cost the revert ``r`` of move ``t`` would raise, most first."""
        st, d = self.state, self.data
        before: dict[int, int] = {}
        for a in r.new:
            for x, v in zip(st.seq(a), st.late_of.get(a, []), strict=True):
                before[x] = v
        if st.agent_of[t] < 0:
            before[t] = int(self.unassigned[t])
        _, _, late = price(d, r.new)
        after: dict[int, int] = {}
        for a, seq in r.new.items():
            after.update(zip(seq, late[a], strict=True))
        for u in r.left:
            after[u] = int(self.unassigned[u])
        gain = [(x, after.get(x, 0) - before.get(x, 0)) for x in sorted(set(before) | set(after))]
        return tuple(sorted(((x, g) for x, g in gain if g > 0), key=lambda p: (-p[1], p[0])))


def guard(
    data: BatchData,
    sequences: Mapping[int, Sequence[int]],
    max_moves: int | None = None,
    deadline: float | None = None,
    min_saving: int = 1,
) -> Guarded:
    """Revert the moves that save less than ``min_saving`` of SLA cost, then the least
    valuable beyond ``max_moves``.

    ``deadline`` (a ``perf_counter`` value) stops reverting moves that are merely worthless once
    passed; the budget is enforced regardless, so the result always respects ``max_moves``.
    """
    keep, forced = keep_set(data)
    g = _Guard(data, sequences, keep)
    st = g.state
    owner = data.owner

    def moved() -> IntArray:
        return keep[st.agent_of[keep] != owner[keep]] if len(keep) else keep

    budget = len(keep) if max_moves is None else max(0, max_moves)
    heap: list[tuple[int, int, int]] = []  # (value, ticket, times priced)
    for t in moved().tolist():
        r = g.revert(t)
        if r is not None:
            heap.append((r.value, t, 1))
    heapq.heapify(heap)
    reverted = 0
    n_moved = len(moved())
    while heap:
        value, t, priced = heapq.heappop(heap)
        if int(st.agent_of[t]) == int(owner[t]):
            continue  # an earlier revert put it back
        over = n_moved > budget
        late = deadline is not None and time.perf_counter() > deadline
        if value >= min_saving and not over:
            # Ascending values: every move left is worth keeping by its last price. Re-price
            # the rest once below, since reverts since then may have made one worthless.
            heapq.heappush(heap, (value, t, priced))
            break
        if late and not over:
            break
        r = g.revert(t)
        if r is None:
            continue
        if r.value != value and priced < _MAX_REPRICE:
            heapq.heappush(heap, (r.value, t, priced + 1))
            continue
        if r.value >= min_saving and not over:
            heapq.heappush(heap, (r.value, t, priced))
            continue
        g.apply(r)
        reverted += 1
        n_moved = len(moved())
    # One more look at the moves kept: a revert may have made one worthless.
    if deadline is None or time.perf_counter() <= deadline:
        for t in moved().tolist():
            r = g.revert(t)
            if r is not None and r.value < min_saving:
                g.apply(r)
                reverted += 1
    kept: dict[int, Move] = {}
    for t in moved().tolist():
        r = g.revert(t)
        value = r.value if r is not None else 0
        saves = g.saves(t, r) if r is not None else ()
        kept[t] = Move(t, int(owner[t]), int(st.agent_of[t]), value, saves)
    return Guarded(st.sequences(), kept, tuple(forced.tolist()), reverted)
