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
- :meth:`CallDesk.busy_for` is the truth at any moment: the occupancies of the calls bound to
  the agent (past ones included), sorted.
- :meth:`CallDesk.rows` at the end: the ``calls`` table's rows (``CALL_COLUMNS``).

Time only moves forward: every method taking ``now`` refuses a moment before the last one.

**What the customer picks.** The customer sees the open starts in the world's time zone and takes
one of the first ``pick_among`` (default 3, uniformly; ``pick_among=1``: always the earliest),
with exactly one draw from ``rng`` per request whatever is offered, so two scenarios sharing the
``calls`` stream draw the same choices (common random numbers) even when one offers fewer slots.

**Determinism.** Just-in-time binding runs the engine's own method (greedy, then CP-SAT), but the
model's effort is bounded in CP-SAT's *deterministic* time (``jit_budget``, single worker, fixed
seed) instead of the service's wall-clock limit, so a run is a pure function of its inputs.
``jit_method="greedy"`` stops after the greedy pass (the engine's fallback), several times faster.

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
from dataclasses import dataclass
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
    StatusChanged,
)
from solver.problem import Agent, AgentStatus

PICK_AMONG = 3
PRUNE_EVERY = timedelta(hours=12)
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
    agent: str | None = None  # bound now
    last_agent: str | None = None  # the last agent it was ever bound to
    bound_at: datetime | None = None
    rebinds: int = 0
    at_risk_at: datetime | None = None
    held: bool | None = None  # decided at its start: bound then (None: not started yet)
    offered: bool = False  # offered to binding (and left unbound) since it was last unbound


@dataclass(frozen=True, slots=True)
class DeskStats:
    """Counts of what customers and the engine did, and the engine's wall time per operation."""

    requests: int
    booked: int
    no_slot: int  # requests that were offered no slot
    refused: int  # offered starts the engine then refused to book (expected: never)
    bound: int  # calls that got an agent (first binding)
    rebinds: int  # a bound call moved to another agent
    at_risk: int  # calls that were ever reported uncoverable
    lost: int  # calls that reached their start with nobody bound
    disruptions: int
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
    ) -> None:
        if pick_among < 1:
            raise ValueError(f"pick_among must be at least 1, got {pick_among!r}")
        if jit_method not in JIT_METHODS:
            raise ValueError(f"jit_method must be one of {', '.join(JIT_METHODS)}")
        if lead <= timedelta(0):
            raise ValueError("lead must be positive")
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
        self._by_agent: dict[str, dict[str, None]] = {}  # agent -> calls bound to them now
        self._starts: list[tuple[datetime, str]] = []  # calls not started yet (heap)
        self._pending: list[tuple[datetime, str]] = []  # (due, call) awaiting binding (heap)
        self._next_prune = self._now + PRUNE_EVERY
        self._seq = 0
        self.last_rebound: list[Booking] = []
        self._n: dict[str, int] = dict.fromkeys(
            ("requests", "booked", "no_slot", "refused", "bound", "rebinds", "at_risk", "lost",
             "disruptions"), 0
        )  # fmt: skip
        self._wall: dict[str, float] = dict.fromkeys(("slots", "book", "jit", "disrupt"), 0.0)

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
        cap = self._state.capability(capability_id)
        t0 = time.perf_counter()
        offered = slots.find_slots(
            self._state, capability_id, self._now, self._now + cap.horizon, self._tz
        ).slots
        self._wall["slots"] += time.perf_counter() - t0
        if not offered:
            self._n["no_slot"] += 1
            return None
        first = offered[: self._pick_among]
        choice = first[min(int(u * len(first)), len(first) - 1)]
        # The chosen start, then (never expected: every offered start books) the others in order.
        for slot in (choice, *(s for s in offered if s is not choice)):
            self._seq += 1
            call_id = f"call-{self._seq:06d}"
            t0 = time.perf_counter()
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
            self._wall["book"] += time.perf_counter() - t0
            if result.call is None or result.state is None:
                self._n["refused"] += 1
                continue
            self._state = result.state
            call = result.call
            occ_end = call.end + timedelta(minutes=cap.buffer_minutes)
            self._calls[call.id] = _Record(
                call.id, ticket_id, capability_id, self._now, call.start, call.end, occ_end
            )
            self._live[call.id] = None
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
        t0 = time.perf_counter()
        result = jit.assign_due(
            self._state,
            lead=self._lead,
            method=self._jit_method,
            time_limit=JIT_WALL_LIMIT_S,
            workers=1,
            seed=0,
            solver_params=self._jit_params,
        )
        self._wall["jit"] += time.perf_counter() - t0
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
        return out

    def agent_away(self, agent_id: str, start: datetime, end: datetime, now: datetime) -> list[str]:
        """``agent_id`` does not work in ``[start, end)`` after all (an absence), learnt at
        ``now``: the engine's disruption repair (``ShiftRemoved``). Returns the calls nobody can
        cover any more; the bound calls moved to somebody else are in :attr:`last_rebound`."""
        self._at(now)
        start = max(_utc(start, "start"), self._now)
        end = _utc(end, "end")
        # A call under way keeps its agent: they leave once it (and its wrap-up) is over.
        for call_id in self._by_agent.get(agent_id, {}):
            rec = self._calls[call_id]
            if rec.start <= self._now < rec.occ_end:
                start = max(start, rec.occ_end)
        if start >= end:
            self.last_rebound = []
            return []
        return self._disrupt(ShiftRemoved(agent_id, start, end))

    def agent_busy(self, agent_id: str, start: datetime, end: datetime, now: datetime) -> list[str]:
        """A new event in the agent's calendar over ``[start, end)`` (``BusyAdded``), learnt at
        ``now``; as :meth:`agent_away` otherwise."""
        self._at(now)
        return self._disrupt(BusyAdded(agent_id, _utc(start, "start"), _utc(end, "end")))

    def agent_status(self, agent_id: str, status: AgentStatus, now: datetime) -> list[str]:
        """The agent is marked ``status`` at ``now`` (``StatusChanged``: away or offline until
        marked available again); as :meth:`agent_away` otherwise."""
        self._at(now)
        return self._disrupt(StatusChanged(agent_id, AgentStatus(status)))

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
        n, w = self._n, self._wall
        return DeskStats(
            **n,
            slots_seconds=w["slots"],
            book_seconds=w["book"],
            jit_seconds=w["jit"],
            disrupt_seconds=w["disrupt"],
        )

    @property
    def state(self) -> BookingState:
        """The engine's state now (for tests and diagnostics; treat it as read-only)."""
        return self._state

    # --- internals -----------------------------------------------------------------------

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
        while self._starts and self._starts[0][0] <= now:
            _start, call_id = heapq.heappop(self._starts)
            rec = self._calls[call_id]
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

    def _disrupt(self, change: Change) -> list[str]:
        if change.agent_id not in self._state.agent_index:
            raise ValueError(f"unknown agent {change.agent_id!r}")
        t0 = time.perf_counter()
        report: DisruptionReport = jit.disrupt(self._state, change)
        self._wall["disrupt"] += time.perf_counter() - t0
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
        return at_risk

    def _sync(self, call_id: str) -> bool:
        """Take the call's binding from the engine's state; True if its agent changed."""
        rec = self._calls[call_id]
        agent = self._state.call(call_id).bound_agent
        if agent == rec.agent:
            return False
        if rec.agent is not None:
            del self._by_agent[rec.agent][call_id]
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
