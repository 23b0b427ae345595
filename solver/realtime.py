"""Real-time assignment: one ticket to one agent in well under a millisecond, with reasons.

Build a :class:`RealtimeIndex` once per problem (a snapshot of the organisation at
``problem.now``); every :meth:`RealtimeIndex.assign` call is then a handful of numpy operations
over flat per-agent arrays — never a Python loop over agents. Among many candidates, only those
whose cost at their soonest possible start could still win are timed on the calendar clock and
priced exactly (the same answer as pricing everyone). Reasons are formatted only for the chosen
agent and its top alternatives.

The decision, in order:

1. **Filters** (hard): every required skill at or above its level (vectorized over an
   ``int8`` skills x agents level matrix); status AVAILABLE; *on shift* at ``now``; under
   capacity (``open_tickets < capacity``) and, when the agent caps the ticket's channel, under
   that channel's capacity (``channel_open[channel] < channel_capacity[channel]``); enough
   working time left in the horizon for the backlog plus this ticket (the same rule as
   ``validation.check_plan``'s ``working_time``).
2. **Score** (soft, a cost: lower is better, in the units of :mod:`solver.objective`):
   priority-weighted SLA lateness and breaches against each agent's expected start/finish, a
   small priority-weighted cost per minute of waiting, load (open/capacity), expertise waste
   (levels above what is needed), continuity bonuses (current owner, previous agent, the
   requester's previous agent), fairness (recent assignments) and optional capacity prices from
   the last batch solve. Each is one named term in :data:`SCORE_TERMS` that prices every
   candidate at once and explains one candidate from the same numbers, so the formula is
   written once; its reasons carry the name of the :class:`RealtimeWeights` field that prices
   it (see :class:`ScoreTerm`).
3. **Ties** go to the agent that comes first in ``problem.agents``, so the answer is
   deterministic.
4. **Team scope** (:class:`~solver.problem.TeamScope` of the ticket's team, when it has one):
   ``team_only`` keeps the candidates to the owning team's agents; ``borrow`` keeps them to the
   owning team while any of its agents passed the filters, and only then takes the other teams'
   agents, with a ``team_scope`` reason naming the lending team. A team without a scope is
   open to every qualified agent.
5. **Nobody fits**: the ticket is owned by its team's queue (``agent_id=None``) with a reason
   naming the first filter that left nobody ("no agent has skill X at level 4", "3 agents have
   the skills but none is on shift now; next on shift at ...") — never dropped.

*On shift* means inside one of the agent's shifts. Being in a meeting (a busy interval) right now
does **not** exclude an agent: it only delays their expected start to the end of the meeting,
and the urgency term prices that delay. So an urgent ticket goes to someone free now, while a
low-priority one may wait for a specialist who is out of a meeting in ten minutes.

Time model. Minutes are counted from ``problem.now`` (see :mod:`solver.timegrid`); shift edges
round inward to whole minutes like :mod:`solver.availability`. Each agent's work is a clock of
working minutes (:class:`~solver.availability.CalendarBank`): their queue ends at work position
``queue_end`` (initially ``backlog_minutes``). At a later ``now`` (minute ``t``) the agent has
had ``W(t)`` working minutes since the snapshot, so new work starts at work position
``max(queue_end, W(t))`` — backlog is assumed to be worked down as time passes. ``assign`` accepts
any ``now`` in ``[problem.now, horizon_end)``; :meth:`RealtimeIndex.advance` makes a moment the
default and precomputes it. Tickets that close are reported with :meth:`RealtimeIndex.release`.
Past the horizon, rebuild the index from a fresh problem.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from types import MappingProxyType
from typing import Any, NamedTuple, cast

import numpy as np
import numpy.typing as npt

from solver.availability import AGENT_STRIDE as _KEY
from solver.availability import CalendarBank, agent_windows, bank_for, merge_spans
from solver.errors import ProblemError
from solver.objective import DEFAULT_PRIORITY_WEIGHTS, ObjectiveWeights
from solver.plan import Alternative, Decision, Reason
from solver.problem import AgentStatus, Interval, Priority, Problem, TeamScope, Ticket
from solver.timegrid import from_minute, require_aware, to_minute, to_minute_ceil

IntArray = npt.NDArray[np.int64]
_UNCAPPED = np.iinfo(np.int64).max // 4  # a channel capacity no count reaches
# Above this many candidates, assign scores only those that can still win (see _contenders).
_PRUNE_AT = 200
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True, slots=True)
class RealtimeWeights:
    """Weights of the real-time score (a cost: lower is better).

    The SLA, load-free parts share :class:`~solver.objective.ObjectiveWeights`' units so that
    the real-time path and the batch optimizer pull the same way; see :meth:`from_objective`.
    ``wait_per_minute`` prices minutes until the agent can start even when no deadline is at
    risk (priority-weighted), so urgent work goes to whoever is free first. ``load`` multiplies
    ``open/capacity`` (0..1). The ``continuity_*`` weights are bonuses (subtracted).
    """

    priority: Mapping[int, float] = field(
        default_factory=lambda: MappingProxyType(
            {int(k): float(v) for k, v in DEFAULT_PRIORITY_WEIGHTS.items()}
        )
    )
    breach: float = 120.0
    lateness_per_minute: float = 1.0
    wait_per_minute: float = 0.05
    load: float = 20.0
    expertise_waste: float = 4.0
    continuity_owner: float = 60.0
    continuity_previous: float = 10.0
    continuity_requester: float = 5.0
    fairness: float = 1.0
    capacity_price: float = 1.0

    def __post_init__(self) -> None:
        for name in (
            "breach",
            "lateness_per_minute",
            "wait_per_minute",
            "load",
            "expertise_waste",
            "continuity_owner",
            "continuity_previous",
            "continuity_requester",
            "fairness",
            "capacity_price",
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ProblemError(name, f"must be a number, got {type(value).__name__}")
            if not math.isfinite(value) or value < 0:
                raise ProblemError(name, f"must be a finite number >= 0, got {value!r}")
        missing = [int(p) for p in Priority if int(p) not in self.priority]
        if missing:
            raise ProblemError("priority", f"needs a weight for every priority; missing {missing}")
        for p, value in self.priority.items():
            if not math.isfinite(float(value)) or float(value) < 0:
                raise ProblemError(f"priority.{p}", f"must be a finite number >= 0, got {value!r}")
        object.__setattr__(
            self, "priority", MappingProxyType({int(k): float(v) for k, v in self.priority.items()})
        )

    @classmethod
    def from_objective(cls, weights: ObjectiveWeights, **overrides: float) -> RealtimeWeights:
        """Real-time weights that agree with a batch objective's priority, SLA and skill terms."""
        base: dict[str, object] = {
            "priority": {int(k): float(v) for k, v in weights.priority.items()},
            "breach": float(weights.breach),
            "lateness_per_minute": float(weights.lateness_per_minute),
            "expertise_waste": float(weights.expertise_waste),
            "continuity_owner": float(weights.churn),
            "continuity_previous": float(weights.discontinuity),
        }
        base.update(overrides)
        return cls(**base)  # type: ignore[arg-type]

    def priority_weight(self, priority: int) -> float:
        return self.priority[int(priority)]


@dataclass(frozen=True, slots=True)
class _Moment:
    """Per-agent facts at one minute ``t`` since the snapshot; shared by every ticket at ``t``."""

    minute: int
    worked: IntArray  # working minutes each agent has had in [0, t)
    on_shift: BoolArray  # inside a shift at t (status ignored; see ``ready``)
    ready: BoolArray  # on_shift and AVAILABLE


def _flat_spans(
    spans: list[list[tuple[int, int]]], n: int
) -> tuple[IntArray, IntArray, IntArray, IntArray]:
    """Per-agent sorted spans flattened: (starts, ends, first, keys of starts)."""
    counts = np.fromiter((len(s) for s in spans), dtype=np.int64, count=n)
    first = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(counts, out=first[1:])
    flat = [span for s in spans for span in s]
    arr = np.asarray(flat, dtype=np.int64).reshape(-1, 2)
    starts, ends = arr[:, 0].copy(), arr[:, 1].copy()
    owner = np.repeat(np.arange(n, dtype=np.int64), counts)
    return starts, ends, first, owner * _KEY + starts


def _fmt_minutes(minutes: int) -> str:
    m = abs(int(minutes))
    if m < 60:
        return f"{m} min"
    if m < 24 * 60:
        h, r = divmod(m, 60)
        return f"{h} h {r} min" if r else f"{h} h"
    d, r = divmod(m, 24 * 60)
    h = r // 60
    return f"{d} d {h} h" if h else f"{d} d"


def _fmt_in(minutes: int) -> str:
    return "now" if minutes <= 0 else f"in {_fmt_minutes(minutes)}"


def _fmt_moment(moment: datetime) -> str:
    return moment.isoformat(timespec="minutes")


class RealtimeIndex:
    """Precomputed arrays for assigning single tickets fast; see the module docstring.

    ``assign`` never changes what the index means; ``commit``, ``release`` and ``advance``
    update it in place (O(1) per agent), and ``with_assignment`` returns an updated copy.
    Concurrent ``assign`` calls are safe; writers must be serialized by the caller (the service
    already holds a per-tenant lock around binding an agent).
    """

    __slots__ = (
        "_available",
        "_bank",
        "_capacity",
        "_chan_cap",
        "_chan_open",
        "_channel_row",
        "_moment",
        "_n",
        "_now",
        "_open",
        "_prices",
        "_queue_end",
        "_recent",
        "_requester",
        "_shift_ends",
        "_shift_first",
        "_shift_keys",
        "_shift_starts",
        "_skill_row",
        "_status",
        "_team_of",
        "_team_row",
        "agent_ids",
        "horizon",
        "levels",
        "origin",
        "problem",
        "weights",
    )

    problem: Problem
    weights: RealtimeWeights
    origin: datetime
    horizon: int
    agent_ids: tuple[str, ...]
    levels: npt.NDArray[np.int8]
    _n: int
    _bank: CalendarBank
    _skill_row: dict[str, int]
    _capacity: IntArray
    _channel_row: dict[str, int]
    _chan_cap: IntArray  # capped channels x agents; _UNCAPPED where an agent has no cap
    _chan_open: IntArray  # capped channels x agents: open tickets of that channel
    _open: IntArray
    _queue_end: IntArray
    _recent: IntArray
    _available: BoolArray
    _status: tuple[AgentStatus, ...]
    _team_of: IntArray
    _team_row: dict[str, int]
    _shift_starts: IntArray
    _shift_ends: IntArray
    _shift_first: IntArray
    _shift_keys: IntArray
    _prices: FloatArray | None
    _requester: dict[str, int]
    _now: int
    _moment: _Moment | None

    def __init__(self) -> None:  # use RealtimeIndex.build
        self._moment: _Moment | None = None

    # ------------------------------------------------------------------ building
    @classmethod
    def build(
        cls,
        problem: Problem,
        weights: RealtimeWeights | None = None,
        *,
        agent_prices: Mapping[str, float] | None = None,
        requester_agents: Mapping[str, str] | None = None,
        bank: CalendarBank | None = None,
    ) -> RealtimeIndex:
        """Index ``problem`` once.

        ``agent_prices`` are per-agent costs (e.g. capacity duals of the last batch solve);
        agents absent from the problem are ignored, since a price list can outlive a roster.
        ``requester_agents`` maps a requester to the agent who last served them; it extends what
        the problem's tickets already say (their owner, else previous agent).
        """
        self = cls()
        self.problem = problem
        self.weights = weights or RealtimeWeights()
        self.origin = problem.now
        self.horizon = problem.horizon_minutes
        agents = problem.agents
        n = len(agents)
        self._n = n
        self.agent_ids = tuple(a.id for a in agents)
        self._bank = bank or bank_for(problem)

        skill_ids = problem.skill_ids
        self._skill_row = {s: i for i, s in enumerate(skill_ids)}
        # Skills x agents, so that one required skill is one contiguous row.
        levels = np.zeros((len(skill_ids), n), dtype=np.int8)
        for j, agent in enumerate(agents):
            for s, lvl in agent.skills.items():
                levels[self._skill_row[s], j] = lvl
        self.levels = levels

        self._capacity = np.fromiter((a.capacity for a in agents), dtype=np.int64, count=n)
        self._open = np.fromiter((a.open_tickets for a in agents), dtype=np.int64, count=n)
        capped = sorted({c for a in agents for c in a.channel_capacity})
        self._channel_row = {c: i for i, c in enumerate(capped)}
        self._chan_cap = np.full((len(capped), n), _UNCAPPED, dtype=np.int64)
        self._chan_open = np.zeros((len(capped), n), dtype=np.int64)
        for j, agent in enumerate(agents):
            for c, cap in agent.channel_capacity.items():
                self._chan_cap[self._channel_row[c], j] = cap
            for c, k in agent.channel_open.items():
                if c in self._channel_row:
                    self._chan_open[self._channel_row[c], j] = k
        self._queue_end = np.fromiter((a.backlog_minutes for a in agents), dtype=np.int64, count=n)
        self._recent = np.fromiter((a.recent_assignments for a in agents), dtype=np.int64, count=n)
        self._available = np.fromiter(
            (a.status is AgentStatus.AVAILABLE for a in agents), dtype=bool, count=n
        )
        self._status = tuple(a.status for a in agents)
        self._team_row = {}
        for a in agents:
            self._team_row.setdefault(a.team, len(self._team_row))
        self._team_of = np.fromiter(
            (self._team_row[a.team] for a in agents), dtype=np.int64, count=n
        )

        origin = problem.now
        shift_spans = [
            merge_spans(
                [
                    (max(0, to_minute_ceil(s.start, origin)), to_minute(s.end, origin))
                    for s in a.shifts
                ]
            )
            for a in agents
        ]
        (
            self._shift_starts,
            self._shift_ends,
            self._shift_first,
            self._shift_keys,
        ) = _flat_spans(shift_spans, n)

        self._prices = None
        if agent_prices is not None:
            self._prices = self._price_vector(agent_prices)

        index = problem.agent_index
        self._requester = {}
        for t in problem.tickets:
            who = t.owner_agent if t.owner_agent in index else t.previous_agent
            if t.requester is not None and who is not None and who in index:
                self._requester[t.requester] = index[who]
        for requester, agent_id in (requester_agents or {}).items():
            if agent_id in index:
                self._requester[requester] = index[agent_id]
        self._now = 0
        self._moment = self._compute_moment(0)
        return self

    def _price_vector(self, agent_prices: Mapping[str, float]) -> FloatArray:
        prices = np.zeros(self._n, dtype=np.float64)
        index = self.problem.agent_index
        for agent_id, price in agent_prices.items():
            value = float(price)
            if not math.isfinite(value):
                raise ProblemError(f"agent_prices.{agent_id}", f"must be finite, got {price!r}")
            if agent_id in index:
                prices[index[agent_id]] = value
        return prices

    def copy(self) -> RealtimeIndex:
        """An independent copy: the mutable per-agent arrays are duplicated, the rest shared."""
        other = RealtimeIndex()
        for name in RealtimeIndex.__slots__:
            setattr(other, name, getattr(self, name))
        other._open = self._open.copy()
        other._chan_open = self._chan_open.copy()
        other._queue_end = self._queue_end.copy()
        other._recent = self._recent.copy()
        other._requester = dict(self._requester)
        return other

    def with_busy(self, extra: Mapping[str, Iterable[Interval]]) -> RealtimeIndex:
        """A copy whose agents are also busy in ``extra`` (agent id -> intervals, e.g. the
        calls they are held for; unknown ids ignored): it decides exactly like an index built
        from :func:`solver.problem.with_busy` of the problem, but recomputes only the named
        agents' working calendars (the service does this whenever calls change). ``problem``
        stays the snapshot the index was built from."""
        positions = self.problem.agent_index
        changed: dict[int, list[tuple[int, int]]] = {}
        for agent_id, spans in extra.items():
            a = positions.get(agent_id)
            more = tuple(spans)
            if a is None or not more:
                continue
            agent = self.problem.agents[a]
            changed[a] = agent_windows(replace(agent, busy=(*agent.busy, *more)), self.problem)
        other = self.copy()
        if changed:
            windows = [
                changed[a] if a in changed else self._bank.windows_of(a) for a in range(self._n)
            ]
            other._bank = CalendarBank.from_windows(windows, self.horizon)
            other._moment = other._compute_moment(other._now)
        return other

    # ------------------------------------------------------------------ time
    @property
    def now(self) -> datetime:
        """The default moment of ``assign`` (``problem.now`` until :meth:`advance`)."""
        return from_minute(self._now, self.origin)

    def minute_of(self, now: datetime | None) -> int:
        """``now`` as a minute since the snapshot; refuses moments the index cannot answer."""
        if now is None:
            return self._now
        moment = require_aware(now, "now")
        t = to_minute(moment, self.origin)
        if t < 0:
            raise ProblemError(
                "now",
                f"{moment.isoformat()} is before the index snapshot {self.origin.isoformat()}",
            )
        if t >= self.horizon:
            raise ProblemError(
                "now",
                f"{moment.isoformat()} is past the index horizon; rebuild it from a new problem",
            )
        return t

    def advance(self, now: datetime) -> None:
        """Make ``now`` the default moment and precompute it (one vectorized pass)."""
        t = self.minute_of(now)
        self._now = t
        self._moment = self._compute_moment(t)

    def _compute_moment(self, t: int) -> _Moment:
        agents = np.arange(self._n, dtype=np.int64)
        probe = agents * _KEY + t
        worked = self._bank.clock.work_before(agents, np.full(self._n, t, dtype=np.int64))
        on_shift = np.zeros(self._n, dtype=bool)
        if len(self._shift_starts):
            k = np.searchsorted(self._shift_keys, probe, side="right") - 1
            has = k >= self._shift_first[:-1]
            kk = np.where(has, k, 0)
            on_shift = has & (t < self._shift_ends[kk])
        return _Moment(t, worked, on_shift, on_shift & self._available)

    def _at(self, t: int) -> _Moment:
        m = self._moment
        if m is None or m.minute != t:
            # A one-entry memo: it changes no answer, only skips recomputing the same minute.
            m = self._compute_moment(t)
            self._moment = m
        return m

    def _work_at(self, a: int, minute: int) -> int:
        """Work position of agent ``a``'s clock at wall ``minute`` (inverse of the bank's
        ``start_minute``), extrapolated minute for minute past the horizon."""
        b = self._bank
        if minute >= b.horizon:
            return int(b.total[a]) + (minute - b.horizon)
        return int(b.clock.work_before(np.array([a]), np.array([minute]))[0])

    # ------------------------------------------------------------------ state
    def load_of(self, agent_id: str) -> tuple[int, int]:
        """``(open, capacity)`` of an agent as the index sees it now."""
        a = self._agent(agent_id)
        return int(self._open[a]), int(self._capacity[a])

    def channel_load_of(self, agent_id: str, channel: str) -> tuple[int, int | None]:
        """``(open of channel, channel capacity)`` of an agent; capacity None when uncapped
        (then only capped channels' open counts are tracked, and 0 is returned for open)."""
        a = self._agent(agent_id)
        row = self._channel_row.get(channel)
        if row is None:
            return 0, None
        cap = int(self._chan_cap[row, a])
        return int(self._chan_open[row, a]), None if cap == _UNCAPPED else cap

    def _channel_room(self, channel: str) -> BoolArray | None:
        """Agents under their cap of ``channel`` (None: nobody caps it)."""
        row = self._channel_row.get(channel)
        if row is None:
            return None
        room: BoolArray = self._chan_open[row] < self._chan_cap[row]
        return room

    def _agent(self, agent_id: str) -> int:
        try:
            return self.problem.agent_index[agent_id]
        except KeyError:
            raise ProblemError("agent_id", f"unknown agent {agent_id!r}") from None

    def set_prices(self, agent_prices: Mapping[str, float] | None) -> None:
        """Replace the capacity prices (e.g. after a new batch solve); None removes them."""
        self._prices = None if agent_prices is None else self._price_vector(agent_prices)

    def commit(self, decision: Decision, ticket: Ticket | None = None) -> None:
        """Record that ``decision`` was carried out, so the next call sees the agent busier.

        The agent gets one more open ticket, one more recent assignment, and their queue grows
        by the ticket's effort (from ``ticket`` when given, else read back from the decision's
        expected start and end). ``ticket`` also teaches the index its requester's agent.
        A queued decision (no agent) changes nothing.
        """
        if decision.agent_id is None:
            return
        a = self._agent(decision.agent_id)
        if ticket is not None:
            channel: str | None = ticket.channel
        else:
            known = self.problem.ticket_index.get(decision.ticket_id)
            channel = None if known is None else self.problem.tickets[known].channel
        if decision.expected_start is None or decision.expected_end is None:
            if ticket is None:
                raise ProblemError(
                    "decision", "has no expected start/end; pass the ticket to commit it"
                )
            start_work = int(max(self._queue_end[a], self._at(self._now).worked[a]))
            effort = ticket.effort_minutes
        else:
            start_work = self._work_at(a, to_minute(decision.expected_start, self.origin))
            if ticket is not None:
                effort = ticket.effort_minutes
            else:
                end_work = self._work_at(a, to_minute(decision.expected_end, self.origin))
                effort = max(1, end_work - start_work)
        self._record(
            a, start_work, effort, ticket.requester if ticket is not None else None, channel
        )

    def with_assignment(
        self, ticket: Ticket, agent_id: str, now: datetime | None = None
    ) -> RealtimeIndex:
        """A copy of the index with ``ticket`` given to ``agent_id`` at ``now`` (no checks:
        this records a decision made elsewhere, e.g. by a person overriding the router)."""
        other = self.copy()
        a = other._agent(agent_id)
        t = other.minute_of(now)
        start_work = int(max(other._queue_end[a], other._at(t).worked[a]))
        other._record(a, start_work, ticket.effort_minutes, ticket.requester, ticket.channel)
        return other

    def _record(
        self, a: int, start_work: int, effort: int, requester: str | None, channel: str | None
    ) -> None:
        self._queue_end[a] = max(int(self._queue_end[a]), start_work) + effort
        self._open[a] += 1
        self._recent[a] += 1
        row = None if channel is None else self._channel_row.get(channel)
        if row is not None:
            self._chan_open[row, a] += 1
        if requester is not None:
            self._requester[requester] = a

    def release(self, agent_id: str, count: int = 1, channel: str | None = None) -> None:
        """``count`` of the agent's open tickets (of ``channel``, when given) were closed: free
        that much capacity."""
        a = self._agent(agent_id)
        self._open[a] = max(0, int(self._open[a]) - count)
        row = None if channel is None else self._channel_row.get(channel)
        if row is not None:
            self._chan_open[row, a] = max(0, int(self._chan_open[row, a]) - count)

    def with_loads(
        self,
        now: datetime,
        held: Mapping[str, tuple[int, int]],
        channels: Mapping[str, Mapping[str, int]] | None = None,
    ) -> RealtimeIndex:
        """A copy whose agents hold exactly ``held`` (agent id -> (open tickets, backlog
        minutes)) at ``now``; agents absent from ``held`` hold nothing, unknown ids are ignored.
        ``channels`` (agent id -> channel -> open tickets of that channel) replaces the
        per-channel counts the same way (absent: nothing of any channel).

        It is what a service does to a cached index when loads were read again (a new moment,
        new backlogs): the result decides like an index built afresh at ``now`` from agents
        carrying those loads. Work is counted on each agent's clock of working minutes since
        the snapshot, so a backlog read at minute ``t`` ends at ``worked(t) + backlog``. The
        default moment (:attr:`now`) is unchanged.
        """
        other = self.copy()
        n = len(other.agent_ids)
        open_now = np.zeros(n, dtype=np.int64)
        backlog = np.zeros(n, dtype=np.int64)
        positions = other.problem.agent_index
        for agent_id, (count, minutes) in held.items():
            i = positions.get(agent_id)
            if i is not None:
                open_now[i] = count
                backlog[i] = minutes
        chan_open = np.zeros_like(other._chan_open)
        if channels and other._channel_row:
            for agent_id, counts in channels.items():
                i = positions.get(agent_id)
                if i is None:
                    continue
                for channel, k in counts.items():
                    row = other._channel_row.get(channel)
                    if row is not None:
                        chan_open[row, i] = k
        worked = other._at(other.minute_of(now)).worked
        other._chan_open = chan_open
        other._open = open_now
        other._queue_end = worked + backlog
        return other

    def with_full(self, agent_id: str) -> RealtimeIndex:
        """A copy in which ``agent_id`` holds at least as many open tickets as their capacity,
        so is no candidate (e.g. they filled up since the loads were read)."""
        other = self.copy()
        a = other._agent(agent_id)
        other._open[a] = max(int(other._open[a]), int(other._capacity[a]))
        return other

    # ------------------------------------------------------------------ assigning
    def assign(self, ticket: Ticket, now: datetime | None = None, top_k: int = 3) -> Decision:
        """The best agent for ``ticket`` at ``now`` (default: :attr:`now`), or its team's queue.

        ``alternatives`` are up to ``top_k`` runners-up, best first. ``score`` is a cost (lower is
        better). Does not change the index; call :meth:`commit` to record the decision.
        """
        if top_k < 0:
            raise ProblemError("top_k", f"must be at least 0, got {top_k}")
        t = self.minute_of(now)
        m = self._at(t)
        w = self.weights

        rows: list[int] = []
        needs: list[int] = []
        for skill, level in ticket.required_skills.items():
            row = self._skill_row.get(skill)
            if row is None:
                return self._queue(ticket, m, [], None, unknown_skill=skill)
            rows.append(row)
            needs.append(level)
        scope = self.problem.team_scope.get(ticket.team)
        own: BoolArray | None = None
        if scope is not None:
            row = self._team_row.get(ticket.team)
            own = self._team_of == row if row is not None else np.zeros(self._n, dtype=bool)
        only_own = own if scope is TeamScope.TEAM_ONLY else None
        qualified: BoolArray | None = None
        if rows:
            qualified = self.levels[rows[0]] >= needs[0]
            for row, level in zip(rows[1:], needs[1:], strict=True):
                qualified &= self.levels[row] >= level
            eligible = qualified & m.ready
        else:
            eligible = m.ready.copy()
        eligible &= self._open < self._capacity
        channel_room = self._channel_room(ticket.channel)
        if channel_room is not None:
            eligible &= channel_room
        if only_own is not None:
            eligible &= only_own
        cand = np.flatnonzero(eligible)
        effort = ticket.effort_minutes
        if cand.size:
            pos = np.maximum(self._queue_end[cand], m.worked[cand])
            fits = pos + effort <= self._bank.total[cand]
            if not fits.all():
                cand = cand[fits]
                pos = pos[fits]
        borrowed = False
        if scope is TeamScope.BORROW and own is not None and cand.size:
            mine = own[cand]
            if mine.any():
                cand, pos = cand[mine], pos[mine]
            else:
                borrowed = True
        if not cand.size:
            return self._queue(
                ticket, m, list(zip(rows, needs, strict=True)), qualified, only_own=only_own
            )

        fr_due, res_due = ticket.first_response_due, ticket.resolution_due
        pw = w.priority_weight(ticket.priority)
        fr_min = None if fr_due is None else to_minute(fr_due, self.origin)
        res_min = None if res_due is None else to_minute(res_due, self.origin)
        n_cand = cand.size
        if n_cand > _PRUNE_AT:
            c, cost, parts = self._contenders(
                ticket, t, m, cand, pos, pw, rows, needs, fr_min, res_min, top_k + 1
            )
        else:
            c, cost, parts = self._evaluate(ticket, t, cand, pos, pw, rows, needs, fr_min, res_min)
        cand, start, finish = c.cand, c.start, c.finish
        order = self._best(cost, top_k + 1)
        best = int(order[0])
        lent = [self._borrowed(ticket, cand.item(int(i))) if borrowed else [] for i in order]
        reasons = [
            *lent[0],
            *self._explain(c, parts, best),
            Reason(
                "candidates",
                f"best of {n_cand} qualified agent{'s' if n_cand != 1 else ''} "
                "on shift with capacity",
                0.0,
            ),
        ]
        alternatives = tuple(
            Alternative(
                self.agent_ids[cand.item(i)],
                cost.item(i),
                (*more, *self._explain(c, parts, int(i))),
            )
            for i, more in zip(order[1:], lent[1:], strict=True)
        )
        return Decision(
            ticket_id=ticket.id,
            agent_id=self.agent_ids[cand.item(best)],
            team_id=ticket.team,
            score=cost.item(best),
            reasons=tuple(reasons),
            alternatives=alternatives,
            expected_start=from_minute(int(start[best]), self.origin),
            expected_end=from_minute(int(finish[best]), self.origin),
        )

    def _contenders(
        self,
        ticket: Ticket,
        t: int,
        m: _Moment,
        cand: IntArray,
        pos: IntArray,
        pw: float,
        rows: list[int],
        needs: list[int],
        fr_min: int | None,
        res_min: int | None,
        keep: int,
    ) -> tuple[_Candidates, FloatArray, list[_Part]]:
        """Price exactly only the candidates that can still be among the ``keep`` best, so that
        an ``assign`` among thousands asks the calendar clock (two binary searches a candidate,
        most of its time) about a few of them; the answer is the same as pricing everyone.

        A candidate whose work starts ``pos - worked(t)`` working minutes from now can start no
        sooner than that many wall minutes from now, and finish no sooner than ``effort`` after.
        Every term is nondecreasing in start and finish (the weights are >= 0; see
        :class:`ScoreTerm`) and IEEE rounding is monotone, so the same terms priced at those
        soonest moments (``bound``) never exceed the real cost, to the last bit. Price exactly
        the ``span`` lowest bounds: the ``keep``-th lowest real cost among them, ``u``, is at
        least the ``keep``-th lowest of all, so everyone among the ``keep`` best (ties
        included) has ``bound <= u``. Usually they are all priced already; when not, price
        everyone with ``bound <= u``. Positions stay ascending, so ties still go to the agent
        first in ``problem.agents``."""
        soonest = t + (pos - m.worked[cand])
        bound, _ = self._score(
            _Candidates(
                ticket,
                t,
                cand,
                soonest,
                soonest + ticket.effort_minutes,
                soonest - t,
                pw,
                rows,
                needs,
                fr_min,
                res_min,
            )
        )
        span = min(cand.size, max(4 * keep, 16))
        near = np.sort(np.argpartition(bound, span - 1)[:span])
        c, cost, parts = self._evaluate(
            ticket, t, cand[near], pos[near], pw, rows, needs, fr_min, res_min
        )
        u = np.partition(cost, keep - 1)[keep - 1] if cost.size > keep else cost.max()
        within = bound <= u
        if np.count_nonzero(within) > np.count_nonzero(within[near]):
            return self._evaluate(
                ticket, t, cand[within], pos[within], pw, rows, needs, fr_min, res_min
            )
        return c, cost, parts

    def _evaluate(
        self,
        ticket: Ticket,
        t: int,
        cand: IntArray,
        pos: IntArray,
        pw: float,
        rows: list[int],
        needs: list[int],
        fr_min: int | None,
        res_min: int | None,
    ) -> tuple[_Candidates, FloatArray, list[_Part]]:
        """Price candidates ``cand`` whose work starts at work position ``pos``."""
        start = self._bank.clock.start(cand, pos)
        finish = self._bank.clock.finish(cand, pos + ticket.effort_minutes)
        c = _Candidates(ticket, t, cand, start, finish, start - t, pw, rows, needs, fr_min, res_min)
        cost, parts = self._score(c)
        return c, cost, parts

    def _borrowed(self, ticket: Ticket, a: int) -> list[Reason]:
        """The reason an agent of another team works ``ticket`` (its team borrows)."""
        lender = self.problem.agents[a].team
        return [
            Reason(
                "team_scope",
                f"borrowed from team {lender}: no agent of team {ticket.team} can take it now "
                f"(team {ticket.team} borrows across teams)",
                0.0,
            )
        ]

    def _score(self, c: _Candidates) -> tuple[FloatArray, list[_Part]]:
        """Every term's price of every candidate, and their sum (the cost, lower is better).

        One-agent terms (the continuity bonuses) are summed per agent first and taken off once,
        so the cost is the same float however many of them meet on one agent."""
        parts: list[_Part] = []
        cost = np.zeros(c.cand.size, dtype=np.float64)
        single: dict[int, float] = {}
        for name, price, explain, per_agent in SCORE_TERMS:
            priced = price(self, c)
            if priced is None:
                continue
            if per_agent:
                a, value = cast(Single, priced)
                single[a] = single.get(a, 0.0) - value
                parts.append((name, explain, None, None, a, value))
            else:
                values, basis = cast(Priced, priced)
                cost += values
                parts.append((name, explain, values, basis, -1, 0.0))
        for a, bonus in single.items():
            i = int(np.searchsorted(c.cand, a))
            if i < c.cand.size and c.cand[i] == a:
                cost[i] -= bonus
        return cost, parts

    def _explain(self, c: _Candidates, parts: list[_Part], i: int) -> list[Reason]:
        """One reason per term that priced candidate ``i``, valued at what it added."""
        a: int = c.cand.item(i)
        out: list[Reason] = []
        for name, explain, values, basis, agent, value in parts:
            if values is None:
                if agent == a:
                    out.append(Reason(name, explain(self, c, i, a, 0), value))
            else:
                amount = 0 if basis is None else basis.item(i)
                out.append(Reason(name, explain(self, c, i, a, amount), values.item(i)))
        return out

    @staticmethod
    def _best(cost: FloatArray, k: int) -> IntArray:
        """Positions of the ``k`` lowest costs, ties to the lower position (= agent order)."""
        n = cost.size
        if n <= k:
            return np.lexsort((np.arange(n), cost))[:k]
        # Take everything tied with the k-th value too, so ties break by position, not by
        # whatever argpartition happened to pick.
        kth = np.partition(cost, k - 1)[k - 1]
        pick = np.flatnonzero(cost <= kth)
        return pick[np.lexsort((pick, cost[pick]))][:k]

    # ------------------------------------------------------------------ nobody fits
    def _queue(
        self,
        ticket: Ticket,
        m: _Moment,
        needs: list[tuple[int, int]],
        qualified: BoolArray | None,
        *,
        unknown_skill: str | None = None,
        only_own: BoolArray | None = None,
    ) -> Decision:
        if unknown_skill is not None:
            why = Reason("qualified", f"no agent has skill {unknown_skill}", 0.0)
        else:
            why = self._why_nobody(ticket, m, needs, qualified, only_own)
        return Decision(
            ticket_id=ticket.id,
            agent_id=None,
            team_id=ticket.team,
            score=None,
            reasons=(
                why,
                Reason(
                    "team_queue",
                    f"no agent can take it now; it stays in team {ticket.team}'s queue",
                ),
            ),
        )

    def _why_nobody(
        self,
        ticket: Ticket,
        m: _Moment,
        needs: list[tuple[int, int]],
        qualified: BoolArray | None,
        only_own: BoolArray | None = None,
    ) -> Reason:
        """The first filter that left nobody, said the way a team lead would say it (the team
        scope right after the skills: ``only_own`` are the agents a team_only ticket may get)."""
        skill_ids = self.problem.skill_ids
        counts: list[tuple[str, int, int]] = []
        for row, level in needs:
            n_ok = int(np.count_nonzero(self.levels[row] >= level))
            counts.append((skill_ids[row], level, n_ok))
            if n_ok == 0:
                top = int(self.levels[row].max()) if self._n else 0
                have = f" (the highest level anyone has is {top})" if top else ""
                return Reason(
                    "qualified", f"no agent has skill {skill_ids[row]} at level {level}{have}", 0.0
                )
        mask = np.ones(self._n, dtype=bool) if qualified is None else qualified
        n_qual = int(np.count_nonzero(mask))
        if self._n == 0:
            return Reason("qualified", "there are no agents", 0.0)
        if n_qual == 0:
            parts = ", ".join(f"{s}>={lvl}: {n}" for s, lvl, n in counts)
            return Reason(
                "qualified",
                f"no agent has every required skill at its level together ({parts} agents)",
                0.0,
            )
        if only_own is not None:
            mask = mask & only_own
            others = n_qual - int(np.count_nonzero(mask))
            n_qual = n_qual - others
            if n_qual == 0:
                what = "has the skills" if needs else "exists"
                return Reason(
                    "team_scope",
                    f"no agent of team {ticket.team} {what}; {others} of other teams "
                    f"could, but team {ticket.team} works only its own tickets (team_only)",
                    0.0,
                )
        if needs:
            have = f"{n_qual} agent{'s' if n_qual != 1 else ''} "
            have += "has the skills" if n_qual == 1 else "have the skills"
        else:
            have = f"{n_qual} agent{'s' if n_qual != 1 else ''} could take it (no skills needed)"
        avail = mask & self._available
        if not avail.any():
            statuses = [self._status[int(a)] for a in np.flatnonzero(mask)]
            away = sum(s is AgentStatus.AWAY for s in statuses)
            off = sum(s is AgentStatus.OFFLINE for s in statuses)
            return Reason(
                "available", f"{have} but none is available ({away} away, {off} offline)", 0.0
            )
        ready = avail & m.on_shift
        if not ready.any():
            nxt = self._next_shift(np.flatnonzero(avail), m.minute)
            if nxt is None:
                tail = "; none of them has another shift"
            else:
                minute, a = nxt
                tail = (
                    f"; next qualified agent on shift at "
                    f"{_fmt_moment(from_minute(minute, self.origin))} ({self.agent_ids[a]})"
                )
            return Reason("on_shift", f"{have} but none is on shift now{tail}", 0.0)
        room = ready & (self._open < self._capacity)
        if not room.any():
            full = np.flatnonzero(ready)
            sample = ", ".join(
                f"{self.agent_ids[int(a)]} {int(self._open[a])}/{int(self._capacity[a])}"
                for a in full[:3]
            )
            more = f" and {full.size - 3} more" if full.size > 3 else ""
            return Reason(
                "capacity",
                f"{full.size} qualified agent{'s' if full.size != 1 else ''} on shift, "
                f"all at capacity ({sample}{more})",
                0.0,
            )
        channel_room = self._channel_room(ticket.channel)
        if channel_room is not None and not (room & channel_room).any():
            full = np.flatnonzero(room)
            row = self._channel_row[ticket.channel]
            sample = ", ".join(
                f"{self.agent_ids[int(a)]} {int(self._chan_open[row, a])}/"
                f"{int(self._chan_cap[row, a])}"
                for a in full[:3]
            )
            more = f" and {full.size - 3} more" if full.size > 3 else ""
            return Reason(
                "channel_capacity",
                f"{full.size} qualified agent{'s' if full.size != 1 else ''} on shift with "
                f"capacity, all at their {ticket.channel} capacity ({sample}{more})",
                0.0,
            )
        if channel_room is not None:
            room &= channel_room
        n_room = int(np.count_nonzero(room))
        return Reason(
            "working_time",
            f"{n_room} qualified agent{'s' if n_room != 1 else ''} on shift with capacity, but "
            f"none has {ticket.effort_minutes} more working minutes before the horizon ends",
            0.0,
        )

    def _next_shift(self, agents: IntArray, t: int) -> tuple[int, int] | None:
        """Earliest shift start after minute ``t`` among ``agents``: ``(minute, agent)``."""
        if not agents.size or not len(self._shift_starts):
            return None
        k = np.searchsorted(self._shift_keys, agents * _KEY + t, side="right")
        valid = k < self._shift_first[agents + 1]
        if not valid.any():
            return None
        starts = np.where(valid, self._shift_starts[np.minimum(k, len(self._shift_starts) - 1)], 0)
        pick = np.flatnonzero(valid)
        best = pick[np.lexsort((pick, starts[pick]))[0]]
        return int(starts[best]), int(agents[best])


# ---------------------------------------------------------------------------- the score's terms
@dataclass(slots=True)
class _Candidates:
    """The agents that passed the filters in one ``assign`` call (positions ``cand``, ascending)
    and what the terms read about them; arrays are aligned with ``cand``."""

    ticket: Ticket
    t: int
    cand: IntArray
    start: IntArray  # wall minute each can start
    finish: IntArray  # wall minute each would finish
    wait: IntArray  # start - t
    pw: float  # the ticket's priority weight
    rows: list[int]  # skill rows the ticket requires ...
    needs: list[int]  # ... at these levels
    fr_min: int | None  # first response due, as a minute
    res_min: int | None  # resolution due, as a minute


# A term's price of every candidate, and per candidate the amount it priced (minutes late,
# levels above the need) for its reason; None when the reason needs none.
Priced = tuple[npt.NDArray[np.floating[Any]], IntArray | None]
# The price of a term that concerns one agent (a continuity bonus): its position and the value.
Single = tuple[int, float]
# What one assign call keeps of a term for explaining: (name, explain, values, amounts, -1, 0.0)
# of a per-candidate term, or (name, explain, None, None, agent, value) of a one-agent term.
_Part = tuple[
    str,
    Callable[["RealtimeIndex", "_Candidates", int, int, int], str],
    npt.NDArray[np.floating[Any]] | None,
    IntArray | None,
    int,
    float,
]


class ScoreTerm(NamedTuple):
    """One soft rule of the real-time score: ``price`` gives its cost for every candidate at
    once (vectorized; ``None`` when it does not apply to this ticket), ``explain`` says why one
    candidate got its share. Its reason is named ``name`` and valued at exactly what the term
    added to the score, so the reasons of an agent sum to its score.

    ``name`` is the :class:`RealtimeWeights` field that prices the term,
    except for the two deadline terms, ``first_response`` and ``resolution``, which price
    ``lateness_per_minute`` and ``breach`` against one deadline each (and ``first_response``
    carries ``wait_per_minute`` too, since the wait is what makes a first response late).

    A price must never fall when a candidate's start or finish comes later: above
    ``_PRUNE_AT`` candidates, ``assign`` prices everyone at their soonest possible start first
    and prices exactly only those that can still win (see ``RealtimeIndex._contenders``).
    """

    name: str
    price: Callable[[RealtimeIndex, _Candidates], Priced | Single | None]
    # (index, candidates, candidate i, its agent position, the amount priced for i) -> the
    # reason's detail
    explain: Callable[[RealtimeIndex, _Candidates, int, int, int], str]
    per_agent: bool = False  # price gives a Single, not a Priced


def _late(moment: IntArray, due: int) -> IntArray:
    """Minutes past ``due`` (0 when on time)."""
    return np.maximum(0, moment - due)


def _deadline_cost(idx: RealtimeIndex, pw: float, late: IntArray) -> FloatArray:
    w = idx.weights
    return pw * (w.lateness_per_minute * late + w.breach * (late > 0))


def _wait_cost(idx: RealtimeIndex, c: _Candidates) -> FloatArray:
    return (idx.weights.wait_per_minute * c.pw) * c.wait.astype(np.float64)


def _can_start(idx: RealtimeIndex, c: _Candidates, i: int) -> str:
    wait: int = c.wait.item(i)
    if wait <= 0:
        return "can start now"
    at = _fmt_moment(from_minute(c.start.item(i), idx.origin))
    return f"can start in {_fmt_minutes(wait)} (at {at})"


def _price_wait(idx: RealtimeIndex, c: _Candidates) -> Priced | None:
    # With a first-response deadline the wait is priced inside that term (see ScoreTerm).
    return (_wait_cost(idx, c), None) if c.fr_min is None else None


def _explain_wait(idx: RealtimeIndex, c: _Candidates, i: int, a: int, amount: int) -> str:
    return _can_start(idx, c, i)


def _price_first_response(idx: RealtimeIndex, c: _Candidates) -> Priced | None:
    if c.fr_min is None:
        return None
    late = _late(c.start, c.fr_min)
    return _wait_cost(idx, c) + _deadline_cost(idx, c.pw, late), late


def _explain_first_response(idx: RealtimeIndex, c: _Candidates, i: int, a: int, amount: int) -> str:
    assert c.fr_min is not None  # priced only with a deadline
    due = c.fr_min - c.t
    head = (
        f"first response due in {_fmt_minutes(due)}"
        if due >= 0
        else f"first response overdue by {_fmt_minutes(due)}"
    )
    tail = f"; {_fmt_minutes(amount)} late" if amount > 0 and due >= 0 else ""
    return f"{head}; {_can_start(idx, c, i)}{tail}"


def _price_resolution(idx: RealtimeIndex, c: _Candidates) -> Priced | None:
    if c.res_min is None:
        return None
    late = _late(c.finish, c.res_min)
    return _deadline_cost(idx, c.pw, late), late


def _explain_resolution(idx: RealtimeIndex, c: _Candidates, i: int, a: int, amount: int) -> str:
    assert c.res_min is not None  # priced only with a deadline
    due = c.res_min - c.t
    head = (
        f"resolution due {_fmt_in(due)}"
        if due > 0
        else f"resolution overdue by {_fmt_minutes(due)}"
    )
    done = f"expected done {_fmt_in(c.finish.item(i) - c.t)}"
    tail = f", {_fmt_minutes(amount)} late" if amount > 0 else ""
    return f"{head}; {done}{tail}"


def _price_load(idx: RealtimeIndex, c: _Candidates) -> Priced | None:
    return idx.weights.load * (idx._open[c.cand] / idx._capacity[c.cand]), None


def _explain_load(idx: RealtimeIndex, c: _Candidates, i: int, a: int, amount: int) -> str:
    return f"load {idx._open.item(a)}/{idx._capacity.item(a)}"


def _waste(idx: RealtimeIndex, c: _Candidates) -> IntArray:
    """Skill levels above what the ticket needs, summed over its required skills."""
    # One fancy index picks (required rows x candidates) without copying whole rows first.
    rows = np.asarray(c.rows, dtype=np.int64)[:, None]
    levels: IntArray = idx.levels[rows, c.cand].sum(axis=0, dtype=np.int64)
    return levels - sum(c.needs)


def _price_expertise_waste(idx: RealtimeIndex, c: _Candidates) -> Priced | None:
    if not c.rows:
        return None
    waste = _waste(idx, c)
    return idx.weights.expertise_waste * waste, waste


def _explain_expertise_waste(
    idx: RealtimeIndex, c: _Candidates, i: int, a: int, amount: int
) -> str:
    extra = amount
    if extra == 0:
        return "skill levels match what the ticket needs"
    skill_ids = idx.problem.skill_ids
    over = [
        f"{skill_ids[r]} {idx.levels.item(r, a)} for {need}"
        for r, need in zip(c.rows, c.needs, strict=True)
        if idx.levels.item(r, a) > need
    ]
    detail = f"{extra} level{'s' if extra != 1 else ''} above what is needed ({', '.join(over)})"
    return detail


def _price_continuity_owner(idx: RealtimeIndex, c: _Candidates) -> Single | None:
    owner = c.ticket.owner_agent
    a = None if owner is None else idx.problem.agent_index.get(owner)
    return None if a is None else (a, -idx.weights.continuity_owner)


def _explain_continuity_owner(
    idx: RealtimeIndex, c: _Candidates, i: int, a: int, amount: int
) -> str:
    return "already owns this ticket"


def _price_continuity_previous(idx: RealtimeIndex, c: _Candidates) -> Single | None:
    previous = c.ticket.previous_agent
    a = None if previous is None else idx.problem.agent_index.get(previous)
    return None if a is None else (a, -idx.weights.continuity_previous)


def _explain_continuity_previous(
    idx: RealtimeIndex, c: _Candidates, i: int, a: int, amount: int
) -> str:
    return "worked on this ticket before"


def _price_continuity_requester(idx: RealtimeIndex, c: _Candidates) -> Single | None:
    requester = c.ticket.requester
    a = None if requester is None else idx._requester.get(requester)
    return None if a is None else (a, -idx.weights.continuity_requester)


def _explain_continuity_requester(
    idx: RealtimeIndex, c: _Candidates, i: int, a: int, amount: int
) -> str:
    return "handled this requester before"


def _price_fairness(idx: RealtimeIndex, c: _Candidates) -> Priced | None:
    return idx.weights.fairness * idx._recent[c.cand], None


def _explain_fairness(idx: RealtimeIndex, c: _Candidates, i: int, a: int, amount: int) -> str:
    recent: int = idx._recent.item(a)
    return f"{recent} recent assignment{'s' if recent != 1 else ''}"


def _price_capacity_price(idx: RealtimeIndex, c: _Candidates) -> Priced | None:
    if idx._prices is None:
        return None
    return idx.weights.capacity_price * idx._prices[c.cand], None


def _explain_capacity_price(idx: RealtimeIndex, c: _Candidates, i: int, a: int, amount: int) -> str:
    assert idx._prices is not None  # priced only with prices
    price: float = idx._prices.item(a)
    return f"capacity price {price:g} from the last batch solve"


# The registry, in the order reasons are listed (and per-candidate terms are summed).
SCORE_TERMS: tuple[ScoreTerm, ...] = (
    ScoreTerm("wait_per_minute", _price_wait, _explain_wait),
    ScoreTerm("first_response", _price_first_response, _explain_first_response),
    ScoreTerm("resolution", _price_resolution, _explain_resolution),
    ScoreTerm("load", _price_load, _explain_load),
    ScoreTerm("expertise_waste", _price_expertise_waste, _explain_expertise_waste),
    ScoreTerm(
        "continuity_owner", _price_continuity_owner, _explain_continuity_owner, per_agent=True
    ),
    ScoreTerm(
        "continuity_previous",
        _price_continuity_previous,
        _explain_continuity_previous,
        per_agent=True,
    ),
    ScoreTerm(
        "continuity_requester",
        _price_continuity_requester,
        _explain_continuity_requester,
        per_agent=True,
    ),
    ScoreTerm("fairness", _price_fairness, _explain_fairness),
    ScoreTerm("capacity_price", _price_capacity_price, _explain_capacity_price),
)


def assign_one(
    problem: Problem,
    ticket: Ticket,
    weights: RealtimeWeights | None = None,
    *,
    now: datetime | None = None,
    top_k: int = 3,
) -> Decision:
    """Build an index for ``problem`` and assign one ticket (convenient; not for hot loops)."""
    return RealtimeIndex.build(problem, weights).assign(ticket, now=now, top_k=top_k)
