"""Breach risk (solver.breach): who will miss a deadline with their owner, and who can still
make it. Examples for each scope, and properties over random organisations: a ticket is only
ever moved to an agent who makes every deadline with it, and nobody on track is disturbed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from solver.breach import Escalation, Scope, rescue
from solver.problem import Agent, AgentStatus, Interval, Problem, Team, Ticket
from solver.schedule import schedule_sequences

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
DAY = Interval(NOW, NOW + timedelta(hours=8))


def agent(id: str, team: str = "t1", **kw: object) -> Agent:
    return Agent(id=id, team=team, skills={"net": 3}, capacity=10, shifts=(DAY,), **kw)  # type: ignore[arg-type]


def ticket(
    id: str, owner: str | None, due_min: int | None, effort: int = 60, **kw: object
) -> Ticket:
    return Ticket(
        id=id,
        team=str(kw.pop("team", "t1")),
        created_at=NOW - timedelta(hours=1),
        required_skills=kw.pop("skills", {"net": 1}),  # type: ignore[arg-type]
        resolution_due=None if due_min is None else NOW + timedelta(minutes=due_min),
        effort_minutes=effort,
        owner_agent=owner,
        **kw,  # type: ignore[arg-type]
    )


def problem(agents: list[Agent], tickets: list[Ticket]) -> Problem:
    teams = tuple(Team(t) for t in sorted({a.team for a in agents} | {t.team for t in tickets}))
    return Problem(now=NOW, agents=tuple(agents), tickets=tuple(tickets), teams=teams)


def test_overloaded_owner_is_rerouted_within_the_team() -> None:
    # ana holds three hours of work; t3 is due in 2h30: she finishes it at 3h.
    p = problem(
        [agent("ana"), agent("ben"), agent("cid", team="t2")],
        [ticket("t1", "ana", 60), ticket("t2", "ana", 120), ticket("t3", "ana", 150)],
    )
    [r] = rescue(p, scope=Scope.TEAM)
    assert (r.ticket_id, r.owner, r.to_agent, r.borrowed) == ("t3", "ana", "ben", False)
    assert r.forecast.deadline == "resolution"
    assert r.forecast.finish == NOW + timedelta(hours=3)
    assert r.new_forecast is not None and r.new_forecast.finish == NOW + timedelta(hours=1)
    assert [x.rule for x in r.reasons] == ["breach_risk", "breach_rescue"]


def test_on_track_tickets_are_left_alone() -> None:
    p = problem([agent("ana"), agent("ben")], [ticket("t1", "ana", 60), ticket("t2", "ana", 120)])
    assert rescue(p, scope=Scope.BORROW) == []


def test_margin_makes_a_tight_ticket_at_risk() -> None:
    p = problem([agent("ana"), agent("ben")], [ticket("t1", "ana", 70)])
    assert rescue(p, scope=Scope.TEAM) == []
    [r] = rescue(p, scope=Scope.TEAM, margin_minutes=15)
    # ben finishes it in an hour too, so he would miss the margin as well: nobody takes it.
    assert r.to_agent is None and not r.moves


def test_record_moves_nothing() -> None:
    p = problem([agent("ana"), agent("ben")], [ticket("a", "ana", 60), ticket("b", "ana", 90)])
    [r] = rescue(p, scope=Scope.RECORD)
    assert r.ticket_id == "b" and not r.moves


def test_nobody_who_would_also_miss_it() -> None:
    # ben is as loaded as ana: moving t3 to him would miss it too (and push his own work).
    p = problem(
        [agent("ana"), agent("ben")],
        [
            ticket("t1", "ana", 60),
            ticket("t2", "ana", 120),
            ticket("t3", "ana", 150),
            ticket("u1", "ben", 60),
            ticket("u2", "ben", 120),
        ],
    )
    [r] = rescue(p, scope=Scope.TEAM)
    assert r.ticket_id == "t3" and r.to_agent is None


def test_borrow_looks_in_other_teams_after_the_own_team() -> None:
    p = problem(
        [agent("ana"), agent("cid", team="t2")],
        [ticket("t1", "ana", 60), ticket("t2", "ana", 90)],
    )
    assert not rescue(p, scope=Scope.TEAM)[0].moves
    [r] = rescue(p, scope=Scope.BORROW)
    assert (r.to_agent, r.borrowed, r.to_team) == ("cid", True, "t1")
    assert "borrowed from team t2" in r.reasons[1].detail


def test_escalation_goes_to_the_team_agent_who_can_make_it_or_its_queue() -> None:
    agents = [
        agent("ana"),
        Agent(id="eve", team="t2", skills={"net": 3, "tier2": 1}, capacity=5, shifts=(DAY,)),
    ]
    tickets = [ticket("t1", "ana", 60), ticket("t2", "ana", 90)]
    [r] = rescue(
        problem(agents, tickets), scope=Scope.ESCALATE, escalation=Escalation("t2", {"tier2": 1})
    )
    assert (r.to_agent, r.to_team, r.escalated) == ("eve", "t2", True)
    assert r.skills == {"net": 1, "tier2": 1}
    # nobody in t3 (no agents): the ticket goes to its queue
    [r] = rescue(problem(agents, tickets), scope=Scope.ESCALATE, escalation=Escalation("t3"))
    assert (r.to_agent, r.to_team, r.escalated, r.moves) == (None, "t3", True, True)
    # reroute falls back to escalation when nobody in the team can make it
    [r] = rescue(
        problem(agents, tickets), scope=Scope.TEAM, escalation=Escalation("t2", {"tier2": 1})
    )
    assert (r.to_agent, r.escalated) == ("eve", True)


def test_an_absent_owner_misses_everything() -> None:
    p = problem([agent("ana", status=AgentStatus.AWAY), agent("ben")], [ticket("t1", "ana", 120)])
    [r] = rescue(p, scope=Scope.TEAM)
    assert r.to_agent == "ben"


def test_a_deadline_already_past_is_at_risk_and_unrescuable() -> None:
    p = problem([agent("ana"), agent("ben")], [ticket("t1", "ana", None, first_response_due=NOW)])
    [r] = rescue(p, scope=Scope.TEAM, margin_minutes=1)
    assert r.forecast.deadline == "first_response" and r.to_agent is None


def test_escalate_scope_needs_an_escalation() -> None:
    with pytest.raises(ValueError):
        rescue(problem([agent("ana")], []), scope=Scope.ESCALATE)


@st.composite
def organisations(draw: st.DrawFn) -> tuple[Problem, int]:
    n_agents = draw(st.integers(1, 4))
    agents = [
        Agent(
            id=f"a{i}",
            team=draw(st.sampled_from(["t1", "t2"])),
            skills={"net": draw(st.integers(1, 3))},
            capacity=draw(st.integers(1, 6)),
            shifts=(Interval(NOW, NOW + timedelta(minutes=draw(st.integers(30, 480)))),),
            status=draw(
                st.sampled_from([AgentStatus.AVAILABLE, AgentStatus.AVAILABLE, AgentStatus.AWAY])
            ),
        )
        for i in range(n_agents)
    ]
    tickets = [
        ticket(
            f"k{j}",
            f"a{draw(st.integers(0, n_agents - 1))}",
            draw(st.integers(10, 600)),
            effort=draw(st.integers(5, 120)),
            skills={"net": draw(st.integers(1, 3))},
            team=draw(st.sampled_from(["t1", "t2"])),
        )
        for j in range(draw(st.integers(0, 8)))
    ]
    return problem(agents, tickets), draw(st.integers(0, 30))


def _late(p: Problem, seqs: dict[str, list[str]], margin: int) -> set[str]:
    times = schedule_sequences(p, {a: s for a, s in seqs.items() if s})
    late = set()
    for tid, (_s, e) in times.items():
        t = p.ticket(tid)
        assert t.resolution_due is not None
        if e + margin > (t.resolution_due - NOW).total_seconds() // 60:
            late.add(tid)
    return late


@settings(max_examples=60, deadline=None)
@given(organisations(), st.sampled_from([Scope.TEAM, Scope.BORROW]))
def test_moves_only_to_agents_who_make_it_and_disturb_nobody(
    case: tuple[Problem, int], scope: Scope
) -> None:
    p, margin = case
    out = rescue(p, margin_minutes=margin, scope=scope)
    owner = {t.id: t.owner_agent for t in p.tickets}
    for r in out:
        assert r.forecast.at_risk
        if r.to_agent is None:
            continue
        target = p.agent(r.to_agent)
        assert target.status is AgentStatus.AVAILABLE and target.id != r.owner
        assert target.qualifies(p.ticket(r.ticket_id).required_skills)
        if scope is Scope.TEAM:
            assert target.team == p.ticket(r.ticket_id).team
        assert r.new_forecast is not None and not r.new_forecast.at_risk
        owner[r.ticket_id] = r.to_agent

    # After every move, in deadline order, nobody's on-track ticket became late, and every
    # moved ticket is on track where it went.
    def seqs(owners: dict[str, str | None]) -> dict[str, list[str]]:
        out_: dict[str, list[str]] = {a.id: [] for a in p.agents}
        for t in sorted(
            p.tickets, key=lambda t: (t.resolution_due, -int(t.priority), t.created_at, t.id)
        ):
            a = owners[t.id]
            if a is not None:
                out_[a].append(t.id)
        return out_

    before = _late(p, seqs({t.id: t.owner_agent for t in p.tickets}), margin)
    after = _late(p, seqs(owner), margin)
    moved = {r.ticket_id for r in out if r.to_agent is not None}
    assert not (after - before)
    assert not (after & moved)
    assert {r.ticket_id for r in out} <= before
    for a in p.agents:
        held = sum(1 for t in p.tickets if owner[t.id] == a.id)
        originally = sum(1 for t in p.tickets if t.owner_agent == a.id)
        assert held <= max(a.capacity, originally)
