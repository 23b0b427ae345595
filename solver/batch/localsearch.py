"""Fast exact moves between CP-SAT neighbourhoods: reorder, relocate, swap, queue exchange.

CP-SAT needs a few tenths of a second per neighbourhood; a queue of thousands of tickets needs
thousands of small repairs first. These moves are priced *exactly* (the same schedule and
objective as :mod:`solver.batch.costs`), many candidates per numpy call:

- reorder: within one agent, take a ticket out and put it back at every other position;
- relocate: a late ticket to another qualified agent with a free slot and the minutes, at
  that agent's best position — or back to the team queue;
- swap: a late ticket with one of another agent's tickets, each at its best position in the
  other's sequence (tight queues have no free slots, so a swap is often the only way to move);
- queue exchange: a queued ticket into an agent's free slot, or in place of one of its tickets.

A move is applied only if it lowers the exact objective, so this, too, never makes a plan worse.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import numpy.typing as npt

from solver.batch.costs import find_pairs
from solver.batch.data import UNCAPPED, BatchData, BoolArray, IntArray
from solver.batch.edf import edf_order
from solver.batch.repair import ticket_pair_ptr
from solver.batch.state import State

_BIG = np.iinfo(np.int64).max // 4


@lru_cache(maxsize=256)
def _insert_index(n: int) -> tuple[IntArray, npt.NDArray[np.bool_]]:
    p = np.arange(n + 1)[:, None]
    k = np.arange(n + 1)[None, :]
    return np.clip(k - (k > p), 0, max(0, n - 1)), k == p


@lru_cache(maxsize=256)
def _exchange_index(n: int) -> tuple[IntArray, npt.NDArray[np.bool_], IntArray]:
    i = np.arange(n)[:, None, None]
    j = np.arange(n)[None, :, None]
    k = np.arange(n)[None, None, :]
    r = np.where(k < j, k, k - 1)
    src = np.clip(np.where(r < i, r, r + 1), 0, n - 1)
    return src, np.broadcast_to(k == j, (n, n, n)), np.broadcast_to(i, (n, n, n))


def insert_rows(seq: IntArray, xs: IntArray) -> IntArray:
    """``out[u, p]`` = ``seq`` with ``xs[u]`` inserted at position ``p``: shape (u, n+1, n+1)."""
    n = len(seq)
    src, at = _insert_index(n)
    base = seq[src] if n else np.zeros((n + 1, n + 1), dtype=np.int64)
    return np.where(at[None], xs[:, None, None], base[None])


def exchange_rows(seq: IntArray, xs: IntArray) -> IntArray:
    """``out[i, j]`` = ``seq`` without item ``i``, ``xs[i]`` inserted at ``j``: shape (n, n, n)."""
    src, at, i = _exchange_index(len(seq))
    return np.where(at, xs[i], seq[src])


def removal_rows(seq: IntArray) -> IntArray:
    """``out[i]`` = ``seq`` without item ``i``: shape (n, n-1)."""
    n = len(seq)
    i = np.arange(n)[:, None]
    k = np.arange(max(0, n - 1))[None, :]
    return seq[k + (k >= i)]


class Batch:
    """Collects candidate sequences (rows) for many agents and prices them in one numpy pass."""

    def __init__(self, data: BatchData) -> None:
        self.data = data
        self.blocks: list[tuple[int, IntArray]] = []

    def add(self, agent: int, rows: IntArray) -> int:
        """Queue ``rows`` (2-D, every row one full sequence for ``agent``); returns a handle."""
        self.blocks.append((agent, rows.reshape(-1, rows.shape[-1]) if rows.ndim else rows))
        return len(self.blocks) - 1

    def late(self) -> list[IntArray]:
        """Breach + lateness cost of every row, block by block."""
        data = self.data
        sizes = [r.shape[0] for _, r in self.blocks]
        widths = [r.shape[1] for _, r in self.blocks]
        n_rows = sum(sizes)
        flat: IntArray = np.zeros(0, dtype=np.int64)
        if self.blocks:
            flat = np.concatenate([r.ravel() for _, r in self.blocks]).astype(np.int64)
        row_len = np.repeat(np.asarray(widths, dtype=np.int64), sizes)
        row_agent = np.repeat(np.asarray([a for a, _ in self.blocks], dtype=np.int64), sizes)
        out_all = np.zeros(n_rows, dtype=np.int64)
        if len(flat):
            agents = np.repeat(row_agent, row_len)
            eff = data.effort[flat]
            csum = np.cumsum(eff)
            row_start = np.concatenate(([0], np.cumsum(row_len)))[:-1]
            before = np.concatenate(([0], csum))[row_start]
            done = csum - eff - np.repeat(before, row_len) + data.backlog[agents]
            start = data.clock.start(agents, done)
            end = data.clock.finish(agents, done + eff)
            lc = data.late_cost(flat, start, end)
            row_id = np.repeat(np.arange(n_rows), row_len)
            out_all = np.bincount(row_id, weights=lc.astype(np.float64), minlength=n_rows)
            out_all = np.rint(out_all).astype(np.int64)
        bounds = np.concatenate(([0], np.cumsum(sizes))).tolist()
        return [out_all[bounds[b] : bounds[b + 1]] for b in range(len(self.blocks))]


@dataclass
class LocalStats:
    moves: int = 0
    reorders: int = 0
    passes: int = 0


class LocalSearch:
    """The moves above over an incumbent :class:`State`, each ticket's targets found lazily.

    Nothing here is sized by the pair list: a ticket's candidate agents are sorted the first time
    the ticket is looked at, and a pair's static cost is a binary search in ``pair_key``. At
    1,000 x 10,000 with 1.5 M qualified pairs a dict over every pair took 1-3 s to build before
    the first move (and before the first deadline check); this starts in milliseconds.
    """

    def __init__(
        self, data: BatchData, state: State, candidates: int = 12, keep_seated: bool = False
    ) -> None:
        self.data, self.state = data, state
        self.keep_seated = keep_seated  # never send a seated ticket back to the queue
        self.stats = LocalStats()
        self._ptr = ticket_pair_ptr(data)
        self.candidates = candidates
        self._n_a = max(1, data.n_agents)
        # Per ticket: its cheapest qualified agents (pair cost, then row), at most candidates + 1.
        self._cands: dict[int, IntArray] = {}
        self.changed: set[int] = set()  # agents whose sequence a move changed
        # Don't-look marks: the agents' versions when a ticket last found no improving move.
        self._looked: dict[int, int] = {}

    # -- helpers -----------------------------------------------------------------------------
    def _cand_agents(self, t: int) -> IntArray:
        """Ticket ``t``'s ``candidates + 1`` cheapest qualified agents (ties: lower row)."""
        got = self._cands.get(t)
        if got is None:
            data = self.data
            lo, hi = int(self._ptr[t]), int(self._ptr[t + 1])
            agents = data.pair_agent[lo:hi]
            order = np.lexsort((agents, data.pair_static[lo:hi] + data.pair_late_lb[lo:hi]))
            got = agents[order[: self.candidates + 1]]
            self._cands[t] = got
        return got

    def _static(self, tickets: Sequence[int] | IntArray, agent: int) -> IntArray:
        """Static cost of giving each ticket to ``agent``; ``_BIG`` where unqualified."""
        t = np.asarray(tickets, dtype=np.int64)
        idx, found = find_pairs(self.data, t, np.full(len(t), agent, dtype=np.int64))
        return np.where(found, self.data.pair_static[idx], _BIG)

    def _st(self, t: int, agent: int) -> int:
        keys = self.data.pair_key
        want = t * self._n_a + agent
        i = int(np.searchsorted(keys, want))
        if i < len(keys) and int(keys[i]) == want:
            return int(self.data.pair_static[i])
        return int(_BIG)

    def _stamp(self, t: int, a: int) -> int:
        ags = self._cand_agents(t)
        v = self.state.version
        return int(v[ags].sum()) + (int(v[a]) if a >= 0 else 0) + a

    def _agent_static(self, a: int) -> int:
        st = self.state
        return st.cost.get(a, 0) - st.pain.get(a, 0) - self.data.load_cost(a, len(st.seq(a)))

    def _targets(self, t: int, exclude: int) -> list[int]:
        ags = self._cand_agents(t)
        ags = ags[ags != exclude][: self.candidates]
        return [int(x) for x in ags.tolist()]

    # -- reorder -----------------------------------------------------------------------------
    def reorder(self, a: int) -> bool:
        """Best-improvement insertion moves within agent ``a`` until none improves.

        The work-time EDF order is tried alongside: when the agent's tickets pass the EDF demand
        bound it has no breach and no lateness, so nothing can beat it.
        """
        st, data = self.state, self.data
        improved = False
        while True:
            seq = np.asarray(st.seq(a), dtype=np.int64)
            n = len(seq)
            if n < 2 or st.pain[a] == 0:
                return improved
            edf_row = np.asarray(edf_order(data, a, seq.tolist()), dtype=np.int64)
            rows = np.vstack((exchange_rows(seq, seq).reshape(n * n, n), edf_row[None, :]))
            b = Batch(data)
            b.add(a, rows)
            late = b.late()[0]
            best = int(np.argmin(late))
            if late[best] >= st.pain[a]:
                return improved
            st.commit({a: rows[best].tolist()}, [])
            self.changed.add(a)
            self.stats.reorders += 1
            improved = True

    # -- channel caps ------------------------------------------------------------------------
    def _channel_replace_ok(self, b: int, arr_b: IntArray, q: int) -> BoolArray:
        """Per ticket ``u`` of ``b``: whether ``b`` may hold ``q`` instead of ``u`` within the
        cap of ``q``'s channel (a ``u`` of the same channel frees its slot)."""
        data = self.data
        c = int(data.chan_of[q])
        ok = np.ones(len(arr_b), dtype=bool)
        if c < 0 or int(data.chan_slots[c, b]) >= UNCAPPED:
            return ok
        same: BoolArray = data.chan_of[arr_b] == c
        held = int(np.count_nonzero(same))
        if held + 1 <= int(data.chan_slots[c, b]):
            return ok
        return same

    def _channel_swap_ok(
        self, a: int, seq_a: IntArray, t: int, b: int, arr_b: IntArray
    ) -> BoolArray:
        """Per ticket ``u`` of ``b``: whether ``a`` and ``b`` may trade ``t`` for ``u`` within
        both agents' channel caps."""
        ok = self._channel_replace_ok(b, arr_b, t)
        data = self.data
        # a gives up t and takes u: u's channel on a must have room (t of that channel frees one)
        ch_u = data.chan_of[arr_b]
        caps = np.where(ch_u >= 0, data.chan_slots[np.maximum(ch_u, 0), a], UNCAPPED)
        held_a = np.bincount(data.chan_of[seq_a] + 1, minlength=len(data.channels) + 1)[1:]
        held_u = np.where(ch_u >= 0, held_a[np.maximum(ch_u, 0)], 0)
        frees = ch_u == int(data.chan_of[t])
        ok &= (ch_u < 0) | frees | (held_u + 1 <= caps)
        return ok

    # -- moves of one ticket -----------------------------------------------------------------
    def move_assigned(self, t: int) -> bool:
        """Best relocate / swap / to-queue move for ticket ``t`` (held by an agent)."""
        st, data = self.state, self.data
        a = int(st.agent_of[t])
        seq_a = np.asarray(st.seq(a), dtype=np.int64)
        pos = int(np.flatnonzero(seq_a == t)[0])
        rest_a = np.delete(seq_a, pos)
        n_a = len(seq_a)
        static_a = self._agent_static(a)
        st_t_a = self._st(t, a)
        eff_t = int(data.effort[t])
        batch = Batch(data)
        h_rest = batch.add(a, rest_a[None, :]) if len(rest_a) else -1
        plans: list[tuple[str, int, int, int, int]] = []  # kind, b, u, handle_b, handle_a
        swap_us: list[int] = []
        swap_meta: list[tuple[int, int, int]] = []  # (b, u, index into swap_us)
        for b in self._targets(t, a):
            arr_b = np.asarray(st.seq(b), dtype=np.int64)
            n_b = len(arr_b)
            if (
                n_b < int(data.slots[b])
                and st.work[b] + eff_t <= data.total[b]
                and data.channel_fits(b, arr_b, t)
            ):
                h = batch.add(b, insert_rows(arr_b, np.array([t]))[0])
                plans.append(("relocate", b, -1, h, -1))
            if n_b == 0:
                continue
            # Swap candidates: u on b that a may take, with the minutes fitting both ways.
            ok_a = self._static(arr_b, a) < _BIG
            eff_u = data.effort[arr_b]
            ok = ok_a & (st.work[b] - eff_u + eff_t <= data.total[b])
            ok &= st.work[a] - eff_t + eff_u <= data.total[a]
            if data.channels:
                ok &= self._channel_swap_ok(a, seq_a, t, b, arr_b)
            if not ok.any():
                continue
            h = batch.add(b, exchange_rows(arr_b, np.full(n_b, t, dtype=np.int64)))
            for i in np.flatnonzero(ok).tolist():
                swap_meta.append((b, int(arr_b[i]), len(swap_us)))
                swap_us.append(int(arr_b[i]))
                plans.append(("swap", b, i, h, -1))
        h_swap_a = -1
        if swap_us:
            h_swap_a = batch.add(a, insert_rows(rest_a, np.asarray(swap_us, dtype=np.int64)))
        late = batch.late()
        cost_a = st.cost[a]
        load_a_minus = data.load_cost(a, n_a - 1)
        # Leaving ``a`` (relocate or queue): a's cost without t.
        late_rest = int(late[h_rest][0]) if h_rest >= 0 else 0
        new_a_without = late_rest + static_a - st_t_a + load_a_minus
        best_delta = 0
        best_move: tuple[str, int, int, int, int] | None = None  # kind, b, u, pos in b, pos in a
        queue_delta = new_a_without + int(data.queue_cost[t]) - cost_a
        if queue_delta < best_delta and not self.keep_seated:
            best_delta, best_move = queue_delta, ("queue", -1, -1, -1, -1)
        swap_a_late = late[h_swap_a].reshape(len(swap_us), n_a) if h_swap_a >= 0 else None
        si = 0
        for kind, b, i, h, _ in plans:
            seq_b = st.seq(b)
            n_b = len(seq_b)
            cost_b = st.cost.get(b, 0)
            static_b = self._agent_static(b)
            st_t_b = self._st(t, b)
            if kind == "relocate":
                rows = late[h]
                p = int(np.argmin(rows))
                new_b = int(rows[p]) + static_b + st_t_b + data.load_cost(b, n_b + 1)
                delta = new_a_without + new_b - cost_a - cost_b
                if delta < best_delta:
                    best_delta, best_move = delta, ("relocate", b, -1, p, -1)
            else:
                u = int(seq_b[i])
                rows_b = late[h].reshape(n_b, n_b)[i]
                p_b = int(np.argmin(rows_b))
                assert swap_a_late is not None
                rows_a = swap_a_late[si]
                p_a = int(np.argmin(rows_a))
                si += 1
                st_u_b = self._st(u, b)
                st_u_a = self._st(u, a)
                new_b = int(rows_b[p_b]) + static_b - st_u_b + st_t_b + data.load_cost(b, n_b)
                new_a = int(rows_a[p_a]) + static_a - st_t_a + st_u_a + data.load_cost(a, n_a)
                delta = new_a + new_b - cost_a - cost_b
                if delta < best_delta:
                    best_delta, best_move = delta, ("swap", b, u, p_b, p_a)
        if best_move is None:
            return False
        kind, b, u, p_b, p_a = best_move
        rest = rest_a.tolist()
        self.changed.update(x for x in (a, b) if x >= 0)
        if kind == "queue":
            st.commit({a: rest}, [t])
        elif kind == "relocate":
            into_b = list(st.seq(b))
            into_b.insert(p_b, t)
            st.commit({a: rest, b: into_b}, [])
        else:
            into_b = [x for x in st.seq(b) if x != u]
            into_b.insert(p_b, t)
            rest.insert(p_a, u)
            st.commit({a: rest, b: into_b}, [])
        self.stats.moves += 1
        return True

    def move_queued(self, q: int) -> bool:
        """Best way to take queued ticket ``q`` in: a free slot, or in place of a ticket."""
        st, data = self.state, self.data
        eff_q = int(data.effort[q])
        batch = Batch(data)
        plans: list[tuple[str, int, int]] = []
        for b in self._targets(q, -1):
            arr_b = np.asarray(st.seq(b), dtype=np.int64)
            n_b = len(arr_b)
            if (
                n_b < int(data.slots[b])
                and st.work[b] + eff_q <= data.total[b]
                and data.channel_fits(b, arr_b, q)
            ):
                plans.append(("insert", b, batch.add(b, insert_rows(arr_b, np.array([q]))[0])))
            if n_b:
                plans.append(("replace", b, batch.add(b, exchange_rows(arr_b, np.full(n_b, q)))))
        if not plans:
            return False
        late = batch.late()
        best_delta = 0
        best_move: tuple[int, int, int] | None = None  # agent, index replaced (-1: none), pos
        qc = int(data.queue_cost[q])
        for kind, b, h in plans:
            seq_b = st.seq(b)
            n_b = len(seq_b)
            cost_b = st.cost.get(b, 0)
            static_b = self._agent_static(b)
            st_q_b = self._st(q, b)
            if kind == "insert":
                rows = late[h]
                p = int(np.argmin(rows))
                new_b = int(rows[p]) + static_b + st_q_b + data.load_cost(b, n_b + 1)
                delta = new_b - cost_b - qc
                if delta < best_delta:
                    best_delta, best_move = delta, (b, -1, p)
                continue
            rows = late[h].reshape(n_b, n_b)
            eff_u = data.effort[np.asarray(seq_b)]
            fits = st.work[b] - eff_u + eff_q <= data.total[b]
            if data.channels:
                fits &= self._channel_replace_ok(b, np.asarray(seq_b, dtype=np.int64), q)
            st_u = self._static(seq_b, b)
            uq = data.queue_cost[np.asarray(seq_b)]
            best_p = rows.argmin(axis=1)
            new_b = rows.min(axis=1) + static_b - st_u + st_q_b + data.load_cost(b, n_b)
            deltas = np.where(fits, new_b + uq - cost_b - qc, _BIG)
            i = int(np.argmin(deltas))
            if deltas[i] < best_delta:
                best_delta, best_move = int(deltas[i]), (b, i, int(best_p[i]))
        if best_move is None:
            return False
        b, i, p = best_move
        into_b = list(st.seq(b))
        left: list[int] = []
        if i >= 0:
            left = [into_b.pop(i)]
        into_b.insert(p, q)
        st.commit({b: into_b}, left)
        self.changed.add(b)
        self.stats.moves += 1
        return True

    # -- driver ------------------------------------------------------------------------------
    def run(self, deadline: float, agents: Sequence[int] | None = None) -> int:
        """Passes of reorder + ticket moves until none improves or ``deadline``; moves made."""
        st, data = self.state, self.data
        before = self.stats.moves + self.stats.reorders
        todo = list(st.seqs) if agents is None else list(agents)
        for a in todo:
            if time.perf_counter() > deadline:
                return self.stats.moves + self.stats.reorders - before
            self.reorder(a)
        while time.perf_counter() < deadline:
            self.stats.passes += 1
            changed = False
            late = [
                (v, t)
                for a, seq in st.seqs.items()
                for t, v in zip(seq, st.late_of.get(a, []), strict=True)
                if v > 0
            ]
            late.sort(key=lambda x: (-x[0], x[1]))
            queued = np.flatnonzero((st.agent_of < 0) & (self._ptr[1:] > self._ptr[:-1]))
            queued = queued[np.argsort(-data.queue_cost[queued], kind="stable")].tolist()
            for _, t in late:
                if time.perf_counter() > deadline:
                    break
                if st.agent_of[t] < 0:
                    continue
                a = int(st.agent_of[t])
                stamp = self._stamp(t, a)
                if self._looked.get(t) == stamp:
                    continue
                if not self.move_assigned(t):
                    self._looked[t] = stamp
                else:
                    changed = True
                    for x in {a, int(st.agent_of[t])}:
                        if x >= 0:
                            self.reorder(x)
            for q in queued:
                if time.perf_counter() > deadline:
                    break
                if st.agent_of[q] >= 0:
                    continue
                stamp = self._stamp(q, -1)
                if self._looked.get(q) == stamp:
                    continue
                if not self.move_queued(q):
                    self._looked[q] = stamp
                else:
                    changed = True
                    self.reorder(int(st.agent_of[q]))
            if not changed:
                break
        return self.stats.moves + self.stats.reorders - before
