"""Restore the working-minutes rule the flow relaxes: backlog + new effort <= working minutes.

The flow only counts tickets. Where an agent's assigned effort overflows their working time,
drop the tickets that buy the least per minute (``queue cost - pair cost`` over effort), then
give each dropped ticket, most valuable first, to the cheapest qualified agent that still has a
slot (of the ticket's channel too, where the agent caps it) and the minutes, or to the team
queue when that is cheaper. Rare on realistic queues (an agent's slots are usually the binding
limit), so plain Python over the few offenders is enough.
"""

from __future__ import annotations

import numpy as np

from solver.batch.data import BatchData, IntArray


def ticket_pair_ptr(data: BatchData) -> IntArray:
    """``ptr[t]:ptr[t+1]`` are ticket ``t``'s rows in the (ticket-sorted) pair arrays."""
    return np.searchsorted(data.pair_ticket, np.arange(data.n_tickets + 1, dtype=np.int64))


def repair_minutes(data: BatchData, agent_of: IntArray) -> tuple[IntArray, int]:
    """A copy of ``agent_of`` that respects every agent's working minutes; and how many moved."""
    agent_of = agent_of.copy()
    assigned = agent_of >= 0
    work = data.backlog + np.bincount(
        agent_of[assigned], weights=data.effort[assigned], minlength=data.n_agents
    ).astype(np.int64)
    over = np.flatnonzero(work > data.total)
    if len(over) == 0:
        return agent_of, 0
    ptr = ticket_pair_ptr(data)
    cost = data.pair_cost

    def pair_cost(t: int, a: int) -> int:
        rows = np.arange(ptr[t], ptr[t + 1])
        return int(cost[rows[data.pair_agent[rows] == a][0]])

    dropped: list[int] = []
    for a in over.tolist():
        mine = np.flatnonzero(agent_of == a).tolist()
        value = {t: (int(data.queue_cost[t]) - pair_cost(t, a)) / int(data.effort[t]) for t in mine}
        for t in sorted(mine, key=lambda t: (value[t], t)):
            if work[a] <= data.total[a]:
                break
            agent_of[t] = -1
            work[a] -= data.effort[t]
            dropped.append(t)
    count = np.bincount(agent_of[agent_of >= 0], minlength=data.n_agents)
    for t in sorted(dropped, key=lambda t: (-int(data.queue_cost[t]), t)):
        rows = np.arange(ptr[t], ptr[t + 1])
        ag = data.pair_agent[rows]
        fits = (count[ag] < data.slots[ag]) & (work[ag] + data.effort[t] <= data.total[ag])
        c = int(data.chan_of[t])
        if c >= 0:
            held = np.bincount(
                agent_of[(agent_of >= 0) & (data.chan_of == c)], minlength=data.n_agents
            )
            fits &= held[ag] < data.chan_slots[c, ag]
        if not fits.any():
            continue
        o = data.open_tickets[ag] + count[ag]
        marginal = cost[rows] + data.weights.load * (2 * o + 1)
        marginal = np.where(fits, marginal, np.iinfo(np.int64).max)
        best = int(np.argmin(marginal))
        if marginal[best] < data.queue_cost[t]:
            a = int(ag[best])
            agent_of[t] = a
            count[a] += 1
            work[a] += data.effort[t]
    return agent_of, len(dropped)
