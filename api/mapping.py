"""The one translation between the service's data and the solver's, each way written once.

Inward, rows and requests become the solver's own types (``solver.problem``,
``solver.capability``): a ticket row, the hot path's plain ticket columns and a posted
``/v1/solve`` ticket all become a :class:`solver.problem.Ticket` here and nowhere else, so a field
added to the solver's ticket is added in one place. Outward, the solver's results — decisions,
reasons, plans, bindings, open slots — and the service's own reports become JSON-ready dicts
(str keys; str, int, float, bool, None, lists and dicts; datetimes as ISO 8601 text), which the
routes turn into response models or write out directly. Services hand back plain data
(dataclasses such as :class:`Owner`, solver results); they never build an API schema.

Nothing here reads the database or the environment: the callers read, this maps. The request
schemas are named for their types only (no import at run time), so the solve pool's workers and
the hot path import no pydantic model through this module.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal, Protocol
from zoneinfo import ZoneInfo

from api.enums import SkillKind, TicketPriority
from api.errors import FieldError, InvalidInput
from solver.capability import AtRisk, Binding, Capability, Slot
from solver.capability import Call as SolverCall
from solver.errors import ProblemError
from solver.plan import Decision, Plan, Reason, SolveStats
from solver.problem import Agent, Interval, Problem, Skill, Team, TeamScope, Ticket
from solver.validation import Evaluation, Violation

if TYPE_CHECKING:
    from api.db.models import Agent as AgentRow
    from api.db.models import Capability as CapabilityRow
    from api.db.models import Ticket as TicketRow
    from api.kpis.service import Compliance, Durations, Report
    from api.solve.schemas import SolveAgent, SolveRequest, SolveTicket

JSON = dict[str, Any]

# --------------------------------------------------------------------------- inward


class TicketColumns(Protocol):
    """A ticket's own columns, as an ORM row and the hot path's Core view both carry them."""

    @property
    def id(self) -> str: ...
    @property
    def team_id(self) -> str: ...
    @property
    def priority(self) -> TicketPriority: ...
    @property
    def created_at(self) -> datetime: ...
    @property
    def first_response_due(self) -> datetime | None: ...
    @property
    def resolution_due(self) -> datetime | None: ...
    @property
    def effort_minutes(self) -> int: ...
    @property
    def owner_agent_id(self) -> str | None: ...
    @property
    def previous_agent_id(self) -> str | None: ...
    @property
    def requester(self) -> str | None: ...
    @property
    def channel(self) -> str: ...


def ticket(columns: TicketColumns, required: Mapping[str, int]) -> Ticket:
    """The solver's ticket from a stored ticket's columns and its required skills (skill ->
    level; empty when it needs none). The owner stays on it: the batch penalises moving it and
    the real-time path prefers continuity."""
    return Ticket(
        id=columns.id,
        team=columns.team_id,
        created_at=columns.created_at,
        required_skills=required,
        priority=columns.priority.to_solver(),
        first_response_due=columns.first_response_due,
        resolution_due=columns.resolution_due,
        effort_minutes=columns.effort_minutes,
        owner_agent=columns.owner_agent_id,
        previous_agent=columns.previous_agent_id,
        requester=columns.requester,
        channel=columns.channel,
    )


def ticket_from_row(row: TicketRow) -> Ticket:
    """The solver's ticket from an ORM row (its ``required_skills`` relationship loaded)."""
    return ticket(row, {s.skill_id: s.level for s in row.required_skills})


def ticket_from_request(t: SolveTicket) -> Ticket:
    """The solver's ticket from a posted ``/v1/solve`` ticket (the request's own field names)."""
    return Ticket(
        id=t.id,
        team=t.team,
        created_at=t.created_at,
        required_skills=t.required_skills,
        priority=t.priority.to_solver(),
        first_response_due=t.first_response_due,
        resolution_due=t.resolution_due,
        effort_minutes=t.effort_minutes,
        owner_agent=t.owner_agent,
        previous_agent=t.previous_agent,
        requester=t.requester,
        channel=t.channel,
    )


def agent_from_row(
    row: AgentRow,
    shifts: Iterable[Interval] = (),
    busy: Iterable[Interval] = (),
    *,
    open_tickets: int = 0,
    backlog_minutes: int = 0,
    recent_assignments: int = 0,
    channel_open: Mapping[str, int] | None = None,
) -> Agent:
    """The solver's agent from an ORM row (its ``skills`` loaded), with the shifts and busy
    time the caller read and the loads it counted (zero when not given: the booking engine
    never looks at them)."""
    return Agent(
        id=row.id,
        team=row.team_id,
        skills={s.skill_id: s.level for s in row.skills},
        capacity=row.capacity,
        shifts=tuple(shifts),
        busy=tuple(busy),
        open_tickets=open_tickets,
        backlog_minutes=backlog_minutes,
        recent_assignments=recent_assignments,
        timezone=row.timezone,
        status=row.status,
        channel_capacity=dict(row.channel_capacity or {}),
        channel_open=dict(channel_open or {}),
    )


def agent_from_request(a: SolveAgent) -> Agent:
    """The solver's agent from a posted ``/v1/solve`` agent."""
    return Agent(
        id=a.id,
        team=a.team,
        skills=a.skills,
        capacity=a.capacity,
        shifts=tuple(Interval(s.start, s.end) for s in a.shifts),
        busy=tuple(Interval(s.start, s.end) for s in a.busy),
        open_tickets=a.open_tickets,
        backlog_minutes=a.backlog_minutes,
        recent_assignments=a.recent_assignments,
        timezone=a.timezone,
        status=a.status,
        channel_capacity=a.channel_capacity,
        channel_open=a.channel_open,
    )


class Named(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def name(self) -> str: ...


class NamedSkill(Named, Protocol):
    @property
    def kind(self) -> SkillKind: ...


def skill(source: NamedSkill) -> Skill:
    """The solver's skill from a skill row or a posted skill (the same field names)."""
    return Skill(id=source.id, name=source.name, kind=source.kind)


def team(source: Named, scope: TeamScope | None = None) -> Team:
    """The solver's team from a team row or a posted team, with the scope it works under (the
    team's own, else the tenant's policy; None: open to every agent, as a posted team is)."""
    return Team(id=source.id, name=source.name, scope=scope)


def capability_from_row(row: CapabilityRow) -> Capability:
    """The booking engine's capability from a row (its ``requirements`` loaded)."""
    return capability_from_columns(row, {r.skill_id: r.level for r in row.requirements})


def capability_from_columns(row: Any, requirements: Mapping[str, int]) -> Capability:
    """The booking engine's capability from a row's columns (an ORM row or a Core row with
    the same names) and its requirements (skill -> minimum level)."""
    return Capability(
        id=row.id,
        name=row.name,
        requirements=dict(requirements),
        call_minutes=row.call_minutes,
        horizon=timedelta(days=row.horizon_days),
        min_notice=timedelta(minutes=row.min_notice_minutes),
        buffer_minutes=row.buffer_minutes,
        granularity_minutes=row.granularity_minutes,
        reserve=row.reserve_share,
    )


class CallColumns(Protocol):
    """A booked call's columns, as an ORM row and a plain Core row both carry them."""

    @property
    def id(self) -> str: ...
    @property
    def capability_id(self) -> str: ...
    @property
    def start_at(self) -> datetime: ...
    @property
    def end_at(self) -> datetime: ...
    @property
    def ticket_id(self) -> str: ...
    @property
    def bound_agent(self) -> str | None: ...


def call(columns: CallColumns, owner_agent: str | None) -> SolverCall:
    """The booking engine's call from a stored call, with its ticket's owner (preferred by
    just-in-time binding)."""
    return SolverCall(
        id=columns.id,
        capability_id=columns.capability_id,
        start=columns.start_at,
        end=columns.end_at,
        ticket_id=columns.ticket_id,
        owner_agent=owner_agent,
        bound_agent=columns.bound_agent,
    )


def problem_from_request(request: SolveRequest) -> Problem:
    """The solver's problem from a posted ``/v1/solve`` body, or :class:`InvalidInput` naming
    the field in the request (``agents[3].team``) that the solver's own validation refused."""
    try:
        agents = []
        for i, a in enumerate(request.agents):
            try:
                agents.append(agent_from_request(a))
            except ProblemError as exc:
                raise exc.at(f"agents[{i}]") from None
        tickets = []
        for i, t in enumerate(request.tickets):
            try:
                tickets.append(ticket_from_request(t))
            except ProblemError as exc:
                raise exc.at(f"tickets[{i}]") from None
        return Problem(
            now=request.now,
            agents=tuple(agents),
            tickets=tuple(tickets),
            skills=tuple(skill(s) for s in request.skills),
            teams=tuple(team(t) for t in request.teams),
            horizon_end=request.horizon_end,
        )
    except ProblemError as exc:
        raise InvalidInput([FieldError(exc.field, exc.reason)]) from None


# --------------------------------------------------------------------------- outward


def utc_text(moment: datetime | None) -> str | None:
    """An aware datetime as the API writes a ``Timestamp``: ISO 8601 in UTC, ending in Z."""
    if moment is None:
        return None
    return _iso(moment.astimezone(UTC))


def _iso(moment: datetime) -> str:
    text = moment.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def reasons_json(reasons: Iterable[Reason]) -> list[JSON]:
    """Reasons with their share of the score (a cost: lower is better). The shape is written
    here, in one comprehension: a decision's document holds a few dozen reasons, and a call
    per reason is a visible share of the assignment document's cost (figures:
    benchmarks/README.md, Figures behind design choices)."""
    return [{"rule": r.rule, "detail": r.detail, "value": float(r.value)} for r in reasons]


def reason_json(reason: Reason) -> JSON:
    return reasons_json((reason,))[0]


def reasons_brief(reasons: Iterable[Reason]) -> list[JSON]:
    """Reasons without their value: what webhooks and the booking endpoints show (a booking's
    reasons explain, they carry no score)."""
    return [{"rule": r.rule, "detail": r.detail} for r in reasons]


def reason_brief(reason: Reason) -> JSON:
    return reasons_brief((reason,))[0]


@dataclass(frozen=True, slots=True)
class Owner:
    """Who is accountable for a ticket: its agent, else its team's queue."""

    kind: Literal["agent", "team"]
    id: str

    def as_json(self) -> JSON:
        return {"kind": self.kind, "id": self.id}


class OwnerColumns(Protocol):
    @property
    def owner_agent_id(self) -> str | None: ...
    @property
    def team_id(self) -> str: ...


def owner_of(row: OwnerColumns) -> Owner:
    """The ticket's accountable owner: the agent holding it, else its team."""
    if row.owner_agent_id:
        return Owner("agent", row.owner_agent_id)
    return Owner("team", row.team_id)


def decision_json(
    decision: Decision, *, previous: Owner, changed: bool, event: str | None, dry_run: bool
) -> JSON:
    """A real-time decision as the assignment endpoints answer it (``AssignmentOut``): the
    owner now and before, the reasons, the runners-up and the expected start and end."""
    agent = decision.agent_id
    return {
        "ticket": decision.ticket_id,
        "owner": {"kind": "agent", "id": agent}
        if agent is not None
        else {"kind": "team", "id": decision.team_id},
        "agent": agent,
        "team": decision.team_id,
        "previous_owner": previous.as_json(),
        "changed": changed,
        "event": event,
        "score": None if decision.score is None else float(decision.score),
        "reasons": reasons_json(decision.reasons),
        "alternatives": [
            {"agent": a.agent_id, "score": float(a.score), "reasons": reasons_json(a.reasons)}
            for a in decision.alternatives
        ],
        "expected_start": utc_text(decision.expected_start),
        "expected_end": utc_text(decision.expected_end),
        "dry_run": dry_run,
    }


def stats_json(stats: SolveStats) -> JSON:
    """How a solve went: policy, status, objective and its parts, bound, gap, time, notes."""
    return {
        "policy": stats.policy,
        "status": stats.status.value,
        "wall_seconds": stats.wall_seconds,
        "objective": stats.objective,
        "bound": stats.bound,
        "gap": stats.gap,
        "parts": stats.parts.as_dict() if stats.parts is not None else None,
        "seed": stats.seed,
        "phases": dict(stats.phases),
        "notes": list(stats.notes),
    }


def evaluation_json(ev: Evaluation) -> JSON:
    """A plan scored by the solver-agnostic evaluator."""
    return {
        "objective": ev.objective,
        "breaches": ev.breaches,
        "first_response_breaches": ev.fr_breaches,
        "resolution_breaches": ev.res_breaches,
        "unassigned": ev.unassigned,
        "churn": ev.churn,
        "weighted_lateness_minutes": ev.weighted_lateness_minutes,
    }


def violation_json(v: Violation) -> JSON:
    return {"rule": v.rule, "detail": v.detail, "ticket_id": v.ticket_id, "agent_id": v.agent_id}


def plan_json(plan: Plan, *, evaluation: Evaluation, violations: Iterable[Violation]) -> JSON:
    """A plan with every reason, its stats, its evaluation and its hard-rule check (the
    ``/v1/solve`` answer, ``SolveResponse``)."""
    return {
        "assignments": [
            {
                "ticket_id": a.ticket_id,
                "agent_id": a.agent_id,
                "position": a.position,
                "start": utc_text(a.start),
                "end": utc_text(a.end),
                "reasons": reasons_json(a.reasons),
            }
            for a in plan.assignments
        ],
        "queued": [
            {"ticket_id": q.ticket_id, "team_id": q.team_id, "reasons": reasons_json(q.reasons)}
            for q in plan.queued
        ],
        "stats": stats_json(plan.stats),
        "evaluation": evaluation_json(evaluation),
        "violations": [violation_json(v) for v in violations],
    }


def slot_json(slot: Slot) -> JSON:
    """An open start, in the customer's time zone (with its offset); it names nobody."""
    return {"start": _iso(slot.start), "end": _iso(slot.end)}


def binding_json(b: Binding) -> JSON:
    return {
        "booking_id": b.call_id,
        "agent": b.agent_id,
        "previous_agent": b.previous_agent,
        "reasons": reasons_brief(b.reasons),
    }


def at_risk_json(r: AtRisk) -> JSON:
    return {
        "booking_id": r.call_id,
        "previous_agent": r.previous_agent,
        "reason": reason_brief(r.reason),
    }


def _durations_json(d: Durations) -> JSON:
    return {"count": d.count, "p50": d.p50, "p90": d.p90, "mean": d.mean}


def _compliance_json(c: Compliance) -> JSON:
    return {"met": c.met, "breached": c.breached, "compliance": c.rate}


def _kpi_figures_json(r: Report) -> JSON:
    return {
        "start": utc_text(r.start),
        "end": utc_text(r.end),
        "tickets_created": r.created,
        "tickets_resolved": r.resolved,
        "first_response_minutes": _durations_json(r.first_response),
        "resolution_minutes": _durations_json(r.resolution),
        "backlog": r.backlog,
        "open_unassigned": r.open_unassigned,
        "sla": {
            "first_response": _compliance_json(r.sla_first_response),
            "resolution": _compliance_json(r.sla_resolution),
            "overall": _compliance_json(r.sla_overall),
        },
        "assignments": r.assignments,
        "reassignments": r.reassignments,
        "escalations": r.escalations,
        "reopens": r.reopens,
        "calls_booked": r.calls_booked,
        "calls_at_risk": r.calls_at_risk,
        "waiting_on_call": _durations_json(r.waiting_on_call),
        "link_lead_time_minutes": _durations_json(r.link_lead_time),
        "call_reassignments": r.call_reassignments,
        "admission_wait_minutes": _durations_json(r.admission_wait),
        "no_shows": r.no_shows,
    }


def kpis_json(r: Report) -> JSON:
    """A KPI report under the field names of ``KpiOut`` (``start``/``end``, answered as
    ``from``/``to``); each trend bucket also says where it starts in the report's zone."""
    zone = ZoneInfo(r.timezone)
    return {
        "team": r.team,
        "timezone": r.timezone,
        "interval": r.interval,
        **_kpi_figures_json(r),
        "trend": [
            {**_kpi_figures_json(b), "local_start": _iso(b.start.astimezone(zone))} for b in r.trend
        ],
    }
