"""The instance generator: deterministic, valid, realistic in the ways the solver relies on."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from benchmarks.instances import SIZES, generate
from scenarios.generate import InstanceSpec, generate_problem, spec_for
from solver.availability import bank_for
from solver.problem import Agent, AgentStatus, Problem, SkillKind


def _fingerprint(problem: Problem) -> tuple[object, ...]:
    return (
        problem.now,
        problem.horizon_end,
        problem.skills,
        problem.teams,
        tuple(
            (a.id, a.team, tuple(a.skills.items()), a.capacity, a.shifts, a.busy, a.open_tickets,
             a.backlog_minutes, a.recent_assignments, a.timezone, a.status)
            for a in problem.agents
        ),
        tuple(
            (t.id, t.team, t.created_at, tuple(t.required_skills.items()), t.priority,
             t.first_response_due, t.resolution_due, t.effort_minutes, t.owner_agent,
             t.previous_agent, t.requester)
            for t in problem.tickets
        ),
    )  # fmt: skip


def _working_agents(problem: Problem) -> list[Agent]:
    bank = bank_for(problem)
    return [
        a
        for i, a in enumerate(problem.agents)
        if a.status is AgentStatus.AVAILABLE and bank.total[i] > 0
    ]


def test_named_sizes_match_the_issue() -> None:
    assert (SIZES["S"].n_agents, SIZES["S"].n_tickets, SIZES["S"].n_skills) == (50, 500, 30)
    assert (SIZES["M"].n_agents, SIZES["M"].n_tickets, SIZES["M"].n_skills) == (200, 2000, 100)
    assert (SIZES["L"].n_agents, SIZES["L"].n_tickets, SIZES["L"].n_skills) == (1000, 10000, 300)
    p = generate("S", seed=0)
    assert (len(p.agents), len(p.tickets), len(p.skills)) == (50, 500, 30)


def test_same_seed_same_problem_and_other_seed_differs() -> None:
    a = generate("S", seed=5, n_tickets=120)
    b = generate("S", seed=5, n_tickets=120)
    c = generate("S", seed=6, n_tickets=120)
    assert _fingerprint(a) == _fingerprint(b)
    assert _fingerprint(a) != _fingerprint(c)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_every_ticket_is_coverable_in_a_non_tight_instance(seed: int) -> None:
    p = generate("demo", seed=seed)
    workers = _working_agents(p)
    for t in p.tickets:
        assert any(a.qualifies(t.required_skills) for a in workers), t.id


def test_tickets_need_one_to_three_skills_usually_a_language_and_a_tier() -> None:
    p = generate("S", seed=1)
    kinds = {s.id: s.kind for s in p.skills}
    counts = Counter(len(t.required_skills) for t in p.tickets)
    assert set(counts) <= {1, 2, 3}
    with_lang = sum(
        any(kinds[s] is SkillKind.LANGUAGE for s in t.required_skills) for t in p.tickets
    )
    with_tier = sum(any(kinds[s] is SkillKind.TIER for s in t.required_skills) for t in p.tickets)
    assert with_lang > 0.7 * len(p.tickets)
    assert with_tier > 0.7 * len(p.tickets)


def test_a_few_skills_are_scarce() -> None:
    p = generate("M", seed=2)
    holders = Counter(s for a in p.agents for s in a.skills)
    topic = [s.id for s in p.skills if s.kind is SkillKind.SKILL]
    counts = sorted(holders[s] for s in topic)
    # Zipf-like supply: the rarest topic skills have a handful of holders, the common ones dozens.
    assert counts[0] <= 3
    assert counts[-1] >= 10 * max(counts[0], 1)


def test_tight_instance_balances_slots_and_minutes_with_demand() -> None:
    p = generate("S", seed=3, tight=True)
    bank = bank_for(p)
    idx = [
        i for i, a in enumerate(p.agents) if a.status is AgentStatus.AVAILABLE and bank.total[i] > 0
    ]
    slots = sum(p.agents[i].capacity - p.agents[i].open_tickets for i in idx)
    supply = int(bank.total[idx].sum())
    demand = sum(t.effort_minutes for t in p.tickets) + sum(
        p.agents[i].backlog_minutes for i in idx
    )
    assert slots == len(p.tickets)
    assert demand == pytest.approx(supply, rel=0.03)
    loose = generate("S", seed=3)
    loose_bank = bank_for(loose)
    loose_demand = sum(t.effort_minutes for t in loose.tickets)
    assert loose_demand < 0.8 * int(loose_bank.total.sum())


def test_shifts_follow_local_time_across_the_dst_change() -> None:
    # Everybody on the weekend rota: the default horizon (Thursday to Sunday morning) then holds
    # Europe's switch to summer time on Sunday 29 March 2026.
    p = generate("demo", seed=0, weekend_share=1.0)
    berlin_tz = ZoneInfo("Europe/Berlin")
    berlin = [a for a in p.agents if a.timezone == "Europe/Berlin"]
    assert berlin
    offsets: set[timedelta | None] = set()
    for a in berlin:
        local = [s.start.astimezone(berlin_tz) for s in a.shifts]
        assert len({t.time() for t in local}) == 1  # the same local start every day...
        offsets |= {t.utcoffset() for t in local}
    # ...at UTC+1 before the change and UTC+2 after it, so an hour earlier in UTC on Sunday.
    assert offsets == {timedelta(hours=1), timedelta(hours=2)}


def test_deadlines_priorities_and_ages_are_plausible() -> None:
    p = generate("S", seed=4)
    assert all(t.created_at <= p.now for t in p.tickets)
    urgent = [t for t in p.tickets if t.priority == 4 and t.first_response_due is not None]
    assert urgent and all(
        t.first_response_due - t.created_at == timedelta(minutes=30) for t in urgent
    )
    past = sum(t.first_response_due is not None and t.first_response_due < p.now for t in p.tickets)
    assert 0 < past < 0.3 * len(p.tickets)  # a few already past due, most not
    assert sum(t.owner_agent is not None for t in p.tickets) > 0
    assert sum(t.previous_agent is not None for t in p.tickets) > 0
    efforts = np.array([t.effort_minutes for t in p.tickets])
    assert efforts.min() >= 1 and np.median(efforts) < efforts.mean()  # right-skewed


def test_overrides_now_and_spec() -> None:
    now = datetime(2026, 10, 23, 9, 0, tzinfo=UTC)
    p = generate("S", seed=0, now=now, n_agents=12, n_tickets=30, horizon_hours=48)
    assert p.now == now and p.horizon_end == now + timedelta(hours=48)
    assert len(p.agents) == 12 and len(p.tickets) == 30
    with pytest.raises(ValueError, match="unknown InstanceSpec"):
        spec_for("S", n_agent=3)
    with pytest.raises(ValueError, match="unknown size"):
        generate("XL")
    with pytest.raises(ValueError, match="timezone-aware"):
        generate_problem(InstanceSpec(), now=datetime(2026, 1, 1))  # noqa: DTZ001


@settings(max_examples=25)
@given(
    seed=st.integers(0, 2**32 - 1),
    n_agents=st.integers(1, 12),
    n_tickets=st.integers(0, 40),
    n_teams=st.integers(1, 3),
    n_languages=st.integers(1, 5),
    tight=st.booleans(),
)
def test_any_small_spec_gives_a_valid_coverable_deterministic_problem(
    seed: int, n_agents: int, n_tickets: int, n_teams: int, n_languages: int, tight: bool
) -> None:
    spec = InstanceSpec(
        n_agents=n_agents,
        n_tickets=n_tickets,
        n_skills=12,
        n_teams=min(n_teams, n_agents),
        n_languages=n_languages,
        tight=tight,
    )
    p = generate_problem(spec, seed=seed)  # Problem validates every field on construction
    assert (len(p.agents), len(p.tickets)) == (n_agents, n_tickets)
    assert _fingerprint(p) == _fingerprint(generate_problem(spec, seed=seed))
    workers = _working_agents(p)
    if workers:
        for t in p.tickets:
            assert 1 <= len(t.required_skills) <= 3
            assert any(a.qualifies(t.required_skills) for a in workers), t.id
