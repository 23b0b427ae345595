"""Working time: each agent's shifts minus their busy time, as integer minutes.

Work in Switchboard is *preemptive across breaks*: a ticket that is not done when a shift ends
continues at the start of the agent's next working window. So an agent's working time is a
monotone clock; "w minutes of work done" maps to one wall-clock minute and back. This module
holds that clock for every agent at once in flat numpy arrays, so a lookup for many (agent,
work) pairs is one ``searchsorted`` — which is what keeps the real-time path in microseconds.

Minutes are counted from the problem's ``now`` (minute 0) to its horizon end (minute ``H``);
nothing before now or after the horizon is working time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import TypeVar

import numpy as np
import numpy.typing as npt

from solver.problem import Agent, AgentStatus, Interval, Problem
from solver.timegrid import to_minute, to_minute_ceil

AGENT_STRIDE = np.int64(1) << np.int64(40)  # agent stride in flat keys; far above any horizon

IntArray = npt.NDArray[np.int64]


def merge_spans(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    spans = sorted(s for s in spans if s[1] > s[0])
    out: list[tuple[int, int]] = []
    for s, e in spans:
        if out and s <= out[-1][1]:
            if e > out[-1][1]:
                out[-1] = (out[-1][0], e)
        else:
            out.append((s, e))
    return out


T = TypeVar("T", int, float)


def subtract_spans(base: Sequence[tuple[T, T]], cut: Sequence[tuple[T, T]]) -> list[tuple[T, T]]:
    """``base`` minus ``cut``: what of the spans in ``base`` no span of ``cut`` covers. Both are
    sorted by start and ``base`` is disjoint (``cut`` may overlap itself). Minutes here; the
    planner's simulator uses it on float minutes."""
    out: list[tuple[T, T]] = []
    j = 0
    for s, e in base:
        cur = s
        while j < len(cut) and cut[j][1] <= cur:
            j += 1
        k = j
        while k < len(cut) and cut[k][0] < e:
            cs, ce = cut[k]
            if cs > cur:
                out.append((cur, cs))
            cur = max(cur, ce)
            k += 1
        if cur < e:
            out.append((cur, e))
    return out


def working_windows(
    shifts: Sequence[Interval],
    busy: Sequence[Interval],
    origin: object,
    horizon: int,
) -> list[tuple[int, int]]:
    """Shifts minus busy time, clipped to ``[0, horizon)``, as sorted disjoint minute spans.

    Shift edges round inward and busy edges round outward, so a partial minute is never
    counted as working time.
    """
    from datetime import datetime

    assert isinstance(origin, datetime)
    base = merge_spans(
        [
            (max(0, to_minute_ceil(s.start, origin)), min(horizon, to_minute(s.end, origin)))
            for s in shifts
        ]
    )
    cut = merge_spans(
        [
            (max(0, to_minute(b.start, origin)), min(horizon, to_minute_ceil(b.end, origin)))
            for b in busy
        ]
    )
    return subtract_spans(base, cut)


def agent_windows(agent: Agent, problem: Problem) -> list[tuple[int, int]]:
    if agent.status is not AgentStatus.AVAILABLE:
        return []
    return working_windows(agent.shifts, agent.busy, problem.now, problem.horizon_minutes)


@dataclass(frozen=True)
class CalendarBank:
    """Every agent's working windows, flattened: window ``k`` belongs to ``owner[k]``.

    ``cum_end[k]`` is the agent's working minutes up to the end of window ``k``; ``total[a]`` is
    agent ``a``'s working minutes in the horizon.
    """

    horizon: int
    starts: IntArray
    ends: IntArray
    owner: IntArray
    cum_end: IntArray
    total: IntArray
    first: IntArray  # index of agent a's first window (== first of a+1 when it has none)

    @classmethod
    def build(cls, problem: Problem) -> CalendarBank:
        return cls.from_windows(
            [agent_windows(a, problem) for a in problem.agents], problem.horizon_minutes
        )

    @classmethod
    def from_windows(
        cls, windows: Sequence[Sequence[tuple[int, int]]], horizon: int
    ) -> CalendarBank:
        n = len(windows)
        counts = np.fromiter((len(w) for w in windows), dtype=np.int64, count=n)
        first = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(counts, out=first[1:])
        flat = [span for w in windows for span in w]
        if flat:
            arr = np.asarray(flat, dtype=np.int64)
            starts, ends = arr[:, 0].copy(), arr[:, 1].copy()
        else:
            starts = np.zeros(0, dtype=np.int64)
            ends = np.zeros(0, dtype=np.int64)
        owner = np.repeat(np.arange(n, dtype=np.int64), counts)
        lengths = ends - starts
        cum = np.cumsum(lengths)
        # Cumulative work restarts at every agent: subtract what came before its first window.
        before_agent = np.concatenate(([0], cum))[first[:-1]]
        cum_end = cum - np.repeat(before_agent, counts)
        total = np.zeros(n, dtype=np.int64)
        has = counts > 0
        total[has] = cum_end[first[1:][has] - 1]
        return cls(horizon, starts, ends, owner, cum_end, total, first)

    @property
    def n_agents(self) -> int:
        return len(self.total)

    @cached_property
    def clock(self) -> Clock:
        """The work-to-wall clock with its search keys built once (for hot loops)."""
        return Clock(self)

    def finish_minute(self, agents: npt.ArrayLike, work: npt.ArrayLike) -> IntArray:
        """Wall minute at which ``work`` (>= 1) working minutes are complete, per agent.

        Work beyond the agent's horizon total is extrapolated past the horizon end, minute for
        minute (so lateness stays defined for overloaded plans; validation flags the overflow).
        """
        a = np.asarray(agents, dtype=np.int64)
        return self.clock.finish(a, np.asarray(work, dtype=np.int64))

    def start_minute(self, agents: npt.ArrayLike, work: npt.ArrayLike) -> IntArray:
        """Wall minute at which work resumes after ``work`` working minutes are done."""
        a = np.asarray(agents, dtype=np.int64)
        return self.clock.start(a, np.asarray(work, dtype=np.int64))

    def work_before(self, agents: npt.ArrayLike, minute: npt.ArrayLike) -> IntArray:
        """Working minutes agent has in ``[0, minute)``."""
        a = np.asarray(agents, dtype=np.int64)
        t = np.asarray(minute, dtype=np.int64)
        res = np.zeros(np.broadcast(a, t).shape, dtype=np.int64)
        a, t = np.broadcast_arrays(a, t)
        for idx in np.ndindex(res.shape):
            ai, ti = int(a[idx]), int(t[idx])
            lo, hi = int(self.first[ai]), int(self.first[ai + 1])
            s = self.starts[lo:hi]
            e = self.ends[lo:hi]
            res[idx] = int(np.clip(np.minimum(e, ti) - s, 0, None).sum())
        return res

    def windows_of(self, agent: int) -> list[tuple[int, int]]:
        lo, hi = int(self.first[agent]), int(self.first[agent + 1])
        return list(zip(self.starts[lo:hi].tolist(), self.ends[lo:hi].tolist(), strict=True))

    def working_at(self, minute: int) -> npt.NDArray[np.bool_]:
        """Which agents are in a working window at ``minute``."""
        inside = (self.starts <= minute) & (minute < self.ends)
        out = np.zeros(self.n_agents, dtype=bool)
        out[self.owner[inside]] = True
        return out


class Clock:
    """A bank's work-to-wall clock with its search keys built once (the hot loops' lookups)."""

    def __init__(self, bank: CalendarBank) -> None:
        self.keys = bank.owner * AGENT_STRIDE + bank.cum_end
        self.off = bank.starts - (bank.cum_end - (bank.ends - bank.starts))  # breaks before
        self.next_first = bank.first[1:]
        self.first = bank.first[:-1]
        self.start_keys = bank.owner * AGENT_STRIDE + bank.starts
        self.starts = bank.starts
        self.cs = bank.cum_end - (bank.ends - bank.starts)  # work done before each window
        self.lengths = bank.ends - bank.starts
        self.horizon = bank.horizon
        self.total = bank.total
        self.empty = len(bank.owner) == 0

    def _at(self, a: IntArray, w: IntArray, side: str) -> IntArray:
        overflow = self.horizon + (w - self.total[a])
        if self.empty:
            return overflow
        k = np.searchsorted(self.keys, a * AGENT_STRIDE + w, side=side)  # type: ignore[call-overload]
        valid = k < self.next_first[a]
        return np.where(valid, self.off[np.where(valid, k, 0)] + w, overflow)

    def start(self, agents: IntArray, done: IntArray) -> IntArray:
        """Wall minute at which work resumes after ``done`` working minutes."""
        return self._at(agents, done, "right")

    def finish(self, agents: IntArray, done: IntArray) -> IntArray:
        """Wall minute at which ``done`` (>= 1) working minutes are complete."""
        return self._at(agents, done, "left")

    def work_before(self, agents: IntArray, minutes: IntArray) -> IntArray:
        """Working minutes each agent has in ``[0, minute)`` (vectorized bank.work_before)."""
        if self.empty:
            return np.zeros(np.broadcast(agents, minutes).shape, dtype=np.int64)
        m = np.maximum(minutes, 0)
        k = np.searchsorted(self.start_keys, agents * AGENT_STRIDE + m, side="right") - 1
        inside = k >= self.first[agents]
        kk = np.where(inside, k, 0)
        done = self.cs[kk] + np.minimum(m - self.starts[kk], self.lengths[kk])
        return np.where(inside, done, 0).astype(np.int64)


def bank_for(problem: Problem) -> CalendarBank:
    """The problem's CalendarBank, built once and cached on the (immutable) problem."""
    cache = problem.__dict__
    bank = cache.get("_calendar_bank")
    if bank is None:
        bank = CalendarBank.build(problem)
        cache["_calendar_bank"] = bank
    return bank
