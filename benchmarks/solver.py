"""Batch benchmark: every policy on seeded instances, figure by figure against least-loaded.

    python -m benchmarks.solver                      # S and tight M (a few minutes at most)
    python -m benchmarks.solver --sizes L --time-limit 60
    python -m benchmarks.solver --sizes S,M --tight --policies least-loaded,optimizer
    python -m benchmarks.solver --sizes M:tight --max-moves 40   # the optimizer's move budget

For each instance and policy it prints the weighted SLA penalty (breach penalties plus
priority-weighted lateness, in objective units), breaches, priority-weighted lateness minutes,
unassigned tickets, churn, load spread, the objective, wall time, peak memory and the number of
hard-rule violations — and, beside each figure, its ratio to least-loaded's on the same
instance. Churn (owned tickets that end with another agent or the queue) is printed right
under weighted lateness, since the optimizer's lateness gain must not be bought with
reassignments. Figures come from :func:`solver.validation.evaluate`, validity from
:func:`solver.validation.check_plan`, never from what a policy reports about itself.

Each (instance, policy) runs in a fresh process (``multiprocessing`` *spawn*), so the peak RSS
it reports (``ru_maxrss``) is that run's alone: the instance, the imports and the solve. The
instance is regenerated in the child from its seed (deterministic) rather than pickled.
``optimizer-seed`` is the optimizer stopped after who-takes-what and list scheduling
(``BatchParams(use_sequencing=False)``): what the CP-SAT neighbourhoods add is the gap between
it and ``optimizer``.

Timings on a shared machine vary: run it when the machine is quiet, and more than once.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import resource
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass

from rich.console import Console
from rich.table import Table

DEFAULT_INSTANCES = "S,M:tight"
ALL_POLICIES = ("round-robin", "least-loaded", "first-qualified", "optimizer-seed", "optimizer")
REFERENCE = "least-loaded"


@dataclass(frozen=True, slots=True)
class Run:
    size: str
    tight: bool
    seed: int
    policy: str
    time_limit_s: float
    max_moves: int | None = None
    churn_weight: int | None = None


@dataclass(frozen=True, slots=True)
class Result:
    size: str
    tight: bool
    policy: str
    agents: int
    tickets: int
    sla_penalty: float
    breaches: int
    weighted_lateness: int
    unassigned: int
    churn: int
    load_spread: int
    objective: float
    wall_s: float
    peak_mib: float
    base_mib: float
    violations: int
    status: str
    bound: float | None
    notes: tuple[str, ...]


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


def solve_with(
    policy: str,
    problem: object,
    time_limit_s: float,
    seed: int,
    max_moves: int | None = None,
    churn_weight: int | None = None,
) -> object:
    """Run ``policy`` (a registry name or ``optimizer-seed``) on ``problem``."""
    from solver.policies import POLICIES, PolicyParams

    if policy in ("optimizer", "optimizer-seed"):
        from dataclasses import replace

        from solver.batch import BatchParams, optimize
        from solver.objective import ObjectiveWeights

        weights = ObjectiveWeights()
        if churn_weight is not None:
            weights = replace(weights, churn=churn_weight)
        params = BatchParams(
            weights=weights,
            time_limit_s=time_limit_s,
            seed=seed,
            use_sequencing=policy == "optimizer",
            max_moves=max_moves,
        )
        return optimize(problem, params)  # type: ignore[arg-type]
    if policy not in POLICIES:
        raise SystemExit(f"unknown policy {policy!r}; choose from {', '.join(ALL_POLICIES)}")
    return POLICIES[policy](problem, PolicyParams(time_limit_s=time_limit_s, seed=seed))  # type: ignore[arg-type]


def run_one(run: Run) -> Result:
    """One (instance, policy) measurement; meant to run in a fresh process."""
    from benchmarks.instances import generate
    from solver.validation import check_plan, evaluate

    problem = generate(run.size, seed=run.seed, tight=run.tight)
    # Build the shared calendar once before timing, as a service holding the problem would.
    from solver.availability import bank_for

    bank_for(problem)
    base = _rss_mib()
    started = time.perf_counter()
    plan = solve_with(
        run.policy, problem, run.time_limit_s, run.seed, run.max_moves, run.churn_weight
    )
    wall = time.perf_counter() - started
    peak = _rss_mib()
    violations = check_plan(problem, plan)  # type: ignore[arg-type]
    ev = evaluate(problem, plan)  # type: ignore[arg-type]
    stats = plan.stats  # type: ignore[attr-defined]
    return Result(
        size=run.size,
        tight=run.tight,
        policy=run.policy,
        agents=len(problem.agents),
        tickets=len(problem.tickets),
        sla_penalty=ev.parts.sla_breaches + ev.parts.weighted_lateness,
        breaches=ev.breaches,
        weighted_lateness=ev.weighted_lateness_minutes,
        unassigned=ev.unassigned,
        churn=ev.churn,
        load_spread=ev.load_spread,
        objective=ev.objective,
        wall_s=wall,
        peak_mib=peak,
        base_mib=base,
        violations=len(violations),
        status=str(stats.status),
        bound=stats.bound,
        notes=tuple(stats.notes),
    )


def run_isolated(run: Run) -> Result:
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=ctx) as pool:
        return pool.submit(run_one, run).result()


def parse_instances(text: str, force_tight: bool) -> list[tuple[str, bool]]:
    """``"S,M:tight"`` -> ``[("S", False), ("M", True)]``; ``--tight`` makes every one tight."""
    from benchmarks.instances import SIZES

    out: list[tuple[str, bool]] = []
    for item in filter(None, (x.strip() for x in text.split(","))):
        size, _, flag = item.partition(":")
        if size not in SIZES:
            raise SystemExit(f"unknown size {size!r}; choose from {', '.join(SIZES)}")
        if flag not in ("", "tight"):
            raise SystemExit(f"unknown flag {flag!r} in {item!r} (only ':tight')")
        out.append((size, force_tight or flag == "tight"))
    return out


FIGURES = (
    # (column, attribute, format)
    ("SLA penalty", "sla_penalty", "{:,.0f}"),
    ("breaches", "breaches", "{:,}"),
    ("w. lateness min", "weighted_lateness", "{:,}"),
    ("churn", "churn", "{:,}"),
    ("unassigned", "unassigned", "{:,}"),
    ("load spread", "load_spread", "{:,}"),
    ("objective", "objective", "{:,.0f}"),
    ("wall s", "wall_s", "{:.2f}"),
    ("peak MiB", "peak_mib", "{:,.0f}"),
)


def _cell(value: float | int, ref: float | int | None, fmt: str) -> str:
    text = fmt.format(value)
    if ref is None:
        return text
    if ref == 0:
        return text + (" [dim](=)[/]" if value == 0 else " [dim](ref 0)[/]")
    return f"{text} [dim]({value / ref:.2f}×)[/]"


def table_for(results: Sequence[Result]) -> Table:
    """Figures as rows, policies as columns (fits a terminal), ratios to least-loaded's."""
    first = results[0]
    title = (
        f"{first.size}{' tight' if first.tight else ''}: "
        f"{first.agents:,} agents × {first.tickets:,} tickets "
        f"[dim](ratio to {REFERENCE} in brackets)[/]"
    )
    table = Table(title=title, title_justify="left")
    table.add_column("figure")
    for r in results:
        table.add_column(r.policy, justify="right")
    ref = next((r for r in results if r.policy == REFERENCE), None)
    for name, attr, fmt in FIGURES:
        row = [
            _cell(getattr(r, attr), None if ref is None or r is ref else getattr(ref, attr), fmt)
            for r in results
        ]
        table.add_row(name, *row)
    table.add_row(
        "violations", *[f"[red]{r.violations}[/]" if r.violations else "0" for r in results]
    )
    statuses = []
    for r in results:
        gap = ""
        if r.bound is not None and r.objective:
            gap = f", gap {abs(r.objective - r.bound) / abs(r.objective):.0%}"
        statuses.append(r.status + gap)
    table.add_row("status", *statuses)
    return table


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.solver", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--sizes",
        default=DEFAULT_INSTANCES,
        help="comma-separated sizes (S, M, L, demo), ':tight' per size (default S,M:tight)",
    )
    parser.add_argument("--tight", action="store_true", help="make every instance tight")
    parser.add_argument("--time-limit", type=float, default=10.0, help="optimizer limit, seconds")
    parser.add_argument("--policies", default=",".join(ALL_POLICIES), help="comma-separated")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--max-moves",
        type=int,
        default=None,
        help="the optimizer's budget of owned tickets it may move (default: no budget)",
    )
    parser.add_argument(
        "--churn-weight",
        type=int,
        default=None,
        help="the optimizer's ObjectiveWeights.churn (default: the objective's own)",
    )
    parser.add_argument(
        "--inline", action="store_true", help="run in this process (peak memory is then shared)"
    )
    parser.add_argument("--json", help="also write the results to this JSON file")
    args = parser.parse_args(argv)

    console = Console(width=max(Console().width, 120))
    instances = parse_instances(args.sizes, args.tight)
    policies = [p.strip() for p in args.policies.split(",") if p.strip()]
    unknown = [p for p in policies if p not in ALL_POLICIES]
    if unknown:
        raise SystemExit(f"unknown policies {unknown}; choose from {', '.join(ALL_POLICIES)}")
    everything: list[Result] = []
    for size, tight in instances:
        results: list[Result] = []
        for policy in policies:
            run = Run(
                size, tight, args.seed, policy, args.time_limit, args.max_moves, args.churn_weight
            )
            label = f"{size}{' tight' if tight else ''} / {policy}"
            with console.status(f"running {label}…"):
                result = run_one(run) if args.inline else run_isolated(run)
            console.log(f"{label}: {result.wall_s:.2f} s, {result.violations} violation(s)")
            results.append(result)
        console.print(table_for(results))
        for r in results:
            for note in r.notes:
                console.print(f"  [dim]{r.policy}: {note}[/]")
        everything += results
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump([asdict(r) for r in everything], fh, indent=2)
    return 1 if any(r.violations for r in everything) else 0


if __name__ == "__main__":
    sys.exit(main())
