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

A deadline that holds: ``time_limit_s`` runs from the call's start, model building included.
Building the arrays and the flow cannot be interrupted (the flow is one OR-Tools call holding
the GIL), so each phase starts only when its *predicted* time fits what is left after keeping
back the time to build the plan: the flow when its arcs fit (else :func:`greedy_assign`, whose
rounds stop at the deadline and always give a valid assignment, and no bound is reported), the
local search and CP-SAT when any time is left (each neighbourhood gets at most what is left).
Every plan is valid and never worse than the list-scheduling seed of the assignment made.
"""

from __future__ import annotations

import math
import time

import numpy as np

from solver.batch import reasons
from solver.batch.costs import pair_index, schedule_groups, total_cost
from solver.batch.data import BatchData, IntArray, build
from solver.batch.flow import components, solve_flow
from solver.batch.lns import improve
from solver.batch.moves import Guarded, guard, keep_set
from solver.batch.params import BatchParams
from solver.batch.repair import repair_minutes, ticket_pair_ptr
from solver.batch.seed import greedy_assign, list_schedule
from solver.plan import Plan, Reason, SolveStatus
from solver.problem import Problem
from solver.schedule import finalize_plan

# What the phases that cannot be interrupted cost, to size the work to the time left (figures:
# benchmarks/README.md, "A deadline that holds"). Building the plan (reasons, schedule,
# evaluation) is paid after the search stops; the flow is one OR-Tools call that holds the GIL.
_PLAN_SECONDS_BASE = 0.01
_PLAN_SECONDS_PER_TICKET = 8e-6  # every ticket (a queued one: its reasons, its evaluation)
_PLAN_SECONDS_PER_ASSIGNED = 32e-6  # more for an assigned one (reasons, schedule, order)
_FLOW_SECONDS_BASE = 0.002
# 0.8 us an arc when first measured (1.49 M arcs in 1.15 s); 1.0-1.3 us on 2026-12-07 (1.47-1.92
# s, load 1-1.6), when a 2 s limit that let the flow start returned after 2.88 s. The flow cannot
# be interrupted, so the prediction takes the slow end.
_FLOW_SECONDS_PER_ARC = 1.3e-6
# The churn guard prices every move of an owned ticket (a revert each): 2.4-3.4 s for 567
# moves at 2.6 M pairs under load 3 (benchmarks/README.md, "Exact at density").
_GUARD_SECONDS_BASE = 0.005
_GUARD_SECONDS_PER_MOVE = 5e-3
# The search stops this share of the guard's predicted time early, and the guard still runs
# when it starts up to that late: a search that overran its stop by a neighbourhood's last
# milliseconds does not cost the plan its guard (the prediction is a loaded machine's).
_GUARD_SLACK = 0.25
# The flow always runs when predicted below this: a fallback would cost about as much.
_FLOW_ALWAYS_SECONDS = 0.02
# When the whole churn guard does not fit beside a search, the search takes this share of what
# is left and the guard, greedy, the rest: an even split.
_SHORT_SEARCH_SHARE = 0.5
# Less than this left for the local search and CP-SAT: skip them (State alone costs more).
_MIN_SEARCH_SECONDS = 0.02


def plan_seconds(n_tickets: int, n_assigned: int | None = None) -> float:
    """Predicted time to turn sequences into a :class:`Plan` (reasons, schedule, evaluation),
    with ``n_assigned`` of the tickets assigned (all of them when not given)."""
    assigned = n_tickets if n_assigned is None else n_assigned
    # Per ticket it costs more on a larger queue (5 s at 100,000 tickets, 0.42 s at 10,000).
    scale = 1.0 + 0.5 * max(0.0, math.log10(max(1, n_tickets) / 10_000))
    return _PLAN_SECONDS_BASE + scale * (
        _PLAN_SECONDS_PER_TICKET * n_tickets + _PLAN_SECONDS_PER_ASSIGNED * assigned
    )


def flow_seconds(data: BatchData) -> float:
    """Predicted wall time of :func:`solve_flow` on ``data`` (arcs: pairs, queue, slots)."""
    slots = int(np.minimum(np.where(data.eligible, data.slots, 0), data.n_tickets).sum())
    arcs = len(data.pair_ticket) + data.n_tickets + slots
    nodes = data.n_tickets + data.n_agents
    # OR-Tools' time per arc grows with the network: about 4x from 11,000 nodes (1,000 x 10,000)
    # to 110,000 (10,000 x 100,000, 3.4-4.3 us an arc): fitted as 1 + 3 log10(nodes / 11,000).
    per_arc = _FLOW_SECONDS_PER_ARC * (1.0 + 3.0 * max(0.0, math.log10(max(1, nodes) / 11_000)))
    return _FLOW_SECONDS_BASE + per_arc * arcs


def guard_seconds(data: BatchData, agent_of: IntArray) -> float:
    """Predicted wall time of the churn guard on a plan with about as many moves as
    ``agent_of`` (owned tickets the owner could keep that are elsewhere)."""
    keep, _ = keep_set(data)
    moves = int(np.count_nonzero(agent_of[keep] != data.owner[keep])) if len(keep) else 0
    return _GUARD_SECONDS_BASE + _GUARD_SECONDS_PER_MOVE * moves


def optimize(
    problem: Problem, params: BatchParams | None = None, *, deadline: float | None = None
) -> Plan:
    """Assign and order the whole queue of ``problem``; see the module docstring.

    ``params.time_limit_s`` bounds the whole call from its start, model building included;
    ``deadline`` (a :func:`time.perf_counter` value, possibly already past) ends it earlier —
    for a caller with a deadline of its own. Each phase starts only if its predicted time fits
    what is left (less the time kept back to build the plan), so the plan is always valid and
    never worse than the list-scheduling seed of the assignment that was made.
    """
    params = params or BatchParams()
    t0 = time.perf_counter()
    end = t0 + params.time_limit_s
    if deadline is not None:
        end = min(end, deadline)
    phases: dict[str, float] = {}

    data = build(problem, params.weights)
    t1 = time.perf_counter()
    phases["build"] = t1 - t0
    # The search stops here, leaving time to build the plan (as if every ticket were assigned:
    # the local search may seat queued ones).
    stop = end - plan_seconds(data.n_tickets)

    predicted = flow_seconds(data)
    notes: list[str] = []
    bound: int | None
    if predicted <= max(_FLOW_ALWAYS_SECONDS, stop - t1):
        flow = solve_flow(data, params.max_pairs)
        agent_of, n_repaired = repair_minutes(data, flow.agent_of)
        pool_of, n_pools = components(data)
        largest = int(np.bincount(pool_of).max()) if n_pools else 0
        notes.append(
            f"qualification graph: {n_pools} independent pool(s), the largest {largest} ticket(s)"
        )
        bound = flow.cost
        flow_note = (
            f"flow: {flow.n_arcs} arcs, optimum {flow.cost} (a lower bound on the objective)"
        )
        if flow.rounds:
            flow_note += (
                f"; solved on a core of {flow.core_pairs} of {flow.n_pairs} qualified pairs, "
                f"proven optimal for all of them by reduced costs in {flow.rounds} round(s)"
                if not flow.full_fallback
                else f"; the core had not settled after {flow.rounds} round(s): solved whole"
            )
        notes.append(flow_note)
        if n_repaired:
            notes.append(f"working-minutes repair moved {n_repaired} ticket(s) off overfull agents")
    else:
        agent_of, rounds = greedy_assign(
            data, end - plan_seconds(data.n_tickets, 0), _PLAN_SECONDS_PER_ASSIGNED
        )
        bound = None
        notes.append(
            f"deadline: the exact flow (predicted {predicted:.2f} s) did not fit the "
            f"{max(0.0, stop - t1):.2f} s left; greedy proposal rounds ({rounds}) assigned "
            f"{int((agent_of >= 0).sum())} of {data.n_tickets} ticket(s); no bound proven"
        )
    t2 = time.perf_counter()
    phases["flow"] = t2 - t1
    phases["flow_predicted"] = predicted

    sequences, rule_of = list_schedule(data, agent_of)
    seed_cost = total_cost(data, sequences)
    t3 = time.perf_counter()
    phases["seed"] = t3 - t2
    notes.append(f"seed (list scheduling) objective {seed_cost}")
    seed_note = len(notes) - 1
    # Churn guard (solver.batch.moves): the plan moves owned tickets only to save SLA. Pricing
    # the moves costs time (about 5 ms a move at 2.6 M pairs), so it runs once, on the plan
    # the search returns, and the search stops early enough for it; when it cannot fit whole,
    # the search takes half of what is left and the guard makes one greedy pass in the rest
    # (a move budget the caller set is held whole regardless).
    guard_predicted = guard_seconds(data, agent_of)
    phases["guard_predicted"] = guard_predicted
    budget = params.max_moves is not None

    left = stop - time.perf_counter()
    whole_guard = (1.0 + _GUARD_SLACK) * guard_predicted
    greedy = not budget and params.use_sequencing and left < whole_guard + _MIN_SEARCH_SECONDS

    def guarded_plan(seqs: dict[int, list[int]], force: bool = budget) -> Guarded | None:
        """``seqs`` guarded, or None when the guard does not fit the time left (unless
        ``force``: a move budget must hold; or greedy: it prices what it can)."""
        started = time.perf_counter()
        if greedy:
            if started >= stop:
                return None
        elif not force and started + guard_predicted > stop + _GUARD_SLACK * guard_predicted:
            return None
        # Past the search's stop (the plan's time is kept back after it) the guard gives up;
        # a budget must hold regardless.
        give_up = None if params.max_moves is not None else stop
        out = guard(
            data,
            seqs,
            params.max_moves,
            stop,
            params.min_move_saving(),
            give_up,
            seat_first=params.keep_seated,
            greedy=greedy,
        )
        phases["guard"] = phases.get("guard", 0.0) + time.perf_counter() - started
        if out is None:
            notes.append("churn guard: gave up at the deadline; the plan keeps its moves")
        return out

    policy = "optimizer-seed"
    final_cost = seed_cost
    guarded: Guarded | None = None
    search_stop = stop - whole_guard
    if greedy:
        search_stop = t3 + _SHORT_SEARCH_SHARE * max(0.0, left)
    if params.use_sequencing and search_stop - t3 >= _MIN_SEARCH_SECONDS:
        policy = "optimizer"
        result = improve(data, sequences, params, search_stop)
        improved = guarded_plan(result.sequences, force=budget)
        improved_seqs = result.sequences if improved is None else improved.sequences
        improved_cost = total_cost(data, improved_seqs)
        # Never worse than the seed as the guard leaves it: guard the seed too when time is
        # left (or when a budget must hold and the search's plan is dearer), keep the cheaper.
        options = [(improved_cost, 0, improved, improved_seqs)]
        guarded_seed = guarded_plan(sequences, force=budget and improved_cost > seed_cost)
        if guarded_seed is not None:
            seed_cost = total_cost(data, guarded_seed.sequences)
            options.append((seed_cost, 1, guarded_seed, guarded_seed.sequences))
        else:
            options.append((seed_cost, 1, None, sequences))
        final_cost, which, guarded, sequences = min(options, key=lambda o: (o[0], o[1]))
        if which == 0:
            rule_of.update(dict.fromkeys(result.by_local, "local"))
            rule_of.update(dict.fromkeys(result.by_cpsat, "lns"))
        notes.append(
            f"local search: {result.local_moves} moves; "
            f"neighbourhoods: {result.tried} tried, {result.improved} improved, "
            f"objective {seed_cost} -> {final_cost}"
        )
        phases["lns"] = time.perf_counter() - t3
    else:
        if params.use_sequencing:
            policy = "optimizer"
            notes.append(
                f"deadline: no time left for the local search or CP-SAT "
                f"({max(0.0, search_stop - t3):.3f} s); the plan is the seed"
            )
        guarded = guarded_plan(sequences)
        if guarded is not None:
            sequences, final_cost = guarded.sequences, total_cost(data, guarded.sequences)
            seed_cost = final_cost  # the seed is the plan: its objective is the guarded one
    if guarded is None:
        notes.append("churn guard: no time left to price the moves; the plan keeps them")
    else:
        if guarded.unpriced:
            notes.append(
                f"churn guard: the time left did not fit it whole ({guard_predicted:.2f} s "
                f"predicted): one greedy pass reverted as it priced, and {guarded.unpriced} "
                "move(s) it did not reach stand unweighed"
            )
        notes.append(
            f"churn guard: {guarded.moved} owned ticket(s) moved, each saving at least "
            f"{params.min_move_saving():,} of SLA cost ({guarded.reverted} move(s) reverted: "
            + ("saving less" if params.max_moves is None else "saving less or over the budget")
            + f"); {len(guarded.forced)} moved because their owner cannot hold them"
            + ("" if params.max_moves is None else f"; budget {params.max_moves} move(s)")
        )
    notes[seed_note] = f"seed (list scheduling) objective {seed_cost}"
    phases["seed_objective"] = float(seed_cost)
    phases["plan_predicted"] = end - stop

    # The bound holds for every valid plan, so meeting it proves optimality.
    optimal = bound is not None and final_cost <= bound
    status = SolveStatus.OPTIMAL if optimal else SolveStatus.FEASIBLE
    return _plan(
        data, sequences, rule_of, policy, params, bound, phases, notes, t0, status, guarded
    )


def _plan(
    data: BatchData,
    sequences: dict[int, list[int]],
    rule_of: dict[int, str],
    policy: str,
    params: BatchParams,
    bound: int | None,
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
        bound=None if bound is None else float(bound),
        seed=params.seed,
        params=params.as_dict(),
        phases=phases,
        notes=notes,
    )
