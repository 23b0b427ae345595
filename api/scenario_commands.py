"""``switchboard scenario run|compare|sweep``: what-if planning from the terminal.

``api/cli.py`` declares the arguments and imports this module lazily. Each command reads its
files (:mod:`scenarios.spec`), runs every (scenario, replication) pair with
:mod:`scenarios.runner` -- all with the same seed, so the scenarios' deltas against the baseline
are paired (common random numbers) -- shows progress while it runs, prints a summary table
(KPI, baseline, scenario, delta ± 95 % CI), writes the report (:mod:`scenarios.report`) and
prints its path.

A planner's mistake in a file is not a crash: the :class:`scenarios.inputs.InputError` is
printed as it reads (``file:line: field: reason``) and the exit status is 2, as for a bad
argument.
"""

from __future__ import annotations

import argparse
import math
import re
import webbrowser
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    SpinnerColumn,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from scenarios.model import World

if TYPE_CHECKING:
    from scenarios.kpis import Comparison
    from scenarios.results import RunResult
    from scenarios.runner import Backend

# Exit statuses: 2 as argparse uses for a bad argument (a bad file is one too), 1 for a run that
# could not be done (no Dask, a cluster that does not answer), 130 for Ctrl-C.
INPUT_ERROR = 2
RUN_ERROR = 1
INTERRUPTED = 130


# The terminal's table, in this order (every KPI of the report's kpis.csv, named as /v1/kpis).
# ``better``: +1 when higher is better, -1 when lower is, 0 when it is neither (colours the
# delta when its interval excludes zero). ``kind``: how the value reads.
@dataclass(frozen=True, slots=True)
class _Kpi:
    name: str
    label: str
    better: int
    kind: str  # "count" | "minutes" | "share"


KPIS = (
    _Kpi("tickets_created", "tickets created", 0, "count"),
    _Kpi("tickets_resolved", "tickets resolved", 1, "count"),
    _Kpi("first_response_minutes_p50", "first response p50 (min)", -1, "minutes"),
    _Kpi("first_response_minutes_p90", "first response p90 (min)", -1, "minutes"),
    _Kpi("first_response_minutes_mean", "first response mean (min)", -1, "minutes"),
    _Kpi("resolution_minutes_p50", "resolution p50 (min)", -1, "minutes"),
    _Kpi("resolution_minutes_p90", "resolution p90 (min)", -1, "minutes"),
    _Kpi("resolution_minutes_mean", "resolution mean (min)", -1, "minutes"),
    _Kpi("sla_first_response_compliance", "SLA first response", 1, "share"),
    _Kpi("sla_resolution_compliance", "SLA resolution", 1, "share"),
    _Kpi("sla_overall_compliance", "SLA overall", 1, "share"),
    _Kpi("backlog", "backlog at the end", -1, "count"),
    _Kpi("oldest_ticket_age_minutes", "oldest ticket age (min)", -1, "minutes"),
    _Kpi("open_unassigned", "open unassigned", -1, "count"),
    _Kpi("assignments", "assignments", 0, "count"),
    _Kpi("reassignments", "reassignments", -1, "count"),
    _Kpi("abandoned", "abandoned (live)", -1, "count"),
    _Kpi("occupancy", "occupancy", 0, "share"),
    _Kpi("calls_booked", "calls booked", 0, "count"),
    _Kpi("calls_at_risk", "calls at risk", -1, "count"),
    _Kpi("call_reassignments", "call reassignments", -1, "count"),
)
# A sweep's table has a row per grid point: these columns only.
SWEEP_KPIS = (
    "first_response_minutes_p90",
    "resolution_minutes_p90",
    "sla_overall_compliance",
    "backlog",
    "occupancy",
)


class CommandError(Exception):
    """A command that cannot go on; ``status`` is its exit status."""

    def __init__(self, message: str, status: int = INPUT_ERROR) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True, slots=True)
class Plan:
    """What a command runs: named worlds (the baseline among them), seed and replications."""

    title: str
    worlds: dict[str, World]
    baseline: str
    seed: int
    replications: int


# --- the commands ---------------------------------------------------------------------------


def scenario_run(args: argparse.Namespace) -> int:
    return _command(args, lambda: _plan_run(args))


def scenario_compare(args: argparse.Namespace) -> int:
    return _command(args, lambda: _plan_compare(args))


def scenario_sweep(args: argparse.Namespace) -> int:
    return _command(args, lambda: _plan_sweep(args))


def _command(args: argparse.Namespace, plan: Callable[[], Plan]) -> int:
    err = Console(stderr=True, highlight=False)
    try:
        with _input_errors():
            chosen = plan()
        return _execute(chosen, args)
    except CommandError as exc:
        err.print(str(exc), markup=False)
        return exc.status
    except KeyboardInterrupt:
        err.print("interrupted", markup=False)
        return INTERRUPTED


@contextmanager
def _input_errors() -> Iterator[None]:
    """A planner's file mistakes as one line each, never a traceback."""
    from scenarios.inputs import InputError
    from solver.errors import ProblemError

    try:
        yield
    except InputError as exc:
        raise CommandError(str(exc)) from None
    except ProblemError as exc:  # a model check the readers did not locate (should not happen)
        raise CommandError(f"invalid scenario: {exc}") from None
    except OSError as exc:
        where = exc.filename if exc.filename is not None else "?"
        raise CommandError(f"{where}: {exc.strerror or exc}") from None


def _plan_run(args: argparse.Namespace) -> Plan:
    from scenarios.spec import load_scenario

    scenario = load_scenario(Path(args.file))
    base_name = _baseline_name(scenario.baseline, {scenario.name})
    # The baseline unchanged, over the same period (Scenario.baseline carries the file's days
    # and interval overrides), with the same seeds: the deltas are paired.
    return Plan(
        title=scenario.name,
        worlds={base_name: scenario.baseline, scenario.name: scenario.world()},
        baseline=base_name,
        seed=_or(args.seed, scenario.seed),
        replications=_or(args.replications, scenario.replications),
    )


def _plan_compare(args: argparse.Namespace) -> Plan:
    """Scenario files side by side, and baseline files among them if given (``compare
    baseline.yaml volume-up-optimizer.yaml``). The reference is the first scenario's baseline,
    unchanged (a baseline file equal to it takes its place under its own name), or the one
    ``--baseline`` names."""
    from scenarios.spec import DEFAULT_REPLICATIONS, Scenario, load_scenario

    items: list[Scenario | World] = [
        _load_baseline(Path(f)) if _is_baseline_file(Path(f)) else load_scenario(Path(f))
        for f in args.files
    ]
    scenarios = [x for x in items if isinstance(x, Scenario)]
    reference = scenarios[0].baseline if scenarios else items[0]
    assert isinstance(reference, World)
    names = [x.name for x in items if not (isinstance(x, World) and x == reference)]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise CommandError(f"scenario names must differ to be compared: {', '.join(twice)}")
    given = next((x for x in items if isinstance(x, World) and x == reference), None)
    base_name = given.name if given is not None else _baseline_name(reference, set(names))
    worlds: dict[str, World] = {base_name: reference}
    for item in items:
        if isinstance(item, Scenario):
            if item.baseline != reference:
                raise CommandError(
                    f"{item.source or item.name}: its baseline differs from "
                    f"{scenarios[0].source or scenarios[0].name}'s (file, days or "
                    "interval_minutes): scenarios are compared against one baseline"
                )
            worlds[item.name] = item.world()
        elif item != reference:
            worlds[item.name] = item
    baseline = base_name
    if args.baseline is not None:
        if args.baseline not in worlds:
            raise CommandError(
                f"--baseline {args.baseline!r} is none of the scenarios: {', '.join(worlds)}"
            )
        baseline = args.baseline
    first = scenarios[0] if scenarios else None
    shown = [n for n in worlds if n != base_name or given is not None]
    return Plan(
        title=" vs ".join(shown) if len(shown) <= 3 else f"{shown[0]} and {len(shown) - 1} more",
        worlds=worlds,
        baseline=baseline,
        seed=_or(args.seed, first.seed if first else 0),
        replications=_or(args.replications, first.replications if first else DEFAULT_REPLICATIONS),
    )


def _is_baseline_file(path: Path) -> bool:
    """A baseline (``agents:`` and no ``baseline:`` of its own) rather than a scenario. Only
    YAML baselines exist; anything unreadable is left to the scenario reader to report."""
    if path.suffix.lower() == ".toml":
        return False
    from scenarios.inputs import InputError, yaml_with_lines

    try:
        data, _ = yaml_with_lines(path.read_text(encoding="utf-8"), str(path))
    except (OSError, UnicodeDecodeError, InputError):
        return False
    return isinstance(data, dict) and "agents" in data and "baseline" not in data


def _load_baseline(path: Path) -> World:
    from scenarios.inputs import load_baseline

    return load_baseline(path)


def _plan_sweep(args: argparse.Namespace) -> Plan:
    from scenarios.spec import load_sweep

    sweep = load_sweep(Path(args.file))
    if not sweep.scenarios:
        raise CommandError(f"{args.file}: the sweep's grid has no point")
    worlds_of = {s.name: s.world() for s in sweep.scenarios}
    base = sweep.baseline if sweep.baseline is not None else sweep.scenarios[0].baseline
    base_name = _baseline_name(base, set(worlds_of))
    return Plan(
        title=sweep.name,
        worlds={base_name: base, **worlds_of},
        baseline=base_name,
        seed=_or(args.seed, sweep.seed),
        replications=_or(args.replications, sweep.replications),
    )


def _or(given: int | None, default: int) -> int:
    return default if given is None else given


def _baseline_name(baseline: World, taken: set[str]) -> str:
    name = baseline.name or "baseline"
    return name if name not in taken else f"{name} (baseline)"


# --- running ----------------------------------------------------------------------------------


def _execute(plan: Plan, args: argparse.Namespace) -> int:
    from scenarios import runner
    from scenarios.report import write_report

    out = Console(highlight=False)
    err = Console(stderr=True, highlight=False)
    tasks = len(plan.worlds) * plan.replications
    backend: Backend
    client = None
    if args.dask:
        try:
            client = runner.dask_client(args.dask)
        except runner.MissingExtraError as exc:
            raise CommandError(str(exc), RUN_ERROR) from None
        except OSError as exc:  # the scheduler did not answer
            raise CommandError(f"no Dask scheduler at {args.dask}: {exc}", RUN_ERROR) from None
        backend = client
        where = f"on the Dask cluster at {args.dask}"
    elif args.workers == 1 or tasks == 1:
        backend = "serial"
        where = "in this process"
    else:
        backend = "process"
        workers = min(args.workers or _cores(), tasks)
        where = f"on {workers} worker process{'es' if workers > 1 else ''}"
    err.print(
        f"{plan.title}: {len(plan.worlds)} scenarios × {plan.replications} replications "
        f"(seed {plan.seed}) {where}",
        markup=False,
    )
    try:
        results = _run_with_progress(plan, backend, args.workers, err)
    finally:
        if client is not None:
            client.close()
    out_dir = Path(args.out) if args.out else Path("reports") / _slug(plan.title)
    with _spinner(err, "writing the report"):
        files = write_report(results, out_dir, baseline=plan.baseline, worlds=plan.worlds)
    _summary(out, plan, results)
    out.print(f"report: {Path(files.html).resolve()}", markup=False, soft_wrap=True)
    out.print(
        "exports: "
        + ", ".join(
            str(Path(f).resolve()) for f in (files.kpis_csv, files.intervals_csv, files.xlsx)
        ),
        markup=False,
        soft_wrap=True,
    )
    if args.open and not webbrowser.open(Path(files.html).resolve().as_uri()):
        err.print(f"no web browser to open it with: open {files.html}", markup=False)
    return 0


def _cores() -> int:
    import os

    return os.cpu_count() or 1


def _run_with_progress(
    plan: Plan, backend: Backend, workers: int | None, console: Console
) -> dict[str, list[RunResult]]:
    from scenarios import runner

    columns = (
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[count]}"),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
    )
    total = len(plan.worlds) * plan.replications
    # The replications bar counts finished runs plus the simulated-time share of those in
    # flight (process pool and serial), so it moves before the first run is done; a serial
    # run also has its own bar. Dask reports finished runs only.
    fractions = [0.0] * total
    finished = [0]
    with Progress(*columns, console=console) as bars:
        runs = bars.add_task("replications", total=total, count=f"0/{total}")
        current = (
            bars.add_task("simulated time", total=1.0, count="") if backend == "serial" else None
        )

        def progress(done: int, total: int) -> None:
            finished[0] = done
            bars.update(runs, completed=max(done, sum(fractions)), count=f"{done}/{total}")
            if current is not None and done < total:
                bars.reset(current, total=1.0, count="")

        def task_progress(index: int, fraction: float) -> None:
            fractions[index] = min(max(fraction, 0.0), 1.0)
            bars.update(runs, completed=max(finished[0], sum(fractions)))
            if current is not None:
                bars.update(current, completed=fractions[index])

        return runner.run_worlds(
            plan.worlds,
            seed=plan.seed,
            replications=plan.replications,
            backend=backend,
            workers=workers,
            progress=progress,
            task_progress=task_progress,
        )


@contextmanager
def _spinner(console: Console, what: str) -> Iterator[None]:
    with console.status(what):
        yield


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-.").lower()[:80] or "scenario"


# --- the summary table ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Delta:
    """One KPI of one scenario against the baseline: means and the paired delta's CI."""

    baseline: float
    scenario: float
    delta: float
    ci_low: float
    ci_high: float


def _summary(console: Console, plan: Plan, results: Mapping[str, Sequence[RunResult]]) -> None:
    from scenarios.kpis import compare

    others = [name for name in plan.worlds if name != plan.baseline]
    deltas = {name: _deltas(compare(results[plan.baseline], results[name])) for name in others}
    n = plan.replications
    ci = "± half the 95 % CI" if n > 1 else "no CI: 1 replication"
    console.print(
        Text(
            f"{plan.title}: against {plan.baseline}, mean of {n} replication{'s' if n > 1 else ''}"
            f", deltas paired by replication ({ci})",
            style="bold",
        )
    )
    if len(others) <= 2:
        console.print(_kpi_table(plan, others, deltas))
    else:
        console.print(_scenario_table(plan, others, deltas))


def _deltas(comparison: Comparison) -> dict[str, Delta]:
    """KPI name -> :class:`Delta`, from :attr:`scenarios.kpis.Comparison.overall`."""
    table = comparison.overall
    return {
        str(kpi): Delta(
            baseline=float(row["baseline_mean"]),
            scenario=float(row["scenario_mean"]),
            delta=float(row["delta_mean"]),
            ci_low=float(row["delta_ci_low"]),
            ci_high=float(row["delta_ci_high"]),
        )
        for kpi, row in table.iterrows()
    }


def _kpi_table(plan: Plan, others: list[str], deltas: Mapping[str, Mapping[str, Delta]]) -> Table:
    table = Table()
    table.add_column("KPI", no_wrap=True)
    table.add_column(Text(plan.baseline), justify="right")
    for name in others:
        table.add_column(Text(name), justify="right")
        table.add_column("delta ± CI", justify="right", no_wrap=True)
    for kpi in KPIS:
        row: list[str | Text] = [kpi.label]
        first = next((deltas[n][kpi.name] for n in others if kpi.name in deltas[n]), None)
        if first is None:
            continue
        row.append(_value(first.baseline, kpi.kind))
        for name in others:
            d = deltas[name].get(kpi.name)
            if d is None:
                row += ["", ""]
                continue
            row += [_value(d.scenario, kpi.kind), _delta_cell(d, kpi)]
        table.add_row(*row)
    return table


def _scenario_table(
    plan: Plan, others: list[str], deltas: Mapping[str, Mapping[str, Delta]]
) -> Table:
    kpis = [k for k in KPIS if k.name in SWEEP_KPIS]
    table = Table()
    table.add_column("scenario", no_wrap=True)
    for kpi in kpis:
        table.add_column(kpi.label, justify="right")
    base_row: list[str | Text] = [Text(plan.baseline)]
    for kpi in kpis:
        d = next((deltas[n][kpi.name] for n in others if kpi.name in deltas[n]), None)
        base_row.append("" if d is None else _value(d.baseline, kpi.kind))
    table.add_row(*base_row, style="bold")
    for name in others:
        row: list[str | Text] = [Text(name)]
        for kpi in kpis:
            d = deltas[name].get(kpi.name)
            row.append(
                ""
                if d is None
                else Text(f"{_value(d.scenario, kpi.kind)} ").append_text(_delta_cell(d, kpi))
            )
        table.add_row(*row)
    return table


def _value(value: float, kind: str) -> str:
    if not math.isfinite(value):
        return "–"
    if kind == "share":
        return f"{100 * value:.1f} %"
    if kind == "minutes":
        return f"{value:,.1f}"
    return f"{value:,.1f}" if value != round(value) else f"{value:,.0f}"


def _delta_cell(d: Delta, kpi: _Kpi) -> Text:
    """``+12.5 ± 3.1`` (shares in percentage points): green when the interval excludes zero on
    the better side, red on the worse, plain when it includes zero (no evidence either way)."""
    scale, unit = (100.0, " pp") if kpi.kind == "share" else (1.0, "")
    if not math.isfinite(d.delta):
        return Text("–")
    text = f"{scale * d.delta:+,.1f}{unit}"
    if math.isfinite(d.ci_low) and math.isfinite(d.ci_high):
        text += f" ± {scale * (d.ci_high - d.ci_low) / 2:,.1f}"
        if kpi.better and (d.ci_low > 0 or d.ci_high < 0):
            good = (d.delta > 0) == (kpi.better > 0)
            return Text(text, style="green" if good else "red")
    return Text(text, style="dim" if d.delta == 0 else "")
