"""The improvement phases: exact clock, exact move pricing, an exact CP-SAT neighbourhood model."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from solver.batch import edf, lns
from solver.batch.costs import schedule_groups
from solver.batch.data import BatchData, build
from solver.batch.flow import solve_flow
from solver.batch.localsearch import LocalSearch, exchange_rows, insert_rows, removal_rows
from solver.batch.params import BatchParams
from solver.batch.repair import repair_minutes, ticket_pair_ptr
from solver.batch.seed import list_schedule
from solver.batch.state import State, price
from solver.objective import ObjectiveWeights
from tests.solver.batch.test_factories import random_problem

W = ObjectiveWeights()


def seeded_state(seed: int, **kw: int | bool) -> tuple[BatchData, State]:
    problem = random_problem(seed, **kw)  # type: ignore[arg-type]
    data = build(problem, W)
    agent_of, _ = repair_minutes(data, solve_flow(data).agent_of)
    seqs, _ = list_schedule(data, agent_of)
    return data, State(data, seqs)


@settings(max_examples=25)
@given(st.integers(0, 10_000), st.lists(st.integers(0, 3000), min_size=1, max_size=30))
def test_the_cached_clock_equals_a_minute_by_minute_walk(seed: int, work: list[int]) -> None:
    data = build(random_problem(seed, n_agents=4, n_tickets=3), W)
    agents = np.arange(len(work)) % data.n_agents
    w = np.asarray(work, dtype=np.int64)
    ww = np.maximum(w, 1)
    horizon = data.bank.horizon
    minutes = [
        [m for s, e in data.bank.windows_of(a) for m in range(s, e)] for a in range(data.n_agents)
    ]
    # Past an agent's working minutes, work runs on minute for minute after the horizon.
    start = [
        ms[x] if x < len(ms) else horizon + x - len(ms)
        for ms, x in zip((minutes[a] for a in agents), w.tolist(), strict=True)
    ]
    finish = [
        ms[x - 1] + 1 if x <= len(ms) else horizon + x - len(ms)
        for ms, x in zip((minutes[a] for a in agents), ww.tolist(), strict=True)
    ]
    assert data.clock.start(agents, w).tolist() == start
    assert data.clock.finish(agents, ww).tolist() == finish


def test_row_builders_enumerate_the_moves() -> None:
    seq = np.array([10, 11, 12])
    ins = insert_rows(seq, np.array([7]))[0]
    assert ins.tolist() == [[7, 10, 11, 12], [10, 7, 11, 12], [10, 11, 7, 12], [10, 11, 12, 7]]
    ex = exchange_rows(seq, seq)
    assert ex[0, 2].tolist() == [11, 12, 10] and ex[2, 0].tolist() == [12, 10, 11]
    assert ex[1, 1].tolist() == seq.tolist()
    swap = exchange_rows(seq, np.array([7, 7, 7]))
    assert swap[1, 0].tolist() == [7, 10, 12]
    assert removal_rows(seq).tolist() == [[11, 12], [10, 12], [10, 11]]


@settings(max_examples=8)
@given(st.integers(0, 10_000))
def test_local_search_only_improves_and_keeps_its_books_exact(seed: int) -> None:
    data, state = seeded_state(seed, n_agents=6, n_tickets=40, tight=True)
    before = state.total()
    local = LocalSearch(data, state)
    local.run(deadline=float("inf"))
    after = state.total()
    assert after <= before
    fresh = State(data, state.sequences())
    assert fresh.total() == after  # incremental bookkeeping == pricing from scratch
    for a, seq in state.seqs.items():
        assert len(seq) <= data.slots[a]
        assert data.backlog[a] + data.effort[seq].sum() <= data.total[a]


@settings(max_examples=10)
@given(st.integers(0, 10_000), st.integers(2, 8))
def test_the_neighbourhood_model_prices_the_incumbent_exactly(seed: int, per_agent: int) -> None:
    """Fixed to its hint, CP-SAT's objective is the exact cost of the neighbourhood's free part.

    Small windows force fixed prefixes and tails, so the tail's shift with the window's work
    and the lateness across breaks are both exercised.
    """
    data, state = seeded_state(seed, n_agents=6, n_tickets=40, tight=True)
    params = BatchParams(neighbourhood_agents=3, neighbourhood_tickets=3 * per_agent, seed=seed)
    picker = lns.Picker(data, state, params)
    hood = picker.pick()
    if hood is None:
        return
    windows = {a: lns.work_windows(data, a) for a in hood.agents}
    solved = lns.solve_hood(
        data,
        hood,
        windows,
        ticket_pair_ptr(data),
        params,
        10.0,
        1,
        {"fix_variables_to_their_hinted_value": True, "num_workers": 1, "interleave_search": False},
    )
    assert solved is not None
    assert solved.sequences == {a: state.seq(a) for a in hood.agents}
    assert sorted(solved.left) == sorted(hood.queued)
    # The fixed part: the prefixes' cost (without load) and the tails' static cost.
    fixed = 0
    for a in hood.agents:
        if hood.prefix[a]:
            cost, _, _ = price(data, {a: hood.prefix[a]})
            fixed += cost[a] - data.load_cost(a, len(hood.prefix[a]))
        for t in hood.tail[a]:
            idx = np.flatnonzero((data.pair_ticket == t) & (data.pair_agent == a))
            fixed += int(data.pair_static[idx[0]])
    exact = sum(state.cost[a] for a in hood.agents) + int(data.queue_cost[hood.queued].sum())
    assert solved.objective == exact - fixed


def test_a_neighbourhood_search_finds_the_better_order() -> None:
    data, state = seeded_state(8, n_agents=4, n_tickets=24, tight=True)
    # Make the incumbent bad: reverse every agent's order.
    worst = {a: list(reversed(s)) for a, s in state.seqs.items()}
    state = State(data, worst)
    params = BatchParams(neighbourhood_agents=2, neighbourhood_tickets=16, seed=1)
    picker = lns.Picker(data, state, params)
    hood = picker.pick()
    assert hood is not None
    windows = {a: lns.work_windows(data, a) for a in hood.agents}
    solved = lns.solve_hood(data, hood, windows, picker.ptr, params, 5.0, 1)
    assert solved is not None
    priced = price(data, solved.sequences)
    before = sum(state.cost[a] for a in hood.agents) + int(data.queue_cost[hood.queued].sum())
    after = sum(priced[0].values()) + int(data.queue_cost[solved.left].sum())
    assert after < before


@settings(max_examples=25)
@given(st.integers(0, 10_000), st.lists(st.integers(-50, 5000), min_size=1, max_size=30))
def test_vectorized_work_before_equals_the_bank(seed: int, minutes: list[int]) -> None:
    data = build(random_problem(seed, n_agents=4, n_tickets=3), W)
    agents = np.arange(len(minutes)) % data.n_agents
    m = np.asarray(minutes, dtype=np.int64)
    assert (data.clock.work_before(agents, m) == data.bank.work_before(agents, m)).all()


@settings(max_examples=30)
@given(st.integers(0, 10_000))
def test_the_edf_demand_bound_is_exact_on_one_agent(seed: int) -> None:
    """Feasible iff some order has no breach: checked against every order of a few tickets."""
    import itertools

    data, state = seeded_state(seed, n_agents=3, n_tickets=14)
    for a, seq in state.seqs.items():
        seq = seq[:5]
        any_on_time = False
        for perm in itertools.permutations(seq):
            start, end = schedule_groups(data, np.full(len(perm), a), np.asarray(perm))
            fr = data.fr_due[list(perm)]
            res = data.res_due[list(perm)]
            if (start <= fr).all() and (end <= res).all():
                any_on_time = True
                break
        assert edf.feasible(data, a, seq) == any_on_time
        if any_on_time:
            order = edf.edf_order(data, a, seq)
            start, end = schedule_groups(data, np.full(len(order), a), np.asarray(order))
            assert (start <= data.fr_due[order]).all() and (end <= data.res_due[order]).all()
