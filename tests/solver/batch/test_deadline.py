"""A deadline that holds: whatever time is left, the plan is valid and never worse than the seed.

The deadline is given as an absolute ``perf_counter`` value, so a test can hand the optimizer
no time at all (a deadline already past) or a few milliseconds, which ``time_limit_s`` (> 0)
alone cannot express. The greedy fallback for who-takes-what runs only when the exact flow's
predicted time does not fit, which on these small queues means forcing it (``force_greedy``).
"""

from __future__ import annotations

import time
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import solver.batch.solve as solve_mod
from solver.batch import BatchParams, optimize
from solver.batch.data import build
from solver.batch.lns import improve
from solver.batch.localsearch import LocalSearch
from solver.batch.seed import greedy_assign, list_schedule
from solver.batch.state import State
from solver.objective import ObjectiveWeights
from solver.problem import Agent, Problem, Ticket
from solver.validation import check_plan, evaluate
from tests.solver.batch.test_factories import random_problem

PARAMS = BatchParams(time_limit_s=5.0, neighbourhood_time_s=0.05, neighbourhood_dtime=0.02)


def _with_channels(p: Problem, seed: int) -> Problem:
    """``p`` with some agents capping chat and a third of the tickets on chat."""
    rng = np.random.default_rng(seed)
    agents = tuple(
        Agent(
            id=a.id,
            team=a.team,
            skills=a.skills,
            capacity=a.capacity,
            shifts=a.shifts,
            busy=a.busy,
            open_tickets=a.open_tickets,
            backlog_minutes=a.backlog_minutes,
            recent_assignments=a.recent_assignments,
            timezone=a.timezone,
            status=a.status,
            channel_capacity={"chat": int(rng.integers(0, 3))} if rng.random() < 0.5 else {},
        )
        for a in p.agents
    )
    tickets = tuple(
        Ticket(
            id=t.id,
            team=t.team,
            created_at=t.created_at,
            required_skills=t.required_skills,
            priority=t.priority,
            first_response_due=t.first_response_due,
            resolution_due=t.resolution_due,
            effort_minutes=t.effort_minutes,
            owner_agent=t.owner_agent,
            previous_agent=t.previous_agent,
            channel="chat" if rng.random() < 0.35 else "email",
        )
        for t in p.tickets
    )
    return Problem(
        now=p.now,
        agents=agents,
        tickets=tickets,
        skills=p.skills,
        teams=p.teams,
        horizon_end=p.horizon_end,
    )


@settings(max_examples=30, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    tight=st.booleans(),
    channels=st.booleans(),
    force_greedy=st.booleans(),
    left_ms=st.sampled_from([-1000.0, 0.0, 0.5, 2.0, 10.0, 40.0]),
)
def test_a_plan_returned_at_any_deadline_is_valid_and_never_worse_than_the_seed(
    seed: int, tight: bool, channels: bool, force_greedy: bool, left_ms: float
) -> None:
    p = random_problem(seed, n_agents=6, n_tickets=30, tight=tight)
    if channels:
        p = _with_channels(p, seed)
    with pytest.MonkeyPatch.context() as mp:
        if force_greedy:
            mp.setattr(solve_mod, "_FLOW_ALWAYS_SECONDS", -1.0)
            mp.setattr(solve_mod, "_FLOW_SECONDS_BASE", 1e9)
        plan = optimize(p, PARAMS, deadline=time.perf_counter() + left_ms / 1000)
    assert check_plan(p, plan) == []
    objective = evaluate(p, plan, PARAMS.weights).objective
    assert plan.stats.objective == objective
    assert objective <= plan.stats.phases["seed_objective"]
    if force_greedy:
        assert plan.stats.bound is None  # no flow, no proven bound: no gap is reported
        assert any("greedy proposal rounds" in n for n in plan.stats.notes)
    else:
        # The flow is always worth running on a queue this small: the seed is the flow's, and
        # its optimum is the bound. (The seed's objective itself may differ from an unhurried
        # run's: the churn guard reverts worthless moves only while time is left.)
        unbounded = optimize(p, BatchParams(use_sequencing=False))
        assert plan.stats.bound is not None
        assert plan.stats.bound == unbounded.stats.bound
        assert not any("greedy proposal rounds" in n for n in plan.stats.notes)


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 10_000), st.booleans(), st.booleans())
def test_greedy_assign_keeps_every_hard_rule(seed: int, tight: bool, channels: bool) -> None:
    p = random_problem(seed, n_agents=6, n_tickets=40, tight=tight)
    if channels:
        p = _with_channels(p, seed)
    data = build(p, ObjectiveWeights())
    agent_of, _ = greedy_assign(data)
    held = agent_of >= 0
    for a in range(data.n_agents):
        mine = np.flatnonzero(agent_of == a)
        if len(mine):
            assert data.eligible[a] and len(mine) <= data.slots[a]
            assert data.backlog[a] + data.effort[mine].sum() <= data.total[a]
            assert data.channel_ok(a, mine)
    # Seated only along qualified pairs.
    keys = agent_of[held] + np.flatnonzero(held) * data.n_agents
    assert np.isin(keys, data.pair_key).all()


def test_greedy_assign_runs_one_round_past_its_deadline() -> None:
    """A past deadline still seats each proposed-to agent's best proposal (one round)."""
    data = build(random_problem(1, n_agents=6, n_tickets=40), ObjectiveWeights())
    agent_of, rounds = greedy_assign(data, deadline=time.perf_counter() - 1.0)
    full, all_rounds = greedy_assign(data)
    assert rounds == 1 and all_rounds > 1
    assert 0 < int((agent_of >= 0).sum()) < int((full >= 0).sum())


def test_improve_with_no_time_returns_the_seed_untouched() -> None:
    p = random_problem(4, n_agents=6, n_tickets=40, tight=True)
    data = build(p, ObjectiveWeights())
    seqs, _ = list_schedule(data, greedy_assign(data)[0])
    result = improve(data, seqs, PARAMS, deadline=time.perf_counter() - 1.0)
    assert result.sequences == seqs
    assert result.tried == 0 and result.local_moves == 0
    assert result.cost == State(data, seqs).total()


def test_the_local_search_builds_nothing_per_pair_up_front() -> None:
    """Candidates are sorted per ticket on first use, never for every pair at once."""
    p = random_problem(2, n_agents=8, n_tickets=40, tight=True)
    data = build(p, ObjectiveWeights())
    seqs, _ = list_schedule(data, greedy_assign(data)[0])
    local = LocalSearch(data, State(data, seqs))
    assert local._cands == {}
    t = int(data.pair_ticket[0])
    rows = np.flatnonzero(data.pair_ticket == t)
    cost = data.pair_cost[rows]
    want = data.pair_agent[rows][np.lexsort((data.pair_agent[rows], cost))][: local.candidates + 1]
    assert local._cand_agents(t).tolist() == want.tolist()
    a = int(data.pair_agent[rows[0]])
    assert local._st(t, a) == int(data.pair_static[rows[0]])
    others = [b for b in range(data.n_agents) if b not in data.pair_agent[rows].tolist()]
    for b in others:
        assert local._st(t, b) == int(np.iinfo(np.int64).max // 4)
    assert local._static([t, t], a).tolist() == [local._st(t, a)] * 2


def test_a_deadline_already_past_still_returns_the_seed_plan_promptly() -> None:
    p = random_problem(9, n_agents=8, n_tickets=60, tight=True)
    started = time.perf_counter()
    plan = optimize(p, BatchParams(time_limit_s=30.0), deadline=started - 5.0)
    assert time.perf_counter() - started < 5.0
    assert check_plan(p, plan) == []
    assert plan.stats.objective == plan.stats.phases["seed_objective"]
    assert any("no time left" in n for n in plan.stats.notes)


def test_with_no_time_left_the_churn_guard_holds_only_a_budget() -> None:
    """Pricing the seed's moves costs time: past the deadline the guard runs only to hold a
    move budget the caller set (``max_moves``), and the plan says which happened."""
    p = random_problem(5, n_agents=6, n_tickets=30, tight=True)
    past = time.perf_counter() - 1.0
    plan = optimize(p, PARAMS, deadline=past)
    assert check_plan(p, plan) == []
    assert any("no time left to price the moves" in n for n in plan.stats.notes)
    budgeted = optimize(p, replace(PARAMS, max_moves=0), deadline=past)
    assert check_plan(p, budgeted) == []
    assert any("budget 0 move(s)" in n for n in budgeted.stats.notes)
