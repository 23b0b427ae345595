"""Live calls inside the simulation, booked and bound by the production booking engine.

A ticket whose customer books a call (``TicketSpec.call``, ``VolumeRow.call``) goes through the
same engine the service's booking pages and its ``bookings.bind`` job use: :mod:`solver.slots`
offers the open starts of the capability over its booking horizon and books the one the
customer picks, :func:`solver.jit.assign_due` names an agent just in time (the lead time before
the call), and :func:`solver.jit.disrupt` repairs the book when an agent loses working time. Nothing
here decides who takes a call: :class:`CallDesk` keeps the engine's :class:`BookingState` across
simulated time, feeds it what the simulation learns, and records what happened as the
``calls`` table of :mod:`scenarios.results`.

How the simulation drives it (``scenarios.sim``):

- ``CallDesk(world, agents, now=world.start, rng=streams.calls)``; ``agents`` are solver agents
  whose ``shifts`` are their working intervals (breaks cut out, absences *not* cut out: those
  arrive through :meth:`CallDesk.agent_away` as they become known). They should reach past the
  run's end by the longest booking horizon, or customers late in the run see fewer slots:
  :func:`booking_agents` builds exactly that from the world.
- :meth:`CallDesk.request` when a customer opens the booking link: the call id, or None when no
  slot was offered (counted in :attr:`CallDesk.stats`).
- :meth:`CallDesk.next_due` tells when :meth:`CallDesk.bind_due` next has work; it is never
  earlier than the latest moment the desk was told about, so it can be scheduled as is. Call
  it again after every request, binding and disruption (each may move it earlier).
- :meth:`CallDesk.bind_due` returns the new bindings ``(call_id, agent_id, start, end)``; ``end``
  is when the agent is free again: the call's end **plus the capability's wrap-up buffer**
  (the engine's occupancy). That span is busy time for the agent.
- :meth:`CallDesk.agent_away` when an agent loses working time (an absence): the engine's
  disruption repair runs; it returns the calls now at risk, and :attr:`CallDesk.last_rebound`
  holds the bound calls it moved to another agent (same tuples as ``bind_due``). A call already
  under way keeps its agent: the absence starts once that call's occupancy is over.
- after each :meth:`CallDesk.bind_due` and disruption, :attr:`CallDesk.last_changed` names every
  agent whose bound calls changed (gained, lost to another agent, or lost to *at risk*, which
  unbinds: a bookings list alone does not show that): re-read their :meth:`CallDesk.busy_for`.
- :meth:`CallDesk.owner_changed` when a ticket with a call changes hands (optional: binding
  prefers the ticket's owner, as the service does; without it, the owner at booking counts).
- :meth:`CallDesk.busy_for` is the truth at any moment: the occupancies of the calls bound to
  the agent (past ones included), sorted.
- at the end, :meth:`CallDesk.advance` to the run's end (so the calls that started are decided
  and counted), then :meth:`CallDesk.rows`: the ``calls`` table's rows (``CALL_COLUMNS``).
  :func:`drive` is the whole loop without the tickets (tests and the benchmark use it).

Event times on :class:`scenarios.engine.EventLoop` are float minutes: a desk moment converted
back may fall a rounding error before the loop's ``now``; clamp it (``max(t, loop.now)``).

Time only moves forward: every method taking ``now`` refuses a moment before the last one.

**What the customer picks.** The customer sees the open starts in the world's time zone and takes
one of the first ``pick_among`` (default 3, uniformly; ``pick_among=1``: always the earliest),
with exactly one draw from ``rng`` per request whatever is offered, so two scenarios sharing the
``calls`` stream draw the same choices (common random numbers) even when one offers fewer slots.

**Determinism.** Just-in-time binding runs the engine's own method (greedy, then CP-SAT), but the
model's effort is bounded in CP-SAT's *deterministic* time (``jit_budget``, single worker, fixed
seed) instead of the service's wall-clock limit, so a run is a pure function of its inputs.
``jit_method="greedy"`` stops after the greedy pass (the engine's fallback): about half the
time per run (``python -m benchmarks.scenario_calls --jit greedy``).

**A call at risk** (nobody can cover it any more) is what the service reports as
``booking.at_risk``, so that the customer can be offered another time. ``on_risk="keep"``
(default) models the engine alone: the call stays booked, every later repair and binding tries
it again, and if it reaches its start unbound it is ``lost``. ``on_risk="rebook"`` models the
customer taking the offer at once: the call is cancelled (its row stays: at risk, not held) and
the customer books another of the first open starts, as on first booking (a new call of the same
ticket; :attr:`CallDesk.last_rebooked` pairs old and new ids, None: no other time was offered,
counted as ``dropped``). Rebooking draws come from a stream of their own, seeded by one draw taken
at construction, so the customers' first choices stay common random numbers. ``stats.booked``
counts rebookings; ``stats.requests`` does not.

**Keeping the state small.** As in the service, the state holds only calls that still hold (or
will hold) an agent: every ``PRUNE_EVERY`` of simulated time, calls whose occupancy is over are
dropped (the engine rebuilds its index from the cover it had); a call that reaches its start
unbound (at risk and never recovered) is dropped at once and counted as ``lost``, since binding
it afterwards would put an agent on a call that never happened.
"""

from __future__ import annotations

import heapq
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from types import MappingProxyType
from typing import Any

import numpy as np

from scenarios.model import World, shift_intervals
from solver import jit, slots
from solver.capability import (
    BookingState,
    BusyAdded,
    Change,
    DisruptionReport,
    ShiftRemoved,
    Slot,
    StatusChanged,
)
from solver.problem import Agent, AgentStatus

PICK_AMONG = 3
PRUNE_EVERY = timedelta(hours=12)
OFFER_STEP = timedelta(days=1)  # the customer's slot query is asked a day at a time (_offer)
# CP-SAT's effort per just-in-time run, in its deterministic time units (about seconds of one
# core on a quiet machine), instead of the service's wall-clock limit: see the module docstring.
JIT_BUDGET = 0.05
# Only a safety net against a pathological model: the deterministic budget stops it first.
JIT_WALL_LIMIT_S = 30.0
# The engine's own CP-SAT parameters (solver.jit.model.DEFAULT_SOLVER_PARAMS, which solver does
# not export; tests/scenarios/test_calls.py checks they agree), plus the deterministic bound.
JIT_SOLVER_PARAMS: Mapping[str, Any] = MappingProxyType(
    {"cp_model_presolve": False, "linearization_level": 2}
)
JIT_METHODS = ("cpsat", "greedy")
ON_RISK = ("keep", "rebook")

Booking = tuple[str, str, datetime, datetime]  # (call_id, agent_id, start, occupancy end)


@dataclass(slots=True)
class _Record:
    """What happened to one call (mutable, private to the desk)."""

    call_id: str
    ticket: str
    capability: str
    booked_at: datetime
    start: datetime
    end: datetime
    occ_end: datetime  # end + the capability's buffer: when the agent is free again
    owner: str | None = None  # the ticket's holder when it was booked (JIT prefers them)
    agent: str | None = None  # bound now
    last_agent: str | None = None  # the last agent it was ever bound to
    bound_at: datetime | None = None
    rebinds: int = 0
    at_risk_at: datetime | None = None
    held: bool | None = None  # decided at its start: bound then (None: not started yet)
    offered: bool = False  # offered to binding (and left unbound) since it was last unbound
    cancelled: bool = False  # at risk, and the customer took another time (on_risk="rebook")


@dataclass(frozen=True, slots=True)
class DeskStats:
    """Counts of what customers and the engine did, and the engine's CPU time per kind of
    operation (process time, not wall time: on a shared machine it is the cost that does not
    depend on the neighbours)."""

    requests: int
    booked: int
    no_slot: int  # requests that were offered no slot
    refused: int  # offered starts the engine then refused to book (expected: never)
    bound: int  # calls that got an agent (first binding)
    rebinds: int  # a bound call moved to another agent
    at_risk: int  # calls that were ever reported uncoverable
    lost: int  # calls that reached their start with nobody bound
    disruptions: int
    bind_runs: int
    rebooked: int  # at-risk calls the customer moved to another offered time (on_risk="rebook")
    dropped: int  # at-risk calls whose customer was offered no other time (on_risk="rebook")
    slots_seconds: float
    book_seconds: float
    jit_seconds: float
    disrupt_seconds: float


def booking_agents(world: World, *, until: datetime | None = None) -> tuple[Agent, ...]:
    """The world's agents as the booking engine sees them: team, skills, zone, capacity and
    their working time (``shift_intervals``: shifts with breaks cut out) from the run's start to
    ``until`` (default: the run's end plus the longest booking horizon and a day, so a customer
    on the last day sees the same horizon as on the first)."""
    if until is None:
        horizon = max((c.horizon for c in world.capabilities), default=timedelta(0))
        until = world.end + horizon + timedelta(days=1)
    return tuple(
        Agent(
            id=plan.id,
            team=plan.team,
            skills=dict(plan.skills),
            capacity=plan.capacity,
            shifts=tuple(shift_intervals(plan, world.start, until)),
            timezone=plan.timezone,
            channel_capacity=dict(plan.channel_capacity),
        )
        for plan in world.agents
    )


def _utc(moment: datetime, name: str) -> datetime:
    if not isinstance(moment, datetime) or moment.tzinfo is None:
        raise ValueError(f"{name} must be a timezone-aware datetime, got {moment!r}")
    return moment.astimezone(UTC)


class CallDesk:
    """The booking engine inside one simulated run: see the module docstring."""

    def __init__(
        self,
        world: World,
        agents: Sequence[Agent],
        *,
        now: datetime,
        rng: np.random.Generator,
        pick_among: int = PICK_AMONG,
        lead: timedelta = jit.DEFAULT_LEAD,
        jit_method: str = "cpsat",
        jit_budget: float = JIT_BUDGET,
        tz: str | None = None,
        on_risk: str = "keep",
    ) -> None:
        if pick_among < 1:
            raise ValueError(f"pick_among must be at least 1, got {pick_among!r}")
        if jit_method not in JIT_METHODS:
            raise ValueError(f"jit_method must be one of {', '.join(JIT_METHODS)}")
        if lead <= timedelta(0):
            raise ValueError("lead must be positive")
        if on_risk not in ON_RISK:
            raise ValueError(f"on_risk must be one of {', '.join(ON_RISK)}, got {on_risk!r}")
        self._on_risk = on_risk
        # Rebooking customers draw from their own stream (seeded by one draw taken now), so the
        # first choices of every customer stay draw for draw what they are without rebooking.
        self._rebook_rng = (
            np.random.default_rng(int(rng.integers(2**63))) if on_risk == "rebook" else None
        )
        self.last_rebooked: list[tuple[str, str | None]] = []
        self._world = world
        self._rng = rng
        self._pick_among = pick_among
        self._lead = lead
        self._jit_method = jit_method
        self._jit_params: Mapping[str, Any] = {
            **JIT_SOLVER_PARAMS,
            "max_time_in_seconds": JIT_WALL_LIMIT_S,
            "max_deterministic_time": float(jit_budget),
        }
        self._tz = tz or world.timezone
        self._now = _utc(now, "now")
        self._state = BookingState(
            now=self._now, agents=tuple(agents), capabilities=world.capabilities
        )
        self._calls: dict[str, _Record] = {}  # every call ever booked, in booking order
        self._live: dict[str, None] = {}  # calls in the engine's state (ordered set)
        self._by_ticket: dict[str, list[str]] = {}  # ticket -> its calls, in booking order
        self._owners: dict[str, str | None] = {}  # owner changes not yet given to the engine
        self._tried: dict[str, None] = {}  # due calls binding found nobody for (offered)
        self._by_agent: dict[str, dict[str, None]] = {}  # agent -> calls bound to them now
        self._starts: list[tuple[datetime, str]] = []  # calls not started yet (heap)
        self._pending: list[tuple[datetime, str]] = []  # (due, call) awaiting binding (heap)
        self._next_prune = self._now + PRUNE_EVERY
        self._seq = 0
        self.last_rebound: list[Booking] = []
        self.last_changed: list[str] = []
        self._changed: dict[str, None] = {}
        self._n: dict[str, int] = dict.fromkeys(
            ("requests", "booked", "no_slot", "refused", "bound", "rebinds", "at_risk", "lost",
             "disruptions", "bind_runs", "rebooked", "dropped"), 0
        )  # fmt: skip
        self._cpu: dict[str, float] = dict.fromkeys(("slots", "book", "jit", "disrupt"), 0.0)

    # --- what the simulation tells the desk ----------------------------------------------

    def request(
        self, ticket_id: str, capability_id: str, now: datetime, *, owner: str | None = None
    ) -> str | None:
        """The customer of ``ticket_id`` opens the booking link at ``now``: the engine offers
        the open starts of ``capability_id`` over its booking horizon, the customer takes one
        (see the module docstring) and it is booked. Returns the call id, or None when nothing
        was offered. ``owner``: the ticket's holder now, whom just-in-time binding prefers."""
        if capability_id not in self._state.capability_index:
            raise ValueError(f"unknown capability {capability_id!r}")
        self._at(now)
        self._n["requests"] += 1
        u = float(self._rng.random())  # one draw per request, always (common random numbers)
        call_id = self._book_for(ticket_id, capability_id, owner, u)
        if call_id is None:
            self._n["no_slot"] += 1
        return call_id

    def _book_for(
        self, ticket_id: str, capability_id: str, owner: str | None, u: float
    ) -> str | None:
        """Offer the customer the open starts, book the one ``u`` picks: the call id, or None."""
        cap = self._state.capability(capability_id)
        t0 = time.process_time()
        offered = self._offer(capability_id, self._now + cap.horizon)
        self._cpu["slots"] += time.process_time() - t0
        if not offered:
            return None
        first = offered[: self._pick_among]
        choice = first[min(int(u * len(first)), len(first) - 1)]
        # The chosen start, then (never expected: every offered start books) the others in order.
        for slot in (choice, *(s for s in offered if s is not choice)):
            self._seq += 1
            call_id = f"call-{self._seq:06d}"
            t0 = time.process_time()
            result = slots.book(
                self._state,
                capability_id,
                slot.start,
                ticket_id,
                call_id=call_id,
                owner_agent=owner,
                tz=self._tz,
                alternatives=0,
            )
            self._cpu["book"] += time.process_time() - t0
            if result.call is None or result.state is None:
                self._n["refused"] += 1
                continue
            self._state = result.state
            call = result.call
            occ_end = call.end + timedelta(minutes=cap.buffer_minutes)
            self._calls[call.id] = _Record(
                call.id, ticket_id, capability_id, self._now, call.start, call.end, occ_end, owner
            )
            self._live[call.id] = None
            self._by_ticket.setdefault(ticket_id, []).append(call.id)
            heapq.heappush(self._starts, (call.start, call.id))
            heapq.heappush(self._pending, (self._due_at(call.start), call.id))
            self._n["booked"] += 1
            return call.id
        return None

    def next_due(self) -> datetime | None:
        """When :meth:`bind_due` next has work: the first unbound call's start minus the lead
        (plus a minute: binding takes calls starting strictly before ``now + lead``), never
        earlier than the latest moment the desk knows. None: nothing waits for an agent."""
        pending = self._pending
        while pending:
            _due, call_id = pending[0]
            rec = self._calls[call_id]
            if rec.agent is None and call_id in self._live and not rec.offered:
                return max(pending[0][0], self._now)
            heapq.heappop(pending)
        return None

    def bind_due(self, now: datetime) -> list[Booking]:
        """Just-in-time binding at ``now``: every call starting within the lead time gets its
        agent (and a binding that went stale is repaired). Returns the bindings that changed,
        as ``(call_id, agent_id, start, occupancy end)``; calls nobody can cover are marked at
        risk."""
        self._at(now)
        self._give_owners()
        self._changed = {}
        self._n["bind_runs"] += 1
        t0 = time.process_time()
        result = jit.assign_due(
            self._state,
            lead=self._lead,
            method=self._jit_method,
            time_limit=JIT_WALL_LIMIT_S,
            workers=1,
            seed=0,
            solver_params=self._jit_params,
        )
        self._cpu["jit"] += time.process_time() - t0
        self._state = result.state
        out: list[Booking] = []
        for binding in result.bindings:
            if self._sync(binding.call_id):
                out.append(self._booking(binding.call_id))
        horizon = self._now + self._lead
        for risk in result.at_risk:
            self._risk(risk.call_id)
            rec = self._calls[risk.call_id]
            rec.offered = rec.start < horizon  # a due call: tried now, retried by any later run
            if rec.offered:
                self._tried[risk.call_id] = None
        self.last_changed = list(self._changed)
        self._rebook([r.call_id for r in result.at_risk])
        return out

    def owner_changed(self, ticket_id: str, agent_id: str | None) -> None:
        """The ticket now belongs to ``agent_id`` (None: back to its team's queue). Just-in-time
        binding prefers a call's ticket owner, as the service reads it when it binds: the change
        reaches the engine at the next :meth:`bind_due` (one rebuild of its index then, only if
        a call still waiting for an agent changed owner)."""
        if ticket_id in self._by_ticket:
            self._owners[ticket_id] = agent_id

    def agent_away(self, agent_id: str, start: datetime, end: datetime, now: datetime) -> list[str]:
        """``agent_id`` does not work in ``[start, end)`` after all (an absence), learnt at
        ``now``: the engine's disruption repair (``ShiftRemoved``). Returns the calls nobody can
        cover any more; the bound calls moved to somebody else are in :attr:`last_rebound`."""
        self._at(now)
        start, end = self._after_calls_under_way(agent_id, start, end)
        if start >= end:
            self.last_rebound, self.last_changed, self.last_rebooked = [], [], []
            return []
        return self._disrupt(ShiftRemoved(agent_id, start, end))

    def agent_busy(self, agent_id: str, start: datetime, end: datetime, now: datetime) -> list[str]:
        """A new event in the agent's calendar over ``[start, end)`` (``BusyAdded``), learnt at
        ``now``; as :meth:`agent_away` otherwise."""
        self._at(now)
        start, end = self._after_calls_under_way(agent_id, start, end)
        if start >= end:
            self.last_rebound, self.last_changed, self.last_rebooked = [], [], []
            return []
        return self._disrupt(BusyAdded(agent_id, start, end))

    def agent_status(self, agent_id: str, status: AgentStatus, now: datetime) -> list[str]:
        """The agent is marked ``status`` at ``now`` (``StatusChanged``: away or offline until
        marked available again); as :meth:`agent_away` otherwise, except that a status has no
        end to push back: a call under way with the agent is re-placed too, as the engine does.
        For an absence with an end, use :meth:`agent_away`."""
        self._at(now)
        return self._disrupt(StatusChanged(agent_id, AgentStatus(status)))

    def advance(self, now: datetime) -> None:
        """Tell the desk the time without anything happening (at the end of a run, so the
        calls that have started are decided: held, or lost and counted)."""
        self._at(now)

    # --- what the simulation reads -------------------------------------------------------

    def busy_for(self, agent_id: str) -> list[tuple[datetime, datetime]]:
        """The occupancies ``(start, end + buffer)`` of the calls bound to ``agent_id`` now,
        past ones included, sorted."""
        return sorted(
            (self._calls[c].start, self._calls[c].occ_end) for c in self._by_agent.get(agent_id, {})
        )

    def rows(self, until: datetime | None = None) -> list[tuple[object, ...]]:
        """The ``calls`` table (``scenarios.results.CALL_COLUMNS``), sorted by start, call id.

        ``held``: the call had a bound agent at its start; a call starting at or after ``until``
        (default: the run's end) never took place in the run. ``bound_agent`` is the last agent
        the call was bound to (None: never bound)."""
        until = self._world.end if until is None else _utc(until, "until")
        out: list[tuple[object, ...]] = []
        for rec in sorted(self._calls.values(), key=lambda r: (r.start, r.call_id)):
            held = rec.held if rec.held is not None else rec.agent is not None
            out.append((
                rec.call_id, rec.ticket, rec.capability, rec.booked_at, rec.start, rec.end,
                rec.last_agent, rec.bound_at, rec.rebinds, rec.at_risk_at,
                bool(held) and rec.start < until,
            ))  # fmt: skip
        return out

    @property
    def stats(self) -> DeskStats:
        n, w = self._n, self._cpu
        return DeskStats(
            **n,
            slots_seconds=w["slots"],
            book_seconds=w["book"],
            jit_seconds=w["jit"],
            disrupt_seconds=w["disrupt"],
        )

    @property
    def now(self) -> datetime:
        """The latest moment the desk was told about."""
        return self._now

    @property
    def state(self) -> BookingState:
        """The engine's state now (for tests and diagnostics; treat it as read-only)."""
        return self._state

    # --- internals -----------------------------------------------------------------------

    def _offer(self, capability_id: str, until: datetime) -> list[Slot]:
        """The first open starts (at least ``pick_among`` when there are that many) of the
        capability from now to ``until``, asked a day at a time: the engine decides each
        candidate start on its own (its search memo is a function of the book alone), so these
        are exactly the first starts of one whole-horizon query, at a fraction of the cost on a
        busy book (most of which is probing starts the customer would never scroll to)."""
        out: list[Slot] = []
        lo = self._now
        while lo < until and len(out) < self._pick_among:
            hi = min(lo + OFFER_STEP, until)
            out += slots.find_slots(self._state, capability_id, lo, hi, self._tz).slots
            lo = hi
        return out

    def _due_at(self, start: datetime) -> datetime:
        # As the service's bind job: a minute past the edge of the lead time.
        return start - self._lead + timedelta(minutes=1)

    def _booking(self, call_id: str) -> Booking:
        rec = self._calls[call_id]
        assert rec.agent is not None
        return (call_id, rec.agent, rec.start, rec.occ_end)

    def _at(self, now: datetime) -> None:
        """Move the desk (and the engine's state) to ``now``: calls that have started are
        decided (held or lost), and what no longer holds an agent leaves the state."""
        now = _utc(now, "now")
        if now < self._now:
            raise ValueError(f"time only moves forward: {now} is before {self._now}")
        self._now = now
        self._state = slots.advance(self._state, now)
        drop: list[str] = []
        while self._starts and self._starts[0][0] < now:  # a call starting now may bind now
            _start, call_id = heapq.heappop(self._starts)
            rec = self._calls[call_id]
            if rec.cancelled:
                continue
            rec.held = rec.agent is not None
            if not rec.held:
                self._n["lost"] += 1
                drop.append(call_id)
        if now >= self._next_prune:
            self._next_prune = now + PRUNE_EVERY
            drop += [c for c in self._live if self._calls[c].occ_end <= now and c not in drop]
        if drop:
            for call_id in drop:
                del self._live[call_id]
            self._state = self._state.without_calls(drop)

    def _give_owners(self) -> None:
        if not self._owners:
            return
        updated = []
        for ticket, owner in self._owners.items():
            for call_id in self._by_ticket[ticket]:
                rec = self._calls[call_id]
                rec.owner = owner
                if call_id in self._live and rec.agent is None:
                    call = self._state.call(call_id)
                    if call.owner_agent != owner:
                        updated.append(replace(call, owner_agent=owner))
        self._owners = {}
        if updated:
            # Carry the engine's current cover into the state first (without_calls does), so
            # the rebuilt index starts from the cover it had.
            self._state = self._state.without_calls(()).with_calls(updated)

    def _after_calls_under_way(
        self, agent_id: str, start: datetime, end: datetime
    ) -> tuple[datetime, datetime]:
        """``[start, end)`` from now on, starting once the agent's call under way (if any) and
        its wrap-up are over: the agent finishes the call they are on."""
        start = max(_utc(start, "start"), self._now)
        for call_id in self._by_agent.get(agent_id, {}):
            rec = self._calls[call_id]
            if rec.start <= self._now < rec.occ_end:
                start = max(start, rec.occ_end)
        return start, _utc(end, "end")

    def _disrupt(self, change: Change) -> list[str]:
        if change.agent_id not in self._state.agent_index:
            raise ValueError(f"unknown agent {change.agent_id!r}")
        self._changed = {}
        t0 = time.process_time()
        report: DisruptionReport = jit.disrupt(self._state, change)
        self._cpu["disrupt"] += time.process_time() - t0
        self._state = report.state
        self._n["disruptions"] += 1
        self.last_rebound = []
        for binding in report.rebound:
            if self._sync(binding.call_id):
                self.last_rebound.append(self._booking(binding.call_id))
        at_risk = []
        for risk in report.at_risk:
            self._risk(risk.call_id)
            at_risk.append(risk.call_id)
        self.last_changed = list(self._changed)
        self._rebook(at_risk)
        self._rescued()
        return at_risk

    def _rescued(self) -> None:
        """Due calls binding found nobody for that a repair has since covered (the engine's
        search can find room where an earlier one did not) wait for binding again, at once."""
        if not self._tried:
            return
        cover = slots.witness(self._state)
        for call_id in list(self._tried):
            rec = self._calls[call_id]
            if call_id not in self._live or rec.agent is not None:
                del self._tried[call_id]
            elif cover.get(call_id) is not None:
                del self._tried[call_id]
                rec.offered = False
                heapq.heappush(self._pending, (self._due_at(rec.start), call_id))

    def _rebook(self, call_ids: list[str]) -> None:
        """``on_risk="rebook"``: the customers of calls just found uncoverable are told at once
        and offered another time through the same link (as the service's ``booking.at_risk``
        invites): each at-risk call is cancelled and its customer takes one of the first open
        starts, as on first booking. The old call stays in the rows (at risk, not held)."""
        self.last_rebooked = []
        if self._rebook_rng is None:
            return
        gone = [c for c in call_ids if c in self._live and self._calls[c].agent is None]
        if not gone:
            return
        for call_id in gone:
            rec = self._calls[call_id]
            rec.cancelled, rec.held = True, False
            del self._live[call_id]
        self._state = self._state.without_calls(gone)
        for call_id in gone:
            rec = self._calls[call_id]
            u = float(self._rebook_rng.random())
            new = self._book_for(rec.ticket, rec.capability, rec.owner, u)
            self._n["rebooked" if new is not None else "dropped"] += 1
            self.last_rebooked.append((call_id, new))

    def _sync(self, call_id: str) -> bool:
        """Take the call's binding from the engine's state; True if its agent changed."""
        rec = self._calls[call_id]
        agent = self._state.call(call_id).bound_agent
        if agent == rec.agent:
            return False
        if rec.agent is not None:
            del self._by_agent[rec.agent][call_id]
            self._changed[rec.agent] = None
        if agent is not None:
            self._changed[agent] = None
        if agent is None:  # unbound (at risk): it needs binding again when due
            rec.agent = None
            rec.offered = False
            heapq.heappush(self._pending, (self._due_at(rec.start), call_id))
            return True
        if rec.bound_at is None:
            rec.bound_at = self._now
            self._n["bound"] += 1
        elif agent != rec.last_agent:
            rec.rebinds += 1
            self._n["rebinds"] += 1
        rec.agent = rec.last_agent = agent
        self._by_agent.setdefault(agent, {})[call_id] = None
        return True

    def _risk(self, call_id: str) -> None:
        rec = self._calls[call_id]
        if rec.at_risk_at is None:
            rec.at_risk_at = self._now
            self._n["at_risk"] += 1
        self._sync(call_id)


# --- the desk on its own --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Request:
    """The customer of ``ticket`` opens the booking link of ``capability`` at ``at``."""

    at: datetime
    ticket: str
    capability: str
    owner: str | None = None


@dataclass(frozen=True, slots=True)
class Absence:
    """``agent`` does not work in ``[start, end)``; the floor learns it at ``known_at``."""

    known_at: datetime
    agent: str
    start: datetime
    end: datetime


def drive(
    desk: CallDesk,
    requests: Sequence[Request],
    absences: Sequence[Absence],
    until: datetime,
) -> None:
    """Run ``desk`` alone through customers' requests and absences up to ``until``, binding
    whenever :meth:`CallDesk.next_due` says, on the simulation's event loop: exactly how
    :mod:`scenarios.sim` drives it, without the tickets (for tests and the benchmark).

    Event times are float minutes on the loop; a desk moment converted back may fall a rounding
    error before the loop's ``now``, so it is clamped (a simulation must do the same)."""
    from scenarios.engine import EventLoop  # the loop is the simulation's; only this uses it

    origin = desk.now
    loop = EventLoop()
    booked_at: list[float | None] = [None]  # the one bind run queued (a later one is dropped)

    def minutes(moment: datetime) -> float:
        return max((moment - origin).total_seconds() / 60.0, loop.now)

    def moment(t: float) -> datetime:
        return max(origin + timedelta(minutes=t), desk.now)

    def schedule() -> None:
        due = desk.next_due()
        if due is None:
            return
        t = minutes(due)
        if booked_at[0] is None or t < booked_at[0]:
            booked_at[0] = t
            loop.at(t, on_bind, t)

    def on_bind(t: float, token: float) -> None:
        if booked_at[0] != token:
            return  # superseded by an earlier run
        booked_at[0] = None
        desk.bind_due(moment(t))
        schedule()

    def on_request(t: float, req: Request) -> None:
        desk.request(req.ticket, req.capability, moment(t), owner=req.owner)
        schedule()

    def on_absence(t: float, gone: Absence) -> None:
        desk.agent_away(gone.agent, gone.start, gone.end, moment(t))
        schedule()

    for req in sorted(requests, key=lambda r: (r.at, r.ticket)):
        loop.at(minutes(req.at), on_request, req)
    for gone in sorted(absences, key=lambda a: (a.known_at, a.agent, a.start)):
        loop.at(minutes(gone.known_at), on_absence, gone)
    schedule()
    loop.run(minutes(until))
    desk.advance(until)
