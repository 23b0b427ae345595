"""The baseline policies: qualified only, capacity, team queue with reasons, order, determinism."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from scenarios.generate import generate
from solver.plan import Plan
from solver.policies import (
    BASELINES,
    POLICIES,
    Policy,
    PolicyParams,
    first_qualified,
    least_loaded,
    round_robin,
)
from solver.problem import Agent, AgentStatus, Interval, Priority, Problem, Ticket
from solver.validation import check_plan, evaluate

NOW = datetime(2026, 3, 26, 8, 0, tzinfo=UTC)
BASELINE_FUNCS = [round_robin, least_loaded, first_qualified]


def agent(aid: str, skills: dict[str, int] | None = None, **kw: object) -> Agent:
    defaults: dict[str, object] = {
        "team": "core",
        "skills": skills if skills is not None else {"net": 3},
        "capacity": 10,
        "shifts": (Interval(NOW, NOW + timedelta(hours=8)),),
    }
    defaults.update(kw)
    return Agent(id=aid, **defaults)  # type: ignore[arg-type]


def ticket(tid: str, req: dict[str, int] | None = None, **kw: object) -> Ticket:
    defaults: dict[str, object] = {
        "team": "core",
        "created_at": NOW - timedelta(minutes=10),
        "required_skills": req if req is not None else {"net": 2},
        "effort_minutes": 30,
    }
    defaults.update(kw)
    return Ticket(id=tid, **defaults)  # type: ignore[arg-type]


def problem(agents: list[Agent], tickets: list[Ticket]) -> Problem:
    return Problem(now=NOW, agents=tuple(agents), tickets=tuple(tickets))


def owners(plan: Plan) -> dict[str, str]:
    return {a.ticket_id: a.agent_id for a in plan.assignments}


def queue_rules(plan: Plan) -> dict[str, str]:
    return {q.ticket_id: q.reasons[0].rule for q in plan.queued}


@pytest.mark.parametrize("policy", BASELINE_FUNCS)
def test_only_qualified_agents_get_tickets(policy: Policy) -> None:
    p = problem(
        [agent("novice", {"net": 1}), agent("expert", {"net": 4, "lang:de": 5})],
        [ticket(f"t{i}", {"net": 2, "lang:de": 3}) for i in range(4)],
    )
    plan = policy(p, None)
    assert check_plan(p, plan) == []
    assert set(owners(plan).values()) == {"expert"}


@pytest.mark.parametrize("policy", BASELINE_FUNCS)
def test_capacity_counts_open_tickets_and_overflow_goes_to_the_team_queue(policy: Policy) -> None:
    p = problem(
        [agent("a", capacity=3, open_tickets=1), agent("b", capacity=1)],
        [ticket(f"t{i}") for i in range(5)],
    )
    plan = policy(p, None)
    assert check_plan(p, plan) == []
    load = {"a": 0, "b": 0}
    for aid in owners(plan).values():
        load[aid] += 1
    assert load == {"a": 2, "b": 1}
    assert len(plan.queued) == 2
    assert set(queue_rules(plan).values()) == {"capacity"}
    assert all(q.team_id == "core" for q in plan.queued)


@pytest.mark.parametrize("policy", BASELINE_FUNCS)
def test_nobody_fits_each_reason_is_named(policy: Policy) -> None:
    p = problem(
        [
            agent("off", {"net": 3, "sec": 3}, status=AgentStatus.OFFLINE),
            agent("full", {"net": 3, "dns": 3}, capacity=1, open_tickets=1),
            agent("short", {"net": 3, "db": 3}, backlog_minutes=8 * 60 - 20),
        ],
        [
            ticket("nobody", {"crypto": 1}, team="edge"),
            ticket("offline", {"sec": 1}),
            ticket("capacity", {"dns": 1}),
            ticket("time", {"db": 1}, effort_minutes=45),
        ],
    )
    plan = policy(p, None)
    assert check_plan(p, plan) == []
    assert plan.assignments == ()
    assert queue_rules(plan) == {
        "nobody": "qualified",
        "offline": "available",
        "capacity": "capacity",
        "time": "working_time",
    }
    assert {q.ticket_id: q.team_id for q in plan.queued}["nobody"] == "edge"


@pytest.mark.parametrize("policy", BASELINE_FUNCS)
def test_agents_work_new_tickets_in_priority_then_age_order(policy: Policy) -> None:
    p = problem(
        [agent("solo")],
        [
            ticket("low-old", priority=Priority.LOW, created_at=NOW - timedelta(hours=5)),
            ticket("urgent", priority=Priority.URGENT),
            ticket("normal-new", priority=Priority.NORMAL, created_at=NOW - timedelta(minutes=1)),
            ticket("normal-old", priority=Priority.NORMAL, created_at=NOW - timedelta(hours=2)),
        ],
    )
    plan = policy(p, None)
    assert check_plan(p, plan) == []
    order = [a.ticket_id for a in plan.by_agent()["solo"]]
    assert order == ["urgent", "normal-old", "normal-new", "low-old"]
    starts = [a.start for a in plan.by_agent()["solo"]]
    assert starts == sorted(starts) and starts[0] == NOW


def test_round_robin_rotates_least_loaded_balances_first_qualified_stacks() -> None:
    agents = [agent("a"), agent("b", open_tickets=3), agent("c")]
    tickets = [ticket(f"t{i}", created_at=NOW - timedelta(minutes=60 - i)) for i in range(6)]
    p = problem(agents, tickets)
    rr = owners(round_robin(p))
    assert [rr[f"t{i}"] for i in range(6)] == ["a", "b", "c", "a", "b", "c"]
    ll = owners(least_loaded(p))
    # b starts with 3 open of 10: a and c catch up first, then the three share.
    assert [ll[f"t{i}"] for i in range(6)] == ["a", "c", "a", "c", "a", "c"]
    fq = owners(first_qualified(p))
    assert set(fq.values()) == {"a"}


def test_owner_keeps_a_ticket_while_they_can_take_it() -> None:
    p = problem(
        [agent("a"), agent("owner"), agent("gone", status=AgentStatus.AWAY)],
        [ticket("mine", owner_agent="owner"), ticket("orphan", owner_agent="gone")],
    )
    plan = first_qualified(p)
    assert owners(plan) == {"mine": "owner", "orphan": "a"}
    assert evaluate(p, plan).churn == 1
    moved = first_qualified(p, PolicyParams(keep_owner=False))
    assert owners(moved)["mine"] == "a"


@pytest.mark.parametrize("tight", [False, True])
@pytest.mark.parametrize("name", BASELINES)
def test_generated_instances_give_valid_deterministic_plans(name: str, tight: bool) -> None:
    p = generate("demo", seed=11, tight=tight, n_agents=30, n_tickets=200)
    first = POLICIES[name](p, None)
    again = POLICIES[name](p, None)
    assert check_plan(p, first) == []
    assert first.assignments == again.assignments and first.queued == again.queued
    assert first.stats.policy == name
    assert first.stats.objective == evaluate(p, first).objective
    assert len(first.assignments) + len(first.queued) == len(p.tickets)
    assert all(a.reasons for a in first.assignments)
    assert all(q.reasons for q in first.queued)


def test_registry_lists_the_baselines_and_the_optimizer() -> None:
    assert set(POLICIES) == {"round-robin", "least-loaded", "first-qualified", "optimizer"}
