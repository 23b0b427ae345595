"""Channels and per-channel capacity: the real-time path and the batch optimizer alike.

An agent's ``channel_capacity`` caps how many tickets of a channel they hold at once, within
their total ``capacity``; a channel they do not cap is limited by the total only.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings

from solver.batch import optimize
from solver.batch.params import BatchParams
from solver.errors import ProblemError
from solver.plan import Plan
from solver.policies import POLICIES, PolicyParams
from solver.problem import Agent, Interval, Problem, Ticket
from solver.realtime import RealtimeIndex
from solver.validation import check_plan
from tests.strategies import problems

NOW = datetime(2026, 5, 4, 8, 0, tzinfo=UTC)
SHIFT = Interval(NOW, NOW + timedelta(hours=8))


def agent(aid: str, capacity: int = 10, **kw: object) -> Agent:
    return Agent(aid, "core", capacity=capacity, shifts=(SHIFT,), **kw)  # type: ignore[arg-type]


def ticket(tid: str, channel: str = "email", **kw: object) -> Ticket:
    return Ticket(tid, "core", NOW, channel=channel, effort_minutes=10, **kw)  # type: ignore[arg-type]


def _over_cap(problem: Problem, new: dict[str, Counter[str]]) -> list[str]:
    """Every (agent, channel) whose held + new exceeds the agent's cap of it."""
    out = []
    for a in problem.agents:
        for channel, n in new.get(a.id, Counter()).items():
            cap = a.channel_capacity.get(channel)
            if cap is not None and a.channel_open.get(channel, 0) + n > cap:
                out.append(f"{a.id}:{channel}")
            if a.open_tickets + sum(new[a.id].values()) > a.capacity:
                out.append(f"{a.id}:total")
    return out


def _plan_counts(problem: Problem, plan: Plan) -> dict[str, Counter[str]]:
    new: dict[str, Counter[str]] = {}
    for a in plan.assignments:
        new.setdefault(a.agent_id, Counter())[problem.ticket(a.ticket_id).channel] += 1
    return new


# ---------------------------------------------------------------------------- the types
def test_ticket_channel_defaults_to_email_and_is_checked() -> None:
    assert Ticket("t", "core", NOW).channel == "email"
    with pytest.raises(ProblemError) as err:
        Ticket("t", "core", NOW, channel="")
    assert err.value.field == "channel"


def test_channel_capacity_counts_must_be_non_negative_integers() -> None:
    with pytest.raises(ProblemError) as err:
        agent("a", channel_capacity={"chat": -1})
    assert err.value.field == "channel_capacity.chat"
    with pytest.raises(ProblemError) as err:
        agent("a", channel_open={"chat": "2"})
    assert err.value.field == "channel_open.chat"
    a = agent("a", channel_capacity={"chat": 2}, channel_open={"chat": 1})
    assert a.channel_slots("chat") == 1 and a.channel_slots("email") is None


# ---------------------------------------------------------------------------- real time
def test_realtime_skips_an_agent_at_their_chat_capacity_but_not_for_email() -> None:
    p = Problem(
        now=NOW,
        agents=(
            agent("busy", channel_capacity={"chat": 2}, channel_open={"chat": 2}, open_tickets=2),
            agent("free", open_tickets=5),
        ),
        tickets=(),
    )
    index = RealtimeIndex.build(p)
    assert index.assign(ticket("c", "chat")).agent_id == "free"
    assert index.assign(ticket("e", "email")).agent_id == "busy"  # lighter total load


def test_realtime_queues_with_a_channel_capacity_reason() -> None:
    p = Problem(
        now=NOW,
        agents=(agent("a", channel_capacity={"chat": 1}, channel_open={"chat": 1}),),
        tickets=(),
    )
    d = RealtimeIndex.build(p).assign(ticket("c", "chat"))
    assert d.agent_id is None
    assert d.reasons[0].rule == "channel_capacity"
    assert d.reasons[0].detail == (
        "1 qualified agent on shift with capacity, all at their chat capacity (a 1/1)"
    )


def test_commit_release_and_loads_count_per_channel() -> None:
    p = Problem(now=NOW, agents=(agent("a", channel_capacity={"chat": 2}),), tickets=())
    index = RealtimeIndex.build(p)
    for i in range(2):
        t = ticket(f"c{i}", "chat")
        d = index.assign(t)
        assert d.agent_id == "a"
        index.commit(d, t)
    assert index.channel_load_of("a", "chat") == (2, 2)
    assert index.assign(ticket("c9", "chat")).agent_id is None
    index.release("a", channel="chat")
    assert index.assign(ticket("c9", "chat")).agent_id == "a"
    loaded = index.with_loads(NOW, {"a": (2, 20)}, {"a": {"chat": 2}})
    assert loaded.assign(ticket("c9", "chat")).agent_id is None
    assert loaded.with_loads(NOW, {"a": (2, 20)}).assign(ticket("c9", "chat")).agent_id == "a"
    # a copy with an assignment counts its channel too
    other = index.with_assignment(ticket("c8", "chat"), "a")
    assert other.channel_load_of("a", "chat") == (2, 2)
    assert index.channel_load_of("a", "chat") == (1, 2)


@settings(max_examples=60, deadline=None)
@given(problems())
def test_realtime_never_exceeds_a_channel_capacity(problem: Problem) -> None:
    """Tickets assigned one after another, each committed: no agent ever passes a cap."""
    index = RealtimeIndex.build(problem)
    new: dict[str, Counter[str]] = {}
    for t in sorted(problem.tickets, key=lambda t: t.id):
        d = index.assign(t)
        if d.agent_id is None:
            continue
        index.commit(d, t)
        new.setdefault(d.agent_id, Counter())[t.channel] += 1
        assert _over_cap(problem, new) == [], d


# ---------------------------------------------------------------------------- batch
def test_optimizer_honours_a_chat_cap_the_cheapest_plan_would_break() -> None:
    """Everyone would rather go to the expert; their chat cap of 1 sends the rest elsewhere."""
    expert = agent("expert", skills={"net": 3}, channel_capacity={"chat": 1})
    novice = agent("novice", skills={"net": 5}, capacity=10)
    tickets = tuple(ticket(f"c{i}", "chat", required_skills={"net": 3}) for i in range(4))
    emails = tuple(ticket(f"e{i}", "email", required_skills={"net": 3}) for i in range(2))
    p = Problem(now=NOW, agents=(expert, novice), tickets=tickets + emails)
    plan = optimize(p, BatchParams(time_limit_s=2.0, seed=1))
    assert check_plan(p, plan) == []
    counts = _plan_counts(p, plan)
    assert counts["expert"]["chat"] <= 1
    assert sum(counts["novice"].values()) + sum(counts["expert"].values()) == 6


@settings(max_examples=40, deadline=None)
@given(problems())
def test_no_plan_of_any_policy_exceeds_a_channel_capacity(problem: Problem) -> None:
    for name, policy in POLICIES.items():
        plan = policy(problem, PolicyParams(time_limit_s=0.5, seed=3))
        assert _over_cap(problem, _plan_counts(problem, plan)) == [], name
        assert check_plan(problem, plan) == [], name


@settings(max_examples=15, deadline=None)
@given(problems(max_agents=4, max_tickets=20))
def test_optimizer_with_neighbourhoods_never_exceeds_a_channel_capacity(problem: Problem) -> None:
    plan = optimize(problem, BatchParams(time_limit_s=1.0, seed=5))
    assert _over_cap(problem, _plan_counts(problem, plan)) == []
    assert check_plan(problem, plan) == []
