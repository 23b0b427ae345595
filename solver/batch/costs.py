"""The exact objective of an assignment + order, computed incrementally per agent.

Mirrors :func:`solver.validation.evaluate` term for term (tests hold the two equal), but on
numpy arrays and per agent, so the neighbourhood search can price a change to three agents
without re-scoring ten thousand tickets. The objective separates: each agent's tickets (their
breaches, lateness, waste, churn, discontinuity) plus the agent's load term, plus the cost of
every ticket left with the team queue.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import numpy.typing as npt

from solver.batch.data import BatchData, IntArray


def pair_index(data: BatchData, tickets: IntArray, agents: IntArray) -> IntArray:
    """Row of each (ticket, agent) in the pair arrays; raises if a pair is not qualified."""
    idx, found = find_pairs(data, tickets, agents)
    if not found.all():
        raise KeyError("an unqualified (ticket, agent) pair was priced")
    return idx


def find_pairs(
    data: BatchData, tickets: IntArray, agents: IntArray
) -> tuple[IntArray, npt.NDArray[np.bool_]]:
    """Row of each (ticket, agent) in the pair arrays (clipped), and whether it is qualified."""
    keys = data.pair_key
    want = np.asarray(tickets, dtype=np.int64) * max(1, data.n_agents) + np.asarray(
        agents, dtype=np.int64
    )
    if len(keys) == 0:
        return np.zeros(len(want), dtype=np.int64), np.zeros(len(want), dtype=bool)
    idx = np.minimum(np.searchsorted(keys, want), len(keys) - 1)
    return idx, keys[idx] == want


def schedule_groups(
    data: BatchData, agents: IntArray, tickets: IntArray, offsets: IntArray | None = None
) -> tuple[IntArray, IntArray]:
    """Wall start/end of ``tickets``, worked in the given order by ``agents`` (contiguous runs).

    Each run starts after the agent's backlog (plus ``offsets`` work minutes, if given).
    """
    if len(tickets) == 0:
        z = np.zeros(0, dtype=np.int64)
        return z, z
    eff = data.effort[tickets]
    csum = np.cumsum(eff)
    new_run = np.ones(len(agents), dtype=bool)
    new_run[1:] = agents[1:] != agents[:-1]
    run_start = np.flatnonzero(new_run)
    counts = np.diff(np.append(run_start, len(agents)))
    before_run = np.repeat(np.concatenate(([0], csum))[run_start], counts)
    done = csum - eff - before_run + data.backlog[agents]
    if offsets is not None:
        done = done + offsets
    start = data.clock.start(agents, done)
    end = data.clock.finish(agents, done + eff)
    return start, end


def agent_costs(data: BatchData, sequences: Mapping[int, Sequence[int]]) -> dict[int, int]:
    """Exact objective contribution of each agent's ordered new work (load term included)."""
    agents_l: list[int] = []
    tickets_l: list[int] = []
    for a, seq in sequences.items():
        agents_l.extend([a] * len(seq))
        tickets_l.extend(seq)
    agents = np.asarray(agents_l, dtype=np.int64)
    tickets = np.asarray(tickets_l, dtype=np.int64)
    out = {a: data.load_cost(a, len(seq)) for a, seq in sequences.items()}
    if len(tickets) == 0:
        return out
    start, end = schedule_groups(data, agents, tickets)
    per = data.late_cost(tickets, start, end) + data.pair_static[pair_index(data, tickets, agents)]
    run_start = np.flatnonzero(np.concatenate(([True], agents[1:] != agents[:-1])))
    for a, s in zip(
        agents[run_start].tolist(), np.add.reduceat(per, run_start).tolist(), strict=True
    ):
        out[a] += int(s)
    return out


def total_cost(data: BatchData, sequences: Mapping[int, Sequence[int]]) -> int:
    """The whole plan's objective: every agent's part plus the queued tickets' cost."""
    assigned = np.zeros(data.n_tickets, dtype=bool)
    for seq in sequences.values():
        assigned[list(seq)] = True
    return sum(agent_costs(data, sequences).values()) + int(data.queue_cost[~assigned].sum())
