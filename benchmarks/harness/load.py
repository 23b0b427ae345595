"""The load driver of the HTTP benchmarks and what one run measured: ``concurrency`` keep-alive
clients in this process (closed or open loop) against a running server, and the
:class:`RunResult` its figures are read from."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import itertools
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
import numpy as np
from httptools import HttpParserError

from benchmarks.harness.cpu import Measures, Probe, bucket_percentile
from benchmarks.harness.routes import ASSIGN_PATH
from benchmarks.loadclient import KeepAliveClient

# Outcomes of a request: an agent took the ticket, or (still a 200) it stayed in its team's
# queue because nobody qualified had room; anything else is an error.
ASSIGNED = "200"
QUEUED = "200 queued"
SUCCESS = (ASSIGNED, QUEUED)

# Issue 4's target: >= 500 assignments/s with p99 <= 50 ms at 32 concurrent clients on
# PostgreSQL (200 agents, 2 cores).
TARGET_RATE = 500.0  # assignments per second
TARGET_P99_MS = 50.0
TARGET_CONCURRENCY = 32
TARGET_BACKEND = "postgresql"


@dataclass
class RunResult:
    backend: str
    workers: int
    concurrency: int
    latencies_ms: np.ndarray
    elapsed_s: float
    statuses: Counter[str] = field(default_factory=Counter)
    cpu: Measures | None = None
    offered_rate: float | None = None  # open loop: the rate requests fell due at
    # The bare authenticated GET (BASELINE_PATH) the same clients sent to the same server for
    # the same duration right after this run (closed loop only; None when not measured).
    baseline: RunResult | None = None

    @classmethod
    def combined(cls, runs: Sequence[RunResult]) -> RunResult:
        """Runs of one configuration (the rounds of a before/after sitting) read as one run:
        latencies pooled; time, outcomes and CPU summed. Baselines are not carried over."""
        first = runs[0]
        statuses: Counter[str] = Counter()
        for r in runs:
            statuses.update(r.statuses)
        cpu: Measures | None = None
        for r in runs:
            if r.cpu is None:
                cpu = None
                break
            cpu = r.cpu if cpu is None else cpu.plus(r.cpu)
        return cls(
            first.backend,
            first.workers,
            first.concurrency,
            np.concatenate([r.latencies_ms for r in runs]),
            sum(r.elapsed_s for r in runs),
            statuses,
            cpu,
            first.offered_rate,
        )

    def cpu_ratio(self) -> float:
        """Server CPU per assignment over server CPU per baseline GET (NaN when unmeasured)."""
        if self.baseline is None:
            return float("nan")
        get_ms = self.baseline.cpu_ms_per_request("server")
        return self.cpu_ms_per_request("server") / get_ms if get_ms > 0 else float("nan")

    def throughput_ratio(self) -> float:
        """Assignments/s over baseline GETs/s at the same concurrency (NaN when unmeasured)."""
        if self.baseline is None or self.baseline.throughput <= 0:
            return float("nan")
        return self.throughput / self.baseline.throughput

    def cpu_ms_per_request(self, part: str) -> float:
        """CPU milliseconds per answered request spent by ``part`` (a :class:`Measures` field,
        or "others": the rest of the machine, in cores busy on average)."""
        if self.cpu is None or not self.ok:
            return float("nan")
        if part == "others":
            ours = self.cpu.server + self.cpu.database + self.cpu.client
            return max(0.0, self.cpu.machine - ours) / self.elapsed_s
        return float(getattr(self.cpu, part)) / self.ok * 1000.0

    def cpu_ceiling(self, cores: int = 2) -> float:
        """Assignments/s ``cores`` would sustain at this run's CPU cost per assignment (server,
        database and load generator together), if they had the cores to themselves and kept
        them all busy: a load-independent view of how far the target is on this machine."""
        parts = [self.cpu_ms_per_request(p) for p in ("server", "database", "client")]
        total = sum(p for p in parts if p == p)  # NaN-safe
        return cores * 1000.0 / total if total > 0 else float("nan")

    @property
    def load(self) -> str:
        """How the load was offered: "closed" or "<rate>/s open"."""
        return f"{self.offered_rate:.0f}/s open" if self.offered_rate else "closed"

    @property
    def ok(self) -> int:
        return sum(self.statuses.get(k, 0) for k in SUCCESS)

    @property
    def queued(self) -> int:
        return int(self.statuses.get(QUEUED, 0))

    @property
    def errors(self) -> int:
        return sum(n for status, n in self.statuses.items() if status not in SUCCESS)

    @property
    def throughput(self) -> float:
        return self.ok / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def percentile(self, q: float) -> float:
        if self.latencies_ms.size == 0:
            return float("nan")
        return float(np.percentile(self.latencies_ms, q))

    def server_percentile(self, q: float) -> float:
        """The server's own latency percentile (its /metrics histogram, interpolated), NaN
        when not measured (several workers: a scrape sees one of them)."""
        if self.cpu is None or not self.cpu.server_latency:
            return float("nan")
        return bucket_percentile(self.cpu.server_latency, q)

    @property
    def meets_target(self) -> bool:
        fast = self.percentile(99) <= TARGET_P99_MS
        if self.offered_rate:
            # Open loop: the rate was offered; the server met it if it answered everything
            # (the last answers land after the window closes, hence the measured rate's slack).
            return (
                self.offered_rate >= TARGET_RATE
                and self.errors == 0
                and self.throughput >= 0.95 * self.offered_rate
                and fast
            )
        return self.throughput >= TARGET_RATE and fast


async def drive(
    base: str,
    key: str,
    ticket_ids: Sequence[str],
    *,
    concurrency: int,
    duration: float,
    warmup: int = 0,
    transport: httpx.AsyncBaseTransport | None = None,
    probe: Probe | None = None,
    rate: float | None = None,
    client: str = "raw",
    get_path: str | None = None,
) -> tuple[np.ndarray, float, Counter[str], Measures | None]:
    """``concurrency`` clients over fresh tickets from ``ticket_ids``, until ``duration``
    seconds or the tickets run out; with ``get_path``, every request is instead ``GET
    get_path`` (the baseline read; ``ticket_ids`` unused, the run lasts ``duration``).

    Closed loop (``rate`` None): each client sends its next request as soon as the last one
    answers, so throughput and latency are tied (mean latency = clients / throughput). Open
    loop (``rate`` per second): requests fall due at a fixed rate and each goes out on the next
    free client; its latency counts from when it fell due, so time spent waiting for a client
    when the server falls behind counts too (no coordinated omission).

    Returns per-request latencies (ms, successful ones), wall time, and a count by outcome
    (:data:`ASSIGNED`, :data:`QUEUED`, another HTTP status, or the exception's name).
    ``warmup`` dry-run assignments first fill each server process's caches without using up
    tickets. ``client`` picks the HTTP client: "raw" (``benchmarks.loadclient``, ~0.1 ms CPU
    per request) or "httpx" (~0.6-1.3 ms); ``transport`` replaces the network with an httpx
    transport (the smoke test drives the app in-process) and implies httpx.
    ``probe`` measures CPU time (and the server's latency) over the run, after the warm-up.
    """
    headers = {"Authorization": f"Bearer {key}"}
    async with contextlib.AsyncExitStack() as stack:
        clients: list[Any]
        if transport is None and client == "raw":
            clients = [
                await stack.enter_async_context(KeepAliveClient(base, headers))
                for _ in range(concurrency)
            ]
        else:
            # One pooled client per simulated client, each keeping its one connection alive:
            # httpx's pool does work in proportion to its connections on every request, and
            # one shared pool of 32 cost this generator ~5 ms CPU per request against ~1.6 ms
            # this way (measured).
            limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
            clients = [
                await stack.enter_async_context(
                    httpx.AsyncClient(
                        base_url=base,
                        headers=headers,
                        limits=limits,
                        timeout=30.0,
                        transport=transport,
                    )
                )
                for _ in range(concurrency)
            ]
        # This process imported the whole service to seed it: a full collection of its heap
        # stops every in-flight request's clock for 100-200 ms (measured with gc callbacks),
        # a client pause the p99 would blame on the server. Freeze the heap for the run, before
        # the warm-up opens the connections: a large heap (a test session's) can take longer to
        # collect than the server keeps an idle connection (uvicorn: 5 s), which then closes.
        gc.collect()
        gc.freeze()
        if warmup and get_path is not None:
            await asyncio.gather(*(clients[i % concurrency].get(get_path) for i in range(warmup)))
        elif warmup:
            warm = ASSIGN_PATH.format(ticket_id=ticket_ids[0])
            await asyncio.gather(
                *(
                    clients[i % concurrency].post(warm, json={"dry_run": True})
                    for i in range(warmup)
                )
            )
        pending: Iterator[str] = iter(ticket_ids) if get_path is None else itertools.repeat("")
        latencies: list[float] = []
        outcomes: Counter[str] = Counter()
        if probe is not None:
            probe.start()
        started = time.perf_counter()
        deadline = started + duration

        async def send(client: Any, ticket_id: str, since: float) -> None:
            try:
                if get_path is not None:
                    r = await client.get(get_path)
                else:
                    r = await client.post(ASSIGN_PATH.format(ticket_id=ticket_id))
                took = (time.perf_counter() - since) * 1000.0
                outcome = str(r.status_code)
                if get_path is None and r.status_code == 200 and r.json().get("agent") is None:
                    outcome = QUEUED
            except (httpx.HTTPError, OSError, HttpParserError) as exc:
                took, outcome = float("nan"), type(exc).__name__
            outcomes[outcome] += 1
            if outcome in SUCCESS:
                latencies.append(took)

        async def client_loop(client: Any) -> None:
            for ticket_id in pending:
                t0 = time.perf_counter()
                if t0 >= deadline:
                    return
                await send(client, ticket_id, t0)

        async def open_loop(per_second: float) -> None:
            free: asyncio.Queue[Any] = asyncio.Queue()
            for c in clients:
                free.put_nowait(c)

            async def one(ticket_id: str, due: float) -> None:
                client = await free.get()
                try:
                    await send(client, ticket_id, due)
                finally:
                    free.put_nowait(client)

            tasks = []
            for i, ticket_id in enumerate(pending):
                due = started + i / per_second
                if due >= deadline:
                    break
                if (wait := due - time.perf_counter()) > 0:
                    await asyncio.sleep(wait)
                tasks.append(asyncio.create_task(one(ticket_id, due)))
            await asyncio.gather(*tasks)

        try:
            if rate:
                await open_loop(rate)
            else:
                await asyncio.gather(*(client_loop(c) for c in clients))
        finally:
            gc.unfreeze()
        elapsed = time.perf_counter() - started
        cpu = probe.stop() if probe is not None else None
    return np.asarray(latencies), elapsed, outcomes, cpu


def client_loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop for the load generator when installed (~10-20 % less CPU per request, measured;
    uvicorn picks it for the server on its own); the standard loop otherwise."""
    try:
        import uvloop
    except ImportError:
        return None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory
