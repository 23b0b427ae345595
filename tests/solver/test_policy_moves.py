"""The churn guard's knobs through the policies' interface: ``PolicyParams.max_moves`` and
``move_saving`` are validated naming the field and reach the optimizer's ``BatchParams``.

A *counted* move is an owned ticket its owner could keep (:func:`solver.batch.moves.keep_set`)
that ends with someone else or the queue; a ticket its owner cannot hold (away, unqualified,
full) is *forced* and moves whatever the budget.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from solver.batch.data import build
from solver.batch.moves import keep_set
from solver.errors import ProblemError
from solver.plan import Plan
from solver.policies import MAX_MOVE_SAVING, POLICIES, PolicyParams, optimizer
from solver.problem import Agent, AgentStatus, Interval, Priority, Problem, Skill, Team, Ticket
from solver.validation import check_plan
from tests.solver.batch.test_churn import owned_problem
from tests.solver.batch.test_factories import NOW

DAY = Interval(NOW, NOW + timedelta(hours=8))


def where(plan: Plan) -> dict[str, str | None]:
    """Each ticket's agent in the plan (None: the team queue)."""
    out: dict[str, str | None] = {q.ticket_id: None for q in plan.queued}
    out.update({a.ticket_id: a.agent_id for a in plan.assignments})
    return out


def moves(p: Problem, plan: Plan) -> tuple[set[str], set[str]]:
    """The counted moves and the forced ones of ``plan`` (ticket ids)."""
    data = build(p, PolicyParams().weights)
    keep, forced = keep_set(data)
    at = where(plan)
    counted = {
        p.tickets[t].id for t in keep.tolist() if at[p.tickets[t].id] != p.tickets[t].owner_agent
    }
    return counted, {p.tickets[t].id for t in forced.tolist()}


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"max_moves": -1}, "max_moves"),
        ({"max_moves": 1_000_001}, "max_moves"),
        ({"max_moves": 2.0}, "max_moves"),
        ({"max_moves": True}, "max_moves"),
        ({"max_moves": "3"}, "max_moves"),
        ({"move_saving": 0}, "move_saving"),
        ({"move_saving": -5}, "move_saving"),
        ({"move_saving": MAX_MOVE_SAVING + 1}, "move_saving"),
        ({"move_saving": 1.5}, "move_saving"),
    ],
)
def test_bad_churn_knobs_are_refused_naming_the_field(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(ProblemError) as exc:
        PolicyParams(**kwargs)
    assert exc.value.field == field


def test_good_churn_knobs_are_kept() -> None:
    assert PolicyParams().max_moves is None and PolicyParams().move_saving is None
    edge = PolicyParams(max_moves=0, move_saving=1)
    assert (edge.max_moves, edge.move_saving) == (0, 1)
    top = PolicyParams(max_moves=1_000_000, move_saving=MAX_MOVE_SAVING)
    assert (top.max_moves, top.move_saving) == (1_000_000, MAX_MOVE_SAVING)


def test_the_optimizer_policy_reports_the_budget_it_was_given() -> None:
    p = owned_problem(1)
    plan = POLICIES["optimizer"](p, PolicyParams(time_limit_s=0.5, max_moves=2, move_saving=7))
    note = next(n for n in plan.stats.notes if n.startswith("churn guard"))
    assert "budget 2 move(s)" in note and "saving at least 7 of SLA cost" in note


def test_without_a_budget_moves_happen_and_a_budget_of_one_keeps_one() -> None:
    # The same tight queues: with every saving kept (move_saving=1) and no budget, owned
    # tickets change hands; a budget of 1 keeps at most one of those moves.
    free_total = 0
    for seed in range(3):
        p = owned_problem(seed, share_owned=0.9)
        free = optimizer(p, PolicyParams(time_limit_s=0.5, seed=seed, move_saving=1))
        free_moves, _ = moves(p, free)
        free_total += len(free_moves)
        one = optimizer(p, PolicyParams(time_limit_s=0.5, seed=seed, move_saving=1, max_moves=1))
        assert check_plan(p, one) == []
        assert len(moves(p, one)[0]) <= 1
    assert free_total > 3  # the budget had moves to hold back


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 10_000), budget=st.integers(0, 3), saving=st.none() | st.just(1))
def test_a_budget_of_k_moves_at_most_k_owned_tickets(
    seed: int, budget: int, saving: int | None
) -> None:
    p = owned_problem(seed, share_owned=0.8)
    params = PolicyParams(time_limit_s=0.4, seed=seed, max_moves=budget, move_saving=saving)
    plan = optimizer(p, params)
    assert check_plan(p, plan) == []
    counted, forced = moves(p, plan)
    assert len(counted) <= budget
    at = where(plan)
    owned = {t.id: t.owner_agent for t in p.tickets if t.owner_agent is not None}
    changed = {t for t, o in owned.items() if at[t] != o}
    assert changed <= counted | forced  # every other owned ticket stays with its owner


def test_budget_zero_moves_only_the_tickets_their_owner_cannot_hold() -> None:
    # ann owns three tickets she is qualified for and is buried in backlog, so urgent work
    # would breach with her; bob is away and owns one; cid owns one she lacks the skill for.
    ann = Agent(
        "ann", "support", skills={"billing": 3}, capacity=9, shifts=(DAY,), backlog_minutes=360
    )
    bob = Agent(
        "bob",
        "support",
        skills={"billing": 3},
        capacity=9,
        shifts=(DAY,),
        status=AgentStatus.AWAY,
    )
    cid = Agent("cid", "support", skills={"billing": 1}, capacity=9, shifts=(DAY,))
    dan = Agent("dan", "support", skills={"billing": 3}, capacity=9, shifts=(DAY,))

    def urgent(tid: str, owner: str) -> Ticket:
        return Ticket(
            tid,
            "support",
            required_skills={"billing": 3},
            created_at=NOW - timedelta(hours=1),
            resolution_due=NOW + timedelta(hours=2),
            effort_minutes=30,
            priority=Priority.URGENT,
            owner_agent=owner,
        )

    tickets = (urgent("a1", "ann"), urgent("a2", "ann"), urgent("b1", "bob"), urgent("c1", "cid"))
    p = Problem(
        now=NOW,
        agents=(ann, bob, cid, dan),
        tickets=tickets,
        skills=(Skill("billing"),),
        teams=(Team("support"),),
        horizon_end=NOW + timedelta(days=1),
    )
    free = optimizer(p, PolicyParams(time_limit_s=0.5))
    at = where(free)
    assert at["a1"] != "ann" or at["a2"] != "ann"  # unbudgeted, ann's urgent work moves
    plan = optimizer(p, PolicyParams(time_limit_s=0.5, max_moves=0))
    assert check_plan(p, plan) == []
    at = where(plan)
    assert at["a1"] == at["a2"] == "ann"
    assert at["b1"] != "bob" and at["c1"] != "cid"  # forced: their owner cannot hold them
    for tid in ("b1", "c1"):
        reasons = next(a.reasons for a in plan.assignments if a.ticket_id == tid)
        churn = next(r for r in reasons if r.rule == "churn")
        assert "cannot hold it" in churn.detail, churn
