"""Team scope in the solver: ``team_only`` keeps a team's tickets to its own agents, ``borrow``
prefers them and takes another team's agent only when none of its own can, saying so; a team
without a scope is open to everyone. Real-time and batch paths alike."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from solver.batch import BatchParams, optimize
from solver.batch.data import build
from solver.errors import ProblemError
from solver.objective import ObjectiveWeights
from solver.plan import Decision
from solver.problem import Agent, Interval, Problem, Team, TeamScope, Ticket
from solver.realtime import RealtimeIndex

NOW = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
DAY = (Interval(NOW, NOW + timedelta(hours=9)),)
FAST = BatchParams(time_limit_s=1.0, seed=1)


def problem(
    scope: TeamScope | None, *, red_open: int = 0, red_level: int = 3, n_tickets: int = 1
) -> Problem:
    """Team red has r1 (billing ``red_level``, capacity 1, ``red_open`` open); team blue has b1,
    a better fit (billing 3, idle). The tickets belong to red."""
    agents = (
        Agent("r1", "red", {"billing": red_level}, 1, DAY, open_tickets=red_open),
        Agent("b1", "blue", {"billing": 3}, 3, DAY),
    )
    tickets = tuple(
        Ticket(f"t{i}", "red", NOW, {"billing": 2}, effort_minutes=30) for i in range(n_tickets)
    )
    teams = (Team("red", scope=scope), Team("blue", scope=TeamScope.TEAM_ONLY))
    return Problem(NOW, agents, tickets, teams=teams)


def assign(p: Problem) -> Decision:
    return RealtimeIndex.build(p).assign(p.tickets[0])


def batch_owner(p: Problem) -> dict[str, str]:
    return {x.ticket_id: x.agent_id for x in optimize(p, FAST).assignments}


def test_a_team_without_scope_is_open_to_the_best_agent_of_any_team() -> None:
    # r1 wastes a level (billing 5 for 2): b1 is cheaper, whatever their team.
    p = problem(None, red_level=5)
    assert assign(p).agent_id == "b1"
    assert batch_owner(p) == {"t0": "b1"}
    assert build(p, ObjectiveWeights()).pair_agent.tolist() == [0, 1]


def test_team_only_keeps_the_ticket_in_its_team_even_when_another_fits_better() -> None:
    p = problem(TeamScope.TEAM_ONLY, red_level=5)
    d = assign(p)
    assert d.agent_id == "r1"
    assert all(r.rule != "team_scope" for r in d.reasons)
    assert [a.agent_id for a in d.alternatives] == []
    assert batch_owner(p) == {"t0": "r1"}


def test_team_only_queues_when_no_agent_of_the_team_can_and_says_why() -> None:
    p = problem(TeamScope.TEAM_ONLY, red_open=1)  # r1 is full
    d = assign(p)
    assert d.agent_id is None and d.team_id == "red"
    assert d.reasons[0].rule == "capacity"  # the team's own agent is at capacity
    plan = optimize(p, FAST)
    assert plan.assignments == ()
    [queued] = plan.queued
    assert "team_scope" in [r.rule for r in queued.reasons]

    # Nobody of the team has the skills, though blue does: the scope is the reason.
    p = problem(TeamScope.TEAM_ONLY, red_level=1)
    d = assign(p)
    assert d.agent_id is None
    assert d.reasons[0].rule == "team_scope"
    assert "no agent of team red has the skills" in d.reasons[0].detail
    assert "1 of other teams" in d.reasons[0].detail


def test_borrow_prefers_the_own_team_then_borrows_and_names_the_lender() -> None:
    p = problem(TeamScope.BORROW, red_level=5)
    d = assign(p)
    assert d.agent_id == "r1"  # own team first, though b1 fits better
    assert all(r.rule != "team_scope" for r in d.reasons)
    assert batch_owner(p) == {"t0": "r1"}

    p = problem(TeamScope.BORROW, red_open=1)  # r1 is full: borrow b1
    d = assign(p)
    assert d.agent_id == "b1"
    [lent] = [r for r in d.reasons if r.rule == "team_scope"]
    assert lent.detail.startswith("borrowed from team blue")
    assert d.reasons[0] == lent
    plan = optimize(p, FAST)
    [x] = plan.assignments
    assert x.agent_id == "b1"
    assert any(r.rule == "team_scope" and "team blue" in r.detail for r in x.reasons)


def test_scope_is_validated() -> None:
    with pytest.raises(ProblemError) as exc:
        Team("red", scope="everyone")  # type: ignore[arg-type]
    assert exc.value.field == "scope"
    assert Team("red", scope="borrow").scope is TeamScope.BORROW  # type: ignore[arg-type]


scopes = st.sampled_from([None, TeamScope.TEAM_ONLY, TeamScope.BORROW])


@st.composite
def scoped_problems(draw: st.DrawFn) -> Problem:
    teams = ("red", "blue", "green")
    agents = tuple(
        Agent(
            f"a{i}",
            draw(st.sampled_from(teams)),
            {"x": draw(st.integers(1, 3))},
            draw(st.integers(0, 2)),
            DAY if draw(st.booleans()) or i == 0 else (),
            open_tickets=draw(st.integers(0, 1)),
        )
        for i in range(draw(st.integers(1, 6)))
    )
    tickets = tuple(
        Ticket(
            f"t{i}",
            draw(st.sampled_from(teams)),
            NOW,
            {"x": draw(st.integers(1, 3))},
            effort_minutes=draw(st.integers(10, 120)),
        )
        for i in range(draw(st.integers(1, 8)))
    )
    return Problem(NOW, agents, tickets, teams=tuple(Team(t, scope=draw(scopes)) for t in teams))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scoped_problems())
def test_every_assignment_respects_its_team_scope(p: Problem) -> None:
    plan = optimize(p, BatchParams(time_limit_s=0.5, use_sequencing=False, seed=1))
    index = RealtimeIndex.build(p)
    decided = []
    for ticket in p.tickets:
        d = index.assign(ticket)
        if d.agent_id is not None:
            index.commit(d, ticket)
            decided.append((ticket, d.agent_id, d.reasons))
    batch = [(p.ticket(x.ticket_id), x.agent_id, x.reasons) for x in plan.assignments]
    for ticket, agent_id, reasons in batch + decided:
        scope = p.team_scope.get(ticket.team)
        lender = p.agent(agent_id).team
        said = [r for r in reasons if r.rule == "team_scope"]
        if scope is TeamScope.TEAM_ONLY:
            assert lender == ticket.team
        if lender != ticket.team and scope is TeamScope.BORROW:
            assert said and f"borrowed from team {lender}" in said[0].detail
        else:
            assert not said
    # The batch prices each borrowed ticket in the objective, exactly as it is counted.
    lent = sum(
        1
        for ticket, agent_id, _ in batch
        if p.agent(agent_id).team != ticket.team
        and p.team_scope.get(ticket.team) is TeamScope.BORROW
    )
    assert plan.stats.parts is not None
    assert plan.stats.parts.borrowing == ObjectiveWeights().borrow * lent


def test_the_batch_borrows_once_the_own_team_is_full() -> None:
    # r1 (capacity 1) takes one of red's two tickets; the other is borrowed by b1, not queued.
    p = problem(TeamScope.BORROW, n_tickets=2)
    plan = optimize(p, FAST)
    owners = sorted(x.agent_id for x in plan.assignments)
    assert owners == ["b1", "r1"]
    [lent] = [x for x in plan.assignments if x.agent_id == "b1"]
    assert any(r.rule == "team_scope" for r in lent.reasons)
    assert plan.stats.parts is not None
    assert plan.stats.parts.borrowing == ObjectiveWeights().borrow
    # Under team_only the second one stays with red's queue.
    plan = optimize(problem(TeamScope.TEAM_ONLY, n_tickets=2), FAST)
    assert [x.agent_id for x in plan.assignments] == ["r1"] and len(plan.queued) == 1
