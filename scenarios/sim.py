"""The discrete-event simulation of a support floor, routed by the production router.

``simulate(world, seed=..., replication=...)`` replays one run of ``world`` on the heap
:class:`~scenarios.engine.EventLoop` (float minutes since ``world.start``) and returns its
:class:`~scenarios.results.RunResult` tables. Every decision about *who takes what* is made by
``solver/`` exactly as the service makes it; this module only keeps the floor's state (who holds
what, who works when) and tells the router what the service would read from its database.

**Agents and their time.** An agent works ``shift_intervals`` (breaks cut out). Absences are whole
shifts: each of an agent's shifts is missed with probability ``shrinkage`` minus the breaks'
share of the agent's scheduled week (never below 0), because the planner's shrinkage already
counts breaks and those are simulated as breaks. The draws come from the ``absences`` stream,
one generator per agent keyed by a hash of their id (:func:`scenarios.rng.keyed`), one draw per
shift in time order: adding or removing an agent leaves everyone else's absences as they were
(common random numbers). An absence becomes known when the shift starts: then the router's
organisation is rebuilt without that shift, the agent's unstarted tickets go back to their team
queue (moves with source ``absence``) and are routed again, and the booking engine is told
(``CallDesk.agent_away``). A ticket already started stays with its agent.

**Work.** Each agent works the tickets they hold one at a time, live channels first, otherwise
in the order received, each for its ``effort_minutes`` of working time: work pauses outside
working time (breaks, nights, absences, bound calls) and resumes at the next working minute,
so the backlog is carried over. A live-channel ticket interrupts async work (a blended agent
puts the e-mail down to take the call; the e-mail resumes, before any new one, once no live
ticket is waiting for them); live work itself is never interrupted, and started work never
changes hands (an absence or a plan moves unstarted tickets only). ``first_response_at`` is
when work starts, ``resolved_at`` when it ends. Capacity is the router's: an agent holds at
most ``capacity`` open tickets (``channel_capacity`` per channel), started or not.

**Routing** (``world.routing.policy``):

- ``realtime`` and ``production``: each arrival is decided by :class:`solver.realtime.RealtimeIndex`
  as the service's hot path does (``api.assignment.claims``): the index is built once per
  organisation (rebuilt when it changes: a new UTC day's horizon, an absence that became known;
  and refreshed every ``INDEX_MAX_AGE`` like the service's cache, which re-reads the fairness
  counts), booked calls added as busy time (``with_busy``), and each decision reads the loads
  with ``with_loads(now, held, channels)``: open tickets and the *full* effort of the ones held,
  as the service counts them (it knows no remaining effort). Tickets nobody can take wait in
  their team queue; a live-channel queue is re-offered when an agent frees up
  (``api.assignment.live``: most urgent, oldest first, four per free slot); the whole waiting
  queue is retried every ``dispatch_minutes`` while someone at work has room (the helpdesk
  asking again), most urgent and oldest first, one index for the round with each decision
  committed, as ``assign_many`` does.
  ``production`` also runs :func:`solver.batch.optimize` every ``reoptimize_minutes`` over the
  unassigned and the held-but-unstarted tickets and applies the plan as
  ``api.assignment.optimize`` does (room re-checked; moves with source ``reoptimize``; all of
  a plan's moves land before its agents start work).
- a :data:`solver.policies.POLICIES` name: that batch policy over the waiting queue every
  ``dispatch_minutes`` (moves with source ``dispatch``); arrivals wait for the next round. The
  policy sees the same organisation and horizon as the router (``DEFAULT_HORIZON``) and, as
  :mod:`solver.policies` defines them, takes any agent with working time left in it: a
  round-robin may hand a ticket to someone whose shift starts tomorrow, and it waits for them.

The optimizer is asked to be deterministic: one CP-SAT worker, a fixed seed, at most
``REOPT_NEIGHBOURHOODS`` neighbourhoods (each bounded in CP-SAT's deterministic time), and
``routing.time_limit_s`` as the call's limit. Its search stops on those counts, not on the
clock, as long as the limit does not bind first: keep it generous (1 s is plenty for a queue of
a few hundred tickets); a limit that binds makes a run depend on the machine's speed. A limit
under ``SEQUENCING_FROM_S`` (the optimizer's own reserve for building its plan, so it would
not search at all) asks for the assignment layer only (``use_sequencing=False``): exact min-cost
flow and list scheduling, deterministic and fast; the benchmark runs that way.

**Customers.** A live-channel customer (``model.LIVE_CHANNELS``) hangs up after an exponential
patience with mean ``routing.patience_minutes`` (``patience`` stream, one draw per ticket in
arrival order) unless work on the ticket started; the ticket leaves the queue or its holder
(``abandoned_at``). SLA dues are calendar minutes from creation (``world.sla_for``). A ticket
with ``call`` books a live call through :class:`scenarios.calls.CallDesk` when it arrives (the
production booking engine: slots, JIT binding, disruption); a bound call is busy time for its
agent, in the simulation's clock and in the router's view.

**Counting.** ``reassignments`` counts each time a ticket reaches an agent other than the last
one who held it (directly, or through the queue after an absence or a plan). The ``agents``
table's busy minutes are ticket work plus bound calls, inside the agent's working time.

**Determinism.** Events at the same minute run in scheduling order; every draw comes from a
named stream of :mod:`scenarios.rng`; nothing iterates a set of strings. Same world and seed:
byte-identical tables.
"""

from __future__ import annotations

import heapq
import math
import time
import zlib
from bisect import bisect_right
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import TypeVar

import numpy as np
import pandas as pd

from scenarios.arrivals import arrivals
from scenarios.calls import CallDesk, booking_agents
from scenarios.engine import EventLoop
from scenarios.model import (
    LIVE_CHANNELS,
    PRODUCTION,
    REALTIME,
    AgentPlan,
    Demand,
    TicketSpec,
    World,
    shift_intervals,
)
from scenarios.results import (
    AGENT_COLUMNS,
    CALL_COLUMNS,
    MOVE_COLUMNS,
    TICKET_COLUMNS,
    RunResult,
    frame,
    skills_text,
)
from scenarios.rng import STREAMS, keyed, streams
from solver.availability import CalendarBank, bank_for, subtract_spans
from solver.batch import BatchParams, optimize
from solver.plan import Decision, Plan
from solver.policies import POLICIES, PolicyParams
from solver.problem import DEFAULT_HORIZON, Agent, Interval, Problem, Ticket
from solver.realtime import RealtimeIndex

# The service's real-time cache serves an index for at most this long (api.assignment.cache).
INDEX_MAX_AGE = timedelta(minutes=10)
# Assignments in this window feed the fairness term (api.solver_input.RECENT_WINDOW).
RECENT_WINDOW = timedelta(hours=8)
# A live free-up looks at this many waiting tickets per free slot, and at most
# (api.assignment.live).
LOOK_PER_SLOT = 4
LOOK_MAX = 200
# The re-optimization's fixed seed and search bound (see the module docstring).
REOPT_SEED = 0
REOPT_NEIGHBOURHOODS = 4
# Below this time limit the optimizer has no time left to search after its plan reserve
# (solver.batch.solve), so it returns its assignment layer: asked for exactly that.
SEQUENCING_FROM_S = 0.5
PROGRESS_STEPS = 100
_EPS = 1e-9

Progress = Callable[[float], None]
_S = TypeVar("_S", Agent, Ticket)


@dataclass(slots=True)
class _Ticket:
    spec: TicketSpec
    n: int
    live: bool
    fr_due: datetime | None
    res_due: datetime | None
    remaining: float
    agent: int | None = None
    last_agent: int | None = None
    first_assigned: float | None = None
    started: float | None = None
    resolved: float | None = None
    abandoned: float | None = None
    reassignments: int = 0
    call: str | None = None
    solver: Ticket | None = None

    @property
    def closed(self) -> bool:
        return self.resolved is not None or self.abandoned is not None

    def urgency(self) -> tuple[int, datetime, str]:
        return (-int(self.spec.priority), self.spec.created_at, self.spec.id)


@dataclass(slots=True)
class _Agent:
    n: int
    plan: AgentPlan
    shifts: list[tuple[float, float, int]]  # working pieces (minutes) and their shift number
    absent: set[int]  # shift numbers missed
    work: list[tuple[float, float]]  # true working time: pieces of shifts not missed
    work_starts: list[float]
    avail_starts: list[float] = field(default_factory=list)
    avail: list[tuple[float, float]] = field(default_factory=list)  # work minus bound calls
    calls: list[tuple[float, float]] = field(default_factory=list)
    live_q: dict[int, None] = field(default_factory=dict)
    other_q: dict[int, None] = field(default_factory=dict)
    paused: list[int] = field(default_factory=list)  # started async work a live ticket interrupted
    current: int | None = None
    seg_start: float | None = None
    version: int = 0
    held: int = 0
    effort: int = 0
    channels: dict[str, int] = field(default_factory=dict)
    segments: list[tuple[float, float]] = field(default_factory=list)
    known_absent: set[int] = field(default_factory=set)

    def set_avail(self) -> None:
        self.avail = subtract_spans(self.work, self.calls)
        self.avail_starts = [a for a, _ in self.avail]

    def free_slots(self) -> int:
        return max(0, self.plan.capacity - self.held)


_FIELDS: dict[type, tuple[str, ...]] = {}


def _amend(obj: _S, **values: object) -> _S:
    """A copy of the solver dataclass ``obj`` with some fields replaced, without validating it
    again: the simulation sets only values it keeps valid itself (counts never negative, sorted
    busy intervals, ids it knows), and re-validating 150 agents at every index refresh, and a
    ticket at every decision, was most of a run's time."""
    if not values:
        return obj
    kind = type(obj)
    names = _FIELDS.get(kind)
    if names is None:
        names = _FIELDS[kind] = tuple(f.name for f in fields(obj))
    out = object.__new__(kind)
    for name in names:
        object.__setattr__(out, name, values[name] if name in values else getattr(obj, name))
    return out


def _absence_rate(plan: AgentPlan) -> float:
    """Whole-shift absence probability: shrinkage minus the breaks' share (never below 0)."""
    length = sum(len(s.weekdays) * s.length_minutes for s in plan.shifts)
    if length <= 0:
        return 0.0
    breaks = sum(len(s.weekdays) * sum(b.minutes for b in s.breaks) for s in plan.shifts)
    return max(0.0, plan.shrinkage - breaks / length)


class _Run:
    """One replication's state and event handlers."""

    def __init__(
        self, world: World, seed: int, replication: int, progress: Progress | None
    ) -> None:
        self.world = world
        self.seed = seed
        self.replication = replication
        self.progress = progress
        self.start = world.start
        self.total = world.days * 24 * 60.0
        self.loop = EventLoop()
        self.rng = streams(seed, replication)
        self.routing = world.routing
        self.policy = world.routing.policy
        self.moves: list[tuple[str, float, str | None, str | None, str]] = []
        self.recent: deque[tuple[float, int]] = deque()
        self.recent_count: dict[int, int] = {}
        self.waiting_live: dict[int, None] = {}
        self.waiting_other: dict[int, None] = {}
        self._base: RealtimeIndex | None = None
        self._index: RealtimeIndex | None = None
        self._built_at = -math.inf
        self._org_dirty = True
        self._calls_dirty = True
        self._horizon_end = self.start
        self._solver_agents: dict[int, Agent] = {}
        self._origin = self.start
        self._bank: CalendarBank | None = None
        self._bind_at: float | None = None
        self._build_agents()
        self.specs = arrivals(world, self.rng)
        self.tickets = [self._new_ticket(i, s) for i, s in enumerate(self.specs)]
        self.desk: CallDesk | None = None
        if world.capabilities and any(t.spec.call for t in self.tickets):
            self.desk = CallDesk(world, booking_agents(world), now=world.start, rng=self.rng.calls)
        self.by_id = {a.plan.id: a for a in self.agents}
        self.order = sorted(range(len(self.agents)), key=lambda i: self.agents[i].plan.id)

    # ------------------------------------------------------------------ setup
    def minute(self, at: datetime) -> float:
        return (at - self.start).total_seconds() / 60.0

    def at(self, t: float) -> datetime:
        return self.start + timedelta(minutes=t)

    def _build_agents(self) -> None:
        world = self.world
        end = world.end
        absences_key = STREAMS.index("absences")
        self.agents: list[_Agent] = []
        for n, plan in enumerate(world.agents):
            whole = list(
                shift_intervals(
                    replace(plan, shifts=tuple(replace(s, breaks=()) for s in plan.shifts)),
                    world.start,
                    end,
                )
            )
            rate = _absence_rate(plan)
            gen = keyed(self.seed, self.replication, absences_key, zlib.crc32(plan.id.encode()))
            draws = gen.uniform(0.0, 1.0, len(whole))
            absent = {k for k in range(len(whole)) if draws[k] < rate}
            starts = [self.minute(iv.start) for iv in whole]
            pieces: list[tuple[float, float, int]] = []
            for iv in shift_intervals(plan, world.start, end):
                a, b = self.minute(iv.start), self.minute(iv.end)
                k = max(0, bisect_right(starts, a + _EPS) - 1)
                pieces.append((a, b, k))
            agent = _Agent(
                n=n,
                plan=plan,
                shifts=pieces,
                absent=absent,
                work=[(a, b) for a, b, k in pieces if k not in absent],
                work_starts=[a for a, b, k in pieces if k not in absent],
            )
            agent.set_avail()
            self.agents.append(agent)
            for k in sorted(absent):
                self.loop.at(starts[k], self._on_absence, (n, k, self.minute(whole[k].end)))

    def _new_ticket(self, n: int, spec: TicketSpec) -> _Ticket:
        target = self.world.sla_for(spec.priority, spec.channel)
        fr = res = None
        if target is not None:
            if target.first_response_minutes is not None:
                fr = spec.created_at + timedelta(minutes=target.first_response_minutes)
            if target.resolution_minutes is not None:
                res = spec.created_at + timedelta(minutes=target.resolution_minutes)
        if fr is not None and res is not None and res < fr:
            res = fr
        return _Ticket(
            spec=spec,
            n=n,
            live=spec.channel in LIVE_CHANNELS,
            fr_due=fr,
            res_due=res,
            remaining=float(
                spec.effort_minutes if spec.handle_minutes is None else spec.handle_minutes
            ),
        )

    # ------------------------------------------------------------------ the router's view
    def _org(self, t: float) -> RealtimeIndex:
        """The index the service would decide on at ``t``: organisation (rebuilt when it
        changed or aged out), then the bound calls as busy time."""
        now = self.at(t)
        if (
            self._base is None
            or self._org_dirty
            or t - self._built_at >= INDEX_MAX_AGE.total_seconds() / 60
            or now.date() != self._origin.date()
        ):
            self._rebuild(t)
        if self._calls_dirty or self._index is None:
            assert self._base is not None
            holds: dict[str, list[Interval]] = {}
            if self.desk is not None:
                for agent in self.agents:
                    spans = [Interval(self.at(a), self.at(b)) for a, b in agent.calls if b > t]
                    if spans:
                        holds[agent.plan.id] = spans
            self._index = self._base.with_busy(holds) if holds else self._base
            self._calls_dirty = False
        return self._index

    def _rebuild(self, t: float) -> None:
        """A new index, as the service's cache builds one. When the organisation changed
        (an absence became known) or a new (UTC) day began, everything is rebuilt at ``t`` with
        the service's horizon (``DEFAULT_HORIZON``); when the entry only aged
        out, the working calendars are reused (they did not change) and the fairness counts
        are read again, which is all the service's rebuild would change: an index answers
        for any moment after its origin exactly as one built at that moment would."""
        now = self.at(t).replace(second=0, microsecond=0)
        if self._org_dirty or now.date() != self._origin.date() or not self._solver_agents:
            self._horizon_end = now + DEFAULT_HORIZON
            self._origin = now
            self._solver_agents = {}
            for i in self.order:
                self._solver_agents[i] = self._solver_agent(self.agents[i], t)
            self._bank = bank_for(
                Problem(
                    now=now,
                    agents=tuple(self._solver_agents[i] for i in self.order),
                    tickets=(),
                    horizon_end=self._horizon_end,
                )
            )
        self._expire_recent(t)
        agents = tuple(
            _amend(self._solver_agents[i], recent_assignments=self.recent_count.get(i, 0))
            for i in self.order
        )
        problem = Problem(
            now=self._origin,
            agents=agents,
            tickets=(),
            skills=self.world.skills,
            teams=self.world.teams,
            horizon_end=self._horizon_end,
        )
        self._base = RealtimeIndex.build(problem, bank=self._bank)
        self._built_at = t
        self._org_dirty = False
        self._calls_dirty = True

    def _solver_agent(self, agent: _Agent, t: float) -> Agent:
        plan = agent.plan
        horizon = self.minute(self._horizon_end)
        shifts = tuple(
            Interval(self.at(a), self.at(b))
            for a, b, k in agent.shifts
            if b > t and a < horizon and k not in agent.known_absent
        )
        return Agent(
            id=plan.id,
            team=plan.team,
            skills=dict(plan.skills),
            capacity=plan.capacity,
            shifts=shifts,
            timezone=plan.timezone,
            channel_capacity=dict(plan.channel_capacity),
        )

    def _expire_recent(self, t: float) -> None:
        window = RECENT_WINDOW.total_seconds() / 60
        while self.recent and self.recent[0][0] < t - window:
            _, a = self.recent.popleft()
            self.recent_count[a] -= 1

    def _loads(
        self, leave_out: Mapping[int, None] | None = None
    ) -> tuple[dict[str, tuple[int, int]], dict[str, dict[str, int]]]:
        """What the service reads of every agent: tickets held, their effort, per channel;
        ``leave_out``: tickets being decided (not anyone's load yet)."""
        held: dict[str, tuple[int, int]] = {}
        channels: dict[str, dict[str, int]] = {}
        for agent in self.agents:
            if agent.held:
                held[agent.plan.id] = (agent.held, agent.effort)
                channels[agent.plan.id] = dict(agent.channels)
        if leave_out:
            for n in leave_out:
                tk = self.tickets[n]
                if tk.agent is None:
                    continue
                aid = self.agents[tk.agent].plan.id
                c, m = held[aid]
                held[aid] = (c - 1, m - tk.spec.effort_minutes)
                per = channels[aid]
                per[tk.spec.channel] = per.get(tk.spec.channel, 0) - 1
        return held, channels

    def _solver_ticket(self, tk: _Ticket) -> Ticket:
        """The ticket as the service maps it (``api.mapping.ticket``): validated once, then
        only its owner, previous agent and answered first response change."""
        if tk.solver is None:
            s = tk.spec
            tk.solver = Ticket(
                id=s.id,
                team=s.team,
                created_at=s.created_at,
                required_skills=s.required_skills,
                priority=s.priority,
                first_response_due=tk.fr_due,
                resolution_due=tk.res_due,
                effort_minutes=s.effort_minutes,
                channel=s.channel,
            )
        if tk.agent is None and tk.last_agent is None:
            return tk.solver
        return _amend(
            tk.solver,
            owner_agent=None if tk.agent is None else self.agents[tk.agent].plan.id,
            previous_agent=None if tk.last_agent is None else self.agents[tk.last_agent].plan.id,
            first_response_due=tk.fr_due if tk.started is None else None,
        )

    # ------------------------------------------------------------------ holding
    def _give(self, t: float, tk: _Ticket, a: int, source: str, *, kick: bool = True) -> None:
        """Move ``tk`` to agent ``a`` (from the queue or another agent's unstarted work); an
        idle agent at work starts on it at once unless ``kick`` is False (a plan being applied:
        its agents start once every move of the plan has landed)."""
        before = tk.agent
        if before == a:
            return
        if before is not None:
            self._take_back(tk)
        else:
            self.waiting_live.pop(tk.n, None)
            self.waiting_other.pop(tk.n, None)
        agent = self.agents[a]
        agent.held += 1
        agent.effort += tk.spec.effort_minutes
        agent.channels[tk.spec.channel] = agent.channels.get(tk.spec.channel, 0) + 1
        (agent.live_q if tk.live else agent.other_q)[tk.n] = None
        if tk.last_agent is not None and tk.last_agent != a:
            tk.reassignments += 1
        tk.agent = a
        tk.last_agent = a
        if tk.first_assigned is None:
            tk.first_assigned = t
        before_id = None if before is None else self.agents[before].plan.id
        self.moves.append((tk.spec.id, t, before_id, agent.plan.id, source))
        if tk.call is not None and self.desk is not None:
            self.desk.owner_changed(tk.spec.id, agent.plan.id)  # JIT prefers the owner
        self.recent.append((t, a))
        self.recent_count[a] = self.recent_count.get(a, 0) + 1
        if kick and (agent.current is None or (tk.live and not self.tickets[agent.current].live)):
            self._kick(agent, t)

    def _take_back(self, tk: _Ticket) -> _Agent:
        """``tk`` leaves its (unstarted) holder's hands; returns the holder."""
        assert tk.agent is not None
        agent = self.agents[tk.agent]
        assert agent.current != tk.n, "a ticket being worked is never moved"
        agent.held -= 1
        agent.effort -= tk.spec.effort_minutes
        agent.channels[tk.spec.channel] -= 1
        agent.live_q.pop(tk.n, None)
        agent.other_q.pop(tk.n, None)
        tk.agent = None
        return agent

    def _to_queue(self, t: float, tk: _Ticket, source: str) -> None:
        if tk.agent is not None:
            agent = self._take_back(tk)
            self.moves.append((tk.spec.id, t, agent.plan.id, None, source))
            if tk.call is not None and self.desk is not None:
                self.desk.owner_changed(tk.spec.id, None)
        (self.waiting_live if tk.live else self.waiting_other)[tk.n] = None

    # ------------------------------------------------------------------ work
    def _kick(self, agent: _Agent, t: float) -> None:
        """Let ``agent`` work from ``t``: continue or pick the next ticket if working time is
        now, else wake them when it starts."""
        agent.version += 1
        if agent.current is not None and agent.live_q and not self.tickets[agent.current].live:
            # A customer on the line interrupts async work; it resumes once the line is clear.
            self._pause(agent, t)
            agent.paused.append(agent.current)
            agent.current = None
        if agent.current is None and not agent.live_q and not agent.other_q and not agent.paused:
            return
        k = bisect_right(agent.avail_starts, t) - 1
        if k >= 0 and agent.avail[k][1] > t + _EPS:
            end = agent.avail[k][1]
            if agent.current is None:
                if agent.live_q or not agent.paused:
                    q = agent.live_q if agent.live_q else agent.other_q
                    n = next(iter(q))
                    del q[n]
                else:
                    n = agent.paused.pop()
                agent.current = n
                tk = self.tickets[n]
                if tk.started is None:
                    tk.started = t
            tk = self.tickets[agent.current]
            agent.seg_start = t
            self.loop.at(min(end, t + tk.remaining), self._on_work, (agent.n, agent.version))
        elif k + 1 < len(agent.avail):
            agent.seg_start = None
            self.loop.at(agent.avail[k + 1][0], self._on_work, (agent.n, agent.version))
        else:
            agent.seg_start = None

    def _pause(self, agent: _Agent, t: float) -> None:
        """Account the work done since the segment started (the agent stops at ``t``)."""
        if agent.seg_start is not None and agent.current is not None:
            if t > agent.seg_start:
                self.tickets[agent.current].remaining -= t - agent.seg_start
                agent.segments.append((agent.seg_start, t))
            agent.seg_start = None

    def _on_work(self, t: float, payload: tuple[int, int]) -> None:
        n, version = payload
        agent = self.agents[n]
        if version != agent.version:
            return
        self._pause(agent, t)
        cur = agent.current
        if cur is not None and self.tickets[cur].remaining <= 1e-6:
            tk = self.tickets[cur]
            tk.resolved = t
            agent.current = None
            agent.held -= 1
            agent.effort -= tk.spec.effort_minutes
            agent.channels[tk.spec.channel] -= 1
            tk.agent = None
            self._kick(agent, t)
            self._freed(t, agent)
        else:
            self._kick(agent, t)

    def _set_calls(self, agent: _Agent, t: float) -> None:
        """The agent's bound calls changed: their working time and current work follow."""
        assert self.desk is not None
        agent.calls = [
            (self.minute(s), self.minute(e)) for s, e in self.desk.busy_for(agent.plan.id)
        ]
        agent.set_avail()
        self._pause(agent, t)
        self._kick(agent, t)
        self._calls_dirty = True

    # ------------------------------------------------------------------ events
    def _on_arrival(self, t: float, n: int) -> None:
        tk = self.tickets[n]
        if tk.live and self.routing.patience_minutes is not None:
            self.loop.at(t + float(self._patience[n]), self._on_abandon, n)
        if self.policy in (REALTIME, PRODUCTION):
            decision = self._decide(t, tk)
            if decision.agent_id is None:
                self._to_queue(t, tk, "arrival")
            else:
                self._give(t, tk, self.by_id[decision.agent_id].n, "arrival")
        else:
            self._to_queue(t, tk, "arrival")
        if tk.spec.call is not None and self.desk is not None:
            owner = None if tk.agent is None else self.agents[tk.agent].plan.id
            tk.call = self.desk.request(tk.spec.id, tk.spec.call, self.at(t), owner=owner)
            self._schedule_bind(t)

    def _decide(self, t: float, tk: _Ticket, top_k: int = 0) -> Decision:
        """The service's hot path for one ticket at ``t``: the organisation's index with the
        loads read now (``api.assignment.claims.realtime_for``), then ``assign``."""
        held, channels = self._loads()
        now = self.at(t)
        index = self._org(t).with_loads(now, held, channels)
        return index.assign(self._solver_ticket(tk), now=now, top_k=top_k)

    def _on_abandon(self, t: float, n: int) -> None:
        tk = self.tickets[n]
        if tk.started is not None or tk.closed:
            return
        tk.abandoned = t
        if tk.agent is not None:
            agent = self._take_back(tk)
            self._freed(t, agent)
        else:
            self.waiting_live.pop(n, None)
            self.waiting_other.pop(n, None)

    def _on_absence(self, t: float, payload: tuple[int, int, float]) -> None:
        n, k, end = payload
        agent = self.agents[n]
        agent.known_absent.add(k)
        self._org_dirty = True
        handed = [*agent.live_q, *agent.other_q]
        for m in handed:
            self._to_queue(t, self.tickets[m], "absence")
        if self.desk is not None:
            self.desk.agent_away(agent.plan.id, self.at(t), self.at(end), self.at(t))
            self._apply_rebinds(t, self.desk.last_rebound)
            self._set_calls(agent, t)  # calls left unbound (at risk) no longer hold them
            self._schedule_bind(t)
        if handed and self.policy in (REALTIME, PRODUCTION):
            self._retry(t, [self.tickets[m] for m in handed], "absence")

    def _freed(self, t: float, agent: _Agent) -> None:
        """An agent freed up: re-offer the live queue (api.assignment.live)."""
        if not self.waiting_live or self.policy not in (REALTIME, PRODUCTION):
            return
        slots = agent.free_slots()
        if slots <= 0:
            return
        look = min(LOOK_MAX, LOOK_PER_SLOT * slots)
        waiting = heapq.nsmallest(
            look, (self.tickets[m] for m in self.waiting_live), key=_Ticket.urgency
        )
        self._retry(t, waiting, "live_queue")

    def _retry(self, t: float, waiting: list[_Ticket], source: str) -> None:
        """Decide ``waiting`` (team-queue tickets) one after another on one index, each
        decision committed before the next (as the service's batch does)."""
        if not waiting:
            return
        room = self._ready_room(t)
        if room <= 0:
            return
        now = self.at(t)
        held, channels = self._loads()
        index = self._org(t).with_loads(now, held, channels)
        # A ticket like one nobody could take (same team, skills and channel, no less effort)
        # is not asked again: the filters would refuse it for the same reason, and asking
        # again for every ticket of a long queue was most of a busy run's time.
        refused: dict[tuple[object, ...], int] = {}
        for tk in waiting:
            if room <= 0:
                break
            s = tk.spec
            kind = (s.team, s.channel, tuple(sorted(s.required_skills.items())))
            if refused.get(kind, 1 << 30) <= s.effort_minutes:
                continue
            ticket = self._solver_ticket(tk)
            decision = index.assign(ticket, now=now, top_k=0)
            if decision.agent_id is None:
                refused[kind] = min(refused.get(kind, 1 << 30), s.effort_minutes)
                continue
            index.commit(decision, ticket)
            self._give(t, tk, self.by_id[decision.agent_id].n, source)
            room -= 1

    def _ready_room(self, t: float) -> int:
        """Free slots of the agents at work now (nobody else can take a ticket now)."""
        room = 0
        for agent in self.agents:
            if agent.held < agent.plan.capacity:
                k = bisect_right(agent.work_starts, t) - 1
                if k >= 0 and agent.work[k][1] > t:
                    room += agent.plan.capacity - agent.held
        return room

    def _on_dispatch(self, t: float, _: object) -> None:
        self.loop.at(t + self.routing.dispatch_minutes, self._on_dispatch)
        if not self.waiting_live and not self.waiting_other:
            return
        if self.policy in (REALTIME, PRODUCTION):
            waiting = sorted(
                (self.tickets[m] for m in (*self.waiting_live, *self.waiting_other)),
                key=_Ticket.urgency,
            )
            self._retry(t, waiting, "dispatch")
            return
        queue = [self.tickets[m] for m in (*self.waiting_live, *self.waiting_other)]
        queue.sort(key=lambda tk: (tk.spec.created_at, tk.spec.id))
        params: object = PolicyParams(
            seed=REOPT_SEED,
            time_limit_s=self.routing.time_limit_s,
            max_moves=self.routing.max_moves,
        )
        if self.policy == "optimizer":
            params = self._batch_params()  # it takes BatchParams as is: the deterministic ones
        plan = POLICIES[self.policy](self._problem(t, queue), params)  # type: ignore[arg-type]
        self._apply(t, plan, queue, "dispatch")

    def _on_reoptimize(self, t: float, _: object) -> None:
        self.loop.at(t + self.routing.reoptimize_minutes, self._on_reoptimize)
        queue = [self.tickets[m] for m in (*self.waiting_live, *self.waiting_other)]
        for agent in self.agents:
            queue.extend(self.tickets[m] for m in (*agent.live_q, *agent.other_q))
        if not queue:
            return
        queue.sort(key=lambda tk: (tk.spec.created_at, tk.spec.id))
        plan = optimize(self._problem(t, queue), self._batch_params())
        self._apply(t, plan, queue, "reoptimize")

    def _batch_params(self) -> BatchParams:
        """The optimizer's parameters, deterministic (see the module docstring)."""
        limit = self.routing.time_limit_s
        return BatchParams(
            time_limit_s=limit,
            seed=REOPT_SEED,
            workers=1,
            max_neighbourhoods=REOPT_NEIGHBOURHOODS,
            use_sequencing=limit >= SEQUENCING_FROM_S,
            max_moves=self.routing.max_moves,
        )

    def _problem(self, t: float, queue: list[_Ticket]) -> Problem:
        """The service's ``build_problem`` at ``t`` planning ``queue``: the organisation, the
        loads without the planned tickets, booked calls as busy time."""
        self._org(t)
        now = self.at(t).replace(second=0, microsecond=0)
        held, channels = self._loads({tk.n: None for tk in queue})
        agents = []
        for i in self.order:
            agent = self.agents[i]
            base = self._solver_agents[i]
            aid = agent.plan.id
            count, minutes = held.get(aid, (0, 0))
            busy = tuple(Interval(self.at(a), self.at(b)) for a, b in agent.calls if b > t)
            agents.append(
                _amend(
                    base,
                    open_tickets=max(0, count),
                    backlog_minutes=max(0, minutes),
                    channel_open=MappingProxyType(
                        {c: k for c, k in channels.get(aid, {}).items() if k > 0}
                    ),
                    recent_assignments=self.recent_count.get(i, 0),
                    busy=busy,
                )
            )
        return Problem(
            now=now,
            agents=tuple(agents),
            tickets=tuple(self._solver_ticket(tk) for tk in queue),
            skills=self.world.skills,
            teams=self.world.teams,
            horizon_end=self._horizon_end,
        )

    def _apply(self, t: float, plan: Plan, queue: list[_Ticket], source: str) -> None:
        """Apply a plan as ``api.assignment.optimize._apply_plan`` does: each assignment only
        while its agent still has room (and channel room); queued tickets go to the queue."""
        planned = {tk.spec.id: tk for tk in queue}
        # Loads without the planned tickets: who can still take how many (of each channel).
        room = {agent.n: agent.plan.capacity - agent.held for agent in self.agents}
        used: dict[tuple[int, str], int] = {}
        for agent in self.agents:
            for channel, k in agent.channels.items():
                used[(agent.n, channel)] = k
        for tk in queue:
            if tk.agent is not None:
                room[tk.agent] += 1
                used[(tk.agent, tk.spec.channel)] -= 1
        moves: list[tuple[_Ticket, int | None]] = []
        for step in sorted(plan.assignments, key=lambda a: (a.agent_id, a.position)):
            chosen = planned.get(step.ticket_id)
            taker = self.by_id.get(step.agent_id)
            if chosen is None or taker is None or room[taker.n] <= 0:
                continue
            key = (taker.n, chosen.spec.channel)
            cap = taker.plan.channel_capacity.get(chosen.spec.channel)
            if cap is not None and used.get(key, 0) >= cap:
                continue
            used[key] = used.get(key, 0) + 1
            room[taker.n] -= 1
            moves.append((chosen, taker.n))
        for q in plan.queued:
            back = planned.get(q.ticket_id)
            if back is not None:
                moves.append((back, None))
        touched: dict[int, None] = {}
        for moved, to in moves:
            if to is None:
                if moved.agent is not None:
                    self._to_queue(t, moved, source)
            elif moved.agent != to:
                self._give(t, moved, to, source, kick=False)
                touched[to] = None
        for a in touched:
            if self.agents[a].current is None:
                self._kick(self.agents[a], t)

    def _on_bind(self, t: float, _: object) -> None:
        self._bind_at = None
        assert self.desk is not None
        self._apply_rebinds(t, self.desk.bind_due(self.at(t)))
        self._schedule_bind(t)

    def _apply_rebinds(self, t: float, bookings: list[tuple[str, str, datetime, datetime]]) -> None:
        touched: dict[str, None] = {}
        for call_id, agent_id, _s, _e in bookings:
            before = self._call_agent.get(call_id)
            if before is not None:
                touched[before] = None
            touched[agent_id] = None
            self._call_agent[call_id] = agent_id
        for agent_id in touched:
            agent = self.by_id.get(agent_id)
            if agent is not None:
                self._set_calls(agent, t)

    def _schedule_bind(self, t: float) -> None:
        assert self.desk is not None
        due = self.desk.next_due()
        if due is None:
            return
        m = max(t, self.minute(due))
        if m >= self.total:
            return
        if self._bind_at is None or m < self._bind_at - _EPS:
            self._bind_at = m
            self.loop.at(m, self._on_bind)

    def _on_progress(self, t: float, k: int) -> None:
        assert self.progress is not None
        self.progress(k / PROGRESS_STEPS)

    # ------------------------------------------------------------------ running
    def run(self) -> RunResult:
        started = time.perf_counter()
        self._call_agent: dict[str, str] = {}
        patience = self.routing.patience_minutes
        n = len(self.tickets)
        self._patience = (
            self.rng.patience.exponential(patience, n) if patience is not None else np.zeros(0)
        )
        for tk in self.tickets:
            self.loop.at(self.minute(tk.spec.created_at), self._on_arrival, tk.n)
        self.loop.at(0.0, self._on_dispatch)
        if self.policy == PRODUCTION:
            self.loop.at(float(self.routing.reoptimize_minutes), self._on_reoptimize)
        if self.progress is not None:
            for k in range(1, PROGRESS_STEPS + 1):
                self.loop.at(self.total * k / PROGRESS_STEPS - _EPS, self._on_progress, k)
        self.loop.run(self.total)
        for agent in self.agents:
            self._pause(agent, self.total)
            # What the router was told an agent holds is what they hold (cheap; it caught a bug).
            holding = [*agent.live_q, *agent.other_q, *agent.paused]
            if agent.current is not None:
                holding.append(agent.current)
            assert agent.held == len(holding), (agent.plan.id, agent.held, len(holding))
            assert all(self.tickets[n].agent == agent.n for n in holding), agent.plan.id
        return RunResult(
            world=self.world.name,
            seed=self.seed,
            replication=self.replication,
            start=self.world.start,
            end=self.world.end,
            interval_minutes=self.world.interval_minutes,
            tickets=self._ticket_table(),
            moves=frame(
                [(tid, self.at(t), a, b, s) for tid, t, a, b, s in self.moves], MOVE_COLUMNS
            ),
            agents=self._agent_table(),
            calls=frame(self.desk.rows() if self.desk is not None else [], CALL_COLUMNS),
            wall_seconds=time.perf_counter() - started,
            events=self.loop.processed,
        )

    def _ticket_table(self) -> pd.DataFrame:
        def when(t: float | None) -> datetime | None:
            return None if t is None else self.at(t)

        rows: list[tuple[object, ...]] = []
        for tk in self.tickets:
            s = tk.spec
            last = None if tk.last_agent is None else self.agents[tk.last_agent].plan.id
            rows.append((
                s.id, s.team, s.channel, skills_text(s.required_skills), int(s.priority),
                s.created_at, tk.fr_due, tk.res_due, when(tk.first_assigned), when(tk.started),
                when(tk.resolved), when(tk.abandoned), last, tk.reassignments, tk.call,
            ))  # fmt: skip
        return frame(rows, TICKET_COLUMNS)

    def _agent_table(self) -> pd.DataFrame:
        width = float(self.world.interval_minutes)
        n_int = math.ceil(self.total / width)
        edges = np.arange(n_int + 1, dtype=np.float64) * width
        edges[-1] = min(edges[-1], self.total)
        starts = [self.at(float(e)) for e in edges[:-1]]
        rows: list[tuple[object, ...]] = []
        per_agent = []
        for agent in self.agents:
            scheduled = _binned([(a, b) for a, b, _k in agent.shifts], edges)
            available = _binned(agent.work, edges)
            calls = _clip(agent.calls, agent.work)
            busy = _binned(sorted(agent.segments + calls), edges)
            per_agent.append((agent.plan, scheduled, available, busy))
        per_agent.sort(key=lambda p: p[0].id)
        for i, at in enumerate(starts):
            for plan, scheduled, available, busy in per_agent:
                rows.append((
                    at, plan.id, plan.team, skills_text(plan.skills), round(float(scheduled[i]), 6),
                    round(float(available[i]), 6), round(float(busy[i]), 6),
                ))  # fmt: skip
        return frame(rows, AGENT_COLUMNS)


def _clip(
    spans: list[tuple[float, float]], within: list[tuple[float, float]]
) -> list[tuple[float, float]]:
    """``spans`` intersected with ``within`` (both sorted, each disjoint)."""
    out = []
    for a, b in spans:
        for c, d in within:
            lo, hi = max(a, c), min(b, d)
            if lo < hi:
                out.append((lo, hi))
    return out


def _binned(spans: list[tuple[float, float]], edges: np.ndarray) -> np.ndarray:
    """Minutes covered by ``spans`` (overlaps counted once) inside each
    ``[edges[i], edges[i+1])``."""
    merged: list[list[float]] = []
    for a, b in sorted(spans):
        if merged and a <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], b)
        elif b > a:
            merged.append([a, b])
    if not merged:
        return np.zeros(len(edges) - 1)
    arr = np.asarray(merged, dtype=np.float64)
    s, e = arr[:, 0], arr[:, 1]
    cum = np.concatenate(([0.0], np.cumsum(e - s)))
    k = np.searchsorted(s, edges, side="right") - 1
    inside = np.where(
        k >= 0, np.clip(edges - s[np.maximum(k, 0)], 0, (e - s)[np.maximum(k, 0)]), 0.0
    )
    covered = np.where(k >= 0, cum[np.maximum(k, 0)] + inside, 0.0)
    return np.diff(covered)


def simulate(
    world: World, *, seed: int, replication: int = 0, progress: Progress | None = None
) -> RunResult:
    """One replication of ``world`` (see the module docstring); ``progress`` gets the share of
    simulated time done, at most ``PROGRESS_STEPS`` times."""
    return _Run(world, seed, replication, progress).run()


def route_one(
    world: World,
    *,
    at: datetime,
    held: Mapping[str, Sequence[TicketSpec]],
    ticket: TicketSpec,
    top_k: int = 0,
) -> Decision:
    """The simulation's real-time decision for ``ticket`` arriving at ``at`` when each agent
    holds ``held`` (agent id -> tickets, given to them at ``at``), through the very code path an
    arrival takes in :func:`simulate`: for checking the simulated router against the service's
    on one organisation state (``tests/scenarios/shared_state.py``)."""
    run = _Run(replace(world, demand=Demand()), 0, 0, None)
    t = run.minute(at)
    for agent_id, specs in held.items():
        for spec in specs:
            tk = run._new_ticket(len(run.tickets), spec)
            run.tickets.append(tk)
            run._give(t, tk, run.by_id[agent_id].n, "arrival")
    tk = run._new_ticket(len(run.tickets), ticket)
    run.tickets.append(tk)
    return run._decide(t, tk, top_k)
