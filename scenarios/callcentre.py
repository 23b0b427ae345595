"""The single-skill call queue Erlang C and Erlang A describe, simulated on the event loop.

Calls arrive as a Poisson process, wait in one FIFO queue for ``agents`` identical agents and
are handled in exponential times; with ``patience_s`` each caller hangs up after an exponential
patience if no agent has taken them by then. This is the one setting where the simulation and
the formulas of :mod:`scenarios.erlang` must agree (issue 13's proof: service level within
0.02 at 300,000 calls), so it is kept apart from the support-floor simulator and kept fast.

Speed: every draw is made up front, vectorized, from the run's named streams
(:mod:`scenarios.rng`: inter-arrival times from ``arrivals``, handling times from ``efforts``,
patience from ``patience``), so a change of staffing keeps the same callers (common random
numbers). The loop holds at most one pending arrival and one completion per busy agent, and
abandonment costs no event: in a FIFO queue a caller who hung up only matters when an agent
would have taken them, so an agent who frees up skips the callers at the head of the queue
whose patience ran out before now (each counted as abandoned at that moment). The clock of
this loop is seconds.

The first ``warmup`` calls (default 2 % of ``calls``) fill the empty system and are not
measured; every later call is, up to ``calls`` of them.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import numpy as np

from scenarios.engine import EventLoop
from scenarios.rng import streams


@dataclass(frozen=True, slots=True, eq=False)
class QueueStats:
    """The measured calls of one run. ``waits`` holds the answered calls' waits (seconds, in
    arrival order); ``offered`` counts every measured call, ``abandoned`` those who hung up."""

    agents: int
    offered: int
    abandoned: int
    occupancy: float
    waits: np.ndarray = field(repr=False)

    @property
    def answered(self) -> int:
        return int(self.waits.size)

    def service_level(self, target_s: float) -> float:
        """Share of offered calls answered within ``target_s`` (abandoned calls count as
        missed, as in :func:`scenarios.erlang.erlang_a`)."""
        return float(np.count_nonzero(self.waits <= target_s)) / self.offered

    @property
    def asa(self) -> float:
        """Mean wait of answered calls (seconds)."""
        return float(self.waits.mean()) if self.waits.size else float("nan")

    @property
    def abandoned_share(self) -> float:
        return self.abandoned / self.offered

    @property
    def p_wait(self) -> float:
        """Share of offered calls that did not reach an agent at once."""
        return 1.0 - float(np.count_nonzero(self.waits == 0.0)) / self.offered


def simulate_queue(
    agents: int,
    calls_per_hour: float,
    aht_s: float,
    *,
    patience_s: float | None = None,
    calls: int = 300_000,
    seed: int,
    replication: int = 0,
    warmup: int | None = None,
) -> QueueStats:
    """Simulate ``calls`` measured calls (after ``warmup`` unmeasured ones) of an M/M/c queue
    (M/M/c+M with ``patience_s``)."""
    if isinstance(agents, bool) or not isinstance(agents, int) or agents < 1:
        raise ValueError(f"agents must be a whole number >= 1, not {agents!r}")
    if not calls_per_hour > 0:
        raise ValueError(f"calls_per_hour must be > 0, not {calls_per_hour!r}")
    if not aht_s > 0:
        raise ValueError(f"aht_s must be > 0, not {aht_s!r}")
    if patience_s is not None and not patience_s > 0:
        raise ValueError(f"patience_s must be > 0, not {patience_s!r}")
    if isinstance(calls, bool) or not isinstance(calls, int) or calls < 1:
        raise ValueError(f"calls must be a whole number >= 1, not {calls!r}")
    skip = max(0, calls // 50) if warmup is None else warmup
    if skip < 0:
        raise ValueError(f"warmup must be >= 0, not {warmup!r}")
    total = skip + calls
    rs = streams(seed, replication)
    arrive = np.cumsum(rs.arrivals.exponential(3600.0 / calls_per_hour, total)).tolist()
    handle = rs.efforts.exponential(aht_s, total).tolist()
    if patience_s is None:
        deadline = None
    else:
        deadline = (np.asarray(arrive) + rs.patience.exponential(patience_s, total)).tolist()

    loop = EventLoop()
    at = loop.at
    queue: deque[int] = deque()
    waits = [0.0] * total
    answered = [False] * total
    free = [agents]

    def complete(t: float, _: object) -> None:
        while queue:
            i = queue.popleft()
            if deadline is not None and deadline[i] < t:
                continue  # hung up before an agent could take them
            waits[i] = t - arrive[i]
            answered[i] = True
            at(t + handle[i], complete)
            return
        free[0] += 1

    def arrival(t: float, i: int) -> None:
        if i + 1 < total:
            at(arrive[i + 1], arrival, i + 1)
        if free[0]:
            free[0] -= 1
            answered[i] = True
            at(t + handle[i], complete)
        else:
            queue.append(i)

    at(arrive[0], arrival, 0)
    loop.run(float("inf"))

    got = np.asarray(answered[skip:], dtype=bool)
    measured_waits = np.asarray(waits[skip:])[got]
    busy = float(np.asarray(handle[skip:])[got].sum())
    span = arrive[-1] - (arrive[skip - 1] if skip else 0.0)
    return QueueStats(
        agents=agents,
        offered=calls,
        abandoned=int(calls - got.sum()),
        occupancy=min(1.0, busy / (agents * span)),
        waits=measured_waits,
    )
