"""The planner's world as plain data: who works when, what arrives, how it is routed.

A :class:`World` is everything one simulation run needs and nothing it does not: the skills and
teams of :mod:`solver.problem`, agents described the way a staffing plan describes them (weekly
shift patterns in their own time zone, breaks, shrinkage), the demand (a ticket history to
replay, or hourly volume profiles to generate from), the SLA targets, the routing policy, and the
live-call capabilities customers book against. :mod:`scenarios.inputs` reads it from a planner's
files; :mod:`scenarios.changes` derives a scenario's world from its baseline; :mod:`scenarios.sim`
runs it; :mod:`scenarios.kpis` measures the run.

Everything is immutable and validated on construction: an invalid value raises
:class:`solver.errors.ProblemError` naming the field, so every reader of a planner's file can
point at the line it came from. Times are timezone-aware UTC; shift patterns are wall-clock times
in the agent's zone and become UTC intervals only in :func:`shift_intervals` (so a DST change in
the simulated month moves shifts in UTC, as it does in real life).
"""

from __future__ import annotations

import copyreg
import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from types import MappingProxyType
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from solver.capability import Capability
from solver.errors import ProblemError
from solver.policies import POLICIES
from solver.problem import MAX_COUNT, MAX_LEVEL, MIN_LEVEL, Interval, Priority, Skill, Team

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
# Channels whose customer waits on the line: routed at once, and they may hang up (abandon).
LIVE_CHANNELS = ("chat", "phone", "messaging")
# Routing policies a scenario may name: every batch policy of solver.policies, the real-time
# router alone, and the production mix (real-time on arrival plus periodic whole-queue
# re-optimization).
REALTIME = "realtime"
PRODUCTION = "production"
ROUTING_POLICIES = (PRODUCTION, REALTIME, *POLICIES)
INTERVALS = (15, 30, 60)
MAX_MOVES = MAX_COUNT  # the largest routing.max_moves, as solver.policies.PolicyParams bounds it
# How a volume profile's handling times are drawn (see VolumeRow).
EFFORT_DISTRIBUTIONS = ("lognormal", "exponential")


def _proxy_of(items: dict[Any, Any]) -> MappingProxyType[Any, Any]:
    return MappingProxyType(items)


def _pickle_proxy(
    proxy: MappingProxyType[Any, Any],
) -> tuple[Callable[[dict[Any, Any]], MappingProxyType[Any, Any]], tuple[dict[Any, Any]]]:
    return (_proxy_of, (dict(proxy),))


# A World crosses process boundaries (scenarios.runner: a process pool, a Dask cluster), and its
# read-only mappings (skill levels here, capability requirements in solver) are MappingProxyType,
# which pickle refuses. Registered here, where every World's module is imported: a proxy pickles
# as a copy of its dict and comes back as a proxy of it.
copyreg.pickle(MappingProxyType, _pickle_proxy)


def _aware(value: datetime, name: str) -> datetime:
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise ProblemError(name, "must be a timezone-aware datetime")
    return value.astimezone(UTC)


def _zone(value: str, name: str) -> ZoneInfo:
    try:
        return ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise ProblemError(name, f"unknown IANA time zone {value!r}") from None


def _share(value: float, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < 1:
        raise ProblemError(name, f"must be a number in [0, 1), got {value!r}")
    return float(value)


def _positive(value: float, name: str, *, maximum: float | None = None) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value <= 0
    ):
        raise ProblemError(name, f"must be a positive number, got {value!r}")
    if maximum is not None and value > maximum:
        raise ProblemError(name, f"must be at most {maximum:g}, got {value!r}")
    return float(value)


def _count(value: int, name: str, *, minimum: int = 0, maximum: int = 10**6) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= maximum:
        raise ProblemError(name, f"must be a whole number in [{minimum}, {maximum}], got {value!r}")
    return value


def _levels(levels: Mapping[str, int], name: str) -> Mapping[str, int]:
    out: dict[str, int] = {}
    for skill, level in levels.items():
        if not isinstance(skill, str) or not skill:
            raise ProblemError(name, f"skill ids must be non-empty strings, got {skill!r}")
        out[skill] = _count(level, f"{name}.{skill}", minimum=MIN_LEVEL, maximum=MAX_LEVEL)
    return MappingProxyType(out)


@dataclass(frozen=True, slots=True)
class Break:
    """A break inside a shift: ``minutes`` from ``start`` (local wall-clock time)."""

    start: time
    minutes: int

    def __post_init__(self) -> None:
        _count(self.minutes, "minutes", minimum=1, maximum=24 * 60)


@dataclass(frozen=True, slots=True)
class ShiftPattern:
    """A weekly shift: on each of ``weekdays`` (0 = Monday) from ``start`` to ``end`` local time.

    ``end <= start`` is an overnight shift ending the next day. Breaks are unpaid, off the
    phones, and must fall inside the shift."""

    weekdays: tuple[int, ...]
    start: time
    end: time
    breaks: tuple[Break, ...] = ()

    def __post_init__(self) -> None:
        days = tuple(sorted(set(self.weekdays)))
        if not days or any(d not in range(7) for d in days):
            raise ProblemError("weekdays", f"must be weekdays 0 (Mon) .. 6 (Sun), got {days!r}")
        object.__setattr__(self, "weekdays", days)
        object.__setattr__(self, "breaks", tuple(self.breaks))
        for i, b in enumerate(self.breaks):
            offset = self._offset(b.start)
            if offset + b.minutes > self.length_minutes:
                raise ProblemError(f"breaks[{i}]", "must fall inside the shift")

    @property
    def length_minutes(self) -> int:
        """Wall-clock length (a DST night changes the real length; see shift_intervals)."""
        start = self.start.hour * 60 + self.start.minute
        end = self.end.hour * 60 + self.end.minute
        return end - start if end > start else end + 24 * 60 - start

    def _offset(self, moment: time) -> int:
        start = self.start.hour * 60 + self.start.minute
        at = moment.hour * 60 + moment.minute
        return at - start if at >= start else at + 24 * 60 - start

    @property
    def paid_minutes_per_week(self) -> int:
        return len(self.weekdays) * (self.length_minutes - sum(b.minutes for b in self.breaks))


@dataclass(frozen=True, slots=True)
class AgentPlan:
    """An agent as a staffing plan names them.

    ``shrinkage`` is the share of scheduled time lost to everything but breaks (absence,
    training, meetings): the simulation draws whole-shift absences at that rate.
    ``channel_capacity`` caps open tickets per channel (``{"phone": 1}``) within ``capacity``."""

    id: str
    team: str
    skills: Mapping[str, int] = field(default_factory=dict)
    shifts: tuple[ShiftPattern, ...] = ()
    timezone: str = "UTC"
    capacity: int = 10
    shrinkage: float = 0.0
    channel_capacity: Mapping[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("id", "team"):
            if not isinstance(getattr(self, name), str) or not getattr(self, name):
                raise ProblemError(name, "must be a non-empty string")
        object.__setattr__(self, "skills", _levels(self.skills, "skills"))
        object.__setattr__(self, "shifts", tuple(self.shifts))
        _zone(self.timezone, "timezone")
        _count(self.capacity, "capacity", maximum=10_000)
        _share(self.shrinkage, "shrinkage")
        caps = {c: _count(n, f"channel_capacity.{c}", maximum=10_000) for c, n in
                self.channel_capacity.items()}  # fmt: skip
        object.__setattr__(self, "channel_capacity", MappingProxyType(caps))

    @property
    def paid_minutes_per_week(self) -> int:
        return sum(s.paid_minutes_per_week for s in self.shifts)


@dataclass(frozen=True, slots=True)
class TicketSpec:
    """One ticket of a history to replay: what arrived, when, needing what.

    ``first_response_at`` / ``resolved_at`` are what really happened (kept for the report's
    "history" column); the simulation decides its own. ``call`` names the capability of a live
    call the customer booked for it, if any. ``handle_minutes`` is the exact working time the
    simulation spends on it (a drawn handling time, to the second); the router, like the service,
    sees only the whole ``effort_minutes`` (None: the work takes ``effort_minutes``)."""

    id: str
    created_at: datetime
    team: str
    channel: str = "email"
    required_skills: Mapping[str, int] = field(default_factory=dict)
    priority: Priority = Priority.NORMAL
    effort_minutes: int = 30
    first_response_at: datetime | None = None
    resolved_at: datetime | None = None
    call: str | None = None
    handle_minutes: float | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "created_at", _aware(self.created_at, "created"))
        if self.handle_minutes is not None:
            _positive(self.handle_minutes, "handle_minutes", maximum=7 * 24 * 60)
        object.__setattr__(self, "required_skills", _levels(self.required_skills, "skills"))
        try:
            object.__setattr__(self, "priority", Priority(self.priority))
        except ValueError:
            raise ProblemError("priority", f"unknown priority {self.priority!r}") from None
        _count(self.effort_minutes, "effort_minutes", minimum=1, maximum=7 * 24 * 60)
        for name in ("first_response_at", "resolved_at"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, _aware(value, name))


@dataclass(frozen=True, slots=True)
class VolumeRow:
    """An hourly volume profile: ``per_hour`` tickets an hour arrive at ``hour`` (local to the
    world's zone) on ``weekday`` (None: every day), Poisson within the hour.

    Handling times are drawn around the mean ``effort_minutes``: lognormally with coefficient of
    variation ``effort_cv`` (0: exactly the mean), or, with ``effort_distribution:
    exponential``, exponentially (whose cv is 1: ``effort_cv`` must then be 0 or 1), as queueing
    theory's M/M/c assumes. ``call_share`` of them book a live call against ``call``."""

    team: str
    channel: str
    hour: int
    per_hour: float
    required_skills: Mapping[str, int] = field(default_factory=dict)
    weekday: int | None = None
    priority: Priority = Priority.NORMAL
    effort_minutes: float = 30.0
    effort_cv: float = 0.0
    call: str | None = None
    call_share: float = 0.0
    effort_distribution: str = "lognormal"

    def __post_init__(self) -> None:
        _count(self.hour, "hour", maximum=23)
        if self.weekday is not None:
            _count(self.weekday, "weekday", maximum=6)
        if (
            isinstance(self.per_hour, bool)
            or not isinstance(self.per_hour, int | float)
            or not (math.isfinite(self.per_hour) and self.per_hour >= 0)
        ):
            raise ProblemError("per_hour", f"must be a number >= 0, got {self.per_hour!r}")
        object.__setattr__(self, "required_skills", _levels(self.required_skills, "skills"))
        try:
            object.__setattr__(self, "priority", Priority(self.priority))
        except ValueError:
            raise ProblemError("priority", f"unknown priority {self.priority!r}") from None
        _positive(self.effort_minutes, "effort_minutes", maximum=7 * 24 * 60)
        if not 0 <= self.effort_cv <= 10:
            raise ProblemError("effort_cv", f"must be in [0, 10], got {self.effort_cv!r}")
        _share(self.call_share, "call_share")
        if self.effort_distribution not in EFFORT_DISTRIBUTIONS:
            raise ProblemError(
                "effort_distribution",
                f"must be one of {', '.join(EFFORT_DISTRIBUTIONS)}, "
                f"got {self.effort_distribution!r}",
            )
        if self.effort_distribution == "exponential" and self.effort_cv not in (0, 1):
            raise ProblemError(
                "effort_cv", "an exponential handling time has cv 1: leave effort_cv 0 or 1"
            )


@dataclass(frozen=True, slots=True)
class HistoryScale:
    """A volume factor for the part of a replayed history of one ``team`` and/or ``channel``
    (None: any). Volume profiles need no such rule: a scenario scales their ``per_hour``."""

    factor: float
    team: str | None = None
    channel: str | None = None

    def __post_init__(self) -> None:
        _positive(self.factor, "factor", maximum=100)
        if self.team is None and self.channel is None:
            raise ProblemError("team", "a history scale names a team, a channel or both")

    def matches(self, team: str, channel: str) -> bool:
        return (self.team is None or self.team == team) and (
            self.channel is None or self.channel == channel
        )


@dataclass(frozen=True, slots=True)
class Demand:
    """What arrives: a history replayed as it happened, and/or volume profiles generated from.

    ``scale`` multiplies volume (a history is thinned or repeated: see :mod:`scenarios.arrivals`);
    ``shape`` multiplies the volume of a local hour of day (0-23) on top of it.
    ``history_scale`` multiplies, on top of ``scale``, the history tickets of one team and/or
    channel (a scenario's "volume +30 % for tier2 chat"); :meth:`history_factor` is the factor a
    history ticket is replayed with."""

    history: tuple[TicketSpec, ...] = ()
    volume: tuple[VolumeRow, ...] = ()
    scale: float = 1.0
    shape: Mapping[int, float] = field(default_factory=dict)
    history_scale: tuple[HistoryScale, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "history", tuple(self.history))
        object.__setattr__(self, "volume", tuple(self.volume))
        object.__setattr__(self, "history_scale", tuple(self.history_scale))
        _positive(self.scale, "scale", maximum=100)
        shape = {}
        for hour, factor in self.shape.items():
            _count(hour, "shape.hour", maximum=23)
            if not isinstance(factor, int | float) or not (math.isfinite(factor) and factor >= 0):
                raise ProblemError(f"shape.{hour}", f"must be a number >= 0, got {factor!r}")
            shape[hour] = float(factor)
        object.__setattr__(self, "shape", MappingProxyType(shape))

    def history_factor(self, team: str, channel: str) -> float:
        """How much of a history ticket of ``team`` on ``channel`` to replay (1: as it was)."""
        factor = self.scale
        for rule in self.history_scale:
            if rule.matches(team, channel):
                factor *= rule.factor
        return factor


@dataclass(frozen=True, slots=True)
class SlaTarget:
    """Minutes to first response and to resolution for tickets of ``priority`` (and of
    ``channel``, when given: a channel-specific target wins over the priority's)."""

    priority: Priority
    first_response_minutes: int | None
    resolution_minutes: int | None
    channel: str | None = None

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "priority", Priority(self.priority))
        except ValueError:
            raise ProblemError("priority", f"unknown priority {self.priority!r}") from None
        for name in ("first_response_minutes", "resolution_minutes"):
            if getattr(self, name) is not None:
                _count(getattr(self, name), name, minimum=1, maximum=365 * 24 * 60)


@dataclass(frozen=True, slots=True)
class Routing:
    """How tickets reach agents.

    ``policy``: ``production`` (the service's real-time router on arrival, plus the whole
    unstarted queue re-optimized every ``reoptimize_minutes``), ``realtime`` (the router alone),
    or a batch policy of :data:`solver.policies.POLICIES`, run over the waiting queue every
    ``dispatch_minutes`` (that is how those policies are defined: a queue in, a plan out).
    ``patience_minutes``: how long a customer on a live channel waits before hanging up
    (None: forever); ``time_limit_s`` bounds each optimizer call. ``max_moves`` (None: no
    budget) caps how many held tickets whose holder could keep them each optimizer call may
    hand to someone else (:class:`solver.policies.PolicyParams`): the production
    re-optimization's and the ``optimizer`` policy's; the baselines never move such a ticket."""

    policy: str = PRODUCTION
    reoptimize_minutes: int = 60
    dispatch_minutes: int = 5
    time_limit_s: float = 1.0
    patience_minutes: float | None = None
    max_moves: int | None = None

    def __post_init__(self) -> None:
        if self.policy not in ROUTING_POLICIES:
            raise ProblemError(
                "policy", f"must be one of {', '.join(ROUTING_POLICIES)}, got {self.policy!r}"
            )
        _count(self.reoptimize_minutes, "reoptimize_minutes", minimum=1, maximum=7 * 24 * 60)
        _count(self.dispatch_minutes, "dispatch_minutes", minimum=1, maximum=24 * 60)
        _positive(self.time_limit_s, "time_limit_s", maximum=600)
        if self.patience_minutes is not None:
            _positive(self.patience_minutes, "patience_minutes", maximum=7 * 24 * 60)
        if self.max_moves is not None:
            _count(self.max_moves, "max_moves", minimum=0, maximum=MAX_MOVES)


@dataclass(frozen=True)
class World:
    """One simulation's input. ``start`` is rounded to the minute; the run covers ``days`` days
    from it; KPIs are cut into ``interval_minutes`` buckets."""

    name: str
    start: datetime
    days: int
    skills: tuple[Skill, ...]
    teams: tuple[Team, ...]
    agents: tuple[AgentPlan, ...]
    demand: Demand
    sla: tuple[SlaTarget, ...] = ()
    routing: Routing = field(default_factory=Routing)
    capabilities: tuple[Capability, ...] = ()
    timezone: str = "UTC"
    interval_minutes: int = 30

    def __post_init__(self) -> None:
        start = _aware(self.start, "start").replace(second=0, microsecond=0)
        object.__setattr__(self, "start", start)
        _count(self.days, "days", minimum=1, maximum=366)
        _zone(self.timezone, "timezone")
        if self.interval_minutes not in INTERVALS:
            raise ProblemError(
                "interval_minutes", f"must be one of 15, 30, 60, got {self.interval_minutes!r}"
            )
        for name in ("skills", "teams", "agents", "sla", "capabilities"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        skill_ids = {s.id for s in self.skills}
        team_ids = {t.id for t in self.teams}
        seen: set[str] = set()
        for i, agent in enumerate(self.agents):
            if agent.id in seen:
                raise ProblemError(f"agents[{i}].id", f"duplicate agent {agent.id!r}")
            seen.add(agent.id)
            if agent.team not in team_ids:
                raise ProblemError(f"agents[{i}].team", f"unknown team {agent.team!r}")
            for skill in agent.skills:
                if skill not in skill_ids:
                    raise ProblemError(f"agents[{i}].skills.{skill}", f"unknown skill {skill!r}")
        capability_ids = {c.id for c in self.capabilities}
        rows: list[tuple[str, int, TicketSpec | VolumeRow]] = [
            *(("history", i, r) for i, r in enumerate(self.demand.history)),
            *(("volume", i, r) for i, r in enumerate(self.demand.volume)),
        ]
        for where, i, row in rows:
            if row.team not in team_ids:
                raise ProblemError(f"{where}[{i}].team", f"unknown team {row.team!r}")
            for skill in row.required_skills:
                if skill not in skill_ids:
                    raise ProblemError(f"{where}[{i}].skills.{skill}", f"unknown skill {skill!r}")
            if row.call is not None and row.call not in capability_ids:
                raise ProblemError(f"{where}[{i}].call", f"unknown capability {row.call!r}")
        for i, rule in enumerate(self.demand.history_scale):
            if rule.team is not None and rule.team not in team_ids:
                raise ProblemError(f"history_scale[{i}].team", f"unknown team {rule.team!r}")

    @property
    def end(self) -> datetime:
        return self.start + timedelta(days=self.days)

    def sla_for(self, priority: Priority, channel: str) -> SlaTarget | None:
        """The target of a ticket: its channel's for its priority, else its priority's."""
        general = None
        for target in self.sla:
            if target.priority == priority:
                if target.channel == channel:
                    return target
                if target.channel is None:
                    general = target
        return general


def shift_intervals(agent: AgentPlan, start: datetime, end: datetime) -> Iterator[Interval]:
    """The agent's working time in ``[start, end)`` as UTC intervals, breaks cut out.

    Shifts are laid on local calendar days, so across a DST change a 09:00-17:00 shift stays
    09:00-17:00 local and moves by an hour in UTC. A wall time inside a spring-forward gap is
    the moment of the change (``fold=0`` resolution of :mod:`zoneinfo`)."""
    zone = ZoneInfo(agent.timezone)
    first = (start.astimezone(zone) - timedelta(days=1)).date()
    last = end.astimezone(zone).date()
    spans: list[tuple[datetime, datetime]] = []
    day = first
    while day <= last:
        for pattern in agent.shifts:
            if day.weekday() not in pattern.weekdays:
                continue
            for piece in _pieces(pattern, day, zone):
                a, b = max(piece[0], start), min(piece[1], end)
                if a < b:
                    spans.append((a, b))
        day += timedelta(days=1)
    spans.sort()
    merged: list[list[datetime]] = []
    for a, b in spans:
        if merged and a <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], b)
        else:
            merged.append([a, b])
    for a, b in merged:
        yield Interval(a, b)


def _local(day: date, at: time, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, at, tzinfo=zone).astimezone(UTC)


def _pieces(pattern: ShiftPattern, day: date, zone: ZoneInfo) -> list[tuple[datetime, datetime]]:
    end_day = day if pattern.end > pattern.start else day + timedelta(days=1)
    begin, finish = _local(day, pattern.start, zone), _local(end_day, pattern.end, zone)
    cuts = []
    for brk in pattern.breaks:
        offset = pattern._offset(brk.start)
        local = datetime.combine(day, pattern.start) + timedelta(minutes=offset)
        b_start = _local(local.date(), local.time(), zone)
        cuts.append((b_start, b_start + timedelta(minutes=brk.minutes)))
    pieces = []
    at = begin
    for cut_start, cut_end in sorted(cuts):
        if cut_start > at:
            pieces.append((at, min(cut_start, finish)))
        at = max(at, cut_end)
    if at < finish:
        pieces.append((at, finish))
    return pieces
