"""Real-time assignment on a larger random organisation (the enterprise generator of
``benchmarks.realtime``, scaled down): the pruned path of ``RealtimeIndex.assign`` (it prices
exactly only the candidates that can still win) decides exactly like scoring every candidate,
and both agree with the naive per-agent loop."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

import solver.realtime as realtime
from benchmarks.realtime import generate_enterprise, naive_assign, requester_map
from solver.availability import bank_for
from solver.plan import Decision
from solver.problem import Agent, Interval, Priority, Problem, Team, TeamScope, Ticket
from solver.realtime import RealtimeIndex, RealtimeWeights
from tests.solver.test_realtime import moments, orgs, tickets_for

EVERYONE = 10**9  # a pruning threshold no candidate count reaches: score everyone


@pytest.fixture(scope="module")
def org() -> Problem:
    return generate_enterprise(seed=3, n_agents=700, n_skills=60, n_tickets=400)


def decide(
    monkeypatch: pytest.MonkeyPatch,
    index: RealtimeIndex,
    ticket: Ticket,
    prune_at: int,
    **kw: object,
) -> Decision:
    monkeypatch.setattr(realtime, "_PRUNE_AT", prune_at)
    return index.assign(ticket, **kw)  # type: ignore[arg-type]


def test_the_instance_is_big_enough_to_prune(org: Problem) -> None:
    index = RealtimeIndex.build(org)
    counts = []
    for t in org.tickets[:100]:
        d = index.assign(t)
        counts += [int(r.detail.split()[2]) for r in d.reasons if r.rule == "candidates"]
    # The tests below prune at every size (threshold 0); pruning to 16 often matters here.
    assert sum(c > 16 for c in counts) >= 20 and max(counts) > 150


@pytest.mark.parametrize("top_k", [0, 1, 3, 12])
def test_pruned_and_full_scoring_give_identical_decisions(
    org: Problem, monkeypatch: pytest.MonkeyPatch, top_k: int
) -> None:
    index = RealtimeIndex.build(org)
    later = org.now + timedelta(minutes=97)  # meetings and breaks: start bounds not tight
    for t in org.tickets[:150]:
        for now in (None, later):
            full = decide(monkeypatch, index, t, EVERYONE, now=now, top_k=top_k)
            pruned = decide(monkeypatch, index, t, 0, now=now, top_k=top_k)
            assert pruned == full, t.id


def test_pruned_scoring_matches_the_naive_loop(
    org: Problem, monkeypatch: pytest.MonkeyPatch
) -> None:
    bank = bank_for(org)
    requesters = requester_map(org)
    index = RealtimeIndex.build(org, bank=bank)
    assigned = 0
    for t in org.tickets[:200]:
        d = decide(monkeypatch, index, t, 0)
        naive, costs = naive_assign(org, t, bank=bank, requesters=requesters)
        assert d.agent_id == naive, t.id
        if naive is not None:
            assigned += 1
            assert d.score == pytest.approx(costs[naive], abs=1e-9)
            assert [a.agent_id for a in d.alternatives] == sorted(
                (a for a in costs if a != naive), key=lambda a: (costs[a], org.agent_index[a])
            )[:3]
    assert assigned >= 100


def test_identical_through_commits_scopes_prices_and_weights(
    org: Problem, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A committed stream (queues grow past breaks, agents fill up), team scopes, capacity
    prices of both signs and other weights: both paths make every decision alike."""
    scopes = (TeamScope.TEAM_ONLY, TeamScope.BORROW, None)
    scoped = replace(
        org, teams=tuple(Team(t.id, scope=scopes[i % 3]) for i, t in enumerate(org.teams))
    )
    weights = RealtimeWeights(wait_per_minute=0.5, load=3.0, fairness=0.0, breach=400.0)
    prices = {a.id: ((i * 37) % 11 - 5) / 2 for i, a in enumerate(org.agents)}
    full = RealtimeIndex.build(scoped, weights, agent_prices=prices)
    pruned = full.copy()
    later = org.now + timedelta(hours=3)
    full.advance(later)
    pruned.advance(later)
    for t in org.tickets:
        a = decide(monkeypatch, full, t, EVERYONE)
        b = decide(monkeypatch, pruned, t, 0)
        assert b == a, t.id
        full.commit(a, t)
        pruned.commit(b, t)


def _floor(n: int, meeting: int) -> Problem:
    """``n`` agents alike but for their recent assignments; the first ``meeting`` are in a
    two-hour meeting right now and have had fewer recent assignments."""
    now = datetime(2026, 3, 3, 9, 0, tzinfo=UTC)
    shift = (Interval(now - timedelta(hours=1), now + timedelta(hours=8)),)
    agents = tuple(
        Agent(
            f"a{i:03d}",
            "core",
            {"net": 3},
            capacity=4,
            shifts=shift,
            busy=(Interval(now, now + timedelta(hours=2)),) if i < meeting else (),
            recent_assignments=0 if i < meeting else 5,
        )
        for i in range(n)
    )
    return Problem(now=now, agents=agents, tickets=(), horizon_end=now + timedelta(days=1))


def _urgent(p: Problem) -> Ticket:
    return Ticket(
        "t1",
        "core",
        p.now,
        {"net": 2},
        priority=Priority.URGENT,
        first_response_due=p.now + timedelta(minutes=10),
    )


def test_when_the_cheapest_bounds_mislead_everyone_who_might_win_is_priced(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The agents in a meeting look cheapest before the calendar is asked (fewer recent
    assignments, start 'now' at best) but breach the first response: the free agents, whose
    bounds are higher, are priced too, and one of them wins."""
    p = _floor(120, meeting=100)
    index = RealtimeIndex.build(p)
    pruned = decide(monkeypatch, index, _urgent(p), 0)
    assert pruned == decide(monkeypatch, index, _urgent(p), EVERYONE)
    assert pruned.agent_id == "a100"
    assert [a.agent_id for a in pruned.alternatives] == ["a101", "a102", "a103"]
    assert "best of 120 qualified agents" in " ".join(r.detail for r in pruned.reasons)


def test_ties_among_many_equal_agents_still_go_to_the_first(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    p = _floor(200, meeting=0)
    index = RealtimeIndex.build(p)
    pruned = decide(monkeypatch, index, _urgent(p), 0, top_k=5)
    assert pruned == decide(monkeypatch, index, _urgent(p), EVERYONE, top_k=5)
    assert pruned.agent_id == "a000"
    assert [a.agent_id for a in pruned.alternatives] == [f"a{i:03d}" for i in range(1, 6)]


@given(data=st.data())
def test_property_pruned_and_full_scoring_decide_alike(data: st.DataObject) -> None:
    """The property test's small organisations, every ticket pruned (threshold 0) and not,
    through commits: the same decisions."""
    p = data.draw(orgs())
    moment = data.draw(moments(p))
    tks = data.draw(tickets_for(p, 4, moment))
    top_k = data.draw(st.integers(0, 4))
    full = RealtimeIndex.build(p)
    pruned = full.copy()
    with pytest.MonkeyPatch.context() as mp:
        for t in tks:
            a = decide(mp, full, t, EVERYONE, now=moment, top_k=top_k)
            b = decide(mp, pruned, t, 0, now=moment, top_k=top_k)
            assert b == a
            full.commit(a, t)
            pruned.commit(b, t)
