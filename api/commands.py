"""The service's sub-commands of ``switchboard`` (``db upgrade``, ``serve``, ``tenant create``,
``housekeeping``, ``rotate-secrets``).

``api/cli.py`` only declares the arguments and imports this module lazily, so the CLI stays fast.
Each command builds its own :class:`~api.settings.Settings` when it runs.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy.exc import OperationalError, ProgrammingError

from api.settings import Settings


def _settings(args: argparse.Namespace) -> Settings:
    url = getattr(args, "database_url", None)
    return Settings(database_url=url) if url else Settings()


def _redact(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def db_upgrade(args: argparse.Namespace) -> int:
    from api.db import migrate

    settings = _settings(args)
    migrate.upgrade(settings.database_url, args.revision)
    print(f"database at {_redact(settings.database_url)} is at revision {args.revision}")
    return 0


def db_downgrade(args: argparse.Namespace) -> int:
    from api.db import migrate

    settings = _settings(args)
    migrate.downgrade(settings.database_url, args.revision)
    print(f"database at {_redact(settings.database_url)} downgraded to {args.revision}")
    return 0


def tenant_create(args: argparse.Namespace) -> int:
    from api.db.engine import make_engine, make_session_factory
    from api.keys import tenants

    settings = _settings(args)
    engine = make_engine(settings)
    try:
        with make_session_factory(engine)() as session:
            tenant, key = tenants.create(session=session, name=args.name, now=datetime.now(UTC))
            session.commit()
    except (OperationalError, ProgrammingError) as exc:
        print(
            f"cannot create the tenant ({exc.orig}); run `switchboard db upgrade` first",
            file=sys.stderr,
        )
        return 1
    finally:
        engine.dispose()
    print(f"tenant:    {tenant.id} ({tenant.name})")
    print(f"admin key: {key}")
    print("The key is shown once and stored only as a hash: keep it now.")
    return 0


def housekeeping(args: argparse.Namespace) -> int:
    from api import wiring
    from api.db.engine import make_engine, make_session_factory
    from api.jobs import housekeeping

    settings = _settings(args)
    engine = make_engine(settings)
    try:
        report = housekeeping.run(
            make_session_factory(engine),
            settings,
            now=datetime.now(UTC),
            batch_size=args.batch_size,
            passes=wiring.housekeeping_passes(),
        )
    except (OperationalError, ProgrammingError) as exc:
        print(
            f"cannot clean up ({exc.orig}); run `switchboard db upgrade` first",
            file=sys.stderr,
        )
        return 1
    finally:
        engine.dispose()
    before = report.idempotency_before.isoformat(timespec="seconds")
    print(f"deleted {report.idempotency_records} idempotency record(s) created before {before}")
    if report.other_work:
        print(f"queued {report.other_work} calendar sync(s) whose poll chain had stopped")
    return 0


def rotate_secrets(args: argparse.Namespace) -> int:
    """Re-encrypt every stored secret under the newest key, with a progress bar per kind of
    secret and a summary; 1 when some token no key of the ring opens."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
    from rich.table import Table

    from api import rotation
    from api.db.engine import make_engine

    settings = _settings(args)
    console = Console(stderr=True)
    out = Console()
    engine = make_engine(settings)
    try:
        totals = rotation.count(engine)
        with Progress(
            TextColumn("{task.description:<28}"),
            BarColumn(),
            MofNCompleteColumn(),
            console=console,
        ) as bar:
            tasks = {kind: bar.add_task(kind, total=n) for kind, n in totals.items()}

            def advance(target: rotation.StoredSecret, n: int) -> None:
                bar.advance(tasks[target.kind], n)

            report = rotation.rotate_all(
                engine, settings, batch_size=args.batch_size, progress=advance
            )
    except (OperationalError, ProgrammingError) as exc:
        print(
            f"cannot rotate ({exc.orig}); run `switchboard db upgrade` first",
            file=sys.stderr,
        )
        return 1
    finally:
        engine.dispose()
    table = Table(title=f"Secrets re-encrypted under the newest of {len(settings.keyring)} key(s)")
    for name in ("kind", "rotated", "already current", "changed meanwhile", "unreadable"):
        table.add_column(
            name, justify="left" if name == "kind" else "right", no_wrap=name == "kind"
        )
    for kind in report.kinds:
        table.add_row(
            kind.kind,
            str(kind.rotated),
            str(kind.current),
            str(kind.changed),
            str(kind.unreadable),
        )
    out.print(table)
    for kind in report.kinds:
        if kind.unreadable_rows:
            more = kind.unreadable - len(kind.unreadable_rows)
            listed = ", ".join(kind.unreadable_rows) + (f" and {more} more" if more else "")
            out.print(f"unreadable {kind.kind}: {listed}", markup=False, highlight=False)
    if report.unreadable:
        print(
            f"{report.unreadable} stored secret(s) open with no key of the keyring and were left "
            "as they are: add the key they were made with to SWITCHBOARD_PREVIOUS_SECRET_KEYS "
            "and run this again (or replace those secrets). Keep the previous keys until then.",
            file=sys.stderr,
        )
        return 1
    print(
        "every stored secret opens with SWITCHBOARD_SECRET_KEY: "
        "SWITCHBOARD_PREVIOUS_SECRET_KEYS may be dropped"
    )
    return 0


def serve(args: argparse.Namespace) -> int:
    """Bind, migrate, seed (``--demo``), then serve with ``--workers`` processes.

    The socket is bound first, so a taken port fails before the database is touched; migrating
    and seeding happen here, in the parent, exactly once, before any worker starts. ``--demo``
    creates the demo tenant or reuses the one there is (:func:`api.seed.open_demo`); its keys
    are printed once the server answers on the port, not before.
    """
    from api import serve as server

    settings = _settings(args)
    if args.workers > 1 and settings.database_url.startswith("sqlite"):
        # Allowed (BEGIN IMMEDIATE keeps it correct), but worth knowing before production.
        print(
            "warning: SQLite has one writer, so several workers queue for it: measured with 2 "
            "workers at 32 clients, p99 308-349 ms against 34-43 ms with one "
            "(benchmarks/README.md). Use PostgreSQL (DATABASE_URL) for more than one worker.",
            file=sys.stderr,
        )
    try:
        sock = server.bind(args.host, args.port)
    except OSError as exc:
        print(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    try:
        if not args.no_migrate:
            from api.db import migrate

            migrate.upgrade(settings.database_url, "head")
        on_ready: Callable[[], None] | None = None
        if args.demo:
            from api.seed import demo_instructions, open_demo

            demo = open_demo(settings, now=datetime.now(UTC))
            url = server.base_url(sock)

            def print_keys() -> None:
                # Once the port answers: a key pasted straight away works.
                print(demo_instructions(demo, base_url=url, now=datetime.now(UTC)), flush=True)

            on_ready = print_keys

    except BaseException:
        sock.close()
        raise
    return server.run(
        settings,
        sock=sock,
        workers=args.workers,
        log_level=args.log_level,
        access_log=not args.no_access_log,
        loop=args.loop,
        on_ready=on_ready,
    )
