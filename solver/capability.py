"""Capabilities, booked calls and the booking state: the types of the booking engine.

A *capability* is what a customer books against ("networking-DE-tier2"): a requirement set
(skills at minimum levels; languages and tiers are skills) plus the rules of its calendar —
call length, how far ahead and how soon it can be booked, a wrap-up buffer after each call, the
slot granularity, and a *reserve*: the share of every team's on-shift people kept for ticket
work, so calls cannot starve the queue.

A *call* is a booked customer call. Until just before it starts it names no agent
(``bound_agent=None``): the engine only guarantees that all booked calls can be covered
together. Just-in-time assignment later binds an agent (:mod:`solver.jit`).

:class:`BookingState` is everything the engine decides on: the moment, the agents (with shifts,
calendar busy time and status), the capabilities and the calls. It is immutable; the engine's
precomputed index (see :mod:`solver.slots`) is cached on it and *handed over* to the state a
booking, a binding or a disruption derives from it, so a stream of bookings never rebuilds it.

Semantics shared by every module of the booking engine:

- A call *occupies* its agent from its start to its end plus its capability's buffer; two calls
  on one agent must not overlap in their occupancies, and the agent must be working (on shift,
  AVAILABLE, not busy in their calendar) for the whole occupancy — a call that straddles a shift
  end needs somebody who covers all of it.
- Reserve: at every minute, the calls held by a team's agents may not exceed the team's working
  headcount minus ``ceil(reserve * headcount)``. A team's reserve is the largest reserve of any
  capability one of its agents qualifies for, or ``team_reserve[team]`` if that is larger.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from functools import cached_property
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from solver.errors import ProblemError
from solver.plan import Reason
from solver.problem import Agent, AgentStatus, Interval, _check_id, _check_int, _check_levels
from solver.timegrid import require_aware

if TYPE_CHECKING:
    from solver.slots.index import BookingIndex

MAX_CALL_MINUTES = 24 * 60


def _check_timedelta(value: object, field_name: str, *, positive: bool) -> timedelta:
    if not isinstance(value, timedelta):
        raise ProblemError(field_name, f"must be a timedelta, got {type(value).__name__}")
    if positive and value <= timedelta(0):
        raise ProblemError(field_name, "must be positive")
    if value < timedelta(0):
        raise ProblemError(field_name, "must not be negative")
    return value


def _check_share(value: object, field_name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        raise ProblemError(field_name, f"must be a number between 0 and 1, got {value!r}")
    if not 0.0 <= float(value) <= 1.0:
        raise ProblemError(field_name, f"must be between 0 and 1, got {value}")
    return float(value)


@dataclass(frozen=True, slots=True)
class Capability:
    """A bookable requirement set and the rules of its calendar.

    ``requirements`` maps skill id to minimum level. ``horizon`` is how far ahead a call may
    start, ``min_notice`` how soon. ``buffer_minutes`` follows every call (wrap-up) and keeps
    the agent's next call apart. Slot starts fall on multiples of ``granularity_minutes`` from
    local midnight in the customer's time zone. ``reserve`` (0..1): see the module docstring.
    """

    id: str
    name: str = ""
    requirements: Mapping[str, int] = field(default_factory=dict)
    call_minutes: int = 30
    horizon: timedelta = timedelta(days=14)
    min_notice: timedelta = timedelta(hours=1)
    buffer_minutes: int = 0
    granularity_minutes: int = 15
    reserve: float = 0.0

    def __post_init__(self) -> None:
        _check_id(self.id, "id")
        object.__setattr__(self, "requirements", _check_levels(self.requirements, "requirements"))
        _check_int(self.call_minutes, "call_minutes", minimum=1, maximum=MAX_CALL_MINUTES)
        _check_timedelta(self.horizon, "horizon", positive=True)
        _check_timedelta(self.min_notice, "min_notice", positive=False)
        _check_int(self.buffer_minutes, "buffer_minutes", minimum=0, maximum=MAX_CALL_MINUTES)
        _check_int(
            self.granularity_minutes, "granularity_minutes", minimum=1, maximum=MAX_CALL_MINUTES
        )
        object.__setattr__(self, "reserve", _check_share(self.reserve, "reserve"))

    @property
    def occupancy_minutes(self) -> int:
        """How long one call keeps an agent: the call and its buffer."""
        return self.call_minutes + self.buffer_minutes


@dataclass(frozen=True, slots=True)
class Call:
    """A booked call. ``bound_agent`` is None until just-in-time assignment names somebody.

    ``owner_agent`` is the ticket's current owner, preferred when they qualify. ``end`` is
    usually ``start + call_minutes`` of the capability; a call keeps its own length if the
    capability changes later.
    """

    id: str
    capability_id: str
    start: datetime
    end: datetime
    ticket_id: str | None = None
    owner_agent: str | None = None
    bound_agent: str | None = None

    def __post_init__(self) -> None:
        _check_id(self.id, "id")
        _check_id(self.capability_id, "capability_id")
        object.__setattr__(self, "start", require_aware(self.start, "start"))
        object.__setattr__(self, "end", require_aware(self.end, "end"))
        if self.end <= self.start:
            raise ProblemError("end", "must be after start")
        if self.end - self.start > timedelta(minutes=MAX_CALL_MINUTES):
            raise ProblemError("end", "a call may last at most 24 hours")
        for name in ("ticket_id", "owner_agent", "bound_agent"):
            if getattr(self, name) is not None:
                _check_id(getattr(self, name), name)


@dataclass(frozen=True, slots=True)
class Slot:
    """An offerable call time, in the customer's time zone. It names nobody, on purpose."""

    capability_id: str
    start: datetime
    end: datetime


@dataclass(frozen=True, slots=True)
class SlotAnswer:
    """Open slots, and when there are none, the reason a customer or caller can act on."""

    slots: tuple[Slot, ...]
    reason: Reason | None = None
    considered: int = 0  # candidate starts checked
    # Qualified agents left out because they are blocked (:func:`exclusions`): they name
    # agents, so they are for operators only; a customer's answer drops them.
    excluded: tuple[Reason, ...] = ()


@dataclass(frozen=True, slots=True)
class BookingResult:
    """A booking (``call`` set, ``state`` includes it) or the reason it is no longer open.

    Neither case names an agent. ``alternatives`` are the nearest open starts when refused.
    """

    call: Call | None
    state: BookingState | None
    reason: Reason | None = None
    alternatives: tuple[Slot, ...] = ()

    @property
    def booked(self) -> bool:
        return self.call is not None


@dataclass(frozen=True, slots=True)
class Binding:
    """Call ``call_id`` is (now) taken by ``agent_id``; ``previous_agent`` when it moved."""

    call_id: str
    agent_id: str
    previous_agent: str | None = None
    reasons: tuple[Reason, ...] = ()


@dataclass(frozen=True, slots=True)
class AtRisk:
    """A booked call nobody can cover any more: offer the customer another time."""

    call_id: str
    reason: Reason
    previous_agent: str | None = None


# --- Changes to an agent's availability (disruptions and their opposite) ----------------------


@dataclass(frozen=True, slots=True)
class _WindowChange:
    """A change to one agent over ``[start, end)``; the window is validated like an Interval."""

    agent_id: str
    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        Interval(self.start, self.end)


@dataclass(frozen=True, slots=True)
class ShiftRemoved(_WindowChange):
    """The agent no longer works in ``[start, end)`` (sick day, shift swapped away)."""


@dataclass(frozen=True, slots=True)
class ShiftAdded(_WindowChange):
    """The agent now also works in ``[start, end)`` (the other half of a shift swap)."""


@dataclass(frozen=True, slots=True)
class BusyAdded(_WindowChange):
    """A new event in the agent's calendar."""


@dataclass(frozen=True, slots=True)
class StatusChanged:
    """The agent was marked away / offline (or available again)."""

    agent_id: str
    status: AgentStatus


Change = ShiftRemoved | ShiftAdded | BusyAdded | StatusChanged


def _cut(intervals: Iterable[Interval], start: datetime, end: datetime) -> tuple[Interval, ...]:
    out: list[Interval] = []
    for iv in intervals:
        if iv.end <= start or iv.start >= end:
            out.append(iv)
            continue
        if iv.start < start:
            out.append(Interval(iv.start, start))
        if iv.end > end:
            out.append(Interval(end, iv.end))
    return tuple(out)


def apply_change(agent: Agent, change: Change) -> Agent:
    """The agent as it is after ``change``."""
    if isinstance(change, ShiftRemoved):
        return replace(agent, shifts=_cut(agent.shifts, change.start, change.end))
    if isinstance(change, ShiftAdded):
        return replace(agent, shifts=(*agent.shifts, Interval(change.start, change.end)))
    if isinstance(change, BusyAdded):
        return replace(agent, busy=(*agent.busy, Interval(change.start, change.end)))
    if isinstance(change, StatusChanged):
        return replace(agent, status=change.status)
    raise ProblemError("change", f"unknown change type {type(change).__name__}")


@dataclass(frozen=True, slots=True)
class DisruptionReport:
    """What a change to the agents did to the booked calls.

    ``rebound``: bound calls that moved to another agent (the only changes anybody sees);
    ``at_risk``: calls nobody can cover any more; ``moved_unbound``: calls not yet bound whose
    tentative cover moved (invisible to customers and agents); ``affected``: calls the change
    touched. ``state`` is the state after the change, with the new bindings.
    """

    state: BookingState
    rebound: tuple[Binding, ...]
    at_risk: tuple[AtRisk, ...]
    moved_unbound: int
    affected: tuple[str, ...]
    wall_seconds: float = 0.0

    @property
    def changes(self) -> int:
        return len(self.rebound)


# --- The state -------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class BookingState:
    """Everything the booking engine decides on, validated on construction.

    ``team_reserve`` raises a team's reserve above what its capabilities ask for. A call may be
    bound to an agent who is unknown or no longer able to take it (a *stale* binding): the
    engine reports it and just-in-time assignment re-binds it; that is not an input error.

    ``cover`` is the engine's last cover of the unbound calls (call id -> agent id, as returned by
    :func:`solver.slots.witness`). It is only a hint — never shown to anybody — but a service
    that stores it and passes it back lets the engine rebuild exactly the cover it had, instead
    of searching for one again (a search that, on a nearly full book, might not find it).

    ``blocked`` (agent id -> why, in words for operators) names agents the engine must not count
    on for anything new: they keep the calls already bound to them (no churn), but no offered
    slot, booking, tentative cover, just-in-time binding or re-binding ever uses them (*fail
    closed*: their calendar cannot be trusted). They still count in their team's headcount for
    the reserve: it keeps people for ticket work, which a calendar outage does not stop.
    """

    now: datetime
    agents: tuple[Agent, ...]
    capabilities: tuple[Capability, ...]
    calls: tuple[Call, ...] = ()
    team_reserve: Mapping[str, float] = field(default_factory=dict)
    cover: Mapping[str, str] = field(default_factory=dict)
    blocked: Mapping[str, str] = field(default_factory=dict)
    # The engine's index (a cache): read it with `booking_index`, set it with `keep_index`.
    _index: BookingIndex | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "now", require_aware(self.now, "now"))
        object.__setattr__(self, "agents", tuple(self.agents))
        object.__setattr__(self, "capabilities", tuple(self.capabilities))
        object.__setattr__(self, "calls", tuple(self.calls))
        if not isinstance(self.team_reserve, Mapping):
            raise ProblemError("team_reserve", "must be a mapping of team id to share")
        reserve = {
            _check_id(team, "team_reserve.<key>"): _check_share(share, f"team_reserve.{team}")
            for team, share in self.team_reserve.items()
        }
        object.__setattr__(self, "team_reserve", MappingProxyType(reserve))
        if not isinstance(self.cover, Mapping):
            raise ProblemError("cover", "must be a mapping of call id to agent id")
        object.__setattr__(self, "cover", MappingProxyType(dict(self.cover)))
        if not isinstance(self.blocked, Mapping):
            raise ProblemError("blocked", "must be a mapping of agent id to a reason")
        blocked = {
            _check_id(agent, "blocked.<key>"): str(why) for agent, why in self.blocked.items()
        }
        object.__setattr__(self, "blocked", MappingProxyType(blocked))
        for name, items, kind in (
            ("agents", self.agents, Agent),
            ("capabilities", self.capabilities, Capability),
            ("calls", self.calls, Call),
        ):
            seen: set[str] = set()
            for i, item in enumerate(items):
                if not isinstance(item, kind):
                    raise ProblemError(f"{name}[{i}]", f"must be a {kind.__name__}")
                if item.id in seen:
                    raise ProblemError(f"{name}[{i}].id", f"duplicate id {item.id!r}")
                seen.add(item.id)
        caps = {c.id for c in self.capabilities}
        for i, call in enumerate(self.calls):
            if call.capability_id not in caps:
                raise ProblemError(
                    f"calls[{i}].capability_id", f"unknown capability {call.capability_id!r}"
                )

    # Derived states skip re-validating what did not change: a booking must stay in
    # microseconds with thousands of calls on the books.
    def _derive(self, **changes: Any) -> BookingState:
        new = object.__new__(BookingState)
        for name in ("now", "agents", "capabilities", "calls", "team_reserve", "cover", "blocked"):
            object.__setattr__(new, name, changes.get(name, getattr(self, name)))
        object.__setattr__(new, "_index", None)
        return new

    # --- the engine's index: a cache attached to the state ---------------------------------
    #
    # The booking engine (solver.slots) builds a BookingIndex for a state on first use and moves
    # it to the state derived by a booking. It is a cache: it never changes what the state
    # means, is never compared or shown, and a state without one answers the same (only
    # slower). The one way to reach it is these two members, through the functions of
    # solver.slots (index_of, index_from, hand_over, advance), which keep it matching the state.

    @property
    def booking_index(self) -> BookingIndex | None:
        """The engine's index attached to this state, or None if none was built yet.

        Use :func:`solver.slots.index_of` to get one (built if needed); this only looks.
        """
        return self._index

    def keep_index(self, index: BookingIndex | None) -> None:
        """Attach ``index`` to this state (None: detach it). For :mod:`solver.slots`, which
        guarantees the index describes this state; the state is otherwise immutable."""
        object.__setattr__(self, "_index", index)

    def with_call(self, call: Call) -> BookingState:
        if call.capability_id not in self.capability_index:
            raise ProblemError("capability_id", f"unknown capability {call.capability_id!r}")
        if call.id in self.call_index:
            raise ProblemError("id", f"duplicate call id {call.id!r}")
        return self._derive(calls=(*self.calls, call))

    def with_now(self, now: datetime) -> BookingState:
        return self._derive(now=require_aware(now, "now"))

    def with_calls(self, calls: Iterable[Call]) -> BookingState:
        """The same calls with some replaced by id (new bindings); order is kept."""
        by_id = {c.id: c for c in calls}
        unknown = set(by_id) - set(self.call_index)
        if unknown:
            raise ProblemError("calls", f"unknown call ids {sorted(unknown)}")
        return self._derive(calls=tuple(by_id.get(c.id, c) for c in self.calls))

    def without_calls(self, call_ids: Iterable[str]) -> BookingState:
        """The state with some calls cancelled. The engine rebuilds its index for it, starting
        from the cover it had (so the remaining calls keep their cover)."""
        drop = set(call_ids)
        cover = dict(self.cover)
        index = self._index
        if index is not None:
            cover.update({c: a for c, a in index.witness().items() if a is not None})
        return self._derive(
            calls=tuple(c for c in self.calls if c.id not in drop),
            cover=MappingProxyType({c: a for c, a in cover.items() if c not in drop}),
        )

    def with_agent(self, agent: Agent) -> BookingState:
        if agent.id not in self.agent_index:
            raise ProblemError("agent", f"unknown agent {agent.id!r}")
        i = self.agent_index[agent.id]
        return self._derive(agents=(*self.agents[:i], agent, *self.agents[i + 1 :]))

    @cached_property
    def capability_index(self) -> Mapping[str, int]:
        return MappingProxyType({c.id: i for i, c in enumerate(self.capabilities)})

    @cached_property
    def agent_index(self) -> Mapping[str, int]:
        return MappingProxyType({a.id: i for i, a in enumerate(self.agents)})

    @cached_property
    def call_index(self) -> Mapping[str, int]:
        return MappingProxyType({c.id: i for i, c in enumerate(self.calls)})

    def capability(self, capability_id: str) -> Capability:
        try:
            return self.capabilities[self.capability_index[capability_id]]
        except KeyError:
            raise ProblemError("capability_id", f"unknown capability {capability_id!r}") from None

    def agent(self, agent_id: str) -> Agent:
        return self.agents[self.agent_index[agent_id]]

    def call(self, call_id: str) -> Call:
        return self.calls[self.call_index[call_id]]


def exclusions(state: BookingState, capability_id: str) -> tuple[Reason, ...]:
    """Why each blocked agent who would otherwise qualify for ``capability_id`` is left out
    (rule ``agent_excluded``), by agent id. Names agents: for operators, never for customers."""
    cap = state.capability(capability_id)
    out = []
    for agent_id in sorted(state.blocked):
        i = state.agent_index.get(agent_id)
        if i is not None and state.agents[i].qualifies(cap.requirements):
            why = state.blocked[agent_id]
            out.append(Reason("agent_excluded", f"agent {agent_id} excluded: {why}"))
    return tuple(out)


def team_reserves(state: BookingState) -> dict[str, float]:
    """Each team's reserve share: the largest asked for by a capability its agents serve."""
    out: dict[str, float] = {}
    for agent in state.agents:
        share = state.team_reserve.get(agent.team, 0.0)
        for cap in state.capabilities:
            if cap.reserve > share and agent.qualifies(cap.requirements):
                share = cap.reserve
        out[agent.team] = max(out.get(agent.team, 0.0), share)
    return out


def reserve_cap(headcount: int, share: float) -> int:
    """How many of ``headcount`` working people may be on calls at once under ``share``."""
    return headcount - math.ceil(headcount * share - 1e-9)
