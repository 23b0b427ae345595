"""Who-takes-what on a dense skill matrix: the priced core against plain OR-Tools, same run.

    python -m benchmarks.dense_flow                      # 1,000 x 10,000, 30 skills (~2.6 M pairs)
    python -m benchmarks.dense_flow --tight --classes    # also count exact agent/ticket classes

The instance is ``generate("S", n_agents=1000, n_tickets=10000, n_teams=1,
topics_per_agent=10)`` (30 skills, one team, 5 languages: ~2.7 M qualified pairs, most agents
can take a quarter of the tickets; ``--topics 4`` gives ~1.6 M). For it, in one process, one
after another:

- building the arrays (qualification, pair costs) over every qualified pair;
- plain OR-Tools ``SimpleMinCostFlow`` on the whole network (every pair arc);
- the priced core (:mod:`solver.batch.reduce`) for several core sizes: rounds, core pairs,
  wall time, and its optimum, which must equal plain OR-Tools';
- the true maximum of tickets that can be seated (a max-flow over every pair and free slot)
  beside the flow's seated tickets;
- with ``--classes``, how many agents (tickets) have identical qualification and cost vectors:
  what collapsing them into class nodes could save.

Timings on a shared machine vary: run it when the machine is quiet, and print the load beside.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable, Sequence

import numpy as np

from solver.problem import Problem


def _classes(data: object) -> tuple[int, int]:
    """Distinct agents and tickets by (qualified partners, pair costs, own terms)."""
    from solver.batch.data import BatchData

    assert isinstance(data, BatchData)
    cost = data.pair_cost
    t_ptr = np.searchsorted(data.pair_ticket, np.arange(data.n_tickets + 1))
    tickets = {
        (
            data.pair_agent[t_ptr[t] : t_ptr[t + 1]].tobytes(),
            cost[t_ptr[t] : t_ptr[t + 1]].tobytes(),
            int(data.queue_cost[t]),
            int(data.chan_of[t]) if len(data.chan_of) else -1,
        )
        for t in range(data.n_tickets)
    }
    order = np.lexsort((data.pair_ticket, data.pair_agent))
    pa, pt, pc = data.pair_agent[order], data.pair_ticket[order], cost[order]
    a_ptr = np.searchsorted(pa, np.arange(data.n_agents + 1))
    agents = {
        (
            pt[a_ptr[a] : a_ptr[a + 1]].tobytes(),
            pc[a_ptr[a] : a_ptr[a + 1]].tobytes(),
            int(data.slots[a]) if data.eligible[a] else 0,
            int(data.open_tickets[a]),
        )
        for a in range(data.n_agents)
    }
    return len(agents), len(tickets)


def true_maximum(data: object) -> int:
    """Most tickets any assignment can seat: a max-flow over every pair and free slot."""
    from ortools.graph.python import max_flow

    from solver.batch.data import BatchData

    assert isinstance(data, BatchData)
    n_t, n_a = data.n_tickets, data.n_agents
    source, sink = n_t + n_a, n_t + n_a + 1
    slots = np.where(data.eligible, data.slots, 0)
    tails = np.concatenate((data.pair_ticket, np.full(n_t, source), n_t + np.arange(n_a)))
    heads = np.concatenate((n_t + data.pair_agent, np.arange(n_t), np.full(n_a, sink)))
    caps = np.concatenate((np.ones(len(data.pair_ticket) + n_t, dtype=np.int64), slots))
    mf = max_flow.SimpleMaxFlow()
    mf.add_arcs_with_capacity(tails.astype(np.int32), heads.astype(np.int32), caps)
    if mf.solve(source, sink) != mf.OPTIMAL:
        raise RuntimeError("max-flow failed")
    return int(mf.optimal_flow())


def _problem(args: argparse.Namespace) -> Problem:
    from benchmarks.instances import generate

    return generate(
        "S",
        seed=args.seed,
        tight=args.tight,
        n_agents=args.agents,
        n_tickets=args.tickets,
        n_skills=args.skills,
        n_teams=args.teams,
        topics_per_agent=args.topics,
    )


def _optimize_one(args: argparse.Namespace, limit: float | None) -> str:
    """The whole optimizer at ``limit`` (None: least-loaded) on the instance: one line."""
    from solver.availability import bank_for
    from solver.batch import BatchParams, optimize
    from solver.policies import POLICIES, PolicyParams
    from solver.validation import check_plan, evaluate

    problem = _problem(args)
    bank_for(problem)
    t = time.perf_counter()
    if limit is None:
        plan = POLICIES["least-loaded"](problem, PolicyParams())
        name = "least-loaded"
    else:
        plan = optimize(problem, BatchParams(time_limit_s=limit, seed=args.seed))
        name = f"optimizer, limit {limit:g} s"
    wall = time.perf_counter() - t
    ev = evaluate(problem, plan)
    bound = plan.stats.bound
    return (
        f"{name}: unassigned {ev.unassigned:,}, objective {ev.objective:,.0f}, "
        f"bound {'none' if bound is None else f'{bound:,.0f}'}, churn {ev.churn}, "
        f"w. lateness {ev.weighted_lateness_minutes:,}, violations "
        f"{len(check_plan(problem, plan))}, wall {wall:.2f} s"
    )


def _run_isolated(fn: Callable[..., str], *args: object) -> str:
    """``fn(*args)`` in a fresh process (peak memory and caches of one run don't leak)."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=ctx) as pool:
        return pool.submit(fn, *args).result()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.dense_flow")
    parser.add_argument("--agents", type=int, default=1_000)
    parser.add_argument("--tickets", type=int, default=10_000)
    parser.add_argument("--skills", type=int, default=30)
    parser.add_argument("--teams", type=int, default=1)
    parser.add_argument("--topics", type=float, default=10.0, help="mean topic skills per agent")
    parser.add_argument("--tight", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cores", default="100000,300000,600000", help="core sizes to try")
    parser.add_argument("--classes", action="store_true", help="count exact agent/ticket classes")
    parser.add_argument(
        "--optimize",
        default="",
        help="comma-separated limits (s): also run the whole optimizer at each, and least-loaded",
    )
    args = parser.parse_args(argv)

    from solver.availability import bank_for
    from solver.batch.data import build
    from solver.batch.flow import network, solve_flow
    from solver.batch.reduce import solve_rows
    from solver.objective import ObjectiveWeights

    def load() -> str:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())

    problem = _problem(args)
    bank_for(problem)
    t = time.perf_counter()
    data = build(problem, ObjectiveWeights())
    t_build = time.perf_counter() - t
    n_p = len(data.pair_ticket)
    print(
        f"{args.agents} agents x {args.tickets} tickets, {args.skills} skills"
        f"{' tight' if args.tight else ''}: {n_p:,} qualified pairs; build {t_build:.2f} s"
        f" [load {load()}]"
    )
    t = time.perf_counter()
    net = network(data)
    flow, _, plain_cost = solve_rows(net, np.arange(n_p, dtype=np.int64))
    t_plain = time.perf_counter() - t
    plain_seated = int(flow.sum())
    print(
        f"plain OR-Tools, every pair: {len(net.tails):,} arcs, optimum {plain_cost:,}, "
        f"seated {plain_seated:,}, {t_plain:.2f} s [load {load()}]"
    )
    t = time.perf_counter()
    most = true_maximum(data)
    print(
        f"true maximum seated {most:,} (unassigned {args.tickets - most:,}); "
        f"max-flow {time.perf_counter() - t:.2f} s"
    )
    for core in (int(x) for x in args.cores.split(",") if x):
        t = time.perf_counter()
        res = solve_flow(data, core_pairs=core)
        wall = time.perf_counter() - t
        seated = int((res.agent_of >= 0).sum())
        print(
            f"priced core {core:>9,}: {res.core_pairs:,} pairs in the last core, "
            f"{res.rounds} round(s){' FULL FALLBACK' if res.full_fallback else ''}, "
            f"optimum {res.cost:,} ({'equal' if res.cost == plain_cost else 'DIFFERENT'}), "
            f"seated {seated:,}, {wall:.2f} s ({t_plain / wall:.2f}x plain) [load {load()}]"
        )
    for limit in (float(x) for x in args.optimize.split(",") if x.strip()):
        print(_run_isolated(_optimize_one, args, limit) + f" [load {load()}]")
    if args.optimize.strip():
        print(_run_isolated(_optimize_one, args, None) + f" [load {load()}]")
    if args.classes:
        t = time.perf_counter()
        n_ac, n_tc = _classes(data)
        print(
            f"exact classes: {n_ac:,} of {data.n_agents:,} agents, {n_tc:,} of "
            f"{data.n_tickets:,} tickets ({time.perf_counter() - t:.2f} s)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
