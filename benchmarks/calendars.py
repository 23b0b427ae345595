"""Benchmark of the calendar sync: ``python -m benchmarks.calendars``.

One tenant, ``--agents`` agents (default 500), each with one calendar connection made through
the admin API (``POST /v1/calendar-connections``) to the fake provider servers the tests use
(benchmarks/calendar_fakes/): the agents are split evenly over ``--providers`` (default
google,microsoft,ics). Google connections each carry their own OAuth refresh token (per-user
consent: one token request per connection); Microsoft 365 ones share one app registration (one
token for all, as msal's shared cache makes it); ICS ones each read their own secret feed. Every
calendar holds ``--events`` events (default 10) spread over the sync horizon, with titles,
bodies and locations the connectors must drop.

The sync runs as production runs it: the app's job worker (:class:`api.jobs.worker.Worker`,
one job at a time, claimed from the database) with the service's ``calendar.sync`` handler, on
the real connectors (google-api-python-client, msal + requests, httpx) over loopback HTTP(S).
``--workers N`` runs N such workers at once (threads here; production would run worker
processes or replicas). Only the sync jobs are claimed here: the push-channel watches a new
connection also queues and the booking re-checks a merge that adds busy time queues are other
work, left waiting.

Two phases, each timed from the first claim to an empty queue:

1. **full**: the first sync of every connection (queued by the admin API at creation).
2. **incremental**: ``--changes`` events moved on as many calendars (spread over the
   providers), the clock advanced by ``calendar_poll_seconds``, and one round of polls: every
   connection synced again from its cursor.

Per phase: wall time, jobs run (and their outcomes), requests the fakes counted (API, token and
discovery), busy intervals stored, and seconds per job; against the issue's targets (full sync
of 500 agents <= 30 s, an incremental round <= 5 s): met or missed. The load average is printed
beside the figures (a shared 2-core machine: re-run before trusting one). ``--backend postgres``
runs on PostgreSQL database ``switchboard_bench`` (dropped and re-created, guarded against a
concurrent run) instead of a SQLite file. ``--profile PREFIX`` writes a pyinstrument profile
of each phase (``PREFIX-full.txt``, ``PREFIX-incremental.txt``).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from rich.console import Console
from rich.progress import Progress
from rich.table import Table
from sqlalchemy import func, select

from api.calendar_sync import jobs as calendar_jobs
from api.calendar_sync import sync
from api.db import migrate
from api.db.jobs import Job
from api.db.models import BusyInterval
from api.jobs.worker import Worker
from api.keys import tenants
from api.main import create_app
from api.settings import Environment, Settings
from benchmarks.calendar_fakes.google import FakeGoogle
from benchmarks.calendar_fakes.ics import FakeIcs, event, feed
from benchmarks.calendar_fakes.microsoft import FakeMicrosoft
from benchmarks.harness.databases import PG_BENCH_DB, pg_exclusive, reset_postgres, sqlite_url

PROVIDERS = ("google", "microsoft", "ics")
TARGET_FULL_S = 30.0  # full sync of 500 agents
TARGET_INCREMENTAL_S = 5.0  # one incremental round of 500 agents
TARGET_AGENTS = 500
NOW = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)  # a Monday morning, fixed: runs compare


class Clock:
    """The service's clock for the run: fixed, advanced between phases."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Fakes:
    google: FakeGoogle | None = None
    microsoft: FakeMicrosoft | None = None
    ics: FakeIcs | None = None

    def requests(self) -> Counter[str]:
        """Requests each fake served so far, by provider."""
        out: Counter[str] = Counter()
        if self.google is not None:
            out["google"] = self.google.total_requests
        if self.microsoft is not None:
            ms = self.microsoft
            out["microsoft"] = sum(ms.requests.values()) + ms.token_requests + ms.discovery_requests
        if self.ics is not None:
            out["ics"] = int(self.ics.requests)
        return out


@dataclass
class Phase:
    name: str
    seconds: float
    jobs: int
    outcomes: Counter[str]
    requests: Counter[str]
    busy: int
    target: float
    load: tuple[float, float, float]
    per_provider_seconds: dict[str, float] = field(default_factory=dict)

    @property
    def met(self) -> bool:
        return self.seconds <= self.target


def providers_list(text: str) -> list[str]:
    names = [p.strip() for p in text.split(",") if p.strip()]
    for name in names:
        if name not in PROVIDERS:
            raise argparse.ArgumentTypeError(f"unknown provider {name!r}: one of {PROVIDERS}")
    if not names:
        raise argparse.ArgumentTypeError("name at least one provider")
    return names


# --------------------------------------------------------------------------- the calendars


def spread(rng: random.Random, n: int, horizon_days: int) -> list[tuple[datetime, datetime]]:
    """``n`` events of 30-90 minutes on working hours of the horizon's days."""
    out = []
    for _ in range(n):
        day = NOW.replace(hour=0) + timedelta(days=rng.randrange(horizon_days))
        start = day + timedelta(hours=rng.randrange(8, 17), minutes=rng.choice((0, 30)))
        out.append((start, start + timedelta(minutes=rng.choice((30, 60, 90)))))
    return out


CONTENTS = {"title": "Salary review", "body": "Private notes", "location": "Room 101"}


@dataclass
class Seeded:
    """Where each agent's calendar lives, to change a few events later."""

    google: list[tuple[str, str]] = field(default_factory=list)  # (calendar, an event id)
    microsoft: list[str] = field(default_factory=list)  # an event id
    ics: list[tuple[str, str, list[tuple[datetime, datetime]]]] = field(default_factory=list)


def seed_calendars(
    client: TestClient,
    key: str,
    fakes: Fakes,
    providers: Sequence[str],
    *,
    agents: int,
    events: int,
    horizon_days: int,
    progress: Progress,
) -> tuple[Seeded, dict[str, str]]:
    """Agents, their calendars in the fakes, and a connection each through the admin API;
    (what to change later, connection id -> provider)."""
    headers = {"Authorization": f"Bearer {key}"}
    rng = random.Random(7)
    seeded = Seeded()
    connections: dict[str, str] = {}

    def post(path: str, body: dict[str, Any]) -> dict[str, Any]:
        r = client.post(path, json=body, headers=headers)
        if r.status_code != 201:
            raise SystemExit(f"seeding failed: {path}: {r.status_code} {r.text[:300]}")
        answer: dict[str, Any] = r.json()
        return answer

    post("/v1/teams", {"id": "support"})
    task = progress.add_task("seeding agents and connections", total=agents)
    for n in range(agents):
        provider = providers[n % len(providers)]
        agent = f"agent-{n:04d}"
        post("/v1/agents", {"id": agent, "team": "support"})
        spans = spread(rng, events, horizon_days)
        if provider == "google":
            assert fakes.google is not None
            calendar = f"{agent}@example.com"
            fakes.google.add_calendar(calendar, time_zone="Europe/Berlin")
            ids = [
                fakes.google.add_event(
                    calendar,
                    a,
                    b,
                    summary=CONTENTS["title"],
                    description=CONTENTS["body"],
                    location=CONTENTS["location"],
                )
                for a, b in spans
            ]
            seeded.google.append((calendar, ids[0]))
            body = {
                "calendars": [calendar],
                "settings": fakes.google.settings(),
                "credentials": fakes.google.oauth_credentials(),
            }
        elif provider == "microsoft":
            assert fakes.microsoft is not None
            mailbox = f"{agent}@contoso.example"
            fakes.microsoft.add_mailbox(mailbox)
            ids = [
                fakes.microsoft.add_event(
                    mailbox,
                    a,
                    b,
                    subject=CONTENTS["title"],
                    body=CONTENTS["body"],
                    location=CONTENTS["location"],
                )
                for a, b in spans
            ]
            seeded.microsoft.append(ids[0])
            body = {
                "calendars": ["primary"],
                "settings": fakes.microsoft.settings(mailbox),
                "credentials": fakes.microsoft.credentials(),
            }
        else:
            assert fakes.ics is not None
            path = f"/{agent}-{rng.getrandbits(64):016x}.ics"
            fakes.ics.put(path, ics_feed(agent, spans))
            seeded.ics.append((path, agent, spans))
            body = {
                "calendars": ["feed"],
                "settings": {},
                "credentials": {"url": fakes.ics.url(path)},
            }
        made = post("/v1/calendar-connections", {"agent_id": agent, "provider": provider, **body})
        connections[made["id"]] = provider
        progress.advance(task)
    progress.remove_task(task)
    return seeded, connections


def ics_feed(agent: str, spans: Sequence[tuple[datetime, datetime]]) -> str:
    lines = [f"DESCRIPTION:{CONTENTS['body']}", f"LOCATION:{CONTENTS['location']}"]
    return feed(
        *(
            event(f"{agent}-{n}@bench", a, b, summary=CONTENTS["title"], lines=lines)
            for n, (a, b) in enumerate(spans)
        )
    )


def change_events(fakes: Fakes, seeded: Seeded, changes: int) -> int:
    """Move one event on ``changes`` calendars, spread over the providers; how many moved."""
    moved = 0
    later = timedelta(hours=1)
    pools: list[list[Any]] = [seeded.google, seeded.microsoft, seeded.ics]
    while moved < changes and any(pools):
        for pool in pools:
            if not pool or moved >= changes:
                continue
            item = pool.pop(0)
            if fakes.google is not None and pool is seeded.google:
                calendar, event_id = item
                current = fakes.google.event(calendar, event_id)["start"]["dateTime"]
                start = datetime.fromisoformat(current).astimezone(UTC) + later
                fakes.google.move_event(calendar, event_id, start, start + later)
            elif fakes.microsoft is not None and pool is seeded.microsoft:
                found = fakes.microsoft.by_id[item]
                fakes.microsoft.move_event(item, found.start + later, found.end + later)
            elif fakes.ics is not None:
                path, agent, spans = item
                spans = [(spans[0][0] + later, spans[0][1] + later), *spans[1:]]
                fakes.ics.put(path, ics_feed(agent, spans))
            moved += 1
    return moved


# --------------------------------------------------------------------------- running


def busy_rows(settings: Settings, session_factory: Any) -> int:
    with session_factory() as session:
        count = session.scalar(
            select(func.count())
            .select_from(BusyInterval)
            .where(BusyInterval.source.like(sync.SOURCE_PREFIX + "%"))
        )
    return int(count or 0)


def run_phase(
    name: str,
    workers: Sequence[Worker],
    session_factory: Any,
    settings: Settings,
    fakes: Fakes,
    *,
    expected: int,
    target: float,
    progress: Progress,
    profile: Path | None = None,
) -> Phase:
    """Run every due sync job with the workers, each one job at a time as its loop does (in a
    thread of its own when there are several, as several worker processes would claim)."""
    before = fakes.requests()
    task = progress.add_task(f"{name} sync", total=expected)
    ran: list[str] = []
    profiler: Any = None
    if profile is not None:
        from pyinstrument import Profiler

        profiler = Profiler()
        profiler.start()
    started = time.perf_counter()
    workers[0].recover()

    def drain(worker: Worker) -> None:
        while True:
            run = worker.run_once(recover=False)
            if run is None:
                return
            ran.append(run.job_id)  # list.append is atomic
            progress.advance(task)

    if len(workers) == 1:
        drain(workers[0])
    else:
        threads = [threading.Thread(target=drain, args=(w,)) for w in workers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    seconds = time.perf_counter() - started
    if profiler is not None:
        profiler.stop()
        assert profile is not None
        profile.write_text(profiler.output_text(unicode=True, show_all=False))
    progress.remove_task(task)
    outcomes: Counter[str] = Counter()
    with session_factory() as session:
        for job in session.scalars(select(Job).where(Job.id.in_(ran))):
            outcome = (job.result or {}).get("outcome") or job.status.value
            outcomes[str(outcome)] += 1
    after = fakes.requests()
    return Phase(
        name=name,
        seconds=seconds,
        jobs=len(ran),
        outcomes=outcomes,
        requests=after - before,
        busy=busy_rows(settings, session_factory),
        target=target,
        load=os.getloadavg(),
    )


def _named(prefix: Path | None, phase: str) -> Path | None:
    return None if prefix is None else prefix.with_name(f"{prefix.name}-{phase}.txt")


@contextlib.contextmanager
def fake_servers(providers: Sequence[str]) -> Iterator[Fakes]:
    fakes = Fakes()
    with contextlib.ExitStack() as stack:
        if "google" in providers:
            fakes.google = stack.enter_context(FakeGoogle())
        if "microsoft" in providers:
            fakes.microsoft = stack.enter_context(FakeMicrosoft(page_size=50))
        if "ics" in providers:
            fakes.ics = stack.enter_context(FakeIcs())
        yield fakes


def run(
    *,
    backend: str,
    agents: int,
    providers: Sequence[str],
    events: int,
    changes: int,
    workdir: Path,
    console: Console,
    pg_database: str,
    profile: Path | None,
    workers: int = 1,
) -> list[Phase]:
    url = sqlite_url(workdir) if backend == "sqlite" else reset_postgres(dbname=pg_database)
    migrate.upgrade(url)
    settings = Settings(database_url=url, environment=Environment.TEST)
    clock = Clock(NOW)
    app = create_app(settings, clock=clock)
    phases: list[Phase] = []
    with fake_servers(providers) as fakes, TestClient(app) as client:
        session_factory = app.state.session_factory
        with session_factory() as session:
            _, key = tenants.create(session=session, name="Calendar bench", now=NOW)
            session.commit()
        with Progress(console=console, transient=True) as progress:
            seeded, connections = seed_calendars(
                client,
                key,
                fakes,
                providers,
                agents=agents,
                events=events,
                horizon_days=settings.calendar_horizon_days,
                progress=progress,
            )
            # The app's worker's configuration, claiming the sync jobs only.
            app_worker: Worker = app.state.job_worker
            handler = app_worker.handlers[calendar_jobs.SYNC_JOB]
            pool = [
                Worker(
                    session_factory,
                    {calendar_jobs.SYNC_JOB: handler},
                    clock=clock,
                    lease_seconds=settings.jobs_lease_seconds,
                )
                for _ in range(workers)
            ]
            scale = agents / TARGET_AGENTS
            phases.append(
                run_phase(
                    "full",
                    pool,
                    session_factory,
                    settings,
                    fakes,
                    expected=len(connections),
                    target=TARGET_FULL_S * scale,
                    progress=progress,
                    profile=_named(profile, "full"),
                )
            )
            moved = change_events(fakes, seeded, changes)
            clock.now += timedelta(seconds=settings.calendar_poll_seconds)
            phases.append(
                run_phase(
                    f"incremental ({moved} changed)",
                    pool,
                    session_factory,
                    settings,
                    fakes,
                    expected=len(connections),
                    target=TARGET_INCREMENTAL_S * scale,
                    progress=progress,
                    profile=_named(profile, "incremental"),
                )
            )
    with contextlib.suppress(Exception):
        app.state.engine.dispose()
    return phases


def table(
    backend: str, agents: int, providers: Sequence[str], workers: int, phases: Sequence[Phase]
) -> Table:
    t = Table(
        title=f"calendar sync, {agents} agents ({', '.join(providers)}), {backend}, "
        f"{workers} worker{'s' if workers > 1 else ''}"
    )
    for column in (
        "phase",
        "wall s",
        "jobs",
        "outcomes",
        "requests",
        "busy rows",
        "ms / job",
        "target s",
        "load avg",
    ):
        t.add_column(column, justify="left" if column in ("phase", "outcomes") else "right")
    for p in phases:
        requests = ", ".join(f"{k} {v}" for k, v in sorted(p.requests.items()))
        t.add_row(
            p.name,
            f"{p.seconds:.2f}",
            str(p.jobs),
            ", ".join(f"{k} {v}" for k, v in sorted(p.outcomes.items())),
            f"{sum(p.requests.values())} ({requests})",
            str(p.busy),
            f"{1000 * p.seconds / max(1, p.jobs):.1f}",
            f"<= {p.target:.1f}: {'met' if p.met else 'MISSED'}",
            "{:.1f} / {:.1f} / {:.1f}".format(*p.load),
        )
    return t


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.calendars", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--agents", default=TARGET_AGENTS, type=int)
    parser.add_argument(
        "--providers",
        default=",".join(PROVIDERS),
        type=providers_list,
        help="comma-separated: google, microsoft, ics (agents split evenly)",
    )
    parser.add_argument("--events", default=10, type=int, help="events per calendar")
    parser.add_argument(
        "--changes", default=15, type=int, help="calendars with a moved event before the round"
    )
    parser.add_argument(
        "--backend",
        default="sqlite",
        choices=("sqlite", "postgres", "postgresql"),
        help="the database: a SQLite file in a temp dir (default) or PostgreSQL",
    )
    parser.add_argument(
        "--workers",
        default=1,
        type=int,
        help="job workers claiming at once (threads; production: worker processes)",
    )
    parser.add_argument(
        "--pg-database", default=PG_BENCH_DB, help="PostgreSQL database to (re)create and use"
    )
    parser.add_argument(
        "--profile",
        type=Path,
        help="write pyinstrument profiles of each phase: PREFIX-full.txt, PREFIX-incremental.txt",
    )
    args = parser.parse_args(argv)
    if args.agents < 1 or args.events < 0 or args.changes < 0 or args.workers < 1:
        parser.error("--agents must be at least 1, --events and --changes not negative")
    backend = "postgresql" if args.backend.startswith("postgres") else "sqlite"

    console = Console(width=None if sys.stdout.isatty() else 170)
    load = os.getloadavg()
    console.print(
        f"{os.cpu_count()} CPUs, load average {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} "
        "at the start; the fake servers run on the same cores as the service."
    )
    with contextlib.ExitStack() as stack:
        if backend == "postgresql":
            stack.enter_context(pg_exclusive(dbname=args.pg_database))
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="sb-bench-cal-")))
        phases = run(
            backend=backend,
            agents=args.agents,
            providers=args.providers,
            events=args.events,
            changes=args.changes,
            workdir=workdir,
            console=console,
            pg_database=args.pg_database,
            profile=args.profile,
            workers=args.workers,
        )
    console.print(table(backend, args.agents, args.providers, args.workers, phases))
    console.print(
        "wall s: from the first claim to an empty queue, each worker one job at a time. "
        "requests: what the fake servers served (API, token and discovery). busy rows: busy "
        "intervals stored from calendars after the phase. target: the issue's, scaled to "
        f"--agents (full {TARGET_FULL_S:.0f} s, incremental {TARGET_INCREMENTAL_S:.0f} s for "
        f"{TARGET_AGENTS} agents)."
    )
    return 0 if all(p.met for p in phases) else 1


if __name__ == "__main__":
    raise SystemExit(main())
