"""Schemas of background jobs (``/v1/jobs``) and of starting a queue re-optimization."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from api.common.schemas import Id, Int, MaxMoves, MoveSaving, Number, Schema, Timestamp
from api.db.jobs import Job, JobStatus


class OptimizeIn(Schema):
    team: Id | None = Field(default=None, description="Only this team's queue (default: all)")
    time_limit_s: Number = Field(
        default=10.0,
        gt=0,
        le=3600,
        # The operator's cap (optimize_max_time_limit_seconds) is a setting, not a schema
        # constant: a larger value is a 422 naming time_limit_s. Say so, as for page sizes.
        description=(
            "Wall-clock limit of the solve, in seconds (the server's maximum is 300 unless its "
            "operator set another)"
        ),
    )
    seed: Int = Field(default=0, ge=0, le=2**31 - 1, description="Same seed, same plan")
    max_moves: MaxMoves = None
    move_saving: MoveSaving = None


class JobLinks(Schema):
    self: str


class JobOut(Schema):
    id: str
    kind: str
    status: JobStatus
    progress: float | None = Field(
        description="How far a running job is, 0..1, for kinds that say so (scenario.run, "
        "scenario.sweep: the simulated share done); null otherwise"
    )
    attempts: int
    max_attempts: int
    payload: dict[str, Any]
    result: dict[str, Any] | None = Field(
        description="When succeeded: for queue.optimize, every change (ticket, from, to, why), "
        "what was skipped and why, and the solve's stats (status, objective parts, bound, gap); "
        "for tickets.breach_risk, the tickets checked and at risk, how many were recorded, "
        "rerouted, borrowed or escalated (already_recorded: risks told before), and whether "
        "the next check was queued; for scenario.run and scenario.sweep, the run's id and "
        "worlds (its results: GET /v1/planning/runs/{id})"
    )
    error: str | None
    created_at: Timestamp
    run_after: Timestamp
    started_at: Timestamp | None
    finished_at: Timestamp | None
    links: JobLinks

    @classmethod
    def from_row(cls, row: Job) -> JobOut:
        return cls(
            id=row.id,
            kind=row.kind,
            status=row.status,
            progress=row.progress,
            attempts=row.attempts,
            max_attempts=row.max_attempts,
            payload=row.payload or {},
            result=row.result,
            error=row.error,
            created_at=row.created_at,
            run_after=row.run_after,
            started_at=row.started_at,
            finished_at=row.finished_at,
            links=JobLinks(self=f"/v1/jobs/{row.id}"),
        )


class JobList(Schema):
    items: list[JobOut]
    next_cursor: str | None = Field(description="Pass as `cursor` for older jobs; null at the end")
