"""Who takes what: the min-cost flow is optimal, its cost model exact, its optimum a bound."""

from __future__ import annotations

import itertools
from dataclasses import replace

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from ortools.graph.python import max_flow
from scipy.optimize import linprog

from solver.batch.costs import total_cost
from solver.batch.data import BatchData, build
from solver.batch.flow import components, solve_flow
from solver.batch.repair import repair_minutes, seat_by_ejection, ticket_pair_ptr
from solver.batch.seed import list_schedule
from solver.objective import ObjectiveWeights
from solver.plan import Plan, SolveStats, SolveStatus, TeamQueued
from solver.policies import POLICIES, PolicyParams
from solver.problem import Problem
from solver.schedule import finalize_plan
from solver.validation import check_plan, evaluate
from tests.solver.batch.test_factories import random_problem

W = ObjectiveWeights()


def flow_model_cost(data, agent_of) -> int:  # type: ignore[no-untyped-def]
    """The flow's own cost of an assignment: pair costs, queue costs and convex load."""
    cost = 0
    for t, a in enumerate(agent_of):
        if a < 0:
            cost += int(data.queue_cost[t])
        else:
            rows = np.flatnonzero((data.pair_ticket == t) & (data.pair_agent == a))
            cost += int(data.pair_cost[rows[0]])
    counts = np.bincount([a for a in agent_of if a >= 0], minlength=data.n_agents)
    return cost + sum(data.load_cost(a, int(n)) for a, n in enumerate(counts))


@settings(max_examples=15)
@given(st.integers(0, 10_000))
def test_flow_matches_brute_force_on_tiny_queues(seed: int) -> None:
    problem = random_problem(seed, n_agents=3, n_tickets=5, n_skills=3)
    data = build(problem, W)
    flow = solve_flow(data)
    options = [
        [-1, *data.pair_agent[data.pair_ticket == t].tolist()] for t in range(data.n_tickets)
    ]
    best = None
    for combo in itertools.product(*options):
        counts = np.bincount([a for a in combo if a >= 0], minlength=data.n_agents)
        if (counts > np.where(data.eligible, data.slots, 0)).any():
            continue
        c = flow_model_cost(data, combo)
        best = c if best is None else min(best, c)
    assert flow.cost == best
    assert flow_model_cost(data, flow.agent_of) == flow.cost


def test_flow_matches_the_lp_optimum() -> None:
    """Gap 0 against scipy's LP of the same transportation problem (convex load as pieces)."""
    problem = random_problem(11, n_agents=8, n_tickets=40, n_skills=4, tight=True)
    data = build(problem, W)
    flow = solve_flow(data)
    n_p, n_t = len(data.pair_ticket), data.n_tickets
    slot_agent = [a for a in range(data.n_agents) if data.eligible[a] for _ in range(data.slots[a])]
    slot_k = []
    for a in range(data.n_agents):
        if data.eligible[a]:
            slot_k += list(range(1, int(data.slots[a]) + 1))
    n_s = len(slot_agent)
    # variables: pair flows, queue flows, slot flows
    c = np.concatenate(
        (
            data.pair_cost,
            data.queue_cost,
            [
                data.load_cost(a, k) - data.load_cost(a, k - 1)
                for a, k in zip(slot_agent, slot_k, strict=True)
            ],
        )
    ).astype(float)
    a_eq = np.zeros((n_t + data.n_agents, n_p + n_t + n_s))
    for p, t in enumerate(data.pair_ticket):
        a_eq[t, p] = 1
        a_eq[n_t + data.pair_agent[p], p] = 1
    for t in range(n_t):
        a_eq[t, n_p + t] = 1
    for s, a in enumerate(slot_agent):
        a_eq[n_t + a, n_p + n_t + s] = -1
    b_eq = np.concatenate((np.ones(n_t), np.zeros(data.n_agents)))
    lp = linprog(c, A_eq=a_eq, b_eq=b_eq, bounds=(0, 1), method="highs")
    assert lp.status == 0
    assert flow.cost == round(lp.fun)


@settings(max_examples=10)
@given(st.integers(0, 10_000), st.booleans())
def test_the_flow_optimum_bounds_every_valid_plan(seed: int, tight: bool) -> None:
    problem = random_problem(seed, n_agents=6, n_tickets=25, tight=tight)
    data = build(problem, W)
    bound = solve_flow(data).cost
    for name in ("least-loaded", "round-robin", "first-qualified"):
        plan = POLICIES[name](problem, PolicyParams(time_limit_s=1.0, seed=0))
        assert check_plan(problem, plan) == []
        assert bound <= evaluate(problem, plan).objective
    everyone_queued = Plan(
        (),
        tuple(TeamQueued(t.id, t.team) for t in problem.tickets),
        SolveStats("none", SolveStatus.FEASIBLE, 0.0),
    )
    assert bound <= evaluate(problem, everyone_queued).objective


@settings(max_examples=20)
@given(st.integers(0, 10_000), st.integers(0, 1000))
def test_internal_pricing_equals_evaluate(seed: int, shuffle: int) -> None:
    """The incremental cost mirror agrees with validation.evaluate on arbitrary orders."""
    problem = random_problem(seed, n_agents=5, n_tickets=30, n_skills=4)
    data = build(problem, W)
    rng = np.random.default_rng(shuffle)
    seqs: dict[int, list[int]] = {}
    for t in range(data.n_tickets):
        cands = data.pair_agent[data.pair_ticket == t]
        if len(cands) and rng.random() < 0.8:
            seqs.setdefault(int(rng.choice(cands)), []).append(t)
    for seq in seqs.values():
        rng.shuffle(seq)
    plan = finalize_plan(
        problem,
        {problem.agents[a].id: [problem.tickets[t].id for t in s] for a, s in seqs.items()},
        {t.id: () for i, t in enumerate(problem.tickets) if not any(i in s for s in seqs.values())},
        policy="test",
        wall_seconds=0.0,
    )
    assert total_cost(data, seqs) == evaluate(problem, plan).objective


def test_repair_restores_working_minutes() -> None:
    problem = random_problem(4, n_agents=6, n_tickets=60, tight=True, days=1)
    data = build(problem, W)
    agent_of, moved = repair_minutes(data, solve_flow(data).agent_of)
    assert moved > 0  # a one-day horizon with tight slots overflows minutes
    work = data.backlog + np.bincount(
        agent_of[agent_of >= 0], weights=data.effort[agent_of >= 0], minlength=data.n_agents
    )
    assert (
        work[np.bincount(agent_of[agent_of >= 0], minlength=data.n_agents) > 0]
        <= data.total[np.bincount(agent_of[agent_of >= 0], minlength=data.n_agents) > 0]
    ).all()
    counts = np.bincount(agent_of[agent_of >= 0], minlength=data.n_agents)
    assert (counts <= data.slots).all()
    seqs, _ = list_schedule(data, agent_of)
    assert set(seqs) <= set(np.flatnonzero(data.eligible).tolist())


def _flow_objective(data: BatchData, agent_of: np.ndarray) -> int:
    """What the flow minimizes: pair costs, load marginals and queue costs of ``agent_of``."""
    seated = np.flatnonzero(agent_of >= 0)
    key = seated * data.n_agents + agent_of[seated]
    pair = int(data.pair_cost[np.searchsorted(data.pair_key, key)].sum())
    count = np.bincount(agent_of[seated], minlength=data.n_agents)
    o = data.open_tickets
    load = int((data.weights.load * ((o + count) ** 2 - o * o)).sum())
    return pair + load + int(data.queue_cost[agent_of < 0].sum())


def _valid(data: BatchData, agent_of: np.ndarray) -> None:
    seated = np.flatnonzero(agent_of >= 0)
    key = seated * data.n_agents + agent_of[seated]
    idx = np.searchsorted(data.pair_key, key)
    assert (data.pair_key[np.minimum(idx, len(data.pair_key) - 1)] == key).all()  # qualified
    count = np.bincount(agent_of[seated], minlength=data.n_agents)
    assert (count <= np.where(data.eligible, data.slots, 0)).all()
    work = data.backlog + np.bincount(
        agent_of[seated], weights=data.effort[seated], minlength=data.n_agents
    )
    assert (work[count > 0] <= data.total[count > 0]).all()
    if data.channels:
        capped = seated[data.chan_of[seated] >= 0]
        held = np.zeros_like(data.chan_slots)
        np.add.at(held, (data.chan_of[capped], agent_of[capped]), 1)
        assert (held <= data.chan_slots).all()


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 10_000), st.booleans(), st.floats(0.1, 0.6))
def test_ejection_seats_queued_tickets_validly_and_lowers_the_flow_objective(
    seed: int, chat: bool, share: float
) -> None:
    """Seating a queued ticket by moving one ticket out of the way keeps every hard rule,
    never moves a ticket away from its owner, and each exchange lowers what the flow prices."""
    problem = random_problem(seed, n_agents=8, n_tickets=60, tight=True, days=1)
    if chat:
        problem = with_chat_caps(problem, seed)
    rng = np.random.default_rng(seed)
    owners = [a.id for a in problem.agents]
    problem = replace(
        problem,
        tickets=tuple(
            replace(t, owner_agent=owners[int(rng.integers(len(owners)))])
            if rng.random() < 0.3
            else t
            for t in problem.tickets
        ),
    )
    data = build(problem, W)
    agent_of, _ = repair_minutes(data, solve_flow(data).agent_of)
    seated = np.flatnonzero(agent_of >= 0)
    out = rng.choice(seated, size=int(len(seated) * share), replace=False)
    agent_of[out] = -1
    before = agent_of.copy()
    queued = np.flatnonzero(agent_of < 0)
    n = seat_by_ejection(data, agent_of, queued, ticket_pair_ptr(data))
    _valid(data, agent_of)
    assert int((agent_of >= 0).sum()) == int((before >= 0).sum()) + n
    owned_kept = (data.owner >= 0) & (before == data.owner)
    assert (agent_of[owned_kept] == data.owner[owned_kept]).all()
    if n:
        assert _flow_objective(data, agent_of) < _flow_objective(data, before)
    else:
        assert (agent_of == before).all()


def with_chat_caps(problem: Problem, seed: int) -> Problem:
    """Half the tickets on chat; some agents cap chat at 0-2 (channel gate nodes in the flow)."""
    rng = np.random.default_rng(seed)
    agents = tuple(
        replace(a, channel_capacity={"chat": int(rng.integers(0, 3))}) if rng.random() < 0.6 else a
        for a in problem.agents
    )
    tickets = tuple(
        replace(t, channel="chat") if rng.random() < 0.5 else t for t in problem.tickets
    )
    return replace(problem, agents=agents, tickets=tickets)


@settings(max_examples=30, deadline=None)
@given(
    st.integers(0, 10_000), st.booleans(), st.integers(2, 3), st.integers(10, 120), st.booleans()
)
def test_the_priced_core_finds_the_full_flows_optimum(
    seed: int, tight: bool, n_skills: int, core: int, chat: bool
) -> None:
    """Dense queues (two or three skills): the core proven by reduced costs has the unreduced
    flow's optimum and leaves as many tickets unassigned; never fewer than a max-flow allows
    (a ticket whose lower-bound lateness outweighs the queue may rightly stay queued)."""
    problem = random_problem(seed, n_agents=10, n_tickets=40, n_skills=n_skills, tight=tight)
    if chat:
        problem = with_chat_caps(problem, seed)
    data = build(problem, W)
    full = solve_flow(data)
    priced = solve_flow(data, core_pairs=core)
    assert priced.cost == full.cost
    assert flow_model_cost(data, priced.agent_of) == full.cost
    counts = np.bincount(priced.agent_of[priced.agent_of >= 0], minlength=data.n_agents)
    assert (counts <= np.where(data.eligible, data.slots, 0)).all()
    if len(data.pair_ticket) > core:
        assert priced.rounds >= 1
    # The most tickets any assignment seats: a max-flow ignoring costs.
    mf = max_flow.SimpleMaxFlow()
    n_t, n_a = data.n_tickets, data.n_agents
    source, sink = n_t + n_a, n_t + n_a + 1
    for t, a in zip(data.pair_ticket.tolist(), data.pair_agent.tolist(), strict=True):
        mf.add_arc_with_capacity(t, n_t + a, 1)
    for t in range(n_t):
        mf.add_arc_with_capacity(source, t, 1)
    for a in range(n_a):
        mf.add_arc_with_capacity(n_t + a, sink, int(data.slots[a]) if data.eligible[a] else 0)
    assert mf.solve(source, sink) == mf.OPTIMAL
    seated = int((priced.agent_of >= 0).sum())
    assert seated == int((full.agent_of >= 0).sum()) <= mf.optimal_flow()


def test_potentials_certify_the_core_and_catch_a_better_pair() -> None:
    """A core missing the only good pair is not proven: pricing adds it and finds it."""
    problem = random_problem(6, n_agents=12, n_tickets=40, n_skills=2)
    data = build(problem, W)
    full = solve_flow(data)
    priced = solve_flow(data, core_pairs=len(data.pair_ticket) // 4)
    assert priced.cost == full.cost and priced.rounds >= 1
    plan = POLICIES["least-loaded"](problem, PolicyParams())
    assert priced.cost <= evaluate(problem, plan).objective


def test_pools_are_the_connected_components_of_the_qualification_graph() -> None:
    problem = random_problem(2, n_agents=10, n_tickets=50, n_skills=8)
    data = build(problem, W)
    pool, n = components(data)
    # Brute force: union-find over tickets sharing a qualified agent.
    parent = list(range(data.n_tickets))

    def find(x: int) -> int:
        while parent[x] != x:
            x = parent[x]
        return x

    for a in range(data.n_agents):
        ts = data.pair_ticket[data.pair_agent == a].tolist()
        for t in ts[1:]:
            parent[find(t)] = find(ts[0])
    roots = [find(t) for t in range(data.n_tickets)]
    assert n == len(set(roots))
    for x in range(data.n_tickets):
        for y in range(data.n_tickets):
            assert (roots[x] == roots[y]) == (pool[x] == pool[y])
