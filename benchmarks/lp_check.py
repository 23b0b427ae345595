"""Check the optimizer's who-takes-what against a linear program on the same costs.

    python -m benchmarks.lp_check                     # S, tight M, tight L
    python -m benchmarks.lp_check --sizes L --seed 3

The batch optimizer assigns tickets by min-cost flow (:mod:`solver.batch.flow`) over the costs
in :class:`solver.batch.data.BatchData`. Here the same assignment is written independently as
a transportation LP and solved by HiGHS (``scipy.optimize.linprog``):

    min  Σ pair_cost·x + Σ queue_cost·q + Σ slot_cost·y
    s.t. Σ_agents x[t, ·] + q[t] = 1                  every ticket: one agent or its team queue
         Σ_tickets x[·, a] = Σ_k y[a, k]             an agent's new tickets use its slots
         0 <= x, q, y <= 1

where ``y[a, k]`` is agent ``a``'s k-th free slot (``capacity - open_tickets`` of them), priced
at the marginal load cost ``load·((open+k)² − (open+k−1)²)`` — increasing in ``k``, so the LP
fills slots in order and the convex load term is exact. The constraint matrix is a network
matrix (totally unimodular), so the LP optimum is integral and must equal the flow's: the gap
printed is the check (0 expected), next to the flow's wall time including model building —
the issue's target is ≤ 2 s at L.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from rich.console import Console
from rich.table import Table
from scipy.optimize import linprog
from scipy.sparse import coo_matrix

from benchmarks.instances import generate
from solver.availability import bank_for
from solver.batch.data import BatchData, build
from solver.batch.flow import solve_flow
from solver.objective import ObjectiveWeights


@dataclass(frozen=True, slots=True)
class LpCheck:
    label: str
    agents: int
    tickets: int
    pairs: int
    flow_cost: int
    lp_cost: float
    gap: float
    fractional: int  # LP variables strictly between 0 and 1 (0 for a vertex of a TU system)
    calendar_s: float
    build_s: float
    flow_s: float
    lp_s: float
    lp_status: str


def solve_lp(data: BatchData) -> tuple[float, int, str]:
    """The transportation LP's optimum, its count of fractional values, and HiGHS' message."""
    n_t, n_a, n_p = data.n_tickets, data.n_agents, len(data.pair_ticket)
    slots = np.where(data.eligible, data.slots, 0)
    slot_agent = np.repeat(np.arange(n_a, dtype=np.int64), slots)
    first = np.concatenate(([0], np.cumsum(slots)))[:-1]
    k = np.arange(len(slot_agent), dtype=np.int64) - np.repeat(first, slots) + 1
    o = data.open_tickets[slot_agent]
    slot_cost = data.weights.load * ((o + k) ** 2 - (o + k - 1) ** 2)
    n_s = len(slot_agent)

    col_x = np.arange(n_p)
    col_q = n_p + np.arange(n_t)
    col_y = n_p + n_t + np.arange(n_s)
    rows = np.concatenate(
        (data.pair_ticket, n_t + data.pair_agent, np.arange(n_t), n_t + slot_agent)
    )
    cols = np.concatenate((col_x, col_x, col_q, col_y))
    vals = np.concatenate((np.ones(2 * n_p), np.ones(n_t), -np.ones(n_s)))
    a_eq = coo_matrix((vals, (rows, cols)), shape=(n_t + n_a, n_p + n_t + n_s)).tocsr()
    b_eq = np.concatenate((np.ones(n_t), np.zeros(n_a)))
    c = np.concatenate((data.pair_cost, data.queue_cost, slot_cost)).astype(float)
    res = linprog(c, A_eq=a_eq, b_eq=b_eq, bounds=(0, 1), method="highs")
    if res.x is None:
        return float("nan"), -1, str(res.message)
    fractional = int(np.count_nonzero((res.x > 1e-6) & (res.x < 1 - 1e-6)))
    return float(res.fun), fractional, str(res.message)


def check(size: str, tight: bool, seed: int) -> LpCheck:
    problem = generate(size, seed=seed, tight=tight)
    t0 = time.perf_counter()
    bank_for(problem)
    t1 = time.perf_counter()
    data = build(problem, ObjectiveWeights())
    t2 = time.perf_counter()
    flow = solve_flow(data)
    t3 = time.perf_counter()
    lp_cost, fractional, message = solve_lp(data)
    t4 = time.perf_counter()
    gap = abs(lp_cost - flow.cost) / max(1.0, abs(flow.cost))
    return LpCheck(
        label=f"{size}{' tight' if tight else ''}",
        agents=len(problem.agents),
        tickets=len(problem.tickets),
        pairs=len(data.pair_ticket),
        flow_cost=flow.cost,
        lp_cost=lp_cost,
        gap=gap,
        fractional=fractional,
        calendar_s=t1 - t0,
        build_s=t2 - t1,
        flow_s=t3 - t2,
        lp_s=t4 - t3,
        lp_status=message,
    )


def main(argv: Sequence[str] | None = None) -> int:
    from benchmarks.solver import parse_instances

    parser = argparse.ArgumentParser(prog="python -m benchmarks.lp_check")
    parser.add_argument("--sizes", default="S,M:tight,L:tight")
    parser.add_argument("--tight", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    console = Console(width=max(Console().width, 120))
    table = Table(title="who-takes-what: min-cost flow vs transportation LP (HiGHS)")
    for col in (
        "instance", "pairs", "flow optimum", "LP optimum", "gap", "fractional",
        "calendar s", "build s", "flow s", "flow total s", "LP s",
    ):  # fmt: skip
        table.add_column(col, justify="left" if col == "instance" else "right")
    worst = 0.0
    for size, tight in parse_instances(args.sizes, args.tight):
        with console.status(f"{size}{' tight' if tight else ''}…"):
            r = check(size, tight, args.seed)
        worst = max(worst, r.gap)
        table.add_row(
            r.label,
            f"{r.pairs:,}",
            f"{r.flow_cost:,}",
            f"{r.lp_cost:,.1f}",
            f"{r.gap:.2e}" if r.gap else "0",
            str(r.fractional),
            f"{r.calendar_s:.2f}",
            f"{r.build_s:.2f}",
            f"{r.flow_s:.2f}",
            f"{r.calendar_s + r.build_s + r.flow_s:.2f}",
            f"{r.lp_s:.2f}",
        )
    console.print(table)
    ok = worst < 1e-9
    console.print("gap 0 on every instance" if ok else f"[red]largest gap {worst:.3e}[/]")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
