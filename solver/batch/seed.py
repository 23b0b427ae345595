"""First cuts: who takes what when the exact flow has no time, and in what order.

Who takes what, fast (:func:`greedy_assign`): the exact min-cost flow cannot be interrupted,
and on a dense queue it alone can outlast a short time limit, so when the flow's predicted time
does not fit, :mod:`solver.batch.solve` calls this instead. Rounds of proposals, each one numpy
pass over the live pairs: every unassigned ticket proposes to its cheapest agent with room (pair
cost plus the agent's next load marginal, only where that beats the team queue); every agent
accepts, most valuable first, what fits its free slots, its working minutes and its channel
caps. Every round seats at least one ticket per proposed-to agent, and the loop stops at the
deadline, so the result is always a valid assignment however little time there is.

In what order: list scheduling per agent. Two classic rules, each applied to every agent's
tickets at once (one vectorized schedule per rule), and per agent the order whose *exact* cost
is lower is kept:

- earliest deadline first (EDF): by the ticket's earliest deadline, then its other one;
- weighted shortest processing time (WSPT): by effort / priority weight.
"""

from __future__ import annotations

import time

import numpy as np

from solver.batch.costs import schedule_groups
from solver.batch.data import UNCAPPED, BatchData, IntArray

RULES = ("edf", "wspt")


def _order(data: BatchData, agent_of: IntArray, rule: str) -> tuple[IntArray, IntArray]:
    """(agents, tickets) of every assigned ticket, grouped by agent, in ``rule``'s order."""
    tickets = np.flatnonzero(agent_of >= 0)
    agents = agent_of[tickets]
    if rule == "edf":
        first = np.minimum(data.fr_due[tickets], data.res_due[tickets])
        second = np.maximum(data.fr_due[tickets], data.res_due[tickets])
        order = np.lexsort((tickets, second, first, agents))
    elif rule == "wspt":
        ratio = data.effort[tickets] / data.pw[tickets]
        due = np.minimum(data.fr_due[tickets], data.res_due[tickets])
        order = np.lexsort((tickets, due, ratio, agents))
    else:
        raise ValueError(f"unknown rule {rule!r}; expected one of {', '.join(RULES)}")
    return agents[order], tickets[order]


def list_schedule(
    data: BatchData, agent_of: IntArray
) -> tuple[dict[int, list[int]], dict[int, str]]:
    """Per agent, the better of the EDF and WSPT orders: ``({agent: [tickets]}, {agent: rule})``."""
    best: dict[int, tuple[int, str, list[int]]] = {}
    for rule in RULES:
        agents, tickets = _order(data, agent_of, rule)
        if len(tickets) == 0:
            continue
        start, end = schedule_groups(data, agents, tickets)
        per = data.late_cost(tickets, start, end)
        run_start = np.flatnonzero(np.concatenate(([True], agents[1:] != agents[:-1])))
        sums = np.add.reduceat(per, run_start).tolist()
        bounds = [*run_start.tolist(), len(tickets)]
        for i, a in enumerate(agents[run_start].tolist()):
            if a not in best or sums[i] < best[a][0]:
                best[a] = (sums[i], rule, tickets[bounds[i] : bounds[i + 1]].tolist())
    return {a: v[2] for a, v in best.items()}, {a: v[1] for a, v in best.items()}


def greedy_assign(
    data: BatchData, deadline: float = float("inf"), seat_cost_s: float = 0.0
) -> tuple[IntArray, int]:
    """A valid ``agent_of`` (-1: team queue) by proposal rounds; and how many rounds ran.

    Valid means every hard rule the plan checks: qualification, free slots, working minutes,
    channel caps. The first round always runs (one pass over the pairs: ~50 ms at 1.5 M pairs):
    a plan that queues every ticket would also take every owned ticket back from its owner.
    Later rounds start only before ``deadline`` (a ``perf_counter`` value) less ``seat_cost_s``
    per ticket seated so far (what the caller spends on each seated ticket afterwards: building
    the plan); tickets not seated by then stay with the team queue.
    """
    n_t, n_a = data.n_tickets, data.n_agents
    agent_of = np.full(n_t, -1, dtype=np.int64)
    slots = np.where(data.eligible, data.slots, 0).astype(np.int64)
    minutes = (data.total - data.backlog).astype(np.int64)
    count = np.zeros(n_a, dtype=np.int64)
    n_ch = len(data.channels)
    chan_left = data.chan_slots.copy()
    load_w = data.weights.load
    # Rows worth seating at all (cheaper than the queue even at the agent's first free slot).
    first_marginal = load_w * (2 * data.open_tickets + 1)
    rows = np.flatnonzero(
        (data.pair_cost + first_marginal[data.pair_agent] < data.queue_cost[data.pair_ticket])
        & (slots[data.pair_agent] > 0)
    )
    pt, pa = data.pair_ticket[rows], data.pair_agent[rows]
    pc = data.pair_cost[rows]
    rounds = 0
    seated = 0
    while len(pt) and (rounds == 0 or time.perf_counter() + seat_cost_s * seated < deadline):
        rounds += 1
        eff = data.effort[pt]
        live = (agent_of[pt] < 0) & (slots[pa] > 0) & (minutes[pa] >= eff)
        if n_ch:
            c = data.chan_of[pt]
            live &= (c < 0) | (chan_left[np.maximum(c, 0), pa] > 0)
        marginal = pc + load_w * (2 * (data.open_tickets[pa] + count[pa]) + 1)
        live &= marginal < data.queue_cost[pt]
        pt, pa, pc, marginal = pt[live], pa[live], pc[live], marginal[live]
        if len(pt) == 0:
            break
        # Each ticket's cheapest live row, the lower agent row on ties: rows stay sorted by
        # ticket then agent, so a segmented minimum and its first hit do it without a sort.
        seg = np.flatnonzero(np.concatenate(([True], pt[1:] != pt[:-1])))
        seg_len = np.diff(np.append(seg, len(pt)))
        hit = np.flatnonzero(marginal == np.repeat(np.minimum.reduceat(marginal, seg), seg_len))
        seg_of_hit = np.repeat(np.arange(len(seg)), seg_len)[hit]
        pick = hit[np.concatenate(([True], seg_of_hit[1:] != seg_of_hit[:-1]))]
        t, a = pt[pick], pa[pick]
        saving = data.queue_cost[t] - marginal[pick]
        # Each agent takes its proposals most valuable first while slots, minutes, caps last.
        by = np.lexsort((t, -saving, a))
        t, a = t[by], a[by]
        new_run = np.ones(len(a), dtype=bool)
        new_run[1:] = a[1:] != a[:-1]
        run_start = np.flatnonzero(new_run)
        sizes = np.diff(np.append(run_start, len(a)))
        rank = np.arange(len(a)) - np.repeat(run_start, sizes)
        e = data.effort[t]
        csum = np.cumsum(e)
        used = csum - np.repeat(csum[run_start] - e[run_start], sizes)
        take = (rank < slots[a]) & (used <= minutes[a])
        if n_ch:
            c = data.chan_of[t]
            capped = (c >= 0) & (chan_left[np.maximum(c, 0), a] < UNCAPPED)
            if capped.any():
                # Rank within (agent, channel) among the proposals still taken.
                key = np.where(capped & take, c * n_a + a, -1)
                k_order = np.lexsort((np.arange(len(key)), key))
                k_sorted = key[k_order]
                k_new = np.ones(len(k_sorted), dtype=bool)
                k_new[1:] = k_sorted[1:] != k_sorted[:-1]
                k_start = np.flatnonzero(k_new)
                k_sizes = np.diff(np.append(k_start, len(k_sorted)))
                k_rank = np.empty(len(key), dtype=np.int64)
                k_rank[k_order] = np.arange(len(key)) - np.repeat(k_start, k_sizes)
                within = k_rank < chan_left[np.maximum(c, 0), a]
                take &= ~capped | within
        # Keep each agent's unbroken prefix of accepted proposals: the minutes checked above are
        # the cumulative sum over the agent's proposals, which holds only for a prefix.
        no = (~take).astype(np.int64)
        cum_no = np.cumsum(no)
        take &= cum_no - np.repeat(cum_no[run_start] - no[run_start], sizes) == 0
        t, a = t[take], a[take]
        if len(t) == 0:
            break
        agent_of[t] = a
        seated += len(t)
        np.add.at(count, a, 1)
        np.subtract.at(slots, a, 1)
        np.subtract.at(minutes, a, data.effort[t])
        if n_ch:
            c = data.chan_of[t]
            cc = (c >= 0) & (chan_left[np.maximum(c, 0), a] < UNCAPPED)
            np.subtract.at(chan_left, (c[cc], a[cc]), 1)
    return agent_of, rounds
