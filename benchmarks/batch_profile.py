"""Who-takes-what at scale: the batch optimizer's model building and min-cost flow, timed.

    python -m benchmarks.batch_profile                   # L tight and L, 3 repeats each
    python -m benchmarks.batch_profile --sizes M:tight --lp
    python -m benchmarks.batch_profile --sizes M:tight --profile 10   # pyinstrument, full solve

For each instance it prints the qualified pairs, the flow's arcs, the median wall time of
building the arrays (qualification, pair costs) and of solving the flow, the working-minutes
repair, and with ``--lp`` the gap between the flow optimum and scipy's LP (HiGHS) of the same
transportation problem — which must be 0. ``--profile SECONDS`` runs the whole optimizer once
under pyinstrument with that time limit and prints where the time went.

Timings on a shared machine vary: run it when the machine is quiet, and more than once.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Sequence

import numpy as np


def lp_optimum(data: object) -> float:
    """scipy/HiGHS optimum of the flow's transportation LP (convex load as unit pieces)."""
    from scipy.optimize import linprog
    from scipy.sparse import coo_matrix

    from solver.batch.data import BatchData

    assert isinstance(data, BatchData)
    n_t, n_a, n_p = data.n_tickets, data.n_agents, len(data.pair_ticket)
    slots = np.where(data.eligible, data.slots, 0)
    slot_agent = np.repeat(np.arange(n_a), slots)
    first = np.concatenate(([0], np.cumsum(slots)))[:-1]
    k = np.arange(len(slot_agent)) - np.repeat(first, slots) + 1
    o = data.open_tickets[slot_agent]
    slot_cost = data.weights.load * ((o + k) ** 2 - (o + k - 1) ** 2)
    n_s = len(slot_agent)
    cost = np.concatenate((data.pair_cost, data.queue_cost, slot_cost)).astype(float)
    pairs = np.arange(n_p)
    rows = np.concatenate(
        (data.pair_ticket, n_t + data.pair_agent, np.arange(n_t), n_t + slot_agent)
    )
    cols = np.concatenate((pairs, pairs, n_p + np.arange(n_t), n_p + n_t + np.arange(n_s)))
    vals = np.concatenate((np.ones(2 * n_p + n_t), -np.ones(n_s)))
    a_eq = coo_matrix((vals, (rows, cols)), shape=(n_t + n_a, n_p + n_t + n_s)).tocsr()
    b_eq = np.concatenate((np.ones(n_t), np.zeros(n_a)))
    res = linprog(cost, A_eq=a_eq, b_eq=b_eq, bounds=(0, 1), method="highs")
    if res.status != 0:
        raise SystemExit(f"LP failed: {res.message}")
    return float(res.fun)


def measure(size: str, tight: bool, repeats: int, lp: bool) -> None:
    from benchmarks.instances import generate
    from solver.availability import bank_for
    from solver.batch.data import build
    from solver.batch.flow import solve_flow
    from solver.batch.repair import repair_minutes
    from solver.objective import ObjectiveWeights

    problem = generate(size, seed=0, tight=tight)
    bank_for(problem)  # the calendar is the problem's, built once (as the benchmark runner does)
    builds, flows, repairs = [], [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        data = build(problem, ObjectiveWeights())
        t1 = time.perf_counter()
        flow = solve_flow(data)
        t2 = time.perf_counter()
        _, moved = repair_minutes(data, flow.agent_of)
        t3 = time.perf_counter()
        builds.append(t1 - t0)
        flows.append(t2 - t1)
        repairs.append(t3 - t2)
    b, f, r = (statistics.median(x) for x in (builds, flows, repairs))
    name = f"{size}{' tight' if tight else ''}"
    print(
        f"{name:8s} {len(problem.agents):5d} agents {len(problem.tickets):6d} tickets "
        f"{len(data.pair_ticket):8d} pairs {flow.n_arcs:8d} arcs | build {b:.3f} s  "
        f"flow {f:.3f} s  build+flow {b + f:.3f} s  repair {r:.3f} s ({moved} moved)  "
        f"optimum {flow.cost}"
    )
    if lp:
        t = time.perf_counter()
        opt = lp_optimum(data)
        gap = abs(flow.cost - opt) / max(1.0, abs(opt))
        print(f"         LP optimum {opt:.1f} ({time.perf_counter() - t:.1f} s): gap {gap:.2e}")


def profile(size: str, tight: bool, seconds: float) -> None:
    from pyinstrument import Profiler

    from benchmarks.instances import generate
    from solver.availability import bank_for
    from solver.batch import BatchParams, optimize

    problem = generate(size, seed=0, tight=tight)
    bank_for(problem)
    profiler = Profiler()
    profiler.start()
    plan = optimize(problem, BatchParams(time_limit_s=seconds))
    profiler.stop()
    print(profiler.output_text(unicode=True, color=False))
    print(plan.stats.notes)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.batch_profile")
    parser.add_argument("--sizes", default="L:tight,L", help="comma-separated, ':tight' per size")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--lp", action="store_true", help="check the flow optimum against an LP")
    parser.add_argument("--profile", type=float, default=0.0, help="profile a full solve (s)")
    args = parser.parse_args(argv)
    for item in filter(None, (x.strip() for x in args.sizes.split(","))):
        size, _, flag = item.partition(":")
        if args.profile > 0:
            profile(size, flag == "tight", args.profile)
        else:
            measure(size, flag == "tight", args.repeats, args.lp)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
