"""Load benchmark of the service's real-time assignment: ``python -m benchmarks.api``.

For each backend (a SQLite temp file; PostgreSQL database ``switchboard_bench`` on
127.0.0.1:5432, dropped and re-created, guarded against a concurrent run) it migrates an empty
database and seeds, through the service layer, one tenant with 200 agents (skills with levels,
shifts covering now, capacity) and a pool of unassigned tickets. It then starts the real service
(``api.main:create_app`` under uvicorn, :func:`run_server`) in a subprocess on a free
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

The load generator shares the machine's cores with the server, and on a shared development
machine with whatever else runs: read the CPU columns with the latencies, and re-run before
trusting a figure.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import hashlib
import itertools
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from httptools import HttpParserError
from rich.console import Console
from rich.table import Table
from sqlalchemy import Engine, update
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from api.db import migrate
from api.db.engine import make_engine, make_session_factory
from api.db.models import Ticket
from api.enums import Scope, SkillKind, TicketPriority, TicketStatus
from api.schemas.agents import AgentCreate
from api.schemas.intervals import ShiftCreate
from api.schemas.skills import SkillCreate
from api.schemas.teams import TeamCreate
from api.schemas.tickets import TicketIn
from api.services import agents, api_keys, skills, teams, tenants, tickets
from api.services.intervals import shifts
from api.settings import Environment, Settings
from benchmarks.loadclient import KeepAliveClient

# The endpoint under test; the ticket's external id goes in the path.
ASSIGN_PATH = "/v1/tickets/{ticket_id}/assign"
HEALTH_PATH = "/healthz"
# The baseline measured beside it: a cheap authenticated read of a seeded team (auth, the gate,
# the rate limiter, the idempotency and metrics middlewares, routing, one primary-key SELECT).
BASELINE_PATH = "/v1/teams/{team_id}"  # also the route template /metrics labels it with

PG_SERVER_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
PG_BENCH_DB = "switchboard_bench"
_PG_LOCK_NS = 0x5B0B  # advisory-lock namespace of this benchmark (the service uses 0x5B0A)

TARGET_RATE = 500.0  # assignments per second
TARGET_P99_MS = 50.0
TARGET_CONCURRENCY = 32
TARGET_BACKEND = "postgresql"

PRODUCTS = ("billing", "technical", "integrations", "mobile", "security", "reporting")
LANGUAGES = ("lang:en", "lang:de", "lang:es", "lang:fr")
TIERS = ("tier:2",)
TEAM_IDS = ("emea", "amer", "apac", "enterprise", "smb")


# --------------------------------------------------------------------------- databases


def sqlite_url(directory: Path) -> str:
    return f"sqlite:///{directory / 'switchboard_bench.db'}"


def postgres_url(server_url: str = PG_SERVER_URL, dbname: str = PG_BENCH_DB) -> str:
    return make_url(server_url).set(database=dbname).render_as_string(hide_password=False)


def _pg_server(server_url: str) -> Any:
    import psycopg

    u = make_url(server_url)
    return psycopg.connect(
        host=u.host or "127.0.0.1",
        port=u.port or 5432,
        user=u.username or "postgres",
        password=u.password or None,
        dbname=u.database or "postgres",
        autocommit=True,
        connect_timeout=5,
    )


@contextlib.contextmanager
def pg_exclusive(server_url: str = PG_SERVER_URL, dbname: str = PG_BENCH_DB) -> Iterator[None]:
    """Hold a server-wide advisory lock naming the benchmark database for the whole run.

    Resetting drops the database, killing its sessions: a second run started meanwhile (another
    engineer, CI) would wreck this one's measurements, so it is refused instead.
    """
    key = int.from_bytes(hashlib.blake2b(dbname.encode(), digest_size=4).digest(), "big") >> 1
    with _pg_server(server_url) as conn:
        row = conn.execute("SELECT pg_try_advisory_lock(%s, %s)", (_PG_LOCK_NS, key)).fetchone()
        if not row or not row[0]:
            raise SystemExit(
                f"another benchmark run is using PostgreSQL database {dbname!r}; wait for it to "
                "finish or pass --pg-database NAME"
            )
        yield  # closing the connection releases the lock


def reset_postgres(server_url: str = PG_SERVER_URL, dbname: str = PG_BENCH_DB) -> str:
    """Drop and re-create the benchmark database; returns its SQLAlchemy URL."""
    with _pg_server(server_url) as conn:
        # A previous run killed mid-way may have left sessions open on it.
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid()",
            (dbname,),
        )
        conn.execute(f'DROP DATABASE IF EXISTS "{dbname}"')
        conn.execute(f'CREATE DATABASE "{dbname}"')
    return postgres_url(server_url, dbname)


# --------------------------------------------------------------------------- seeding


@dataclass(frozen=True)
class Seeded:
    tenant_id: str
    helpdesk_key: str
    ticket_ids: tuple[str, ...]
    agents: int


def seed_tenant(
    settings: Settings,
    *,
    now: datetime,
    n_agents: int = 200,
    n_tickets: int = 6000,
    seed: int = 7,
    batch: int = 500,
) -> Seeded:
    """One tenant with ``n_agents`` agents on shift at ``now`` and ``n_tickets`` unassigned,
    active tickets, written through the same services the API uses.

    Capacity is sized so the whole pool fits (every assignment in a run can go to an agent
    rather than overflow into a team queue), and effort is small enough that backlogs stay
    within the shifts.
    """
    rng = random.Random(seed)
    capacity = max(5, -(-n_tickets // n_agents) + 10)
    engine = make_engine(settings)
    try:
        factory = make_session_factory(engine)
        with factory() as session:
            tenant, _ = tenants.create(session=session, name="Benchmark Co", now=now)
            _, helpdesk_key = api_keys.create(
                session=session,
                tenant_id=tenant.id,
                name="benchmark helpdesk",
                scopes=[Scope.HELPDESK],
                now=now,
            )
            tid = tenant.id
            for ident in PRODUCTS:
                _skill(session, tid, ident, SkillKind.SKILL, now)
            for ident in LANGUAGES:
                _skill(session, tid, ident, SkillKind.LANGUAGE, now)
            for ident in TIERS:
                _skill(session, tid, ident, SkillKind.TIER, now)
            for ident in TEAM_IDS:
                teams.create(
                    session=session, tenant_id=tid, data=TeamCreate(id=ident, name=ident), now=now
                )
            for i in range(n_agents):
                agent_id = f"agent-{i:04d}"
                levels = {
                    "lang:en": rng.randint(3, 5),
                    rng.choice(LANGUAGES[1:]): rng.randint(1, 5),
                }
                for product in rng.sample(PRODUCTS, 3):
                    levels[product] = rng.randint(1, 5)
                if i % 5 == 0:
                    levels["tier:2"] = 3
                agents.create(
                    session=session,
                    tenant_id=tid,
                    data=AgentCreate(
                        id=agent_id,
                        name=f"Agent {i}",
                        team=TEAM_IDS[i % len(TEAM_IDS)],
                        skills=levels,
                        capacity=capacity,
                    ),
                    now=now,
                )
                # Today's shift started an hour ago; two more days follow.
                for day in range(3):
                    start = now - timedelta(hours=1) + timedelta(days=day)
                    shifts.create(
                        session=session,
                        tenant_id=tid,
                        data=ShiftCreate(
                            agent=agent_id, start=start, end=start + timedelta(hours=10)
                        ),
                        now=now,
                    )
            session.commit()
            ticket_ids = []
            for n in range(n_tickets):
                ticket_id = f"BENCH-{n:06d}"
                created = now - timedelta(minutes=rng.randint(1, 240))
                required = {rng.choice(PRODUCTS): rng.randint(1, 3), "lang:en": rng.randint(1, 3)}
                tickets.upsert(
                    session=session,
                    tenant_id=tid,
                    ticket_id=ticket_id,
                    data=TicketIn(
                        team=rng.choice(TEAM_IDS),
                        required_skills=required,
                        priority=rng.choice(list(TicketPriority)),
                        created_at=created,
                        first_response_due=created + timedelta(hours=rng.randint(1, 8)),
                        resolution_due=created + timedelta(days=rng.randint(1, 3)),
                        effort_minutes=rng.randint(3, 12),
                        requester=f"customer-{rng.randint(1, 500)}@example.com",
                    ),
                    now=now,
                    actor="benchmark-seed",
                )
                ticket_ids.append(ticket_id)
                if (n + 1) % batch == 0:
                    session.commit()
            session.commit()
    finally:
        engine.dispose()
    return Seeded(tid, helpdesk_key, tuple(ticket_ids), n_agents)


def _skill(session: Session, tenant_id: str, ident: str, kind: SkillKind, now: datetime) -> None:
    skills.create(
        session=session, tenant_id=tenant_id, data=SkillCreate(id=ident, kind=kind), now=now
    )


def reset_assignments(engine: Engine, tenant_id: str) -> None:
    """Every ticket of the tenant back to new and unassigned, so each run assigns fresh ones.

    A bulk UPDATE, not the API: the history keeps growing across runs (as it would in
    production) but loads start from zero each time.
    """
    with Session(engine) as session:
        session.execute(
            update(Ticket)
            .where(Ticket.tenant_id == tenant_id)
            .values(owner_agent_id=None, status=TicketStatus.NEW)
        )
        session.commit()
    # The UPDATE leaves a dead version of every ticket behind. A production database has
    # autovacuum to clear them (this machine's PostgreSQL runs with it off) and fresh statistics;
    # without this, each run measures the previous runs' bloat (the loads query scanned 170k
    # dead rows, 9 ms instead of 0.6) and plans made for an empty table.
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM ANALYZE tickets, ticket_skills, ticket_events, agents")


def prepare(
    backend: str,
    workdir: Path,
    *,
    n_agents: int,
    n_tickets: int,
    now: datetime,
    pg_database: str = PG_BENCH_DB,
) -> tuple[str, Seeded]:
    """A migrated, seeded database of ``backend``: (its URL, what was seeded)."""
    workdir.mkdir(parents=True, exist_ok=True)
    url = sqlite_url(workdir) if backend == "sqlite" else reset_postgres(dbname=pg_database)
    migrate.upgrade(url)
    settings = Settings(database_url=url, environment=Environment.TEST)
    return url, seed_tenant(settings, now=now, n_agents=n_agents, n_tickets=n_tickets)


# --------------------------------------------------------------------------- the server


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def serve(
    database_url: str,
    *,
    workers: int,
    log: Path,
    env_extra: dict[str, str] | None = None,
    code: Path | None = None,
) -> Iterator[tuple[str, int]]:
    """The service under uvicorn (:func:`run_server`) in a subprocess; yields its base URL and
    pid once it answers. ``env_extra`` adds settings (``SWITCHBOARD_DB_POOL_SIZE``, ...);
    ``code`` serves another checkout (a before/after run) instead of this one."""
    port = free_port()
    root = code or Path(__file__).resolve().parent.parent
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "SWITCHBOARD_ENVIRONMENT": "development",
        # Background work would compete for the same cores; it is not what is measured.
        "SWITCHBOARD_JOBS_WORKER": "false",
        "SWITCHBOARD_WEBHOOK_DELIVERER": "false",
        **(env_extra or {}),
    }
    launch = f"from benchmarks.api import run_server; run_server({port}, {workers})"
    cmd = [sys.executable, "-c", launch]
    with log.open("ab") as out:
        proc = subprocess.Popen(cmd, cwd=root, env=env, stdout=out, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(base, proc, timeout=60.0, log=log)
        _settle(proc.pid)
        yield base, proc.pid
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def run_server(port: int, workers: int, host: str = "127.0.0.1") -> None:
    """The service as ``switchboard serve --workers N`` runs it (:func:`api.serve.run`), with
    settings read once from this process's environment and no access log.

    ``api.serve`` binds the listening socket as TCP itself: uvicorn's own ``--workers N`` binds
    it without ``IPPROTO_TCP`` and, on asyncio's loop, every keep-alive response then waits
    ~40 ms for the client's delayed ACK (Kludex/uvicorn#3149).
    """
    from api.serve import run
    from api.settings import Settings

    sys.exit(
        run(
            Settings(), host=host, port=port, workers=workers, log_level="warning", access_log=False
        )
    )


def _settle(pid: int, *, timeout: float = 30.0, busy: float = 0.05) -> None:
    """Wait until ``pid``'s process tree is idle (under ``busy`` of a core over 0.5 s).

    The server answers before its start-up is over: the solve pool spawns its processes and
    imports the app in them in the background (``SolvePool.warm``), seconds of CPU on this
    machine that the first run's server CPU would otherwise count (measured: 5.2 ms per
    assignment at 8 clients against 1.1 at 32 in the same run)."""
    deadline = time.monotonic() + timeout
    before = sum(_cpu_of(_tree(pid)).values())
    while time.monotonic() < deadline:
        time.sleep(0.5)
        now = sum(_cpu_of(_tree(pid)).values())
        if now - before < busy * 0.5:
            return
        before = now


def _wait_ready(base: str, proc: subprocess.Popen[bytes], *, timeout: float, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with {proc.returncode}; see {log}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(base + HEALTH_PATH, timeout=1.0).status_code == 200:
                return
        time.sleep(0.2)
    raise RuntimeError(f"the server did not answer {HEALTH_PATH} within {timeout:.0f} s; see {log}")


# --------------------------------------------------------------------------- the load


# Outcomes of a request: an agent took the ticket, or (still a 200) it stayed in its team's
# queue because nobody qualified had room; anything else is an error.
ASSIGNED = "200"
QUEUED = "200 queued"
SUCCESS = (ASSIGNED, QUEUED)


# --- CPU accounting: on a shared 2-core machine wall-clock figures move with everyone else's
# load, CPU seconds per request much less, so both are reported (Linux /proc only).

_CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _proc_stat(pid: int) -> tuple[int, float] | None:
    """(parent pid, CPU seconds used) of a process, or None once it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / _CLK_TCK


def _tree(root: int) -> set[int]:
    """``root`` and all its descendants (the launcher, uvicorn's supervisor, its workers)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (stat := _proc_stat(int(entry.name))) is not None:
            parents[int(entry.name)] = stat[0]
    found = {root}
    grew = True
    while grew:
        more = {pid for pid, parent in parents.items() if parent in found} - found
        found |= more
        grew = bool(more)
    return found


def _cpu_of(pids: set[int]) -> dict[int, float]:
    out = {}
    for pid in pids:
        if (stat := _proc_stat(pid)) is not None:
            out[pid] = stat[1]
    return out


def _machine_busy_seconds() -> float:
    """CPU seconds the whole machine spent busy (all processes, all cores) since boot."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n")[0].split()[1:9]]
    idle = values[3] + values[4]
    return (sum(values) - idle) / _CLK_TCK


ASSIGN_ROUTE = "/v1/tickets/{ticket_id}/assign"  # the route template /metrics labels with


def scrape_latency_buckets(
    base: str, route: str = ASSIGN_ROUTE, method: str = "POST"
) -> dict[float, float]:
    """Cumulative counts of the server's own latency histogram for ``method`` ``route``
    (``switchboard_http_request_duration_seconds``): upper bound in seconds -> requests."""
    from prometheus_client.parser import text_string_to_metric_families

    text = httpx.get(base + "/metrics", timeout=10.0).text
    out: dict[float, float] = {}
    for family in text_string_to_metric_families(text):
        if family.name != "switchboard_http_request_duration_seconds":
            continue
        for sample in family.samples:
            labels = sample.labels
            if (
                sample.name.endswith("_bucket")
                and labels.get("method") == method
                and labels.get("route") == route
            ):
                out[float(labels["le"])] = out.get(float(labels["le"]), 0.0) + sample.value
    return out


def bucket_percentile(buckets: dict[float, float], q: float) -> float:
    """The ``q``-th percentile (ms) of a cumulative histogram, interpolated within buckets."""
    bounds = sorted(buckets)
    total = buckets[bounds[-1]] if bounds else 0.0
    if total <= 0:
        return float("nan")
    target = q / 100.0 * total
    lower, below = 0.0, 0.0
    for bound in bounds:
        count = buckets[bound]
        if count >= target:
            if bound == float("inf"):
                return lower * 1000.0  # beyond the last finite bucket: a lower bound
            share = (target - below) / (count - below) if count > below else 1.0
            return (lower + (bound - lower) * share) * 1000.0
        lower, below = bound, count
    return lower * 1000.0


@dataclass(frozen=True)
class Measures:
    """What one measured run cost, by whom (CPU seconds), and the server's own view of its
    latency (a histogram delta from ``/metrics``; one worker's view when there are several)."""

    server: float
    database: float  # PostgreSQL backends serving the benchmark database (0 for SQLite)
    client: float  # this process: the load generator
    machine: float  # everything on the machine, other engineers' work included
    server_latency: dict[float, float] | None = None


class Probe:
    """Samples the CPU time of the server's process tree, the database's backends and this
    process, and optionally the server's latency histogram, at the start and end of a run."""

    def __init__(
        self,
        server_pid: int,
        db_pids: Callable[[], set[int]] | None = None,
        metrics_base: str | None = None,
        route: tuple[str, str] = ("POST", ASSIGN_ROUTE),
    ) -> None:
        self.server_pid = server_pid
        self.db_pids = db_pids
        self.metrics_base = metrics_base
        self.method, self.route = route
        self._start: tuple[dict[int, float], dict[int, float], float, float] | None = None
        self._buckets: dict[float, float] = {}

    def _sample(self) -> tuple[dict[int, float], dict[int, float], float, float]:
        db = _cpu_of(self.db_pids()) if self.db_pids else {}
        return _cpu_of(_tree(self.server_pid)), db, time.process_time(), _machine_busy_seconds()

    def start(self) -> None:
        if self.metrics_base:
            self._buckets = scrape_latency_buckets(self.metrics_base, self.route, self.method)
        self._start = self._sample()

    def stop(self) -> Measures:
        assert self._start is not None, "start() first"
        server0, db0, client0, machine0 = self._start
        server1, db1, client1, machine1 = self._sample()
        latency = None
        if self.metrics_base:
            after = scrape_latency_buckets(self.metrics_base, self.route, self.method)
            latency = {le: n - self._buckets.get(le, 0.0) for le, n in after.items()}
        # A backend that appeared during the run counts from zero; one that left is lost
        # (pool overflow connections come and go: a small undercount).
        return Measures(
            server=sum(t - server0.get(pid, 0.0) for pid, t in server1.items()),
            database=sum(t - db0.get(pid, 0.0) for pid, t in db1.items()),
            client=client1 - client0,
            machine=machine1 - machine0,
            server_latency=latency,
        )


def postgres_backends(url: str) -> Callable[[], set[int]]:
    """A function listing the server pids of every session open on ``url``'s database."""
    dbname = make_url(url).database

    def pids() -> set[int]:
        with _pg_server(PG_SERVER_URL) as conn:
            rows = conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                (dbname,),
            ).fetchall()
        return {int(r[0]) for r in rows}

    return pids


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
        # This process imported the whole service to seed it: a full collection of its heap
        # stops every in-flight request's clock for 100-200 ms (measured with gc callbacks),
        # a client pause the p99 would blame on the server. Freeze the heap for the run.
        gc.collect()
        gc.freeze()
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


def _client_loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop for the load generator when installed (~10-20 % less CPU per request, measured;
    uvicorn picks it for the server on its own); the standard loop otherwise."""
    try:
        import uvloop
    except ImportError:
        return None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


def run_backend(
    backend: str,
    *,
    workers_list: Sequence[int],
    concurrencies: Sequence[int],
    duration: float,
    n_agents: int,
    n_tickets: int,
    workdir: Path,
    console: Console,
    pg_database: str = PG_BENCH_DB,
    env_extra: dict[str, str] | None = None,
    rate: float | None = None,
    client: str = "raw",
    open_check: bool = True,
    baseline: bool = True,
) -> list[RunResult]:
    """Seed ``backend``, then for each worker count one run per concurrency (open loop at
    ``rate`` when given, else closed loop). With ``open_check``, closed-loop runs on the target
    backend add one open-loop run at the target rate and concurrency, so both readings of the
    target ("N clients never waiting" and "N/s offered") are measured side by side. With
    ``baseline``, each closed-loop run is followed by the same clients sending the bare GET of
    :data:`BASELINE_PATH` to the same server for the same duration (``RunResult.baseline``)."""
    loads: list[tuple[int, float | None]] = [(c, rate) for c in concurrencies]
    if open_check and rate is None and backend == TARGET_BACKEND:
        loads.append((TARGET_CONCURRENCY, TARGET_RATE))
    now = datetime.now(UTC)
    t0 = time.perf_counter()
    url, seeded = prepare(
        backend,
        workdir,
        n_agents=n_agents,
        n_tickets=n_tickets,
        now=now,
        pg_database=pg_database,
    )
    console.print(
        f"[bold]{backend}[/]: migrated and seeded {seeded.agents} agents, "
        f"{len(seeded.ticket_ids)} tickets in {time.perf_counter() - t0:.1f} s"
    )
    engine = make_engine(Settings(database_url=url, environment=Environment.TEST))
    results = []
    try:
        for workers in workers_list:
            log = workdir / f"server-{backend}-{workers}.log"
            with serve(url, workers=workers, log=log, env_extra=env_extra) as (base, server_pid):
                db_pids = postgres_backends(url) if backend == "postgresql" else None
                for concurrency, offered in loads:
                    reset_assignments(engine, seeded.tenant_id)
                    with asyncio.Runner(loop_factory=_client_loop_factory()) as runner:
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
                                probe=Probe(
                                    server_pid,
                                    db_pids,
                                    metrics_base=base if workers == 1 else None,
                                ),
                            )
                        )
                    result = RunResult(
                        backend, workers, concurrency, latencies, elapsed, outcomes, cpu, offered
                    )
                    if baseline and offered is None:
                        result.baseline = _run_baseline(
                            base,
                            seeded.helpdesk_key,
                            backend=backend,
                            workers=workers,
                            concurrency=concurrency,
                            duration=duration,
                            client=client,
                            probe=Probe(
                                server_pid,
                                db_pids,
                                metrics_base=base if workers == 1 else None,
                                route=("GET", BASELINE_PATH),
                            ),
                        )
                    results.append(result)
                    console.print(
                        f"  {backend} workers={workers} clients={concurrency} {result.load}: "
                        f"{result.throughput:.0f}/s p50 {result.percentile(50):.1f} ms "
                        f"p99 {result.percentile(99):.1f} ms errors {result.errors}"
                        + (f" {dict(outcomes)}" if result.errors else "")
                    )
                    if (get := result.baseline) is not None:
                        console.print(
                            f"  {backend} workers={workers} clients={concurrency} GET baseline: "
                            f"{get.throughput:.0f}/s p50 {get.percentile(50):.1f} ms "
                            f"p99 {get.percentile(99):.1f} ms errors {get.errors}"
                            + (f" {dict(get.statuses)}" if get.errors else "")
                        )
    finally:
        engine.dispose()
    return results


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
    with asyncio.Runner(loop_factory=_client_loop_factory()) as runner:
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


# --------------------------------------------------------------------------- reporting


def results_table(results: Sequence[RunResult]) -> Table:
    table = Table(title="POST /v1/tickets/{id}/assign under load (200 agents)")
    columns = (
        "backend",
        "workers",
        "clients",
        "load",
        "answered",
        "queued",
        "errors",
        "assign/s",
        "p50 ms",
        "p99 ms",
        "max ms",
        "server p50/p99",
        "server CPU ms",
        "PG CPU ms",
        "client CPU ms",
        "others' cores",
        "CPU ceiling /s",
        "target",
    )
    for name in columns:
        table.add_column(name, justify="left" if name in ("backend", "target") else "right")
    for r in results:
        is_target_row = r.backend == TARGET_BACKEND and r.concurrency == TARGET_CONCURRENCY
        verdict = ("[green]met[/]" if r.meets_target else "[red]missed[/]") if is_target_row else ""
        table.add_row(
            r.backend,
            str(r.workers),
            str(r.concurrency),
            r.load,
            str(r.ok),
            str(r.queued),
            str(r.errors),
            f"{r.throughput:.0f}",
            f"{r.percentile(50):.1f}",
            f"{r.percentile(99):.1f}",
            f"{r.percentile(100):.1f}",
            (
                f"{r.server_percentile(50):.1f}/{r.server_percentile(99):.1f}"
                if r.cpu is not None and r.cpu.server_latency
                else "-"
            ),
            f"{r.cpu_ms_per_request('server'):.2f}",
            f"{r.cpu_ms_per_request('database'):.2f}" if r.backend == "postgresql" else "-",
            f"{r.cpu_ms_per_request('client'):.2f}",
            f"{r.cpu_ms_per_request('others'):.2f}",
            f"{r.cpu_ceiling():.0f}",
            verdict,
        )
    return table


def baseline_table(results: Sequence[RunResult]) -> Table:
    """The bare GET measured beside each closed-loop run, and the assignment as ratios to it."""
    table = Table(
        title=f"GET {BASELINE_PATH} beside it (same server, clients and duration), and the "
        "assignment as ratios to it"
    )
    columns = (
        "backend",
        "workers",
        "clients",
        "errors",
        "GET/s",
        "p50 ms",
        "p99 ms",
        "server p50/p99",
        "server CPU ms",
        "PG CPU ms",
        "others' cores",
        "assign CPU x GET",
        "assign/s / GET/s",
    )
    for name in columns:
        table.add_column(name, justify="left" if name == "backend" else "right")
    for r in results:
        if (g := r.baseline) is None:
            continue
        table.add_row(
            g.backend,
            str(g.workers),
            str(g.concurrency),
            str(g.errors),
            f"{g.throughput:.0f}",
            f"{g.percentile(50):.1f}",
            f"{g.percentile(99):.1f}",
            (
                f"{g.server_percentile(50):.1f}/{g.server_percentile(99):.1f}"
                if g.cpu is not None and g.cpu.server_latency
                else "-"
            ),
            f"{g.cpu_ms_per_request('server'):.2f}",
            f"{g.cpu_ms_per_request('database'):.2f}" if g.backend == "postgresql" else "-",
            f"{g.cpu_ms_per_request('others'):.2f}",
            f"{r.cpu_ratio():.2f}",
            f"{r.throughput_ratio():.2f}",
        )
    return table


BASELINE_LEGEND = (
    "The GET runs right after the assignment run of its row, closed loop. assign CPU x GET: "
    "server CPU per assignment / server CPU per GET; assign/s / GET/s: throughputs. The GET "
    "pays the same HTTP layer (auth, gate, rate limiter, idempotency, metrics, routing) and one "
    "primary-key read, but its route is a plain def run on the thread pool (a hand-off the "
    "async assignment route does not pay): see python -m benchmarks.http_profile."
)


def target_line(results: Sequence[RunResult]) -> str:
    rows = [
        r for r in results if r.backend == TARGET_BACKEND and r.concurrency == TARGET_CONCURRENCY
    ]
    goal = (
        f">= {TARGET_RATE:.0f} assignments/s with p99 <= {TARGET_P99_MS:.0f} ms at "
        f"{TARGET_CONCURRENCY} clients on PostgreSQL"
    )
    if not rows:
        return f"Target {goal}: not measured in this run."
    parts = []
    for closed in (True, False):
        mine = [r for r in rows if (r.offered_rate is None) is closed]
        if not mine:
            continue
        best = max(mine, key=lambda r: (r.meets_target, r.throughput))
        mode = "closed loop" if closed else f"open loop at {best.offered_rate:.0f}/s"
        parts.append(
            f"{mode} {'MET' if best.meets_target else 'MISSED'} (best: {best.workers} "
            f"worker(s), {best.throughput:.0f}/s, p99 {best.percentile(99):.1f} ms)"
        )
    return f"Target {goal}: " + "; ".join(parts)


def machine_note() -> str:
    load = os.getloadavg()
    return (
        f"{os.cpu_count()} CPUs, load average {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}; "
        "the load generator runs on the same cores as the server."
    )


LEGEND = (
    "p50/p99: as the clients saw them; server p50/p99: the app's own /metrics histogram (one "
    "worker only), the gap is queueing in uvicorn and the generator. CPU ms: per answered "
    "request, of the server processes, PostgreSQL backends (an undercount when the pool opens "
    "and closes overflow connections) and the load generator. others' cores: what the rest of "
    "the machine used meanwhile. CPU ceiling: 2 cores / (server + database + generator CPU per "
    "assignment), the rate an otherwise idle 2-core machine could sustain at this cost."
)


# --------------------------------------------------------------------------- profiling


def profile_assign(
    backend: str,
    workdir: Path,
    *,
    n: int,
    console: Console,
    pg_database: str = PG_BENCH_DB,
    batches: Sequence[int] = (1, 8),
) -> None:
    """Where an assignment's time goes, in-process (no HTTP, no uvicorn): SQL statements and
    time in the database driver vs. Python, how long the serializing lock is held, then a
    pyinstrument profile.

    Follows the route's write path: ``assign_many`` in one unit of work per batch (the route
    groups concurrent requests of a tenant into one; a batch of 1 is a lone request, a batch of
    8 what 8 concurrent clients share), commit, and the response document per assignment.
    """
    from pyinstrument import Profiler
    from sqlalchemy import event

    from api.main import create_app
    from api.routes.assignment import assignment_json
    from api.services import assignment
    from api.services.realtime_cache import RealtimeCache

    now = datetime.now(UTC)
    url, seeded = prepare(
        backend,
        workdir / "profile",
        n_agents=200,
        n_tickets=(len(batches) + 1) * n + 10,
        now=now,
        pg_database=pg_database,
    )
    settings = Settings(database_url=url, environment=Environment.TEST)
    create_app(settings)  # installs the ORM listeners the services rely on (org versions)
    engine = make_engine(settings)
    factory = make_session_factory(engine)
    cache = RealtimeCache()
    # statement's first words -> [count, seconds]; and when the first serializing lock was
    # asked for: the tenant's advisory lock, SQLite's BEGIN IMMEDIATE (the whole database) or,
    # on a row-locking path, the chosen agent's row.
    statements: dict[str, list[float]] = {}
    lock_at: list[tuple[str, float]] = []
    lock_kinds: Counter[str] = Counter()

    @event.listens_for(engine, "before_cursor_execute")
    def _before(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        conn.info["t0"] = time.perf_counter()
        if "pg_advisory_xact_lock" in statement:
            lock_at.append(("the tenant lock", conn.info["t0"]))
        elif statement.startswith("BEGIN IMMEDIATE"):
            lock_at.append(("SQLite's write lock (every tenant)", conn.info["t0"]))
        elif "FROM agents" in statement and "FOR UPDATE" in statement:
            lock_at.append(("the chosen agent's row lock", conn.info["t0"]))

    @event.listens_for(engine, "after_cursor_execute")
    def _after(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        took = time.perf_counter() - conn.info.pop("t0", time.perf_counter())
        entry = statements.setdefault(" ".join(statement.split())[:70], [0, 0.0])
        entry[0] += 1
        entry[1] += took

    def batch(ticket_ids: Sequence[str]) -> float:
        """One unit of work as the route's batcher runs it; returns how long its first lock
        was held (to the end of COMMIT)."""
        lock_at.clear()
        stamp = datetime.now(UTC)
        requests = [
            assignment.AssignRequest(ticket_id=t, now=stamp, actor="profile") for t in ticket_ids
        ]
        with factory() as session:
            results = assignment.assign_many(
                session=session, cache=cache, tenant_id=seeded.tenant_id, requests=requests
            )
            session.commit()
        held = 0.0
        if lock_at:
            kind, since = lock_at[0]
            lock_kinds[kind] += 1
            held = time.perf_counter() - since
        for result in results:
            if isinstance(result, Exception):
                raise result
            assignment_json(
                result.decision,
                previous=result.previous,
                changed=result.event is not None,
                event=result.event,
                dry_run=False,
            )
        return held

    ids = list(seeded.ticket_ids)
    batch([ids.pop()])  # builds the cached index, as the first request of a process does
    for size in batches:
        todo, ids = ids[:n], ids[n:]
        statements.clear()
        lock_kinds.clear()
        t0 = time.perf_counter()
        held = sum(batch(todo[k : k + size]) for k in range(0, len(todo), size))
        wall = time.perf_counter() - t0
        per, held_ms = wall / n * 1000, held / n * 1000
        sql_s = sum(seconds for _, seconds in statements.values())
        table = Table(
            title=f"{backend}: assignments in batches of {size}, in-process (mean of {n}), SQL "
            "per assignment"
        )
        table.add_column("statements", justify="right")
        table.add_column("ms", justify="right")
        table.add_column("statement")
        for text, (count, seconds) in sorted(statements.items(), key=lambda kv: -kv[1][1]):
            table.add_row(f"{count / n:.2f}", f"{seconds / n * 1000:.3f}", text)
        console.print(table)
        console.print(
            f"[bold]{backend}[/], batches of {size}: {per:.2f} ms per assignment in-process, "
            f"{sum(c for c, _ in statements.values()) / n:.2f} SQL statements taking "
            f"{sql_s / n * 1000:.2f} ms in the driver ({sql_s / wall:.0%}; COMMIT not "
            "included), the rest Python."
        )
        if lock_kinds:
            kind, _ = lock_kinds.most_common(1)[0]
            scope = "one agent" if "agent" in kind else "one tenant"
            console.print(
                f"Serializing lock: {kind}, held {held_ms:.2f} ms per assignment (to the end of "
                f"COMMIT): {scope} cannot take more than "
                f"~{1000 / held_ms if held_ms else float('inf'):.0f} assignments/s at this batch "
                "size, however many workers serve it."
            )
    reset_assignments(engine, seeded.tenant_id)
    profiler = Profiler(interval=0.0005)
    profiler.start()
    todo = list(seeded.ticket_ids[:n])
    size = batches[-1]
    for k in range(0, len(todo), size):
        batch(todo[k : k + size])
    profiler.stop()
    console.print(f"pyinstrument, batches of {size}:")
    console.print(profiler.output_text(unicode=True, color=False, show_all=False, short_mode=True))
    engine.dispose()


# --------------------------------------------------------------------------- main


def ints(text: str) -> list[int]:
    """An argparse type: comma-separated integers."""
    return [int(x) for x in text.split(",") if x.strip()]


def backend_list(text: str) -> list[str]:
    """An argparse type: comma-separated backends, each sqlite or postgresql."""
    backends = [b.strip() for b in text.split(",") if b.strip()]
    for b in backends:
        if b not in ("sqlite", "postgresql"):
            raise argparse.ArgumentTypeError(f"unknown backend {b!r}: sqlite or postgresql")
    return backends


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
    args = parser.parse_args(argv)
    backends = args.backends

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
        for backend in [] if args.profile_only else backends:
            results += run_backend(
                backend,
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


if __name__ == "__main__":
    raise SystemExit(main())
