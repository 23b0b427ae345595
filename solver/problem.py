"""The solver's input types.

Plain, frozen dataclasses validated on construction: a bad value raises
:class:`~solver.errors.ProblemError` naming the field and the reason. Languages and tiers are
skills like any other (``lang:de``, ``tier:2``); a skill level runs from 1 (novice) to 5 (expert).
Every datetime is timezone-aware and normalised to UTC here, at the edge.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from functools import cached_property
from types import MappingProxyType
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from solver.errors import ProblemError
from solver.timegrid import require_aware

MIN_LEVEL = 1
MAX_LEVEL = 5
DEFAULT_HORIZON = timedelta(days=7)
# Upper bounds of the integer fields: far above any real support floor, low enough that the
# costs built from them (minutes x weights, summed over a queue) stay exact in int64, which
# min-cost flow and CP-SAT compute in. A value above one is refused naming the field, instead of
# passing validation and overflowing later.
MAX_CAPACITY = 100_000  # tickets one agent may hold at once
MAX_COUNT = 1_000_000  # open tickets, recent assignments, tickets of one channel
MAX_BACKLOG_MINUTES = 10_000_000  # about 19 years of work already on a desk
MAX_EFFORT_MINUTES = 525_600  # a year of working time for one ticket
DEFAULT_CHANNEL = "email"
LIVE_CHANNELS = frozenset({"chat", "phone", "messaging"})
"""Channels whose customers wait on the line: their team queue is re-offered as an agent frees."""


class Priority(enum.IntEnum):
    """Ticket priority, ordered so that a larger value is more urgent."""

    LOW = 1
    NORMAL = 2
    HIGH = 3
    URGENT = 4


class AgentStatus(enum.StrEnum):
    AVAILABLE = "available"
    AWAY = "away"
    OFFLINE = "offline"


class TeamScope(enum.StrEnum):
    """Who may work a ticket owned by a team (a team without a scope: any qualified agent)."""

    TEAM_ONLY = "team_only"
    """Only agents of the owning team (what helpdesks expect)."""
    BORROW = "borrow"
    """Agents of other teams too, when no one of the team can; the reasons say so."""


class SkillKind(enum.StrEnum):
    SKILL = "skill"
    LANGUAGE = "language"
    TIER = "tier"


def _check_id(value: object, field_name: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ProblemError(field_name, "must be a non-empty string")
    return value


def _check_int(value: object, field_name: str, *, minimum: int, maximum: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ProblemError(field_name, f"must be an integer, got {type(value).__name__}")
    if value < minimum:
        raise ProblemError(field_name, f"must be at least {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ProblemError(field_name, f"must be at most {maximum}, got {value}")
    return value


def _check_levels(levels: Mapping[str, int], field_name: str) -> Mapping[str, int]:
    if not isinstance(levels, Mapping):
        raise ProblemError(field_name, "must be a mapping of skill id to level")
    out: dict[str, int] = {}
    for skill, level in levels.items():
        _check_id(skill, f"{field_name}.<key>")
        out[skill] = _check_int(
            level, f"{field_name}.{skill}", minimum=MIN_LEVEL, maximum=MAX_LEVEL
        )
    return MappingProxyType(out)


def _check_counts(counts: Mapping[str, int], field_name: str) -> Mapping[str, int]:
    """A mapping of channel id to a count >= 0 (a per-channel capacity or open tickets)."""
    if not isinstance(counts, Mapping):
        raise ProblemError(field_name, "must be a mapping of channel id to a count")
    out: dict[str, int] = {}
    for channel, n in counts.items():
        _check_id(channel, f"{field_name}.<key>")
        out[channel] = _check_int(n, f"{field_name}.{channel}", minimum=0, maximum=MAX_COUNT)
    return MappingProxyType(out)


@dataclass(frozen=True, slots=True)
class Interval:
    """A half-open UTC interval ``[start, end)``."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        object.__setattr__(self, "start", require_aware(self.start, "start"))
        object.__setattr__(self, "end", require_aware(self.end, "end"))
        if self.end <= self.start:
            raise ProblemError(
                "end", f"must be after start ({self.end.isoformat()} <= {self.start.isoformat()})"
            )

    def contains(self, moment: datetime) -> bool:
        return self.start <= moment < self.end

    def overlaps(self, other: Interval) -> bool:
        return self.start < other.end and other.start < self.end


def _intervals(values: Iterable[Any], field_name: str) -> tuple[Interval, ...]:
    out: list[Interval] = []
    for i, value in enumerate(values):
        try:
            if isinstance(value, Interval):
                out.append(value)
            elif isinstance(value, tuple | list) and len(value) == 2:
                out.append(Interval(value[0], value[1]))
            else:
                raise ProblemError("", "must be an Interval or a (start, end) pair")
        except ProblemError as exc:
            raise ProblemError(
                f"{field_name}[{i}]" + (f".{exc.field}" if exc.field else ""), exc.reason
            ) from None
    return tuple(sorted(out, key=lambda iv: (iv.start, iv.end)))


@dataclass(frozen=True, slots=True)
class Skill:
    id: str
    name: str = ""
    kind: SkillKind = SkillKind.SKILL

    def __post_init__(self) -> None:
        _check_id(self.id, "id")
        try:
            object.__setattr__(self, "kind", SkillKind(self.kind))
        except ValueError:
            allowed = ", ".join(k.value for k in SkillKind)
            raise ProblemError("kind", f"must be one of {allowed}, got {self.kind!r}") from None


@dataclass(frozen=True, slots=True)
class Team:
    """A team; ``scope`` says who may work the tickets it owns (:class:`TeamScope`). None
    leaves them open to any qualified agent of any team, as a problem without teams does."""

    id: str
    name: str = ""
    scope: TeamScope | None = None

    def __post_init__(self) -> None:
        _check_id(self.id, "id")
        if self.scope is not None:
            try:
                object.__setattr__(self, "scope", TeamScope(self.scope))
            except ValueError:
                allowed = ", ".join(s.value for s in TeamScope)
                raise ProblemError(
                    "scope", f"must be one of {allowed}, got {self.scope!r}"
                ) from None


@dataclass(frozen=True, slots=True)
class Agent:
    """A person who can take tickets and calls.

    ``capacity`` is how many tickets the agent may hold open at once; ``open_tickets`` and
    ``backlog_minutes`` are the work already on their desk (the backlog is worked before anything
    new). ``channel_capacity`` caps, per channel, how many tickets of that channel they may hold
    at once (e.g. ``{"chat": 2}``) *within* the total ``capacity``; a channel absent from it is
    limited by the total only. ``channel_open`` is how many of ``open_tickets`` are of each
    channel (only the capped channels matter). ``recent_assignments`` feeds the fairness term.
    ``timezone`` is the agent's IANA zone, used only at the edges (display, day boundaries); all
    times here are UTC.
    """

    id: str
    team: str
    skills: Mapping[str, int] = field(default_factory=dict)
    capacity: int = 1
    shifts: tuple[Interval, ...] = ()
    busy: tuple[Interval, ...] = ()
    open_tickets: int = 0
    backlog_minutes: int = 0
    recent_assignments: int = 0
    timezone: str = "UTC"
    status: AgentStatus = AgentStatus.AVAILABLE
    channel_capacity: Mapping[str, int] = field(default_factory=dict)
    channel_open: Mapping[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _check_id(self.id, "id")
        _check_id(self.team, "team")
        object.__setattr__(self, "skills", _check_levels(self.skills, "skills"))
        _check_int(self.capacity, "capacity", minimum=0, maximum=MAX_CAPACITY)
        object.__setattr__(
            self, "channel_capacity", _check_counts(self.channel_capacity, "channel_capacity")
        )
        object.__setattr__(self, "channel_open", _check_counts(self.channel_open, "channel_open"))
        _check_int(self.open_tickets, "open_tickets", minimum=0, maximum=MAX_COUNT)
        _check_int(self.backlog_minutes, "backlog_minutes", minimum=0, maximum=MAX_BACKLOG_MINUTES)
        _check_int(self.recent_assignments, "recent_assignments", minimum=0, maximum=MAX_COUNT)
        object.__setattr__(self, "shifts", _intervals(self.shifts, "shifts"))
        object.__setattr__(self, "busy", _intervals(self.busy, "busy"))
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError, TypeError):
            raise ProblemError("timezone", f"unknown IANA time zone {self.timezone!r}") from None
        try:
            object.__setattr__(self, "status", AgentStatus(self.status))
        except ValueError:
            allowed = ", ".join(s.value for s in AgentStatus)
            raise ProblemError("status", f"must be one of {allowed}, got {self.status!r}") from None

    def on_shift(self, moment: datetime) -> bool:
        return any(s.contains(moment) for s in self.shifts)

    def busy_at(self, moment: datetime) -> bool:
        return any(b.contains(moment) for b in self.busy)

    def qualifies(self, required: Mapping[str, int]) -> bool:
        return all(self.skills.get(s, 0) >= lvl for s, lvl in required.items())

    def channel_slots(self, channel: str) -> int | None:
        """Free slots of ``channel`` under its own cap (None: the channel is not capped)."""
        cap = self.channel_capacity.get(channel)
        return None if cap is None else max(0, cap - self.channel_open.get(channel, 0))


@dataclass(frozen=True, slots=True)
class Ticket:
    """A unit of work. Every ticket belongs to a team; ``owner_agent`` is who holds it now.

    ``effort_minutes`` is the working time it needs; the first response is due when work starts
    (``first_response_due``), resolution when work ends (``resolution_due``). A ticket whose first
    response was already sent has ``first_response_due=None``. ``channel`` is where the
    customer reached out (``email``, ``web_form``, ``chat``, ``messaging``, ``phone`` or a
    tenant's own id); an agent's ``channel_capacity`` for it caps how many they hold at once.
    """

    id: str
    team: str
    created_at: datetime
    required_skills: Mapping[str, int] = field(default_factory=dict)
    priority: Priority = Priority.NORMAL
    first_response_due: datetime | None = None
    resolution_due: datetime | None = None
    effort_minutes: int = 30
    owner_agent: str | None = None
    previous_agent: str | None = None
    requester: str | None = None
    channel: str = DEFAULT_CHANNEL

    def __post_init__(self) -> None:
        _check_id(self.id, "id")
        _check_id(self.team, "team")
        _check_id(self.channel, "channel")
        created = require_aware(self.created_at, "created_at")
        object.__setattr__(self, "created_at", created)
        object.__setattr__(
            self, "required_skills", _check_levels(self.required_skills, "required_skills")
        )
        try:
            object.__setattr__(self, "priority", Priority(self.priority))
        except ValueError:
            allowed = ", ".join(f"{p.value} ({p.name.lower()})" for p in Priority)
            raise ProblemError(
                "priority", f"must be one of {allowed}, got {self.priority!r}"
            ) from None
        _check_int(self.effort_minutes, "effort_minutes", minimum=1, maximum=MAX_EFFORT_MINUTES)
        for name in ("first_response_due", "resolution_due"):
            value = getattr(self, name)
            if value is None:
                continue
            due = require_aware(value, name)
            if due < created:
                raise ProblemError(
                    name,
                    f"{due.isoformat()} is before the ticket was created ({created.isoformat()})",
                )
            object.__setattr__(self, name, due)
        if (
            self.first_response_due is not None
            and self.resolution_due is not None
            and self.resolution_due < self.first_response_due
        ):
            raise ProblemError("resolution_due", "must not be before first_response_due")
        for name in ("owner_agent", "previous_agent", "requester"):
            if getattr(self, name) is not None:
                _check_id(getattr(self, name), name)


@dataclass(frozen=True)
class Problem:
    """Everything a solve needs: the organisation, the work, and the moment it is solved at.

    ``horizon_end`` bounds the planning window; work is planned only in shifts before it.
    Cross-references are checked here: an unknown skill or team is an error naming where it was
    used. ``previous_agent``/``owner_agent`` may name agents absent from this problem (they left,
    or are off today); that is not an error.
    """

    now: datetime
    agents: tuple[Agent, ...]
    tickets: tuple[Ticket, ...]
    skills: tuple[Skill, ...] = ()
    teams: tuple[Team, ...] = ()
    horizon_end: datetime | None = None

    def __post_init__(self) -> None:
        now = require_aware(self.now, "now")
        object.__setattr__(self, "now", now)
        # A default horizon may end past LATEST (now is at most LATEST, so it cannot overflow):
        # only a horizon the caller gave is held to the supported range.
        if self.horizon_end is None:
            horizon = now + DEFAULT_HORIZON
        else:
            horizon = require_aware(self.horizon_end, "horizon_end")
        if horizon <= now:
            raise ProblemError("horizon_end", "must be after now")
        object.__setattr__(self, "horizon_end", horizon)
        object.__setattr__(self, "agents", tuple(self.agents))
        object.__setattr__(self, "tickets", tuple(self.tickets))
        object.__setattr__(self, "skills", tuple(self.skills))
        object.__setattr__(self, "teams", tuple(self.teams))
        self._check_unique("skills", [s.id for s in self.skills])
        self._check_unique("teams", [t.id for t in self.teams])
        self._check_unique("agents", [a.id for a in self.agents])
        self._check_unique("tickets", [t.id for t in self.tickets])
        skill_ids = {s.id for s in self.skills}
        team_ids = {t.id for t in self.teams}
        for i, agent in enumerate(self.agents):
            self._check_refs(f"agents[{i}]", agent.team, agent.skills, skill_ids, team_ids)
        for i, ticket in enumerate(self.tickets):
            self._check_refs(
                f"tickets[{i}]", ticket.team, ticket.required_skills, skill_ids, team_ids
            )

    @staticmethod
    def _check_unique(name: str, ids: list[str]) -> None:
        seen: set[str] = set()
        for i, value in enumerate(ids):
            if value in seen:
                raise ProblemError(f"{name}[{i}].id", f"duplicate id {value!r}")
            seen.add(value)

    @staticmethod
    def _check_refs(
        where: str, team: str, levels: Mapping[str, int], skill_ids: set[str], team_ids: set[str]
    ) -> None:
        if team_ids and team not in team_ids:
            raise ProblemError(f"{where}.team", f"unknown team {team!r}")
        if skill_ids:
            field_name = "skills" if where.startswith("agents") else "required_skills"
            for skill in levels:
                if skill not in skill_ids:
                    raise ProblemError(f"{where}.{field_name}.{skill}", f"unknown skill {skill!r}")

    @cached_property
    def horizon_minutes(self) -> int:
        assert self.horizon_end is not None
        return int((self.horizon_end - self.now).total_seconds() // 60)

    @cached_property
    def skill_ids(self) -> tuple[str, ...]:
        """Every skill id in a stable order: the declared catalogue, else those used."""
        if self.skills:
            return tuple(s.id for s in self.skills)
        used: dict[str, None] = {}
        for a in self.agents:
            used.update(dict.fromkeys(a.skills))
        for t in self.tickets:
            used.update(dict.fromkeys(t.required_skills))
        return tuple(used)

    @cached_property
    def team_scope(self) -> Mapping[str, TeamScope]:
        """Team id -> its scope, for the teams that have one (the others are unrestricted)."""
        return MappingProxyType({t.id: t.scope for t in self.teams if t.scope is not None})

    @cached_property
    def agent_index(self) -> Mapping[str, int]:
        return MappingProxyType({a.id: i for i, a in enumerate(self.agents)})

    @cached_property
    def ticket_index(self) -> Mapping[str, int]:
        return MappingProxyType({t.id: i for i, t in enumerate(self.tickets)})

    def agent(self, agent_id: str) -> Agent:
        return self.agents[self.agent_index[agent_id]]

    def ticket(self, ticket_id: str) -> Ticket:
        return self.tickets[self.ticket_index[ticket_id]]


def with_busy(problem: Problem, extra: Mapping[str, Iterable[Interval]]) -> Problem:
    """``problem`` with each agent named in ``extra`` also busy in those intervals.

    This is how live calls reach ticket planning: a call an agent is bound to (or held for, see
    ``api.solver_input.call_holds``) is busy time like a meeting, so no planner (real-time or
    batch) puts ticket work in it. Agents absent from ``problem`` are ignored (a call can outlive
    a roster); agents with nothing extra are kept as they are.
    """
    if not extra:
        return problem
    agents = tuple(
        replace(a, busy=(*a.busy, *extra[a.id])) if extra.get(a.id) else a for a in problem.agents
    )
    return replace(problem, agents=agents)
