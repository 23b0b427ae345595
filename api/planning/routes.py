"""/v1/planning: what-if planning for planner keys (issue 13).

A planner exports the live tenant as a baseline, submits scenario runs and sweeps (202 + a job
on the existing queue, its progress in the job), and reads the results: the KPI summary with
confidence intervals and deltas, the self-contained HTML report and the CSV / Excel exports.
Runs belong to their tenant (another tenant's is a 404). Every route here needs the ``planner``
scope (or ``admin``); none changes the live organisation or tickets.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request, Response

from api.common import service as common
from api.common.problem import PROBLEM_RESPONSES
from api.common.schemas import TimestampIn
from api.db.jobs import Job, JobStatus
from api.db.planning import RunKind, RunStatus, ScenarioRun
from api.http.deps import NowDep, PageDep, PlannerAuth, SessionDep, SettingsDep
from api.planning import service as planning
from api.planning.baseline import MAX_DAYS, live_world
from api.planning.schemas import RunIn, RunLinks, RunList, RunOut, RunSummary
from scenarios.inputs import dump_baseline, world_to_dict

router = APIRouter(prefix="/v1/planning", tags=["planning"], responses=PROBLEM_RESPONSES)

RunId = Annotated[str, Path(min_length=1, max_length=36)]
YAML = "application/yaml"


def _wants_json(request: Request) -> bool:
    accept = request.headers.get("accept", "").lower()
    return "application/json" in accept and "yaml" not in accept


@router.get(
    "/baseline",
    summary="The live tenant as a what-if baseline (YAML, or JSON by Accept)",
    responses={
        200: {
            "description": (
                "The baseline document (scenarios/examples/baseline.yaml's format, inline): "
                "skills, teams, capabilities, agents with weekly shift patterns derived from "
                "their stored shifts in the window (the latest week wins per weekday), and the "
                "window's tickets as demand.history (pseudonymous ids; no requester)"
            ),
            "content": {
                YAML: {"schema": {"type": "object"}},
                "application/json": {"schema": {"type": "object"}},
            },
        }
    },
)
def export_baseline(
    request: Request,
    session: SessionDep,
    auth: PlannerAuth,
    now: NowDep,
    settings: SettingsDep,
    days: Annotated[int, Query(ge=1, le=MAX_DAYS, description="The window's days")] = 14,
    tickets_since: Annotated[
        TimestampIn | None,
        Query(description="The window's start (default: now - days); its tickets are replayed"),
    ] = None,
) -> Response:
    """The tenant's organisation and recent tickets as a baseline that loads back with
    ``scenarios.inputs.load_baseline``."""
    start = tickets_since if tickets_since is not None else now - timedelta(days=days)
    world = live_world(
        session,
        auth.tenant_id,
        name="live",
        start=start,
        days=days,
        now=now,
        max_tickets=settings.planning_max_tickets,
    )
    if _wants_json(request):
        return Response(json.dumps(world_to_dict(world)), media_type="application/json")
    return Response(dump_baseline(world), media_type=YAML)


def _out(row: ScenarioRun, job_status: JobStatus | None, progress: float | None,
         error: str | None) -> RunOut:  # fmt: skip
    if row.status == RunStatus.SUCCEEDED.value:
        status, progress = JobStatus.SUCCEEDED, 1.0
    elif job_status is None or job_status is JobStatus.SUCCEEDED:
        # The job is gone (pruned) or finished without storing the run: the run never will.
        status = JobStatus.FAILED
        error = error or "the run's job is gone"
    else:
        status = job_status
    done = status is JobStatus.SUCCEEDED
    base = f"/v1/planning/runs/{row.id}"
    return RunOut(
        id=row.id,
        kind="sweep" if row.kind == RunKind.SWEEP.value else "run",
        name=row.name,
        status=status,
        progress=progress,
        error=error,
        created_at=row.created_at,
        finished_at=row.finished_at,
        summary=RunSummary.model_validate(row.summary) if done and row.summary else None,
        links=RunLinks(
            self=base,
            job=f"/v1/jobs/{row.job_id}",
            report=f"{base}/report" if done else None,
            exports={name: f"{base}/exports/{name}" for name in planning.EXPORTS} if done else {},
        ),
    )


def _read(session: SessionDep, row: ScenarioRun) -> RunOut:
    return _with_job(row, planning.job_of(session, row))


def _with_job(row: ScenarioRun, job: Job | None) -> RunOut:
    if job is None:
        return _out(row, None, None, None)
    return _out(row, job.status, job.progress, job.error)


def _submit(
    kind: RunKind,
    request: Request,
    response: Response,
    body: RunIn,
    session: SessionDep,
    tenant_id: str,
    now: datetime,
    settings: SettingsDep,
) -> RunOut:
    baseline = planning.resolve_baseline(
        session,
        tenant_id,
        baseline=body.baseline,
        days=body.baseline_days,
        since=body.tickets_since,
        now=now,
        settings=settings,
    )
    row, job = planning.submit(
        session,
        tenant_id,
        kind=kind,
        text=body.scenario,
        fmt=body.format.value,
        baseline=baseline,
        now=now,
        settings=settings,
    )
    session.commit()
    worker = getattr(request.app.state, "job_worker", None)
    if worker is not None:
        worker.notify()
    response.headers["Location"] = f"/v1/planning/runs/{row.id}"
    return _out(row, job.status, None, None)


_ACCEPTED: dict[int | str, dict[str, Any]] = {
    202: {"description": "Accepted: the run, its job and its status URL (Location)"}
}


@router.post(
    "/runs",
    status_code=202,
    summary="Simulate a scenario against its baseline as a job; poll the run",
    responses=_ACCEPTED,
)
def submit_run(
    request: Request,
    response: Response,
    body: RunIn,
    session: SessionDep,
    auth: PlannerAuth,
    now: NowDep,
    settings: SettingsDep,
) -> RunOut:
    """Checks the scenario against its baseline (422 naming the line and field), then queues
    the simulation of the baseline and the scenario (same seeds: paired deltas)."""
    return _submit(RunKind.RUN, request, response, body, session, auth.tenant_id, now, settings)


@router.post(
    "/sweeps",
    status_code=202,
    summary="Simulate a sweep (a grid of scenarios) against its baseline as a job; poll it",
    responses=_ACCEPTED,
)
def submit_sweep(
    request: Request,
    response: Response,
    body: RunIn,
    session: SessionDep,
    auth: PlannerAuth,
    now: NowDep,
    settings: SettingsDep,
) -> RunOut:
    """Checks the sweep (422 naming the line and field), then queues the baseline and every
    grid point's simulation."""
    return _submit(RunKind.SWEEP, request, response, body, session, auth.tenant_id, now, settings)


@router.get("/runs", summary="List the tenant's what-if runs and sweeps, newest first")
def list_runs(session: SessionDep, auth: PlannerAuth, page: PageDep) -> RunList:
    """One page of runs, newest first."""
    rows = planning.list_runs(
        session, auth.tenant_id, limit=page.limit + 1, after=common.decode_time_cursor(page.cursor)
    )
    more = len(rows) > page.limit
    rows = rows[: page.limit]
    last = rows[-1] if more and rows else None
    cursor = common.encode_time_cursor(last.created_at, last.id) if last else None
    jobs = planning.jobs_of(session, auth.tenant_id, rows)
    return RunList(items=[_with_job(r, jobs.get(r.job_id)) for r in rows], next_cursor=cursor)


@router.get("/runs/{run_id}", summary="A run: status, progress, and its KPI summary when done")
def read_run(run_id: RunId, session: SessionDep, auth: PlannerAuth) -> RunOut:
    """The run's status and progress; once succeeded, KPIs with CIs and paired deltas."""
    return _read(session, planning.get(session, auth.tenant_id, run_id))


@router.post(
    "/runs/{run_id}/cancel",
    summary="Cancel a queued or running what-if run (a running one stops at its next progress)",
)
def cancel_run(run_id: RunId, session: SessionDep, auth: PlannerAuth, now: NowDep) -> RunOut:
    """Cancels the run's job: a queued run never starts, a running one stops simulating
    within a second or so. A finished run is a 409."""
    row = planning.cancel(session, auth.tenant_id, run_id, now=now)
    session.commit()
    return _read(session, row)


def _file(session: SessionDep, tenant_id: str, run_id: str, name: str) -> Response:
    planning.get(session, tenant_id, run_id)
    found = planning.file_of(session, tenant_id, run_id, name)
    headers = {}
    if not name.endswith(".html"):
        headers["Content-Disposition"] = f'attachment; filename="{run_id}-{name}"'
    return Response(found.content, media_type=found.media_type, headers=headers)


@router.get(
    "/runs/{run_id}/report",
    summary="The run's self-contained HTML report (charts embedded)",
    responses={200: {"content": {"text/html": {}}}, 404: {"description": "No such run yet"}},
    response_class=Response,
)
def read_report(run_id: RunId, session: SessionDep, auth: PlannerAuth) -> Response:
    """The HTML report, once the run succeeded (404 before)."""
    return _file(session, auth.tenant_id, run_id, "report.html")


@router.get(
    "/runs/{run_id}/exports/{name}",
    summary="The run's KPI exports: kpis.csv, intervals.csv or report.xlsx",
    responses={
        200: {
            "content": {
                "text/csv": {},
                planning.FILES["report.xlsx"]: {},
            }
        }
    },
    response_class=Response,
)
def read_export(
    run_id: RunId,
    name: Annotated[Literal["kpis.csv", "intervals.csv", "report.xlsx"], Path()],
    session: SessionDep,
    auth: PlannerAuth,
) -> Response:
    """One export of a succeeded run (404 before)."""
    return _file(session, auth.tenant_id, run_id, name)
