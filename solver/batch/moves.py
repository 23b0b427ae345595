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
handed to the agent the ticket went to, to a third agent with room, or to the queue, whichever
is cheapest. Tickets reverts sent to the queue are seated again at the end where that is
cheaper than the queue (:meth:`_Guard.reseat`: an agent with room, or an ejection that frees
one). Before evictions could go to a third agent, a dense queue with room to spare lost 100
seats to reverts (1,000 agents x 10,000 tickets, 2.6 M pairs); then about 14, each because
seating it anywhere cost more lateness than the queue, or nobody qualified had room.

With ``seat_first`` (the optimizer's ``keep_seated``) a revert never trades a seat for a move
where a seat can be kept: the evicted ticket goes to the queue only when no other agent has
room for it, and, where queueing it would lose a seat (the slot the move's ticket leaves can
seat no ticket already queued), only when no ejection makes room either (one or several of a
qualified agent's tickets handed to agents with room; never a ticket away from its owner). A
move whose only seat-keeping revert costs more than it saves stands, priced at that revert.
Last, tickets queued before the guard take the room reverts freed where that is cheaper than
the queue. On the loose dense queue the guard then loses 0-2 seats (14 before); on a tight
one, where a queued ticket can take nearly any freed slot, the ejections are rare. (Seating
revert-queued tickets *at any price* kept 15 more seats on tight M but gave up 3 points of its
lateness gain, below the 90 % target: not done.) A move's
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

from solver.batch.data import BatchData, BoolArray, IntArray
from solver.batch.localsearch import Batch, exchange_rows, insert_rows
from solver.batch.repair import (
    Ejections,
    best_ejection,
    best_multi_ejection,
    ejections,
    pair_rows,
    ticket_pair_ptr,
)
from solver.batch.state import State, price

# How often one move's value may be re-priced (it changed since it was queued) before the
# guard takes the fresh value as final: bounds the lazy greedy's work.
_MAX_REPRICE = 4
# A ticket a revert evicts goes to the cheapest agent with room: how many candidates (ranked by
# their lower-bound cost) are priced exactly.
_ELSEWHERE_PRICED = 3
# A revert evicting one of the owner's tickets tries this many of them (those leaving the owner
# least late) with a third agent before it considers the queue.
_ELSEWHERE_EVICTIONS = 2


@dataclass(frozen=True, slots=True)
class Move:
    """An owned ticket kept away from its owner, and the SLA cost that saves."""

    ticket: int
    owner: int
    agent: int  # -1: the team queue
    value: int  # SLA cost (objective units) its revert would add
    saves: tuple[tuple[int, int], ...]  # (ticket, SLA cost saved), largest first
    priced: bool = True  # False: the guard ran out of time before pricing it


@dataclass(frozen=True, slots=True)
class Guarded:
    """The guarded plan: sequences, the moves it keeps, forced moves, reverts made."""

    sequences: dict[int, list[int]]
    moves: dict[int, Move]  # by ticket
    forced: tuple[int, ...]  # owned tickets their owner cannot hold (not counted)
    reverted: int
    unpriced: int = 0  # moves that stand because the guard ran out of time before them

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
        self.count = np.zeros(data.n_agents, dtype=np.int64)
        for a, seq in self.state.seqs.items():
            self.count[a] = len(seq)
        self.ptr = ticket_pair_ptr(data)
        # Tickets queued before the guard, by the agents qualified for them (:meth:`_refills`):
        # a revert that takes a ticket away from such an agent and queues another loses no
        # seat where one of them fits the room it frees (the guard's last pass seats it), so it
        # needs no ejection. On a tight queue that is nearly every agent; with room to spare,
        # few.
        queued = np.flatnonzero(self.state.agent_of < 0)
        rows = pair_rows(self.ptr, queued)
        by_agent = np.argsort(data.pair_agent[rows], kind="stable")
        self._waiting = data.pair_ticket[rows][by_agent]  # queued tickets, by qualified agent
        self._waiting_ptr = np.searchsorted(
            data.pair_agent[rows][by_agent], np.arange(data.n_agents + 1)
        )
        # (ticket, agents left alone) -> (agent, [(ticket moved, to agent)]): see _eject_fresh.
        self._ejected: dict[tuple[int, ...], tuple[int, list[tuple[int, int]]]] = {}

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

    def _refills(self, b: int, t: int) -> bool:
        """Whether a ticket queued before the guard, still queued, could take the room ``t``
        leaving ``b`` frees (its minutes; channel caps aside: a cheap test)."""
        d = self.data
        waiting = self._waiting[self._waiting_ptr[b] : self._waiting_ptr[b + 1]]
        if len(waiting) == 0:
            return False
        free = int(d.total[b]) - int(self.state.work[b]) + int(d.effort[t])
        return bool(((self.state.agent_of[waiting] < 0) & (d.effort[waiting] <= free)).any())

    def _has_room(self, u: int, skip: tuple[int, ...]) -> bool:
        """Whether an agent (not in ``skip``) qualified for ``u`` has a free slot and the
        minutes for it (channel caps aside: a cheap test, not a placement)."""
        d = self.data
        ag = d.pair_agent[self.ptr[u] : self.ptr[u + 1]]
        fits = (self.count[ag] < d.slots[ag]) & (self.state.work[ag] + d.effort[u] <= d.total[ag])
        for a in skip:  # one or two agents: plain comparisons beat np.isin's sort
            fits &= ag != a
        return bool(fits.any())

    def _elsewhere(
        self, u: int, skip: tuple[int, ...], priced: int = _ELSEWHERE_PRICED
    ) -> tuple[int, list[int], int] | None:
        """The agent (not in ``skip``) with room that takes ``u`` cheapest, ``u``'s place in
        their sequence and the SLA cost that adds; None when nobody has room.

        Candidates are ranked by pair cost plus load marginal (a lower bound), and the first
        few that fit (slots, minutes, channel caps) are priced exactly."""
        d, st = self.data, self.state
        rows = np.arange(self.ptr[u], self.ptr[u + 1])
        ag = d.pair_agent[rows]
        fits = (self.count[ag] < d.slots[ag]) & (st.work[ag] + d.effort[u] <= d.total[ag])
        for a in skip:
            fits &= ag != a
        if not fits.any():
            return None
        rows, ag = rows[fits], ag[fits]
        load = d.weights.load * (2 * (d.open_tickets[ag] + self.count[ag]) + 1)
        rank = d.pair_static[rows] + d.pair_late_lb[rows] + load
        best: tuple[int, list[int], int] | None = None
        tried = 0
        for i in np.argsort(rank, kind="stable").tolist():
            c = int(ag[i])
            seq_c = st.seq(c)
            if not d.channel_fits(c, seq_c, u):
                continue
            new_c, p = self._best_insert(c, list(seq_c), u)
            added = p - st.pain.get(c, 0)
            if best is None or added < best[2]:
                best = (c, new_c, added)
            tried += 1
            if tried >= priced:
                break
        return best

    def _best_insert(self, a: int, base: list[int], x: int) -> tuple[list[int], int]:
        """``base`` with ``x`` at its cheapest position on ``a``, and that sequence's pain."""
        rows = insert_rows(np.asarray(base, dtype=np.int64), np.asarray([x], dtype=np.int64))[0]
        b = Batch(self.data)
        b.add(a, rows)
        late = b.late()[0]
        p = int(np.argmin(late))
        return rows[p].tolist(), int(late[p])

    # -- a move's revert ----------------------------------------------------------------------
    def revert(self, t: int, seat_first: bool = False) -> _Revert | None:
        """The cheapest way to put ``t`` back on its owner; None when none fits.

        With ``seat_first`` a revert sends one of the owner's tickets to the queue only when no
        other agent has room for it: where there is room a seat is not traded for a move.
        """
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
                queued_options: list[tuple[int, int, list[int]]] = []  # (late, u, new_o)
                stuck: list[tuple[int, int, list[int]]] = []  # nobody else has room for u
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
                    if not seat_first:
                        value = int(late[i, j]) + pain_b_without + int(self.unassigned[u])
                        options.append(_Revert(new, [u], value - pain_o - base_b))
                    elif not self._has_room(u, (o, b)):
                        stuck.append((int(late[i, j]), u, new_o))
                    queued_options.append((int(late[i, j]), u, new_o))
                # Rather than queue u, hand it to a third agent with room: no seat lost. Priced
                # for the evictions that leave the owner least late (exact pricing is what
                # costs here).
                for late_o, u, new_o in sorted(queued_options)[:_ELSEWHERE_EVICTIONS]:
                    elsewhere = self._elsewhere(u, (o, b), priced=1)
                    if elsewhere is not None:
                        c, new_c, added = elsewhere
                        new = {o: new_o, c: new_c} if b < 0 else {o: new_o, b: b_without, c: new_c}
                        value = late_o + pain_b_without + added - pain_o - base_b
                        options.append(_Revert(new, [], value))
                # With ``seat_first``, where queueing u (nobody else has room for it) would
                # lose a seat — t leaves b's slot and no queued ticket can take it — u goes
                # to an agent who hands one or several tickets to agents with room (an
                # ejection: no owned ticket moved); only when none exists is u queued. (Letting
                # the move stand instead kept one more seat on the loose dense queue but
                # raised tight M's churn from 78 to 91 against least-loaded's 88.)
                if b < 0 or self._refills(b, t):
                    stuck_ejections = []  # the queue is no seat lost: see __init__
                else:
                    stuck_ejections = sorted(stuck)[:_ELSEWHERE_EVICTIONS]
                seated_by_ejection = False
                for late_o, u, new_o in stuck_ejections:
                    ejected = self._eject_fresh(u, (o, b))
                    if ejected is not None:
                        moved_to, pain_added, _ = ejected
                        new = {o: new_o, **moved_to}
                        if b >= 0:
                            new[b] = b_without
                        value = late_o + pain_b_without + pain_added - pain_o - base_b
                        options.append(_Revert(new, [], value))
                        seated_by_ejection = True
                if not seated_by_ejection:
                    for late_o, u, new_o in stuck:
                        new = {o: new_o} if b < 0 else {o: new_o, b: b_without}
                        value = late_o + pain_b_without + int(self.unassigned[u])
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
            if seat_first and any(self._has_room(u, (o, b)) for u in left):
                return None
            new_o, p = self._best_insert(o, keep, t)
            new = {o: new_o} if b < 0 else {o: new_o, b: b_without}
            value = p + pain_b_without + int(self.unassigned[left].sum()) - pain_o - base_b
            options.append(_Revert(new, left, value))
        if not options:
            return None
        return min(options, key=lambda r: (r.value, len(r.left)))

    def apply(self, r: _Revert) -> None:
        self.state.commit(r.new, r.left)
        for a, seq in r.new.items():
            self.count[a] = len(seq)

    def _eject(
        self, u: int, ej: Ejections, touched: BoolArray, floor: int | None
    ) -> tuple[dict[int, list[int]], int, int] | None:
        """Seat queued ``u`` by an ejection (:meth:`_find_ejection`) priced exactly: the new
        sequences, the SLA cost they add, and the whole objective they add (SLA cost, pair
        costs and load); or None."""
        found = self._find_ejection(u, ej, touched, floor)
        return None if found is None else self._price_ejection(u, *found)

    def _find_ejection(
        self, u: int, ej: Ejections, touched: BoolArray, floor: int | None
    ) -> tuple[int, list[tuple[int, int]]] | None:
        """An ejection of one ticket (:func:`best_ejection`), else of several
        (:func:`best_multi_ejection`), that seats ``u``: ``(a, [(v, c), ...])``, or None."""
        d, st = self.data, self.state
        moves: list[tuple[int, int]]
        best = best_ejection(d, st.agent_of, u, self.ptr, ej, touched, floor)
        if best is not None:
            _, a, v, c = best
            moves = [(v, c)]
        else:
            multi = best_multi_ejection(d, st.agent_of, u, self.ptr, ej, touched, floor)
            if multi is None:
                return None
            _, a, moves = multi
        if not all(d.channel_fits(c, st.seq(c), v) for v, c in moves):
            return None
        return a, moves

    def _price_ejection(
        self, u: int, a: int, moves: Sequence[tuple[int, int]]
    ) -> tuple[dict[int, list[int]], int, int]:
        """``u`` to ``a`` and each ``(v, c)`` of ``moves`` from ``a`` to ``c``, priced exactly
        on the current plan (the caller has checked that it fits)."""
        d, st = self.data, self.state
        gone = {v for v, _ in moves}
        seq_a = st.seq(a)
        new_a, pain_a = self._best_insert(a, [x for x in seq_a if x not in gone], u)
        new = {a: new_a}
        pain = pain_a - st.pain.get(a, 0)
        other = self._static(u, a) + d.load_cost(a, len(new_a)) - d.load_cost(a, len(seq_a))
        for v, c in moves:
            new_c, pain_c = self._best_insert(c, list(st.seq(c)), v)
            new[c] = new_c
            pain += pain_c - st.pain.get(c, 0)
            other += self._static(v, c) - self._static(v, a)
            other += d.load_cost(c, len(new_c)) - d.load_cost(c, len(new_c) - 1)
        return new, pain, pain + other

    def _eject_fresh(
        self, u: int, skip: tuple[int, ...]
    ) -> tuple[dict[int, list[int]], int, int] | None:
        """:meth:`_eject` for one ticket on the current plan, at any price, leaving the
        agents in ``skip`` (-1: none) alone.

        A move is priced several times (each re-pricing, the last look, its reason), each time
        asking for the same ticket's ejection: the one found is remembered and, while it still
        fits the plan (``a`` still holds the tickets, every agent has the room), priced again
        on the current plan instead of searched for afresh (the search prices the moves of
        every ticket its agents hold: what made the guard slow on a tight queue)."""
        d, st = self.data, self.state
        key = (u, *skip)
        found = self._ejected.get(key)
        if found is not None:
            a, moves = found
            if int(st.agent_of[u]) != a and all(int(st.agent_of[v]) == a for v, _ in moves):
                priced = self._price_ejection(u, a, moves)
                if all(self._room(x, seq) for x, seq in priced[0].items()):
                    return priced
        ej = ejections(d, st.agent_of, self.ptr, np.asarray([u], dtype=np.int64))
        touched = np.zeros(d.n_agents, dtype=bool)
        touched[[a for a in skip if a >= 0]] = True
        found = self._find_ejection(u, ej, touched, None)
        if found is None:
            self._ejected.pop(key, None)
            return None
        self._ejected[key] = found
        return self._price_ejection(u, *found)

    def reseat(self, tickets: Sequence[int]) -> int:
        """Seat queued ``tickets``, most valuable first, when that costs less than leaving
        them queued: with the agent with room that takes one cheapest, or else by handing one
        or several of a qualified agent's tickets to agents with room (an ejection, never a
        ticket away from its owner, so no new move). Returns how many were seated."""
        d, st = self.data, self.state
        if not tickets or d.n_agents == 0 or len(d.pair_agent) == 0:
            return 0
        ej = ejections(d, st.agent_of, self.ptr, np.asarray(tickets, dtype=np.int64))
        touched = np.zeros(d.n_agents, dtype=bool)
        seated = 0
        for u in sorted(tickets, key=lambda x: (-int(d.queue_cost[x]), x)):
            if st.agent_of[u] >= 0:
                continue
            queue = int(d.queue_cost[u])
            found = self._elsewhere(u, ())
            if found is not None:
                c, new_c, added = found
                if added + self._static_load(c, u, len(new_c)) < queue:
                    self.apply(_Revert({c: new_c}, [], added))
                    touched[c] = True
                    seated += 1
                    continue
            ejected = self._eject(u, ej, touched, 0)
            if ejected is not None and ejected[2] < queue:
                self.apply(_Revert(ejected[0], [], 0))
                touched[list(ejected[0])] = True
                seated += 1
        return seated

    def _static(self, t: int, a: int) -> int:
        return int(self.data.pair_static[self._pair_row(t, a)])

    def _static_load(self, c: int, t: int, n: int) -> int:
        """Static cost of ``t`` on ``c`` plus ``c``'s load marginal as their ``n``-th ticket."""
        return self._static(t, c) + self.data.load_cost(c, n) - self.data.load_cost(c, n - 1)

    def _pair_row(self, t: int, a: int) -> int:
        return int(np.searchsorted(self.data.pair_key, t * self.n_a + a))

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
    give_up: float | None = None,
    seat_first: bool = False,
    greedy: bool = False,
) -> Guarded | None:
    """Revert the moves that save less than ``min_saving`` of SLA cost, then the least
    valuable beyond ``max_moves``.

    ``deadline`` (a ``perf_counter`` value) stops reverting moves that are merely worthless once
    passed; the budget is enforced regardless, so the result always respects ``max_moves``.
    ``give_up`` (a ``perf_counter`` value; not with a budget to hold): pricing every move
    before the first revert cannot be cut short usefully, so when it is still going then the
    guard gives up and returns None (the caller keeps the unguarded plan); past it the moves
    kept are left unpriced (their reasons then say only that they save SLA cost).

    ``greedy`` (not with a budget to hold) is for when the whole guard does not fit the time
    left: one pass over the moves, each priced on the current plan and reverted at once when
    it saves less than ``min_saving``, stopping at ``deadline``; the moves it did not reach
    stand, unpriced (counted in :attr:`Guarded.unpriced`). Every step leaves a valid plan, so
    the pass can stop anywhere.
    """
    keep, forced = keep_set(data)
    g = _Guard(data, sequences, keep)
    st = g.state
    before_seated = np.flatnonzero(st.agent_of >= 0).tolist()
    before = set(before_seated)
    owner = data.owner

    def moved() -> IntArray:
        return keep[st.agent_of[keep] != owner[keep]] if len(keep) else keep

    def past(moment: float | None) -> bool:
        return moment is not None and time.perf_counter() > moment

    budget = len(keep) if max_moves is None else max(0, max_moves)
    n_moved = len(moved())
    heap: list[tuple[int, int, int]] = []  # (value, ticket, times priced)
    reverted = 0
    unreached: set[int] = set()
    if greedy:
        pending = moved().tolist()
        for i, t in enumerate(pending):
            if past(deadline):
                unreached.update(pending[i:])
                break
            if int(st.agent_of[t]) == int(owner[t]):
                continue  # an earlier revert put it back
            r = g.revert(t, seat_first=seat_first)
            if r is not None and r.value < min_saving:
                g.apply(r)
                reverted += 1
    else:
        for t in moved().tolist():
            if past(give_up):
                return None
            r = g.revert(t, seat_first=seat_first and n_moved <= budget)
            if r is not None:
                heap.append((r.value, t, 1))
        heapq.heapify(heap)
    while heap:
        value, t, priced = heapq.heappop(heap)
        if int(st.agent_of[t]) == int(owner[t]):
            continue  # an earlier revert put it back
        over = n_moved > budget
        late = past(deadline)
        if value >= min_saving and not over:
            # Ascending values: every move left is worth keeping by its last price. Re-price
            # the rest once below, since reverts since then may have made one worthless.
            heapq.heappush(heap, (value, t, priced))
            break
        if late and not over:
            break
        r = g.revert(t, seat_first=seat_first and not over)
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
    for t in moved().tolist():
        if past(deadline):
            break
        r = g.revert(t, seat_first=seat_first)
        if r is not None and r.value < min_saving:
            g.apply(r)
            reverted += 1
    # A revert may have queued a ticket that another agent, freed by a later revert, can take.
    queued_by_reverts = [t for t in before_seated if st.agent_of[t] < 0]
    if queued_by_reverts and not past(deadline):
        g.reseat(queued_by_reverts)
    # Reverts freed room: tickets queued before the guard take it where that is cheaper than
    # the queue (the search weighed them against a plan without that room).
    waiting = [t for t in np.flatnonzero(st.agent_of < 0).tolist() if t not in before]
    if waiting and not past(deadline):
        g.reseat(waiting)
    kept: dict[int, Move] = {}
    unpriced = 0
    for t in moved().tolist():
        if t in unreached or past(give_up):
            # Weighed and kept, but no time to name what it saves: "saves SLA cost" only.
            weighed = t not in unreached
            kept[t] = Move(t, int(owner[t]), int(st.agent_of[t]), 0, (), priced=weighed)
            unpriced += not weighed
            continue
        r = g.revert(t, seat_first=seat_first)  # the price the move was kept at
        value = r.value if r is not None else 0
        saves = g.saves(t, r) if r is not None else ()
        kept[t] = Move(t, int(owner[t]), int(st.agent_of[t]), value, saves)
    return Guarded(st.sequences(), kept, tuple(forced.tolist()), reverted, unpriced)
