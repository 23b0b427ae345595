"""``optimize(problem, params) -> Plan``: the batch optimizer end to end.

1. build the arrays (:mod:`~solver.batch.data`);
2. who takes what: exact min-cost flow (:mod:`~solver.batch.flow`), then the working-minutes
   repair (:mod:`~solver.batch.repair`);
3. in what order: per-agent list scheduling (:mod:`~solver.batch.seed`), improved by CP-SAT
   neighbourhoods that may also move tickets between agents (:mod:`~solver.batch.lns`), each
   accepted only when the exact objective drops — so the result is never worse than the seed;
4. the plan, scheduled and scored by the shared :func:`~solver.schedule.finalize_plan`.

The flow's optimum is a lower bound on every valid plan's objective (see
:mod:`~solver.batch.data`), reported as the bound; the status is OPTIMAL only when the final
objective meets it, which proves the plan optimal.
"""

from __future__ import annotations

import time

import numpy as np

from solver.batch import reasons
from solver.batch.costs import pair_index, schedule_groups, total_cost
from solver.batch.data import BatchData, build
from solver.batch.flow import components, solve_flow
from solver.batch.lns import improve
from solver.batch.moves import Guarded, guard
from solver.batch.params import BatchParams
from solver.batch.repair import repair_minutes, ticket_pair_ptr
from solver.batch.seed import list_schedule
from solver.plan import Plan, Reason, SolveStatus
from solver.problem import Problem
from solver.schedule import finalize_plan

# The time kept back to build the plan: the base also covers importing CP-SAT on a first solve,
# which a caller timing the whole call pays for; the time per ticket is above what building the
# plan takes at L on a busy 2-core machine (figures: benchmarks/README.md, Figures behind design
# choices).
_PLAN_SECONDS_BASE = 0.5
_PLAN_SECONDS_PER_TICKET = 100e-6


def optimize(problem: Problem, params: BatchParams | None = None) -> Plan:
    """Assign and order the whole queue of ``problem``; see the module docstring."""
    params = params or BatchParams()
    t0 = time.perf_counter()
    # Leave time to build the plan (reasons, schedule, evaluation) after the search stops.
    reserve = _PLAN_SECONDS_BASE + _PLAN_SECONDS_PER_TICKET * len(problem.tickets)
    deadline = t0 + max(0.0, params.time_limit_s - reserve)
    phases: dict[str, float] = {}

    data = build(problem, params.weights, params.max_pairs)
    t1 = time.perf_counter()
    phases["build"] = t1 - t0

    flow = solve_flow(data)
    pool_of, n_pools = components(data)
    agent_of, n_repaired = repair_minutes(data, flow.agent_of)
    t2 = time.perf_counter()
    phases["flow"] = t2 - t1

    sequences, rule_of = list_schedule(data, agent_of)
    # Churn guard (solver.batch.moves): the seed, too, moves owned tickets only to save SLA.
    guard_started = time.perf_counter()
    guarded = guard(data, sequences, params.max_moves, deadline, params.min_move_saving())
    guard_s = time.perf_counter() - guard_started
    phases["guard_seed"] = guard_s
    sequences = guarded.sequences
    seed_cost = total_cost(data, sequences)
    t3 = time.perf_counter()
    phases["seed"] = t3 - t2

    if data.relaxed_bound is None:
        bound = flow.cost
        flow_note = (
            f"flow: {flow.n_arcs} arcs, optimum {flow.cost} (a lower bound on the objective)"
        )
    else:
        bound = data.relaxed_bound
        flow_note = (
            f"flow: {flow.n_arcs} arcs over each ticket's cheapest agents "
            f"({len(data.pair_ticket)} of {data.pairs_before_pruning} qualified pairs), "
            f"optimum {flow.cost} on them; bound {bound}: every ticket at its cheapest option"
        )
    largest = int(np.bincount(pool_of).max()) if n_pools else 0
    notes = [
        f"qualification graph: {n_pools} independent pool(s), the largest {largest} ticket(s)",
        flow_note,
        f"seed (list scheduling) objective {seed_cost}",
    ]
    if n_repaired:
        notes.append(f"working-minutes repair moved {n_repaired} ticket(s) off overfull agents")
    policy = "optimizer-seed"
    final_cost = seed_cost
    if params.use_sequencing:
        policy = "optimizer"
        # The search stops early enough for the guard to run again on its result (twice what
        # it took on the seed: the search leaves more moves to price).
        result = improve(data, sequences, params, deadline - 2.0 * guard_s)
        guard_started = time.perf_counter()
        improved = guard(
            data, result.sequences, params.max_moves, deadline, params.min_move_saving()
        )
        phases["guard"] = time.perf_counter() - guard_started
        improved_cost = total_cost(data, improved.sequences)
        if improved_cost <= seed_cost:  # never worse than the (guarded) seed
            guarded, sequences, final_cost = improved, improved.sequences, improved_cost
        rule_of.update(dict.fromkeys(result.by_local, "local"))
        rule_of.update(dict.fromkeys(result.by_cpsat, "lns"))
        notes.append(
            f"local search: {result.local_moves} moves; "
            f"neighbourhoods: {result.tried} tried, {result.improved} improved, "
            f"objective {seed_cost} -> {final_cost}"
        )
        phases["lns"] = time.perf_counter() - t3
    notes.append(
        f"churn guard: {guarded.moved} owned ticket(s) moved, each saving at least "
        f"{params.min_move_saving():,} of SLA cost ({guarded.reverted} move(s) saving less "
        f"reverted); {len(guarded.forced)} moved because their owner cannot hold them"
        + ("" if params.max_moves is None else f"; budget {params.max_moves} move(s)")
    )
    phases["seed_objective"] = float(seed_cost)

    # The bound holds for every valid plan, so meeting it proves optimality.
    status = SolveStatus.OPTIMAL if final_cost <= bound else SolveStatus.FEASIBLE
    return _plan(
        data, sequences, rule_of, policy, params, bound, phases, notes, t0, status, guarded
    )


def _plan(
    data: BatchData,
    sequences: dict[int, list[int]],
    rule_of: dict[int, str],
    policy: str,
    params: BatchParams,
    bound: int,
    phases: dict[str, float],
    notes: list[str],
    t0: float,
    status: SolveStatus = SolveStatus.FEASIBLE,
    guarded: Guarded | None = None,
) -> Plan:
    problem = data.problem
    agents_l = [a for a, seq in sequences.items() for _ in seq]
    tickets_l = [t for seq in sequences.values() for t in seq]
    agents = np.asarray(agents_l, dtype=np.int64)
    tickets = np.asarray(tickets_l, dtype=np.int64)
    start, end = schedule_groups(data, agents, tickets)
    waste = data.pair_waste[pair_index(data, tickets, agents)] if len(tickets) else tickets
    late = data.late_cost(tickets, start, end).tolist()
    starts, ends, wastes = start.tolist(), end.tolist(), waste.tolist()
    order_note = {
        a: reasons.order_detail(data, a, seq, rule_of.get(a, "local"))
        for a, seq in sequences.items()
    }
    why: dict[str, tuple[Reason, ...]] = {}
    for i, (t, a) in enumerate(zip(tickets_l, agents_l, strict=True)):
        why[problem.tickets[t].id] = reasons.for_assignment(
            data,
            t,
            a,
            len(sequences[a]),
            starts[i],
            ends[i],
            late[i],
            wastes[i],
            order_note[a],
            guarded,
        )
    assigned = np.zeros(data.n_tickets, dtype=bool)
    assigned[tickets] = True
    queued = np.flatnonzero(~assigned)
    ptr = ticket_pair_ptr(data)
    candidates = (ptr[queued + 1] - ptr[queued]).tolist()
    queued_why = reasons.queued_all(data, queued.tolist(), candidates, guarded)
    seqs = {
        problem.agents[a].id: [problem.tickets[t].id for t in seq]
        for a, seq in sequences.items()
        if seq
    }
    return finalize_plan(
        problem,
        seqs,
        queued_why,
        policy=policy,
        wall_seconds=time.perf_counter() - t0,
        status=status,
        reasons=why,
        weights=params.weights,
        bound=float(bound),
        seed=params.seed,
        params=params.as_dict(),
        phases=phases,
        notes=notes,
    )
