"""Bookings: customers' calls against capability pools, checked by the booking engine.

The engine (``solver.slots``, ``solver.jit``) decides; this module loads its state, persists its
answers and records what happened. The mapping is thin on purpose:

- **State.** The tenant's agents, capabilities and booked calls still to come or under way
  (``solver_input.booking_state``), with each unbound call's last tentative cover
  (``calls.cover_agent``) so the engine rebuilds the cover it had. After every decision the new
  cover is written back (only the rows whose cover moved). The routes pass the app's
  :class:`~api.bookings.cache.BookingCache`: the agents' side of the state (and the
  engine's availability grid built from it) is reused while the organisation version read in
  the request's transaction — inside the lock for writes — and the capabilities are unchanged;
  the calls are read and placed on every request. Without a cache (the background job)
  everything is read and built each time.
- **Writes that must not race** — booking, cancelling, binding, rebalancing — open their unit
  of work with :func:`api.db.locks.lock_tenant`, read the latest state *inside* the lock,
  re-check with the engine, then write. Capabilities share agents, so the lock is per tenant,
  not per capability. Reading open slots takes no lock: the answer is advisory, and booking
  re-checks.
- **History and webhooks.** Every change lands on the ticket's history as a ``call_booked``
  event whose ``data.action`` says what happened (``booked``, ``agent_bound``,
  ``agent_rebound``, ``at_risk`` — which also unbinds —), except a cancellation, which is a
  ``call_cancelled`` step (``data.action`` ``cancelled`` and ``data.reason``: ``requested``
  here, ``ticket_solved``/``ticket_closed`` from :mod:`api.tickets.calls`). Each also becomes a
  ``booking.*`` webhook event in the same transaction. ``booking.at_risk`` is sent when a call
  *becomes* uncoverable (``at_risk_since``), not again on every later check.
  The agent's own steps have kinds of their own: ``call_admitted`` (``booking.admitted``),
  ``call_no_show`` and ``call_completed`` (``booking.no_show`` / ``booking.completed``). Every
  ``booking.*`` event carries the ticket's context as it stands then
  (:func:`api.events.booking_event_data`).
- **Calendars fail closed.** Every request reads which agents' calendars cannot be trusted
  (:mod:`api.calendar_trust`: a failed connection, or no good sync for
  ``calendar_max_staleness_seconds``) and blocks them in the engine's state
  (``BookingState.blocked``): they keep the calls bound to them and get nothing new. The helpdesk
  sees them named (``excluded``, ``agent_excluded`` reasons); customers never do. A connection
  failing or recovering queues a re-check like a shift change does (:mod:`api.org_version`); a
  mirror going stale writes nothing, so each run also queues one for that moment.
- **Agents.** Nothing names an agent before binding; the helpdesk sees the bound agent after.
  Only the bound agent admits the customer (:func:`admit`: from the waiting room's opening to
  the end), marks a no-show (:func:`mark_no_show`: after the start, never once admitted) or
  completes the call (:func:`complete`: after admission or the start), each under the tenant
  lock. :func:`agent_day` lists one agent's calls of a local day with their tickets.

Background work, one job kind (``bookings.bind``, running :func:`rebalance`): every booking
queues a run for the moment its call enters the lead time (unless one is queued earlier), each
run queues the next, and any commit that changes an agent, their skills, shifts or busy time
queues a run at once when the tenant has calls booked (:func:`queue_rechecks`), so a disruption is
repaired and reported within a worker poll whoever made the change. Calls whose time has passed
are marked ``completed`` by these runs (and by ``bind``/``rebalance``); reads report them
completed from their end on (:func:`shown_status`). Where the tenant admits customers by itself
(``call_room.admission`` ``auto``) each run also queues one for the next unadmitted call's
start, which records that admission (:func:`_auto_admit`).
"""

from __future__ import annotations

import builtins
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import and_, bindparam, or_, select
from sqlalchemy.orm import Session

from api import calendar_trust, events, mapping, org_version, solver_input
from api.bookings import cache as booking_cache
from api.bookings.cache import BookingCache
from api.calendar_sync import writeback
from api.common import service as common
from api.db.jobs import Job, JobStatus
from api.db.locks import lock_tenant
from api.db.models import Agent as AgentRow
from api.db.models import Call as CallRow
from api.db.models import CallNote, CallStatus
from api.db.models import Ticket as TicketRow
from api.enums import TicketEventKind
from api.errors import Conflict, FieldError, InvalidInput, NotFound
from api.jobs import queue as job_queue
from api.jobs.worker import JobContext
from api.policies import service as policies
from api.policies.schemas import Admission, CapabilityCoverage
from api.tickets import history
from solver import jit, slots
from solver.capability import (
    AtRisk,
    Binding,
    BookingState,
    Capability,
    Slot,
    SlotAnswer,
    exclusions,
)
from solver.plan import Reason

WHAT = "booking"
BIND_JOB = "bookings.bind"
DEFAULT_LEAD = jit.DEFAULT_LEAD
ALTERNATIVES = 5
MAX_SLOT_WINDOW = timedelta(days=31)
DEFAULT_SLOT_WINDOW = timedelta(days=7)

# Slot queries take no lock and run in the server's thread pool, so many can compute at once.
# That only makes each slower: the engine's work is Python and small numpy arrays holding the
# GIL, and threads contending for it cost more CPU per query, not less: 8 threads through this
# gate answer about as many queries as one thread alone, and more than 8 without it (figures:
# benchmarks/README.md, Capability booking). One query computes at a time per process; the
# others wait without using the CPU.
SLOT_QUERY_GATE = threading.BoundedSemaphore(1)


class BookingRefused(Conflict):
    """The slot is no longer open (409): the engine's reason and the nearest open starts."""

    title = "Slot not available"
    slug = "slot-unavailable"

    def __init__(
        self, reason: Reason, alternatives: Sequence[Slot], excluded: Sequence[Reason] = ()
    ) -> None:
        # A start outside the booking window is the start's fault: name the field.
        errors = (
            [FieldError("start", reason.detail)] if reason.rule == "outside_booking_window" else []
        )
        # Blocked agents (fail closed) are named for the helpdesk; a customer's page shows
        # neither this detail nor ``excluded``, only that the time was taken.
        named = "".join(f"; {e.detail}" for e in excluded)
        super().__init__(f"{reason.rule}: {reason.detail}{named}", errors=errors)
        self.reason = reason
        self.alternatives = tuple(alternatives)
        self.excluded = tuple(excluded)


# --------------------------------------------------------------------------- loading


# A call holds its agent until ``occupied_until`` (end + buffer), also once it is completed:
# completion is stored at the call's end, and the wrap-up after it still occupies the agent.
HOLDING = (CallStatus.BOOKED, CallStatus.COMPLETED)


def _live_rows(session: Session, tenant_id: str, now: datetime) -> builtins.list[CallRow]:
    """Calls that still hold (or will hold) an agent at ``now``: booked ones, and completed
    ones still in their wrap-up (which the engine keeps on their agent and never moves)."""
    stmt = (
        select(CallRow)
        .where(
            CallRow.tenant_id == tenant_id,
            CallRow.status.in_(HOLDING),
            CallRow.occupied_until > now,
        )
        .order_by(CallRow.start_at, CallRow.id)
    )
    return builtins.list(session.scalars(stmt))


_LIVE_CALLS = (
    select(
        CallRow.id,
        CallRow.capability_id,
        CallRow.start_at,
        CallRow.end_at,
        CallRow.occupied_until,
        CallRow.ticket_id,
        CallRow.bound_agent,
        CallRow.cover_agent,
    )
    .where(
        CallRow.tenant_id == bindparam("tenant"),
        CallRow.status.in_(HOLDING),
        CallRow.occupied_until > bindparam("now"),
    )
    .order_by(CallRow.start_at, CallRow.id)
)


def _live_calls(session: Session, tenant_id: str, now: datetime) -> Sequence[Any]:
    """What :func:`_live_rows` reads, as plain rows (the same attribute names) for reading
    only: loading them as ORM objects is a large share of a warm slot query (figures:
    benchmarks/README.md, Capability booking)."""
    return session.execute(_LIVE_CALLS, {"tenant": tenant_id, "now": now}).all()


def _trust(
    session: Session,
    tenant_id: str,
    now: datetime,
    cache: BookingCache | None,
    max_staleness: timedelta | None = None,
) -> calendar_trust.Trust:
    """Who is blocked at ``now`` (fail closed), under ``max_staleness`` if given, else the
    app's (``cache.max_staleness``), else the setting's default."""
    if max_staleness is None:
        max_staleness = (
            cache.max_staleness if cache is not None else calendar_trust.DEFAULT_MAX_STALENESS
        )
    return calendar_trust.trust(session, tenant_id, now, max_staleness)


def _load(
    session: Session,
    tenant_id: str,
    now: datetime,
    cache: BookingCache | None = None,
    caps: tuple[Capability, ...] | None = None,
    *,
    read_only: bool = False,
    trust: calendar_trust.Trust | None = None,
) -> tuple[BookingState, dict[str, CallRow]]:
    """The engine's state at ``now`` and the live call rows by id, read in ``session``'s
    transaction (inside the tenant lock for the writes). With a ``cache``, the organisation
    part comes from it when its version still holds (:mod:`api.bookings.cache`) and
    only the calls are placed; without one, everything is read and built here. ``read_only``
    reads the calls as plain rows and returns no ORM rows (for answers that write nothing).

    The agents whose calendar cannot be trusted (``trust``, read here when not given) are
    blocked in the state: they keep the calls bound to them and the engine counts on them for
    nothing new (no slot, booking, cover or binding) until their next good sync."""
    if trust is None:
        trust = _trust(session, tenant_id, now, cache)
    rows = (
        _live_calls(session, tenant_id, now) if read_only else _live_rows(session, tenant_id, now)
    )
    if caps is None:
        caps = solver_input.capabilities(session=session, tenant_id=tenant_id)
    org = None
    if cache is not None:
        org = booking_cache.organisation(
            session=session,
            cache=cache,
            tenant_id=tenant_id,
            now=now,
            capabilities=caps,
            reach=solver_input.booking_reach(now, caps, rows),
        )
    state = solver_input.booking_state(
        session=session,
        tenant_id=tenant_id,
        now=now,
        calls=rows,
        caps=caps,
        agents=None if org is None else org.agents,
        blocked=trust.blocked,
    )
    if org is not None and org.base is not None:
        slots.index_from(org.base, state)
    return state, {} if read_only else {r.id: r for r in rows}


def _sync_occupancy(state: BookingState, rows: Mapping[str, CallRow], *, grow: bool) -> None:
    """Bring each row's ``occupied_until`` to the buffer the engine uses now (a capability's
    buffer may have changed since booking), so the exclusion constraint agrees with the engine.

    Shrinking never makes two ranges overlap; growing may, for a binding the engine finds stale,
    so it is done only once stale bindings have been repaired (``grow=True``, by rebalance).
    """
    for row in rows.values():
        if row.status is not CallStatus.BOOKED:
            continue
        buffer = state.capability(row.capability_id).buffer_minutes
        occupied = row.end_at + timedelta(minutes=buffer)
        if occupied < row.occupied_until or (grow and occupied > row.occupied_until):
            row.occupied_until = occupied


def _save_cover(state: BookingState, rows: Mapping[str, CallRow]) -> None:
    """Write the engine's tentative cover back to the unbound rows whose cover moved."""
    cover = slots.witness(state)
    for call_id, row in rows.items():
        if row.status is not CallStatus.BOOKED:
            continue
        agent = None if row.bound_agent else cover.get(call_id)
        if row.cover_agent != agent:
            row.cover_agent = agent


def _complete_past(session: Session, tenant_id: str, now: datetime) -> int:
    rows = session.scalars(
        select(CallRow).where(
            CallRow.tenant_id == tenant_id,
            CallRow.status == CallStatus.BOOKED,
            CallRow.end_at <= now,
        )
    ).all()
    for row in rows:
        row.status = CallStatus.COMPLETED
        # The cover stays: an unbound call's agent is still in wrap-up until occupied_until.
        row.updated_at = now
    return len(rows)


# --------------------------------------------------------------------------- slots


def open_slots(
    *,
    session: Session,
    tenant_id: str,
    capability_id: str,
    now: datetime,
    start: datetime | None,
    end: datetime | None,
    tz: str,
    cache: BookingCache | None = None,
    max_staleness: timedelta | None = None,
) -> SlotAnswer:
    """Open starts of a capability in ``[start, end)`` (default: the coming week), in ``tz``.

    No start counts on an agent whose calendar cannot be trusted (fail closed); the answer's
    ``excluded`` names the qualified ones left out, and why. That is for the helpdesk: a
    customer's answer drops it (:func:`api.links.service.open_slots`)."""
    caps = solver_input.capabilities(session=session, tenant_id=tenant_id)
    if capability_id not in {c.id for c in caps}:
        raise NotFound("capability", capability_id)
    lo = start or now
    hi = end or lo + DEFAULT_SLOT_WINDOW
    if hi <= lo:
        raise InvalidInput.one("query.to", "must be after 'from'")
    if hi - lo > MAX_SLOT_WINDOW:
        raise InvalidInput.one(
            "query.to", f"the window may span at most {MAX_SLOT_WINDOW.days} days"
        )
    with SLOT_QUERY_GATE:
        trust = _trust(session, tenant_id, now, cache, max_staleness)
        state, _rows = _load(session, tenant_id, now, cache, caps, read_only=True, trust=trust)
        if cache is None:
            return slots.find_slots(state, capability_id, lo, hi, tz)
        return _shared_slots(tenant_id, state, capability_id, lo, hi, tz, cache)


def _minute(at: datetime) -> datetime:
    return at.replace(second=0, microsecond=0)


def _shared_slots(
    tenant_id: str,
    state: BookingState,
    capability_id: str,
    lo: datetime,
    hi: datetime,
    tz: str,
    cache: BookingCache,
) -> SlotAnswer:
    """The open starts in ``[lo, hi)``, shared between queries of the same state.

    Customers' pickers ask the same question many times a minute (every customer of a
    capability sees the same week); the answer is computed once per state — the key of
    :func:`_state_key`, with ``now``, ``lo`` and ``hi`` to the minute, as refusals share their
    alternatives — and each caller keeps only the starts it may book at its own ``now``
    (after the minimum notice, before ``hi``). A start is a whole minute, so ``lo`` to the
    minute offers no start the exact ``lo`` would not, once filtered."""
    key = ("slots", *_state_key(tenant_id, state), capability_id, _minute(lo), _minute(hi), tz)

    def compute() -> SlotAnswer:
        return slots.find_slots(state, capability_id, _minute(lo), hi, tz)

    answer = cache.slot_answers.get(key, compute)
    cap = state.capability(capability_id)
    earliest = max(lo, state.now + cap.min_notice)
    kept = tuple(s for s in answer.slots if earliest <= s.start < hi)
    if len(kept) == len(answer.slots):
        return answer
    if not kept:  # the starts shared were all in the minute just gone: say why, exactly
        return slots.find_slots(state, capability_id, lo, hi, tz)
    return replace(answer, slots=kept)


# --------------------------------------------------------------------------- book / cancel


def _check_on_grid(start: datetime, granularity: int, tz: str) -> None:
    """The engine offers starts every ``granularity`` minutes from local midnight in the
    customer's zone; a start off that grid was never offered, so it is bad input."""
    if start.second or start.microsecond:
        raise InvalidInput.one("start", "must be on a whole minute")
    grid = slots.grid_starts(
        start, slots.zone(tz), granularity, start, start + timedelta(minutes=1)
    )
    if 0 not in grid.tolist():
        raise InvalidInput.one(
            "start",
            f"not on the slot grid: starts fall every {granularity} minutes from midnight in {tz}",
        )


@dataclass(frozen=True, slots=True)
class NewBooking:
    """What a customer asks to book: a call of ``capability_id`` for ticket ``ticket_id`` at
    ``start`` (aware; on the capability's slot grid in ``tz``, the customer's zone)."""

    capability_id: str
    ticket_id: str
    start: datetime
    tz: str = "UTC"
    allow_additional: bool = False


@dataclass(frozen=True, slots=True)
class Booked:
    """A booking made: its row, and the warnings it was allowed despite (coverage ``warn``)."""

    row: CallRow
    warnings: tuple[str, ...] = ()


def missing_skills(
    required: Mapping[str, int], covered: Mapping[str, int]
) -> dict[str, tuple[int, int | None]]:
    """What a capability requiring ``covered`` (skill -> minimum level) does not cover of a
    ticket requiring ``required``: ``{skill: (level the ticket needs, level the capability
    requires or None)}``.

    A capability *covers* a ticket when, for every skill the ticket requires at level ``L``,
    the capability requires that skill at level ``L`` or higher: then every agent who may take
    the call is qualified for the ticket. A skill the capability does not require at all, or
    requires at a lower level, is missing (an agent who happens to have it is not guaranteed).
    """
    out: dict[str, tuple[int, int | None]] = {}
    for skill, level in sorted(required.items()):
        has = covered.get(skill)
        if has is None or has < level:
            out[skill] = (level, has)
    return out


def _missing_text(missing: Mapping[str, tuple[int, int | None]]) -> builtins.list[str]:
    return [
        f"{skill} at level {need} (the capability requires "
        + ("none" if has is None else f"level {has}")
        + ")"
        for skill, (need, has) in missing.items()
    ]


def _check_live_calls(
    session: Session, tenant_id: str, ticket_id: str, now: datetime, allowed: int
) -> None:
    """Refuse (409, naming them) a new call for a ticket that already has ``allowed`` calls
    booked and not over."""
    live = builtins.list(
        session.scalars(
            select(CallRow.id)
            .where(
                CallRow.tenant_id == tenant_id,
                CallRow.ticket_id == ticket_id,
                CallRow.status == CallStatus.BOOKED,
                CallRow.end_at > now,
            )
            .order_by(CallRow.start_at, CallRow.id)
        )
    )
    if len(live) < allowed:
        return
    named = ", ".join(live)
    raise Conflict(
        f"ticket {ticket_id!r} already has {len(live)} booked call(s) ({named}); the tenant "
        f"allows {allowed} per ticket",
        errors=[
            FieldError(
                "ticket_id",
                f"already has booked call(s) {named}; cancel or reuse it, or send "
                "allow_additional: true to book another",
            )
        ],
    )


def book(
    *,
    session: Session,
    tenant_id: str,
    data: NewBooking,
    now: datetime,
    actor: str | None,
    cache: BookingCache | None = None,
    link_id: str | None = None,
    announce: bool = True,
    max_staleness: timedelta | None = None,
) -> Booked:
    """Book a call of ``data.capability_id`` at ``data.start`` for ticket ``data.ticket_id``.

    Raises :class:`BookingRefused` when the engine finds the start no longer coverable
    together with every call already booked, and :class:`Conflict` (naming ``ticket_id``) when
    the ticket is solved or closed: a call is work on the ticket. Pending tickets (waiting on
    the customer) may get one. The ticket is read inside the tenant lock, like everything else.

    The tenant's policies (:mod:`api.policies`) apply: a ticket that already has
    ``live_calls_per_ticket`` calls booked and not over gets no other (409 naming them) unless
    ``data.allow_additional``; a capability that does not cover the ticket's required skills
    (:func:`missing_skills`) is refused with a 422 naming them (``capability_coverage``
    ``refuse``) or booked with a warning naming them (``warn``).

    ``link_id`` records the call link it was booked through; ``announce=False`` leaves the
    history step and webhook to the caller (a reschedule tells one step for the pair).

    Agents whose calendar cannot be trusted (:mod:`api.calendar_trust`, under
    ``max_staleness``, by default the cache's) are not counted on: a start only they could
    cover is refused, the refusal naming them (``BookingRefused.excluded``).
    """
    lock_tenant(session, tenant_id)
    # Every capability, as the engine sees them, in one read: the engine's state needs them all.
    caps = solver_input.capabilities(session=session, tenant_id=tenant_id)
    cap = next((c for c in caps if c.id == data.capability_id), None)
    if cap is None:
        raise InvalidInput.one("capability_id", f"unknown capability {data.capability_id!r}")
    ticket = common.get(session, TicketRow, tenant_id, data.ticket_id)
    if ticket is None:
        raise InvalidInput.one("ticket_id", f"unknown ticket {data.ticket_id!r}")
    start = data.start.astimezone(UTC)
    _check_on_grid(start, cap.granularity_minutes, data.tz)
    if ticket.status.is_done:
        raise Conflict(
            f"ticket {ticket.id!r} is {ticket.status.value}: calls are booked for open work only",
            errors=[
                FieldError(
                    "ticket_id",
                    f"ticket is {ticket.status.value}; reopen it to book a call for it",
                )
            ],
        )
    rules = policies.load(session, tenant_id)
    missing = missing_skills(
        {s.skill_id: s.level for s in ticket.required_skills},
        cap.requirements,
    )
    warnings: tuple[str, ...] = ()
    if missing:
        said = _missing_text(missing)
        if rules.capability_coverage is CapabilityCoverage.REFUSE:
            raise InvalidInput(
                [
                    FieldError("capability_id", f"does not cover the ticket's required skill {m}")
                    for m in said
                ],
                detail=f"capability {cap.id!r} does not cover ticket {ticket.id!r}: it lacks "
                + "; ".join(said),
            )
        warnings = (
            f"capability {cap.id!r} does not cover ticket {ticket.id!r}'s required skills: "
            + "; ".join(said),
        )
    if not data.allow_additional:
        _check_live_calls(session, tenant_id, ticket.id, now, rules.live_calls_per_ticket)

    trust = _trust(session, tenant_id, now, cache, max_staleness)
    state, rows = _load(session, tenant_id, now, cache, caps, trust=trust)
    # The engine's answer is a function of the state: a start it refused in this very state
    # (a burst of customers wanting one full start) is refused again without searching.
    key = None if cache is None else (*_state_key(tenant_id, state), cap.id, start)
    known = None if key is None or cache is None else cache.refusals.peek(key)
    if known is not None and now + cap.min_notice <= start < now + cap.horizon:
        session.rollback()  # nothing written: release the lock first (see below)
        raise _refused(tenant_id, state, cap.id, start, data.tz, cache, known)
    call_id = events.new_id("call", now)
    result = slots.book(
        state,
        cap.id,
        start,
        ticket.id,
        call_id=call_id,
        owner_agent=ticket.owner_agent_id,
        tz=data.tz,
        alternatives=0,  # computed below, outside the lock
    )
    if result.call is None or result.state is None:
        assert result.reason is not None
        if key is not None and cache is not None and result.reason.rule != "outside_booking_window":
            cache.refusals.put(key, result.reason)
        # Refused, and nothing was written: end the unit of work now, which releases the tenant
        # lock (and SQLite's write lock), so the next booking is decided while this refusal's
        # alternatives are computed from the state already read (in memory, read-only).
        session.rollback()
        raise _refused(tenant_id, state, cap.id, start, data.tz, cache, result.reason)
    call = result.call
    row = CallRow(
        tenant_id=tenant_id,
        id=call.id,
        capability_id=cap.id,
        ticket_id=ticket.id,
        start_at=call.start,
        end_at=call.end,
        occupied_until=call.end + timedelta(minutes=cap.buffer_minutes),
        timezone=data.tz,
        status=CallStatus.BOOKED,
        link_id=link_id,
        created_at=now,
        updated_at=now,
    )
    session.add(row)
    _save_cover(result.state, {**rows, row.id: row})
    if announce:
        _announce_booked(session, tenant_id, row, cap.id, now, actor, warnings)
    _schedule_bind(session, tenant_id, now, _due_at(call.start, DEFAULT_LEAD))
    if trust.next_stale is not None:  # its cover may go stale first: re-check it then
        _schedule_bind(session, tenant_id, now, _after(trust.next_stale))
    session.flush()
    return Booked(row, warnings)


def _after(moment: datetime) -> datetime:
    """Just after ``moment``: a connection is stale once its age *exceeds* the limit."""
    return moment + timedelta(seconds=1)


def _refused(
    tenant_id: str,
    state: BookingState,
    capability_id: str,
    start: datetime,
    tz: str,
    cache: BookingCache | None,
    reason: Reason,
) -> BookingRefused:
    """The refusal of ``start`` for ``reason``, with the nearest open starts and, unless the
    start is outside the booking window, the qualified agents left out (fail closed)."""
    excluded = () if reason.rule == "outside_booking_window" else exclusions(state, capability_id)
    return BookingRefused(
        reason, _alternatives(tenant_id, state, capability_id, start, tz, cache), excluded
    )


def _announce_booked(
    session: Session,
    tenant_id: str,
    row: CallRow,
    capability_id: str,
    now: datetime,
    actor: str | None,
    warnings: tuple[str, ...],
) -> None:
    _announce(
        session,
        tenant_id,
        row,
        now=now,
        actor=actor,
        action="booked",
        reason=f"call booked ({capability_id}, {row.start_at.isoformat()})",
        webhook_type=events.EventType.BOOKING_CREATED,
        extra={"warnings": builtins.list(warnings)} if warnings else None,
    )


def known_refusal(
    *,
    session: Session,
    tenant_id: str,
    capability_id: str,
    start: datetime,
    tz: str,
    now: datetime,
    cache: BookingCache | None,
) -> BookingRefused | None:
    """Before the lock: the refusal of ``start`` when the engine already refused it in the
    state as committed now (``cache.refusals``), with the shared alternatives; else None (then
    :func:`book` decides under the lock).

    In a burst of customers wanting one full start, the refusals after the first of a state
    are answered from reads, without queueing for the tenant lock: true as of the state read
    (a customer a moment earlier would have been refused the same), and nothing is written.
    Only a *known* refusal is answered; nothing is searched here. ``session`` must be a read
    unit of work of its own (the caller ends it before writing)."""
    if cache is None:
        return None
    caps = solver_input.capabilities(session=session, tenant_id=tenant_id)
    cap = next((c for c in caps if c.id == capability_id), None)
    if cap is None or start.second or start.microsecond:
        return None
    at = start.astimezone(UTC)
    if not now + cap.min_notice <= at < now + cap.horizon:
        return None
    with SLOT_QUERY_GATE:
        state, _rows = _load(session, tenant_id, now, cache, caps, read_only=True)
    known = cache.refusals.peek((*_state_key(tenant_id, state), cap.id, at))
    if known is None:
        return None
    return _refused(tenant_id, state, cap.id, at, tz, cache, known)


def _state_key(tenant_id: str, state: BookingState) -> tuple[Any, ...]:
    """Everything the engine's answers depend on in ``state``: the cached organisation (by
    identity: the same object while its version holds), the capabilities, the calls with their
    binding and the stored cover, team reserves, the blocked agents (read on every request: a
    connection failing or going stale bumps no version), and ``now`` to the minute (the
    engine's grid is whole minutes; a new call starts on a whole minute at or after ``now``, so
    the seconds cannot change whether it fits)."""
    return (
        tenant_id,
        booking_cache.Identity(state.agents),
        repr(state.capabilities),  # frozen but holding mappings: not hashable as such
        tuple((c.id, c.capability_id, c.start, c.end, c.bound_agent) for c in state.calls),
        tuple(sorted(state.cover.items())),
        tuple(sorted(state.team_reserve.items())),
        tuple(sorted(state.blocked.items())),  # fail closed: who and why, as of this request
        state.now.replace(second=0, microsecond=0),
    )


def _alternatives(
    tenant_id: str,
    state: BookingState,
    capability_id: str,
    start: datetime,
    tz: str,
    cache: BookingCache | None,
) -> builtins.list[Slot]:
    """The open starts nearest ``start`` (a day either side, at most :data:`ALTERNATIVES`) in
    ``state``, for a refusal.

    Refusals of one burst see the same state: computing the starts once per state and sharing
    them (``cache.alternatives``) keeps the 190 refusals of a 200-customer race from each
    spending the engine's time on the same answer (figures: benchmarks/README.md, Booking
    race). The key is everything the answer depends on — the cached organisation (by
    identity), the capabilities, the calls with their binding and cover, the capability, start
    and zone — and ``now`` to the minute (the engine's grid is whole minutes); each caller then
    keeps only the starts inside its own booking window, so a caller whose ``now`` is a few
    seconds later than the one computed with gets no start it could not book.
    """
    cap = state.capability(capability_id)
    day = timedelta(days=1)

    def compute() -> tuple[Slot, ...]:
        with SLOT_QUERY_GATE:
            return slots.find_slots(state, capability_id, start - day, start + day, tz).slots

    if cache is None:
        around = compute()
    else:
        key = (*_state_key(tenant_id, state), capability_id, start, tz)
        around = cache.alternatives.get(key, compute)
    lo, hi = state.now + cap.min_notice, state.now + cap.horizon
    inside = [s for s in around if lo <= s.start < hi]
    return sorted(inside, key=lambda s: (abs(s.start - start), s.start))[:ALTERNATIVES]


def _announce(
    session: Session,
    tenant_id: str,
    row: CallRow,
    *,
    now: datetime,
    actor: str | None,
    action: str,
    reason: str,
    webhook_type: events.EventType,
    extra: Mapping[str, Any] | None = None,
    webhook_extra: Mapping[str, Any] | None = None,
    kind: TicketEventKind = TicketEventKind.CALL_BOOKED,
    **changes: str | None,
) -> None:
    """Tell one booking step twice, in the caller's transaction: on the ticket's history (the
    ticket stays the source of truth) and as a webhook event. ``extra`` goes to both unless
    ``webhook_extra`` says what the webhook carries instead; ``changes`` are from/to agents."""
    history.record_event(
        session=session,
        tenant_id=tenant_id,
        ticket_id=row.ticket_id,
        kind=kind,
        now=now,
        actor=actor,
        reason=reason,
        data=events.normalize_data(
            {"action": action, **events.booking_payload(row), **(extra or {})}
        ),
        **changes,
    )
    told = extra if webhook_extra is None else webhook_extra
    events.emit(
        session=session,
        tenant_id=tenant_id,
        type=webhook_type,
        data={**events.booking_event_data(session, row), **(told or {})},
        now=now,
    )


def get_or_raise(*, session: Session, tenant_id: str, booking_id: str) -> CallRow:
    return common.get_or_raise(session, CallRow, tenant_id, booking_id, WHAT)


def shown_status(row: CallRow, now: datetime) -> CallStatus:
    """A booking's status at ``now``: a booked call whose end has passed is completed.

    Completion is *stored* by the bookings job (``_complete_past``, in every bind/rebalance
    run), which may run long after the call ended — or not at all once nothing is left to bind.
    Reads derive it instead of writing it: a read must not take the tenant lock (on SQLite that
    serializes every writer) or write; and completion tells nobody anything (no history event,
    no webhook, in the job either), so the derived and the stored status never disagree on
    what was told. ``list`` filters by the same rule.
    """
    if row.status is CallStatus.BOOKED and row.end_at <= now:
        return CallStatus.COMPLETED
    return row.status


def list(
    *,
    session: Session,
    tenant_id: str,
    cursor: str | None,
    limit: int,
    status: CallStatus | None = None,
    capability_id: str | None = None,
    ticket_id: str | None = None,
    agent: str | None = None,
    start_from: datetime | None = None,
    start_to: datetime | None = None,
    now: datetime | None = None,
) -> tuple[Sequence[CallRow], str | None]:
    """The tenant's bookings in creation order (ids sort by creation), filtered. With ``now``,
    ``status`` filters by :func:`shown_status` (booked calls that are over count as completed).
    """
    stmt = select(CallRow).where(CallRow.tenant_id == tenant_id)
    if (
        status is not None
        and now is not None
        and status in (CallStatus.BOOKED, CallStatus.COMPLETED)
    ):
        over = and_(CallRow.status == CallStatus.BOOKED, CallRow.end_at <= now)
        if status is CallStatus.BOOKED:
            stmt = stmt.where(CallRow.status == CallStatus.BOOKED, CallRow.end_at > now)
        else:
            stmt = stmt.where(or_(CallRow.status == CallStatus.COMPLETED, over))
    elif status is not None:
        stmt = stmt.where(CallRow.status == status)
    if capability_id is not None:
        stmt = stmt.where(CallRow.capability_id == capability_id)
    if ticket_id is not None:
        stmt = stmt.where(CallRow.ticket_id == ticket_id)
    if agent is not None:
        stmt = stmt.where(CallRow.bound_agent == agent)
    if start_from is not None:
        stmt = stmt.where(CallRow.start_at >= start_from)
    if start_to is not None:
        stmt = stmt.where(CallRow.start_at < start_to)
    return common.paginate(session, stmt, CallRow.id, cursor, limit)


def cancel(
    *,
    session: Session,
    tenant_id: str,
    booking_id: str,
    now: datetime,
    actor: str | None,
    reason: str | None = None,
    note: CallNote = CallNote.REQUESTED,
) -> CallRow:
    """Cancel a booked call, freeing its capacity (``note`` says why, as the customer is told:
    ``requested`` through the API, ``customer`` through their link). Cancelling twice is
    harmless; a call that is over (completed, or its end has passed) cannot be cancelled."""
    lock_tenant(session, tenant_id)
    row = get_or_raise(session=session, tenant_id=tenant_id, booking_id=booking_id)
    if row.status is CallStatus.CANCELLED:
        return row
    if row.status in (CallStatus.COMPLETED, CallStatus.NO_SHOW) or row.end_at <= now:
        raise Conflict(f"booking {booking_id!r} is over and cannot be cancelled")
    row.status = CallStatus.CANCELLED
    row.cancelled_at = now
    row.cancel_reason = note
    row.cover_agent = None
    row.updated_at = now
    writeback.queue_writeback(session, tenant_id, row.id, now)
    _announce(
        session,
        tenant_id,
        row,
        now=now,
        actor=actor,
        action="cancelled",
        reason=f"call cancelled{f': {reason}' if reason else ''}",
        webhook_type=events.EventType.BOOKING_CANCELLED,
        extra={"agent_id": row.bound_agent, "reason": note},
        kind=TicketEventKind.CALL_CANCELLED,
        from_agent=row.bound_agent,
    )
    session.flush()
    return row


# --------------------------------------------------------------------------- the agent's actions


def _bound_call(
    session: Session, tenant_id: str, booking_id: str, agent_id: str, verb: str
) -> CallRow:
    """The call, read inside the tenant lock, when ``agent_id`` is its bound agent: only the
    bound agent's action counts (409 naming ``agent_id`` otherwise, an unbound call too)."""
    lock_tenant(session, tenant_id)
    row = get_or_raise(session=session, tenant_id=tenant_id, booking_id=booking_id)
    if row.bound_agent is None:
        raise Conflict(
            f"booking {booking_id!r} has no agent bound: only its bound agent may {verb} it",
            errors=[
                FieldError(
                    "agent_id",
                    "no agent is bound to this call (yet, or any more: it may be at risk)",
                )
            ],
        )
    if row.bound_agent != agent_id:
        raise Conflict(
            f"only the agent bound to booking {booking_id!r} may {verb} it",
            errors=[FieldError("agent_id", f"is not the call's bound agent ({row.bound_agent})")],
        )
    if row.status is CallStatus.CANCELLED:
        raise Conflict(f"booking {booking_id!r} is cancelled")
    return row


def _closed_by_agent(row: CallRow) -> bool:
    """Closed by its agent (completed or no-show), not only by the clock (a booked call whose
    end passed is stored ``completed`` by the bookings job without ``completed_at``)."""
    return row.status is CallStatus.NO_SHOW or (
        row.status is CallStatus.COMPLETED and row.completed_at is not None
    )


def admit(
    *,
    session: Session,
    tenant_id: str,
    booking_id: str,
    agent_id: str,
    now: datetime,
    actor: str | None,
) -> CallRow:
    """The bound agent lets the waiting customer in: from the waiting room's opening
    (``call_room.opens_minutes_before`` the start) until the call's end. Admitting twice is
    harmless (the first admission stands). A ``call_admitted`` step and ``booking.admitted``."""
    row = _bound_call(session, tenant_id, booking_id, agent_id, "admit")
    if row.admitted_at is not None:
        return row
    if _closed_by_agent(row):
        raise Conflict(f"booking {booking_id!r} is closed ({row.status.value})")
    room = policies.load(session, tenant_id).call_room
    opens = row.start_at - timedelta(minutes=room.opens_minutes_before)
    if now < opens:
        raise Conflict(
            f"the waiting room of booking {booking_id!r} opens at {opens.isoformat()} "
            f"({room.opens_minutes_before} minutes before the call): admit from then on"
        )
    if row.status is not CallStatus.BOOKED or now >= row.end_at:
        raise Conflict(f"booking {booking_id!r} is over (it ended {row.end_at.isoformat()})")
    _admit(session, tenant_id, row, agent_id, now, now, actor=actor, automatic=False)
    session.flush()
    return row


def _admit(
    session: Session,
    tenant_id: str,
    row: CallRow,
    agent_id: str | None,
    at: datetime,
    now: datetime,
    *,
    actor: str | None,
    automatic: bool,
) -> None:
    row.admitted_at = at
    row.admitted_by = agent_id
    row.updated_at = now
    told = {"agent_id": agent_id, "admitted_at": at, "automatic": automatic}
    _announce(
        session,
        tenant_id,
        row,
        now=now,
        actor=actor,
        action="admitted",
        reason=f"call {row.id}: the customer was let in"
        + (" at the start (automatic admission)" if automatic else f" by {agent_id}"),
        webhook_type=events.EventType.BOOKING_ADMITTED,
        extra=told,
        kind=TicketEventKind.CALL_ADMITTED,
    )


def mark_no_show(
    *,
    session: Session,
    tenant_id: str,
    booking_id: str,
    agent_id: str,
    now: datetime,
    actor: str | None,
) -> CallRow:
    """The bound agent says the customer did not come: only once the call has started, and
    not once admitted (complete it then). Marking twice is harmless. Status ``no_show``,
    ``completed_at``; a ``call_no_show`` step and ``booking.no_show``."""
    row = _bound_call(session, tenant_id, booking_id, agent_id, "mark a no-show of")
    if row.status is CallStatus.NO_SHOW:
        return row
    if _closed_by_agent(row):
        raise Conflict(f"booking {booking_id!r} was completed already")
    if row.admitted_at is not None:
        raise Conflict(
            f"the customer of booking {booking_id!r} was admitted: complete the call instead"
        )
    if now < row.start_at:
        raise Conflict(
            f"booking {booking_id!r} starts at {row.start_at.isoformat()}: a no-show can be "
            "marked only once it has started"
        )
    _close(session, tenant_id, row, agent_id, now, actor, CallStatus.NO_SHOW)
    session.flush()
    return row


def complete(
    *,
    session: Session,
    tenant_id: str,
    booking_id: str,
    agent_id: str,
    now: datetime,
    actor: str | None,
) -> CallRow:
    """The bound agent closes the call: once the customer was admitted, or once it has
    started. Completing twice is harmless. Status ``completed``, ``completed_at``; a
    ``call_completed`` step and ``booking.completed``."""
    row = _bound_call(session, tenant_id, booking_id, agent_id, "complete")
    if row.status is CallStatus.COMPLETED and row.completed_at is not None:
        return row
    if row.status is CallStatus.NO_SHOW:
        raise Conflict(f"booking {booking_id!r} was marked a no-show")
    if row.admitted_at is None and now < row.start_at:
        raise Conflict(
            f"booking {booking_id!r} has not started (it starts at {row.start_at.isoformat()}) "
            "and its customer was not admitted: nothing to complete yet"
        )
    _close(session, tenant_id, row, agent_id, now, actor, CallStatus.COMPLETED)
    session.flush()
    return row


def _close(
    session: Session,
    tenant_id: str,
    row: CallRow,
    agent_id: str,
    now: datetime,
    actor: str | None,
    status: CallStatus,
) -> None:
    no_show = status is CallStatus.NO_SHOW
    row.status = status
    row.completed_at = now
    row.cover_agent = None
    row.updated_at = now
    _announce(
        session,
        tenant_id,
        row,
        now=now,
        actor=actor,
        action="no_show" if no_show else "completed",
        reason=f"call {row.id}: "
        + ("the customer did not come" if no_show else "completed")
        + f" ({agent_id})",
        webhook_type=(
            events.EventType.BOOKING_NO_SHOW if no_show else events.EventType.BOOKING_COMPLETED
        ),
        extra={"agent_id": agent_id},
        kind=TicketEventKind.CALL_NO_SHOW if no_show else TicketEventKind.CALL_COMPLETED,
    )


def _auto_admit(session: Session, tenant_id: str, now: datetime) -> int:
    """Where the tenant admits customers by itself (``call_room.admission`` ``auto``), record
    the admission of every booked call whose start has come and that nobody admitted: the
    waiting room let the customer in at the start (:func:`api.links.service.admitted` derives
    it there at read time), and this makes it a ``call_admitted`` step and a
    ``booking.admitted`` event (``automatic``) — at the start itself, since every run queues
    the next one for the next such start (:func:`_schedule_next_bind`). A call at risk at
    its start was not let in (its page offers other times) and is not admitted."""
    if policies.load(session, tenant_id).call_room.admission is not Admission.AUTO:
        return 0
    rows = session.scalars(
        select(CallRow)
        .where(
            CallRow.tenant_id == tenant_id,
            CallRow.status == CallStatus.BOOKED,
            CallRow.start_at <= now,
            CallRow.admitted_at.is_(None),
            CallRow.at_risk_since.is_(None),
        )
        .order_by(CallRow.start_at, CallRow.id)
    ).all()
    for row in rows:
        agent = row.bound_agent
        _admit(session, tenant_id, row, agent, row.start_at, now, actor="system", automatic=True)
    return len(rows)


# --------------------------------------------------------------------------- an agent's day


@dataclass(frozen=True, slots=True)
class AgentDay:
    """The calls bound to one agent that start on one local day, each with its ticket."""

    agent_id: str
    day: date
    tz: str
    start: datetime  # local midnight, UTC
    end: datetime  # the next local midnight, UTC
    calls: tuple[tuple[CallRow, TicketRow], ...]
    opens_minutes_before: int  # the waiting room opens this long before each call


def agent_day(
    *,
    session: Session,
    tenant_id: str,
    agent_id: str,
    now: datetime,
    day: date | None = None,
    tz: str | None = None,
    include_cancelled: bool = False,
) -> AgentDay:
    """The calls bound to ``agent_id`` starting on ``day`` (default: today) in ``tz``
    (default: the agent's zone), ordered by start; cancelled ones only when asked. Reads only."""
    agent = common.get(session, AgentRow, tenant_id, agent_id)
    if agent is None:
        raise NotFound("agent", agent_id)
    zone_name = tz or agent.timezone
    local = slots.zone(zone_name)
    day = day or now.astimezone(local).date()
    try:
        start = datetime.combine(day, datetime.min.time(), tzinfo=local).astimezone(UTC)
        end = datetime.combine(day + timedelta(days=1), datetime.min.time(), tzinfo=local)
        end.astimezone(UTC)
    except OverflowError:
        raise InvalidInput.one("query.date", "too far in the past or future") from None
    stmt = select(CallRow, TicketRow).join(
        TicketRow, and_(TicketRow.tenant_id == CallRow.tenant_id, TicketRow.id == CallRow.ticket_id)
    )
    stmt = stmt.where(
        CallRow.tenant_id == tenant_id,
        CallRow.bound_agent == agent_id,
        CallRow.start_at >= start,
        CallRow.start_at < end.astimezone(UTC),
    )
    if not include_cancelled:
        stmt = stmt.where(CallRow.status != CallStatus.CANCELLED)
    found = session.execute(stmt.order_by(CallRow.start_at, CallRow.id)).all()
    return AgentDay(
        agent_id=agent_id,
        day=day,
        tz=zone_name,
        start=start,
        end=end.astimezone(UTC),
        calls=tuple((call, ticket) for call, ticket in found),
        opens_minutes_before=policies.load(session, tenant_id).call_room.opens_minutes_before,
    )


# --------------------------------------------------------------------------- binding


@dataclass
class BindOutcome:
    bound: builtins.list[Binding] = field(default_factory=builtins.list)
    rebound: builtins.list[Binding] = field(default_factory=builtins.list)
    at_risk: builtins.list[AtRisk] = field(default_factory=builtins.list)
    completed: int = 0
    admitted: int = 0  # calls admitted automatically at their start (call_room.admission auto)
    due: int = 0
    checked: int = 0
    wall_seconds: float = 0.0


def _apply_binding(
    session: Session,
    tenant_id: str,
    row: CallRow,
    binding: Binding,
    state: BookingState,
    now: datetime,
    actor: str | None,
) -> None:
    buffer = state.capability(row.capability_id).buffer_minutes
    previous = row.bound_agent
    row.bound_agent = binding.agent_id
    row.bound_at = now
    row.cover_agent = None
    row.at_risk_since = None
    # The engine keeps the agent for the call's current buffer: the database's range agrees.
    row.occupied_until = row.end_at + timedelta(minutes=buffer)
    row.updated_at = now
    # The agent's calendar follows (outbox: the provider is called by the job, never here).
    writeback.queue_writeback(session, tenant_id, row.id, now)
    action = "agent_bound" if previous is None else "agent_rebound"
    reasons = mapping.reasons_brief(binding.reasons)
    _announce(
        session,
        tenant_id,
        row,
        now=now,
        actor=actor,
        action=action,
        reason=f"call {row.id}: agent {binding.agent_id} bound"
        + (f" (was {previous})" if previous else ""),
        webhook_type=events.EventType.BOOKING_AGENT_BOUND,
        extra={"reasons": reasons},
        webhook_extra={
            "agent_id": binding.agent_id,
            "previous_agent_id": previous,
            "reasons": reasons,
        },
        from_agent=previous,
        to_agent=binding.agent_id,
    )


def _apply_at_risk(
    session: Session,
    tenant_id: str,
    row: CallRow,
    risk: AtRisk,
    now: datetime,
    actor: str | None,
    state: BookingState,
) -> None:
    previous = row.bound_agent
    row.bound_agent = None  # nobody can take it; a later binding names somebody again
    row.cover_agent = None
    if previous is not None:  # the event leaves the unbound agent's calendar
        writeback.queue_writeback(session, tenant_id, row.id, now)
    if row.at_risk_since is not None and previous is None:
        return  # already reported
    row.at_risk_since = row.at_risk_since or now
    row.updated_at = now
    reason = mapping.reason_brief(risk.reason)
    # Agents left out because their calendar cannot be trusted, named for the helpdesk.
    excluded = mapping.reasons_brief(exclusions(state, row.capability_id))
    named = {"excluded": excluded} if excluded else {}
    _announce(
        session,
        tenant_id,
        row,
        now=now,
        actor=actor,
        action="at_risk",
        reason=f"call {row.id} at risk: {risk.reason.detail}",
        webhook_type=events.EventType.BOOKING_AT_RISK,
        extra={"reason": reason, **named},
        webhook_extra={"previous_agent_id": previous, "reason": reason, **named},
        from_agent=previous,
    )


def _clear_recovered(state: BookingState, rows: Mapping[str, CallRow], now: datetime) -> None:
    """Calls reported at risk that the engine covers again are no longer at risk."""
    cover = slots.witness(state)
    for call_id, row in rows.items():
        if row.at_risk_since is not None and cover.get(call_id) is not None:
            row.at_risk_since = None
            row.updated_at = now


def bind(
    *,
    session: Session,
    tenant_id: str,
    now: datetime,
    actor: str | None,
    lead: timedelta = DEFAULT_LEAD,
    time_limit: float = 1.0,
    cache: BookingCache | None = None,
    max_staleness: timedelta | None = None,
) -> BindOutcome:
    """Just-in-time binding now: every booked call starting within ``lead`` gets its agent,
    never one whose calendar cannot be trusted (their exclusion is named in the binding's
    reasons); calls already bound to such an agent keep them."""
    t0 = time.perf_counter()
    lock_tenant(session, tenant_id)
    admitted = _auto_admit(session, tenant_id, now)
    out = BindOutcome(completed=_complete_past(session, tenant_id, now), admitted=admitted)
    trust = _trust(session, tenant_id, now, cache, max_staleness)
    state, rows = _load(session, tenant_id, now, cache, trust=trust)
    _sync_occupancy(state, rows, grow=False)
    result = jit.assign_due(state, lead=lead, time_limit=time_limit)
    out.due = _due_count(result)
    _record_jit(session, tenant_id, rows, result, now, actor, out)
    _save_cover(result.state, rows)
    _clear_recovered(result.state, rows, now)
    _schedule_next_bind(session, tenant_id, rows, now, lead, trust.next_stale)
    session.flush()
    out.checked = len(rows)
    out.wall_seconds = time.perf_counter() - t0
    return out


def _due_count(result: jit.JitResult) -> int:
    due = result.stats.params.get("due", 0)
    return due if isinstance(due, int) else 0


def _record_jit(
    session: Session,
    tenant_id: str,
    rows: Mapping[str, CallRow],
    result: jit.JitResult,
    now: datetime,
    actor: str | None,
    out: BindOutcome,
) -> None:
    for b in result.bindings:
        row = rows[b.call_id]
        if row.bound_agent == b.agent_id or _with_agent(row):
            continue  # kept: nothing to tell anybody
        (out.rebound if row.bound_agent else out.bound).append(b)
        _apply_binding(session, tenant_id, row, b, result.state, now, actor)
    for risk in result.at_risk:
        if _with_agent(rows[risk.call_id]):
            continue
        out.at_risk.append(risk)
        _apply_at_risk(session, tenant_id, rows[risk.call_id], risk, now, actor, result.state)


def _with_agent(row: CallRow) -> bool:
    """The customer was let in to their bound agent: the call is theirs whatever a recheck
    finds (a calendar event or status change landing on it moves nobody mid-call, and the
    agent can still close it). The engine may see that binding as stale and cover the call
    elsewhere in its own state; that only keeps another agent free for it, never double-books."""
    return row.admitted_at is not None and row.bound_agent is not None


def rebalance(
    *,
    session: Session,
    tenant_id: str,
    now: datetime,
    actor: str | None,
    lead: timedelta = DEFAULT_LEAD,
    time_limit: float = 1.0,
    cache: BookingCache | None = None,
    max_staleness: timedelta | None = None,
) -> BindOutcome:
    """Re-check every booked call against the agents as they are now (after shift, calendar or
    status changes, or a calendar connection failing or going stale), with the fewest visible
    changes:

    - a bound call whose agent can no longer take it (a *stale* binding) is re-bound: within
      the lead time by just-in-time binding (owner and fairness preferences), later to the
      agent the engine's rebuilt cover gives it; other bindings stay;
    - calls due within the lead time are bound, as :func:`bind` does;
    - calls nobody can cover are reported at risk (``booking.at_risk``), so the customer can be
      offered another time.

    Agents whose calendar cannot be trusted keep the calls bound to them, and are counted on
    for nothing else: an unbound call they covered is covered by somebody else, or at risk.
    """
    t0 = time.perf_counter()
    lock_tenant(session, tenant_id)
    admitted = _auto_admit(session, tenant_id, now)
    out = BindOutcome(completed=_complete_past(session, tenant_id, now), admitted=admitted)
    trust = _trust(session, tenant_id, now, cache, max_staleness)
    state, rows = _load(session, tenant_id, now, cache, trust=trust)
    result = jit.assign_due(state, lead=lead, time_limit=time_limit)
    out.due = _due_count(result)
    _record_jit(session, tenant_id, rows, result, now, actor, out)
    # Stale bindings beyond the lead time: the engine's rebuilt cover already holds each of
    # them on an agent who can take it (bound calls that still fit never moved), so binding
    # them there keeps every other call where it was.
    state = result.state
    reported = {r.call_id for r in result.at_risk}
    cover = slots.witness(state)
    for call in state.calls:
        if call.bound_agent is None or cover.get(call.id) == call.bound_agent:
            continue
        row = rows[call.id]
        if row.end_at <= now or _with_agent(row):
            continue  # over (in wrap-up), or under way with its agent: nothing to re-bind
        agent = cover.get(call.id)
        if agent is None:
            risk = AtRisk(call.id, _uncoverable(), call.bound_agent)
            out.at_risk.append(risk)
            reported.add(call.id)
            _apply_at_risk(session, tenant_id, row, risk, now, actor, state)
            continue
        why = Reason("rebound", f"{call.bound_agent} can no longer take it")
        excluded = exclusions(state, call.capability_id)
        binding = Binding(call.id, agent, call.bound_agent, (why, *excluded))
        out.rebound.append(binding)
        _apply_binding(session, tenant_id, row, binding, state, now, actor)
    for call_id in slots.at_risk(state):
        if (
            call_id in reported
            or call_id not in rows
            or rows[call_id].end_at <= now
            or _with_agent(rows[call_id])
        ):
            continue
        risk = AtRisk(call_id, _uncoverable())
        out.at_risk.append(risk)
        _apply_at_risk(session, tenant_id, rows[call_id], risk, now, actor, state)
    _sync_occupancy(state, rows, grow=True)
    _save_cover(state, rows)
    _clear_recovered(state, rows, now)
    _schedule_next_bind(session, tenant_id, rows, now, lead, trust.next_stale)
    session.flush()
    out.checked = len(rows)
    out.wall_seconds = time.perf_counter() - t0
    return out


def _uncoverable() -> Reason:
    return Reason(
        "uncoverable",
        "no qualified agent is free for the whole call any more; offer the customer another time",
    )


# --------------------------------------------------------------------------- the JIT job


def _schedule_bind(session: Session, tenant_id: str, now: datetime, when: datetime) -> None:
    """Make sure a ``bookings.bind`` job is queued to run no later than ``when``."""
    when = max(when, now)
    queued = session.scalars(
        select(Job.run_after).where(
            Job.tenant_id == tenant_id,
            Job.kind == BIND_JOB,
            Job.status == JobStatus.QUEUED,
            Job.run_after <= when,
        )
    ).first()
    if queued is None:
        job_queue.enqueue(
            session=session,
            tenant_id=tenant_id,
            kind=BIND_JOB,
            payload={},
            now=now,
            run_after=when,
        )


def _schedule_next_bind(
    session: Session,
    tenant_id: str,
    rows: Mapping[str, CallRow],
    now: datetime,
    lead: timedelta,
    next_stale: datetime | None = None,
) -> None:
    """Queue the next run: when the next unbound call becomes due, when the next call is to be
    admitted automatically, and -- while calls wait unbound -- just after the next calendar
    connection goes stale (``next_stale``: nothing is written then, so nothing else would
    re-check the calls whose cover relied on that agent)."""
    pending = [
        _due_at(r.start_at, lead)
        for r in rows.values()
        if r.status is CallStatus.BOOKED and r.bound_agent is None and r.start_at >= now + lead
    ]
    if next_stale is not None and any(
        r.status is CallStatus.BOOKED and r.bound_agent is None and r.start_at > now
        for r in rows.values()
    ):
        pending.append(_after(next_stale))
    if policies.load(session, tenant_id).call_room.admission is Admission.AUTO:
        # Automatic admission is recorded by the run at (or after) each call's start.
        pending += [
            r.start_at
            for r in rows.values()
            if r.status is CallStatus.BOOKED
            and r.admitted_at is None
            and r.at_risk_since is None
            and r.start_at > now
        ]
    if pending:
        _schedule_bind(session, tenant_id, now, min(pending))


def _due_at(start: datetime, lead: timedelta) -> datetime:
    # Binding takes calls starting strictly before now + lead: run a minute after the edge.
    return start - lead + timedelta(minutes=1)


def run_bind_job(ctx: JobContext, max_staleness: timedelta | None = None) -> dict[str, Any]:
    """The ``bookings.bind`` job: bind what is due, repair stale bindings, queue the next run.
    ``max_staleness``: the app's ``calendar_max_staleness_seconds`` (:mod:`api.wiring`)."""
    with ctx.session_factory() as session:
        out = rebalance(
            session=session,
            tenant_id=ctx.tenant_id,
            now=ctx.now(),
            actor="system",
            max_staleness=max_staleness,
        )
        result = summary(out)
        ctx.complete(session, result)
        session.commit()
    return result


def summary(out: BindOutcome) -> dict[str, Any]:
    return {
        "bound": len(out.bound),
        "rebound": len(out.rebound),
        "at_risk": len(out.at_risk),
        "completed": out.completed,
        "admitted": out.admitted,
        "due": out.due,
    }


# --------------------------------------------------------------------------- disruption trigger


def queue_rechecks(session: Session, changed: org_version.Stamps) -> None:
    """Before a commit that changed who works when, with what (:mod:`api.org_version`
    tells; :mod:`api.wiring` subscribes this): a tenant whose cover changed and who has calls
    booked gets a ``bookings.bind`` run (rebalance: re-bind stale bindings, report calls at
    risk) queued in the same transaction, due at once, so disruptions are handled within a
    worker poll whoever made the change."""
    for tenant_id, stamp in sorted(changed.items()):
        when = stamp or datetime.now(UTC)  # only agent skills changed: no request time to hand
        live = session.scalar(
            select(CallRow.id)
            .where(
                CallRow.tenant_id == tenant_id,
                CallRow.status == CallStatus.BOOKED,
                CallRow.occupied_until > when,
            )
            .limit(1)
        )
        if live is not None:
            _schedule_bind(session, tenant_id, when, when)
