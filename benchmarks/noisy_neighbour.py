"""Noisy-neighbour benchmark: does one tenant's flood reach another tenant's latency?
``python -m benchmarks.noisy_neighbour``.

Seeds two small tenants (A and B) in a SQLite temp file through ``benchmarks.harness.seed``
and starts the real service (``benchmarks.harness.server.serve``: uvicorn, one worker, loopback
only). Tenant B then reads one of its tickets (``GET /v1/tickets/{id}``, a cheap
authenticated request) from one connection, back to back with a short pause, and its latencies
are taken in three phases:

    quiet   nobody else sends anything
    cheap   tenant A floods GETs of its own tickets, as fast as ``--flood-clients``
            keep-alive connections answer (closed loop, no backoff: a hostile client)
    solves  tenant A keeps ``--solvers`` POST /v1/solve in flight (each re-sent as soon as it
            is answered, 429s included), each a problem of 30 agents and 300 tickets

Tenant A runs in a process of its own, so B's clock never waits on A's client work. For each
phase it prints B's p50/p99 and p99 as a ratio of its quiet p99 (the target of issue 8: at most
2x), and how tenant A's requests were answered (2xx, 429, 503).

Two configurations, each on a fresh server: ``protected`` — what this release does, with a
per-tenant rate limit of ``--rate-limit``/s (burst ``--burst``) and solves in the bounded
process pool (2 per tenant, 4 in all); and, with ``--compare``, ``unprotected`` — no rate
limit and solves in a 64-thread pool with no per-tenant cap, the old behaviour.
First it also measures what one rate-limit check costs in-process (memory, and Redis when
127.0.0.1:6379 answers). Everything is bounded in time: under a minute with the defaults (most
of it starting processes), about a minute more with ``--compare``.

The load generator shares the machine's cores with the server (and, on a shared development
machine, with whatever else runs): the load average is printed beside the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing
import os
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from rich.console import Console
from rich.table import Table

from api.db import migrate
from api.settings import Environment, Settings
from benchmarks.harness.databases import sqlite_url
from benchmarks.harness.report import machine_note
from benchmarks.harness.seed import seed_tenant
from benchmarks.harness.server import serve
from benchmarks.loadclient import KeepAliveClient

TICKET_PATH = "/v1/tickets/{ticket_id}"
SOLVE_PATH = "/v1/solve"
SETTLE_SECONDS = 1.0  # between phases: what one phase left running should not reach the next
TARGET_RATIO = 2.0  # tenant B's p99 under A's flood, at most this times its quiet p99

PROTECTED = "protected"
UNPROTECTED = "unprotected"


def server_env(config: str, *, rate_limit: int, burst: int) -> dict[str, str]:
    """The server's settings for one configuration (environment variables)."""
    if config == PROTECTED:
        return {
            "SWITCHBOARD_RATE_LIMIT_ENABLED": "true",
            "SWITCHBOARD_RATE_LIMIT_PER_SECOND": str(rate_limit),
            "SWITCHBOARD_RATE_LIMIT_BURST": str(burst),
            "SWITCHBOARD_SOLVE_EXECUTOR": "process",
            "SWITCHBOARD_SOLVE_WORKERS": "4",
            "SWITCHBOARD_SOLVE_MAX_PER_TENANT": "2",
        }
    # What the service did before: every solve on a request thread, nothing counted.
    return {
        "SWITCHBOARD_RATE_LIMIT_ENABLED": "false",
        "SWITCHBOARD_SOLVE_EXECUTOR": "thread",
        "SWITCHBOARD_SOLVE_WORKERS": "64",
        "SWITCHBOARD_SOLVE_MAX_PER_TENANT": "64",
    }


def solve_problem(
    *, agents: int = 30, tickets: int = 300, seconds: float = 3.0, now: datetime
) -> dict[str, Any]:
    """A POST /v1/solve body: ``agents`` on shift now, ``tickets`` needing one of six skills."""
    skills = [f"s{i}" for i in range(6)]
    shift = [{"start": now.isoformat(), "end": (now + timedelta(hours=8)).isoformat()}]
    return {
        "now": now.isoformat(),
        "skills": [{"id": s} for s in skills],
        "teams": [{"id": "support"}],
        "agents": [
            {
                "id": f"a{i}",
                "team": "support",
                "skills": {skills[i % 6]: 4, skills[(i + 1) % 6]: 3},
                "capacity": 20,
                "shifts": shift,
            }
            for i in range(agents)
        ],
        "tickets": [
            {
                "id": f"T{i}",
                "team": "support",
                "created_at": (now - timedelta(minutes=i % 90)).isoformat(),
                "required_skills": {skills[i % 6]: 2},
                "priority": "urgent" if i % 17 == 0 else "normal",
                "resolution_due": (now + timedelta(hours=1 + i % 6)).isoformat(),
                "effort_minutes": 5 + i % 20,
            }
            for i in range(tickets)
        ],
        "policy": "optimizer",
        "time_limit_seconds": seconds,
    }


# --------------------------------------------------------------------------- tenant A


def _flood_process(
    base: str,
    key: str,
    kind: str,
    clients: int,
    paths: Sequence[str],
    body: dict[str, Any] | None,
    stop: Any,
    out: Any,
) -> None:
    """Tenant A, in its own process: flood until ``stop`` is set; put the answers' counts."""

    async def flood() -> Counter[str]:
        counts: Counter[str] = Counter()
        async with contextlib.AsyncExitStack() as stack:
            conns = [
                await stack.enter_async_context(
                    KeepAliveClient(base, {"Authorization": f"Bearer {key}"})
                )
                for _ in range(clients)
            ]
            out.put("ready")

            async def loop(i: int, client: KeepAliveClient) -> None:
                n = i
                while not stop.is_set():
                    try:
                        if kind == "solves":
                            r = await client.post(SOLVE_PATH, json=body)
                        else:
                            r = await client.get(paths[n % len(paths)])
                        counts[str(r.status_code)] += 1
                    except OSError as exc:
                        counts[type(exc).__name__] += 1
                        await asyncio.sleep(0.01)
                    n += 1

            tasks = [asyncio.create_task(loop(i, c)) for i, c in enumerate(conns)]
            while not stop.is_set():
                await asyncio.sleep(0.05)
            # Answers still outstanding (a solve holding a thread) are not waited for.
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        return counts

    out.put(dict(asyncio.run(flood())))


# --------------------------------------------------------------------------- tenant B


async def probe(
    base: str, key: str, path: str, seconds: float, pause: float
) -> tuple[np.ndarray, Counter[str]]:
    """Tenant B: ``GET path`` back to back (``pause`` between) for ``seconds``; latencies (ms)
    of the 200s and a count of every answer. A request unanswered after ``seconds`` counts as
    "timeout" with that latency (a lower bound), so one stuck request cannot stretch the run."""
    latencies: list[float] = []
    counts: Counter[str] = Counter()
    headers = {"Authorization": f"Bearer {key}"}
    client = KeepAliveClient(base, headers)
    try:
        await client.get(path)  # connect outside the measurement
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline:
            t0 = time.perf_counter()
            try:
                r = await asyncio.wait_for(client.get(path), timeout=seconds)
            except TimeoutError:
                counts["timeout"] += 1
                latencies.append(seconds * 1000.0)
                # Its answer may still come: a new connection, so it is not read as the next.
                await client.aclose()
                client = KeepAliveClient(base, headers)
                continue
            took = (time.perf_counter() - t0) * 1000.0
            counts[str(r.status_code)] += 1
            if r.status_code == 200:
                latencies.append(took)
            await asyncio.sleep(pause)
    finally:
        await client.aclose()
    return np.asarray(latencies), counts


@dataclass
class Phase:
    config: str
    name: str
    latencies: np.ndarray
    b_counts: Counter[str]
    a_counts: Counter[str] = field(default_factory=Counter)
    load: tuple[float, float, float] = (0.0, 0.0, 0.0)

    def p(self, q: float) -> float:
        return float(np.percentile(self.latencies, q)) if len(self.latencies) else float("nan")


def run_phase(
    config: str,
    name: str,
    *,
    base: str,
    a_key: str,
    b_key: str,
    a_paths: Sequence[str],
    b_path: str,
    seconds: float,
    clients: int = 0,
    body: dict[str, Any] | None = None,
    pause: float = 0.01,
) -> Phase:
    """B's probe for ``seconds``, alone (``clients`` 0) or while A floods ``name``."""
    ctx = multiprocessing.get_context("spawn")
    stop, out = ctx.Event(), ctx.Queue()
    flooder = None
    if clients:
        flooder = ctx.Process(
            target=_flood_process,
            args=(base, a_key, name, clients, list(a_paths), body, stop, out),
            daemon=True,
        )
        flooder.start()
        if out.get(timeout=60) != "ready":
            raise RuntimeError("the flooding process did not start")
        time.sleep(min(1.0, seconds / 4))  # the flood under way before B measures
    try:
        latencies, b_counts = asyncio.run(probe(base, b_key, b_path, seconds, pause))
    finally:
        stop.set()
    a_counts: Counter[str] = Counter()
    if flooder is not None:
        a_counts = Counter(out.get(timeout=60))
        flooder.join(timeout=30)
        if flooder.is_alive():
            flooder.kill()
    return Phase(config, name, latencies, b_counts, a_counts, os.getloadavg())


# --------------------------------------------------------------------------- limiter cost


def limiter_cost(n: int) -> dict[str, float]:
    """Microseconds per rate-limit check, in-process: memory, and Redis when it answers."""
    from api.http.ratelimit import RateLimiter

    async def per_check(limiter: RateLimiter) -> float:
        await limiter.admit("warm-up")
        t0 = time.perf_counter()
        for i in range(n):
            await limiter.admit(f"tenant-{i % 50}")
        return (time.perf_counter() - t0) / n * 1e6

    def clock() -> datetime:
        return datetime.now(UTC)

    out = {
        "memory": asyncio.run(per_check(RateLimiter(per_second=10**6, burst=10**6, clock=clock)))
    }

    async def with_redis() -> float | None:
        import redis.asyncio

        client = redis.asyncio.Redis.from_url(
            "redis://127.0.0.1:6379/0", socket_connect_timeout=0.5, socket_timeout=0.5
        )
        try:
            await client.ping()
        except (redis.RedisError, OSError):
            await client.aclose()
            return None
        prefix = f"switchboard-bench:{os.getpid()}:"
        limiter = RateLimiter(
            per_second=10**6, burst=10**6, clock=clock, redis=client, prefix=prefix
        )
        try:
            return await per_check(limiter)
        finally:
            async for k in client.scan_iter(match=prefix + "*"):
                await client.delete(k)
            await client.aclose()

    redis_us = asyncio.run(with_redis())
    if redis_us is not None:
        out["redis"] = redis_us
    return out


# --------------------------------------------------------------------------- main


def results_table(phases: Sequence[Phase]) -> Table:
    quiet = {p.config: p.p(99) for p in phases if p.name == "quiet"}
    table = Table(title="Tenant B's GET /v1/tickets/{id} while tenant A floods")
    for name in (
        "config",
        "phase",
        "B n",
        "B p50 ms",
        "B p99 ms",
        "p99 / quiet",
        "B non-200",
        "A answers",
        "A 2xx",
        "A 429",
        "A 503",
        "A other",
        "load avg",
    ):
        table.add_column(name, justify="left" if name in ("config", "phase") else "right")
    for p in phases:
        ratio = p.p(99) / quiet[p.config] if quiet.get(p.config) else float("nan")
        total = sum(p.a_counts.values())
        ok = sum(v for k, v in p.a_counts.items() if k.startswith("2"))
        other = total - ok - p.a_counts["429"] - p.a_counts["503"]
        verdict = ""
        if p.name != "quiet":
            verdict = " [green]ok[/]" if ratio <= TARGET_RATIO else " [red]over[/]"
        table.add_row(
            p.config,
            p.name,
            str(len(p.latencies)),
            f"{p.p(50):.1f}",
            f"{p.p(99):.1f}",
            f"{ratio:.2f}x{verdict}",
            str(sum(v for k, v in p.b_counts.items() if k != "200")),
            str(total) if p.name != "quiet" else "-",
            str(ok) if p.name != "quiet" else "-",
            str(p.a_counts["429"]) if p.name != "quiet" else "-",
            str(p.a_counts["503"]) if p.name != "quiet" else "-",
            str(other) if p.name != "quiet" else "-",
            f"{p.load[0]:.1f}",
        )
    return table


def measure(
    *,
    phase_seconds: float,
    flood_clients: int,
    solvers: int,
    solve_seconds: float,
    rate_limit: int,
    burst: int,
    configs: Sequence[str],
    console: Console,
    log_dir: Path | None = None,
    settle_seconds: float = SETTLE_SECONDS,
) -> list[Phase]:
    """Seed tenants A and B, then per configuration a fresh server and the three phases."""
    now = datetime.now(UTC)
    phases: list[Phase] = []
    with tempfile.TemporaryDirectory(prefix="switchboard-noisy-") as tmp:
        workdir = Path(tmp)
        url = sqlite_url(workdir)
        migrate.upgrade(url)
        settings = Settings(database_url=url, environment=Environment.TEST)
        a = seed_tenant(settings, now=now, n_agents=10, n_tickets=50, seed=1)
        b = seed_tenant(settings, now=now, n_agents=10, n_tickets=50, seed=2)
        a_paths = [TICKET_PATH.format(ticket_id=t) for t in a.ticket_ids]
        b_path = TICKET_PATH.format(ticket_id=b.ticket_ids[0])
        body = solve_problem(seconds=solve_seconds, now=now)
        for config in configs:
            env = server_env(config, rate_limit=rate_limit, burst=burst)
            log = (log_dir or workdir) / f"server-{config}.log"
            with serve(url, workers=1, log=log, env_extra=env) as (base, _pid):
                common: dict[str, Any] = {
                    "base": base,
                    "a_key": a.helpdesk_key,
                    "b_key": b.helpdesk_key,
                    "a_paths": a_paths,
                    "b_path": b_path,
                    "seconds": phase_seconds,
                }
                # One solve answered first: the server's solver processes, started in the
                # background with the app, have done their imports (seconds of CPU that would
                # otherwise land in the quiet phase).
                warm = httpx.post(
                    base + SOLVE_PATH,
                    json=solve_problem(agents=2, tickets=2, seconds=0.5, now=now),
                    headers={"Authorization": f"Bearer {a.helpdesk_key}"},
                    timeout=120.0,
                )
                warm.raise_for_status()
                time.sleep(settle_seconds)
                for name, clients in (("quiet", 0), ("cheap", flood_clients), ("solves", solvers)):
                    phase = run_phase(
                        config,
                        name,
                        clients=clients,
                        body=body if name == "solves" else None,
                        **common,
                    )
                    phases.append(phase)
                    time.sleep(settle_seconds)
                    console.print(
                        f"  {config} {name}: B p50 {phase.p(50):.1f} ms p99 {phase.p(99):.1f} ms"
                        f" over {len(phase.latencies)}; A {dict(phase.a_counts)}"
                    )
    return phases


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.noisy_neighbour", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--phase-seconds", type=float, default=3.0, help="B's probe per phase")
    parser.add_argument("--flood-clients", type=int, default=64, help="A's GET connections")
    parser.add_argument("--solvers", type=int, default=40, help="A's concurrent solves")
    parser.add_argument("--solve-seconds", type=float, default=3.0, help="each solve's limit")
    parser.add_argument("--rate-limit", type=int, default=100, help="per tenant, per second")
    parser.add_argument("--burst", type=int, default=20, help="per tenant")
    parser.add_argument(
        "--compare",
        action="store_true",
        help="also run the unprotected configuration (the old behaviour; ~1 min more)",
    )
    parser.add_argument(
        "--limiter-checks", type=int, default=20_000, help="rate-limit checks timed (0: none)"
    )
    parser.add_argument(
        "--log-dir", type=Path, default=None, help="keep the servers' logs here (else a temp dir)"
    )
    args = parser.parse_args(argv)

    console = Console(width=None if sys.stdout.isatty() else 150)
    started = time.perf_counter()
    console.print(machine_note())
    if args.limiter_checks:
        cost = limiter_cost(args.limiter_checks)
        console.print(
            "One rate-limit check, in-process: "
            + ", ".join(f"{k} {v:.1f} µs" for k, v in cost.items())
            + (" (Redis not reachable: not measured)" if "redis" not in cost else "")
        )
    phases = measure(
        phase_seconds=args.phase_seconds,
        flood_clients=args.flood_clients,
        solvers=args.solvers,
        solve_seconds=args.solve_seconds,
        rate_limit=args.rate_limit,
        burst=args.burst,
        configs=[PROTECTED, UNPROTECTED] if args.compare else [PROTECTED],
        console=console,
        log_dir=args.log_dir,
    )
    console.print(results_table(phases))
    console.print(
        f"Target: tenant B's p99 under any one tenant's flood at most {TARGET_RATIO:.0f}x its "
        f"quiet p99. Rate limit {args.rate_limit}/s, burst {args.burst} per tenant. "
        f"{time.perf_counter() - started:.0f} s in all."
    )
    console.print(machine_note())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
