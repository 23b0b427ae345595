"""In what order, improved: CP-SAT on small neighbourhoods, warm-started from the incumbent.

A neighbourhood is a few agents that share qualified tickets (picked where the lateness is),
a window of consecutive positions in each one's sequence (earlier tickets stay fixed; later
ones keep their order but shift with the window's total effort), plus a few high-priority
tickets from the team queue. CP-SAT may reorder the window, move its tickets between the
neighbourhood's agents, take queued tickets in or leave tickets with the queue. A result is
kept only if the *exact* objective (:mod:`solver.batch.costs`) drops, so the search never
returns worse than its start.

The model works in each agent's *work time* (minutes of work done since now), where an agent
is a plain single machine: one optional fixed-size interval per (ticket, agent) on a
no-overlap. Wall time is a monotone, piecewise-linear function of work time, jumping over
breaks: with ``cs_k`` the work done before window ``k`` and ``off_k`` the break time before
it, a ticket starting at work minute ``S`` starts at wall minute ``S + off_k`` for the last
``k`` with ``cs_k <= S`` (ending at ``E``: the last ``k`` with ``cs_k < E``). Because ``off_k``
grows with ``k``, lateness is ``max(0, S + off_k - due)`` over the windows already reached —
one indicator per window that ends after the deadline, usually one or two. The breach is
exact in work time: the first response is on time iff ``S < work_before(due + 1)``, the
resolution iff ``E <= work_before(due)``.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from ortools.sat.python import cp_model

from solver.batch import edf
from solver.batch.data import NO_DEADLINE, UNCAPPED, BatchData, IntArray
from solver.batch.localsearch import LocalSearch
from solver.batch.params import BatchParams
from solver.batch.repair import ticket_pair_ptr
from solver.batch.state import State, price

# A neighbourhood needs its model built and a few CP-SAT steps: with less left, stop.
_MIN_HOOD_SECONDS = 0.05


@dataclass
class LnsResult:
    sequences: dict[int, list[int]]
    cost: int
    tried: int = 0
    improved: int = 0
    proved: int = 0  # neighbourhoods CP-SAT closed (optimal for their free part)
    local_moves: int = 0
    by_local: set[int] = field(default_factory=set)  # agents the local search changed
    by_cpsat: set[int] = field(default_factory=set)  # agents a CP-SAT neighbourhood changed


@dataclass(frozen=True)
class WorkWindows:
    """One agent's working windows in work time: ``cs`` work before each, ``off`` breaks."""

    starts: tuple[int, ...]
    ends: tuple[int, ...]
    cs: tuple[int, ...]
    off: tuple[int, ...]
    total: int

    def work_before(self, minute: int) -> int:
        return sum(max(0, min(e, minute) - s) for s, e in zip(self.starts, self.ends, strict=True))


def work_windows(data: BatchData, a: int) -> WorkWindows:
    b = data.bank
    lo, hi = int(b.first[a]), int(b.first[a + 1])
    starts = b.starts[lo:hi].tolist()
    ends = b.ends[lo:hi].tolist()
    cum_end = b.cum_end[lo:hi].tolist()
    cs = [c - (e - s) for c, s, e in zip(cum_end, starts, ends, strict=True)]
    off = [s - c for s, c in zip(starts, cs, strict=True)]
    return WorkWindows(tuple(starts), tuple(ends), tuple(cs), tuple(off), int(data.total[a]))


@dataclass
class Hood:
    agents: list[int]
    prefix: dict[int, list[int]]
    window: dict[int, list[int]]
    tail: dict[int, list[int]]
    queued: list[int]  # team-queue tickets offered to the neighbourhood


@dataclass(frozen=True)
class Solved:
    """A neighbourhood's answer: new full sequences of its agents, tickets left queued."""

    sequences: dict[int, list[int]]
    left: list[int]
    proved: bool  # CP-SAT closed the neighbourhood
    objective: int  # the model's objective: the free part's exact cost


class _Deadline:
    """Adds one deadline's breach and lateness for a ticket whose work starts at ``S``."""

    def __init__(self, model: cp_model.CpModel, data: BatchData) -> None:
        self.model = model
        self.data = data

    def add(
        self,
        name: str,
        start: cp_model.LinearExprT,
        s_lo: int,
        s_hi: int,
        effort: int,
        due: int,
        at_end: bool,
        win: WorkWindows,
        enforce: list[cp_model.IntVar],
        weight: int,
        hint_start: int,
        present: bool,
    ) -> list[tuple[int, cp_model.IntVar]]:
        """Objective terms ``[(coef, var)]``, with a complete hint from the incumbent."""
        if due == NO_DEADLINE:
            return []
        m, w = self.model, self.data.weights
        shift = effort if at_end else 0
        bump = 1 if at_end else 0
        z_lo, z_hi = s_lo + shift, s_hi + shift
        on_time_max = win.work_before(due) if at_end else win.work_before(due + 1) - 1
        if on_time_max >= z_hi:
            return []
        z = start + shift
        hz = hint_start + shift
        breach = m.new_bool_var(f"breach[{name}]")
        m.add(z <= on_time_max).only_enforce_if([*enforce, breach.Not()])
        max_late = max(0, z_hi + (win.off[-1] if win.off else 0) - due)
        late = m.new_int_var(0, max_late, f"late[{name}]")
        late_hint = 0
        for k, (cs, off, end) in enumerate(zip(win.cs, win.off, win.ends, strict=True)):
            threshold = cs + bump
            if end <= due or threshold > z_hi:
                continue
            if threshold <= z_lo:
                m.add(late >= z + off - due).only_enforce_if(enforce)
                active = True
            else:
                y = m.new_bool_var(f"reached[{name},w{k}]")
                m.add(z >= threshold).only_enforce_if(y)
                m.add(z <= threshold - 1).only_enforce_if(y.Not())
                m.add(late >= z + off - due).only_enforce_if([*enforce, y])
                active = hz >= threshold
                m.add_hint(y, active)
            if active:
                late_hint = max(late_hint, hz + off - due)
        m.add_hint(breach, present and hz > on_time_max)
        m.add_hint(late, late_hint if present else 0)
        return [(weight * w.breach, breach), (weight * w.lateness_per_minute, late)]


def _effort(data: BatchData, tickets: Sequence[int]) -> int:
    return int(data.effort[list(tickets)].sum()) if tickets else 0


def solve_hood(
    data: BatchData,
    hood: Hood,
    windows: dict[int, WorkWindows],
    ptr: IntArray,
    params: BatchParams,
    time_s: float,
    seed: int,
    overrides: Mapping[str, object] | None = None,
) -> Solved | None:
    """CP-SAT on one neighbourhood, hinted with the incumbent; None if it found nothing.

    ``overrides`` are extra CP-SAT parameters by name (tests fix the hint with them).
    """
    m = cp_model.CpModel()
    dl = _Deadline(m, data)
    in_hood = set(hood.agents)
    free = [t for a in hood.agents for t in hood.window[a]] + hood.queued
    current: dict[int, tuple[int, int]] = {}  # ticket -> (agent, work start) in the incumbent
    for a in hood.agents:
        done = int(data.backlog[a]) + _effort(data, hood.prefix[a])
        for t in hood.window[a]:
            current[t] = (a, done)
            done += int(data.effort[t])
    base = {a: int(data.backlog[a]) + _effort(data, hood.prefix[a]) for a in hood.agents}
    tail_eff = {a: _effort(data, hood.tail[a]) for a in hood.agents}
    fixed_count = {a: len(hood.prefix[a]) + len(hood.tail[a]) for a in hood.agents}

    terms: list[tuple[int, cp_model.IntVar]] = []
    queue_vars: list[cp_model.IntVar] = []
    x: dict[tuple[int, int], cp_model.IntVar] = {}
    starts: dict[tuple[int, int], cp_model.IntVar] = {}
    by_agent: dict[int, list[tuple[int, cp_model.IntVar]]] = {a: [] for a in hood.agents}
    intervals: dict[int, list[cp_model.IntervalVar]] = {a: [] for a in hood.agents}
    pw = data.pw
    for t in free:
        rows = np.arange(ptr[t], ptr[t + 1])
        options = [
            (int(data.pair_agent[r]), int(r)) for r in rows if int(data.pair_agent[r]) in in_hood
        ]
        choice: list[cp_model.IntVar] = []
        p = int(data.effort[t])
        for a, r in options:
            s_lo, s_hi = base[a], int(data.total[a]) - tail_eff[a] - p
            if s_hi < s_lo:
                continue
            name = f"t{t},a{a}"
            xa = m.new_bool_var(f"assign[{name}]")
            s = m.new_int_var(s_lo, s_hi, f"start[{name}]")
            intervals[a].append(m.new_optional_fixed_size_interval_var(s, p, xa, f"work[{name}]"))
            x[t, a], starts[t, a] = xa, s
            choice.append(xa)
            by_agent[a].append((t, xa))
            here = current.get(t, (-1, 0))
            hint_s = here[1] if here[0] == a else s_lo
            m.add_hint(xa, here[0] == a)
            m.add_hint(s, hint_s)
            terms.append((int(data.pair_static[r]), xa))
            for at_end, due in ((False, int(data.fr_due[t])), (True, int(data.res_due[t]))):
                terms += dl.add(
                    f"{name},{'res' if at_end else 'fr'}",
                    s,
                    s_lo,
                    s_hi,
                    p,
                    due,
                    at_end,
                    windows[a],
                    [xa],
                    int(pw[t]),
                    hint_s,
                    here[0] == a,
                )
        queue = m.new_bool_var(f"queued[t{t}]")
        m.add_hint(queue, t not in current)
        m.add_exactly_one([*choice, queue])
        terms.append((int(data.queue_cost[t]), queue))
        queue_vars.append(queue)
    if params.keep_seated:
        # No fewer tickets seated than the incumbent seats: queued ones may come in, and may
        # take a seated ticket's place, but no seat is given up to shave lateness.
        m.add(sum(queue_vars) <= len(free) - len(current))

    for a in hood.agents:
        work_in_window = sum(int(data.effort[t]) * v for t, v in by_agent[a])
        if intervals[a]:
            m.add_no_overlap(intervals[a])
        slots = int(data.slots[a])
        count = m.new_int_var(0, slots, f"count[a{a}]")
        m.add(count == fixed_count[a] + sum(v for _, v in by_agent[a]))
        load = m.new_int_var(0, data.load_cost(a, slots), f"load[a{a}]")
        m.add_element(count, [data.load_cost(a, k) for k in range(slots + 1)], load)
        n_now = fixed_count[a] + len(hood.window[a])
        m.add_hint(count, n_now)
        m.add_hint(load, data.load_cost(a, n_now))
        terms.append((1, load))
        m.add(base[a] + work_in_window + tail_eff[a] <= int(data.total[a]))
        for ch in range(len(data.channels)):
            ch_cap = int(data.chan_slots[ch, a])
            ch_vars = [v for t, v in by_agent[a] if int(data.chan_of[t]) == ch]
            if ch_cap >= UNCAPPED or not ch_vars:
                continue
            fixed = hood.prefix[a] + hood.tail[a]
            ch_held = int(np.count_nonzero(data.chan_of[fixed] == ch)) if fixed else 0
            m.add(ch_held + sum(ch_vars) <= ch_cap)  # the channel's cap holds
        if hood.tail[a]:
            # The tail starts where the window's work ends: pack the window without gaps.
            for t, v in by_agent[a]:
                m.add(
                    starts[t, a] + int(data.effort[t]) <= base[a] + work_in_window
                ).only_enforce_if(v)
            win_now = _effort(data, hood.window[a])
            c = 0
            for t in hood.tail[a]:
                p = int(data.effort[t])
                s_expr = base[a] + work_in_window + c
                s_lo = base[a] + c
                s_hi = int(data.total[a]) - tail_eff[a] + c
                name = f"t{t},a{a},tail"
                hs = base[a] + win_now + c
                for at_end, due in ((False, int(data.fr_due[t])), (True, int(data.res_due[t]))):
                    terms += dl.add(
                        f"{name},{'res' if at_end else 'fr'}",
                        s_expr,
                        s_lo,
                        s_hi,
                        p,
                        due,
                        at_end,
                        windows[a],
                        [],
                        int(pw[t]),
                        hs,
                        True,
                    )
                c += p
    m.minimize(sum(c * v for c, v in terms))

    solver = cp_model.CpSolver()
    settings: dict[str, object] = {
        "num_workers": params.workers,
        "max_time_in_seconds": max(0.01, time_s),
        "max_deterministic_time": params.neighbourhood_dtime,
        "random_seed": seed,
        # Interleaved workers make a multi-worker search repeatable for a given seed.
        "interleave_search": params.workers > 1,
        **(overrides or {}),
    }
    for name, value in settings.items():
        setattr(solver.parameters, name, value)
    status = solver.solve(m)
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return None
    new: dict[int, list[int]] = {}
    for a in hood.agents:
        mine = [t for t, v in by_agent[a] if solver.boolean_value(v)]
        mine.sort(key=lambda t: (solver.value(starts[t, a]), t))
        new[a] = hood.prefix[a] + mine + hood.tail[a]
    placed = {t for seq in new.values() for t in seq}
    left = [t for t in free if t not in placed]
    return Solved(new, left, status == cp_model.OPTIMAL, round(solver.objective_value))


class Picker:
    """Chooses neighbourhoods where the lateness is, with seeded randomness."""

    def __init__(self, data: BatchData, state: State, params: BatchParams) -> None:
        self.data, self.state, self.params = data, state, params
        self.rng = np.random.default_rng(params.seed)
        self.ptr = ticket_pair_ptr(data)
        # Each agent's qualified tickets, sorted on first use: CP-SAT may never get the time.
        self._by_agent: tuple[IntArray, IntArray] | None = None
        self.fails = np.zeros(data.n_agents, dtype=np.int64)
        self.seen: set[tuple[object, ...]] = set()

    def _qualified_agents(self, tickets: Sequence[int]) -> IntArray:
        if not tickets:
            return np.zeros(0, dtype=np.int64)
        t = np.asarray(tickets, dtype=np.int64)
        lo, hi = self.ptr[t], self.ptr[t + 1]
        idx = np.concatenate(
            [np.arange(a, b) for a, b in zip(lo.tolist(), hi.tolist(), strict=True)]
        )
        return np.asarray(self.data.pair_agent[idx], dtype=np.int64)

    def _agent_tickets(self) -> tuple[IntArray, IntArray]:
        """``(tickets, ptr)``: agent ``a``'s qualified tickets are ``tickets[ptr[a]:ptr[a+1]]``."""
        if self._by_agent is None:
            data = self.data
            order = np.argsort(data.pair_agent, kind="stable")
            ptr = np.searchsorted(
                data.pair_agent[order], np.arange(data.n_agents + 1, dtype=np.int64)
            )
            self._by_agent = (data.pair_ticket[order], ptr)
        return self._by_agent

    def _queued_for(self, agents: Sequence[int]) -> list[int]:
        by_agent_ticket, agent_ptr = self._agent_tickets()
        out: set[int] = set()
        for a in agents:
            cand = by_agent_ticket[agent_ptr[a] : agent_ptr[a + 1]]
            out.update(cand[self.state.agent_of[cand] < 0].tolist())
        return sorted(out)

    def pick(self) -> Hood | None:
        st = self.state
        agents = np.asarray(sorted(st.pain), dtype=np.int64)
        if len(agents) == 0:
            return None
        pain = np.asarray([st.pain[a] for a in agents.tolist()], dtype=np.float64)
        weight = pain / (1.0 + self.fails[agents]) ** 2
        if weight.sum() <= 0:
            return None
        for _ in range(8):
            lead = int(self.rng.choice(agents, p=weight / weight.sum()))
            hood = self._around(lead)
            key = (
                tuple(sorted((a, int(st.version[a]), len(hood.prefix[a])) for a in hood.agents)),
                tuple(hood.queued),
            )
            if key not in self.seen:
                self.seen.add(key)
                return hood
            self.fails[lead] += 1
        return None

    def _around(self, lead: int) -> Hood:
        st, data, params = self.state, self.data, self.params
        mine = st.seqs.get(lead, [])
        queued = self._queued_for([lead])
        shared = self._qualified_agents(mine + queued[:50])
        shared = shared[(shared != lead)]
        group = [lead]
        if len(shared) and params.neighbourhood_agents > 1:
            counts = np.bincount(shared, minlength=data.n_agents).astype(np.float64)
            cand = np.flatnonzero(counts > 0)
            # Prefer partners with room: little lateness of their own, few failed attempts, and
            # slack by the EDF demand bound (they could take more work without any breach).
            lead_pain = 1.0 + st.pain.get(lead, 0)
            score = np.asarray(
                [
                    counts[b]
                    / (1.0 + st.pain.get(b, 0) / lead_pain)
                    / (1.0 + self.fails[b])
                    * (2.0 if edf.slack(data, b, st.seq(b)) > 0 else 1.0)
                    for b in cand.tolist()
                ]
            )
            k = min(params.neighbourhood_agents - 1, len(cand))
            if k:
                p = score / score.sum()
                group += self.rng.choice(cand, size=k, replace=False, p=p).astype(int).tolist()
        per_agent = max(2, params.neighbourhood_tickets // len(group))
        prefix: dict[int, list[int]] = {}
        window: dict[int, list[int]] = {}
        tail: dict[int, list[int]] = {}
        for a in group:
            seq = st.seqs.get(a, [])
            if len(seq) <= per_agent:
                lo = 0
            else:
                late = st.late_of.get(a, [])
                first_late = next((i for i, v in enumerate(late) if v > 0), len(seq))
                # Centre windows around where lateness begins, jittered for variety.
                centre = first_late + int(self.rng.integers(-per_agent, per_agent + 1))
                lo = int(np.clip(centre - per_agent // 2, 0, len(seq) - per_agent))
            prefix[a], window[a], tail[a] = (
                seq[:lo],
                seq[lo : lo + per_agent],
                seq[lo + per_agent :],
            )
        pool = self._queued_for(group)
        if pool and params.queued_candidates:
            qc = data.queue_cost[pool]
            jitter = self.rng.random(len(pool))
            order = np.lexsort((jitter, -qc))
            pool = [pool[i] for i in order[: params.queued_candidates].tolist()]
        else:
            pool = []
        return Hood(group, prefix, window, tail, sorted(pool))


def improve(
    data: BatchData, sequences: dict[int, list[int]], params: BatchParams, deadline: float
) -> LnsResult:
    """Local search, then CP-SAT neighbourhoods, until ``deadline`` (a ``perf_counter`` value).

    Nothing is built before the deadline is checked, and each phase is sized to the time left:
    with no time the seed comes back untouched; the local search's structures are lazy (per
    ticket, on first use); CP-SAT's picker is built only when a neighbourhood can still run,
    and each neighbourhood gets at most the time left.

    The exact local search takes the cheap improvements first (at most ``local_search_share``
    of the time); CP-SAT then works where lateness remains. When CP-SAT runs out of fresh
    neighbourhoods the local search gets another turn on what it changed.
    """
    state = State(data, sequences)
    result = LnsResult(sequences=state.sequences(), cost=state.total())
    now = time.perf_counter()
    if now >= deadline:
        return result
    local = LocalSearch(
        data, state, candidates=params.move_candidates, keep_seated=params.keep_seated
    )
    local.run(now + params.local_search_share * max(0.0, deadline - now))
    if deadline - time.perf_counter() < _MIN_HOOD_SECONDS:
        return _finish(result, state, local)
    picker = Picker(data, state, params)
    windows: dict[int, WorkWindows] = {}
    while True:
        if params.max_neighbourhoods and result.tried >= params.max_neighbourhoods:
            break
        remaining = deadline - time.perf_counter()
        if remaining < _MIN_HOOD_SECONDS:
            break
        hood = picker.pick()
        if hood is None:
            # Fresh neighbourhoods ran out: let the local search use what CP-SAT changed.
            if local.run(deadline) == 0:
                break
            picker.fails[:] = 0
            continue
        for a in hood.agents:
            if a not in windows:
                windows[a] = work_windows(data, a)
        solved = solve_hood(
            data,
            hood,
            windows,
            picker.ptr,
            params,
            # At most the time left once the model is built (building it takes milliseconds).
            min(params.neighbourhood_time_s, deadline - time.perf_counter() - 0.02),
            (params.seed * 1_000_003 + result.tried) % 2_147_483_647,
        )
        result.tried += 1
        if solved is None:
            picker.fails[hood.agents[0]] += 1
            continue
        new, left = solved.sequences, solved.left
        result.proved += solved.proved
        priced = price(data, new)
        before = sum(state.cost.get(a, 0) for a in hood.agents) + int(
            data.queue_cost[hood.queued].sum()
        )
        after = sum(priced[0].values()) + int(data.queue_cost[left].sum())
        if after < before:
            state.commit(new, left, priced)
            result.improved += 1
            result.by_cpsat.update(a for a in hood.agents)
            picker.fails[hood.agents] = 0
        else:
            picker.fails[hood.agents[0]] += 1
    return _finish(result, state, local)


def _finish(result: LnsResult, state: State, local: LocalSearch) -> LnsResult:
    result.local_moves = local.stats.moves + local.stats.reorders
    result.by_local = set(local.changed) - result.by_cpsat
    result.sequences = state.sequences()
    result.cost = state.total()
    return result
