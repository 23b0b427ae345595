"""Real-time assignment: each filter (feasible and infeasible), each score term, the team-queue
fallback and its reasons, commits, time (``now`` offsets, DST, several zones), and properties
checked against a naive per-agent implementation of the same rules."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from benchmarks.realtime import naive_assign
from solver.availability import bank_for
from solver.errors import ProblemError
from solver.objective import ObjectiveWeights
from solver.plan import Decision
from solver.problem import Agent, AgentStatus, Interval, Priority, Problem, Skill, Team, Ticket
from solver.realtime import SCORE_TERMS, RealtimeIndex, RealtimeWeights, assign_one

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # a Monday morning
MIN = timedelta(minutes=1)
HOUR = timedelta(hours=1)
DAY_SHIFT = (Interval(NOW - HOUR, NOW + 8 * HOUR),)


def agent(agent_id: str, skills: dict[str, int] | None = None, **kw: object) -> Agent:
    base: dict[str, object] = {
        "team": "core",
        "skills": {"net": 3} if skills is None else skills,
        "capacity": 3,
        "shifts": DAY_SHIFT,
    }
    base.update(kw)
    return Agent(agent_id, **base)  # type: ignore[arg-type]


def ticket(ticket_id: str = "t1", skills: dict[str, int] | None = None, **kw: object) -> Ticket:
    base: dict[str, object] = {
        "team": "core",
        "created_at": NOW - 10 * MIN,
        "required_skills": {"net": 3} if skills is None else skills,
    }
    base.update(kw)
    return Ticket(ticket_id, **base)  # type: ignore[arg-type]


def problem(*agents: Agent, now: datetime = NOW, **kw: object) -> Problem:
    return Problem(now=now, agents=agents, tickets=(), **kw)  # type: ignore[arg-type]


def rule(decision: Decision, name: str) -> str:
    found = [r.detail for r in decision.reasons if r.rule == name]
    assert found, f"no {name!r} reason in {decision.reasons}"
    return found[0]


# ---------------------------------------------------------------------------- filters
def test_qualified_agent_is_chosen_over_an_unqualified_one() -> None:
    p = problem(agent("novice", {"net": 2}), agent("pro", {"net": 4}))
    d = assign_one(p, ticket(skills={"net": 3}))
    assert d.agent_id == "pro"
    assert [a.agent_id for a in d.alternatives] == []


def test_nobody_at_the_level_goes_to_the_team_queue_naming_skill_and_level() -> None:
    p = problem(agent("a", {"net": 2}), agent("b", {"net": 4}))
    d = assign_one(p, ticket(skills={"net": 5}))
    assert d.agent_id is None and d.queued and d.team_id == "core" and d.score is None
    assert rule(d, "qualified") == (
        "no agent has skill net at level 5 (the highest level anyone has is 4)"
    )
    assert "team core's queue" in rule(d, "team_queue")


def test_skills_held_only_by_different_people_are_not_enough() -> None:
    p = problem(agent("a", {"net": 5}), agent("b", {"dns": 5}), skills=(Skill("net"), Skill("dns")))
    d = assign_one(p, ticket(skills={"net": 3, "dns": 2}))
    assert d.queued
    assert "every required skill at its level together" in rule(d, "qualified")


def test_a_skill_nobody_has_heard_of_queues_instead_of_failing() -> None:
    d = assign_one(problem(agent("a")), ticket(skills={"cobol": 1}))
    assert d.queued and rule(d, "qualified") == "no agent has skill cobol"


def test_ticket_without_requirements_can_go_to_anyone() -> None:
    d = assign_one(problem(agent("a", {})), ticket(skills={}))
    assert d.agent_id == "a"
    d = assign_one(problem(agent("a", {}, status=AgentStatus.AWAY)), ticket(skills={}))
    assert rule(d, "available") == (
        "1 agent could take it (no skills needed) but none is available (1 away, 0 offline)"
    )


def test_no_agents_at_all_still_queues_with_a_reason() -> None:
    d = assign_one(problem(), ticket(skills={}))
    assert d.queued and rule(d, "qualified") == "there are no agents"


def test_agent_off_shift_is_skipped_even_if_better() -> None:
    later = (Interval(NOW + 2 * HOUR, NOW + 10 * HOUR),)
    p = problem(agent("off", {"net": 3}, shifts=later), agent("on", {"net": 5}, open_tickets=2))
    assert assign_one(p, ticket()).agent_id == "on"


def test_nobody_on_shift_says_when_the_next_qualified_agent_starts() -> None:
    p = problem(
        agent("late", shifts=(Interval(NOW + 3 * HOUR, NOW + 9 * HOUR),)),
        agent("later", shifts=(Interval(NOW + 5 * HOUR, NOW + 9 * HOUR),)),
        agent("unqualified", {"net": 1}),
    )
    d = assign_one(p, ticket())
    assert d.queued
    assert rule(d, "on_shift") == (
        "2 agents have the skills but none is on shift now; "
        "next qualified agent on shift at 2026-03-02T12:00+00:00 (late)"
    )


def test_shift_edges_are_half_open() -> None:
    shift = (Interval(NOW, NOW + HOUR),)
    index = RealtimeIndex.build(problem(agent("a", shifts=shift), horizon_end=NOW + 4 * HOUR))
    assert index.assign(ticket(effort_minutes=5)).agent_id == "a"
    assert index.assign(ticket(effort_minutes=1), now=NOW + 59 * MIN).agent_id == "a"
    assert index.assign(ticket(effort_minutes=1), now=NOW + HOUR).queued


def test_away_and_offline_agents_are_not_candidates() -> None:
    p = problem(
        agent("away", status=AgentStatus.AWAY),
        agent("gone", status=AgentStatus.OFFLINE),
        agent("here", {"net": 5}, open_tickets=2),
    )
    assert assign_one(p, ticket()).agent_id == "here"
    d = assign_one(problem(*p.agents[:2]), ticket())
    assert (
        rule(d, "available") == "2 agents have the skills but none is available (1 away, 1 offline)"
    )


def test_agent_at_capacity_is_skipped() -> None:
    p = problem(agent("full", capacity=2, open_tickets=2), agent("room", {"net": 5}, capacity=2))
    assert assign_one(p, ticket()).agent_id == "room"


def test_everyone_at_capacity_queues_with_their_loads() -> None:
    p = problem(agent("a", capacity=2, open_tickets=2), agent("b", capacity=0))
    d = assign_one(p, ticket())
    assert d.queued
    assert rule(d, "capacity") == "2 qualified agents on shift, all at capacity (a 2/2, b 0/0)"


def test_agent_without_working_time_left_for_the_ticket_is_skipped() -> None:
    short = (Interval(NOW - HOUR, NOW + 20 * MIN),)
    p = problem(agent("leaving", shifts=short), horizon_end=NOW + 10 * HOUR)
    d = assign_one(p, ticket(effort_minutes=30))
    assert d.queued and "none has 30 more working minutes" in rule(d, "working_time")
    assert assign_one(p, ticket(effort_minutes=20)).agent_id == "leaving"


def test_meeting_now_delays_but_does_not_exclude() -> None:
    meeting = (Interval(NOW - 10 * MIN, NOW + 30 * MIN),)
    d = assign_one(problem(agent("a", busy=meeting)), ticket(effort_minutes=15))
    assert d.agent_id == "a"
    assert d.expected_start == NOW + 30 * MIN and d.expected_end == NOW + 45 * MIN
    assert rule(d, "wait_per_minute") == "can start in 30 min (at 2026-03-02T09:30+00:00)"


# ---------------------------------------------------------------------------- score terms
def test_urgency_prefers_the_agent_who_can_start_before_the_deadline() -> None:
    # "busy" has a lighter load but an hour of backlog; "free" is loaded but can start now.
    p = problem(agent("busy", backlog_minutes=60), agent("free", open_tickets=2))
    urgent = ticket(priority=Priority.URGENT, first_response_due=NOW + 25 * MIN)
    d = assign_one(p, urgent)
    assert d.agent_id == "free" and d.expected_start == NOW
    assert rule(d, "first_response") == "first response due in 25 min; can start now"
    alt = d.alternatives[0]
    assert alt.agent_id == "busy"
    assert any("35 min late" in r.detail for r in alt.reasons)
    # Without a deadline at risk, the lighter load wins: urgency is what moved it.
    relaxed = ticket(priority=Priority.LOW, first_response_due=NOW + 8 * HOUR)
    assert assign_one(p, relaxed).agent_id == "busy"


def test_resolution_deadline_uses_the_expected_finish() -> None:
    # Both can start now; "slow" has a meeting in 20 minutes, so a 60-minute ticket ends later.
    meeting = (Interval(NOW + 20 * MIN, NOW + 80 * MIN),)
    p = problem(agent("slow", busy=meeting), agent("steady", open_tickets=1))
    t = ticket(effort_minutes=60, priority=Priority.HIGH, resolution_due=NOW + 90 * MIN)
    d = assign_one(p, t)
    assert d.agent_id == "steady" and d.expected_end == NOW + HOUR
    assert rule(d, "resolution") == "resolution due in 1 h 30 min; expected done in 1 h"
    slow = d.alternatives[0]
    assert slow.agent_id == "slow"
    assert any("expected done in 2 h, 30 min late" in r.detail for r in slow.reasons)


def test_expertise_waste_prefers_the_less_overqualified_agent() -> None:
    p = problem(agent("expert", {"net": 5}), agent("fit", {"net": 3}))
    d = assign_one(p, ticket(skills={"net": 3}))
    assert d.agent_id == "fit"
    assert rule(d, "expertise_waste") == "skill levels match what the ticket needs"
    expert = d.alternatives[0]
    assert expert.agent_id == "expert"
    assert any(r.detail == "2 levels above what is needed (net 5 for 3)" for r in expert.reasons)


def test_lower_load_wins_when_all_else_is_equal() -> None:
    p = problem(agent("a", capacity=5, open_tickets=2), agent("b", capacity=5, open_tickets=1))
    d = assign_one(p, ticket())
    assert d.agent_id == "b" and rule(d, "load") == "load 1/5"


def test_continuity_prefers_the_previous_agent() -> None:
    p = problem(agent("a"), agent("b"))
    d = assign_one(p, ticket(previous_agent="b"))
    assert d.agent_id == "b" and rule(d, "continuity_previous") == "worked on this ticket before"


def test_continuity_prefers_whoever_served_the_requester() -> None:
    earlier = Ticket("old", "core", NOW - 3 * HOUR, {"net": 1}, owner_agent="b", requester="acme")
    p = Problem(now=NOW, agents=(agent("a"), agent("b")), tickets=(earlier,))
    d = assign_one(p, ticket(requester="acme"))
    assert d.agent_id == "b" and rule(d, "continuity_requester") == "handled this requester before"
    assert assign_one(p, ticket(requester="globex")).agent_id == "a"


def test_commit_teaches_the_index_the_requester() -> None:
    index = RealtimeIndex.build(problem(agent("a", capacity=9), agent("b", capacity=9)))
    first = ticket("t1", requester="acme", previous_agent="b", effort_minutes=5)
    d = index.assign(first)
    assert d.agent_id == "b"
    index.commit(d, first)
    # b is now a little busier (load, 5 min of queue, fairness) than a, but the requester's
    # next ticket still goes to b; anyone else's goes to a.
    again = index.assign(ticket("t2", requester="acme"))
    assert (
        again.agent_id == "b"
        and rule(again, "continuity_requester") == "handled this requester before"
    )
    assert index.assign(ticket("t3", requester="other")).agent_id == "a"


def test_fairness_prefers_fewer_recent_assignments() -> None:
    p = problem(agent("a", recent_assignments=6), agent("b", recent_assignments=2))
    d = assign_one(p, ticket())
    assert d.agent_id == "b" and rule(d, "fairness") == "2 recent assignments"


def test_capacity_prices_from_a_batch_solve_steer_the_choice() -> None:
    p = problem(agent("a"), agent("b"))
    index = RealtimeIndex.build(p, agent_prices={"a": 50.0, "b": 1.0, "retired": 9.0})
    d = index.assign(ticket())
    assert d.agent_id == "b"
    assert rule(d, "capacity_price") == "capacity price 1 from the last batch solve"
    index.set_prices(None)
    assert index.assign(ticket()).agent_id == "a"
    with pytest.raises(ProblemError, match=r"agent_prices\.a"):
        RealtimeIndex.build(p, agent_prices={"a": float("nan")})


def test_weights_turn_terms_off_and_are_validated() -> None:
    p = problem(agent("expert", {"net": 5}), agent("fit", {"net": 3}, open_tickets=1))
    assert assign_one(p, ticket()).agent_id == "fit"
    no_waste = RealtimeWeights(expertise_waste=0.0)
    assert assign_one(p, ticket(), no_waste).agent_id == "expert"
    with pytest.raises(ProblemError, match="load"):
        RealtimeWeights(load=-1.0)
    with pytest.raises(ProblemError, match="priority"):
        RealtimeWeights(priority={1: 1.0})


def test_reason_values_add_up_to_the_score() -> None:
    meeting = (Interval(NOW, NOW + 50 * MIN),)
    p = problem(
        agent("a", {"net": 4}, busy=meeting, open_tickets=1, recent_assignments=3),
        agent("b", {"net": 5}, backlog_minutes=40, open_tickets=2),
    )
    t = ticket(
        priority=Priority.HIGH,
        first_response_due=NOW + 30 * MIN,
        resolution_due=NOW + 70 * MIN,
        effort_minutes=45,
        previous_agent="b",
    )
    index = RealtimeIndex.build(p, agent_prices={"a": 2.5})
    d = index.assign(t)
    assert d.score is not None
    assert sum(r.value for r in d.reasons) == pytest.approx(d.score)
    for alt in d.alternatives:
        assert sum(r.value for r in alt.reasons) == pytest.approx(alt.score)
        assert alt.score >= d.score


WEIGHT_NAMES = set(RealtimeWeights.__dataclass_fields__)
DEADLINE_TERMS = {"first_response", "resolution"}  # each prices lateness and breach together


def test_each_score_term_is_named_as_the_weight_that_prices_it() -> None:
    names = [term.name for term in SCORE_TERMS]
    assert len(set(names)) == len(names)
    assert set(names) - DEADLINE_TERMS <= WEIGHT_NAMES
    # Every weight prices some term: priority scales the time terms, breach and lateness the
    # deadline terms.
    assert WEIGHT_NAMES - set(names) == {"priority", "breach", "lateness_per_minute"}


def _reasons_of(d: Decision, agent_id: str) -> dict[str, float]:
    if d.agent_id == agent_id:
        return {r.rule: r.value for r in d.reasons}
    [alt] = [a for a in d.alternatives if a.agent_id == agent_id]
    return {r.rule: r.value for r in alt.reasons}


@pytest.mark.parametrize(
    "name", [term.name for term in SCORE_TERMS if term.name not in DEADLINE_TERMS]
)
def test_a_terms_reason_is_named_and_valued_by_its_weight(name: str) -> None:
    # Agent "a" meets every term: in a meeting (wait), over-qualified, loaded, recently busy,
    # priced, the owner and previous agent, and the requester's agent.
    meeting = (Interval(NOW, NOW + 20 * MIN),)
    p = problem(
        agent("a", {"net": 4}, busy=meeting, open_tickets=1, recent_assignments=2),
        agent("b"),
    )
    t = ticket(owner_agent="a", previous_agent="a", requester="acme")

    def value(weights: RealtimeWeights) -> float:
        index = RealtimeIndex.build(
            p, weights, agent_prices={"a": 3.0}, requester_agents={"acme": "a"}
        )
        return _reasons_of(index.assign(t), "a")[name]

    base = value(RealtimeWeights())
    assert base != 0
    assert value(RealtimeWeights(**{name: 2 * getattr(RealtimeWeights(), name)})) == 2 * base
    assert value(RealtimeWeights(**{name: 0.0})) == 0


# ---------------------------------------------------------------------------- state
def test_commit_raises_the_load_so_the_next_identical_ticket_goes_elsewhere() -> None:
    index = RealtimeIndex.build(problem(agent("a", capacity=1), agent("b", capacity=1)))
    first = index.assign(ticket("t1"))
    assert first.agent_id == "a"
    assert index.assign(ticket("t1")).agent_id == "a"  # assign alone changes nothing
    index.commit(first)
    assert index.load_of("a") == (1, 1)
    second = index.assign(ticket("t2"))
    assert second.agent_id == "b"
    index.commit(second)
    third = index.assign(ticket("t3"))
    assert third.queued and "all at capacity (a 1/1, b 1/1)" in rule(third, "capacity")
    index.commit(third)  # a queued decision records nothing
    index.release("a")
    assert index.assign(ticket("t3")).agent_id == "a"


def test_commit_pushes_the_agents_next_free_time_back() -> None:
    index = RealtimeIndex.build(problem(agent("a", capacity=9)))
    d1 = index.assign(ticket("t1", effort_minutes=40))
    index.commit(d1)  # effort read back from the decision's expected start and end
    d2 = index.assign(ticket("t2", effort_minutes=20))
    assert d2.expected_start == NOW + 40 * MIN and d2.expected_end == NOW + 60 * MIN
    index.commit(d2, ticket("t2", effort_minutes=20))
    assert index.assign(ticket("t3")).expected_start == NOW + 60 * MIN


def test_commit_of_a_stale_decision_still_queues_behind_newer_work() -> None:
    index = RealtimeIndex.build(problem(agent("a", capacity=9)))
    d1 = index.assign(ticket("t1", effort_minutes=30))
    d2 = index.assign(ticket("t2", effort_minutes=10))  # made before d1 was committed
    index.commit(d1)
    index.commit(d2)
    assert index.assign(ticket("t3")).expected_start == NOW + 40 * MIN


def test_commit_of_a_decision_made_elsewhere_needs_the_ticket() -> None:
    index = RealtimeIndex.build(problem(agent("a", capacity=9)))
    manual = Decision("t1", "a", "core", None, reasons=())
    with pytest.raises(ProblemError, match="pass the ticket"):
        index.commit(manual)
    index.commit(manual, ticket("t1", effort_minutes=25))
    assert index.load_of("a") == (1, 9)
    assert index.assign(ticket("t2")).expected_start == NOW + 25 * MIN
    with pytest.raises(ProblemError, match="unknown agent 'zed'"):
        index.commit(Decision("t3", "zed", "core", None, reasons=()))


def test_weights_can_follow_the_batch_objective() -> None:
    objective = ObjectiveWeights(breach=300, expertise_waste=9, churn=7)
    w = RealtimeWeights.from_objective(objective, load=2.0)
    assert (w.breach, w.expertise_waste, w.continuity_owner, w.load) == (300.0, 9.0, 7.0, 2.0)
    assert w.priority_weight(Priority.URGENT) == 8.0


def test_with_assignment_returns_an_updated_copy() -> None:
    index = RealtimeIndex.build(problem(agent("a", capacity=1), agent("b", capacity=1)))
    after = index.with_assignment(ticket("t1"), "a")
    assert after.assign(ticket("t2")).agent_id == "b"
    assert index.assign(ticket("t2")).agent_id == "a"
    with pytest.raises(ProblemError, match="unknown agent 'zed'"):
        index.with_assignment(ticket("t1"), "zed")


def test_with_loads_returns_a_copy_deciding_like_a_fresh_build_with_those_loads() -> None:
    later = NOW + 95 * MIN
    loads = {f"a{i}": (i % 3, 20 * (i % 4)) for i in range(8)}

    def agents(held: dict[str, tuple[int, int]]) -> list[Agent]:
        return [
            agent(
                f"a{i}",
                {"net": 1 + i % 4},
                open_tickets=held.get(f"a{i}", (0, 0))[0],
                backlog_minutes=held.get(f"a{i}", (0, 0))[1],
            )
            for i in range(8)
        ]

    base = RealtimeIndex.build(problem(*agents({"a0": (2, 30)})))
    overlaid = base.with_loads(later, {**loads, "nobody": (9, 9)})  # unknown ids are ignored
    fresh = RealtimeIndex.build(problem(*agents(loads), now=later))
    assert base.load_of("a0") == (2, 3)  # the original is untouched
    assert overlaid.now == base.now == NOW
    for k in range(12):
        t = ticket(f"t{k}", {"net": 1 + k % 3}, effort_minutes=10 + 7 * k, priority=1 + k % 4)
        got, want = overlaid.assign(t, now=later), fresh.assign(t)
        assert (got.agent_id, got.expected_start) == (want.agent_id, want.expected_start)
        assert got.score == pytest.approx(want.score)
    assert overlaid.with_loads(later, {}).load_of("a1") == (0, 3)


def test_with_full_returns_a_copy_in_which_the_agent_takes_nothing() -> None:
    index = RealtimeIndex.build(problem(agent("a", open_tickets=1), agent("b", open_tickets=2)))
    assert index.assign(ticket()).agent_id == "a"
    full = index.with_full("a")
    assert full.load_of("a") == (3, 3) and index.load_of("a") == (1, 3)
    assert full.assign(ticket()).agent_id == "b"
    over = RealtimeIndex.build(problem(agent("a", capacity=1, open_tickets=1)))
    assert over.with_full("a").load_of("a") == (1, 1)
    with pytest.raises(ProblemError, match="unknown agent 'zed'"):
        index.with_full("zed")


def test_ties_break_by_agent_order_and_repeat_exactly() -> None:
    agents = [agent(f"a{i}") for i in range(7)]
    index = RealtimeIndex.build(problem(*reversed(agents)))
    d = index.assign(ticket(), top_k=4)
    assert d.agent_id == "a6"
    assert [a.agent_id for a in d.alternatives] == ["a5", "a4", "a3", "a2"]
    assert index.assign(ticket(), top_k=4) == d
    assert index.assign(ticket(), top_k=0).alternatives == ()


def test_top_k_alternatives_are_the_runners_up_in_order() -> None:
    agents = [agent(f"a{i}", capacity=10, open_tickets=i) for i in range(100)]
    d = RealtimeIndex.build(problem(*agents[::-1])).assign(ticket(), top_k=3)
    assert d.agent_id == "a0"
    assert [a.agent_id for a in d.alternatives] == ["a1", "a2", "a3"]
    assert [a.score for a in d.alternatives] == sorted(a.score for a in d.alternatives)


# ---------------------------------------------------------------------------- time
def test_backlog_is_worked_down_as_time_passes() -> None:
    index = RealtimeIndex.build(problem(agent("a", backlog_minutes=60)))
    assert index.assign(ticket()).expected_start == NOW + HOUR
    later = NOW + 90 * MIN
    d = index.assign(ticket(), now=later)
    assert d.expected_start == later
    index.advance(NOW + 30 * MIN)
    assert index.now == NOW + 30 * MIN
    assert index.assign(ticket()).expected_start == NOW + HOUR


def test_now_outside_the_index_window_is_refused() -> None:
    index = RealtimeIndex.build(problem(agent("a"), horizon_end=NOW + 8 * HOUR))
    with pytest.raises(ProblemError, match="before the index snapshot"):
        index.assign(ticket(), now=NOW - MIN)
    with pytest.raises(ProblemError, match="past the index horizon"):
        index.assign(ticket(), now=NOW + 8 * HOUR)
    with pytest.raises(ProblemError, match="timezone-aware"):
        index.assign(ticket(), now=datetime(2026, 3, 2, 9, 30))  # noqa: DTZ001
    with pytest.raises(ProblemError, match="top_k"):
        index.assign(ticket(), top_k=-1)


def local_shifts(zone: str, first: date, days: int, start_h: int = 9, hours: int = 8) -> tuple:
    tz = ZoneInfo(zone)
    out = []
    for k in range(days):
        d = first + timedelta(days=k)
        s = datetime(d.year, d.month, d.day, start_h, tzinfo=tz)
        out.append(Interval(s, s + timedelta(hours=hours)))
    return tuple(out)


@pytest.mark.parametrize(
    ("snapshot", "first_day", "on", "off"),
    [
        (  # Europe springs forward on 2026-03-29: 09:00 Berlin is 08:00 UTC before, 07:00 after.
            datetime(2026, 3, 27, 0, 0, tzinfo=UTC),
            date(2026, 3, 27),
            [(27, 8, 0), (27, 15, 59), (30, 7, 0), (30, 14, 59)],
            [(27, 7, 59), (27, 16, 0), (30, 6, 59), (30, 15, 0)],
        ),
        (  # Europe falls back on 2026-10-25: 09:00 Berlin is 07:00 UTC before, 08:00 after.
            datetime(2026, 10, 23, 0, 0, tzinfo=UTC),
            date(2026, 10, 23),
            [(23, 7, 0), (23, 14, 59), (26, 8, 0), (26, 15, 59)],
            [(23, 6, 59), (23, 15, 0), (26, 7, 59), (26, 16, 0)],
        ),
    ],
)
def test_berlin_shift_in_local_time_is_on_at_the_right_utc_moments_across_dst(
    snapshot: datetime, first_day: date, on: list, off: list
) -> None:
    berlin = agent(
        "berlin", shifts=local_shifts("Europe/Berlin", first_day, 5), timezone="Europe/Berlin"
    )
    index = RealtimeIndex.build(problem(berlin, now=snapshot))
    t = ticket(created_at=snapshot, effort_minutes=1)
    month = snapshot.month
    for day, hour, minute in on:
        moment = datetime(2026, month, day, hour, minute, tzinfo=UTC)
        assert index.assign(t, now=moment).agent_id == "berlin", moment
    for day, hour, minute in off:
        moment = datetime(2026, month, day, hour, minute, tzinfo=UTC)
        assert index.assign(t, now=moment).queued, moment


def test_agents_in_several_time_zones_cover_the_clock() -> None:
    snapshot = datetime(2026, 3, 2, 0, 0, tzinfo=UTC)
    day = date(2026, 3, 2)
    zones = {"tokyo": "Asia/Tokyo", "berlin": "Europe/Berlin", "newyork": "America/New_York"}
    agents = [
        agent(name, shifts=local_shifts(zone, day - timedelta(days=1), 3), timezone=zone)
        for name, zone in zones.items()
    ]
    index = RealtimeIndex.build(
        problem(*agents, now=snapshot, horizon_end=snapshot + 2 * 24 * HOUR)
    )
    t = ticket(created_at=snapshot, effort_minutes=10)
    expected = {
        1: "tokyo",  # 10:00 JST
        9: "berlin",  # 10:00 CET
        15: "berlin",  # 16:00 CET; New York (10:00 EST) also on shift, but later in the list
        17: "newyork",  # 12:00 EST
        23: None,  # 08:00 JST, 00:00 CET, 18:00 EST: nobody
    }
    for hour, who in expected.items():
        d = index.assign(t, now=snapshot + hour * HOUR)
        assert d.agent_id == who, hour
    d = index.assign(t, now=snapshot + 23 * HOUR)
    assert "next qualified agent on shift at 2026-03-03T00:00+00:00 (tokyo)" in rule(d, "on_shift")


# ---------------------------------------------------------------------------- properties
SKILLS = ("net", "billing", "dns", "lang:de")
SNAPSHOT = datetime(2026, 3, 28, 6, 0, tzinfo=UTC)  # a day before Europe's spring DST change


@st.composite
def orgs(draw: st.DrawFn) -> Problem:
    zones = ("Europe/Berlin", "America/New_York", "Asia/Tokyo", "UTC")
    agents = []
    for i in range(draw(st.integers(0, 8))):
        zone = draw(st.sampled_from(zones))
        tz = ZoneInfo(zone)
        local = SNAPSHOT.astimezone(tz)
        shifts = []
        for day in draw(st.sets(st.integers(-1, 2), max_size=4)):
            start = datetime(
                local.year, local.month, local.day, draw(st.integers(0, 20)), tzinfo=tz
            )
            # Days step in local time; the length is worked time, so add it in UTC (a shift
            # starting in the spring-forward gap would otherwise collapse to nothing).
            start = (start + timedelta(days=day)).astimezone(UTC)
            shifts.append(Interval(start, start + timedelta(hours=draw(st.integers(1, 12)))))
        busy = []
        if shifts and draw(st.booleans()):
            b = shifts[0].start + timedelta(minutes=draw(st.integers(0, 300)))
            busy.append(Interval(b, b + timedelta(minutes=draw(st.integers(5, 120)))))
        capacity = draw(st.integers(0, 5))
        agents.append(
            Agent(
                f"a{i}",
                "core",
                draw(st.dictionaries(st.sampled_from(SKILLS), st.integers(1, 5), max_size=4)),
                capacity=capacity,
                shifts=tuple(shifts),
                busy=tuple(busy),
                open_tickets=draw(st.integers(0, capacity)) if draw(st.booleans()) else 0,
                backlog_minutes=draw(st.integers(0, 180)),
                recent_assignments=draw(st.integers(0, 4)),
                timezone=zone,
                status=draw(st.sampled_from([AgentStatus.AVAILABLE] * 4 + list(AgentStatus))),
            )
        )
    return Problem(
        now=SNAPSHOT,
        agents=tuple(agents),
        tickets=(),
        skills=tuple(Skill(s) for s in SKILLS),
        teams=(Team("core"),),
        horizon_end=SNAPSHOT + timedelta(days=3),
    )


@st.composite
def tickets_for(draw: st.DrawFn, p: Problem, n: int, moment: datetime) -> list[Ticket]:
    out = []
    agent_ids = [a.id for a in p.agents]
    who = st.none() | st.sampled_from(agent_ids) if agent_ids else st.none()
    on = [a for a in p.agents if a.on_shift(moment)]
    for j in range(n):
        if on and draw(st.integers(0, 2)):
            # Something an agent on shift can do, so that assignments are common, not rare.
            donor = draw(st.sampled_from(on)).skills
            needs = {
                s: draw(st.integers(1, lvl)) for s, lvl in donor.items() if draw(st.booleans())
            }
        else:
            needs = draw(st.dictionaries(st.sampled_from(SKILLS), st.integers(1, 4), max_size=2))
        fr = SNAPSHOT + timedelta(minutes=draw(st.integers(0, 600)))
        out.append(
            Ticket(
                f"t{j}",
                "core",
                SNAPSHOT - HOUR,
                needs,
                priority=draw(st.sampled_from(list(Priority))),
                first_response_due=fr if draw(st.booleans()) else None,
                resolution_due=fr + timedelta(minutes=draw(st.integers(0, 900))),
                effort_minutes=draw(st.integers(1, 120)),
                owner_agent=draw(who),
                previous_agent=draw(who),
                requester=draw(st.sampled_from(("acme", "globex", None))),
            )
        )
    return out


@st.composite
def moments(draw: st.DrawFn, p: Problem) -> datetime:
    """Mostly a minute inside somebody's shift (where the interesting decisions are)."""
    horizon = p.horizon_minutes
    shifts = [
        s
        for a in p.agents
        if a.status is AgentStatus.AVAILABLE
        for s in a.shifts
        if s.end > p.now and s.start < p.horizon_end
    ]
    if shifts and draw(st.integers(0, 3)):
        s = draw(st.sampled_from(shifts))
        lo = max(0, int((s.start - p.now) / MIN))
        hi = min(horizon, int((s.end - p.now) / MIN)) - 1
        if lo <= hi:
            return p.now + draw(st.integers(lo, hi)) * MIN
    return p.now + draw(st.integers(0, horizon - 1)) * MIN


def fits_now(p: Problem, index: RealtimeIndex, a: int, t: Ticket, moment: datetime) -> bool:
    """Every hard rule, one agent at a time, from the problem and the index's load."""
    ag = p.agents[a]
    bank = bank_for(p)
    minute = int((moment - p.now) / MIN)
    worked = sum(max(0, min(e, minute) - s) for s, e in bank.windows_of(a))
    opened, capacity = index.load_of(ag.id)
    queue = int(index._queue_end[a])  # the backlog plus committed work
    return (
        ag.status is AgentStatus.AVAILABLE
        and ag.qualifies(t.required_skills)
        and ag.on_shift(moment)
        and opened < capacity
        and max(queue, worked) + t.effort_minutes <= int(bank.total[a])
    )


@given(data=st.data())
def test_property_choices_obey_every_hard_rule_and_match_the_naive_loop(
    data: st.DataObject,
) -> None:
    p = data.draw(orgs())
    moment = data.draw(moments(p))
    tks = data.draw(tickets_for(p, 4, moment))
    index = RealtimeIndex.build(p)
    for t in tks:
        d = index.assign(t, now=moment)
        fitting = [a.id for i, a in enumerate(p.agents) if fits_now(p, index, i, t, moment)]
        if d.agent_id is None:
            assert fitting == [], d.reasons
            assert d.team_id == t.team and d.reasons[-1].rule == "team_queue"
            assert d.reasons[0].rule in {
                "qualified",
                "available",
                "on_shift",
                "capacity",
                "working_time",
            }
        else:
            assert d.agent_id in fitting
            assert d.expected_start is not None and d.expected_start >= moment
            assert d.score == pytest.approx(sum(r.value for r in d.reasons))
            assert {a.agent_id for a in d.alternatives} <= set(fitting) - {d.agent_id}
        if t is tks[0]:
            # Before any commit the index is the problem itself: same choice as the naive loop.
            naive, costs = naive_assign(p, t, moment)
            assert (naive is None) == (d.agent_id is None)
            assert set(costs) == set(fitting)
            if naive is not None:
                assert d.score == pytest.approx(costs[naive])
                assert d.agent_id == naive
        index.commit(d, t)
    for a in p.agents:
        opened, capacity = index.load_of(a.id)
        assert opened <= max(capacity, a.open_tickets)
