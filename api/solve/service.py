"""Stateless solving: run a policy on a problem, check the plan against the hard rules and
evaluate it. Nothing touches the database.

Two steps, so the heavy one can run elsewhere: :func:`check_limits` (cheap, in the request) and
:func:`solve` (the policy, the check, the evaluation), which the route runs in the bounded
solve pool (``api/solve/pool.py``) together with the mapping of the posted problem
(:func:`api.mapping.problem_from_request`) and of the plan
(:func:`api.mapping.plan_json`). Both take and return plain data: the pool is a
separate process by default.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from api import mapping
from api.errors import FieldError, InvalidInput
from api.settings import Settings
from api.solve.schemas import SolveRequest, SolveResponse
from solver.plan import Plan
from solver.policies import POLICIES, PolicyParams
from solver.problem import Problem
from solver.validation import Evaluation, Violation, check_plan, evaluate

log = logging.getLogger(__name__)


def check_limits(*, agents: int, tickets: int, seconds: float, settings: Settings) -> None:
    """The server's size and time limits (cheap: run before a solver slot is taken)."""
    errors = []
    if agents > settings.solve_max_agents:
        errors.append(FieldError("agents", f"at most {settings.solve_max_agents} agents"))
    if tickets > settings.solve_max_tickets:
        errors.append(FieldError("tickets", f"at most {settings.solve_max_tickets} tickets"))
    if seconds > settings.solve_max_seconds:
        errors.append(
            FieldError("time_limit_seconds", f"at most {settings.solve_max_seconds} seconds")
        )
    if errors:
        raise InvalidInput(errors)


@dataclass(frozen=True, slots=True)
class Solved:
    """A plan with its hard-rule check (empty unless the solver has a bug) and evaluation."""

    plan: Plan
    violations: tuple[Violation, ...]
    evaluation: Evaluation


def solve(*, problem: Problem, policy: str, params: PolicyParams) -> Solved:
    """Run ``policy`` on ``problem``, check the plan and evaluate it."""
    plan = POLICIES[policy](problem, params)
    violations = tuple(check_plan(problem, plan))
    if violations:
        # The service, tests and benchmarks share this validator: a violation is a solver bug.
        log.error("plan from %s violates hard rules: %s", policy, violations[:5])
    return Solved(plan, violations, evaluate(problem, plan))


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a solve in the pool hands back: the response document as JSON bytes (serialized
    there, so a big plan does not hold up the event loop), or the fields the solver's own
    validation refused. Plain data: it crosses a process boundary (InvalidInput does not pickle,
    its arguments are not its constructor's)."""

    document: bytes = b""
    errors: tuple[FieldError, ...] = ()


def solve_in_pool(*, request: SolveRequest) -> Outcome:
    """Map, solve, check, evaluate and serialize: the work the solve pool runs."""
    try:
        problem = mapping.problem_from_request(request)
    except InvalidInput as exc:
        return Outcome(errors=exc.errors)
    params = PolicyParams(
        time_limit_s=request.time_limit_seconds,
        seed=request.seed,
        max_moves=request.max_moves,
        move_saving=request.move_saving,
    )
    solved = solve(problem=problem, policy=request.policy, params=params)
    document = mapping.plan_json(
        solved.plan, evaluation=solved.evaluation, violations=solved.violations
    )
    return Outcome(document=SolveResponse.model_validate(document).model_dump_json().encode())
