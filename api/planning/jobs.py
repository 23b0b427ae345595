"""The ``scenario.run`` and ``scenario.sweep`` job handlers: simulate, report, store.

The handler reads the run's frozen request and baseline, simulates every world with
:func:`scenarios.runner.run_worlds` on the *serial* backend (the worker is one process: a process
pool would take the service's cores from under it, and only the serial backend reports the
simulated time of the run in progress), writes the report with
:func:`scenarios.report.write_report` into a temporary directory and stores its files, the KPI
summary and the run's status in the transaction that completes the job (both or neither).

Progress goes into the job (``jobs.progress``, 0..1: finished replications plus the simulated
share of the one running) at most every :data:`PROGRESS_EVERY` seconds or 5 %, guarded by the
claim: a cancelled job (or a lost lease) stops the simulation at its next progress report.
"""

from __future__ import annotations

import math
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import update

from api.db.jobs import Job, JobStatus
from api.db.planning import RunKind, RunStatus, ScenarioRun, ScenarioRunFile
from api.db.results import affected_rows
from api.jobs import queue
from api.jobs.worker import JobContext, PermanentJobError
from api.planning.service import BASELINE, FILES, plan_of
from scenarios.inputs import InputError, baseline_from_dict
from scenarios.kpis import compare, summarize
from scenarios.results import RunResult

PROGRESS_EVERY = 1.0


def _number(value: object) -> float | None:
    """A JSON-safe number: NaN (no value, e.g. no CI from one replication) is null."""
    if value is None:
        return None
    out = float(value)  # type: ignore[arg-type]  # numpy scalars and floats
    return None if math.isnan(out) or math.isinf(out) else out


def summary_json(results: Mapping[str, Sequence[RunResult]], baseline: str) -> dict[str, Any]:
    """Every world's KPIs (mean and 95 % CI across replications) and each scenario's paired
    deltas against the baseline: the ``summary`` of ``GET /v1/planning/runs/{id}``."""
    worlds: dict[str, Any] = {}
    for name, runs in results.items():
        summary = summarize(runs)
        worlds[name] = {
            "replications": len(summary.replications),
            "note": summary.note,
            "kpis": {
                str(kpi): {
                    "mean": _number(row["mean"]),
                    "ci_low": _number(row["ci_low"]),
                    "ci_high": _number(row["ci_high"]),
                    "n": int(row["n"]),
                }
                for kpi, row in summary.overall.iterrows()
            },
        }
    deltas: dict[str, Any] = {}
    for name, runs in results.items():
        if name == baseline:
            continue
        comparison = compare(results[baseline], runs)
        deltas[name] = {
            str(kpi): {
                "baseline_mean": _number(row["baseline_mean"]),
                "scenario_mean": _number(row["scenario_mean"]),
                "delta_mean": _number(row["delta_mean"]),
                "delta_ci_low": _number(row["delta_ci_low"]),
                "delta_ci_high": _number(row["delta_ci_high"]),
                "n": int(row["n"]),
            }
            for kpi, row in comparison.overall.iterrows()
        }
    return {"baseline": baseline, "worlds": worlds, "deltas": deltas}


class _Progress:
    """Writes the job's progress, throttled; raises :class:`queue.LeaseLost` once the job is
    no longer this worker's (cancelled), which ends the simulation."""

    def __init__(self, ctx: JobContext) -> None:
        self.ctx = ctx
        self.done = 0
        self.total = 1
        self.written = -1.0
        self.at = 0.0

    def tasks(self, done: int, total: int) -> None:
        self.done, self.total = done, max(total, 1)
        self.write((done) / self.total)

    def run(self, fraction: float) -> None:
        self.write((self.done + min(max(fraction, 0.0), 1.0)) / self.total)

    def write(self, value: float, *, force: bool = False) -> None:
        now = time.monotonic()
        if not force and value - self.written < 0.05 and now - self.at < PROGRESS_EVERY:
            return
        self.written, self.at = value, now
        job = self.ctx.job
        with self.ctx.session_factory() as session:
            result = session.execute(
                update(Job)
                .where(
                    Job.id == job.id,
                    Job.locked_by == job.token,
                    Job.status == JobStatus.RUNNING,
                )
                .values(progress=round(value, 4))
                .execution_options(synchronize_session=False)
            )
            session.commit()
        if not affected_rows(result):
            raise queue.LeaseLost(f"job {job.id} is no longer held by {job.token}")


def run_planning_job(ctx: JobContext) -> dict[str, Any]:
    """The handler of ``scenario.run`` and ``scenario.sweep`` (the run's kind says which)."""
    # Imported here: the report pulls in matplotlib and openpyxl, which an API process that
    # never runs a planning job should not pay for at start-up.
    from scenarios.report import write_report
    from scenarios.runner import run_worlds

    run_id = ctx.payload.get("run_id")
    if not isinstance(run_id, str):
        raise PermanentJobError("bad payload: no run_id")
    with ctx.session_factory() as session:
        row = session.get(ScenarioRun, (ctx.tenant_id, run_id))
        if row is None:
            raise PermanentJobError(f"scenario run {run_id} is gone")
        kind, text, fmt, document = (
            RunKind(row.kind),
            row.request,
            row.request_format,
            dict(row.baseline),
        )
    try:
        plan = plan_of(kind, text, fmt, baseline_from_dict(document, source="baseline"))
    except InputError as exc:
        # Checked at submission: only a change of the simulator's rules gets here.
        raise PermanentJobError(str(exc)) from None
    progress = _Progress(ctx)
    results = run_worlds(
        plan.worlds,
        seed=plan.seed,
        replications=plan.replications,
        backend="serial",
        progress=progress.tasks,
        run_progress=progress.run,
    )
    summary = summary_json(results, BASELINE)
    with tempfile.TemporaryDirectory(prefix="switchboard-run-") as tmp:
        written = write_report(results, Path(tmp), baseline=BASELINE, worlds=plan.worlds)
        paths = {
            "report.html": written.html,
            "kpis.csv": written.kpis_csv,
            "intervals.csv": written.intervals_csv,
            "report.xlsx": written.xlsx,
        }
        contents = {name: Path(path).read_bytes() for name, path in paths.items()}
    with ctx.session_factory() as session:
        row = session.get(ScenarioRun, (ctx.tenant_id, run_id))
        if row is None:
            raise PermanentJobError(f"scenario run {run_id} was deleted while it ran")
        now = ctx.now()
        row.status = RunStatus.SUCCEEDED.value
        row.summary = summary
        row.finished_at = now
        for name, content in contents.items():
            session.merge(
                ScenarioRunFile(
                    tenant_id=ctx.tenant_id,
                    run_id=run_id,
                    name=name,
                    media_type=FILES[name],
                    content=content,
                )
            )
        result = {
            "run_id": run_id,
            "worlds": list(plan.worlds),
            "replications": plan.replications,
            "links": {"run": f"/v1/planning/runs/{run_id}"},
        }
        session.execute(
            update(Job)
            .where(Job.id == ctx.job.id, Job.locked_by == ctx.job.token)
            .values(progress=1.0)
            .execution_options(synchronize_session=False)
        )
        ctx.complete(session, result)
        session.commit()
    return result
