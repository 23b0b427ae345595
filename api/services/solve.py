"""Stateless solving: map a posted problem onto the solver's types, run a policy, check the
plan against the hard rules, and hand everything back. Nothing touches the database.

Two steps, so the heavy one can run elsewhere: :func:`check_limits` (cheap, in the request) and
:func:`run` (mapping, the policy, the check, the evaluation, the answer serialized to JSON
bytes), which the route hands to the bounded solve pool (``api/solve_pool.py``): a separate
process by default, so what it takes and returns is plain picklable data.

Bad input the schemas cannot see (an unknown team or skill, a duplicate id) comes back from
the solver's own validation as ``ProblemError(field, reason)``; it is re-raised as
``InvalidInput`` located in the request (``agents[3].team``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass

from api.errors import FieldError, InvalidInput
from api.schemas.solve import (
    EvaluationOut,
    PlannedAssignmentOut,
    QueuedOut,
    ReasonOut,
    SolveAgent,
    SolveRequest,
    SolveResponse,
    SolveTicket,
    StatsOut,
    ViolationOut,
)
from api.settings import Settings
from solver.errors import ProblemError
from solver.plan import Plan, Reason
from solver.policies import POLICIES, PolicyParams
from solver.problem import Agent, Interval, Problem, Skill, Team, Ticket
from solver.validation import check_plan, evaluate

log = logging.getLogger(__name__)


def _agent(a: SolveAgent) -> Agent:
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
    )


def _ticket(t: SolveTicket) -> Ticket:
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
    )


def to_problem(request: SolveRequest) -> Problem:
    """The solver's problem, or InvalidInput naming the field in the request."""
    try:
        agents = []
        for i, a in enumerate(request.agents):
            try:
                agents.append(_agent(a))
            except ProblemError as exc:
                raise exc.at(f"agents[{i}]") from None
        tickets = []
        for i, t in enumerate(request.tickets):
            try:
                tickets.append(_ticket(t))
            except ProblemError as exc:
                raise exc.at(f"tickets[{i}]") from None
        return Problem(
            now=request.now,
            agents=tuple(agents),
            tickets=tuple(tickets),
            skills=tuple(Skill(id=s.id, name=s.name, kind=s.kind) for s in request.skills),
            teams=tuple(Team(id=t.id, name=t.name) for t in request.teams),
            horizon_end=request.horizon_end,
        )
    except ProblemError as exc:
        raise InvalidInput([FieldError(exc.field, exc.reason)]) from None


def _limits(request: SolveRequest, settings: Settings) -> None:
    errors = []
    if len(request.agents) > settings.solve_max_agents:
        errors.append(FieldError("agents", f"at most {settings.solve_max_agents} agents"))
    if len(request.tickets) > settings.solve_max_tickets:
        errors.append(FieldError("tickets", f"at most {settings.solve_max_tickets} tickets"))
    if request.time_limit_seconds > settings.solve_max_seconds:
        errors.append(
            FieldError("time_limit_seconds", f"at most {settings.solve_max_seconds} seconds")
        )
    if errors:
        raise InvalidInput(errors)


def _reasons(reasons: Iterable[Reason]) -> list[ReasonOut]:
    return [ReasonOut(rule=r.rule, detail=r.detail, value=float(r.value)) for r in reasons]


def check_limits(*, request: SolveRequest, settings: Settings) -> None:
    """The server's size and time limits (cheap: run before a solver slot is taken)."""
    _limits(request, settings)


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a solve in the pool hands back: the response document as JSON bytes (serialized
    there, so a big plan does not hold up the event loop), or the fields the solver's own
    validation refused. Plain data: it crosses a process boundary (InvalidInput does not pickle,
    its arguments are not its constructor's)."""

    document: bytes = b""
    errors: tuple[FieldError, ...] = ()


def run(*, request: SolveRequest) -> Outcome:
    """Map, solve, check and evaluate: the work the solve pool runs."""
    try:
        problem = to_problem(request)
    except InvalidInput as exc:
        return Outcome(errors=exc.errors)
    params = PolicyParams(time_limit_s=request.time_limit_seconds, seed=request.seed)
    response = respond(problem=problem, policy=request.policy, params=params)
    return Outcome(document=response.model_dump_json().encode())


def respond(*, problem: Problem, policy: str, params: PolicyParams) -> SolveResponse:
    plan: Plan = POLICIES[policy](problem, params)
    violations = check_plan(problem, plan)
    if violations:
        # The service, tests and benchmarks share this validator: a violation is a solver bug.
        log.error("plan from %s violates hard rules: %s", policy, violations[:5])
    ev = evaluate(problem, plan)
    stats = plan.stats
    return SolveResponse(
        assignments=[
            PlannedAssignmentOut(
                ticket_id=a.ticket_id,
                agent_id=a.agent_id,
                position=a.position,
                start=a.start,
                end=a.end,
                reasons=_reasons(a.reasons),
            )
            for a in plan.assignments
        ],
        queued=[
            QueuedOut(ticket_id=q.ticket_id, team_id=q.team_id, reasons=_reasons(q.reasons))
            for q in plan.queued
        ],
        stats=StatsOut(
            policy=stats.policy,
            status=str(stats.status),
            wall_seconds=stats.wall_seconds,
            objective=stats.objective,
            bound=stats.bound,
            gap=stats.gap,
            parts=stats.parts.as_dict() if stats.parts is not None else None,
            seed=stats.seed,
            phases=dict(stats.phases),
            notes=list(stats.notes),
        ),
        evaluation=EvaluationOut(
            objective=ev.objective,
            breaches=ev.breaches,
            first_response_breaches=ev.fr_breaches,
            resolution_breaches=ev.res_breaches,
            unassigned=ev.unassigned,
            churn=ev.churn,
            weighted_lateness_minutes=ev.weighted_lateness_minutes,
        ),
        violations=[
            ViolationOut(rule=v.rule, detail=v.detail, ticket_id=v.ticket_id, agent_id=v.agent_id)
            for v in violations
        ],
    )
