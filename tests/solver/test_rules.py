"""Each hard rule on its own: it flags a plan built to break it and passes one that does not.

The validator also times plans with its own loop; it must agree with the solver's vectorized
scheduler (``solver.schedule.schedule_sequences``) to the minute, across breaks and overflow.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from solver.plan import Assignment, Plan, TeamQueued
from solver.problem import AgentStatus, Interval, Problem, Ticket
from solver.schedule import schedule_sequences
from solver.validation import HARD_RULES, RULES, check_plan, schedule
from tests.solver.test_validation import NOW, org, plan

GOOD = (Assignment("t1", "a1", 0), Assignment("t2", "a1", 1))

# rule -> (problem options for org(), a plan breaking only that rule)
BROKEN: dict[str, tuple[dict[str, object], Plan]] = {
    "complete": ({}, plan(Assignment("t1", "a1", 0))),
    "team_queue": ({}, plan(Assignment("t1", "a1", 0), queued=(TeamQueued("t2", "billing"),))),
    "known_agent": ({}, plan(Assignment("t1", "zz", 0), Assignment("t2", "a1", 0))),
    "available": ({"status": AgentStatus.AWAY}, plan(*GOOD)),
    "qualified": ({}, plan(Assignment("t1", "a1", 0), Assignment("t2", "a2", 0))),
    "capacity": ({"capacity": 1}, plan(*GOOD)),
    "channel_capacity": ({"channel_capacity": {"email": 1}}, plan(*GOOD)),
    "working_time": ({"backlog_minutes": 8 * 60 - 100}, plan(*GOOD)),
    "order": ({}, plan(Assignment("t1", "a1", 0), Assignment("t2", "a1", 0))),
    "schedule": (
        {},
        plan(Assignment("t1", "a1", 0, start=NOW + timedelta(minutes=5)), GOOD[1]),
    ),
}


def test_every_rule_is_registered_once_in_the_documented_order() -> None:
    assert HARD_RULES == tuple(RULES) == tuple(BROKEN)


@pytest.mark.parametrize("name", HARD_RULES)
def test_rule_flags_a_plan_built_to_break_it(name: str) -> None:
    kw, bad = BROKEN[name]
    found = RULES[name](org(**kw), bad)
    assert found and {v.rule for v in found} == {name}
    assert name in {v.rule for v in check_plan(org(**kw), bad)}


@pytest.mark.parametrize("name", HARD_RULES)
def test_rule_passes_a_plan_that_keeps_it(name: str) -> None:
    assert RULES[name](org(), plan(*GOOD)) == []


# a2 holds one open ticket with capacity 1; an away agent has no working time either.
ALSO_BROKEN = {"qualified": {"capacity"}, "available": {"working_time"}}


@pytest.mark.parametrize("name", HARD_RULES)
def test_rule_passes_the_other_rules_broken_plans(name: str) -> None:
    """A rule flags its own breakage only."""
    for other, (kw, bad) in BROKEN.items():
        if other != name and name not in ALSO_BROKEN.get(other, set()):
            assert RULES[name](org(**kw), bad) == [], other


def test_check_plan_keeps_times_for_a_plan_that_breaks_nothing_else() -> None:
    kw, bad = BROKEN["capacity"]
    late = Plan(
        (Assignment("t1", "a1", 0, start=NOW + timedelta(minutes=5)), GOOD[1]), (), bad.stats
    )
    assert {v.rule for v in check_plan(org(**kw), late)} == {"capacity"}


def _sequences(p: Plan) -> dict[str, list[str]]:
    return {agent: [a.ticket_id for a in rows] for agent, rows in p.by_agent().items()}


@pytest.mark.parametrize("backlog", [0, 10, 100, 229, 230, 231, 400, 1000])
def test_own_schedule_agrees_with_the_solvers_across_breaks_and_overflow(backlog: int) -> None:
    # a1 works 08:00-10:00 and 11:00-12:00 minus a 10:30 meeting outside its shift, then
    # 13:00-13:30: breaks between windows, and work past the last one overflows the horizon.
    shifts = (
        Interval(NOW, NOW + timedelta(hours=2)),
        Interval(NOW + timedelta(hours=3), NOW + timedelta(hours=4)),
        Interval(NOW + timedelta(hours=5), NOW + timedelta(hours=5, minutes=30)),
    )
    base = org(shifts=shifts, backlog_minutes=backlog, capacity=9)
    extra = tuple(
        Ticket(f"x{k}", "net", NOW, effort_minutes=effort)
        for k, effort in enumerate((1, 60, 29, 31, 120))
    )
    p = Problem(now=NOW, agents=base.agents, tickets=base.tickets + extra)
    tids = ["t1", "t2", *(t.id for t in extra)]
    for order in (tids, tids[::-1]):
        built = plan(
            *(Assignment(t, "a1", i) for i, t in enumerate(order[:4])),
            *(Assignment(t, "a2", i) for i, t in enumerate(order[4:])),
        )
        assert schedule(p, built) == schedule_sequences(p, _sequences(built))
