"""Exact min-cost flow on a dense queue: a sparse core, proven or grown by reduced costs.

On a dense skill matrix (most agents can take most tickets) the full network has millions of
ticket -> agent arcs. The optimum uses at most one per ticket, and nearly always one of the
ticket's cheapest few or one its agent ranks highly. So the flow is solved on such a *core*
first, then proven optimal for the whole network by LP duality:

1. node potentials are recomputed from the core flow's residual graph (shortest distances to a
   virtual node every node reaches at cost 0 — Johnson's trick, reversed; vectorized
   Bellman-Ford, which converges because an optimal flow leaves no negative cycle);
2. every pair left out of the core carries no flow, so its reduced cost
   ``cost + pi(head) - pi(ticket)`` is all that optimality asks of it: when none is negative,
   the potentials are dual-feasible for the *full* network and complementary slackness holds,
   so the core flow is optimal for it — a proof, not a heuristic;
3. otherwise the pairs with negative reduced cost join the core and it is solved again (column
   generation); after ``max_rounds`` the full network is solved instead, so the answer is exact
   either way.

The nodes and every non-pair arc (queue, slots, channel gates) are those of the full network;
only the pair arcs differ, which is what makes step 2 valid.

Measured against plain OR-Tools on the whole network (benchmarks/README.md, Exact at density):
equal optima always, but 0.6-0.9x its speed at 1.5-2.6 M pairs, because SimpleMinCostFlow
cannot be warm-started and each of the 5-8 rounds re-solves from scratch. Collapsing agents or
tickets with identical qualification and cost vectors into class nodes was measured too and
saves under 10 % (957 of 1,000 agents, ~9,050 of 10,000 tickets are distinct): calendars,
backlogs, deadlines and owners make nearly every row unique.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from ortools.graph.python import min_cost_flow

from solver.batch.data import IntArray
from solver.errors import ModelError


@dataclass(frozen=True)
class Network:
    """The full flow network as arrays; the first ``n_pairs`` arcs are the pair arcs."""

    tails: IntArray
    heads: IntArray
    caps: IntArray
    costs: IntArray
    supplies: IntArray
    n_pairs: int
    pair_ticket: IntArray  # tail node of each pair arc (a ticket node is its ticket row)
    agent_nodes: IntArray  # node of each agent
    ticket_nodes: IntArray  # node of each ticket

    @property
    def n_nodes(self) -> int:
        return len(self.supplies)


@dataclass(frozen=True)
class Solved:
    pair_flow: IntArray  # per pair arc of the network
    cost: int
    n_arcs: int  # arcs in the last network solved
    rounds: int  # core solves (0: the full network was solved directly)
    core_pairs: int  # pair arcs in the last core (all of them when solved directly)
    full_fallback: bool  # pricing did not settle within max_rounds; the full network was solved


def _cheapest(group: IntArray, cost: IntArray, n_groups: int, keep: IntArray) -> IntArray:
    """Mask of the rows that are among the ``keep[g]`` cheapest of their group ``g``."""
    order = np.lexsort((cost, group))
    counts = np.bincount(group, minlength=n_groups)
    first = np.concatenate(([0], np.cumsum(counts)))[:-1]
    rank = np.arange(len(order)) - np.repeat(first, counts)
    mask = np.zeros(len(group), dtype=bool)
    mask[order[rank < keep[group[order]]]] = True
    return mask


def core_mask(
    pair_ticket: IntArray,
    pair_agent: IntArray,
    cost: IntArray,
    queue_cost: IntArray,
    slots: IntArray,
    per_ticket: int,
) -> IntArray:
    """A starting core: each ticket's ``per_ticket`` cheapest agents *and* each agent's
    ``3 x slots + 8`` most valuable tickets (what seating them saves over the queue).

    Ticket-side lists alone all name the same few agents (the ones free earliest), who then
    cannot seat them; the agent side keeps enough candidates to fill every slot. Any core is
    correct (pricing completes it); a good one only saves rounds.
    """
    n_t = len(queue_cost)
    mask = _cheapest(pair_ticket, cost, n_t, np.full(n_t, per_ticket, dtype=np.int64))
    mask |= _cheapest(pair_agent, cost - queue_cost[pair_ticket], len(slots), 3 * slots + 8)
    return mask


def solve_rows(net: Network, pair_rows: IntArray) -> tuple[IntArray, IntArray, int]:
    """OR-Tools on the network restricted to ``pair_rows``: (pair flows, other flows, cost)."""
    n_p = net.n_pairs
    rest = slice(n_p, None)
    tails = np.concatenate((net.tails[pair_rows], net.tails[rest])).astype(np.int32)
    heads = np.concatenate((net.heads[pair_rows], net.heads[rest])).astype(np.int32)
    caps = np.concatenate((net.caps[pair_rows], net.caps[rest]))
    costs = np.concatenate((net.costs[pair_rows], net.costs[rest]))
    mcf = min_cost_flow.SimpleMinCostFlow()
    mcf.add_arcs_with_capacity_and_unit_cost(tails, heads, caps, costs)
    mcf.set_nodes_supplies(np.arange(net.n_nodes, dtype=np.int32), net.supplies)
    status = mcf.solve()
    if status != mcf.OPTIMAL:
        raise ModelError(f"min-cost flow ended with status {status}; the network is malformed")
    flows = np.asarray(mcf.flows(np.arange(len(tails), dtype=np.int32)), dtype=np.int64)
    k = len(pair_rows)
    return flows[:k], flows[k:], int(mcf.optimal_cost())


def potentials(
    n_nodes: int,
    tails: IntArray,
    heads: IntArray,
    caps: IntArray,
    costs: IntArray,
    flows: IntArray,
    sources: IntArray | None = None,
    middles: IntArray | None = None,
) -> IntArray:
    """Node potentials certifying the flow optimal: ``costs + pi[head] - pi[tail] >= 0`` on
    every residual arc (forward where ``flows < caps``, backward where ``flows > 0``).

    ``pi(v)`` is the shortest residual distance from ``v`` to a virtual node that every node
    reaches at cost 0 (so it is finite and <= 0), by Jacobi Bellman-Ford rounds vectorized over
    the arcs. Raises :class:`ModelError` if it does not settle: the flow was not optimal.

    Among the potentials that certify the flow, pricing wants the ``middles`` (agents) as high
    and the ``sources`` (tickets) as low as they may be, so that a left-out pair's reduced cost
    reads "what moving the ticket there saves"; one pass each sharpens them (:func:`_sharpen`).
    """
    fwd = flows < caps
    bwd = flows > 0
    r_tail = np.concatenate((tails[fwd], heads[bwd]))
    r_head = np.concatenate((heads[fwd], tails[bwd]))
    r_cost = np.concatenate((costs[fwd], -costs[bwd]))
    order = np.argsort(r_tail, kind="stable")
    r_tail, r_head, r_cost = r_tail[order], r_head[order], r_cost[order]
    starts = np.flatnonzero(np.concatenate(([True], r_tail[1:] != r_tail[:-1])))
    nodes = r_tail[starts] if len(r_tail) else r_tail
    pi = np.zeros(n_nodes, dtype=np.int64)
    for _ in range(n_nodes + 1):
        if not len(r_tail):
            return pi
        best = np.minimum.reduceat(r_cost + pi[r_head], starts)
        better = best < pi[nodes]
        if not better.any():
            return _sharpen(pi, r_tail, r_head, r_cost, starts, nodes, sources, middles)
        pi[nodes[better]] = best[better]
    raise ModelError("the flow's residual graph has a negative cycle: the flow is not optimal")


def _sharpen(
    pi: IntArray,
    r_tail: IntArray,
    r_head: IntArray,
    r_cost: IntArray,
    starts: IntArray,
    nodes: IntArray,
    sources: IntArray | None,
    middles: IntArray | None,
) -> IntArray:
    """Raise the ``middles`` to their least out-arc bound, then lower the ``sources`` to their
    greatest in-arc bound: each step keeps ``cost + pi[head] - pi[tail] >= 0`` on every
    residual arc (a node's own bounds are met with equality, the others' only loosen)."""
    pi = pi.copy()
    if middles is not None and len(middles):
        top = np.full(len(pi), np.iinfo(np.int64).max, dtype=np.int64)
        top[nodes] = np.minimum.reduceat(r_cost + pi[r_head], starts)
        up = top[middles]
        ok = up < np.iinfo(np.int64).max
        pi[middles[ok]] = np.maximum(pi[middles[ok]], up[ok])
    if sources is not None and len(sources):
        low = np.full(len(pi), np.iinfo(np.int64).min, dtype=np.int64)
        np.maximum.at(low, r_head, pi[r_tail] - r_cost)
        down = low[sources]
        ok = down > np.iinfo(np.int64).min
        pi[sources[ok]] = np.minimum(pi[sources[ok]], down[ok])
    return pi


def solve_priced(
    net: Network, core: IntArray, max_rounds: int = 12, add_per_ticket: int = 8
) -> Solved:
    """The exact optimum of ``net``, solving it on the pair arcs in ``core`` (a boolean mask)
    and growing the core by negative reduced costs until none is left (module docstring).

    Each round adds only each ticket's ``add_per_ticket`` most negative pairs: on a dense queue
    most left-out pairs price negative against the first core's potentials, and adding them all
    rebuilds the whole network; the most negative ones are the ones an optimum uses."""
    n_p = net.n_pairs
    in_core = core.copy()
    rest = slice(n_p, None)
    for rounds in range(1, max_rounds + 1):
        rows = np.flatnonzero(in_core)
        pair_flow, rest_flow, cost = solve_rows(net, rows)
        pi = potentials(
            net.n_nodes,
            np.concatenate((net.tails[rows], net.tails[rest])),
            np.concatenate((net.heads[rows], net.heads[rest])),
            np.concatenate((net.caps[rows], net.caps[rest])),
            np.concatenate((net.costs[rows], net.costs[rest])),
            np.concatenate((pair_flow, rest_flow)),
            net.ticket_nodes,
            net.agent_nodes,
        )
        out = np.flatnonzero(~in_core)
        rc = net.costs[out] + pi[net.heads[out]] - pi[net.tails[out]]
        neg = rc < 0
        violated = out[neg]
        if not len(violated):
            full = np.zeros(n_p, dtype=np.int64)
            full[rows] = pair_flow
            n_arcs = len(rows) + len(net.tails) - n_p
            return Solved(full, cost, n_arcs, rounds, len(rows), False)
        n_t = int(net.pair_ticket.max(initial=-1)) + 1
        best = _cheapest(
            net.pair_ticket[violated],
            rc[neg],
            n_t,
            np.full(n_t, add_per_ticket, dtype=np.int64),
        )
        in_core[violated[best]] = True
    pair_flow, _, cost = solve_rows(net, np.arange(n_p, dtype=np.int64))
    return Solved(pair_flow, cost, len(net.tails), max_rounds, n_p, True)
