"""Where an assignment's time goes, in-process (``python -m benchmarks.api --profile``)."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console
from rich.table import Table

from api.db.engine import make_engine, make_session_factory
from api.settings import Environment, Settings
from benchmarks.harness.databases import PG_BENCH_DB
from benchmarks.harness.seed import prepare, reset_assignments


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

    from api.assignment import service as assignment
    from api.assignment.cache import RealtimeCache
    from api.assignment.routes import assignment_json
    from api.main import create_app

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
