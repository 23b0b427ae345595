"""The production simulator on the queue Erlang C and Erlang A describe.

:mod:`scenarios.callcentre` simulates that queue on its own, fast; this module asks the *whole*
support-floor simulator (:func:`scenarios.sim.simulate`: the production real-time router, the
live-channel queue re-offered as agents free up, hang-ups) the same question, so the planner's
simulation itself is held to the formulas where both apply:

- one skill, one team, ``agents`` identical agents on duty around the clock, each holding one
  call at a time (``capacity`` 1): the router gives a call to a free agent at once, else it
  waits in the team's queue and is offered, most urgent then oldest first (FIFO at one
  priority), to the next agent who frees up;
- Poisson arrivals (``calls_per_hour`` in every hour), exponential handling times with mean
  ``aht_s`` (worked to the second, ``effort_distribution: exponential``);
- with ``patience_s``, exponential patience: Erlang A.

:func:`measure` returns the service level within ``target_s`` of every call offered (abandoned
calls count as missed, as in :func:`scenarios.erlang.erlang_a`), from the tickets' waits: a
call still waiting when the run ends counts as missed, an edge effect of one wait in a
simulated day. ``python -m benchmarks.scenarios --erlang`` runs it at 300,000 calls.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, time

from scenarios.model import AgentPlan, Demand, Routing, ShiftPattern, VolumeRow, World
from scenarios.sim import simulate
from solver.problem import Skill, Team

START = datetime(2026, 1, 5, tzinfo=UTC)


def erlang_world(
    agents: int,
    calls_per_hour: float,
    aht_s: float,
    *,
    calls: int,
    patience_s: float | None = None,
) -> World:
    """The queue as a :class:`World` of whole days holding at least ``calls`` expected calls."""
    if agents < 1 or calls_per_hour <= 0 or aht_s <= 0 or calls < 1:
        raise ValueError("agents, calls_per_hour, aht_s and calls must be positive")
    days = max(1, math.ceil(calls / (calls_per_hour * 24)))
    always = ShiftPattern(tuple(range(7)), time(0), time(0))  # 24 h, every day
    return World(
        name=f"M/M/{agents}" + ("+M" if patience_s is not None else ""),
        start=START,
        days=days,
        skills=(Skill("phone"),),
        teams=(Team("line"),),
        agents=tuple(
            AgentPlan(
                id=f"a{i:04d}", team="line", skills={"phone": 1}, shifts=(always,), capacity=1
            )
            for i in range(agents)
        ),
        demand=Demand(
            volume=tuple(
                VolumeRow(
                    team="line",
                    channel="phone",
                    hour=h,
                    per_hour=float(calls_per_hour),
                    required_skills={"phone": 1},
                    effort_minutes=aht_s / 60,
                    effort_distribution="exponential",
                )
                for h in range(24)
            )
        ),
        routing=Routing(
            policy="realtime", patience_minutes=None if patience_s is None else patience_s / 60
        ),
    )


@dataclass(frozen=True, slots=True)
class Measured:
    calls: int
    service_level: float
    abandoned: float
    asa_s: float


def measure(world: World, *, target_s: float, seed: int) -> Measured:
    """Simulate ``world`` and measure its calls (see the module docstring)."""
    tickets = simulate(world, seed=seed).tickets
    wait = (tickets.first_response_at - tickets.created_at).dt.total_seconds()
    answered = wait.dropna()
    n = len(tickets)
    return Measured(
        calls=n,
        service_level=float((answered <= target_s).sum()) / n,
        abandoned=float(tickets.abandoned_at.notna().sum()) / n,
        asa_s=float(answered.mean()) if len(answered) else float("nan"),
    )
