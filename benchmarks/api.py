"""Load benchmark of the service's real-time assignment: ``python -m benchmarks.api``.

For each backend (a SQLite temp file; PostgreSQL database ``switchboard_bench`` on
127.0.0.1:5432, dropped and re-created, guarded against a concurrent run) it migrates an empty
database and seeds, through the service layer, one tenant with 200 agents (skills with levels,
shifts covering now, capacity) and a pool of unassigned tickets. It then starts the real service
(``api.serve.run``: uvicorn, :func:`benchmarks.harness.server.serve`) in a subprocess on a free
127.0.0.1 port, with 1 and then 2 worker processes, and drives ``POST /v1/tickets/{id}/assign``
from this process at each concurrency in turn, one keep-alive connection per simulated client
(``benchmarks.loadclient``: a lean client, because the generator shares the server's two cores;
``--client httpx`` for httpx). Every request is a first assignment of a fresh ticket (the
pool is reset to unassigned between runs), so each one does the whole write path: lock, loads,
decision, owner change, history event. A run stops by itself at ``--duration`` seconds or when
the pool is used up. The clients run a closed loop (each sends again as soon as it is
answered), the stricter reading of "32 concurrent clients"; on PostgreSQL one more run offers
the target rate in an open loop (latency from when each request fell due), the reading of
"500/s with p99 <= 50 ms". ``--rate`` makes every run open-loop at that rate.

After each closed-loop run the same clients send a bare authenticated read, ``GET
/v1/teams/{id}`` of a seeded team, to the same server for the same duration (``--no-baseline``
skips it): its rate, latencies and server CPU per request are printed in a second table with the
assignment's server CPU and throughput as ratios to it, so a change in the HTTP layer (auth, the
gate, rate limiting, idempotency, metrics, routing) that every request pays shows in the GET, and
what the assignment costs beyond it shows in the ratios, both on the same machine at the same
moment.

It prints one row per backend x workers x concurrency: assignments/s, p50/p99/max as the
clients saw them and the server's own p50/p99 (its /metrics histogram), CPU per assignment of
the server, PostgreSQL and the load generator, what the rest of the machine used meanwhile,
the CPU-bound ceiling on 2 cores, and whether the target holds (issue 4: >= 500 assignments/s
with p99 <= 50 ms at 32 concurrent clients on PostgreSQL, 200 agents, 2 cores). ``--profile``
(or ``--profile-only``) adds an in-process breakdown of the route's write path (SQL per
statement, time in the driver vs. Python, how long the serializing lock is held, a pyinstrument
profile).

``--against REV`` measures before and after in one sitting: commit REV (a temporary git
worktree) and this checkout are served side by side from one database, and the assignment runs
alternate between them (A = REV, B = this checkout; the order turns every round, ``--rounds``
rounds); it prints both trees' figures, server CPU per assignment, throughput and p99 as B/A,
and the per-round CPU ratios. The pieces it is built from live in ``benchmarks.harness``; this
module keeps the command line and the orchestration.

The load generator shares the machine's cores with the server, and on a shared development
machine with whatever else runs: read the CPU columns with the latencies, and re-run before
trusting a figure.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console
from sqlalchemy import Engine

from api.db.engine import make_engine
from api.settings import Environment, Settings
from benchmarks.harness.cli import backend_list, ints
from benchmarks.harness.cpu import Probe
from benchmarks.harness.databases import PG_BENCH_DB, pg_exclusive, postgres_backends
from benchmarks.harness.load import (
    TARGET_BACKEND,
    TARGET_CONCURRENCY,
    TARGET_RATE,
    RunResult,
    client_loop_factory,
    drive,
)
from benchmarks.harness.profile import profile_assign
from benchmarks.harness.report import (
    BASELINE_LEGEND,
    COMPARISON_LEGEND,
    LEGEND,
    Comparison,
    baseline_table,
    comparison_lines,
    comparison_table,
    machine_note,
    results_table,
    target_line,
)
from benchmarks.harness.routes import BASELINE_PATH
from benchmarks.harness.seed import TEAM_IDS, Seeded, prepare, reset_assignments
from benchmarks.harness.server import (
    REPO_ROOT,
    commit_of,
    describe_checkout,
    serve,
    source_tree,
)


@dataclass(frozen=True, slots=True)
class Sitting:
    """What every run of one backend in one invocation shares: the database, the loads, the
    seeded organisation, where servers log, and how the load is driven."""

    backend: str
    workers_list: Sequence[int]
    concurrencies: Sequence[int]
    duration: float
    n_agents: int
    n_tickets: int
    workdir: Path
    console: Console
    pg_database: str = PG_BENCH_DB
    env_extra: dict[str, str] | None = None
    rate: float | None = None
    client: str = "raw"

    @classmethod
    def of(
        cls,
        args: argparse.Namespace,
        backend: str,
        workdir: Path,
        console: Console,
        env_extra: dict[str, str] | None,
    ) -> Sitting:
        """The sitting the command line asks for, on ``backend``."""
        return cls(
            backend=backend,
            workers_list=args.workers,
            concurrencies=args.concurrency,
            duration=args.duration,
            n_agents=args.agents,
            n_tickets=args.tickets,
            workdir=workdir,
            console=console,
            pg_database=args.pg_database,
            env_extra=env_extra,
            rate=args.rate,
            client=args.client,
        )


def run_backend(
    s: Sitting,
    *,
    open_check: bool = True,
    baseline: bool = True,
) -> list[RunResult]:
    """Seed ``backend``, then for each worker count one run per concurrency (open loop at
    ``rate`` when given, else closed loop). With ``open_check``, closed-loop runs on the target
    backend add one open-loop run at the target rate and concurrency, so both readings of the
    target ("N clients never waiting" and "N/s offered") are measured side by side. With
    ``baseline``, each closed-loop run is followed by the same clients sending the bare GET of
    :data:`BASELINE_PATH` to the same server for the same duration (``RunResult.baseline``)."""
    loads: list[tuple[int, float | None]] = [(c, s.rate) for c in s.concurrencies]
    if open_check and s.rate is None and s.backend == TARGET_BACKEND:
        loads.append((TARGET_CONCURRENCY, TARGET_RATE))
    url, seeded = _prepare(s)
    engine = make_engine(Settings(database_url=url, environment=Environment.TEST))
    results = []
    try:
        for workers in s.workers_list:
            log = s.workdir / f"server-{s.backend}-{workers}.log"
            with serve(url, workers=workers, log=log, env_extra=s.env_extra) as (base, server_pid):
                db_pids = postgres_backends(url) if s.backend == "postgresql" else None
                for concurrency, offered in loads:
                    result = _run_assign(
                        engine,
                        seeded,
                        base,
                        server_pid,
                        db_pids,
                        backend=s.backend,
                        workers=workers,
                        concurrency=concurrency,
                        offered=offered,
                        duration=s.duration,
                        client=s.client,
                    )
                    if baseline and offered is None:
                        result.baseline = _run_baseline(
                            base,
                            seeded.helpdesk_key,
                            backend=s.backend,
                            workers=workers,
                            concurrency=concurrency,
                            duration=s.duration,
                            client=s.client,
                            probe=Probe(
                                server_pid,
                                db_pids,
                                metrics_base=base if workers == 1 else None,
                                route=("GET", BASELINE_PATH),
                            ),
                        )
                    results.append(result)
                    s.console.print(_progress(result, result.load))
                    if (get := result.baseline) is not None:
                        s.console.print(_progress(get, "GET baseline"))
    finally:
        engine.dispose()
    return results


def run_against(
    s: Sitting,
    *,
    trees: tuple[Path, Path],
    rounds: int,
) -> list[Comparison]:
    """The assignment runs of :func:`run_backend` (no GET, no open-loop check) against two
    source trees in one sitting: ``trees`` = (A, B), both served at once from one database
    seeded by this checkout, and for each worker count and concurrency ``rounds`` rounds of
    one run on each tree, so that whatever else loads the machine meanwhile reaches both trees
    alike. The order turns every round (A B, B A, A B, ...): what drifts one way through the
    sitting (the ticket history grows with every run; a neighbour's job starts) would
    otherwise always favour the tree that runs first."""
    url, seeded = _prepare(s)
    engine = make_engine(Settings(database_url=url, environment=Environment.TEST))
    comparisons = []
    try:
        for workers in s.workers_list:
            with contextlib.ExitStack() as servers:
                served = [
                    servers.enter_context(
                        serve(
                            url,
                            workers=workers,
                            log=s.workdir / f"server-{s.backend}-{workers}-{tree}.log",
                            env_extra=s.env_extra,
                            code=code,
                        )
                    )
                    for tree, code in zip("AB", trees, strict=True)
                ]
                db_pids = postgres_backends(url) if s.backend == "postgresql" else None
                for concurrency in s.concurrencies:
                    pairs = []
                    for n in range(1, rounds + 1):
                        pair: dict[str, RunResult] = {}
                        order = "AB" if n % 2 else "BA"
                        for tree in order:
                            base, server_pid = served["AB".index(tree)]
                            result = _run_assign(
                                engine,
                                seeded,
                                base,
                                server_pid,
                                db_pids,
                                backend=s.backend,
                                workers=workers,
                                concurrency=concurrency,
                                offered=s.rate,
                                duration=s.duration,
                                client=s.client,
                            )
                            s.console.print(_progress(result, f"{result.load} {tree} round {n}"))
                            pair[tree] = result
                        pairs.append((pair["A"], pair["B"]))
                    comparisons.append(Comparison(s.backend, workers, concurrency, s.rate, pairs))
    finally:
        engine.dispose()
    return comparisons


def _prepare(s: Sitting) -> tuple[str, Seeded]:
    t0 = time.perf_counter()
    url, seeded = prepare(
        s.backend,
        s.workdir,
        n_agents=s.n_agents,
        n_tickets=s.n_tickets,
        now=datetime.now(UTC),
        pg_database=s.pg_database,
    )
    s.console.print(
        f"[bold]{s.backend}[/]: migrated and seeded {seeded.agents} agents, "
        f"{len(seeded.ticket_ids)} tickets in {time.perf_counter() - t0:.1f} s"
    )
    return url, seeded


def _run_assign(
    engine: Engine,
    seeded: Seeded,
    base: str,
    server_pid: int,
    db_pids: Callable[[], set[int]] | None,
    *,
    backend: str,
    workers: int,
    concurrency: int,
    offered: float | None,
    duration: float,
    client: str,
) -> RunResult:
    """One run of fresh first assignments against the server at ``base`` (the pool reset to
    unassigned first), closed loop or open at ``offered`` per second."""
    reset_assignments(engine, seeded.tenant_id)
    with asyncio.Runner(loop_factory=client_loop_factory()) as runner:
        latencies, elapsed, outcomes, cpu = runner.run(
            drive(
                base,
                seeded.helpdesk_key,
                seeded.ticket_ids,
                concurrency=concurrency,
                duration=duration,
                warmup=max(8, 4 * workers),
                rate=offered,
                client=client,
                probe=Probe(server_pid, db_pids, metrics_base=base if workers == 1 else None),
            )
        )
    return RunResult(backend, workers, concurrency, latencies, elapsed, outcomes, cpu, offered)


def _progress(r: RunResult, what: str) -> str:
    """The line printed as each run ends."""
    return (
        f"  {r.backend} workers={r.workers} clients={r.concurrency} {what}: "
        f"{r.throughput:.0f}/s p50 {r.percentile(50):.1f} ms p99 {r.percentile(99):.1f} ms "
        f"errors {r.errors}" + (f" {dict(r.statuses)}" if r.errors else "")
    )


def _run_baseline(
    base: str,
    key: str,
    *,
    backend: str,
    workers: int,
    concurrency: int,
    duration: float,
    client: str,
    probe: Probe,
) -> RunResult:
    """The bare authenticated GET, closed loop, at ``concurrency`` for ``duration`` seconds."""
    path = BASELINE_PATH.format(team_id=TEAM_IDS[0])
    with asyncio.Runner(loop_factory=client_loop_factory()) as runner:
        latencies, elapsed, outcomes, cpu = runner.run(
            drive(
                base,
                key,
                (),
                concurrency=concurrency,
                duration=duration,
                warmup=max(8, 4 * workers),
                client=client,
                probe=probe,
                get_path=path,
            )
        )
    return RunResult(backend, workers, concurrency, latencies, elapsed, outcomes, cpu)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.api", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--backends", default="sqlite,postgresql", type=backend_list, help="comma-separated"
    )
    parser.add_argument("--concurrency", default="1,8,32", type=ints, help="clients, e.g. 1,8,32")
    parser.add_argument("--workers", default="1,2", type=ints, help="uvicorn worker processes")
    parser.add_argument("--duration", default=10.0, type=float, help="seconds per run")
    parser.add_argument("--agents", default=200, type=int)
    parser.add_argument(
        "--tickets", default=10000, type=int, help="ticket pool: the most one run can assign"
    )
    parser.add_argument(
        "--profile", action="store_true", help="also break one assignment down in-process"
    )
    parser.add_argument("--profile-n", default=300, type=int, help="assignments to profile")
    parser.add_argument(
        "--profile-only", action="store_true", help="only the in-process breakdown, no load"
    )
    parser.add_argument(
        "--pg-database", default=PG_BENCH_DB, help="PostgreSQL database to (re)create and use"
    )
    parser.add_argument(
        "--rate",
        type=float,
        default=None,
        help="open loop: requests per second, sent on the next free client (default: closed "
        "loop, each client sends as soon as its last answer arrives)",
    )
    parser.add_argument(
        "--no-open-check",
        action="store_true",
        help="closed loop only: skip the extra open-loop run at the target rate on PostgreSQL",
    )
    parser.add_argument(
        "--no-baseline",
        action="store_true",
        help=f"skip the bare GET {BASELINE_PATH} run after each closed-loop run (halves the "
        "closed-loop time)",
    )
    parser.add_argument(
        "--client",
        choices=("raw", "httpx"),
        default="raw",
        help="load generator's HTTP client: raw (lean keep-alive, ~0.1 ms CPU per request) or "
        "httpx (~0.6-1.3 ms; its CPU comes out of the server's two cores)",
    )
    parser.add_argument(
        "--db-pool-size",
        type=int,
        default=None,
        help="the server's SWITCHBOARD_DB_POOL_SIZE per worker (default: the service's own)",
    )
    parser.add_argument(
        "--against",
        metavar="REV",
        default=None,
        help="before/after in one sitting: serve commit REV (a temporary git worktree, removed "
        "after) beside this checkout and alternate the assignment runs between them (A = REV, "
        "B = this checkout), then print each one's figures and B/A; no GET and no open-loop "
        "check in this mode",
    )
    parser.add_argument(
        "--rounds",
        default=4,
        type=int,
        help="with --against: runs per tree of each configuration, alternating A B, B A, A B, ... "
        "(an even number: each tree runs first as often)",
    )
    args = parser.parse_args(argv)
    backends = args.backends
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")

    env_extra = {}
    if args.db_pool_size is not None:
        env_extra["SWITCHBOARD_DB_POOL_SIZE"] = str(args.db_pool_size)
    console = Console(width=None if sys.stdout.isatty() else 170)
    console.print(machine_note())
    results: list[RunResult] = []
    with contextlib.ExitStack() as stack:
        if "postgresql" in backends:
            stack.enter_context(pg_exclusive(dbname=args.pg_database))
        workdir = Path(
            stack.enter_context(tempfile.TemporaryDirectory(prefix="switchboard-bench-"))
        )
        if args.against is not None and not args.profile_only:
            tree = stack.enter_context(source_tree(args.against))
            _compare(args, workdir, tree, console, env_extra)
        for backend in [] if args.profile_only or args.against is not None else backends:
            results += run_backend(
                Sitting.of(args, backend, workdir, console, env_extra),
                open_check=not args.no_open_check,
                baseline=not args.no_baseline,
            )
        if results:
            console.print(results_table(results))
            console.print(LEGEND)
            if any(r.baseline is not None for r in results):
                console.print(baseline_table(results))
                console.print(BASELINE_LEGEND)
            console.print(target_line(results))
        if args.profile or args.profile_only:
            for backend in backends:
                profile_assign(
                    backend,
                    workdir,
                    n=args.profile_n,
                    console=console,
                    pg_database=args.pg_database,
                )
    return 0


def _compare(
    args: argparse.Namespace,
    workdir: Path,
    tree: Path,
    console: Console,
    env_extra: dict[str, str],
) -> None:
    """``--against``: every backend's comparison of ``tree`` (A) with this checkout (B), then
    the report."""
    labels = (f"{args.against} ({commit_of(args.against)[:10]})", describe_checkout())
    comparisons = []
    for backend in args.backends:
        comparisons += run_against(
            Sitting.of(args, backend, workdir, console, env_extra),
            trees=(tree, REPO_ROOT),
            rounds=args.rounds,
        )
    console.print(comparison_table(comparisons, labels))
    console.print(COMPARISON_LEGEND)
    for line in comparison_lines(comparisons):
        console.print(line)
    console.print(machine_note())


if __name__ == "__main__":
    raise SystemExit(main())
