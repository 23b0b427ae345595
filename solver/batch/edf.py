"""The EDF demand bound: can one agent meet every deadline of a set of tickets?

On one machine, earliest-due-date order minimises the maximum lateness (Jackson's rule), so a
set of tickets can all be on time iff, in EDF order, each ticket's cumulative work fits before
its deadline — for every deadline ``d``, the effort due by ``d`` fits in the working minutes
before ``d``. Work is preemptive across breaks, so the test is exact in the agent's *work time*:

- the resolution is on time iff the ticket's work is complete by ``work_before(due)``;
- the first response is due when work *starts*, which (``S <= work_before(due + 1) - 1``) is a
  completion deadline of ``work_before(due + 1) - 1 + effort``.

A ticket's work-time deadline is the earlier of the two. The optimizer uses it twice: an agent
whose tickets pass the test is put in work-time EDF order (zero breaches, zero lateness — that
agent's order is then provably optimal), and neighbourhoods favour partners with slack.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from solver.batch.data import NO_DEADLINE, BatchData, IntArray

_NONE = np.iinfo(np.int64).max // 4


def work_deadlines(data: BatchData, agent: int, tickets: Sequence[int] | IntArray) -> IntArray:
    """Each ticket's completion deadline in ``agent``'s work time (``_NONE`` when none)."""
    t = np.asarray(tickets, dtype=np.int64)
    a = np.full(len(t), agent, dtype=np.int64)
    clock = data.clock
    fr, res = data.fr_due[t], data.res_due[t]
    has_fr, has_res = fr != NO_DEADLINE, res != NO_DEADLINE
    d_fr = clock.work_before(a, np.where(has_fr, fr + 1, 0)) - 1 + data.effort[t]
    d_res = clock.work_before(a, np.where(has_res, res, 0))
    return np.minimum(np.where(has_fr, d_fr, _NONE), np.where(has_res, d_res, _NONE))


def edf_order(data: BatchData, agent: int, tickets: Sequence[int]) -> list[int]:
    """``tickets`` in work-time EDF order (ties: higher priority weight, then shorter first)."""
    t = np.asarray(tickets, dtype=np.int64)
    d = work_deadlines(data, agent, t)
    order = np.lexsort((t, data.effort[t], -data.pw[t], d))
    return [int(x) for x in t[order]]


def slack(data: BatchData, agent: int, tickets: Sequence[int]) -> int:
    """Minimum over EDF prefixes of (deadline - cumulative work): >= 0 iff all can be on time.

    Without tickets, the agent's free working minutes after their backlog.
    """
    free = int(data.total[agent] - data.backlog[agent])
    if not len(tickets):
        return free
    t = np.asarray(edf_order(data, agent, tickets), dtype=np.int64)
    d = work_deadlines(data, agent, t)
    done = data.backlog[agent] + np.cumsum(data.effort[t])
    return int(min(free - int(data.effort[t].sum()), int((d - done).min())))


def feasible(data: BatchData, agent: int, tickets: Sequence[int]) -> bool:
    """The EDF demand bound: every deadline of ``tickets`` can be met by ``agent``."""
    return slack(data, agent, tickets) >= 0
