"""A scenario's changes, and the world they make of a baseline.

Each kind of change a scenario file names is one immutable dataclass; :func:`apply` derives a
new :class:`~scenarios.model.World` from a baseline by applying them in order (a later change
sees the earlier ones: agents added by ``add_agents`` can be moved by a later ``move_agents``).
The baseline is never modified. An impossible change (an unknown agent, a skill the world does
not have, a shift that cannot keep its paid hours) raises
:class:`solver.errors.ProblemError` whose field is relative to the change (``like``,
``agents[1]``, ``skills.de``), so :mod:`scenarios.spec` can point at the line of the file.

Volume scaling. A global ``scale_volume`` multiplies :attr:`Demand.scale`, which the arrivals
apply to volume profiles and history alike. A ``scale_volume`` for a team and/or channel
multiplies the ``per_hour`` of the matching volume rows and adds a
:class:`~scenarios.model.HistoryScale` rule for the matching history tickets (a history cannot
be edited row by row without losing its real arrival times: :mod:`scenarios.arrivals` thins
or repeats it by :meth:`Demand.history_factor`). ``reshape_volume`` multiplies
:attr:`Demand.shape` hour by hour, so two reshapes compose.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import time
from types import MappingProxyType
from typing import ClassVar

from scenarios.model import (
    AgentPlan,
    Demand,
    HistoryScale,
    Routing,
    ShiftPattern,
    World,
)
from solver.errors import ProblemError
from solver.problem import MAX_LEVEL, MIN_LEVEL

MAX_ADDED = 1000


def _ids(values: Sequence[str], name: str) -> tuple[str, ...]:
    out = tuple(values)
    if not out:
        raise ProblemError(name, "must name at least one agent")
    for i, v in enumerate(out):
        if not isinstance(v, str) or not v:
            raise ProblemError(f"{name}[{i}]", f"must be an agent id, got {v!r}")
    return out


def _levels(levels: Mapping[str, int], name: str) -> Mapping[str, int]:
    out = {}
    for skill, level in levels.items():
        if isinstance(level, bool) or not isinstance(level, int):
            raise ProblemError(f"{name}.{skill}", f"must be a whole number, got {level!r}")
        if not MIN_LEVEL <= level <= MAX_LEVEL:
            raise ProblemError(
                f"{name}.{skill}", f"must be a level {MIN_LEVEL}-{MAX_LEVEL}, got {level!r}"
            )
        out[skill] = level
    return MappingProxyType(out)


@dataclass(frozen=True, slots=True)
class AddAgents:
    """``count`` copies of agent ``like`` (shifts, skills, capacity, shrinkage, zone), with ids
    ``{id_prefix}-1``, ``-2``, ... (skipping ids already taken). ``team`` moves the copies to
    another team; ``skills`` sets levels on top of the copied ones ("like a12, plus German")."""

    kind: ClassVar[str] = "add_agents"
    count: int
    like: str
    id_prefix: str | None = None
    team: str | None = None
    skills: Mapping[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if isinstance(self.count, bool) or not isinstance(self.count, int):
            raise ProblemError("count", f"must be a whole number, got {self.count!r}")
        if not 0 <= self.count <= MAX_ADDED:
            raise ProblemError("count", f"must be in [0, {MAX_ADDED}], got {self.count}")
        object.__setattr__(self, "skills", _levels(self.skills, "skills"))


@dataclass(frozen=True, slots=True)
class RemoveAgents:
    """The agents leave the plan (their shifts with them)."""

    kind: ClassVar[str] = "remove_agents"
    agents: tuple[str, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "agents", _ids(self.agents, "agents"))


@dataclass(frozen=True, slots=True)
class MoveAgents:
    """The agents work ``shifts`` instead of their own.

    ``keep_paid_hours``: each agent's new week is stretched or shortened to the paid minutes
    (:attr:`AgentPlan.paid_minutes_per_week`: shift length minus breaks, wall clock) of their
    old one, by moving the *end* of each new shift (the start is what the planner asked for;
    breaks stay where they are). The difference is spread evenly over the new shift-days; when
    it does not divide, the first days in week order get one minute more, so a pattern may split
    in two (Mon-Tue ending at 21:31, Wed-Fri at 21:30) and the total is exact to the minute. A
    shift that would pass 24 hours, or end before one of its breaks, is an error."""

    kind: ClassVar[str] = "move_agents"
    agents: tuple[str, ...]
    shifts: tuple[ShiftPattern, ...]
    keep_paid_hours: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "agents", _ids(self.agents, "agents"))
        object.__setattr__(self, "shifts", tuple(self.shifts))
        if not self.shifts:
            raise ProblemError("shift", "must give at least one shift pattern")


@dataclass(frozen=True, slots=True)
class ChangeSkills:
    """The agents get the levels of ``set`` (added or changed) and lose the skills of
    ``remove`` (a skill an agent does not have is no error: the list is for a whole group)."""

    kind: ClassVar[str] = "change_skills"
    agents: tuple[str, ...]
    set: Mapping[str, int] = field(default_factory=dict)
    remove: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "agents", _ids(self.agents, "agents"))
        object.__setattr__(self, "set", _levels(self.set, "set"))
        object.__setattr__(self, "remove", tuple(self.remove))
        if not self.set and not self.remove:
            raise ProblemError("set", "give skills to set and/or to remove")
        for skill in self.remove:
            if skill in self.set:
                raise ProblemError("remove", f"skill {skill!r} is both set and removed")


@dataclass(frozen=True, slots=True)
class ScaleVolume:
    """Volume times ``factor``: all of it, or that of ``team`` and/or ``channel``."""

    kind: ClassVar[str] = "scale_volume"
    factor: float
    team: str | None = None
    channel: str | None = None

    def __post_init__(self) -> None:
        f = self.factor
        if isinstance(f, bool) or not isinstance(f, int | float) or not 0 < f <= 100:
            raise ProblemError("factor", f"must be a number in (0, 100], got {f!r}")


@dataclass(frozen=True, slots=True)
class ReshapeVolume:
    """The volume of each local hour of day in ``hours`` times its factor."""

    kind: ClassVar[str] = "reshape_volume"
    hours: Mapping[int, float]

    def __post_init__(self) -> None:
        out = {}
        for hour, factor in self.hours.items():
            if isinstance(hour, bool) or not isinstance(hour, int) or not 0 <= hour <= 23:
                raise ProblemError("hours", f"hours are 0-23, got {hour!r}")
            if isinstance(factor, bool) or not isinstance(factor, int | float) or factor < 0:
                raise ProblemError(f"hours.{hour}", f"must be a number >= 0, got {factor!r}")
            out[hour] = float(factor)
        if not out:
            raise ProblemError("hours", "must map at least one hour to a factor")
        object.__setattr__(self, "hours", MappingProxyType(out))


@dataclass(frozen=True, slots=True)
class SetRouting:
    """The routing fields given (None: unchanged); validated as :class:`Routing` is."""

    kind: ClassVar[str] = "routing"
    policy: str | None = None
    reoptimize_minutes: int | None = None
    dispatch_minutes: int | None = None
    time_limit_s: float | None = None
    patience_minutes: float | None = None
    max_moves: int | None = None

    def __post_init__(self) -> None:
        self.routing(Routing())  # validates

    def routing(self, base: Routing) -> Routing:
        given = {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)
            if getattr(self, f.name) is not None
        }
        return dataclasses.replace(base, **given)


Change = (
    AddAgents | RemoveAgents | MoveAgents | ChangeSkills | ScaleVolume | ReshapeVolume | SetRouting
)
KINDS: Mapping[str, type[Change]] = MappingProxyType(
    {
        c.kind: c
        for c in (
            AddAgents,
            RemoveAgents,
            MoveAgents,
            ChangeSkills,
            ScaleVolume,
            ReshapeVolume,
            SetRouting,
        )
    }
)


def apply(world: World, changes: Sequence[Change]) -> World:
    """The world of ``world`` with ``changes`` applied in order (``world`` is not touched)."""
    for change in changes:
        world = apply_one(world, change)
    return world


def apply_one(world: World, change: Change) -> World:
    """``world`` with one change; a ProblemError names the change's offending field."""
    if isinstance(change, AddAgents):
        return _add(world, change)
    if isinstance(change, RemoveAgents):
        _agent_index(world, change.agents)
        gone = set(change.agents)
        return dataclasses.replace(world, agents=tuple(a for a in world.agents if a.id not in gone))
    if isinstance(change, MoveAgents):
        return _move(world, change)
    if isinstance(change, ChangeSkills):
        return _change_skills(world, change)
    if isinstance(change, ScaleVolume):
        return _scale(world, change)
    if isinstance(change, ReshapeVolume):
        shape = dict(world.demand.shape)
        for hour, factor in change.hours.items():
            shape[hour] = shape.get(hour, 1.0) * factor
        demand = dataclasses.replace(world.demand, shape=dict(sorted(shape.items())))
        return dataclasses.replace(world, demand=demand)
    return dataclasses.replace(world, routing=change.routing(world.routing))


def _agent_index(world: World, ids: Sequence[str]) -> dict[str, int]:
    index = {a.id: i for i, a in enumerate(world.agents)}
    for i, agent in enumerate(ids):
        if agent not in index:
            raise ProblemError(f"agents[{i}]", f"unknown agent {agent!r}")
    return index


def _check_skills(world: World, skills: Sequence[str], name: str) -> None:
    known = [s.id for s in world.skills]
    for skill in skills:
        if skill not in known:
            raise ProblemError(
                f"{name}.{skill}", f"unknown skill {skill!r} (the world's: {', '.join(known)})"
            )


def _add(world: World, change: AddAgents) -> World:
    template = next((a for a in world.agents if a.id == change.like), None)
    if template is None:
        raise ProblemError("like", f"unknown agent {change.like!r}")
    team = change.team if change.team is not None else template.team
    if team not in [t.id for t in world.teams]:
        raise ProblemError("team", f"unknown team {team!r}")
    _check_skills(world, list(change.skills), "skills")
    skills = {**template.skills, **change.skills}
    prefix = change.id_prefix or f"{change.like}-new"
    taken = {a.id for a in world.agents}
    added: list[AgentPlan] = []
    k = 0
    while len(added) < change.count:
        k += 1
        new_id = f"{prefix}-{k}"
        if new_id in taken:
            continue
        taken.add(new_id)
        added.append(dataclasses.replace(template, id=new_id, team=team, skills=skills))
    return dataclasses.replace(world, agents=(*world.agents, *added))


def _minutes(at: time) -> int:
    return at.hour * 60 + at.minute


def _stretched(pattern: ShiftPattern, days: Sequence[int], extra: int) -> ShiftPattern:
    length = pattern.length_minutes + extra
    if length > 24 * 60:
        raise ProblemError(
            "keep_paid_hours", f"the new shift would last {length} minutes, more than 24 hours"
        )
    breaks = sum(b.minutes for b in pattern.breaks)
    if length - breaks <= 0:
        raise ProblemError("keep_paid_hours", "the new shift would have no paid time left")
    end = (_minutes(pattern.start) + length) % (24 * 60)
    try:
        return ShiftPattern(tuple(days), pattern.start, time(end // 60, end % 60), pattern.breaks)
    except ProblemError:
        raise ProblemError(
            "keep_paid_hours", "keeping the paid hours would end the shift before one of its breaks"
        ) from None


def keep_paid_hours(shifts: Sequence[ShiftPattern], target: int) -> tuple[ShiftPattern, ...]:
    """``shifts`` with their ends moved so the week pays ``target`` minutes (see
    :class:`MoveAgents`)."""
    days = sum(len(p.weekdays) for p in shifts)
    current = sum(p.paid_minutes_per_week for p in shifts)
    base, rest = divmod(target - current, days)
    out: list[ShiftPattern] = []
    k = 0
    for pattern in shifts:
        groups: dict[int, list[int]] = {}
        for day in pattern.weekdays:
            groups.setdefault(base + (1 if k < rest else 0), []).append(day)
            k += 1
        for extra, group in groups.items():
            out.append(
                pattern if extra == 0 and len(groups) == 1 else _stretched(pattern, group, extra)
            )
    return tuple(out)


def _move(world: World, change: MoveAgents) -> World:
    index = _agent_index(world, change.agents)
    agents = list(world.agents)
    for name in change.agents:
        agent = agents[index[name]]
        shifts = change.shifts
        if change.keep_paid_hours:
            if agent.paid_minutes_per_week == 0:
                raise ProblemError(
                    "keep_paid_hours", f"agent {name!r} has no paid hours to keep (no shifts)"
                )
            shifts = keep_paid_hours(shifts, agent.paid_minutes_per_week)
        agents[index[name]] = dataclasses.replace(agent, shifts=shifts)
    return dataclasses.replace(world, agents=tuple(agents))


def _change_skills(world: World, change: ChangeSkills) -> World:
    index = _agent_index(world, change.agents)
    _check_skills(world, list(change.set), "set")
    _check_skills(world, list(change.remove), "remove")
    agents = list(world.agents)
    for name in change.agents:
        agent = agents[index[name]]
        skills = {k: v for k, v in agent.skills.items() if k not in change.remove}
        skills.update(change.set)
        agents[index[name]] = dataclasses.replace(agent, skills=skills)
    return dataclasses.replace(world, agents=tuple(agents))


def _scale(world: World, change: ScaleVolume) -> World:
    demand = world.demand
    if change.team is None and change.channel is None:
        factor = demand.scale * change.factor
        if factor > 100:
            raise ProblemError("factor", f"the volume would be {factor:g} times the baseline's")
        return dataclasses.replace(world, demand=dataclasses.replace(demand, scale=factor))
    if change.team is not None and change.team not in [t.id for t in world.teams]:
        raise ProblemError("team", f"unknown team {change.team!r}")
    rule = HistoryScale(change.factor, change.team, change.channel)
    matched = any(rule.matches(v.team, v.channel) for v in demand.volume) or any(
        rule.matches(t.team, t.channel) for t in demand.history
    )
    if not matched:
        which = " and ".join(
            f"{k} {v!r}" for k, v in (("team", change.team), ("channel", change.channel)) if v
        )
        raise ProblemError(
            "channel" if change.channel is not None else "team", f"no demand for {which}"
        )
    volume = tuple(
        dataclasses.replace(v, per_hour=v.per_hour * change.factor)
        if rule.matches(v.team, v.channel)
        else v
        for v in demand.volume
    )
    history_scale = demand.history_scale
    if any(rule.matches(t.team, t.channel) for t in demand.history):
        history_scale = (*history_scale, rule)
    new = Demand(
        history=demand.history,
        volume=volume,
        scale=demand.scale,
        shape=demand.shape,
        history_scale=history_scale,
    )
    return dataclasses.replace(world, demand=new)
