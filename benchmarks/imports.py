"""Bulk import speed: ``python -m benchmarks.imports [--n 10000] [--backends sqlite,postgresql]``.

For each backend (a SQLite temp file; on PostgreSQL at 127.0.0.1:5432 a private schema of the
database ``switchboard_bench_imports``, created for the run and dropped after) it migrates an
empty database, makes one tenant with a planner key, and sends every organisation import through
the real HTTP API: the app built by ``api.main.create_app``, driven in-process by FastAPI's
``TestClient`` (the whole ASGI stack: routing, authentication, body parsing, validation, the
route, serialisation — no network socket). In dependency order:

    skills, teams           N rows each
    agents                  N rows, each with ``--skills-per-agent`` skills at random levels
    shifts, busy            N rows each (one per agent)
    capabilities            N rows, two requirements each

It prints, per backend and import, the rows, the seconds the ``POST .../import`` took, rows
per second, and whether the 3-second target of issue 8 holds (10,000 agents with their skills,
on either backend; the other imports are held to the same), with the load average beside them.
Every import is checked (201, the database holds exactly the rows sent). ``--profile agents``
(or another import) prints a pyinstrument profile of that import on each backend, from an extra
untimed run.

``--baseline REV`` times the same imports with the service of git revision ``REV`` as well
(a temporary git worktree, :func:`benchmarks.harness.server.source_tree`, with this runner and
its harness copied in, run in a subprocess), and prints both side by side with the speed-up.

The machine is shared: the load average is printed with the figures; re-run before trusting one.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeAlias

from fastapi.testclient import TestClient
from sqlalchemy import delete, func, select
from sqlalchemy.engine import make_url

from api.auth import Principal
from api.db import migrate
from api.db.engine import make_engine, make_session_factory
from api.db.models import (
    Agent,
    AgentSkill,
    BusyInterval,
    Capability,
    CapabilitySkill,
    Shift,
    Skill,
    Team,
)
from api.enums import Scope
from api.keys import service as api_keys
from api.keys import tenants
from api.main import create_app
from api.settings import Environment, Settings
from benchmarks.harness.cli import backend_list
from benchmarks.harness.databases import PG_SERVER_URL, connect
from benchmarks.harness.server import source_tree

PG_BENCH_DB = "switchboard_bench_imports"
TARGET_SECONDS = 3.0
TARGET_ROWS = 10_000
NOW = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)

# Every import, in dependency order, and what each one's rows refer to.
RESOURCES: tuple[tuple[str, str], ...] = (
    ("skills", "/v1/skills/import"),
    ("teams", "/v1/teams/import"),
    ("agents", "/v1/agents/import"),
    ("shifts", "/v1/shifts/import"),
    ("busy", "/v1/busy/import"),
    ("capabilities", "/v1/capabilities/import"),
)
NEEDS: dict[str, tuple[str, ...]] = {
    "agents": ("skills", "teams"),
    "shifts": ("agents",),
    "busy": ("agents",),
    "capabilities": ("skills",),
}
# The tables an import fills (and the link tables it fills beside them), each with a tenant_id.
_Table: TypeAlias = (
    type[Skill]
    | type[Team]
    | type[Agent]
    | type[Shift]
    | type[BusyInterval]
    | type[Capability]
    | type[AgentSkill]
    | type[CapabilitySkill]
)
_TABLES: dict[str, _Table] = {
    "skills": Skill,
    "teams": Team,
    "agents": Agent,
    "shifts": Shift,
    "busy": BusyInterval,
    "capabilities": Capability,
}


# --------------------------------------------------------------------------- rows


def make_rows(n: int, *, skills_per_agent: int = 3, seed: int = 7) -> dict[str, list[Any]]:
    """The JSON rows of every import, seeded. Agents draw their skills from the first 60
    skills and their team from the first 20 teams (a realistic organisation referenced by
    many agents), so every import has exactly ``n`` rows."""
    rng = random.Random(seed)
    skill_ids = [f"skill-{i:05d}" for i in range(n)]
    team_ids = [f"team-{i:05d}" for i in range(n)]
    common_skills = skill_ids[: min(60, n)]
    common_teams = team_ids[: min(20, n)]
    per_agent = min(skills_per_agent, len(common_skills))
    agents = [
        {
            "id": f"agent-{i:05d}",
            "name": f"Agent {i}",
            "team": common_teams[i % len(common_teams)],
            "skills": {s: rng.randint(1, 5) for s in rng.sample(common_skills, per_agent)},
            "capacity": rng.randint(1, 8),
            "timezone": "Europe/Berlin",
        }
        for i in range(n)
    ]
    day = timedelta(days=1)
    shifts = [
        {
            "id": f"shift-{i:05d}",
            "agent": a["id"],
            "start": (NOW + (i % 5) * day).isoformat(),
            "end": (NOW + (i % 5) * day + timedelta(hours=8)).isoformat(),
        }
        for i, a in enumerate(agents)
    ]
    busy = [
        {
            "agent": a["id"],  # no id: the service generates one, as for most calendar imports
            "start": (NOW + timedelta(hours=2)).isoformat(),
            "end": (NOW + timedelta(hours=3)).isoformat(),
            "source": "google",
        }
        for a in agents
    ]
    capabilities = [
        {
            "id": f"cap-{i:05d}",
            "requirements": {s: rng.randint(1, 3) for s in rng.sample(common_skills, 2)}
            if len(common_skills) >= 2
            else {common_skills[0]: 1},
            "call_minutes": 30,
        }
        for i in range(n)
    ]
    return {
        "skills": [{"id": s, "name": s.title(), "kind": "skill"} for s in skill_ids],
        "teams": [{"id": t, "name": t.title()} for t in team_ids],
        "agents": agents,
        "shifts": shifts,
        "busy": busy,
        "capabilities": capabilities,
    }


# --------------------------------------------------------------------------- databases


@contextlib.contextmanager
def database(backend: str, workdir: Path, pg_server_url: str = PG_SERVER_URL) -> Iterator[str]:
    """A migrated, empty database of ``backend`` for one run; gone afterwards.

    PostgreSQL: a private schema (named after this process) of ``switchboard_bench_imports``,
    so runs by several engineers at once do not collide, and nothing else is dropped."""
    if backend == "sqlite":
        path = workdir / f"imports-{uuid.uuid4().hex[:8]}.db"
        url = f"sqlite:///{path}"
        migrate.upgrade(url)
        try:
            yield url
        finally:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
        return
    import psycopg

    with connect(pg_server_url, "postgres") as conn:
        found = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (PG_BENCH_DB,))
        if found.fetchone() is None:
            with contextlib.suppress(psycopg.errors.DuplicateDatabase):
                conn.execute(f'CREATE DATABASE "{PG_BENCH_DB}"')
    schema = f"imports_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    base = make_url(pg_server_url).set(database=PG_BENCH_DB)
    url = base.update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(
        hide_password=False
    )
    with connect(pg_server_url, PG_BENCH_DB) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        migrate.upgrade(url)
        yield url
    finally:
        with connect(pg_server_url, PG_BENCH_DB) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def _tenant_with_planner(settings: Settings) -> tuple[str, str]:
    engine = make_engine(settings)
    try:
        with make_session_factory(engine)() as session:
            tenant, _ = tenants.create(session=session, name="Import bench", now=NOW)
            _, key = api_keys.create(
                session=session,
                tenant_id=tenant.id,
                name="bench planner",
                scopes=[Scope.ADMIN],  # organisation writes need admin (issue 13)
                now=NOW,
            )
            session.commit()
            return tenant.id, key
    finally:
        engine.dispose()


def _count(settings: Settings, tenant_id: str, model: type[Any]) -> int:
    engine = make_engine(settings)
    try:
        with engine.connect() as conn:
            return int(conn.scalar(select(func.count()).where(model.tenant_id == tenant_id)) or 0)
    finally:
        engine.dispose()


# --------------------------------------------------------------------------- running


@dataclass(frozen=True, slots=True)
class Timing:
    backend: str
    resource: str
    rows: int
    seconds: float
    # CPU time of this process meanwhile (client and app; not PostgreSQL's): steadier than
    # wall time on a shared machine.
    cpu_seconds: float = float("nan")

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else float("inf")

    @property
    def meets_target(self) -> bool | None:
        """None below 10,000 rows: the target is for that size, and a small import's fixed
        costs (a request, a transaction) would make a scaled verdict meaningless."""
        if self.rows < TARGET_ROWS:
            return None
        return self.seconds <= TARGET_SECONDS


def with_dependencies(only: set[str]) -> set[str]:
    """``only`` and every import its rows refer to, transitively."""
    wanted = set(only)
    while True:
        more = {d for r in wanted for d in NEEDS.get(r, ())} - wanted
        if not more:
            return wanted
        wanted |= more


def run_backend(
    backend: str,
    rows: dict[str, list[Any]],
    *,
    workdir: Path,
    only: set[str] | None = None,
    profile: str | None = None,
) -> list[Timing]:
    """The imports of ``rows`` named in ``only`` (default: all), and those they depend on,
    into a fresh database of ``backend``; raises if one fails."""
    run = with_dependencies(only) if only is not None else set(_TABLES)
    timings: list[Timing] = []
    with database(backend, workdir) as url:
        settings = Settings(database_url=url, environment=Environment.TEST)
        tenant_id, key = _tenant_with_planner(settings)
        app = create_app(settings, clock=lambda: NOW)
        headers = {"Authorization": f"Bearer {key}"}
        with TestClient(app) as client:
            for resource, path in RESOURCES:
                if resource not in run:
                    continue
                body = rows[resource]
                if resource == profile:
                    print(f"--- {backend}: {resource} import, {len(body)} rows")
                    print(profile_import(app, tenant_id, resource, body))
                    _clear(settings, tenant_id, resource)
                started, cpu_started = time.perf_counter(), time.process_time()
                r = client.post(path, json=body, headers=headers)
                seconds = time.perf_counter() - started
                cpu_seconds = time.process_time() - cpu_started
                if r.status_code != 201 or r.json().get("imported") != len(body):
                    raise SystemExit(
                        f"{backend} {resource} import failed: {r.status_code} {r.text[:500]}"
                    )
                timings.append(Timing(backend, resource, len(body), seconds, cpu_seconds))
        _check_counts(settings, tenant_id, rows, run)
    return timings


def _routers() -> dict[str, Any]:
    """Each imported resource's router (its use-case package's routes)."""
    from api.org.agents import routes as agents
    from api.org.capabilities import routes as capabilities
    from api.org.intervals import routes as intervals
    from api.org.skills import routes as skills
    from api.org.teams import routes as teams

    return {
        "skills": skills.router,
        "teams": teams.router,
        "agents": agents.router,
        "shifts": intervals.shifts_router,
        "busy": intervals.busy_router,
        "capabilities": capabilities.router,
    }


def profile_import(app: Any, tenant_id: str, resource: str, body: list[Any]) -> str:
    """A pyinstrument profile (text) of the import route of ``resource`` run on ``body``.

    pyinstrument samples one thread, and under the TestClient the route runs in a worker
    thread of the app's pool; so this calls the route's own endpoint function in this thread
    with what its dependencies would give it (a session, the planner's principal, the
    clock's now, the settings). Body parsing and authentication are left out (they are
    per-request, not per-row). The import is rolled back: the timed run comes after.
    """
    from pyinstrument import Profiler

    router = _routers()[resource]
    endpoint = next(r.endpoint for r in router.routes if r.name == f"import_{resource}")
    principal = Principal(tenant_id=tenant_id, key_id="bench", scopes=frozenset({Scope.ADMIN}))
    profiler = Profiler(interval=0.0005)
    with app.state.session_factory() as session:
        profiler.start()
        try:
            endpoint(
                rows=body, session=session, auth=principal, now=NOW, settings=app.state.settings
            )
        finally:
            profiler.stop()
    return str(profiler.output_text(unicode=True, color=False))


def _clear(settings: Settings, tenant_id: str, resource: str) -> None:
    """Remove the rows a profiled import committed, so the timed one starts from the same
    (nothing refers to them yet: an import is profiled before those that depend on it)."""
    link_tables: dict[str, list[_Table]] = {
        "agents": [AgentSkill],
        "capabilities": [CapabilitySkill],
    }
    links = link_tables.get(resource, [])
    engine = make_engine(settings)
    try:
        with engine.begin() as conn:
            for model in (*links, _TABLES[resource]):
                conn.execute(delete(model).where(model.tenant_id == tenant_id))
    finally:
        engine.dispose()


def _check_counts(
    settings: Settings,
    tenant_id: str,
    rows: dict[str, list[Any]],
    run: set[str],
) -> None:
    """The database holds exactly what was sent (no row lost, none twice)."""
    for resource, model in _TABLES.items():
        sent = len(rows[resource]) if resource in run else 0
        held = _count(settings, tenant_id, model)
        if held != sent:
            raise SystemExit(f"{resource}: sent {sent}, database holds {held}")
    links = sum(len(a["skills"]) for a in rows["agents"]) if "agents" in run else 0
    held = _count(settings, tenant_id, AgentSkill)
    if held != links:
        raise SystemExit(f"agent skills: sent {links}, database holds {held}")


def load_note() -> str:
    load = os.getloadavg()
    return (
        f"{os.cpu_count()} CPUs, load average {load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f} "
        "(1 / 5 / 15 min)"
    )


def report(timings: Sequence[Timing]) -> str:
    lines = [
        f"{'backend':<11} {'import':<13} {'rows':>7} {'seconds':>8} {'rows/s':>9} "
        f"{'CPU s':>6}  target",
    ]
    for t in timings:
        verdict = {None: "-", True: "met", False: "MISSED"}[t.meets_target]
        lines.append(
            f"{t.backend:<11} {t.resource:<13} {t.rows:>7} {t.seconds:>8.2f} "
            f"{t.rows_per_second:>9.0f} {t.cpu_seconds:>6.2f}  {verdict}"
        )
    lines.append(
        f"target: <= {TARGET_SECONDS:.0f} s per 10,000 rows (issue 8, defect 10); "
        "in-process TestClient through the full ASGI app; CPU s: this process's CPU time "
        "(client and app, not PostgreSQL's)"
    )
    return "\n".join(lines)


def side_by_side(baseline: Sequence[Timing], current: Sequence[Timing], rev: str) -> str:
    before = {(t.backend, t.resource): t for t in baseline}
    head = f"{'backend':<11} {'import':<13} {'rows':>7} {rev[:12]:>12} {'now':>8} {'faster':>8}"
    lines = [head]
    for t in current:
        old = before.get((t.backend, t.resource))
        if old is None:
            continue
        lines.append(
            f"{t.backend:<11} {t.resource:<13} {t.rows:>7} {old.seconds:>11.2f}s "
            f"{t.seconds:>7.2f}s {old.seconds / t.seconds:>7.1f}x"
        )
    return "\n".join(lines)


def run_baseline(rev: str, argv: Sequence[str], workdir: Path) -> list[Timing]:
    """The timings of this runner (with ``argv``) run on the code of git revision ``rev``."""
    out = workdir / "baseline.json"
    with source_tree(rev) as tree:
        # This runner and the harness it imports are copied in: REV's may differ or be missing.
        here = Path(__file__).resolve().parent
        shutil.copy(here / "imports.py", tree / "benchmarks" / "imports.py")
        shutil.copytree(here / "harness", tree / "benchmarks" / "harness", dirs_exist_ok=True)
        # The working directory comes first on sys.path with -m: REV's packages, not ours.
        env = {**os.environ, "PYTHONPATH": str(tree)}
        subprocess.run(
            [sys.executable, "-m", "benchmarks.imports", *argv, "--json", str(out)],
            cwd=tree,
            env=env,
            check=True,
        )
    return [Timing(**t) for t in json.loads(out.read_text())]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.imports", description=(__doc__ or "").split("\n")[0]
    )
    parser.add_argument("--n", type=int, default=10_000, help="rows per import")
    parser.add_argument(
        "--backends", default="sqlite,postgresql", type=backend_list, help="comma-separated"
    )
    parser.add_argument("--skills-per-agent", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--only",
        default=",".join(r for r, _ in RESOURCES),
        help="comma-separated imports to run (the ones they depend on run first, and are "
        "timed too)",
    )
    parser.add_argument(
        "--profile",
        choices=[r for r, _ in RESOURCES],
        default=None,
        help="print a pyinstrument profile of this import (an extra, untimed run)",
    )
    parser.add_argument(
        "--baseline",
        metavar="REV",
        default=None,
        help="also run on the service code of git revision REV, and compare",
    )
    parser.add_argument("--json", type=Path, default=None, help="also write the timings here")
    args = parser.parse_args(argv)
    rows = make_rows(args.n, skills_per_agent=args.skills_per_agent, seed=args.seed)
    only = {r.strip() for r in args.only.split(",") if r.strip()}
    print(load_note(), "(before)")
    timings: list[Timing] = []
    with tempfile.TemporaryDirectory(prefix="switchboard-imports-") as tmp:
        for backend in args.backends:
            timings += run_backend(
                backend,
                rows,
                workdir=Path(tmp),
                only=only,
                profile=args.profile,
            )
    print(report(timings))
    print(load_note(), "(after)")
    if args.json is not None:
        args.json.write_text(json.dumps([asdict(t) for t in timings]))
    if args.baseline is not None:
        same = ["--n", str(args.n), "--backends", ",".join(args.backends), "--only", args.only]
        same += ["--skills-per-agent", str(args.skills_per_agent), "--seed", str(args.seed)]
        print(f"--- baseline: the same imports on {args.baseline}")
        with tempfile.TemporaryDirectory(prefix="switchboard-imports-base-") as tmp:
            baseline = run_baseline(args.baseline, same, Path(tmp))
        print(side_by_side(baseline, timings, args.baseline))
    return 0


if __name__ == "__main__":
    sys.exit(main())
