"""Every integer field of the domain types has an upper bound, refused with a ProblemError naming
the field (issue 14: 2**63 used to pass validation and overflow later)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from solver.errors import ProblemError
from solver.jit.costs import MAX_JIT_WEIGHT, JitWeights
from solver.problem import (
    MAX_BACKLOG_MINUTES,
    MAX_CAPACITY,
    MAX_COUNT,
    MAX_EFFORT_MINUTES,
    MAX_LEVEL,
    Agent,
    Ticket,
)

NOW = datetime(2026, 3, 26, 8, tzinfo=UTC)
HUGE = 2**63


@pytest.mark.parametrize(
    ("field", "top"),
    [
        ("capacity", MAX_CAPACITY),
        ("open_tickets", MAX_COUNT),
        ("backlog_minutes", MAX_BACKLOG_MINUTES),
        ("recent_assignments", MAX_COUNT),
    ],
)
def test_agent_counts_are_bounded(field: str, top: int) -> None:
    Agent(id="a", team="t", **{field: top})  # the bound itself is allowed
    for value in (top + 1, HUGE):
        with pytest.raises(ProblemError) as err:
            Agent(id="a", team="t", **{field: value})
        assert err.value.field == field and f"at most {top}" in err.value.reason


@pytest.mark.parametrize("field", ["channel_capacity", "channel_open"])
def test_channel_counts_are_bounded(field: str) -> None:
    with pytest.raises(ProblemError) as err:
        Agent(id="a", team="t", **{field: {"chat": HUGE}})
    assert err.value.field == f"{field}.chat"


def test_skill_levels_and_effort_are_bounded() -> None:
    with pytest.raises(ProblemError) as err:
        Agent(id="a", team="t", skills={"net": MAX_LEVEL + 1})
    assert err.value.field == "skills.net"
    Ticket(id="x", team="t", created_at=NOW, effort_minutes=MAX_EFFORT_MINUTES)
    with pytest.raises(ProblemError) as err:
        Ticket(id="x", team="t", created_at=NOW, effort_minutes=HUGE)
    assert err.value.field == "effort_minutes"


def test_jit_weights_are_bounded() -> None:
    JitWeights(uncovered=MAX_JIT_WEIGHT)
    with pytest.raises(ProblemError) as err:
        JitWeights(day_load=HUGE)
    assert err.value.field == "day_load"
    with pytest.raises(ProblemError):
        JitWeights(scarcity=-1)


def test_objective_weights_are_bounded() -> None:
    from solver.objective import MAX_WEIGHT, ObjectiveWeights

    ObjectiveWeights(churn=MAX_WEIGHT)
    with pytest.raises(ProblemError) as err:
        ObjectiveWeights(lateness_per_minute=HUGE)
    assert err.value.field == "lateness_per_minute"
    with pytest.raises(ProblemError) as err:
        ObjectiveWeights(priority={1: 1, 2: HUGE})
    assert err.value.field == "priority.2"
    with pytest.raises(ProblemError):
        ObjectiveWeights(priority={9: 1})
