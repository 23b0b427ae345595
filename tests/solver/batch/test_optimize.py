"""The batch optimizer end to end: hard rules, objective parts, reasons, never worse, repeatable.

Each rule gets a case where it is satisfied and one where it forces a penalty or the team queue.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from solver.batch import BatchParams, optimize
from solver.plan import Plan, SolveStatus
from solver.problem import Agent, AgentStatus, Interval, Problem, Skill, Team, Ticket
from solver.validation import check_plan, evaluate
from tests.solver.batch.test_factories import NOW, random_problem

QUICK = BatchParams(time_limit_s=1.0, neighbourhood_time_s=0.5, neighbourhood_dtime=0.1)
DAY = Interval(NOW, NOW + timedelta(hours=8))


def agent(aid: str, skills: dict[str, int], **kw: object) -> Agent:
    kw.setdefault("shifts", (DAY,))
    kw.setdefault("capacity", 5)
    return Agent(aid, "support", skills=skills, **kw)  # type: ignore[arg-type]


def ticket(tid: str, skills: dict[str, int], **kw: object) -> Ticket:
    kw.setdefault("created_at", NOW - timedelta(hours=1))
    return Ticket(tid, "support", required_skills=skills, **kw)  # type: ignore[arg-type]


def problem(agents: list[Agent], tickets: list[Ticket]) -> Problem:
    return Problem(
        now=NOW,
        agents=tuple(agents),
        tickets=tuple(tickets),
        skills=(Skill("billing"), Skill("de"), Skill("network")),
        teams=(Team("support"),),
        horizon_end=NOW + timedelta(days=1),
    )


def solve(p: Problem, params: BatchParams = QUICK) -> Plan:
    plan = optimize(p, params)
    assert check_plan(p, plan) == []
    assert plan.stats.objective == evaluate(p, plan, params.weights).objective
    return plan


def where(plan: Plan) -> dict[str, str]:
    out = {a.ticket_id: a.agent_id for a in plan.assignments}
    out.update({q.ticket_id: f"queue:{q.team_id}" for q in plan.queued})
    return out


# -- hard rules --------------------------------------------------------------------------------


def test_qualified_agent_gets_the_ticket() -> None:
    p = problem(
        [agent("ann", {"billing": 4}), agent("bob", {"network": 5})], [ticket("t1", {"billing": 3})]
    )
    assert where(solve(p)) == {"t1": "ann"}


def test_unqualified_agents_never_take_a_ticket() -> None:
    p = problem(
        [agent("ann", {"billing": 2}), agent("bob", {"network": 5})], [ticket("t1", {"billing": 3})]
    )
    plan = solve(p)
    assert where(plan) == {"t1": "queue:support"}
    (queued,) = plan.queued
    assert queued.reasons[0].rule == "queue"
    assert "no agent has the required skills" in queued.reasons[0].detail


def test_capacity_limits_new_work() -> None:
    p = problem(
        [agent("ann", {"billing": 3}, capacity=3, open_tickets=2)],
        [ticket(f"t{i}", {"billing": 1}, effort_minutes=10) for i in range(3)],
    )
    plan = solve(p)
    assert len(plan.assignments) == 1 and len(plan.queued) == 2


def test_working_minutes_limit_new_work() -> None:
    short = Interval(NOW, NOW + timedelta(minutes=60))
    p = problem(
        [agent("ann", {"billing": 3}, shifts=(short,), capacity=10)],
        [ticket(f"t{i}", {"billing": 1}, effort_minutes=40) for i in range(3)],
    )
    plan = solve(p)
    assert len(plan.assignments) == 1
    assert {r.rule for q in plan.queued for r in q.reasons} == {"queue"}


def test_away_agents_and_agents_without_shifts_take_nothing() -> None:
    p = problem(
        [
            agent("ann", {"billing": 5}, status=AgentStatus.AWAY),
            agent("bob", {"billing": 5}, shifts=()),
        ],
        [ticket("t1", {"billing": 1})],
    )
    plan = solve(p)
    assert where(plan) == {"t1": "queue:support"}
    assert "no qualified agent with working time/capacity" in plan.queued[0].reasons[0].detail


def test_every_ticket_is_assigned_or_queued_to_its_team_on_random_queues() -> None:
    for seed in range(3):
        p = random_problem(seed, n_agents=8, n_tickets=40, tight=True)
        plan = solve(p)
        assert len(plan.assignments) + len(plan.queued) == len(p.tickets)
        for q in plan.queued:
            assert q.team_id == p.ticket(q.ticket_id).team and q.reasons


# -- objective parts ---------------------------------------------------------------------------


def test_churn_keeps_an_owned_ticket_with_its_owner() -> None:
    p = problem(
        [agent("ann", {"billing": 3}), agent("bob", {"billing": 3})],
        [ticket("t1", {"billing": 3}, owner_agent="bob")],
    )
    plan = solve(p)
    assert where(plan) == {"t1": "bob"}
    assert plan.stats.parts is not None and plan.stats.parts.churn == 0
    assert any(r.rule == "churn" and "stays" in r.detail for r in plan.assignments[0].reasons)


def test_churn_is_paid_when_the_owner_cannot_keep_it() -> None:
    p = problem(
        [agent("ann", {"billing": 3}), agent("bob", {"billing": 3}, status=AgentStatus.OFFLINE)],
        [ticket("t1", {"billing": 3}, owner_agent="bob")],
    )
    plan = solve(p)
    assert where(plan) == {"t1": "ann"}
    assert plan.stats.parts is not None and plan.stats.parts.churn == QUICK.weights.churn
    assert any(r.rule == "churn" and "moved from" in r.detail for r in plan.assignments[0].reasons)


def test_continuity_prefers_the_previous_agent() -> None:
    p = problem(
        [agent("ann", {"billing": 3}), agent("bob", {"billing": 3})],
        [ticket("t1", {"billing": 3}, previous_agent="bob")],
    )
    plan = solve(p)
    assert where(plan) == {"t1": "bob"}
    assert plan.stats.parts is not None and plan.stats.parts.discontinuity == 0


def test_discontinuity_is_paid_when_the_previous_agent_is_unqualified() -> None:
    p = problem(
        [agent("ann", {"billing": 3}), agent("bob", {"network": 3})],
        [ticket("t1", {"billing": 3}, previous_agent="bob")],
    )
    plan = solve(p)
    assert where(plan) == {"t1": "ann"}
    assert plan.stats.parts is not None
    assert plan.stats.parts.discontinuity == QUICK.weights.discontinuity


def test_an_expert_is_not_wasted_on_an_easy_ticket() -> None:
    p = problem(
        [agent("ann", {"billing": 5}), agent("bob", {"billing": 2})],
        [ticket("t1", {"billing": 2})],
    )
    plan = solve(p)
    assert where(plan) == {"t1": "bob"}
    assert plan.stats.parts is not None and plan.stats.parts.expertise_waste == 0


def test_load_is_spread_between_equal_agents() -> None:
    p = problem(
        [agent("ann", {"billing": 3}), agent("bob", {"billing": 3})],
        [ticket(f"t{i}", {"billing": 1}, effort_minutes=10) for i in range(4)],
    )
    plan = solve(p)
    assert sorted(len(v) for v in plan.by_agent().values()) == [2, 2]


def test_urgent_work_goes_first_and_meets_its_deadline() -> None:
    p = problem(
        [agent("ann", {"billing": 3})],
        [
            ticket("low", {"billing": 1}, priority=1, effort_minutes=60,
                   resolution_due=NOW + timedelta(hours=7)),
            ticket("urgent", {"billing": 1}, priority=4, effort_minutes=30,
                   resolution_due=NOW + timedelta(minutes=40)),
        ],
    )  # fmt: skip
    plan = solve(p)
    order = [a.ticket_id for a in plan.by_agent()["ann"]]
    assert order == ["urgent", "low"]
    ev = evaluate(p, plan)
    assert ev.breaches == 0
    sla = next(r for r in plan.by_ticket()["urgent"].reasons if r.rule == "sla")
    assert "on time" in sla.detail


def test_a_breach_that_cannot_be_avoided_is_reported() -> None:
    p = problem(
        [agent("ann", {"billing": 3})],
        [
            ticket(
                "t1", {"billing": 1}, effort_minutes=90, resolution_due=NOW + timedelta(minutes=30)
            )
        ],
    )
    plan = solve(p)
    ev = evaluate(p, plan)
    assert ev.res_breaches == 1
    sla = next(r for r in plan.assignments[0].reasons if r.rule == "sla")
    assert "late by 60 min" in sla.detail and sla.value > 0


def test_work_is_scheduled_across_a_break() -> None:
    morning = Interval(NOW, NOW + timedelta(minutes=30))
    afternoon = Interval(NOW + timedelta(hours=2), NOW + timedelta(hours=4))
    p = problem(
        [agent("ann", {"billing": 3}, shifts=(morning, afternoon))],
        [ticket("t1", {"billing": 1}, effort_minutes=45)],
    )
    plan = solve(p)
    a = plan.assignments[0]
    assert a.start == NOW and a.end == NOW + timedelta(hours=2, minutes=15)


# -- stats, bound, status ----------------------------------------------------------------------


def test_a_trivially_optimal_queue_is_reported_optimal() -> None:
    p = problem([agent("ann", {"billing": 3})], [ticket("t1", {"billing": 3})])
    plan = solve(p)
    assert plan.stats.status is SolveStatus.OPTIMAL
    assert plan.stats.bound == plan.stats.objective and plan.stats.gap == 0.0
    assert plan.stats.policy == "optimizer"
    assert {"build", "flow", "seed", "lns"} <= set(plan.stats.phases)


def test_stats_carry_the_bound_parts_seed_and_params() -> None:
    p = random_problem(2, n_agents=8, n_tickets=40, tight=True)
    plan = solve(p, BatchParams(time_limit_s=1.0, seed=7))
    s = plan.stats
    assert s.status in (SolveStatus.OPTIMAL, SolveStatus.FEASIBLE)
    assert s.bound is not None and s.objective is not None and s.bound <= s.objective
    assert s.parts is not None and s.parts.total == s.objective
    assert s.seed == 7 and s.params["seed"] == 7
    assert s.phases["seed_objective"] >= s.objective


def test_use_sequencing_false_returns_the_list_scheduling_seed() -> None:
    p = random_problem(3, n_agents=8, n_tickets=40, tight=True)
    seed_plan = solve(p, BatchParams(use_sequencing=False))
    assert seed_plan.stats.policy == "optimizer-seed"
    assert "lns" not in seed_plan.stats.phases
    assert seed_plan.stats.objective == seed_plan.stats.phases["seed_objective"]


# -- never worse than the seed, repeatable -----------------------------------------------------


@settings(max_examples=6)
@given(st.integers(0, 10_000), st.booleans())
def test_never_worse_than_the_list_scheduling_seed(seed: int, tight: bool) -> None:
    p = random_problem(seed, n_agents=6, n_tickets=30, tight=tight)
    seed_plan = solve(p, BatchParams(use_sequencing=False))
    plan = solve(p, BatchParams(time_limit_s=0.6, neighbourhood_dtime=0.05, seed=seed))
    assert plan.stats.objective is not None and seed_plan.stats.objective is not None
    assert plan.stats.objective <= seed_plan.stats.objective


def test_same_seed_same_plan() -> None:
    p = random_problem(5, n_agents=8, n_tickets=40, tight=True)
    params = BatchParams(
        time_limit_s=30.0, seed=3, max_neighbourhoods=3, neighbourhood_dtime=0.05,
        neighbourhood_time_s=10.0,
    )  # fmt: skip
    a, b = solve(p, params), solve(p, params)
    key = lambda plan: sorted((x.ticket_id, x.agent_id, x.position) for x in plan.assignments)  # noqa: E731
    assert key(a) == key(b)
    assert a.stats.objective == b.stats.objective


def test_params_are_validated() -> None:
    with pytest.raises(ValueError, match="time_limit_s"):
        BatchParams(time_limit_s=0)
    with pytest.raises(ValueError, match="workers"):
        BatchParams(workers=0)


def test_every_decision_carries_readable_reasons() -> None:
    p = random_problem(9, n_agents=8, n_tickets=40, tight=True)
    plan = solve(p)
    for a in plan.assignments:
        rules = {r.rule for r in a.reasons}
        assert {"skills", "sla", "load", "order"} <= rules
        order = next(r for r in a.reasons if r.rule == "order")
        assert "EDF demand bound" in order.detail
        assert all(r.detail for r in a.reasons)
    for q in plan.queued:
        assert q.reasons and q.reasons[0].rule == "queue" and q.reasons[0].value > 0


def test_dense_queues_solved_on_a_core_keep_the_exact_bound() -> None:
    p = random_problem(6, n_agents=12, n_tickets=40, n_skills=2)
    cored = solve(p, BatchParams(time_limit_s=1.0, max_pairs=100, use_sequencing=False))
    whole = solve(p, BatchParams(time_limit_s=1.0, max_pairs=0, use_sequencing=False))
    assert any("proven optimal" in n for n in cored.stats.notes)
    assert cored.stats.bound == whole.stats.bound
    assert cored.stats.bound is not None and cored.stats.objective is not None
    assert cored.stats.bound <= cored.stats.objective
