"""Just-in-time binding: give the calls due within the lead time a named agent (see
:mod:`solver.jit`), greedy first, then the CP-SAT model within the time limit."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import date, timedelta
from typing import Any

from solver.capability import AtRisk, Binding, BookingState, Call, exclusions
from solver.jit.costs import Costs, JitWeights, local_day
from solver.jit.model import binding_objective, solve_cpsat, split_components
from solver.plan import Reason, SolveStats, SolveStatus
from solver.slots.index import SEARCH_DEPTH, BookingIndex, hand_over, index_of

DEFAULT_LEAD = timedelta(hours=2)
GREEDY_PASSES = 3
FINISH_MARGIN = 0.12  # seconds kept back from the time limit for applying the binding
REPAIR_BUDGET = 256


@dataclass(frozen=True, slots=True)
class JitResult:
    state: BookingState
    bindings: tuple[Binding, ...]
    at_risk: tuple[AtRisk, ...]
    stats: SolveStats


def _loads(state: BookingState) -> tuple[dict[tuple[str, date], int], dict[tuple[str, int], int]]:
    """Bound calls per (agent, local day) and per (agent, ISO week)."""
    day: dict[tuple[str, date], int] = {}
    week: dict[tuple[str, int], int] = {}
    tzs = {a.id: a.timezone for a in state.agents}
    for c in state.calls:
        if c.bound_agent is None or c.bound_agent not in tzs:
            continue
        d = local_day(c.start, tzs[c.bound_agent])
        day[(c.bound_agent, d)] = day.get((c.bound_agent, d), 0) + 1
        w = d.isocalendar()
        key = (c.bound_agent, w[0] * 100 + w[1])
        week[key] = week.get(key, 0) + 1
    return day, week


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
    cost = Costs(state, idx, weights, day_load, week_load)
    # Candidates against everybody else's (fixed) cover; the model calls are off the grid.
    cands = {k: cost.candidates(k, hint[k], k in due_set) for k in model_calls}
    for k in model_calls:
        if hint[k] >= 0:
            idx._assign(k, hint[k])
    chosen = _greedy(idx, due, cands, cost)
    objective = binding_objective(chosen, due, cands, cost)
    for _ in range(GREEDY_PASSES - 1):  # a second pass sees where later calls went
        again = _greedy(idx, due, cands, cost)
        obj2 = binding_objective(again, due, cands, cost)
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
        parts = split_components(idx, due + boundary, cands, cost)
        total = sum(len(p) for p in parts)
        statuses, bound_sum, obj_sum, solved_all = [], 0.0, 0, dict(chosen)
        for part in sorted(parts, key=len):
            # Each component gets a share of what is left, by size; small ones finish early.
            left = time_limit - (time.perf_counter() - t0) - FINISH_MARGIN
            share = max(0.02, left * len(part) / max(1, total))
            deadline = time.perf_counter() + share  # model building counts against it too
            total -= len(part)
            pdue = [k for k in part if k in due_set]
            pbnd = [k for k in part if k not in due_set]
            st_, solved, obj_, bnd_ = solve_cpsat(
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
            mine = binding_objective(chosen, pdue, cands, cost)
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
    excluded = {c.id: exclusions(state, c.id) for c in state.capabilities} if state.blocked else {}
    for k in due:
        call = idx.calls[k]
        a = idx.agent_of[k]
        if a < 0:
            at_risk.append(AtRisk(call.id, uncoverable(call), call.bound_agent))
            if call.bound_agent is not None:
                call = replace(call, bound_agent=None)
                idx.calls[k] = call
                updated.append(call)
            continue
        agent_id = idx.agent_ids[a]
        # Who was left out and why, for the helpdesk: a binding never falls on a blocked agent.
        reasons = (*cost.reasons(k, a), *excluded.get(call.capability_id, ()))
        bindings.append(Binding(call.id, agent_id, call.bound_agent, reasons))
        call = replace(call, bound_agent=agent_id)
        idx.calls[k] = call
        idx.bound[k] = True
        idx.stale.discard(k)
        updated.append(call)
    for k in risky:
        at_risk.append(AtRisk(idx.calls[k].id, uncoverable(idx.calls[k])))
    new = state.with_calls(updated)
    hand_over(state, new, idx)
    stats = SolveStats(
        f"jit-{method}",
        status,
        time.perf_counter() - t0,
        objective / 10,  # tenths (exact sums of components) to the weights' units
        None if bound is None else bound / 10,
        params={
            "due": len(due),
            "boundary": len(boundary),
            "lead_minutes": lead // timedelta(minutes=1),
            "greedy_objective": greedy_objective / 10,
        },
    )
    return JitResult(new, tuple(bindings), tuple(at_risk), stats)


def uncoverable(call: Call) -> Reason:
    return Reason(
        "uncoverable",
        f"no qualified agent is free for {call.start:%Y-%m-%d %H:%M} UTC any more; "
        "offer the customer another time",
    )


def _greedy(
    idx: BookingIndex,
    due: list[int],
    cands: dict[int, list[tuple[int, int]]],
    cost: Costs,
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
    idx: BookingIndex, k: int, cands: dict[int, list[tuple[int, int]]], cost: Costs
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
