"""The ``switchboard`` command.

Sub-commands import their modules lazily, so ``switchboard --help`` stays fast and a command
only pays for what it uses.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence


def _int_from(minimum: int) -> Callable[[str], int]:
    """An argparse type: a whole number of at least ``minimum``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, not {value}")
        return value

    return parse


_positive_int = _int_from(1)
_non_negative_int = _int_from(0)


def _demo(args: argparse.Namespace) -> int:
    from api.demo import run_demo

    return run_demo(
        seed=args.seed,
        agents=args.agents,
        tickets=args.tickets,
        time_limit=args.time_limit,
        max_moves=args.max_moves,
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="switchboard",
        description="Scheduling and routing optimization for support teams.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser(
        "demo",
        help="generate a support organisation; compare the optimizer with the baselines",
    )
    demo.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
    demo.add_argument("--agents", type=int, default=60, help="number of agents (default 60)")
    demo.add_argument(
        "--tickets", type=int, default=400, help="open tickets in the queue (default 400)"
    )
    demo.add_argument(
        "--time-limit",
        type=float,
        default=10.0,
        help="optimizer time limit in seconds (default 10)",
    )
    demo.add_argument(
        "--max-moves",
        type=_non_negative_int,
        default=None,
        metavar="N",
        help=(
            "at most N tickets already held by an agent who could keep them go to someone else "
            "in the optimizer's plan (0: none; default: no budget)"
        ),
    )
    demo.set_defaults(func=_demo)
    _add_scenario(sub)
    _add_service_commands(sub)
    _add_staffing(sub)
    return parser


def _add_scenario(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``scenario run|compare|sweep``: what-if planning, implemented lazily in
    :mod:`api.scenario_commands` (the simulation, pandas and matplotlib load only when used)."""

    def run(name: str) -> object:
        def call(args: argparse.Namespace) -> int:
            from api import scenario_commands

            return int(getattr(scenario_commands, name)(args))

        return call

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--replications",
            type=_positive_int,
            metavar="N",
            help="replications of each scenario (default: the file's)",
        )
        p.add_argument(
            "--seed", type=_seed, metavar="S", help="random seed, >= 0 (default: the file's)"
        )
        p.add_argument(
            "--out",
            metavar="DIR",
            help="where the report goes (default: reports/<name> in the current directory)",
        )
        where = p.add_mutually_exclusive_group()
        where.add_argument(
            "--workers",
            type=_positive_int,
            metavar="N",
            help="local worker processes (default: one per core; 1 runs in this process)",
        )
        where.add_argument(
            "--dask",
            metavar="ADDRESS",
            help="run on the Dask cluster whose scheduler is at ADDRESS (tcp://host:8786; "
            "needs pip install -e '.[distributed]')",
        )
        p.add_argument("--open", action="store_true", help="open the report in a web browser")

    scenario = sub.add_parser(
        "scenario",
        help="what-if planning: simulate staffing and routing changes, compare, sweep",
        description=(
            "Simulate a scenario (a baseline and its changes) with the production router, "
            "replicated with common random numbers, and write a report (report.html, kpis.csv, "
            "intervals.csv, report.xlsx). Examples: scenarios/examples/."
        ),
    )
    scenario_sub = scenario.add_subparsers(dest="scenario_command", required=True)
    run_p = scenario_sub.add_parser(
        "run", help="run a scenario file against its own baseline (same seeds: paired deltas)"
    )
    run_p.add_argument("file", metavar="FILE", help="scenario file (.yaml, .yml or .toml)")
    common(run_p)
    run_p.set_defaults(func=run("scenario_run"))

    compare = scenario_sub.add_parser(
        "compare", help="run several scenario files side by side against a baseline"
    )
    compare.add_argument("files", metavar="FILE", nargs="+", help="scenario files")
    compare.add_argument(
        "--baseline",
        metavar="NAME",
        help="the scenario the others are compared with (default: the first file's baseline, "
        "unchanged)",
    )
    common(compare)
    compare.set_defaults(func=run("scenario_compare"))

    sweep = scenario_sub.add_parser(
        "sweep", help="run a sweep file's grid of scenarios against their baseline"
    )
    sweep.add_argument("file", metavar="FILE", help="sweep file (.yaml, .yml or .toml)")
    common(sweep)
    sweep.set_defaults(func=run("scenario_sweep"))


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be at least 0, not {value}")
    return value


def _add_service_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``db``, ``serve``, ``tenant``, ``housekeeping`` and ``rotate-secrets``: implemented lazily in
    :mod:`api.commands` (``worker`` in :mod:`api.worker`)."""

    def run(name: str) -> object:
        def call(args: argparse.Namespace) -> int:
            from api import commands

            return int(getattr(commands, name)(args))

        return call

    url_help = "database URL (default: DATABASE_URL, else sqlite:///./switchboard.db)"
    db = sub.add_parser("db", help="manage the service database")
    db_sub = db.add_subparsers(dest="db_command", required=True)
    up = db_sub.add_parser("upgrade", help="apply migrations (default: to the latest)")
    up.add_argument("revision", nargs="?", default="head")
    up.add_argument("--database-url", help=url_help)
    up.set_defaults(func=run("db_upgrade"))
    down = db_sub.add_parser("downgrade", help="revert migrations to REVISION ('base': all)")
    down.add_argument("revision")
    down.add_argument("--database-url", help=url_help)
    down.set_defaults(func=run("db_downgrade"))

    serve = sub.add_parser(
        "serve",
        help="run the HTTP API (migrates the database first)",
        description=(
            "Run the HTTP API. The database is migrated (and, with --demo, seeded) once, "
            "before the worker processes start. Every worker process also runs the background "
            "job worker (with its housekeeping) and webhook deliverer unless "
            "SWITCHBOARD_JOBS_WORKER=false / "
            "SWITCHBOARD_WEBHOOK_DELIVERER=false: several of them are safe, since jobs and "
            "deliveries are claimed atomically (FOR UPDATE SKIP LOCKED on PostgreSQL, "
            "BEGIN IMMEDIATE on SQLite): two processes never take the same one."
        ),
    )
    serve.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="port (default 8000; 0: any free)")
    serve.add_argument(
        "--workers",
        type=_positive_int,
        default=1,
        metavar="N",
        help=(
            "server processes sharing the port (default 1); each has its own database pool "
            "(SWITCHBOARD_DB_POOL_SIZE) and its own background job worker and webhook deliverer"
        ),
    )
    serve.add_argument(
        "--demo",
        action="store_true",
        help="seed a demo tenant and print its API key and curl examples",
    )
    serve.add_argument("--no-migrate", action="store_true", help="do not run migrations on start")
    serve.add_argument("--log-level", default="info", help="uvicorn log level (default info)")
    serve.add_argument("--no-access-log", action="store_true", help="do not log each request")
    serve.add_argument(
        "--loop",
        choices=("auto", "asyncio", "uvloop"),
        default="auto",
        help="event loop (default auto: uvloop where it is installed)",
    )
    serve.add_argument("--database-url", help=url_help)
    serve.set_defaults(func=run("serve"))

    tenant = sub.add_parser("tenant", help="manage tenants")
    tenant_sub = tenant.add_subparsers(dest="tenant_command", required=True)
    create = tenant_sub.add_parser("create", help="create a tenant and print its first admin key")
    create.add_argument("name")
    create.add_argument("--database-url", help=url_help)
    create.set_defaults(func=run("tenant_create"))

    worker = sub.add_parser("worker", help="run background jobs (queue re-optimization)")
    worker.add_argument("--database-url", help=url_help)
    worker.add_argument("--once", action="store_true", help="run the jobs due now, then exit")
    worker.add_argument(
        "--poll", type=float, default=None, help="seconds between polls (default 1)"
    )
    worker.add_argument("--log-level", default="info", help="log level (default info)")
    worker.set_defaults(func=_worker)

    housekeeping = sub.add_parser(
        "housekeeping",
        help="delete expired records (Idempotency-Key responses) now, e.g. from cron",
        description=(
            "Delete what the service keeps only for a while: Idempotency-Key records older than "
            "SWITCHBOARD_IDEMPOTENCY_TTL_HOURS, in batches of --batch-size rows per transaction. "
            "Every job worker (each server process, and `switchboard worker`) already does this "
            "every SWITCHBOARD_HOUSEKEEPING_INTERVAL_SECONDS (0: not at all); this command is "
            "for cron. Safe to run alongside them."
        ),
    )
    housekeeping.add_argument("--database-url", help=url_help)
    housekeeping.add_argument(
        "--batch-size",
        type=_positive_int,
        default=None,
        metavar="N",
        help="rows deleted per transaction (default SWITCHBOARD_HOUSEKEEPING_BATCH_SIZE, 1000)",
    )
    housekeeping.set_defaults(func=run("housekeeping"))

    rotate = sub.add_parser(
        "rotate-secrets",
        help="re-encrypt every stored secret under the newest SWITCHBOARD_SECRET_KEY",
        description=(
            "Re-encrypt every secret stored at rest -- webhook signing secrets (and rotated-out "
            "ones still signing), stored Idempotency-Key answers, calendar credentials and push "
            "channel tokens -- under SWITCHBOARD_SECRET_KEY, opening them with any key of "
            "SWITCHBOARD_PREVIOUS_SECRET_KEYS. Run it after deploying the new key with the old "
            "one among the previous keys; once it reports nothing unreadable, drop the old key. "
            "Works in batches of --batch-size rows, each its own transaction: safe to run while "
            "the service serves, and to run again. A token no key opens is counted, named and "
            "left as it is; the exit status is then 1."
        ),
    )
    rotate.add_argument("--database-url", help=url_help)
    rotate.add_argument(
        "--batch-size",
        type=_positive_int,
        default=500,
        metavar="N",
        help="rows re-encrypted per transaction (default 500)",
    )
    rotate.set_defaults(func=run("rotate_secrets"))


def _add_staffing(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``staffing erlang``: live-call staffing by Erlang C / Erlang A, in :mod:`api.staffing`
    (imported only when a staffing argument is parsed or the command runs)."""

    def lazy(name: str) -> Callable[[str], object]:
        def convert(text: str) -> object:
            from api import staffing

            return getattr(staffing, name)(text)

        convert.__name__ = name.removeprefix("parse_")  # argparse's "invalid <name> value"
        return convert

    def run(args: argparse.Namespace) -> int:
        from api.staffing import run_erlang

        return run_erlang(args)

    staffing = sub.add_parser("staffing", help="size live-call staffing (Erlang C / Erlang A)")
    staffing_sub = staffing.add_subparsers(dest="staffing_command", required=True)
    erlang = staffing_sub.add_parser(
        "erlang",
        help="agents needed for a service level, by Erlang C (Erlang A with --patience)",
        description=(
            "Agents needed on the phones for a service level target (the share of calls "
            "answered within a number of seconds) and their roster size after shrinkage, by "
            "Erlang C; with --patience callers hang up after that mean wait (Erlang A) and "
            "abandonment is shown. Example: --calls 100 --interval 30m --aht 180 --target 80/20 "
            "--shrinkage 0.3 gives 14 agents, 20 scheduled."
        ),
    )
    erlang.add_argument(
        "--calls", type=lazy("parse_calls"), required=True, help="calls offered per interval"
    )
    erlang.add_argument(
        "--interval",
        type=lazy("parse_interval"),
        default="30m",
        help="interval length: 15m, 30m, 1h, 900s (a bare number is minutes; default 30m)",
    )
    erlang.add_argument(
        "--aht",
        type=lazy("parse_seconds"),
        required=True,
        help="average handling time (seconds, or 3m)",
    )
    erlang.add_argument(
        "--target",
        type=lazy("parse_target"),
        default="80/20",
        help="service level target PERCENT/SECONDS (default 80/20: 80 %% within 20 s)",
    )
    erlang.add_argument(
        "--shrinkage",
        type=lazy("parse_shrinkage"),
        default=0.0,
        help="share of paid time off the phones: 0.3 or 30%% (default 0)",
    )
    erlang.add_argument(
        "--max-occupancy",
        type=lazy("parse_occupancy"),
        default=None,
        help="occupancy cap: 0.85 or 85%% (default none)",
    )
    erlang.add_argument(
        "--patience",
        type=lazy("parse_seconds"),
        default=None,
        help="callers' mean patience (seconds): Erlang A with abandonment (default: Erlang C)",
    )
    erlang.add_argument(
        "--range", action="store_true", help="also show the service level for N-3..N+3 agents"
    )
    erlang.set_defaults(func=run)


def _worker(args: argparse.Namespace) -> int:
    from api.worker import run_worker

    return run_worker(args)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
