"""Schemas of stateless solving: a whole problem in, a plan out, nothing stored.

The request mirrors the solver's own input (``solver.problem``) in the API's vocabulary
(priorities as words, aware ISO 8601 datetimes); the response is the plan with every reason,
the solve's status and objective parts, and the plan's check against the hard rules.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator

from api.assignment.schemas import ReasonOut
from api.common.schemas import (
    ChannelCapacity,
    ChannelOpen,
    Id,
    Int,
    Levels,
    MaxMoves,
    MoveSaving,
    Name,
    Number,
    Requester,
    Schema,
    Timestamp,
    TimestampIn,
    TimeZone,
)
from api.enums import AgentStatus, SkillKind, TicketPriority
from api.org.intervals.schemas import end_after_start

PolicyName = Literal["optimizer", "least-loaded", "round-robin", "first-qualified"]


class SolveSkill(Schema):
    id: Id
    name: Name = ""
    kind: SkillKind = SkillKind.SKILL


class SolveTeam(Schema):
    id: Id
    name: Name = ""


class Span(Schema):
    start: TimestampIn
    end: TimestampIn

    _check_end = field_validator("end")(end_after_start)


class SolveAgent(Schema):
    id: Id
    team: Id
    skills: Levels = Field(default_factory=dict)
    capacity: Annotated[Int, Field(ge=0, le=1000)] = 1
    shifts: list[Span] = Field(default_factory=list, max_length=1000)
    busy: list[Span] = Field(default_factory=list, max_length=1000)
    open_tickets: Annotated[Int, Field(ge=0, le=100_000)] = 0
    backlog_minutes: Annotated[Int, Field(ge=0, le=10_000_000)] = 0
    recent_assignments: Annotated[Int, Field(ge=0, le=100_000)] = 0
    timezone: TimeZone = "UTC"
    status: AgentStatus = AgentStatus.AVAILABLE
    channel_capacity: ChannelCapacity = Field(default_factory=dict)
    channel_open: ChannelOpen = Field(default_factory=dict)


class SolveTicket(Schema):
    id: Id
    team: Id
    created_at: TimestampIn
    required_skills: Levels = Field(default_factory=dict)
    priority: TicketPriority = TicketPriority.NORMAL
    first_response_due: TimestampIn | None = None
    resolution_due: TimestampIn | None = None
    effort_minutes: Annotated[Int, Field(ge=1, le=10_080)] = 30
    owner_agent: Id | None = None
    previous_agent: Id | None = None
    requester: Requester | None = None
    channel: Id = Field(
        default="email", description="Where the customer reached out; agents may cap it"
    )


class SolveRequest(Schema):
    now: TimestampIn = Field(description="The moment the plan starts from")
    horizon_end: TimestampIn | None = Field(
        default=None, description="Plan work in shifts before this (default: now + 7 days)"
    )
    skills: list[SolveSkill] = Field(default_factory=list)
    teams: list[SolveTeam] = Field(default_factory=list)
    agents: list[SolveAgent]
    tickets: list[SolveTicket]
    policy: PolicyName = "optimizer"
    time_limit_seconds: Annotated[Number, Field(gt=0, le=300)] = 5.0
    seed: Annotated[Int, Field(ge=0, le=2**31 - 1)] = 0
    max_moves: MaxMoves = None
    move_saving: MoveSaving = None


class PlannedAssignmentOut(Schema):
    ticket_id: str
    agent_id: str
    position: int
    start: Timestamp | None
    end: Timestamp | None
    reasons: list[ReasonOut]


class QueuedOut(Schema):
    ticket_id: str
    team_id: str
    reasons: list[ReasonOut]


class StatsOut(Schema):
    policy: str
    status: str
    wall_seconds: float
    objective: float | None
    bound: float | None
    gap: float | None
    parts: dict[str, float] | None
    seed: int | None
    phases: dict[str, float]
    notes: list[str]


class EvaluationOut(Schema):
    """The plan scored by the solver-agnostic evaluator (the same one benchmarks use)."""

    objective: float
    breaches: int
    first_response_breaches: int
    resolution_breaches: int
    unassigned: int
    churn: int
    weighted_lateness_minutes: int


class ViolationOut(Schema):
    rule: str
    detail: str
    ticket_id: str | None
    agent_id: str | None


class SolveResponse(Schema):
    assignments: list[PlannedAssignmentOut]
    queued: list[QueuedOut]
    stats: StatsOut
    evaluation: EvaluationOut
    violations: list[ViolationOut] = Field(
        description="Hard-rule violations found by check_plan; always empty unless a bug"
    )
