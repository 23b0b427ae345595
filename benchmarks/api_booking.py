"""Benchmark of the booking endpoints over HTTP: ``python -m benchmarks.api_booking``.

For each backend (``--backends``: a SQLite temp file; PostgreSQL database ``switchboard_bench``
on 127.0.0.1:5432, dropped and re-created, guarded against a concurrent run — the same database
and guard as ``benchmarks.api``, so the two never run at once) it seeds, through the service
layer, the tenant of ``benchmarks.api`` (200 agents with skills and three ten-hour shifts from
an hour ago, :func:`benchmarks.harness.seed.seed_tenant`) plus two capabilities matching the
seeded skills and a planner key. It starts the real service in a subprocess
(:func:`benchmarks.harness.server.serve`, one worker by default), books ``--calls`` calls
through the API (each: GET slots, POST a booking at a random offered start for a fresh ticket),
then measures from this process with the lean keep-alive client (``benchmarks.loadclient``):

- **slots, warm**: ``GET /v1/capabilities/{id}/slots`` (the customer-facing hot path; one
  capability, the coming week, a customer in Europe/Berlin), closed loop at 1 and 8 clients for
  ``--duration`` seconds each. Each run starts right after an organisation change and one
  priming query, so the per-tenant cache (:mod:`api.bookings.cache`) was built at a
  known moment and its 60 s wall-time backstop cannot fire inside a run shorter than that
  (with ``--workers N`` each worker has its own cache: 4N priming queries on as many
  connections usually reach them all, which the kernel's balancing does not promise);
- **slots, cold**: the same query right after an organisation change, sequentially
  (``--cold`` times): the changes alternate between setting an agent away, adding a busy
  interval and setting the agent available again, all through the API (planner key). Each
  change bumps the organisation version, so each measured query rebuilds the cache. The change
  requests are timed as a row of their own; the warm/cold ratio (p50 and p99) is printed;
- **POST booking**: ``--bookings`` bookings, sequentially, each at a random start of a fresh
  slots answer (not timed) for a fresh ticket. 409s are counted on their own: a slot taken
  between the answer and the booking is a legitimate race, not an error.

Per row: answered, 409s, errors, requests/s (closed-loop rows only: the sequential rows
interleave untimed requests), p50/p99/max as the client saw them, and CPU milliseconds per
answered request of the server processes, the PostgreSQL backends and this process
(:class:`benchmarks.harness.cpu.Probe`; the sequential rows sum one probe window per timed request).
Then a one-line summary. Nothing here asserts on time; the load generator shares the machine's
cores with the server (and, on a shared machine, with everyone else): re-run before trusting a
figure.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import gc
import random
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np
from httptools import HttpParserError
from rich.console import Console
from rich.table import Table

from api.db.engine import make_engine, make_session_factory
from api.enums import Scope
from api.keys import service as api_keys
from api.org.capabilities import service as capabilities
from api.org.capabilities.schemas import CapabilityCreate
from api.policies import service as policies
from api.policies.schemas import CapabilityCoverage, Policies
from api.settings import Environment, Settings
from benchmarks.harness import seed
from benchmarks.harness.cli import backend_list, ints
from benchmarks.harness.cpu import Measures, Probe
from benchmarks.harness.databases import PG_BENCH_DB, pg_exclusive, postgres_backends
from benchmarks.harness.load import client_loop_factory
from benchmarks.harness.report import machine_note
from benchmarks.harness.seed import Seeded
from benchmarks.harness.server import serve
from benchmarks.loadclient import KeepAliveClient, Response

# Two capabilities over the seeded skills (benchmarks.harness.seed.seed_tenant): a broad pool
# (about 80 of 200 agents) and a narrow one (tier 2 is every fifth agent: about 15 qualify).
# They share agents, as capabilities do. The hot path queries the first.
CAPABILITIES = (
    CapabilityCreate(
        id="billing-en", name="Billing, English", requirements={"billing": 2, "lang:en": 3}
    ),
    CapabilityCreate(
        id="technical-tier2",
        name="Technical, tier 2",
        requirements={"technical": 2, "tier:2": 3},
    ),
)
HOT_CAPABILITY = CAPABILITIES[0].id
CUSTOMER_TZ = "Europe/Berlin"
BOOK_PATH = "/v1/bookings"

WARM = "slots, warm"
COLD = "slots, cold"
CHANGE = "org change"
BOOK = "POST booking"
NO_SLOT = "no slot offered"  # a booking attempt whose slots answer was empty


def slots_path(capability_id: str, tz: str = CUSTOMER_TZ) -> str:
    return f"/v1/capabilities/{capability_id}/slots?tz={quote(tz, safe='')}"


# --------------------------------------------------------------------------- setup


@dataclass(frozen=True)
class Setup:
    """What a run books against: the seeded tenant, a planner key for organisation changes and
    the capability ids."""

    seeded: Seeded
    planner_key: str
    capability_ids: tuple[str, ...]


# The seeded tickets ask for random skills that the two capabilities do not always cover, and
# each gets one call: what is measured is the booking engine, so the tenant books them with a
# warning (capability_coverage ``warn``) rather than refusing them as the default policy does.
POLICIES = Policies(capability_coverage=CapabilityCoverage.WARN)


def add_capabilities(settings: Settings, tenant_id: str, *, now: datetime) -> str:
    """The capabilities of :data:`CAPABILITIES`, the tenant's :data:`POLICIES` and a planner
    key, through the service layer; returns the key."""
    engine = make_engine(settings)
    try:
        with make_session_factory(engine)() as session:
            policies.replace(session=session, tenant_id=tenant_id, data=POLICIES, now=now)
            for data in CAPABILITIES:
                capabilities.create(session=session, tenant_id=tenant_id, data=data, now=now)
            _, planner_key = api_keys.create(
                session=session,
                tenant_id=tenant_id,
                name="benchmark planner",
                scopes=[Scope.ADMIN],  # organisation writes need admin (issue 13)
                now=now,
            )
            session.commit()
    finally:
        engine.dispose()
    return planner_key


def prepare(
    backend: str,
    workdir: Path,
    *,
    n_agents: int,
    n_tickets: int,
    now: datetime,
    pg_database: str = PG_BENCH_DB,
) -> tuple[str, Setup]:
    """A migrated database of ``backend`` seeded as ``benchmarks.api`` seeds it, plus the
    capabilities and a planner key: (its URL, the :class:`Setup`)."""
    url, seeded = seed.prepare(
        backend,
        workdir,
        n_agents=n_agents,
        n_tickets=n_tickets,
        now=now,
        pg_database=pg_database,
    )
    settings = Settings(database_url=url, environment=Environment.TEST)
    planner_key = add_capabilities(settings, seeded.tenant_id, now=now)
    return url, Setup(seeded, planner_key, tuple(c.id for c in CAPABILITIES))


# --------------------------------------------------------------------------- results


@dataclass
class PhaseResult:
    """One row: what ``clients`` clients measured for ``measure`` on ``backend``."""

    backend: str
    measure: str
    clients: int
    latencies_ms: np.ndarray  # of the successful (2xx) answers
    statuses: Counter[str] = field(default_factory=Counter)
    elapsed_s: float | None = None  # closed-loop runs only: then throughput means something
    cpu: Measures | None = None

    @property
    def ok(self) -> int:
        return sum(n for status, n in self.statuses.items() if status.startswith("2"))

    @property
    def conflicts(self) -> int:
        return int(self.statuses.get("409", 0))

    @property
    def errors(self) -> int:
        return sum(self.statuses.values()) - self.ok - self.conflicts

    @property
    def answered(self) -> int:
        return self.ok + self.conflicts

    @property
    def throughput(self) -> float:
        if not self.elapsed_s:
            return float("nan")
        return self.ok / self.elapsed_s

    def percentile(self, q: float) -> float:
        if self.latencies_ms.size == 0:
            return float("nan")
        return float(np.percentile(self.latencies_ms, q))

    def cpu_ms_per_request(self, part: str) -> float:
        """CPU ms per answered request (409s included: they cost the same work) of ``part``: a
        :class:`benchmarks.harness.cpu.Measures` field."""
        if self.cpu is None or not self.answered:
            return float("nan")
        return float(getattr(self.cpu, part)) / self.answered * 1000.0


@dataclass
class BackendRun:
    backend: str
    results: list[PhaseResult]
    prebooked: Counter[str]  # outcomes of the set-up bookings


class Windows:
    """Sums a :class:`benchmarks.harness.cpu.Probe` over many short windows, one per timed request
    of a sequential phase (CPU is read in clock ticks: per window coarse, summed unbiased). This
    process's CPU is read around the request alone: the probe's own reading of /proc would
    otherwise be most of it."""

    def __init__(self, probe: Probe | None) -> None:
        self.probe = probe
        self.total: Measures | None = None
        self._client0 = 0.0

    def start(self) -> None:
        if self.probe is not None:
            self.probe.start()
            self._client0 = time.process_time()

    def stop(self) -> None:
        if self.probe is not None:
            client = time.process_time() - self._client0
            measured = dataclasses.replace(self.probe.stop(), client=client)
            self.total = measured if self.total is None else self.total.plus(measured)


def _fixed(pids: Callable[[], set[int]] | None) -> Callable[[], set[int]] | None:
    """The database backends as they are now: read once per sequential phase instead of once
    per window (each read opens a connection). A sequential client uses one pooled connection;
    a backend opened later would be missed (an undercount)."""
    if pids is None:
        return None
    now = pids()
    return lambda: now


def _outcome(r: Response) -> str:
    return str(r.status_code)


_FAILURES = (OSError, HttpParserError)  # loadclient.ConnectionClosed is an OSError


# --------------------------------------------------------------------------- phases


async def book_calls(
    client: KeepAliveClient,
    ticket_ids: Sequence[str],
    capability_ids: Sequence[str],
    *,
    rng: random.Random,
    windows: Windows | None = None,
) -> tuple[list[float], Counter[str]]:
    """One booking per ticket, in turn: GET the slots of the next capability (not timed), then
    POST a booking at a random offered start (timed, and probed with ``windows``). Returns the
    latencies (ms) of the 201s and the outcomes by status (:data:`NO_SLOT` when the answer was
    empty)."""
    latencies: list[float] = []
    outcomes: Counter[str] = Counter()
    for i, ticket_id in enumerate(ticket_ids):
        capability_id = capability_ids[i % len(capability_ids)]
        try:
            answer = await client.get(slots_path(capability_id))
        except _FAILURES as exc:
            outcomes[f"slots: {type(exc).__name__}"] += 1
            continue
        if answer.status_code != 200:
            outcomes[f"slots: {answer.status_code}"] += 1
            continue
        offered = answer.json()["slots"]
        if not offered:
            outcomes[NO_SLOT] += 1
            continue
        body = {
            "capability_id": capability_id,
            "ticket_id": ticket_id,
            "start": rng.choice(offered)["start"],
            "tz": CUSTOMER_TZ,
        }
        if windows is not None:
            windows.start()
        t0 = time.perf_counter()
        try:
            r = await client.post(BOOK_PATH, json=body)
            took, outcome = (time.perf_counter() - t0) * 1000.0, _outcome(r)
        except _FAILURES as exc:
            took, outcome = float("nan"), type(exc).__name__
        if windows is not None:
            windows.stop()
        outcomes[outcome] += 1
        if outcome == "201":
            latencies.append(took)
    return latencies, outcomes


def org_change(i: int, agent_ids: Sequence[str]) -> tuple[str, str, dict[str, Any]]:
    """The ``i``-th organisation change: (method, path, body). Cycles through setting an agent
    away, giving them half an hour of busy time three hours from now, and setting them
    available again; the next cycle takes another agent."""
    agent = agent_ids[(i // 3 * 7) % len(agent_ids)]
    step = i % 3
    if step == 1:
        start = datetime.now(UTC).replace(second=0, microsecond=0) + timedelta(hours=3)
        body = {
            "agent": agent,
            "start": start.isoformat(),
            "end": (start + timedelta(minutes=30)).isoformat(),
            "source": "benchmark",
        }
        return "POST", "/v1/busy", body
    return "PATCH", f"/v1/agents/{agent}", {"status": "away" if step == 0 else "available"}


async def change(client: KeepAliveClient, i: int, agent_ids: Sequence[str]) -> Response:
    method, path, body = org_change(i, agent_ids)
    r = await client.request(method, path, json=body)
    if r.status_code not in (200, 201):
        raise RuntimeError(f"{method} {path} answered {r.status_code}: {r.body[:300]!r}")
    return r


async def warm_run(
    base: str,
    key: str,
    path: str,
    *,
    concurrency: int,
    duration: float,
    probe: Probe | None,
) -> tuple[np.ndarray, Counter[str], float, Measures | None]:
    """``concurrency`` clients, each sending ``GET path`` as soon as its last answer arrived,
    for ``duration`` seconds. Each client's first (untimed) request opens its connection."""
    headers = {"Authorization": f"Bearer {key}"}
    async with contextlib.AsyncExitStack() as stack:
        clients = [
            await stack.enter_async_context(KeepAliveClient(base, headers))
            for _ in range(concurrency)
        ]
        latencies: list[float] = []
        outcomes: Counter[str] = Counter()
        # As in benchmarks.harness.load.drive: a full collection of this process's heap would stop
        # every in-flight clock for 100-200 ms, a pause the p99 would blame on the server. It
        # comes before the connections open: a large heap (a test session's) can take longer to
        # collect than the server keeps an idle connection (uvicorn: 5 s), which then closes.
        gc.collect()
        gc.freeze()
        await asyncio.gather(*(c.get(path) for c in clients))
        try:
            if probe is not None:
                probe.start()
            started = time.perf_counter()
            deadline = started + duration

            async def loop(client: KeepAliveClient) -> None:
                while (t0 := time.perf_counter()) < deadline:
                    try:
                        r = await client.get(path)
                        took, outcome = (time.perf_counter() - t0) * 1000.0, _outcome(r)
                    except _FAILURES as exc:
                        took, outcome = float("nan"), type(exc).__name__
                    outcomes[outcome] += 1
                    if outcome == "200":
                        latencies.append(took)

            await asyncio.gather(*(loop(c) for c in clients))
            elapsed = time.perf_counter() - started
            cpu = probe.stop() if probe is not None else None
        finally:
            gc.unfreeze()
    return np.asarray(latencies), outcomes, elapsed, cpu


async def cold_queries(
    client: KeepAliveClient,
    planner: KeepAliveClient,
    path: str,
    agent_ids: Sequence[str],
    *,
    first_change: int,
    n: int,
    probe: Probe | None,
    backend: str,
) -> tuple[PhaseResult, PhaseResult]:
    """``n`` times in turn: an organisation change (:func:`org_change`, through ``planner``),
    then ``GET path`` (through ``client``), each timed and probed on its own. Returns the
    changes' row and the queries' row."""
    windows = {CHANGE: Windows(probe), COLD: Windows(probe)}
    latencies: dict[str, list[float]] = {CHANGE: [], COLD: []}
    outcomes: dict[str, Counter[str]] = {CHANGE: Counter(), COLD: Counter()}

    async def timed(measure: str, request: Awaitable[Response]) -> None:
        windows[measure].start()
        t0 = time.perf_counter()
        try:
            r = await request
            took, outcome = (time.perf_counter() - t0) * 1000.0, _outcome(r)
        except _FAILURES as exc:
            took, outcome = float("nan"), type(exc).__name__
        windows[measure].stop()
        outcomes[measure][outcome] += 1
        if outcome in ("200", "201"):
            latencies[measure].append(took)

    for i in range(first_change, first_change + n):
        method, change_path, body = org_change(i, agent_ids)
        await timed(CHANGE, planner.request(method, change_path, json=body))
        await timed(COLD, client.get(path))
    rows = tuple(
        PhaseResult(
            backend,
            measure,
            1,
            np.asarray(latencies[measure]),
            outcomes[measure],
            None,
            windows[measure].total,
        )
        for measure in (CHANGE, COLD)
    )
    return rows[0], rows[1]


async def measure(
    base: str,
    setup: Setup,
    *,
    backend: str,
    n_calls: int,
    n_bookings: int,
    n_cold: int,
    duration: float,
    concurrencies: Sequence[int] = (1, 8),
    server_pid: int,
    db_pids: Callable[[], set[int]] | None = None,
    primes: int = 1,
    seed: int = 11,
    log: Callable[[str], None] = lambda _line: None,
) -> BackendRun:
    """Every phase against the service at ``base`` (whose process tree is ``server_pid``): book
    ``n_calls`` calls for the first tickets, the warm runs, the cold queries, then
    ``n_bookings`` timed bookings for the next tickets. ``primes`` priming queries before each
    warm run (from as many connections: with several workers, enough to reach each one)."""
    tickets = setup.seeded.ticket_ids
    if len(tickets) < n_calls + n_bookings:
        raise ValueError(f"{n_calls + n_bookings} tickets needed, {len(tickets)} seeded")
    agent_ids = [f"agent-{i:04d}" for i in range(setup.seeded.agents)]
    hot = slots_path(HOT_CAPABILITY)
    helpdesk = {"Authorization": f"Bearer {setup.seeded.helpdesk_key}"}
    planner_headers = {"Authorization": f"Bearer {setup.planner_key}"}
    rng = random.Random(seed)
    results: list[PhaseResult] = []
    changes = 0
    async with (
        KeepAliveClient(base, helpdesk) as client,
        KeepAliveClient(base, planner_headers) as planner,
    ):
        t0 = time.perf_counter()
        _, prebooked = await book_calls(client, tickets[:n_calls], setup.capability_ids, rng=rng)
        log(
            f"  booked {prebooked.get('201', 0)} of {n_calls} calls in "
            f"{time.perf_counter() - t0:.1f} s {dict(prebooked)}"
        )

        for concurrency in concurrencies:
            # A known cache age: rebuilt now, so the 60 s backstop cannot fire within the run.
            await change(planner, changes, agent_ids)
            changes += 1
            async with contextlib.AsyncExitStack() as stack:
                primers = [
                    await stack.enter_async_context(KeepAliveClient(base, helpdesk))
                    for _ in range(primes)
                ]
                await asyncio.gather(*(p.get(hot) for p in primers))
            latencies, outcomes, elapsed, cpu = await warm_run(
                base,
                setup.seeded.helpdesk_key,
                hot,
                concurrency=concurrency,
                duration=duration,
                probe=Probe(server_pid, db_pids),
            )
            result = PhaseResult(backend, WARM, concurrency, latencies, outcomes, elapsed, cpu)
            results.append(result)
            log(
                f"  {WARM}, {concurrency} client(s): {result.throughput:.0f}/s p50 "
                f"{result.percentile(50):.1f} ms p99 {result.percentile(99):.1f} ms "
                f"{dict(outcomes)}"
            )

        if n_cold:
            change_row, cold_row = await cold_queries(
                client,
                planner,
                hot,
                agent_ids,
                first_change=changes,
                n=n_cold,
                probe=Probe(server_pid, _fixed(db_pids)),
                backend=backend,
            )
            changes += n_cold
            results += [change_row, cold_row]
            log(
                f"  {COLD}: p50 {cold_row.percentile(50):.1f} ms, p99 "
                f"{cold_row.percentile(99):.1f} ms over {n_cold} {dict(cold_row.statuses)}"
            )

        if n_bookings:
            windows = Windows(Probe(server_pid, _fixed(db_pids)))
            book_ms, book_outcomes = await book_calls(
                client,
                tickets[n_calls : n_calls + n_bookings],
                setup.capability_ids,
                rng=rng,
                windows=windows,
            )
            row = PhaseResult(
                backend, BOOK, 1, np.asarray(book_ms), book_outcomes, None, windows.total
            )
            results.append(row)
            log(
                f"  {BOOK}: p50 {row.percentile(50):.1f} ms, p99 {row.percentile(99):.1f} ms "
                f"{dict(book_outcomes)}"
            )
    return BackendRun(backend, results, prebooked)


def run_backend(
    backend: str,
    *,
    workers: int,
    n_agents: int,
    n_calls: int,
    n_bookings: int,
    n_cold: int,
    duration: float,
    concurrencies: Sequence[int],
    workdir: Path,
    console: Console,
    pg_database: str = PG_BENCH_DB,
) -> BackendRun:
    """Seed ``backend``, start the service in a subprocess and :func:`measure` it."""
    now = datetime.now(UTC)
    t0 = time.perf_counter()
    url, setup = prepare(
        backend,
        workdir / backend,
        n_agents=n_agents,
        n_tickets=n_calls + n_bookings,
        now=now,
        pg_database=pg_database,
    )
    console.print(
        f"[bold]{backend}[/]: migrated and seeded {setup.seeded.agents} agents, "
        f"{len(setup.seeded.ticket_ids)} tickets, {len(setup.capability_ids)} capabilities in "
        f"{time.perf_counter() - t0:.1f} s"
    )
    log = workdir / f"server-{backend}.log"
    with serve(url, workers=workers, log=log) as (base, server_pid):
        db_pids = postgres_backends(url) if backend == "postgresql" else None
        with asyncio.Runner(loop_factory=client_loop_factory()) as runner:
            return runner.run(
                measure(
                    base,
                    setup,
                    backend=backend,
                    n_calls=n_calls,
                    n_bookings=n_bookings,
                    n_cold=n_cold,
                    duration=duration,
                    concurrencies=concurrencies,
                    server_pid=server_pid,
                    db_pids=db_pids,
                    primes=4 * workers if workers > 1 else 1,
                    log=console.print,
                )
            )


# --------------------------------------------------------------------------- reporting


def _ms(x: float, digits: int = 1) -> str:
    return "-" if x != x else f"{x:.{digits}f}"  # NaN: not measured


def results_table(runs: Sequence[BackendRun], *, agents: int, calls: int) -> Table:
    table = Table(
        title=f"Booking endpoints over HTTP ({agents} agents, {calls} calls booked beforehand)"
    )
    columns = (
        "backend",
        "measure",
        "clients",
        "answered",
        "409",
        "errors",
        "req/s",
        "p50 ms",
        "p99 ms",
        "max ms",
        "server CPU ms",
        "PG CPU ms",
        "client CPU ms",
    )
    for name in columns:
        table.add_column(name, justify="left" if name in ("backend", "measure") else "right")
    for run in runs:
        for r in run.results:
            table.add_row(
                r.backend,
                r.measure,
                str(r.clients),
                str(r.answered),
                str(r.conflicts),
                str(r.errors),
                _ms(r.throughput, 0),
                _ms(r.percentile(50)),
                _ms(r.percentile(99)),
                _ms(r.percentile(100)),
                _ms(r.cpu_ms_per_request("server"), 2),
                _ms(r.cpu_ms_per_request("database"), 2) if r.backend == "postgresql" else "-",
                _ms(r.cpu_ms_per_request("client"), 2),
            )
    return table


def _row(run: BackendRun, measure: str, clients: int = 1) -> PhaseResult | None:
    return next((r for r in run.results if r.measure == measure and r.clients == clients), None)


def cold_ratio(run: BackendRun) -> tuple[float, float]:
    """(cold p50 / warm p50, cold p99 / warm p99), warm at one client."""
    warm, cold = _row(run, WARM), _row(run, COLD)
    if warm is None or cold is None:
        return float("nan"), float("nan")
    return (
        cold.percentile(50) / warm.percentile(50),
        cold.percentile(99) / warm.percentile(99),
    )


def ratio_line(run: BackendRun) -> str:
    warm, cold = _row(run, WARM), _row(run, COLD)
    if warm is None or cold is None:
        return f"{run.backend}: warm/cold not measured in this run."
    p50, p99 = cold_ratio(run)
    return (
        f"{run.backend}: a slot query right after an organisation change takes "
        f"{_ms(cold.percentile(50))} ms (p50) / {_ms(cold.percentile(99))} ms (p99) against "
        f"{_ms(warm.percentile(50))} / {_ms(warm.percentile(99))} ms warm at 1 client: cold / "
        f"warm x{p50:.1f} (p50), x{p99:.1f} (p99)."
    )


def summary_line(runs: Sequence[BackendRun], *, agents: int, calls: int) -> str:
    parts = []
    for run in runs:
        bits = []
        for clients in sorted({r.clients for r in run.results if r.measure == WARM}):
            w = _row(run, WARM, clients)
            assert w is not None
            bits.append(
                f"slots warm {clients}c p50/p99 {_ms(w.percentile(50))}/"
                f"{_ms(w.percentile(99))} ms {_ms(w.throughput, 0)}/s"
            )
        if (cold := _row(run, COLD)) is not None:
            bits.append(f"cold p50 {_ms(cold.percentile(50))} ms (x{cold_ratio(run)[0]:.1f})")
        if (book := _row(run, BOOK)) is not None:
            bits.append(
                f"POST booking p50/p99 {_ms(book.percentile(50))}/{_ms(book.percentile(99))} ms "
                f"({book.ok} booked, {book.conflicts} x 409, {book.errors} errors)"
            )
        parts.append(f"{run.backend}: " + ", ".join(bits))
    return f"Booking over HTTP ({agents} agents, {calls} calls booked): " + "; ".join(parts)


LEGEND = (
    "warm: closed loop, each client sends again as soon as answered, cache built just before. "
    "cold: one query right after each organisation change (agent away / busy interval / agent "
    "available, through the API), so each rebuilds the booking cache; org change: those change "
    "requests themselves. POST booking: sequential, each at a random start of a fresh slots "
    "answer (not timed) for a fresh ticket; 409 = the slot went in between, counted apart from "
    "errors. req/s only for the closed-loop rows. CPU ms: per answered request, of the server "
    "processes, the PostgreSQL backends and this process (the load generator)."
)


# --------------------------------------------------------------------------- main


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.api_booking", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--backends", default="sqlite,postgresql", type=backend_list, help="comma-separated"
    )
    parser.add_argument("--agents", default=200, type=int)
    parser.add_argument("--calls", default=200, type=int, help="calls booked before measuring")
    parser.add_argument("--concurrency", default="1,8", type=ints, help="warm slot clients")
    parser.add_argument("--duration", default=10.0, type=float, help="seconds per warm run")
    parser.add_argument("--cold", default=60, type=int, help="slot queries after a change")
    parser.add_argument("--bookings", default=100, type=int, help="timed POST /v1/bookings")
    parser.add_argument("--workers", default=1, type=int, help="uvicorn worker processes")
    parser.add_argument(
        "--pg-database", default=PG_BENCH_DB, help="PostgreSQL database to (re)create and use"
    )
    args = parser.parse_args(argv)
    backends = args.backends
    if args.duration >= 55:
        parser.error("--duration must stay under the booking cache's 60 s wall-time backstop")

    console = Console(width=None if sys.stdout.isatty() else 170)
    console.print(machine_note())
    runs: list[BackendRun] = []
    with contextlib.ExitStack() as stack:
        if "postgresql" in backends:
            stack.enter_context(pg_exclusive(dbname=args.pg_database))
        workdir = Path(
            stack.enter_context(tempfile.TemporaryDirectory(prefix="switchboard-bench-booking-"))
        )
        for backend in backends:
            runs.append(
                run_backend(
                    backend,
                    workers=args.workers,
                    n_agents=args.agents,
                    n_calls=args.calls,
                    n_bookings=args.bookings,
                    n_cold=args.cold,
                    duration=args.duration,
                    concurrencies=args.concurrency,
                    workdir=workdir,
                    console=console,
                    pg_database=args.pg_database,
                )
            )
    console.print(results_table(runs, agents=args.agents, calls=args.calls))
    console.print(LEGEND)
    for run in runs:
        console.print(ratio_line(run))
    console.print(summary_line(runs, agents=args.agents, calls=args.calls))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
