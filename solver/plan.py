"""The solver's output types: decisions, their reasons, and how the solve went.

Status is data (``SolveStatus``), never an exception: a time limit or an infeasible
neighbourhood is reported on the plan, and only a broken model raises.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType


class SolveStatus(enum.StrEnum):
    OPTIMAL = "optimal"
    FEASIBLE = "feasible"
    INFEASIBLE = "infeasible"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class Reason:
    """One named rule's say in a decision. ``rule`` matches a rule/objective-part name."""

    rule: str
    detail: str
    value: float = 0.0


@dataclass(frozen=True, slots=True)
class Assignment:
    """Ticket ``ticket_id`` goes to ``agent_id``; ``position`` orders the agent's new work.

    ``start``/``end`` are the planned (UTC) moments work on it starts and ends, when the plan
    sequences work; None when the producer did not schedule it.
    """

    ticket_id: str
    agent_id: str
    position: int = 0
    start: datetime | None = None
    end: datetime | None = None
    reasons: tuple[Reason, ...] = ()


@dataclass(frozen=True, slots=True)
class TeamQueued:
    """A ticket nobody can take now: it stays owned by its team's queue, with the reasons."""

    ticket_id: str
    team_id: str
    reasons: tuple[Reason, ...] = ()


@dataclass(frozen=True, slots=True)
class ObjectiveParts:
    """The objective broken into its parts (all minimised; weights already applied).

    ``weighted_lateness`` is in priority-weighted minutes; the rest are penalty units.
    """

    sla_breaches: float = 0.0
    weighted_lateness: float = 0.0
    unassigned: float = 0.0
    churn: float = 0.0
    load_balance: float = 0.0
    expertise_waste: float = 0.0
    discontinuity: float = 0.0
    borrowing: float = 0.0

    @property
    def total(self) -> float:
        return (
            self.sla_breaches
            + self.weighted_lateness
            + self.unassigned
            + self.churn
            + self.load_balance
            + self.expertise_waste
            + self.discontinuity
            + self.borrowing
        )

    def as_dict(self) -> dict[str, float]:
        return {
            "sla_breaches": self.sla_breaches,
            "weighted_lateness": self.weighted_lateness,
            "unassigned": self.unassigned,
            "churn": self.churn,
            "load_balance": self.load_balance,
            "expertise_waste": self.expertise_waste,
            "discontinuity": self.discontinuity,
            "borrowing": self.borrowing,
            "total": self.total,
        }


@dataclass(frozen=True, slots=True)
class SolveStats:
    """How a solve went: status, objective (with parts), a bound where one is meaningful."""

    policy: str
    status: SolveStatus
    wall_seconds: float
    objective: float | None = None
    bound: float | None = None
    parts: ObjectiveParts | None = None
    seed: int | None = None
    params: Mapping[str, object] = field(default_factory=lambda: MappingProxyType({}))
    phases: Mapping[str, float] = field(default_factory=lambda: MappingProxyType({}))
    notes: tuple[str, ...] = ()

    @property
    def gap(self) -> float | None:
        if self.objective is None or self.bound is None:
            return None
        if self.objective == 0:
            return 0.0
        return abs(self.objective - self.bound) / max(abs(self.objective), 1e-9)


@dataclass(frozen=True, slots=True)
class Plan:
    """Who takes what, in what order, and what stays with the team queue."""

    assignments: tuple[Assignment, ...]
    queued: tuple[TeamQueued, ...]
    stats: SolveStats

    def by_ticket(self) -> dict[str, Assignment]:
        return {a.ticket_id: a for a in self.assignments}

    def by_agent(self) -> dict[str, list[Assignment]]:
        out: dict[str, list[Assignment]] = {}
        for a in sorted(self.assignments, key=lambda a: (a.agent_id, a.position)):
            out.setdefault(a.agent_id, []).append(a)
        return out


@dataclass(frozen=True, slots=True)
class Alternative:
    agent_id: str
    score: float
    reasons: tuple[Reason, ...] = ()


@dataclass(frozen=True, slots=True)
class Decision:
    """The real-time answer for one ticket: an agent, or the team queue, and why."""

    ticket_id: str
    agent_id: str | None
    team_id: str
    score: float | None
    reasons: tuple[Reason, ...]
    alternatives: tuple[Alternative, ...] = ()
    expected_start: datetime | None = None
    expected_end: datetime | None = None

    @property
    def queued(self) -> bool:
        return self.agent_id is None
