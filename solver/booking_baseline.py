"""The market's booking rule, beside ours, for benchmarks and what-if runs.

Cal.com, Calendly and Easy!Appointments offer a team slot when *any* qualified host is free,
and bind a named host the moment the customer books — round-robin, here the least recently
booked qualified host who is free. There is no reserve for ticket work and no re-shuffling:
when a host drops out, each of their calls is handed to whoever is free then (least recently
booked first), or is lost.

Every call in a baseline state is bound. The functions run on the same
:class:`~solver.capability.BookingState` and index as the engine, so timings compare like for
like; only the rule differs.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta, tzinfo

import numpy as np

from solver.capability import (
    AtRisk,
    Binding,
    BookingResult,
    BookingState,
    Call,
    Change,
    DisruptionReport,
    Slot,
    apply_change,
)
from solver.plan import Reason
from solver.slots.grid import grid_starts, zone
from solver.slots.index import NOT_WORKING, BookingIndex, hand_over, index_of, range_counts
from solver.slots.operations import new_call_id
from solver.timegrid import require_aware


def baseline_open_slots(
    state: BookingState,
    capability_id: str,
    window_start: datetime,
    window_end: datetime,
    tz: str | tzinfo = "UTC",
) -> list[Slot]:
    """Starts at which at least one qualified agent works and holds no call (buffer included)."""
    cap = state.capability(capability_id)
    zone_ = zone(tz)
    lo = max(require_aware(window_start, "window_start"), state.now + cap.min_notice)
    hi = min(require_aware(window_end, "window_end"), state.now + cap.horizon)
    if hi <= lo:
        return []
    length = cap.occupancy_minutes
    idx = index_of(state, hi + timedelta(minutes=length))
    q = idx.qual[cap.id]
    if q.size == 0:
        return []
    cand = grid_starts(idx.origin, zone_, cap.granularity_minutes, lo, hi)
    cand = cand[cand + length <= idx.H]
    rowpos = np.full(idx.n, -1, dtype=np.int64)
    rowpos[q] = np.arange(q.size)
    owner, ws, we = idx.flat_windows()
    r = rowpos[owner]
    sel = r >= 0
    cal = range_counts(
        r[sel],
        np.searchsorted(cand, ws[sel], "left"),
        np.searchsorted(cand, we[sel] - length, "right"),
        q.size,
        cand.size,
    )
    agent_of = np.asarray(idx.agent_of, dtype=np.int64)
    placed = agent_of >= 0
    r = np.where(placed, rowpos[np.where(placed, agent_of, 0)], -1)
    sel = r >= 0
    occ = range_counts(
        r[sel],
        np.searchsorted(cand, np.asarray(idx.occ_s)[sel] - length, "right"),
        np.searchsorted(cand, np.asarray(idx.occ_e)[sel], "left"),
        q.size,
        cand.size,
    )
    ok = ((cal > 0) & (occ == 0)).any(axis=0)
    call = timedelta(minutes=cap.call_minutes)
    out = []
    for m in cand[ok].tolist():
        start = (idx.origin + timedelta(minutes=m)).astimezone(zone_)
        out.append(Slot(cap.id, start, start + call))
    return out


def _last_booked(idx: BookingIndex) -> dict[int, int]:
    """Per agent, the position of their most recent booking (calls are kept in booking order)."""
    cached: dict[int, int] | None = getattr(idx, "_baseline_last", None)
    if cached is None:
        cached = {}
        for k, call in enumerate(idx.calls):
            if call.bound_agent is not None and call.bound_agent in idx.apos:
                cached[idx.apos[call.bound_agent]] = k
        idx._baseline_last = cached  # type: ignore[attr-defined]
    return cached


def _lru_free(idx: BookingIndex, k: int) -> int:
    s, e = idx.occ_s[k], idx.occ_e[k]
    q = idx.qual[idx.cap_of[k]]
    if q.size == 0 or e <= s:
        return -1
    free = q[idx.grid[q, s:e].max(axis=1) == 0]
    if free.size == 0:
        return -1
    last = _last_booked(idx)
    return int(min(free.tolist(), key=lambda a: (last.get(a, -1), a)))


def baseline_book(
    state: BookingState,
    capability_id: str,
    start: datetime,
    ticket_id: str | None = None,
    *,
    call_id: str | None = None,
    owner_agent: str | None = None,
) -> BookingResult:
    """Bind the least recently booked qualified agent who is free for the whole call, now."""
    cap = state.capability(capability_id)
    start = require_aware(start, "start")
    if start < state.now + cap.min_notice or start >= state.now + cap.horizon:
        return BookingResult(None, None, Reason("outside_booking_window", "too soon or too far"))
    end = start + timedelta(minutes=cap.call_minutes)
    idx = index_of(state, end + timedelta(minutes=cap.buffer_minutes))
    call_id = new_call_id(idx, cap, start, call_id)
    call = Call(call_id, cap.id, start, end, ticket_id=ticket_id, owner_agent=owner_agent)
    k = idx._push(call)
    a = _lru_free(idx, k)
    if a < 0:
        idx._pop()
        return BookingResult(None, None, Reason("fully_booked", "no qualified host is free"))
    call = replace(call, bound_agent=idx.agent_ids[a])
    idx.calls[k] = call
    idx._assign(k, a)
    idx.bound[k] = True
    idx.commit()
    _last_booked(idx)[a] = k
    new = state._derive(calls=(*state.calls, call))
    hand_over(state, new, idx)
    return BookingResult(call, new)


def baseline_disrupt(state: BookingState, change: Change | Sequence[Change]) -> DisruptionReport:
    """Hand each call the change makes impossible to the least recently booked free agent."""
    t0 = time.perf_counter()
    changes = list(change) if isinstance(change, Sequence) else [change]
    idx = index_of(state)
    new_state = state
    touched: set[int] = set()
    for ch in changes:
        agent = apply_change(new_state.agent(ch.agent_id), ch)
        new_state = new_state.with_agent(agent)
        a = idx.apos[agent.id]
        idx.update_agent(a, agent)
        touched.add(a)
    affected = sorted(
        (k for a in touched for s, e, k in idx.occ[a] if int(idx.grid[a, s:e].max()) > NOT_WORKING),
        key=lambda k: (idx.occ_s[k], k),
    )
    for k in affected:
        idx._unassign(k)
    rebound: list[Binding] = []
    at_risk: list[AtRisk] = []
    updated: list[Call] = []
    for k in affected:
        call = idx.calls[k]
        a = _lru_free(idx, k)
        if a >= 0:
            idx._assign(k, a)
            _last_booked(idx)[a] = k
            agent_id = idx.agent_ids[a]
            rebound.append(Binding(call.id, agent_id, call.bound_agent))
            call = replace(call, bound_agent=agent_id)
        else:
            at_risk.append(
                AtRisk(call.id, Reason("uncoverable", "no free host left"), call.bound_agent)
            )
            call = replace(call, bound_agent=None)
            idx.bound[k] = False
        idx.calls[k] = call
        updated.append(call)
    idx.commit()
    final = new_state.with_calls(updated)
    hand_over(state, final, idx)
    return DisruptionReport(
        final,
        tuple(rebound),
        tuple(at_risk),
        0,
        tuple(idx.calls[k].id for k in affected),
        time.perf_counter() - t0,
    )
