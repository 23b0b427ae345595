"""Properties that hold for every generated instance and every policy.

- no assignment violates a hard rule (check_plan is empty);
- every ticket ends assigned or owned by its team's queue (part of check_plan's "complete");
- the same input and seed give the same plan.
"""

from __future__ import annotations

from hypothesis import given, settings

from solver.plan import Plan
from solver.policies import POLICIES, PolicyParams
from solver.problem import Problem
from solver.validation import check_plan, evaluate
from tests.strategies import problems

FAST = PolicyParams(time_limit_s=0.5, seed=3)


def _signature(plan: Plan) -> tuple[object, ...]:
    return (
        tuple(sorted((a.ticket_id, a.agent_id, a.position) for a in plan.assignments)),
        tuple(sorted(q.ticket_id for q in plan.queued)),
    )


@settings(max_examples=25)
@given(problems())
def test_every_policy_respects_the_hard_rules(problem: Problem) -> None:
    for name, policy in POLICIES.items():
        plan = policy(problem, FAST)
        violations = check_plan(problem, plan)
        assert violations == [], f"{name}: {violations}"
        assert plan.stats.objective == evaluate(problem, plan).objective, name


@settings(max_examples=10)
@given(problems())
def test_same_seed_same_plan(problem: Problem) -> None:
    for name, policy in POLICIES.items():
        assert _signature(policy(problem, FAST)) == _signature(policy(problem, FAST)), name


@settings(max_examples=25)
@given(problems())
def test_a_ticket_nobody_can_take_is_queued_with_its_team(problem: Problem) -> None:
    for name, policy in POLICIES.items():
        plan = policy(problem, FAST)
        for q in plan.queued:
            assert q.team_id == problem.ticket(q.ticket_id).team, name
            assert q.reasons, f"{name}: {q.ticket_id} queued without a reason"
