"""check_plan names each broken hard rule; evaluate recomputes every objective part by hand."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from solver.objective import ObjectiveWeights
from solver.plan import Assignment, Plan, SolveStats, SolveStatus, TeamQueued
from solver.problem import Agent, AgentStatus, Interval, Priority, Problem, Ticket
from solver.schedule import finalize_plan
from solver.validation import check_plan, evaluate

NOW = datetime(2026, 5, 4, 8, 0, tzinfo=UTC)
SHIFT = Interval(NOW, NOW + timedelta(hours=8))
STATS = SolveStats(policy="hand", status=SolveStatus.FEASIBLE, wall_seconds=0.0)


def org(**agent_kw: object) -> Problem:
    kw: dict[str, object] = {
        "skills": {"net": 3, "lang:de": 5},
        "capacity": 2,
        "shifts": (SHIFT,),
    }
    kw.update(agent_kw)
    a1 = Agent("a1", "net", **kw)  # type: ignore[arg-type]
    a2 = Agent("a2", "net", skills={"net": 5}, capacity=1, shifts=(SHIFT,), open_tickets=1)
    t1 = Ticket(
        "t1",
        "net",
        NOW,
        required_skills={"net": 2},
        priority=Priority.HIGH,
        first_response_due=NOW + timedelta(minutes=30),
        resolution_due=NOW + timedelta(minutes=60),
        effort_minutes=90,
        owner_agent="a2",
        previous_agent="a2",
    )
    t2 = Ticket("t2", "net", NOW, required_skills={"lang:de": 4}, effort_minutes=30)
    return Problem(now=NOW, agents=(a1, a2), tickets=(t1, t2))


def plan(*assignments: Assignment, queued: tuple[TeamQueued, ...] = ()) -> Plan:
    return Plan(tuple(assignments), queued, STATS)


def rules(problem: Problem, p: Plan) -> set[str]:
    return {v.rule for v in check_plan(problem, p)}


def test_a_valid_plan_has_no_violations() -> None:
    p = org()
    assert check_plan(p, plan(Assignment("t1", "a1", 0), Assignment("t2", "a1", 1))) == []


def test_every_ticket_exactly_once() -> None:
    p = org()
    assert "complete" in rules(p, plan(Assignment("t1", "a1", 0)))
    twice = plan(
        Assignment("t1", "a1", 0), queued=(TeamQueued("t1", "net"), TeamQueued("t2", "net"))
    )
    assert "complete" in rules(p, twice)


def test_queued_to_the_tickets_own_team() -> None:
    p = org()
    bad = plan(Assignment("t1", "a1", 0), queued=(TeamQueued("t2", "billing"),))
    assert rules(p, bad) == {"team_queue"}


def test_unqualified_agent() -> None:
    p = org()
    assert rules(p, plan(Assignment("t1", "a1", 0), Assignment("t2", "a2", 0))) >= {"qualified"}


def test_capacity_counts_open_tickets() -> None:
    p = org(capacity=1)
    assert "capacity" in rules(p, plan(Assignment("t1", "a1", 0), Assignment("t2", "a1", 1)))


def test_away_agent_gets_nothing() -> None:
    p = org(status=AgentStatus.AWAY)
    assert "available" in rules(p, plan(Assignment("t1", "a1", 0), Assignment("t2", "a1", 1)))


def test_work_must_fit_in_the_horizon() -> None:
    p = org(backlog_minutes=8 * 60 - 100)
    assert "working_time" in rules(p, plan(Assignment("t1", "a1", 0), Assignment("t2", "a1", 1)))


def test_unknown_agent_and_repeated_positions() -> None:
    p = org()
    assert "known_agent" in rules(p, plan(Assignment("t1", "zz", 0), Assignment("t2", "a1", 0)))
    assert "order" in rules(p, plan(Assignment("t1", "a1", 0), Assignment("t2", "a1", 0)))


def test_reported_times_must_match_the_schedule() -> None:
    p = org()
    wrong = plan(
        Assignment("t1", "a1", 0, start=NOW + timedelta(minutes=5)), Assignment("t2", "a1", 1)
    )
    assert rules(p, wrong) == {"schedule"}


def test_evaluate_recomputes_every_part() -> None:
    p = org(backlog_minutes=10)
    w = ObjectiveWeights()
    # a1 works its 10-minute backlog, then t1 (90 min): starts at 10, ends at 100;
    # then t2 (30 min): 100..130. t1 is HIGH (weight 4): first response due 30 (on time),
    # resolution due 60 (40 late). t1 was owned by a2 (churn) and a2 was the previous agent.
    got = evaluate(p, plan(Assignment("t1", "a1", 0), Assignment("t2", "a1", 1)), w)
    assert [(o.start_minute, o.end_minute) for o in got.outcomes] == [(10, 100), (100, 130)]
    assert got.fr_breaches == 0 and got.res_breaches == 1
    assert got.parts.sla_breaches == w.breach * 4
    assert got.parts.weighted_lateness == 4 * 40
    assert got.parts.churn == w.churn
    assert got.parts.discontinuity == w.discontinuity
    assert got.parts.load_balance == w.load * ((0 + 2) ** 2 - 0)
    # t1 needs net>=2, a1 has 3 (waste 1); t2 needs lang:de>=4, a1 has 5 (waste 1).
    assert got.parts.expertise_waste == w.expertise_waste * 2
    assert got.parts.unassigned == 0
    assert got.load_spread == 1  # a1 holds 0 + 2, a2 holds 1 open + 0 new


def test_unassigned_is_priority_weighted_and_churn_counts_the_queue() -> None:
    p = org()
    w = ObjectiveWeights()
    got = evaluate(p, plan(queued=(TeamQueued("t1", "net"), TeamQueued("t2", "net"))), w)
    assert got.unassigned == 2
    assert got.parts.unassigned == w.unassigned * (4 + 2)
    assert got.churn == 1
    assert got.parts.sla_breaches == 0


def test_finalize_plan_schedules_and_scores() -> None:
    p = org()
    built = finalize_plan(p, {"a1": ["t2", "t1"]}, {}, policy="hand", wall_seconds=0.0)
    assert check_plan(p, built) == []
    first = built.by_ticket()["t2"]
    assert (first.start, first.end) == (NOW, NOW + timedelta(minutes=30))
    assert built.stats.objective == pytest.approx(evaluate(p, built).objective)
