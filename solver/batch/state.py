"""The incumbent plan shared by the improvement phases, priced exactly per agent.

Every agent's cost is its tickets' breach + lateness (``pain``), their static parts (waste,
churn, discontinuity) and the agent's load term; a queued ticket costs its queue cost. The
total is therefore a sum the improvement phases can update agent by agent.
"""

from __future__ import annotations

import numpy as np

from solver.batch.costs import pair_index, schedule_groups
from solver.batch.data import BatchData


def price(
    data: BatchData, seqs: dict[int, list[int]]
) -> tuple[dict[int, int], dict[int, int], dict[int, list[int]]]:
    """Per agent: exact cost, its breach + lateness part, and each ticket's breach + lateness."""
    cost = {a: data.load_cost(a, len(s)) for a, s in seqs.items()}
    pain = dict.fromkeys(seqs, 0)
    late: dict[int, list[int]] = {a: [] for a in seqs}
    agents = np.asarray([a for a, s in seqs.items() for _ in s], dtype=np.int64)
    tickets = np.asarray([t for s in seqs.values() for t in s], dtype=np.int64)
    if len(tickets) == 0:
        return cost, pain, late
    start, end = schedule_groups(data, agents, tickets)
    lc = data.late_cost(tickets, start, end)
    static = data.pair_static[pair_index(data, tickets, agents)]
    i = 0
    for a, s in seqs.items():
        n = len(s)
        late[a] = lc[i : i + n].tolist()
        pain[a] = int(lc[i : i + n].sum())
        cost[a] += pain[a] + int(static[i : i + n].sum())
        i += n
    return cost, pain, late


class State:
    """Sequences, who holds what, each agent's exact cost, lateness and used minutes."""

    def __init__(self, data: BatchData, sequences: dict[int, list[int]]) -> None:
        self.data = data
        self.seqs: dict[int, list[int]] = {a: list(s) for a, s in sequences.items() if s}
        self.agent_of = np.full(data.n_tickets, -1, dtype=np.int64)
        for a, seq in self.seqs.items():
            self.agent_of[seq] = a
        self.cost: dict[int, int] = {}
        self.pain: dict[int, int] = {}
        self.late_of: dict[int, list[int]] = {}
        self.version = np.zeros(data.n_agents, dtype=np.int64)
        self.work = data.backlog.copy()
        for a, seq in self.seqs.items():
            self.work[a] += int(data.effort[seq].sum())
        cost, pain, late = price(data, self.seqs)
        self.cost.update(cost)
        self.pain.update(pain)
        self.late_of.update(late)

    def total(self) -> int:
        queued = self.agent_of < 0
        return sum(self.cost.values()) + int(self.data.queue_cost[queued].sum())

    def seq(self, a: int) -> list[int]:
        return self.seqs.get(a, [])

    def commit(
        self,
        new: dict[int, list[int]],
        left: list[int],
        priced: tuple[dict[int, int], dict[int, int], dict[int, list[int]]] | None = None,
    ) -> None:
        """Replace the sequences of ``new``'s agents; ``left`` go to the team queue."""
        cost, pain, late = priced or price(self.data, new)
        self.agent_of[left] = -1
        for a, seq in new.items():
            self.seqs[a] = list(seq)
            self.agent_of[seq] = a
            self.version[a] += 1
            self.work[a] = self.data.backlog[a] + int(self.data.effort[list(seq)].sum())
        self.cost.update(cost)
        self.pain.update(pain)
        self.late_of.update(late)

    def sequences(self) -> dict[int, list[int]]:
        return {a: list(s) for a, s in self.seqs.items() if s}
