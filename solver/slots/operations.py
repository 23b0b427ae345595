"""What a service asks of the booking engine: open slots, a booking, the current cover, the calls
at risk. Each answers from the state's index (:mod:`solver.slots.index`) and never names an
agent to a customer.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, tzinfo

from solver.capability import (
    BookingResult,
    BookingState,
    Call,
    Capability,
    Slot,
    SlotAnswer,
    exclusions,
)
from solver.errors import ProblemError
from solver.plan import Reason
from solver.slots.grid import grid_starts, zone
from solver.slots.index import BookingIndex, hand_over, index_of
from solver.timegrid import require_aware


def witness(state: BookingState) -> dict[str, str | None]:
    """The engine's current cover: call id -> agent id (None: nobody can cover it).

    Tentative for unbound calls. Internal: for validation and operators, never for customers.
    """
    return index_of(state).witness()


def at_risk(state: BookingState) -> list[str]:
    """Calls (not yet over) that nobody can cover in the current state."""
    idx = index_of(state)
    return [idx.calls[k].id for k in idx.unplaced()]


def find_slots(
    state: BookingState,
    capability_id: str,
    window_start: datetime,
    window_end: datetime,
    tz: str | tzinfo = "UTC",
) -> SlotAnswer:
    """Open slots of a capability with starts in ``[window_start, window_end)``, and a reason
    when there are none."""
    cap = state.capability(capability_id)
    zone_ = zone(tz)
    ws = require_aware(window_start, "window_start")
    we = require_aware(window_end, "window_end")
    if we <= ws:
        raise ProblemError("window_end", "must be after window_start")
    lo = max(ws, state.now + cap.min_notice)
    hi = min(we, state.now + cap.horizon)
    excluded = exclusions(state, cap.id)
    if hi <= lo:
        return SlotAnswer((), booking_window(cap, state.now), excluded=excluded)
    length = cap.occupancy_minutes
    idx = index_of(state, hi + timedelta(minutes=length))
    if idx.qual[cap.id].size == 0:
        return SlotAnswer((), _no_qualified(cap, excluded), excluded=excluded)
    cand = grid_starts(idx.origin, zone_, cap.granularity_minutes, lo, hi)
    cand = cand[cand + length <= idx.H]
    ok = idx.open_mask(cap.id, cand, length)
    call = timedelta(minutes=cap.call_minutes)
    slots = []
    for m in cand[ok].tolist():
        start = (idx.origin + timedelta(minutes=m)).astimezone(zone_)
        slots.append(Slot(cap.id, start, start + call))
    reason = None
    if not slots:
        detail = {
            "no_agent_working": "no qualified agent works a whole call's length in the window",
            "reserve": "the qualified agents free in the window are kept for ticket work",
            "fully_booked": "no start in the window can be covered together with the calls "
            "already booked",
        }[idx.last_diagnosis]
        reason = Reason(
            idx.last_diagnosis, f"{detail} ({cand.size} starts checked)", float(cand.size)
        )
    return SlotAnswer(tuple(slots), reason, int(cand.size), excluded)


def open_slots(
    state: BookingState,
    capability_id: str,
    window_start: datetime,
    window_end: datetime,
    tz: str | tzinfo = "UTC",
) -> list[Slot]:
    """Open slots of a capability, in ``tz``; see :func:`find_slots` for the reason if none."""
    return list(find_slots(state, capability_id, window_start, window_end, tz).slots)


def booking_window(cap: Capability, now: datetime) -> Reason:
    """The ``outside_booking_window`` reason, in words: how far ahead calls of ``cap`` can be
    booked, and the first and last start that allows at ``now`` (UTC)."""
    first = now + cap.min_notice
    last = now + cap.horizon - timedelta(minutes=1)  # the horizon itself is excluded
    soon = "now" if cap.min_notice <= timedelta(0) else _duration(cap.min_notice)
    return Reason(
        "outside_booking_window",
        f"calls of {cap.id} can be booked from {soon} to {_duration(cap.horizon)} ahead: "
        f"starting between {_moment(first, now)} and {_moment(last, now)} UTC",
    )


def _duration(span: timedelta) -> str:
    """``span`` in words: ``2 hours``, ``14 days``, ``1 day 2 hours 30 minutes``."""
    minutes = int(span.total_seconds() // 60)
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    parts = [
        f"{n} {unit}{'' if n == 1 else 's'}"
        for n, unit in ((days, "day"), (hours, "hour"), (mins, "minute"))
        if n
    ]
    return " ".join(parts) or "0 minutes"


def _moment(moment: datetime, now: datetime) -> str:
    """``Mon 2 Mar 10:00`` in UTC (with the year when it is not ``now``'s)."""
    m = moment.astimezone(UTC)
    year = "" if m.year == now.astimezone(UTC).year else f" {m.year}"
    return f"{m:%a} {m.day} {m:%b}{year} {m:%H:%M}"


def _no_qualified(cap: Capability, excluded: tuple[Reason, ...] = ()) -> Reason:
    need = ", ".join(f"{s} ≥ {lvl}" for s, lvl in sorted(cap.requirements.items())) or "nothing"
    if excluded:  # who and why is in the exclusions, for operators: this reason names nobody
        return Reason(
            "no_qualified_agents",
            f"every agent with what {cap.id} needs ({need}) is excluded from new calls for now",
        )
    return Reason("no_qualified_agents", f"no agent has what {cap.id} needs ({need})")


def book(
    state: BookingState,
    capability_id: str,
    start: datetime,
    ticket_id: str | None = None,
    *,
    call_id: str | None = None,
    owner_agent: str | None = None,
    tz: str | tzinfo = "UTC",
    alternatives: int = 5,
) -> BookingResult:
    """Book a call of ``capability_id`` at ``start`` if it is still open in ``state``.

    Re-checks the exact start against the state (the caller serializes bookings per tenant and
    passes the latest state). On success the result's ``state`` holds the new, unbound call.
    Otherwise ``reason`` says why and ``alternatives`` lists the nearest open starts (in ``tz``).
    """
    cap = state.capability(capability_id)
    start = require_aware(start, "start")
    if start.second or start.microsecond:
        raise ProblemError("start", "must be on a whole minute")
    end = start + timedelta(minutes=cap.call_minutes)
    if start < state.now + cap.min_notice or start >= state.now + cap.horizon:
        return _refuse(state, cap, start, booking_window(cap, state.now), tz, alternatives)
    idx = index_of(state, end + timedelta(minutes=cap.buffer_minutes))
    if idx.qual[cap.id].size == 0:
        return BookingResult(None, None, _no_qualified(cap, exclusions(state, cap.id)))
    call_id = new_call_id(idx, cap, start, call_id)
    call = Call(call_id, cap.id, start, end, ticket_id=ticket_id, owner_agent=owner_agent)
    k = idx._push(call)
    if idx.admit(k):
        idx.commit()
        new = state._derive(calls=(*state.calls, call))
        hand_over(state, new, idx)
        return BookingResult(call, new)
    idx.rollback(0)
    reason = idx.why_not(cap.id, idx.occ_s[k], idx.occ_e[k])
    idx._pop()
    return _refuse(state, cap, start, reason, tz, alternatives)


def new_call_id(idx: BookingIndex, cap: Capability, start: datetime, call_id: str | None) -> str:
    """``call_id`` if it is free (else a 422 naming it), or a fresh ``cap@start[#n]`` id."""
    if call_id is not None:
        if call_id in idx.call_pos:
            raise ProblemError("call_id", f"duplicate call id {call_id!r}")
        return call_id
    base = f"{cap.id}@{start.strftime('%Y%m%dT%H%MZ')}"
    call_id, n = base, 1
    while call_id in idx.call_pos:
        n += 1
        call_id = f"{base}#{n}"
    return call_id


def _refuse(
    state: BookingState, cap: Capability, start: datetime, reason: Reason, tz: str | tzinfo, n: int
) -> BookingResult:
    alts: tuple[Slot, ...] = ()
    if n > 0:
        around = find_slots(state, cap.id, start - timedelta(days=1), start + timedelta(days=1), tz)
        alts = tuple(sorted(around.slots, key=lambda s: (abs(s.start - start), s.start))[:n])
    return BookingResult(None, None, reason, alts)


# --- an independent check of any cover -------------------------------------------------------
