"""What-if planning runs: submit (validated and bounded at once), read, list, their files.

A submission is checked whole before anything is queued, so a planner's mistake is a 422 naming
the line and field of their file (:class:`scenarios.inputs.InputError`), not a failed job later:
the scenario (or sweep) text is read against its baseline and every change applied. Then it is
bounded, because a run simulates inside the service's one job worker:

- replications per scenario <= ``planning_max_replications``;
- days <= 31 (:data:`api.planning.baseline.MAX_DAYS`);
- tickets per simulated world (history replayed times its scale, plus the volume profiles'
  expected arrivals) <= ``planning_max_tickets``;
- scenarios in a sweep <= ``planning_max_sweep_points``.

The row stores the request text and the baseline *as a document* (``world_to_dict``): a live
baseline is frozen at submission, and the job reads exactly what was checked.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import yaml
from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from api.db.jobs import Job
from api.db.planning import RunKind, RunStatus, ScenarioRun, ScenarioRunFile
from api.errors import Conflict, FieldError, InvalidInput, NotFound
from api.jobs import queue
from api.planning.baseline import MAX_DAYS, live_world
from api.settings import Settings
from scenarios.inputs import InputError, baseline_from_dict, world_to_dict
from scenarios.model import World
from scenarios.spec import scenario_from_text, sweep_from_text

RUN_JOB = "scenario.run"
SWEEP_JOB = "scenario.sweep"
BASELINE = "baseline"
# The files a finished run keeps: name -> media type.
FILES: Mapping[str, str] = {
    "report.html": "text/html; charset=utf-8",
    "kpis.csv": "text/csv; charset=utf-8",
    "intervals.csv": "text/csv; charset=utf-8",
    "report.xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}
EXPORTS = ("kpis.csv", "intervals.csv", "report.xlsx")


@dataclass(frozen=True)
class Plan:
    """What a run simulates: named worlds (the baseline first), with one seed and count."""

    name: str
    worlds: dict[str, World]
    seed: int
    replications: int


def input_problem(exc: InputError, prefix: str) -> InvalidInput:
    """A planner's file error as a 422: the field under ``prefix``, the line in ``row`` and in
    the reason (``errors[].row`` is the file's 1-based line)."""
    where = f"line {exc.line}: " if exc.line is not None else ""
    field = f"{prefix}.{exc.field}" if exc.field and not exc.field.startswith("<") else prefix
    return InvalidInput(
        [FieldError(field, f"{where}{exc.reason}", exc.line)],
        detail=f"{prefix}: {exc}",
    )


def _unique(name: str, taken: Sequence[str]) -> str:
    out, n = name, 2
    while out in taken:
        out, n = f"{name} ({n})", n + 1
    return out


def refuse_aliases(text: str) -> None:
    """Refuse YAML aliases (``*name``) before the text is composed: each one repeats a subtree,
    so ten nested levels of ten make 10^10 nodes out of a few hundred bytes, and reading that
    would hold a request thread for hours. A scenario needs none. Scanning is linear."""
    try:
        for token in yaml.scan(text, Loader=yaml.SafeLoader):
            if isinstance(token, yaml.AliasToken):
                line = token.start_mark.line + 1
                raise InvalidInput(
                    [
                        FieldError(
                            "scenario", f"line {line}: YAML aliases (*name) are not accepted", line
                        )
                    ]
                )
    except yaml.YAMLError:
        return  # not YAML at all: the reader names what is wrong with it


def plan_of(kind: RunKind, text: str, fmt: str, baseline: World) -> Plan:
    """The worlds of a scenario (baseline, scenario) or a sweep (baseline, every grid point),
    read from ``text``; raises :class:`InputError`."""
    if kind is RunKind.RUN:
        scenario = scenario_from_text(text, fmt=fmt, baseline=baseline, source="scenario")
        base = scenario.baseline
        worlds = {BASELINE: base, _unique(scenario.name, [BASELINE]): scenario.world()}
        return Plan(scenario.name, worlds, scenario.seed, scenario.replications)
    sweep = sweep_from_text(text, fmt=fmt, baseline=baseline, source="scenario")
    worlds = {BASELINE: sweep.baseline or baseline}
    for s in sweep.scenarios:
        worlds[_unique(s.name, list(worlds))] = s.world()
    return Plan(sweep.name, worlds, sweep.seed, sweep.replications)


def expected_tickets(world: World) -> float:
    """Roughly how many tickets simulating ``world`` creates: its history in the window (each
    times its replay factor) plus the volume profiles' expected arrivals."""
    end = world.start + timedelta(days=world.days)
    demand = world.demand
    history = sum(
        demand.history_factor(t.team, t.channel)
        for t in demand.history
        if world.start <= t.created_at < end
    )
    volume = 0.0
    for row in demand.volume:
        days = world.days if row.weekday is None else -(-world.days // 7)
        volume += row.per_hour * demand.scale * demand.shape.get(row.hour, 1.0) * days
    return history + volume


def check_bounds(plan: Plan, kind: RunKind, settings: Settings) -> None:
    errors: list[FieldError] = []
    if plan.replications > settings.planning_max_replications:
        errors.append(
            FieldError(
                "scenario.replications",
                f"must be at most {settings.planning_max_replications} on this server",
            )
        )
    if kind is RunKind.SWEEP and len(plan.worlds) - 1 > settings.planning_max_sweep_points:
        errors.append(
            FieldError(
                "scenario.grid",
                f"has {len(plan.worlds) - 1} points; at most "
                f"{settings.planning_max_sweep_points} on this server",
            )
        )
    for name, world in plan.worlds.items():
        if world.days > MAX_DAYS:
            errors.append(FieldError("scenario.days", f"must be at most {MAX_DAYS}"))
            break
        tickets = expected_tickets(world)
        if tickets > settings.planning_max_tickets:
            errors.append(
                FieldError(
                    "scenario",
                    f"{name!r} would simulate about {tickets:.0f} tickets; at most "
                    f"{settings.planning_max_tickets} on this server",
                )
            )
            break
    if errors:
        raise InvalidInput(errors)


def resolve_baseline(
    session: Session,
    tenant_id: str,
    *,
    baseline: str | Mapping[str, Any],
    days: int,
    since: datetime | None,
    now: datetime,
    settings: Settings,
) -> World:
    """The world a run starts from: the live tenant (frozen now) or the inline document."""
    if isinstance(baseline, str):
        start = since if since is not None else now - timedelta(days=days)
        try:
            return live_world(
                session,
                tenant_id,
                name="live",
                start=start,
                days=days,
                now=now,
                max_tickets=settings.planning_max_tickets,
            )
        except InvalidInput as exc:
            # The same checks as the export, named as this body's fields.
            renamed = {"query.days": "baseline_days", "query.tickets_since": "tickets_since"}
            raise InvalidInput(
                [FieldError(renamed.get(e.field, e.field), e.reason) for e in exc.errors]
            ) from None
    try:
        return baseline_from_dict(baseline, source="baseline")
    except InputError as exc:
        raise input_problem(exc, "baseline") from None


def submit(
    session: Session,
    tenant_id: str,
    *,
    kind: RunKind,
    text: str,
    fmt: str,
    baseline: World,
    now: datetime,
    settings: Settings,
) -> tuple[ScenarioRun, Job]:
    """Check the request, store the run and queue its job (the caller commits)."""
    if fmt == "yaml":
        refuse_aliases(text)
    try:
        plan = plan_of(kind, text, fmt, baseline)
    except InputError as exc:
        raise input_problem(exc, "scenario") from None
    except RecursionError:
        # tomllib reads nested arrays and tables recursively: 50,000 brackets exhaust it.
        raise InvalidInput.one("scenario", "nested too deeply to read") from None
    check_bounds(plan, kind, settings)
    run_id = str(uuid.uuid4())
    job = queue.enqueue(
        session=session,
        tenant_id=tenant_id,
        kind=RUN_JOB if kind is RunKind.RUN else SWEEP_JOB,
        payload={"run_id": run_id},
        now=now,
        # A simulation that failed once fails again: no retries eating the worker.
        max_attempts=1,
    )
    row = ScenarioRun(
        tenant_id=tenant_id,
        id=run_id,
        kind=kind.value,
        name=plan.name[:200],
        status=RunStatus.QUEUED.value,
        job_id=job.id,
        created_at=now,
        finished_at=None,
        request=text,
        request_format=fmt,
        baseline=world_to_dict(baseline),
        summary=None,
    )
    session.add(row)
    session.flush()
    return row, job


def get(session: Session, tenant_id: str, run_id: str) -> ScenarioRun:
    row = session.get(ScenarioRun, (tenant_id, run_id))
    if row is None:
        # Another tenant's run is exactly as absent as one that never existed.
        raise NotFound("scenario run", run_id)
    return row


def job_of(session: Session, row: ScenarioRun) -> Job | None:
    return queue.get(session=session, tenant_id=row.tenant_id, job_id=row.job_id)


def jobs_of(session: Session, tenant_id: str, rows: Sequence[ScenarioRun]) -> dict[str, Job]:
    """The jobs of ``rows`` that still exist, by id: one query for a page of runs."""
    ids = [r.job_id for r in rows]
    if not ids:
        return {}
    found = session.scalars(select(Job).where(Job.tenant_id == tenant_id, Job.id.in_(ids)))
    return {job.id: job for job in found}


def list_runs(
    session: Session, tenant_id: str, *, limit: int, after: tuple[datetime, str] | None
) -> Sequence[ScenarioRun]:
    """The tenant's runs, newest first (ties by id); ``after``: the last (created_at, id)."""
    stmt = select(ScenarioRun).where(ScenarioRun.tenant_id == tenant_id)
    if after is not None:
        at, last = after
        stmt = stmt.where(
            or_(
                ScenarioRun.created_at < at,
                and_(ScenarioRun.created_at == at, ScenarioRun.id > last),
            )
        )
    stmt = stmt.order_by(ScenarioRun.created_at.desc(), ScenarioRun.id).limit(limit)
    return session.scalars(stmt).all()


def file_of(session: Session, tenant_id: str, run_id: str, name: str) -> ScenarioRunFile:
    found = session.get(ScenarioRunFile, (tenant_id, run_id, name))
    if found is None:
        raise NotFound("file", f"{run_id}/{name}")
    return found


def cancel(session: Session, tenant_id: str, run_id: str, *, now: datetime) -> ScenarioRun:
    """Cancel the run's job (the caller commits): a queued run never starts, a running one
    stops at its next progress report (:mod:`api.planning.jobs`). A succeeded run is a 409;
    cancelling a cancelled one changes nothing."""
    row = get(session, tenant_id, run_id)
    if row.status == RunStatus.SUCCEEDED.value:
        raise Conflict(f"run {run_id!r} already succeeded; it cannot be cancelled")
    job = job_of(session, row)
    if job is None:
        raise Conflict(f"run {run_id!r} has no job left to cancel")
    queue.cancel(session=session, tenant_id=tenant_id, job_id=job.id, now=now)
    return row
