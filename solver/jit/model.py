"""The exact binding model (CP-SAT): one choice of agent per due or boundary call, no overlap
per agent, team reserves, and the convex day load; split into independent components and
hinted with the greedy, so it never returns worse than the greedy."""

from __future__ import annotations

import itertools
import time
from collections.abc import Mapping
from datetime import date
from types import MappingProxyType
from typing import Any

from ortools.sat.python import cp_model

from solver.jit.costs import Costs, JitWeights
from solver.plan import SolveStatus
from solver.slots.index import BookingIndex

# One worker without presolve and with the full LP relaxation proves the optimum fastest on the
# booking benchmark's due calls: presolve alone costs more than the whole solve, and a second worker
# only competes for the machine's two cores (figures: benchmarks/README.md, Figures behind design
# choices).
DEFAULT_SOLVER_PARAMS: Mapping[str, Any] = MappingProxyType(
    {"cp_model_presolve": False, "linearization_level": 2}
)
DAY_STEPS = 3  # convex day-load steps modelled exactly; beyond that the last slope continues


def solve_cpsat(
    idx: BookingIndex,
    due: list[int],
    boundary: list[int],
    hint: dict[int, int],
    cands: dict[int, list[tuple[int, int]]],
    cost: Costs,
    weights: JitWeights,
    deadline: float,
    workers: int,
    seed: int,
    solver_params: Mapping[str, Any] | None = None,
) -> tuple[SolveStatus, dict[int, int] | None, int | None, float | None]:
    """The exact model over the due and boundary calls, hinted with ``hint`` (greedy): its
    status, the binding, its objective and the proven bound, both in tenths (the model's integer
    units, as :func:`binding_objective` counts)."""
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
    return status, chosen, round(solver.objective_value), solver.best_objective_bound


def split_components(
    idx: BookingIndex, calls: list[int], cands: dict[int, list[tuple[int, int]]], cost: Costs
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


def binding_objective(
    chosen: dict[int, int], due: list[int], cands: dict[int, list[tuple[int, int]]], cost: Costs
) -> int:
    """The CP-SAT model's objective for any binding, so both methods are judged alike; in
    tenths, the model's integer units, so that the objectives of components add up exactly
    (as floats, 5.2 + 46.7 came to 51.900000000000006, worse than the 51.9 of the same binding
    judged whole)."""
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
    return total


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
