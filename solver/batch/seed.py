"""In what order, first cut: list scheduling per agent.

Two classic rules, each applied to every agent's tickets at once (one vectorized schedule per
rule), and per agent the order whose *exact* cost is lower is kept:

- earliest deadline first (EDF): by the ticket's earliest deadline, then its other one;
- weighted shortest processing time (WSPT): by effort / priority weight.
"""

from __future__ import annotations

import numpy as np

from solver.batch.costs import schedule_groups
from solver.batch.data import BatchData, IntArray

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
