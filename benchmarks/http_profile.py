"""Where the HTTP layer's time goes under load: ``python -m benchmarks.http_profile``.

Seeds a database as ``benchmarks.api`` does, starts the real service (one worker, via
:func:`benchmarks.harness.server.serve`), and for the assignment ``POST /v1/tickets/{id}/assign``
and the bare authenticated ``GET /v1/teams/{id}`` in turn drives a closed loop of ``--concurrency``
clients while py-spy (in the dev extra; it needs ptrace rights over the server) samples the server
process, not its solve pool's (``--format raw``: one collapsed stack per line with its count;
``--gil``: only the thread holding the GIL, so a thread waiting for a pooled connection, the thread
pool's queue or the GIL itself is not counted as working). Each load is warmed up for a
second before sampling starts (first-request imports and caches are not what is measured).

Each sample is attributed to the innermost frame that belongs to a known part, walking from
the leaf towards the root: the gate (``api/http/gate.py``, ``api/common/json_depth.py``), the
rate limiter (``api/http/ratelimit.py`` and pyrate_limiter), the idempotency middleware, metrics
(``api/http/metrics.py`` and prometheus_client), FastAPI/Starlette (routing, dependencies,
validation, serialization: ``fastapi``, ``starlette``, ``pydantic``), the route and its services
(the rest of ``api/``, ``solver/``), the database (SQLAlchemy and the driver), and the server
(uvicorn, httptools, uvloop/asyncio, anyio's thread hand-off). A sample whose leaf is in the
standard library counts for the part that called it. It prints each part's share of the busy
samples and CPU ms per request (the server's CPU from /proc, split by those shares), then the
top frames (self time) of the middleware parts.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console
from rich.table import Table

from benchmarks.harness.cli import backend_list
from benchmarks.harness.cpu import Probe
from benchmarks.harness.databases import PG_BENCH_DB, pg_exclusive
from benchmarks.harness.load import RunResult, client_loop_factory, drive
from benchmarks.harness.report import machine_note
from benchmarks.harness.routes import BASELINE_PATH
from benchmarks.harness.seed import TEAM_IDS, prepare, reset_assignments
from benchmarks.harness.server import serve

# (part, pattern on a frame's file name); the first match wins for a frame. Each names the
# module's place in this tree and, after "|", in trees before issue 9 (api/ by use case), so a
# profile of an older checkout is read the same way.
PARTS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("gate", re.compile(r"api/http/gate\.py|api/common/json_depth\.py|api/(gate|json_depth)\.py")),
    ("rate limiter", re.compile(r"api/http/ratelimit\.py|api/ratelimit\.py|pyrate_limiter/")),
    ("idempotency", re.compile(r"api/idempotency/|api/idempotency(_keys)?\.py")),
    ("metrics", re.compile(r"api/http/metrics\.py|api/metrics\.py|prometheus_client/")),
    ("database", re.compile(r"sqlalchemy/|psycopg|sqlite3/|api/db/")),
    ("route + services", re.compile(r"(^|/)(api|solver)/")),
    ("FastAPI/Starlette", re.compile(r"fastapi/|starlette/|pydantic")),
    ("server", re.compile(r"uvicorn/|httptools|uvloop|asyncio/|anyio/|threading\.py")),
)
MIDDLEWARES = ("gate", "rate limiter", "idempotency", "metrics", "FastAPI/Starlette")
_FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^():]+)(?::\d+)?\)$")


def _frame_file(frame: str) -> tuple[str, str]:
    """(function, file) of a py-spy frame "func (path/file.py:line)"."""
    m = _FRAME.match(frame.strip())
    return (m["func"], m["file"]) if m else (frame, "")


def attribute(raw: str) -> tuple[Counter[str], dict[str, Counter[str]]]:
    """Samples per part, and per part its leaf-most frames ("func (file)") by samples."""
    parts: Counter[str] = Counter()
    frames: dict[str, Counter[str]] = {}
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        part, where = "other", stack.split(";")[-1]
        for frame in reversed(stack.split(";")):
            func, file = _frame_file(frame)
            hit = next((name for name, pat in PARTS if pat.search(file)), None)
            if hit is not None:
                part, where = hit, f"{func} ({'/'.join(file.split('/')[-2:])})"
                break
        parts[part] += n
        frames.setdefault(part, Counter())[where] += n
    return parts, frames


def profile_load(
    base: str,
    server_pid: int,
    key: str,
    ticket_ids: tuple[str, ...],
    *,
    get_path: str | None,
    concurrency: int,
    duration: float,
    out: Path,
    rate_hz: int,
) -> RunResult:
    """Warm up for a second, then drive the load for ``duration`` + 1 s while py-spy samples
    the server for ``duration``."""
    with asyncio.Runner(loop_factory=client_loop_factory()) as runner:
        runner.run(
            drive(
                base,
                key,
                ticket_ids[-2000:],
                concurrency=concurrency,
                duration=1.0,
                get_path=get_path,
            )
        )
    spy = subprocess.Popen(
        [
            shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy"),
            "record",
            "--pid",
            str(server_pid),
            "--format",
            "raw",
            "--rate",
            str(rate_hz),
            "--duration",
            str(int(duration)),
            "--nonblocking",
            "--gil",
            "--output",
            str(out),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    time.sleep(0.5)  # py-spy attaches
    with asyncio.Runner(loop_factory=client_loop_factory()) as runner:
        latencies, elapsed, outcomes, cpu = runner.run(
            drive(
                base,
                key,
                ticket_ids[:-2000],
                concurrency=concurrency,
                duration=duration + 1.0,
                warmup=8,
                probe=Probe(server_pid),
                get_path=get_path,
            )
        )
    _, err = spy.communicate(timeout=60)
    if spy.returncode != 0 or not out.exists():
        raise SystemExit(f"py-spy failed ({spy.returncode}): {err.decode(errors='replace')}")
    return RunResult("", 1, concurrency, latencies, elapsed, outcomes, cpu)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.http_profile", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--backends", default="sqlite", type=backend_list, help="comma-separated")
    parser.add_argument("--concurrency", default=32, type=int)
    parser.add_argument("--duration", default=10.0, type=float, help="seconds sampled per load")
    parser.add_argument("--rate-hz", default=250, type=int, help="py-spy samples per second")
    parser.add_argument("--tickets", default=8000, type=int)
    parser.add_argument("--top", default=6, type=int, help="frames shown per middleware part")
    parser.add_argument("--pg-database", default=PG_BENCH_DB)
    parser.add_argument("--keep", type=Path, default=None, help="keep the raw profiles here")
    args = parser.parse_args(argv)
    console = Console(width=None if sys.stdout.isatty() else 170)
    console.print(machine_note())
    with contextlib.ExitStack() as stack:
        if "postgresql" in args.backends:
            stack.enter_context(pg_exclusive(dbname=args.pg_database))
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="sb-httpprof-")))
        keep = args.keep or workdir
        keep.mkdir(parents=True, exist_ok=True)
        for backend in args.backends:
            url, seeded = prepare(
                backend,
                workdir / backend,
                n_agents=200,
                n_tickets=args.tickets,
                now=datetime.now(UTC),
                pg_database=args.pg_database,
            )
            from api.db.engine import make_engine
            from api.settings import Environment, Settings

            engine = make_engine(Settings(database_url=url, environment=Environment.TEST))
            loads = (
                ("POST assign", None),
                ("GET team", BASELINE_PATH.format(team_id=TEAM_IDS[0])),
            )
            shares: dict[str, tuple[RunResult, Counter[str], dict[str, Counter[str]]]] = {}
            with serve(url, workers=1, log=workdir / f"server-{backend}.log") as (base, pid):
                for name, get_path in loads:
                    reset_assignments(engine, seeded.tenant_id)
                    out = keep / f"{backend}-{name.replace(' ', '-')}.txt"
                    result = profile_load(
                        base,
                        pid,
                        seeded.helpdesk_key,
                        seeded.ticket_ids,
                        get_path=get_path,
                        concurrency=args.concurrency,
                        duration=args.duration,
                        out=out,
                        rate_hz=args.rate_hz,
                    )
                    parts, frames = attribute(out.read_text())
                    shares[name] = (result, parts, frames)
            engine.dispose()
            console.print(_parts_table(backend, args.concurrency, shares))
            for name, (_, parts, frames) in shares.items():
                total = sum(parts.values()) or 1
                for part in MIDDLEWARES:
                    top = frames.get(part, Counter()).most_common(args.top)
                    if top:
                        console.print(
                            f"  {backend} {name}, {part}: "
                            + "; ".join(f"{f} {n / total:.1%}" for f, n in top)
                        )
    console.print(f"load average after: {' / '.join(f'{x:.1f}' for x in os.getloadavg())}")
    return 0


def _parts_table(
    backend: str,
    concurrency: int,
    shares: dict[str, tuple[RunResult, Counter[str], dict[str, Counter[str]]]],
) -> Table:
    names = list(shares)
    table = Table(
        title=f"{backend}: server samples by part (py-spy --gil), {concurrency} clients; "
        "share / server CPU ms per request"
    )
    table.add_column("part")
    for name in names:
        table.add_column(name, justify="right")
    header = ["requests/s, server CPU ms"]
    for name in names:
        r = shares[name][0]
        header.append(f"{r.throughput:.0f}/s, {r.cpu_ms_per_request('server'):.2f} ms")
    table.add_row(*header)
    for part in [p for p, _ in PARTS] + ["other"]:
        row = [part]
        for name in names:
            r, parts, _ = shares[name]
            share = parts[part] / (sum(parts.values()) or 1)
            row.append(f"{share:.1%} / {share * r.cpu_ms_per_request('server'):.3f}")
        table.add_row(*row)
    return table


if __name__ == "__main__":
    raise SystemExit(main())
