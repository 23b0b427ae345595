"""Batch benchmark: every policy on seeded instances, figure by figure against least-loaded.

    python -m benchmarks.solver                      # S and tight M (a few minutes at most)
    python -m benchmarks.solver --sizes L --time-limit 60
    python -m benchmarks.solver --sizes S,M --tight --policies least-loaded,optimizer
    python -m benchmarks.solver --scale              # dense 1,000 x 10,000: limits that hold
    python -m benchmarks.solver --huge               # sparse 10,000 x 100,000: who takes what
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
from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    from solver.problem import Problem

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
    move_saving: int | None = None
    keep_seated: bool = True


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
    move_saving: int | None = None,
    keep_seated: bool = True,
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
            move_saving=move_saving,
            keep_seated=keep_seated,
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
        run.policy,
        problem,
        run.time_limit_s,
        run.seed,
        run.max_moves,
        run.churn_weight,
        run.move_saving,
        run.keep_seated,
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


# --scale: issue 14's dense queue, where most agents can take most tickets (1,000 agents x
# 10,000 tickets, 1.49 M qualified pairs): L with 20 skills, 2 teams and 3 languages.
SCALE_SIZE = "L"
SCALE_SKILLS, SCALE_TEAMS, SCALE_LANGUAGES = 20, 2, 3
SCALE_OVERRIDES = f"n_skills={SCALE_SKILLS}, n_teams={SCALE_TEAMS}, n_languages={SCALE_LANGUAGES}"
SCALE_LIMITS = (1.0, 2.0)


@dataclass(frozen=True, slots=True)
class ScaleRun:
    """One optimize call on the dense queue, timed from the outside, phases from the inside."""

    limit_s: float
    pairs: int
    wall_s: float
    phases: dict[str, float]
    objective: float
    seed_objective: float
    unassigned: int
    violations: int
    status: str
    notes: tuple[str, ...]
    loadavg: str


@dataclass(frozen=True, slots=True)
class WhoTakesWhat:
    """The exact who-takes-what alone (arrays, flow, minutes repair), median of ``repeats``."""

    pairs: int
    arcs: int
    build_s: float
    flow_s: float
    repair_s: float
    loadavg: str


def _loadavg() -> str:
    try:
        with open("/proc/loadavg", encoding="ascii") as fh:
            return " ".join(fh.read().split()[:3])
    except OSError:
        return "n/a"


def scale_problem(seed: int, **overrides: int) -> Problem:
    """The ``--scale`` instance; ``overrides`` replace fields of it (smaller sizes for tests)."""
    from benchmarks.instances import generate_problem, spec_for

    spec = spec_for(
        SCALE_SIZE,
        **{  # type: ignore[arg-type]
            "n_skills": SCALE_SKILLS,
            "n_teams": SCALE_TEAMS,
            "n_languages": SCALE_LANGUAGES,
            **overrides,
        },
    )
    return generate_problem(spec, seed=seed)


def run_scale_one(limit_s: float, seed: int, overrides: dict[str, int] | None = None) -> ScaleRun:
    """One optimize call with ``limit_s`` on the dense queue; meant for a fresh process."""
    from solver.availability import bank_for
    from solver.batch import BatchParams, optimize
    from solver.batch.data import build
    from solver.validation import check_plan, evaluate

    problem = scale_problem(seed, **(overrides or {}))
    bank_for(problem)  # the service holds the calendar; the optimizer's modules are imported
    params = BatchParams(time_limit_s=limit_s, seed=seed)
    started = time.perf_counter()
    plan = optimize(problem, params)
    wall = time.perf_counter() - started
    load = _loadavg()
    ev = evaluate(problem, plan)
    pairs = len(build(problem, params.weights).pair_ticket)
    return ScaleRun(
        limit_s=limit_s,
        pairs=pairs,
        wall_s=wall,
        phases=dict(plan.stats.phases),
        objective=ev.objective,
        seed_objective=plan.stats.phases.get("seed_objective", float("nan")),
        unassigned=ev.unassigned,
        violations=len(check_plan(problem, plan)),
        status=str(plan.stats.status),
        notes=tuple(plan.stats.notes),
        loadavg=load,
    )


def who_takes_what_one(
    seed: int, repeats: int = 3, overrides: dict[str, int] | None = None
) -> WhoTakesWhat:
    """Time the exact assignment alone: build the arrays, solve the flow, repair minutes."""
    import statistics

    from solver.availability import bank_for
    from solver.batch.data import build
    from solver.batch.flow import solve_flow
    from solver.batch.repair import repair_minutes
    from solver.objective import ObjectiveWeights

    problem = scale_problem(seed, **(overrides or {}))
    bank_for(problem)
    builds, flows, repairs = [], [], []
    pairs = arcs = 0
    for _ in range(repeats):
        t0 = time.perf_counter()
        data = build(problem, ObjectiveWeights())
        t1 = time.perf_counter()
        flow = solve_flow(data)
        t2 = time.perf_counter()
        repair_minutes(data, flow.agent_of)
        t3 = time.perf_counter()
        builds.append(t1 - t0)
        flows.append(t2 - t1)
        repairs.append(t3 - t2)
        pairs, arcs = len(data.pair_ticket), flow.n_arcs
    return WhoTakesWhat(
        pairs=pairs,
        arcs=arcs,
        build_s=statistics.median(builds),
        flow_s=statistics.median(flows),
        repair_s=statistics.median(repairs),
        loadavg=_loadavg(),
    )


def _isolated(fn: object, *args: object, inline: bool = False) -> object:
    """``fn(*args)`` in a fresh process (spawn), or here when ``inline``."""
    if inline:
        return fn(*args)  # type: ignore[operator]
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=ctx) as pool:
        return pool.submit(fn, *args).result()  # type: ignore[arg-type]


def run_scale(
    console: Console,
    seed: int,
    limits: Sequence[float],
    overrides: dict[str, int] | None = None,
    inline: bool = False,
) -> int:
    """``--scale``: the whole optimize call against its limit, and who-takes-what alone."""
    rows: list[ScaleRun] = []
    for limit in limits:
        with console.status(f"dense 1,000 x 10,000, limit {limit:g} s…"):
            run = _isolated(run_scale_one, limit, seed, overrides, inline=inline)
        assert isinstance(run, ScaleRun)
        console.log(f"limit {limit:g} s: {run.wall_s:.2f} s (load {run.loadavg})")
        rows.append(run)
    with console.status("who takes what alone (build + exact flow + repair)…"):
        wtw = _isolated(who_takes_what_one, seed, 3, overrides, inline=inline)
    assert isinstance(wtw, WhoTakesWhat)
    first = rows[0] if rows else None
    from benchmarks.instances import spec_for

    spec = spec_for(SCALE_SIZE, **(overrides or {}))  # type: ignore[arg-type]
    shown = SCALE_OVERRIDES + "".join(f", {k}={v:,}" for k, v in (overrides or {}).items())
    table = Table(
        title=(
            f"--scale: {SCALE_SIZE} {shown}: {spec.n_agents:,} agents × "
            f"{spec.n_tickets:,} tickets, "
            f"{first.pairs if first else wtw.pairs:,} qualified pairs"
        ),
        title_justify="left",
    )
    for col in (
        "limit s", "wall s", "/ limit", "build", "assign", "seed", "search", "plan",
        "objective", "seed obj.", "unassigned", "viol.", "load",
    ):  # fmt: skip
        table.add_column(col, justify="right")
    for r in rows:
        ph = r.phases
        inner = sum(ph.get(k, 0.0) for k in ("build", "flow", "seed", "lns"))
        ratio = r.wall_s / r.limit_s
        mark = "" if ratio <= 1.1 else " [red](over +10 %)[/]"
        table.add_row(
            f"{r.limit_s:g}",
            f"{r.wall_s:.2f}",
            f"{ratio:.2f}×{mark}",
            f"{ph.get('build', 0.0):.2f}",
            f"{ph.get('flow', 0.0):.2f}",
            f"{ph.get('seed', 0.0):.2f}",
            f"{ph.get('lns', 0.0):.2f}",
            f"{max(0.0, r.wall_s - inner):.2f}",
            f"{r.objective / 1e6:,.2f} M",
            f"{r.seed_objective / 1e6:,.2f} M",
            f"{r.unassigned:,}",
            f"[red]{r.violations}[/]" if r.violations else "0",
            r.loadavg.split()[0],
        )
    console.print(table)
    for r in rows:
        console.print(f"  [dim]{r.limit_s:g} s: status {r.status}; load average {r.loadavg}[/]")
        for note in r.notes:
            console.print(f"  [dim]{r.limit_s:g} s: {note}[/]")
    total = wtw.build_s + wtw.flow_s + wtw.repair_s
    console.print(
        f"who takes what (exact, median of 3): build {wtw.build_s:.2f} s + flow "
        f"{wtw.flow_s:.2f} s + repair {wtw.repair_s:.2f} s = [bold]{total:.2f} s[/] "
        f"(target ≤ 2 s); {wtw.pairs:,} pairs, {wtw.arcs:,} arcs; load avg {wtw.loadavg}"
    )
    over = [r for r in rows if r.wall_s > 1.1 * r.limit_s]
    return 1 if over or any(r.violations for r in rows) else 0


# --huge: issue 14's sparse queue at ten times L: 10,000 agents x 100,000 tickets over 170
# teams and 2,600 skills, so each ticket has ~10 qualified agents (~1 M pairs). The target:
# who-takes-what (build + flow + minutes repair) <= 10 s, peak memory <= 4 GiB.
HUGE_SIZE = "L"
HUGE_OVERRIDES: dict[str, int] = {
    "n_agents": 10_000,
    "n_tickets": 100_000,
    "n_skills": 2_600,
    "n_teams": 170,
    "n_languages": 8,
}
HUGE_TARGET_S = 10.0
HUGE_TARGET_MIB = 4096.0
HUGE_LIMIT_S = 20.0
HUGE_REPEATS = 2


@dataclass(frozen=True, slots=True)
class HugeRun:
    """Who-takes-what once on the sparse queue, in a fresh process, beside plain OR-Tools."""

    agents: int
    tickets: int
    pairs: int
    arcs: int
    instance_s: float  # generating the instance (not counted)
    bank_s: float  # the shared calendar, held by the service (not counted)
    build_s: float
    flow_s: float
    repair_s: float
    moved: int  # tickets the minutes repair moved
    flow_cost: int
    network_s: float  # the network's arrays for plain OR-Tools (not part of its time)
    plain_s: float  # plain OR-Tools: bulk add_arcs_with_capacity_and_unit_cost, supplies, solve
    plain_cost: int
    base_mib: float  # peak RSS with the instance and calendar built, before who-takes-what
    peak_mib: float  # peak RSS after who-takes-what (before plain OR-Tools)
    plain_peak_mib: float  # peak RSS after plain OR-Tools too
    loadavg_before: str
    loadavg_after: str

    @property
    def total_s(self) -> float:
        return self.build_s + self.flow_s + self.repair_s


@dataclass(frozen=True, slots=True)
class HugeOptimize:
    """The whole optimize call on the sparse queue with a limit, in a fresh process."""

    limit_s: float
    wall_s: float
    phases: dict[str, float]
    unassigned: int
    tickets: int
    violations: int
    status: str
    peak_mib: float
    loadavg: str


def huge_problem(seed: int, **overrides: int) -> Problem:
    """The ``--huge`` instance; ``overrides`` replace fields of it (smaller sizes for tests)."""
    from benchmarks.instances import generate_problem, spec_for

    return generate_problem(
        spec_for(HUGE_SIZE, **{**HUGE_OVERRIDES, **overrides}),  # type: ignore[arg-type]
        seed=seed,
    )


def plain_min_cost_flow(data: object) -> tuple[float, float, int]:
    """Plain OR-Tools on the optimizer's network: (seconds to build the arrays, seconds to add
    the arcs in one bulk numpy call, set the supplies and solve, optimal cost)."""
    import numpy as np
    from ortools.graph.python import min_cost_flow

    from solver.batch.flow import network

    t0 = time.perf_counter()
    net = network(data)  # type: ignore[arg-type]
    t1 = time.perf_counter()
    mcf = min_cost_flow.SimpleMinCostFlow()
    mcf.add_arcs_with_capacity_and_unit_cost(
        net.tails.astype(np.int32), net.heads.astype(np.int32), net.caps, net.costs
    )
    mcf.set_nodes_supplies(np.arange(net.n_nodes, dtype=np.int32), net.supplies)
    status = mcf.solve()
    t2 = time.perf_counter()
    if status != mcf.OPTIMAL:
        raise RuntimeError(f"plain min-cost flow ended with status {status}")
    return t1 - t0, t2 - t1, int(mcf.optimal_cost())


def run_huge_one(
    seed: int, overrides: dict[str, int] | None = None, repeats: int = HUGE_REPEATS
) -> HugeRun:
    """Who-takes-what on the ``--huge`` instance, then plain OR-Tools on the same network, the
    two alternating ``repeats`` times (each figure the best of its runs: the machine is
    shared); meant for a fresh process (its peak RSS is this run's alone)."""
    from solver.availability import bank_for
    from solver.batch.data import build
    from solver.batch.flow import solve_flow
    from solver.batch.repair import repair_minutes
    from solver.objective import ObjectiveWeights

    t0 = time.perf_counter()
    problem = huge_problem(seed, **(overrides or {}))
    t1 = time.perf_counter()
    bank_for(problem)  # the service holds the calendar, as in --scale
    t2 = time.perf_counter()
    base = _rss_mib()
    load_before = _loadavg()
    builds: list[float] = []
    flows: list[float] = []
    repairs: list[float] = []
    networks: list[float] = []
    plains: list[float] = []
    peak = 0.0
    for _ in range(max(1, repeats)):
        t3 = time.perf_counter()
        data = build(problem, ObjectiveWeights())
        t4 = time.perf_counter()
        flow = solve_flow(data)
        t5 = time.perf_counter()
        _, moved = repair_minutes(data, flow.agent_of)
        t6 = time.perf_counter()
        if not builds:  # before plain OR-Tools ever ran: who-takes-what's own peak
            peak = _rss_mib()
        network_s, plain_s, plain_cost = plain_min_cost_flow(data)
        builds.append(t4 - t3)
        flows.append(t5 - t4)
        repairs.append(t6 - t5)
        networks.append(network_s)
        plains.append(plain_s)
    return HugeRun(
        agents=data.n_agents,
        tickets=data.n_tickets,
        pairs=len(data.pair_ticket),
        arcs=flow.n_arcs,
        instance_s=t1 - t0,
        bank_s=t2 - t1,
        build_s=min(builds),
        flow_s=min(flows),
        repair_s=min(repairs),
        moved=moved,
        flow_cost=flow.cost,
        network_s=min(networks),
        plain_s=min(plains),
        plain_cost=plain_cost,
        base_mib=base,
        peak_mib=peak,
        plain_peak_mib=_rss_mib(),
        loadavg_before=load_before,
        loadavg_after=_loadavg(),
    )


def run_huge_optimize(
    seed: int, limit_s: float, overrides: dict[str, int] | None = None
) -> HugeOptimize:
    """The whole optimize call with ``limit_s`` on the ``--huge`` instance (fresh process)."""
    from solver.availability import bank_for
    from solver.batch import BatchParams, optimize
    from solver.validation import check_plan, evaluate

    problem = huge_problem(seed, **(overrides or {}))
    bank_for(problem)
    started = time.perf_counter()
    plan = optimize(problem, BatchParams(time_limit_s=limit_s, seed=seed))
    wall = time.perf_counter() - started
    peak = _rss_mib()
    load = _loadavg()
    return HugeOptimize(
        limit_s=limit_s,
        wall_s=wall,
        phases=dict(plan.stats.phases),
        unassigned=evaluate(problem, plan).unassigned,
        tickets=len(problem.tickets),
        violations=len(check_plan(problem, plan)),
        status=str(plan.stats.status),
        peak_mib=peak,
        loadavg=load,
    )


def run_huge(
    console: Console,
    seed: int,
    limit_s: float | None,
    overrides: dict[str, int] | None = None,
    inline: bool = False,
) -> int:
    """``--huge``: who-takes-what against plain OR-Tools, then (``limit_s``) optimize whole."""
    size = {**HUGE_OVERRIDES, **(overrides or {})}
    label = f"{size['n_agents']:,} agents × {size['n_tickets']:,} tickets"
    with console.status(f"who takes what, {label}…"):
        r = _isolated(run_huge_one, seed, overrides, inline=inline)
    assert isinstance(r, HugeRun)
    console.print(
        f"--huge: {HUGE_SIZE} with {', '.join(f'{k}={v:,}' for k, v in size.items())}, seed "
        f"{seed}: {r.agents:,} agents × {r.tickets:,} tickets, {r.pairs:,} qualified pairs, "
        f"{r.arcs:,} arcs"
    )
    console.print(
        f"  instance {r.instance_s:.2f} s and calendar {r.bank_s:.2f} s (not counted); "
        f"memory {r.base_mib:,.0f} MiB with them"
    )
    table = Table(
        title=f"who takes what (one fresh process, best of {HUGE_REPEATS} runs of each phase)",
        title_justify="left",
    )
    for col in ("build s", "flow s", "repair s", "total s", "/ target", "peak MiB", "moved"):
        table.add_column(col, justify="right")
    ratio = r.total_s / HUGE_TARGET_S
    table.add_row(
        f"{r.build_s:.2f}",
        f"{r.flow_s:.2f}",
        f"{r.repair_s:.2f}",
        f"[bold]{r.total_s:.2f}[/]",
        f"{ratio:.2f}×" + ("" if ratio <= 1 else " [red](over)[/]"),
        f"{r.peak_mib:,.0f}" + ("" if r.peak_mib <= HUGE_TARGET_MIB else " [red](over)[/]"),
        f"{r.moved:,}",
    )
    console.print(table)
    same = "equal optima" if r.plain_cost == r.flow_cost else "[red]optima differ[/]"
    console.print(
        f"  plain OR-Tools on the same network, alternating with ours: {r.plain_s:.2f} s "
        f"(bulk add_arcs + solve; its "
        f"arrays {r.network_s:.2f} s more); ours (flow) / plain = "
        f"[bold]{r.flow_s / max(r.plain_s, 1e-9):.2f}×[/]; optimum {r.flow_cost:,} vs "
        f"{r.plain_cost:,} ({same}); peak {r.plain_peak_mib:,.0f} MiB after it"
    )
    console.print(
        f"  target: total ≤ {HUGE_TARGET_S:g} s, peak ≤ {HUGE_TARGET_MIB:,.0f} MiB; load average "
        f"{r.loadavg_before} before, {r.loadavg_after} after"
    )
    failed = r.plain_cost != r.flow_cost
    if limit_s is not None:
        with console.status(f"optimize, {label}, limit {limit_s:g} s…"):
            o = _isolated(run_huge_optimize, seed, limit_s, overrides, inline=inline)
        assert isinstance(o, HugeOptimize)
        ph = o.phases
        parts = ", ".join(
            f"{k} {ph[k]:.2f}"
            for k in ("build", "flow", "flow_predicted", "seed", "guard_seed", "lns", "guard")
            if k in ph
        )
        console.print(
            f"optimize, limit {o.limit_s:g} s: wall [bold]{o.wall_s:.2f} s[/] "
            f"({o.wall_s / o.limit_s:.2f}× the limit; {parts} s), {o.unassigned:,} of "
            f"{o.tickets:,} unassigned, {o.violations} violation(s), {o.status}, peak "
            f"{o.peak_mib:,.0f} MiB; load average {o.loadavg}"
        )
        failed |= o.violations > 0
    return 1 if failed else 0


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
        "--move-saving",
        type=int,
        default=None,
        help="the SLA cost a move must save (default: BatchParams.min_move_saving's)",
    )
    parser.add_argument(
        "--no-keep-seated",
        action="store_true",
        help="let the optimizer's search and churn guard queue seated tickets (pure objective)",
    )
    parser.add_argument(
        "--inline", action="store_true", help="run in this process (peak memory is then shared)"
    )
    parser.add_argument("--json", help="also write the results to this JSON file")
    parser.add_argument(
        "--scale",
        action="store_true",
        help="the dense 1,000 x 10,000 queue (~1.5 M pairs) with limits 1 s and 2 s: wall time "
        "against the limit, each phase's time, and who-takes-what alone",
    )
    parser.add_argument(
        "--scale-limits",
        default=",".join(f"{x:g}" for x in SCALE_LIMITS),
        help="comma-separated limits for --scale, seconds (default 1,2)",
    )
    parser.add_argument(
        "--huge",
        action="store_true",
        help="the sparse 10,000 x 100,000 queue (~1 M pairs): who-takes-what against 10 s and "
        "4 GiB beside plain OR-Tools, then optimize with --huge-limit",
    )
    parser.add_argument(
        "--huge-limit",
        type=float,
        default=HUGE_LIMIT_S,
        help="optimize's limit for --huge, seconds; 0 skips the optimize call (default 20)",
    )
    args = parser.parse_args(argv)

    console = Console(width=max(Console().width, 120))
    if args.huge:
        return run_huge(console, args.seed, args.huge_limit or None, inline=args.inline)
    if args.scale:
        limits = [float(x) for x in args.scale_limits.split(",") if x.strip()]
        return run_scale(console, args.seed, limits, inline=args.inline)
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
                size,
                tight,
                args.seed,
                policy,
                args.time_limit,
                args.max_moves,
                args.churn_weight,
                args.move_saving,
                not args.no_keep_seated,
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
