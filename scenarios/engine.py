"""The discrete-event loop every simulation here runs on: a binary heap of timed events.

Why a heap and not SimPy: a support floor's events are few kinds of plain callbacks (an arrival,
a completion, a shift boundary, a re-optimization tick), not long-lived processes that wait on
resources, so SimPy's generators, event objects and callbacks are overhead without a use here.
``python -m benchmarks.scenarios --engines`` runs the same M/M/c queue on both and prints the
ratio (figures in ``benchmarks/README.md``).

Time is float minutes since the run's start. Events at the same time run in the order they were
scheduled (a sequence number breaks ties), so a run is a pure function of its inputs and seed.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable
from typing import Any

Handler = Callable[[float, Any], None]


class EventLoop:
    """``at(t, handler, payload)`` schedules; ``run(until)`` calls each handler with
    ``(t, payload)`` in time order. A handler may schedule more events (not in the past)."""

    __slots__ = ("_heap", "_seq", "now", "processed")

    def __init__(self) -> None:
        self.now = 0.0
        self.processed = 0  # events handled so far (benchmarks report events per second)
        self._heap: list[tuple[float, int, Handler, Any]] = []
        self._seq = itertools.count()

    def at(self, t: float, handler: Handler, payload: Any = None) -> None:
        if t < self.now:
            raise ValueError(f"cannot schedule at {t} before now ({self.now})")
        heapq.heappush(self._heap, (t, next(self._seq), handler, payload))

    def after(self, delay: float, handler: Handler, payload: Any = None) -> None:
        self.at(self.now + delay, handler, payload)

    def __len__(self) -> int:
        return len(self._heap)

    def run(self, until: float) -> None:
        """Run every event at a time ``< until``; ``now`` ends at ``until``."""
        heap = self._heap
        pop = heapq.heappop
        done = 0
        while heap and heap[0][0] < until:
            t, _, handler, payload = pop(heap)
            self.now = t
            handler(t, payload)
            done += 1
        self.processed += done
        self.now = max(self.now, until)
