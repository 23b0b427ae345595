"""What one simulated run leaves behind: tables, one row per thing that happened.

:func:`scenarios.sim.simulate` returns a :class:`RunResult`; :mod:`scenarios.kpis` measures it;
:mod:`scenarios.report` draws it. The tables are pandas DataFrames with exactly the columns
listed here, in this order, sorted as stated, so the same world and seed give byte-identical
CSV. Times are ``datetime64[ns, UTC]``; a moment that never came is ``NaT``; a missing agent is
``None``.

``tickets`` (sorted by ``created_at``, ``id``)
    id, team, channel, skills (``"skill:level;..."`` sorted by skill), priority (int),
    created_at, first_response_due, resolution_due, first_assigned_at, first_response_at (work
    started), resolved_at (work finished), abandoned_at (a live customer hung up before an agent
    took them), agent (the last holder), reassignments (moves from one agent to another),
    call (capability id of a booked live call, else None).

``moves`` (sorted by ``at``, then the order they happened)
    ticket, at, from_agent, to_agent, source: every change of holder (``from_agent`` None: out
    of the team queue; ``to_agent`` None: back to it). ``source`` is ``arrival`` (the real-time
    router), ``dispatch`` (a batch policy's round), ``reoptimize`` (the periodic whole-queue
    optimization), ``absence`` (the holder went absent) or ``live_queue`` (a waiting live ticket
    offered to an agent who freed up).

``agents`` (sorted by ``interval_start``, ``agent``)
    interval_start, agent, team, skills, scheduled_minutes (in a shift, breaks excluded),
    available_minutes (of those, present: not absent), busy_minutes (of those, working a ticket
    or on a call). Occupancy = busy / available.

``calls`` (sorted by ``start``, ``call_id``)
    call_id, ticket, capability, booked_at, start, end, bound_agent (None: never bound),
    bound_at, rebinds (bound agent changed after binding), at_risk_at (first moment no agent
    could cover it), held (the call took place with a bound agent).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

import pandas as pd

TICKET_COLUMNS = (
    "id", "team", "channel", "skills", "priority", "created_at", "first_response_due",
    "resolution_due", "first_assigned_at", "first_response_at", "resolved_at", "abandoned_at",
    "agent", "reassignments", "call",
)  # fmt: skip
MOVE_COLUMNS = ("ticket", "at", "from_agent", "to_agent", "source")
AGENT_COLUMNS = (
    "interval_start", "agent", "team", "skills", "scheduled_minutes", "available_minutes",
    "busy_minutes",
)  # fmt: skip
CALL_COLUMNS = (
    "call_id", "ticket", "capability", "booked_at", "start", "end", "bound_agent", "bound_at",
    "rebinds", "at_risk_at", "held",
)  # fmt: skip
TIME_COLUMNS = frozenset({
    "created_at", "first_response_due", "resolution_due", "first_assigned_at",
    "first_response_at", "resolved_at", "abandoned_at", "at", "interval_start", "booked_at",
    "start", "end", "bound_at", "at_risk_at",
})  # fmt: skip


@dataclass(frozen=True)
class RunResult:
    """One replication of one world."""

    world: str
    seed: int
    replication: int
    start: datetime
    end: datetime
    interval_minutes: int
    tickets: pd.DataFrame
    moves: pd.DataFrame
    agents: pd.DataFrame
    calls: pd.DataFrame
    wall_seconds: float = 0.0
    events: int = 0  # discrete events the simulation handled (for events/s figures)


def skills_text(levels: Mapping[str, int]) -> str:
    """``{"de": 1, "net": 2}`` -> ``"de:1;net:2"`` (sorted, so stable across runs)."""
    return ";".join(f"{s}:{lvl}" for s, lvl in sorted(levels.items()))


def frame(rows: list[tuple[object, ...]], columns: tuple[str, ...]) -> pd.DataFrame:
    """A result table from row tuples: the listed columns, times as UTC datetimes."""
    df = pd.DataFrame.from_records(rows, columns=list(columns))
    for col in columns:
        if col in TIME_COLUMNS:
            df[col] = pd.to_datetime(df[col], utc=True)
    return df
