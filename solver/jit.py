"""Just-in-time binding of booked calls to agents, and repair when an agent drops out.

**Just in time.** Calls that start within a lead time get a named agent: qualified, working and
free in the latest calendars, no overlap with their other calls (buffers included), within team
reserves. Among those: the ticket's owner when they can take it, calls spread fairly over each
agent's day (convex: every extra call the same day costs more) and week, and scarce skills kept
free. Earlier bindings stay unless they are no longer possible (those are re-bound).

The model must not make a *later* call uncoverable: the booking index holds a consistent cover
of every call (solver.slots), so the model takes the due calls plus the not-yet-due calls that
overlap them in time ("boundary" calls, free to move, no preferences), and treats everybody
else's cover as fixed. The current cover is a feasible solution and is the hint, so the model is
never infeasible and the whole book stays coverable whatever it chooses.

Measured (benchmarks/booking.py, 500 due calls over 3.5 days, 500 agents): the greedy (improve
the cover call by call, cheapest free candidate, one owner swap) takes ~0.1-0.25 s; CP-SAT on the
exact model, split into independent components (calls that overlap in time or could share an
agent's day) and hinted with the greedy, proves the optimum in ~0.55-0.75 s on a quiet machine at
less than 0.6x the greedy's objective; under heavy load it runs out of its budget and returns the
greedy or better. Min-cost flow does not fit: one agent can take several due calls in sequence
(a no-overlap constraint per agent, not a capacity). ``method="greedy"`` remains as the fallback
and the comparison.

**Disruption.** An agent loses a shift, gains calendar busy time or is marked away: only the
calls they held, and calls pushed out by their team's reserve, are re-placed. Unbound calls move
freely (nobody was told); a bound call moves only if its agent can no longer take it, or —
as a last resort, counted — to make room for a call that would otherwise be lost. Calls nobody
can cover are reported at once, so the customer can be offered another time.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from types import MappingProxyType
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt
from ortools.sat.python import cp_model

from solver.capability import (
    AtRisk,
    Binding,
    BookingState,
    Call,
    Change,
    DisruptionReport,
    apply_change,
)
from solver.plan import Reason, SolveStats, SolveStatus
from solver.slots import NOT_WORKING, SEARCH_DEPTH, BookingIndex, hand_over, index_of

DEFAULT_LEAD = timedelta(hours=2)
CANDIDATES_PER_CALL = 10
GREEDY_PASSES = 3
FINISH_MARGIN = 0.12  # seconds kept back from the time limit for applying the binding
# Measured on 500 due calls (benchmarks/booking.py): one worker without presolve and with the
# full LP relaxation proves the optimum in ~0.5-0.8 s; presolve alone costs more than that, and
# a second worker only competes for the machine's two cores.
DEFAULT_SOLVER_PARAMS: Mapping[str, Any] = MappingProxyType(
    {"cp_model_presolve": False, "linearization_level": 2}
)
DAY_STEPS = 3  # convex day-load steps modelled exactly; beyond that the last slope continues
REPAIR_BUDGET = 256


@dataclass(frozen=True, slots=True)
class JitWeights:
    """Integer costs of the binding objective (all minimised)."""

    uncovered: int = 100_000  # a due call left without an agent
    not_owner: int = 60  # the ticket's owner could take it but somebody else does
    day_load: int = 12  # per call the agent already has that (local) day, for each new one
    week_load: int = 2  # per call the agent already has that ISO week
    scarcity: int = 40  # x the agent's worth to other capabilities (0..~1)


@dataclass(frozen=True, slots=True)
class JitResult:
    state: BookingState
    bindings: tuple[Binding, ...]
    at_risk: tuple[AtRisk, ...]
    stats: SolveStats


# --- load counts for fairness ----------------------------------------------------------------


def _local_day(moment: datetime, tz: str) -> date:
    return moment.astimezone(ZoneInfo(tz)).date()


def _loads(state: BookingState) -> tuple[dict[tuple[str, date], int], dict[tuple[str, int], int]]:
    """Bound calls per (agent, local day) and per (agent, ISO week)."""
    day: dict[tuple[str, date], int] = {}
    week: dict[tuple[str, int], int] = {}
    tzs = {a.id: a.timezone for a in state.agents}
    for c in state.calls:
        if c.bound_agent is None or c.bound_agent not in tzs:
            continue
        d = _local_day(c.start, tzs[c.bound_agent])
        day[(c.bound_agent, d)] = day.get((c.bound_agent, d), 0) + 1
        w = d.isocalendar()
        key = (c.bound_agent, w[0] * 100 + w[1])
        week[key] = week.get(key, 0) + 1
    return day, week


# --- just-in-time assignment -----------------------------------------------------------------


def assign_due(
    state: BookingState,
    *,
    lead: timedelta = DEFAULT_LEAD,
    weights: JitWeights | None = None,
    method: str = "cpsat",
    time_limit: float = 1.0,
    workers: int = 1,
    seed: int = 0,
    solver_params: Mapping[str, Any] | None = None,
) -> JitResult:
    """Bind every unbound call starting before ``now + lead`` (and re-bind stale bindings).

    ``method="cpsat"`` (default) improves the greedy binding with CP-SAT within ``time_limit``
    seconds for the whole call; ``"greedy"`` stops after the greedy pass.
    """
    if method not in ("cpsat", "greedy"):
        raise ValueError(f"method must be 'cpsat' or 'greedy', got {method!r}")
    weights = weights or JitWeights()
    t0 = time.perf_counter()
    idx = index_of(state)
    horizon = state.now + lead
    due = [
        k
        for k in range(len(idx.calls))
        if k not in idx.past and not idx.bound[k] and idx.calls[k].start < horizon
    ]
    if not due:
        stats = SolveStats(
            f"jit-{method}",
            SolveStatus.OPTIMAL,
            time.perf_counter() - t0,
            0.0,
            0.0,
            params={"due": 0, "boundary": 0, "greedy_objective": 0.0},
        )
        return JitResult(state, (), (), stats)
    lo = min(idx.occ_s[k] for k in due)
    hi = max(idx.occ_e[k] for k in due)
    due_set = set(due)
    boundary = [
        k
        for k in range(len(idx.calls))
        if k not in due_set
        and k not in idx.past
        and not idx.bound[k]
        and idx.occ_s[k] < hi
        and idx.occ_e[k] > lo
        and idx.agent_of[k] >= 0
    ]
    model_calls = due + boundary
    hint = {k: idx.agent_of[k] for k in model_calls}
    for k in model_calls:
        if idx.agent_of[k] >= 0:
            idx._unassign(k)
    day_load, week_load = _loads(state)
    cost = _Costs(state, idx, weights, day_load, week_load)
    # Candidates against everybody else's (fixed) cover; the model calls are off the grid.
    cands = {k: cost.candidates(k, hint[k], k in due_set) for k in model_calls}
    for k in model_calls:
        if hint[k] >= 0:
            idx._assign(k, hint[k])
    chosen = _greedy(idx, due, cands, cost)
    objective = _objective(chosen, due, cands, cost)
    for _ in range(GREEDY_PASSES - 1):  # a second pass sees where later calls went
        again = _greedy(idx, due, cands, cost)
        obj2 = _objective(again, due, cands, cost)
        if obj2 >= objective:
            break
        chosen, objective = again, obj2
    greedy_objective = objective
    status, bound = SolveStatus.FEASIBLE, None
    for k in model_calls:  # the passes left the last one on the grid; start clean
        if idx.agent_of[k] >= 0:
            idx._unassign(k)
    if method == "cpsat":
        # ``time_limit`` bounds the whole call: the solver gets what model building left.
        parts = _components(idx, due + boundary, cands, cost)
        total = sum(len(p) for p in parts)
        statuses, bound_sum, obj_sum, solved_all = [], 0.0, 0.0, dict(chosen)
        for part in sorted(parts, key=len):
            # Each component gets a share of what is left, by size; small ones finish early.
            left = time_limit - (time.perf_counter() - t0) - FINISH_MARGIN
            share = max(0.02, left * len(part) / max(1, total))
            deadline = time.perf_counter() + share  # model building counts against it too
            total -= len(part)
            pdue = [k for k in part if k in due_set]
            pbnd = [k for k in part if k not in due_set]
            st_, solved, obj_, bnd_ = _cpsat(
                idx,
                pdue,
                pbnd,
                chosen,
                cands,
                cost,
                weights,
                deadline,
                workers,
                seed,
                solver_params,
            )
            statuses.append(st_)
            mine = _objective(chosen, pdue, cands, cost)
            if solved is not None and obj_ is not None and obj_ <= mine:
                for k in part:
                    solved_all.pop(k, None)
                solved_all.update(solved)
                obj_sum += obj_
                bound_sum += bnd_ or 0.0
            else:  # no better answer in time: this component keeps the greedy binding
                obj_sum += mine
                statuses[-1] = SolveStatus.FEASIBLE
        chosen, objective = solved_all, obj_sum
        bound = bound_sum if all(x is SolveStatus.OPTIMAL for x in statuses) else None
        status = (
            SolveStatus.OPTIMAL
            if all(x is SolveStatus.OPTIMAL for x in statuses)
            else SolveStatus.FEASIBLE
        )
    for k in model_calls:
        if chosen.get(k, -1) >= 0:
            idx._assign(k, chosen[k])
    risky = []
    for k in model_calls:
        # Only a call the cover had already lost gets here; it may still fit by moving others.
        lost = idx.agent_of[k] < 0 and not idx.place(k, SEARCH_DEPTH, [REPAIR_BUDGET])
        if lost and k not in due_set:
            risky.append(k)
    idx.commit()

    bindings: list[Binding] = []
    at_risk: list[AtRisk] = []
    updated: list[Call] = []
    for k in due:
        call = idx.calls[k]
        a = idx.agent_of[k]
        if a < 0:
            at_risk.append(AtRisk(call.id, _uncoverable(call), call.bound_agent))
            if call.bound_agent is not None:
                call = replace(call, bound_agent=None)
                idx.calls[k] = call
                updated.append(call)
            continue
        agent_id = idx.agent_ids[a]
        reasons = cost.reasons(k, a)
        bindings.append(Binding(call.id, agent_id, call.bound_agent, reasons))
        call = replace(call, bound_agent=agent_id)
        idx.calls[k] = call
        idx.bound[k] = True
        idx.stale.discard(k)
        updated.append(call)
    for k in risky:
        at_risk.append(AtRisk(idx.calls[k].id, _uncoverable(idx.calls[k])))
    new = state.with_calls(updated)
    hand_over(state, new, idx)
    stats = SolveStats(
        f"jit-{method}",
        status,
        time.perf_counter() - t0,
        objective,
        bound,
        params={
            "due": len(due),
            "boundary": len(boundary),
            "lead_minutes": lead // timedelta(minutes=1),
            "greedy_objective": greedy_objective,
        },
    )
    return JitResult(new, tuple(bindings), tuple(at_risk), stats)


def _uncoverable(call: Call) -> Reason:
    return Reason(
        "uncoverable",
        f"no qualified agent is free for {call.start:%Y-%m-%d %H:%M} UTC any more; "
        "offer the customer another time",
    )


class _Costs:
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
            d = self._days[(k, tz)] = _local_day(self.idx.calls[k].start, tz)
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


def _greedy(
    idx: BookingIndex,
    due: list[int],
    cands: dict[int, list[tuple[int, int]]],
    cost: _Costs,
) -> dict[int, int]:
    """Improve the cover call by call, in start order: move each due call to its cheapest
    candidate that is free right now. Its current agent is always among them, so coverage is
    never lost. Works in place on the index; returns every model call's agent."""
    extra: dict[tuple[int, date], int] = {}
    for k in sorted(due, key=lambda k: (idx.occ_s[k], k)):
        s, e = idx.occ_s[k], idx.occ_e[k]
        if idx.agent_of[k] >= 0:
            idx._unassign(k)
        _free_owner(idx, k, cands, cost)
        best: tuple[int, int] | None = None
        for a, c in cands[k]:
            if int(idx.grid[a, s:e].max()) != 0 or int(idx.slack[idx.team_of[a], s:e].min()) < 1:
                continue
            c2 = c + cost.w.day_load * 10 * extra.get((a, cost.day_of(k, a)), 0)
            if best is None or (c2, a) < best:
                best = (c2, a)
        if best is None:
            continue
        _c2, a = best
        idx._assign(k, a)
        key = (a, cost.day_of(k, a))
        extra[key] = extra.get(key, 0) + 1
    return {k: a for k, a in enumerate(idx.agent_of) if a >= 0 and k in cands}


def _free_owner(
    idx: BookingIndex, k: int, cands: dict[int, list[tuple[int, int]]], cost: _Costs
) -> None:
    """If the owner is a candidate held only by other model calls that can each step to another
    free candidate of theirs, move them (one swap deep): the greedy's answer to the owner."""
    owner = cost.owner(k)
    if owner < 0 or all(a != owner for a, _c in cands[k]):
        return
    s, e = idx.occ_s[k], idx.occ_e[k]
    blockers = idx.blockers(owner, s, e)
    if not blockers or any(y not in cands for y in blockers):
        return
    mark = len(idx.journal)
    for y in blockers:
        idx._unassign(y)
        ys, ye = idx.occ_s[y], idx.occ_e[y]
        for b, _c in sorted(cands[y], key=lambda t: (t[1], t[0])):
            if b == owner or int(idx.grid[b, ys:ye].max()) != 0:
                continue
            if int(idx.slack[idx.team_of[b], ys:ye].min()) < 1:
                continue
            idx._assign(y, b)
            break
        else:
            idx.rollback(mark)
            return


def _cpsat(
    idx: BookingIndex,
    due: list[int],
    boundary: list[int],
    hint: dict[int, int],
    cands: dict[int, list[tuple[int, int]]],
    cost: _Costs,
    weights: JitWeights,
    deadline: float,
    workers: int,
    seed: int,
    solver_params: Mapping[str, Any] | None = None,
) -> tuple[SolveStatus, dict[int, int] | None, float | None, float | None]:
    """The exact model over the due and boundary calls, hinted with ``hint`` (greedy)."""
    model = cp_model.CpModel()
    x: dict[tuple[int, int], cp_model.IntVar] = {}
    terms: list[tuple[cp_model.IntVar, int]] = []
    hinted_true: dict[int, bool] = {}  # a complete hint lets CP-SAT start from it at once
    due_set = set(due)
    for k in due + boundary:
        for a, c in cands[k]:
            var = model.new_bool_var(f"bind[c{k},a{a}]")
            x[(k, a)] = var
            if c:
                terms.append((var, c))
        vs = [x[(k, a)] for a, _c in cands[k]]
        if k in due_set:
            miss = model.new_bool_var(f"uncovered[c{k}]")
            model.add_exactly_one([*vs, miss])
            terms.append((miss, weights.uncovered * 10))
        elif vs:
            model.add_exactly_one(vs)
        h = hint.get(k, -1)
        if k in due_set:
            model.add_hint(miss, h < 0 or (k, h) not in x)
        for a, _c in cands[k]:
            model.add_hint(x[(k, a)], a == h)
            hinted_true[x[(k, a)].index] = a == h

    by_agent: dict[int, list[tuple[int, int, cp_model.IntVar]]] = {}
    for (k, a), var in x.items():
        by_agent.setdefault(a, []).append((idx.occ_s[k], idx.occ_e[k], var))
    for items in by_agent.values():
        _no_overlap(model, items)

    # Convex day load: the j-th new call of an agent's day costs day_load * (j - 1) extra.
    groups: dict[tuple[int, date], list[cp_model.IntVar]] = {}
    for (k, a), var in x.items():
        if k in due_set:
            groups.setdefault((a, cost.day_of(k, a)), []).append(var)
    for (a, d), vs in groups.items():
        if len(vs) < 2:
            continue
        n = min(len(vs) - 1, DAY_STEPS)
        hinted = sum(1 for v in vs if hinted_true.get(v.index, False))
        steps = [model.new_bool_var(f"dayload[a{a},{d},{j}]") for j in range(1, n + 1)]
        for j, step in enumerate(steps, start=1):
            terms.append((step, weights.day_load * 10 * j))
            model.add_hint(step, hinted - 1 >= j)
        if len(vs) - 1 > n:
            more = model.new_int_var(0, len(vs) - 1 - n, f"dayload[a{a},{d},more]")
            terms.append((more, weights.day_load * 10 * n))
            model.add_hint(more, max(0, hinted - 1 - n))
            model.add(sum(vs) <= 1 + sum(steps) + more)
        else:
            model.add(sum(vs) <= 1 + sum(steps))

    _reserve(model, idx, x)
    model.minimize(sum(c * v for v, c in terms))
    solver = cp_model.CpSolver()
    solver.parameters.max_time_in_seconds = max(0.01, deadline - time.perf_counter())
    solver.parameters.num_workers = max(1, int(workers))
    solver.parameters.random_seed = int(seed)
    params = DEFAULT_SOLVER_PARAMS if solver_params is None else solver_params
    for name, value in params.items():
        setattr(solver.parameters, name, value)
    code = solver.solve(model)
    status = {
        cp_model.OPTIMAL: SolveStatus.OPTIMAL,
        cp_model.FEASIBLE: SolveStatus.FEASIBLE,
        cp_model.INFEASIBLE: SolveStatus.INFEASIBLE,
    }.get(code, SolveStatus.UNKNOWN)
    if status not in (SolveStatus.OPTIMAL, SolveStatus.FEASIBLE):
        return status, None, None, None
    chosen = {k: a for (k, a), var in x.items() if solver.boolean_value(var)}
    return status, chosen, solver.objective_value / 10, solver.best_objective_bound / 10


def _components(
    idx: BookingIndex, calls: list[int], cands: dict[int, list[tuple[int, int]]], cost: _Costs
) -> list[list[int]]:
    """Independent sub-problems: calls interact only if they overlap in time or could land in
    the same agent's day (fairness), so the model splits exactly along those links."""
    parent = {k: k for k in calls}

    def find(k: int) -> int:
        while parent[k] != k:
            parent[k] = parent[parent[k]]
            k = parent[k]
        return k

    def union(a: int, b: int) -> None:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)

    order = sorted(calls, key=lambda k: (idx.occ_s[k], k))
    reach, last = -1, -1
    for k in order:
        if idx.occ_s[k] < reach:
            union(k, last)
        if idx.occ_e[k] > reach:
            reach, last = idx.occ_e[k], k
    first: dict[tuple[int, date], int] = {}
    for k in calls:
        for a, _c in cands[k]:
            key = (a, cost.day_of(k, a))
            if key in first:
                union(k, first[key])
            else:
                first[key] = k
    groups: dict[int, list[int]] = {}
    for k in calls:
        groups.setdefault(find(k), []).append(k)
    return list(groups.values())


def _objective(
    chosen: dict[int, int], due: list[int], cands: dict[int, list[tuple[int, int]]], cost: _Costs
) -> float:
    """The CP-SAT model's objective for any binding, so both methods are judged alike."""
    total = 0
    per_day: dict[tuple[int, date], int] = {}
    for k in due:
        a = chosen.get(k, -1)
        c = next((c for b, c in cands[k] if b == a), None)
        if c is None:
            total += cost.w.uncovered * 10
            continue
        total += c
        key = (a, cost.day_of(k, a))
        per_day[key] = per_day.get(key, 0) + 1
    for n in per_day.values():
        extra = n - 1  # the j-th extra call of a day costs day_load * j, flat beyond DAY_STEPS
        steps = min(extra, DAY_STEPS)
        total += cost.w.day_load * 10 * (steps * (steps + 1) // 2 + (extra - steps) * DAY_STEPS)
    return total / 10


def _no_overlap(model: cp_model.CpModel, items: list[tuple[int, int, cp_model.IntVar]]) -> None:
    """At most one of the intervals covering each start point (intervals: cliques at starts)."""
    if len(items) < 2:
        return
    items.sort(key=lambda t: (t[0], t[1]))
    active: list[tuple[int, int, cp_model.IntVar]] = []
    for s, e, var in items:
        active = [t for t in active if t[1] > s]
        active.append((s, e, var))
        if len(active) >= 2:
            model.add_at_most_one([t[2] for t in active])


def _reserve(
    model: cp_model.CpModel, idx: BookingIndex, x: dict[tuple[int, int], cp_model.IntVar]
) -> None:
    """Per team and stretch between call boundaries: calls on the team <= its reserve slack."""
    by_team: dict[int, list[tuple[int, int, cp_model.IntVar, int]]] = {}
    for (k, a), var in x.items():
        by_team.setdefault(int(idx.team_of[a]), []).append((idx.occ_s[k], idx.occ_e[k], var, k))
    for t, items in by_team.items():
        lo = min(s for s, _e, _v, _k in items)
        hi = max(e for _s, e, _v, _k in items)
        if int(idx.slack[t, lo:hi].min()) >= len({k for _s, _e, _v, k in items}):
            continue  # the team could hold every one of these calls at once: never binding
        points = sorted({p for s, e, _v, _k in items for p in (s, e)})
        items.sort(key=lambda it: it[0])
        active: list[tuple[int, int, cp_model.IntVar, int]] = []
        nxt = 0
        for p, q in itertools.pairwise(points):
            while nxt < len(items) and items[nxt][0] <= p:
                active.append(items[nxt])
                nxt += 1
            active = [it for it in active if it[1] > p]
            if not active:
                continue
            limit = max(0, int(idx.slack[t, p:q].min()))
            if limit >= len({it[3] for it in active}):
                continue
            model.add(sum(it[2] for it in active) <= limit)


# --- disruption ------------------------------------------------------------------------------


def disrupt(state: BookingState, change: Change | Sequence[Change]) -> DisruptionReport:
    """Apply ``change`` to the agents and repair the cover with the fewest visible changes."""
    t0 = time.perf_counter()
    changes = list(change) if isinstance(change, Sequence) else [change]
    idx = index_of(state)
    before = list(idx.agent_of)
    was_bound = list(idx.bound)
    new_state = state
    touched: set[int] = set()
    for ch in changes:
        if ch.agent_id not in new_state.agent_index:
            raise ValueError(f"unknown agent {ch.agent_id!r}")
        agent = apply_change(new_state.agent(ch.agent_id), ch)
        new_state = new_state.with_agent(agent)
        a = idx.apos[agent.id]
        idx.update_agent(a, agent)
        touched.add(a)

    affected: list[int] = []
    for a in touched:
        for s, e, k in list(idx.occ[a]):
            if int(idx.grid[a, s:e].max()) > NOT_WORKING:
                affected.append(k)
    for k in affected:
        idx._unassign(k)
    for t in {int(idx.team_of[a]) for a in touched}:
        affected.extend(_relieve_reserve(idx, t))
    hit = set(affected)
    was_unplaced = [k for k in idx.unplaced() if k not in hit]

    lost: list[int] = []
    for k in sorted(set(affected), key=lambda k: (idx.occ_s[k], k)):
        prev = before[k]
        prefer = [p for p in (_owner(idx, k), prev) if p >= 0]
        if not idx.place(k, SEARCH_DEPTH, [REPAIR_BUDGET], prefer=prefer):
            lost.append(k)
    # Last resort: move bound calls (each one a visible change) to keep a call on the books.
    still: list[int] = []
    for k in lost:
        if not idx.place(k, 1, [REPAIR_BUDGET], allow_bound=True):
            still.append(k)
    for k in was_unplaced:  # new capacity (a shift added) may rescue calls lost earlier
        idx.place(k, SEARCH_DEPTH, [REPAIR_BUDGET])
    idx.commit()

    rebound: list[Binding] = []
    at_risk: list[AtRisk] = []
    updated: list[Call] = []
    moved_unbound = 0
    for k in range(len(idx.calls)):
        if k in idx.past or idx.agent_of[k] == before[k]:
            continue
        call = idx.calls[k]
        if not was_bound[k]:
            if idx.agent_of[k] >= 0 and before[k] >= 0:
                moved_unbound += 1
            continue
        if idx.agent_of[k] >= 0:
            agent_id = idx.agent_ids[idx.agent_of[k]]
            rebound.append(
                Binding(
                    call.id,
                    agent_id,
                    call.bound_agent,
                    (Reason("rebound", f"{call.bound_agent} can no longer take it"),),
                )
            )
            call = replace(call, bound_agent=agent_id)
        else:
            call = replace(call, bound_agent=None)
            idx.bound[k] = False
        idx.calls[k] = call
        updated.append(call)
    for k in still:
        call = idx.calls[k]
        held = idx.agent_ids[before[k]] if before[k] >= 0 else None
        at_risk.append(AtRisk(call.id, _uncoverable(call), held))
    final = new_state.with_calls(updated)
    hand_over(state, final, idx)
    return DisruptionReport(
        final,
        tuple(rebound),
        tuple(at_risk),
        moved_unbound,
        tuple(idx.calls[k].id for k in sorted(set(affected))),
        time.perf_counter() - t0,
    )


def _owner(idx: BookingIndex, k: int) -> int:
    owner = idx.calls[k].owner_agent
    return idx.apos.get(owner, -1) if owner is not None else -1


def _relieve_reserve(idx: BookingIndex, team: int) -> list[int]:
    """Unplace calls of ``team`` until its reserve holds again; unbound calls go first."""
    out: list[int] = []
    while True:
        neg = np.flatnonzero(idx.slack[team] < 0)
        if neg.size == 0:
            return out
        minute = int(neg[0])
        holders = [
            k
            for a in np.flatnonzero(idx.team_of == team).tolist()
            for s, e, k in idx.occ[a]
            if s <= minute < e
        ]
        k = min(holders, key=lambda k: (idx.bound[k], -idx.occ_s[k], k))
        idx._unassign(k)
        out.append(k)
