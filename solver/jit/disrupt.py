"""Repair after a disruption: re-place only the calls an agent can no longer hold (and those
pushed out by their team's reserve), with the fewest changes a customer or agent would see."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from solver.capability import (
    AtRisk,
    Binding,
    BookingState,
    Call,
    Change,
    DisruptionReport,
    apply_change,
)
from solver.jit.bind import REPAIR_BUDGET, uncoverable
from solver.plan import Reason
from solver.slots.index import NOT_WORKING, SEARCH_DEPTH, BookingIndex, hand_over, index_of


def disrupt(state: BookingState, change: Change | Sequence[Change]) -> DisruptionReport:
    """Apply ``change`` to the agents and repair the cover with the fewest visible changes."""
    t0 = time.perf_counter()
    changes = list(change) if isinstance(change, Sequence) else [change]
    idx = index_of(state)
    before = list(idx.agent_of)
    was_bound = list(idx.bound)
    new_state = state
    touched: set[int] = set()
    for ch in changes:
        if ch.agent_id not in new_state.agent_index:
            raise ValueError(f"unknown agent {ch.agent_id!r}")
        agent = apply_change(new_state.agent(ch.agent_id), ch)
        new_state = new_state.with_agent(agent)
        a = idx.apos[agent.id]
        idx.update_agent(a, agent)
        touched.add(a)

    affected: list[int] = []
    for a in touched:
        for s, e, k in list(idx.occ[a]):
            if k not in idx.pinned and int(idx.grid[a, s:e].max()) > NOT_WORKING:
                affected.append(k)
    for k in affected:
        idx._unassign(k)
    for t in {int(idx.team_of[a]) for a in touched}:
        affected.extend(_relieve_reserve(idx, t))
    hit = set(affected)
    was_unplaced = [k for k in idx.unplaced() if k not in hit]

    lost: list[int] = []
    for k in sorted(set(affected), key=lambda k: (idx.occ_s[k], k)):
        prev = before[k]
        prefer = [p for p in (_owner(idx, k), prev) if p >= 0]
        if not idx.place(k, SEARCH_DEPTH, [REPAIR_BUDGET], prefer=prefer):
            lost.append(k)
    # Last resort: move bound calls (each one a visible change) to keep a call on the books.
    still: list[int] = []
    for k in lost:
        if not idx.place(k, 1, [REPAIR_BUDGET], allow_bound=True):
            still.append(k)
    for k in was_unplaced:  # new capacity (a shift added) may rescue calls lost earlier
        idx.place(k, SEARCH_DEPTH, [REPAIR_BUDGET])
    idx.commit()

    rebound: list[Binding] = []
    at_risk: list[AtRisk] = []
    updated: list[Call] = []
    moved_unbound = 0
    for k in range(len(idx.calls)):
        if k in idx.past or idx.agent_of[k] == before[k]:
            continue
        call = idx.calls[k]
        if not was_bound[k]:
            if idx.agent_of[k] >= 0 and before[k] >= 0:
                moved_unbound += 1
            continue
        if idx.agent_of[k] >= 0:
            agent_id = idx.agent_ids[idx.agent_of[k]]
            rebound.append(
                Binding(
                    call.id,
                    agent_id,
                    call.bound_agent,
                    (Reason("rebound", f"{call.bound_agent} can no longer take it"),),
                )
            )
            call = replace(call, bound_agent=agent_id)
        else:
            call = replace(call, bound_agent=None)
            idx.bound[k] = False
        idx.calls[k] = call
        updated.append(call)
    for k in still:
        call = idx.calls[k]
        held = idx.agent_ids[before[k]] if before[k] >= 0 else None
        at_risk.append(AtRisk(call.id, uncoverable(call), held))
    final = new_state.with_calls(updated)
    hand_over(state, final, idx)
    return DisruptionReport(
        final,
        tuple(rebound),
        tuple(at_risk),
        moved_unbound,
        tuple(idx.calls[k].id for k in sorted(set(affected))),
        time.perf_counter() - t0,
    )


def _owner(idx: BookingIndex, k: int) -> int:
    owner = idx.calls[k].owner_agent
    return idx.apos.get(owner, -1) if owner is not None else -1


def _relieve_reserve(idx: BookingIndex, team: int) -> list[int]:
    """Unplace calls of ``team`` until its reserve holds again; unbound calls go first."""
    out: list[int] = []
    while True:
        neg = np.flatnonzero(idx.slack[team] < 0)
        if neg.size == 0:
            return out
        minute = int(neg[0])
        holders = [
            k
            for a in np.flatnonzero(idx.team_of == team).tolist()
            for s, e, k in idx.occ[a]
            if s <= minute < e and k not in idx.pinned  # a wrap-up holds no reserve
        ]
        k = min(holders, key=lambda k: (idx.bound[k], -idx.occ_s[k], k))
        idx._unassign(k)
        out.append(k)
