"""Who takes what: the queue as a transportation problem, solved exactly by min-cost flow.

Network (every ticket supplies one unit, the sink absorbs them all)::

    ticket --(1, pair cost)--> agent ==(k-th slot: 1, load marginal)==> sink
    ticket --(1, queue cost)--> team queue --(all, 0)--> sink

An agent's k-th new ticket costs ``load * ((open+k)^2 - (open+k-1)^2)`` on its own parallel
arc; the marginals increase, so a min-cost flow fills the cheap slots first and the convex
load-balance term is exact. The count capacity is ``capacity - open_tickets``.

A channel the agent caps (``Agent.channel_capacity``) puts one node between its tickets and the
agent: ``ticket --(1, pair cost)--> (agent, channel) --(free slots of the channel, 0)--> agent``.
The caps nest inside the total (each ticket has one channel), so this is still a network and
the flow still exact: no agent is ever given more of a channel than its cap allows. Working minutes
are a knapsack constraint a flow cannot hold; :mod:`solver.batch.repair` restores them after.

The flow's optimum over these arcs is a lower bound on any valid plan's objective (pair costs
under-estimate lateness, see :mod:`solver.batch.data`, and the minute constraint is relaxed).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from solver.batch.data import UNCAPPED, BatchData, IntArray
from solver.batch.reduce import Network, Solved, core_mask, solve_priced, solve_rows


@dataclass(frozen=True)
class FlowResult:
    agent_of: IntArray  # per ticket: agent row, or -1 for the team queue
    cost: int  # the flow optimum over all qualified pairs: a lower bound on the objective
    n_arcs: int  # arcs of the last network solved
    n_pairs: int = 0  # qualified pairs
    core_pairs: int = 0  # pair arcs in the last network solved (n_pairs when no core)
    rounds: int = 0  # core solves before the optimum was proven (0: solved whole)
    full_fallback: bool = False  # the core did not settle; the whole network was solved


def components(data: BatchData) -> tuple[IntArray, int]:
    """Connected components of the qualification graph, labelled per ticket.

    Label propagation on the bipartite pair list: each round gives every node the smallest
    label among its neighbours; a handful of vectorized rounds converge on realistic pools.
    """
    n_t, n_a = data.n_tickets, data.n_agents
    label = np.arange(n_t + n_a, dtype=np.int64)
    t_node, a_node = data.pair_ticket, data.pair_agent + n_t
    while True:
        m = np.minimum(label[t_node], label[a_node])
        new = label.copy()
        np.minimum.at(new, t_node, m)
        np.minimum.at(new, a_node, m)
        new = new[new]  # pointer jumping speeds up long chains
        if np.array_equal(new, label):
            break
        label = new
    _, ticket_comp = np.unique(label[:n_t], return_inverse=True)
    return ticket_comp.astype(np.int64), int(ticket_comp.max(initial=-1)) + 1


def network(data: BatchData) -> Network:
    """The whole queue's network over *all* qualified pairs (module docstring)."""
    n_t, n_a = data.n_tickets, data.n_agents
    agent_node0 = n_t
    queue_node = n_t + n_a
    sink = queue_node + 1

    slots = np.where(data.eligible, data.slots, 0)
    # A ticket can use at most as many of an agent's slots as there are tickets qualified for it.
    qualified_count = np.bincount(data.pair_agent, minlength=n_a)
    slots = np.minimum(slots, qualified_count)
    slot_agent = np.repeat(np.arange(n_a, dtype=np.int64), slots)
    offsets = np.concatenate(([0], np.cumsum(slots)))[:-1]
    k = np.arange(len(slot_agent), dtype=np.int64) - np.repeat(offsets, slots) + 1
    o = data.open_tickets[slot_agent]
    slot_cost = data.weights.load * ((o + k) ** 2 - (o + k - 1) ** 2)

    n_p = len(data.pair_ticket)
    pair_head = data.pair_agent + agent_node0
    # Channel nodes, numbered after the sink: one per (channel, agent) whose cap limits a pair.
    gate_tail = np.zeros(0, dtype=np.int64)
    gate_head = np.zeros(0, dtype=np.int64)
    gate_cap = np.zeros(0, dtype=np.int64)
    if data.channels and n_p:
        c = data.chan_of[data.pair_ticket]
        limited = c >= 0
        limited[limited] = data.chan_slots[c[limited], data.pair_agent[limited]] < UNCAPPED
        if limited.any():
            key = c[limited] * n_a + data.pair_agent[limited]
            gates, inverse, counts = np.unique(key, return_inverse=True, return_counts=True)
            pair_head = pair_head.copy()
            pair_head[limited] = sink + 1 + inverse
            gate_agent = gates % n_a
            gate_tail = sink + 1 + np.arange(len(gates), dtype=np.int64)
            gate_head = gate_agent + agent_node0
            gate_cap = np.minimum(data.chan_slots[gates // n_a, gate_agent], counts)
    n_nodes = sink + 1 + len(gate_tail)
    tails = np.concatenate(
        (
            data.pair_ticket,
            np.arange(n_t, dtype=np.int64),
            slot_agent + agent_node0,
            [queue_node],
            gate_tail,
        )
    ).astype(np.int64)
    heads = np.concatenate(
        (
            pair_head,
            np.full(n_t, queue_node, dtype=np.int64),
            np.full(len(slot_agent), sink, dtype=np.int64),
            [sink],
            gate_head,
        )
    ).astype(np.int64)
    caps = np.concatenate(
        (np.ones(n_p + n_t + len(slot_agent), dtype=np.int64), [max(1, n_t)], gate_cap)
    ).astype(np.int64)
    costs = np.concatenate(
        (data.pair_cost, data.queue_cost, slot_cost, [0], np.zeros(len(gate_tail), dtype=np.int64))
    ).astype(np.int64)
    supplies = np.zeros(n_nodes, dtype=np.int64)
    supplies[:n_t] = 1
    supplies[sink] = -n_t
    return Network(
        tails,
        heads,
        caps,
        costs,
        supplies,
        n_p,
        data.pair_ticket,
        agent_node0 + np.arange(n_a, dtype=np.int64),
        np.arange(n_t, dtype=np.int64),
    )


def solve_flow(data: BatchData, core_pairs: int = 0) -> FlowResult:
    """The exact min-cost assignment over all qualified pairs (one network for the queue).

    One network rather than one per component (:func:`components`): OR-Tools solves the whole
    thing in well under a second at 1,000 x 10,000 with ~80k pairs (figures:
    benchmarks/README.md, Who-takes-what (min-cost flow) at L), and the neighbourhood search
    never crosses a pool anyway, since it only moves tickets along qualified pairs.

    With ``core_pairs`` > 0 and more qualified pairs than that (a dense skill matrix), the flow
    is solved on a sparse core of about ``core_pairs`` pairs and proven optimal for all of them
    by reduced costs (:mod:`solver.batch.reduce`): the same optimum. Measured slower than the
    whole network at 1.5-2.6 M pairs (each round re-solves cold), so optimize leaves it off.
    """
    net = network(data)
    n_p = net.n_pairs
    if core_pairs > 0 and n_p > core_pairs:
        core = core_mask(
            data.pair_ticket,
            data.pair_agent,
            data.pair_cost,
            data.queue_cost,
            np.where(data.eligible, data.slots, 0),
            max(4, core_pairs // (2 * max(1, data.n_tickets))),
        )
        solved = solve_priced(net, core)
    else:
        pair_flow, _, cost = solve_rows(net, np.arange(n_p, dtype=np.int64))
        solved = Solved(pair_flow, cost, len(net.tails), 0, n_p, False)
    agent_of = np.full(data.n_tickets, -1, dtype=np.int64)
    used = np.flatnonzero(solved.pair_flow > 0)
    agent_of[data.pair_ticket[used]] = data.pair_agent[used]
    return FlowResult(
        agent_of=agent_of,
        cost=solved.cost,
        n_arcs=solved.n_arcs,
        n_pairs=n_p,
        core_pairs=solved.core_pairs,
        rounds=solved.rounds,
        full_fallback=solved.full_fallback,
    )
