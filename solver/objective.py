"""The objective every policy is judged by, and its weights.

One definition shared by the optimizer, the baselines, validation and the benchmarks, so that
"better" means the same thing everywhere. All parts are minimised:

- ``sla_breaches``: per breached deadline (first response, resolution), a fixed penalty times
  the ticket's priority weight;
- ``weighted_lateness``: minutes past each deadline, times the priority weight;
- ``unassigned``: tickets left with the team queue, times the priority weight;
- ``churn``: tickets that had an owner agent and were moved to someone else (or back to the queue);
- ``load_balance``: the sum over agents of (open + new)² − open², a convex cost that spreads work;
- ``expertise_waste``: skill levels above what the ticket needs, summed over its required skills;
- ``discontinuity``: a ticket with a previous agent given to somebody else;
- ``borrowing``: a ticket of a team whose scope is ``borrow`` given to another team's agent (so
  the team's own agents come first; far below ``unassigned``, so borrowing beats queueing).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from solver.errors import ProblemError
from solver.problem import Priority, _check_int

# Upper bound of every weight: the objective is minutes x weights summed over a queue in int64.
MAX_WEIGHT = 1_000_000

DEFAULT_PRIORITY_WEIGHTS: Mapping[int, int] = MappingProxyType(
    {Priority.LOW: 1, Priority.NORMAL: 2, Priority.HIGH: 4, Priority.URGENT: 8}
)


@dataclass(frozen=True, slots=True)
class ObjectiveWeights:
    """Weights of the objective parts. Integers, so min-cost flow and CP-SAT use them exactly."""

    priority: Mapping[int, int] = field(default_factory=lambda: DEFAULT_PRIORITY_WEIGHTS)
    breach: int = 120
    lateness_per_minute: int = 1
    unassigned: int = 2000
    churn: int = 60
    load: int = 3
    expertise_waste: int = 4
    discontinuity: int = 10
    borrow: int = 1000

    def __post_init__(self) -> None:
        for name in (
            "breach", "lateness_per_minute", "unassigned", "churn", "load", "expertise_waste",
            "discontinuity", "borrow",
        ):  # fmt: skip
            _check_int(getattr(self, name), name, minimum=0, maximum=MAX_WEIGHT)
        if not isinstance(self.priority, Mapping):
            raise ProblemError("priority", "must be a mapping of priority to weight")
        for key, weight in self.priority.items():
            try:
                Priority(key)
            except ValueError:
                raise ProblemError("priority", f"unknown priority {key!r}") from None
            _check_int(weight, f"priority.{int(key)}", minimum=0, maximum=MAX_WEIGHT)

    def priority_weight(self, priority: int) -> int:
        return int(self.priority[int(priority)])

    def as_dict(self) -> dict[str, object]:
        return {
            "priority": {int(k): int(v) for k, v in self.priority.items()},
            "breach": self.breach,
            "lateness_per_minute": self.lateness_per_minute,
            "unassigned": self.unassigned,
            "churn": self.churn,
            "load": self.load,
            "expertise_waste": self.expertise_waste,
            "discontinuity": self.discontinuity,
            "borrow": self.borrow,
        }
