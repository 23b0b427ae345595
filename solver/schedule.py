"""From "who takes what, in which order" to start and end times, and to a finished Plan.

Each agent first works their existing ``backlog_minutes``, then their new tickets in
``position`` order, preemptively across breaks (see :mod:`solver.availability`). Every policy
builds its plan through :func:`finalize_plan`, so they are all scheduled, timed and scored the
same way.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import MappingProxyType

import numpy as np

from solver.availability import CalendarBank, bank_for
from solver.objective import ObjectiveWeights
from solver.plan import Assignment, Plan, Reason, SolveStats, SolveStatus, TeamQueued
from solver.problem import Problem
from solver.timegrid import from_minute
from solver.validation import evaluate


def schedule_sequences(
    problem: Problem,
    sequences: Mapping[str, Sequence[str]],
    bank: CalendarBank | None = None,
) -> dict[str, tuple[int, int]]:
    """Start and end minute of every sequenced ticket: ``{ticket_id: (start, end)}``."""
    bank = bank or bank_for(problem)
    agent_rows: list[int] = []
    efforts: list[int] = []
    backlog: list[int] = []
    ids: list[str] = []
    group_starts: list[int] = []
    for agent_id, seq in sequences.items():
        if not seq:
            continue
        a = problem.agent_index[agent_id]
        agent = problem.agents[a]
        group_starts.append(len(ids))
        for tid in seq:
            ids.append(tid)
            agent_rows.append(a)
            efforts.append(problem.tickets[problem.ticket_index[tid]].effort_minutes)
            backlog.append(agent.backlog_minutes)
    if not ids:
        return {}
    eff = np.asarray(efforts, dtype=np.int64)
    csum = np.cumsum(eff)
    # Work done before each ticket within its agent's group: restart the running sum per group.
    gs = np.asarray(group_starts, dtype=np.int64)
    offsets = np.zeros(len(ids), dtype=np.int64)
    before_group = np.concatenate(([0], csum))[gs]
    counts = np.diff(np.concatenate((gs, [len(ids)])))
    offsets = np.repeat(before_group, counts)
    done_before = csum - eff - offsets + np.asarray(backlog, dtype=np.int64)
    rows = np.asarray(agent_rows, dtype=np.int64)
    starts = bank.start_minute(rows, done_before)
    ends = bank.finish_minute(rows, done_before + eff)
    return {
        tid: (int(s), int(e)) for tid, s, e in zip(ids, starts.tolist(), ends.tolist(), strict=True)
    }


def finalize_plan(
    problem: Problem,
    sequences: Mapping[str, Sequence[str]],
    queued: Mapping[str, Sequence[Reason]],
    *,
    policy: str,
    wall_seconds: float,
    status: SolveStatus = SolveStatus.FEASIBLE,
    reasons: Mapping[str, Sequence[Reason]] | None = None,
    weights: ObjectiveWeights | None = None,
    bound: float | None = None,
    seed: int | None = None,
    params: Mapping[str, object] | None = None,
    phases: Mapping[str, float] | None = None,
    notes: Sequence[str] = (),
) -> Plan:
    """Schedule ``sequences`` (agent -> ordered ticket ids), score, and wrap as a Plan.

    ``queued`` maps each ticket left with its team's queue to the reasons why.
    """
    bank = bank_for(problem)
    times = schedule_sequences(problem, sequences, bank)
    reasons = reasons or {}
    assignments = tuple(
        Assignment(
            ticket_id=tid,
            agent_id=agent_id,
            position=pos,
            start=from_minute(times[tid][0], problem.now),
            end=from_minute(times[tid][1], problem.now),
            reasons=tuple(reasons.get(tid, ())),
        )
        for agent_id, seq in sequences.items()
        for pos, tid in enumerate(seq)
    )
    team_queued = tuple(
        TeamQueued(ticket_id=tid, team_id=problem.ticket(tid).team, reasons=tuple(why))
        for tid, why in queued.items()
    )
    draft = Plan(
        assignments,
        team_queued,
        SolveStats(policy=policy, status=status, wall_seconds=wall_seconds),
    )
    ev = evaluate(problem, draft, weights or ObjectiveWeights(), times=times)
    stats = SolveStats(
        policy=policy,
        status=status,
        wall_seconds=wall_seconds,
        objective=ev.objective,
        bound=bound,
        parts=ev.parts,
        seed=seed,
        params=MappingProxyType(dict(params or {})),
        phases=MappingProxyType(dict(phases or {})),
        notes=tuple(notes),
    )
    return Plan(assignments, team_queued, stats)
