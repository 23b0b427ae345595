"""Benchmark of the customer's pages over HTTP: ``python -m benchmarks.waiting_room``.

For each backend (``--backends``: a SQLite temp file; PostgreSQL database ``switchboard_bench``
on 127.0.0.1:5432, dropped, re-created and guarded against a concurrent run, as for the other
HTTP benchmarks) it seeds, through the service layer, the booking benchmark's tenant (200
agents with skills and three ten-hour shifts from an hour ago, two capabilities: see
``benchmarks.api_booking``) and issues one call link per customer for capability
``billing-en``, each for its own ticket, in Europe/Berlin. It starts the real service in a
subprocess (:func:`benchmarks.harness.server.serve`, one worker by default) and lets
``--customers`` customers loose on it at once, each a browser would be: its own keep-alive
connection (``benchmarks.loadclient``) and its own link. Each customer

1. opens the picker, ``GET /c/{token}`` (``--views`` times: every other view in
   America/New_York, as a customer changing the zone), thinking between views,
2. books one of the starts offered by its last view (chosen at random, so customers spread over
   the week as people do), ``POST /c/{token}/book`` with the page's form token.

Three runs, each with fresh links (a link books once):

- **alone**: the customers one after another, no thinking: what a view and a booking cost with
  nobody else on the pages (the service time the other runs queue for).
- **paced**: customers arrive over ``--ramp`` seconds and think ``--think`` seconds on average
  (exponential) before each next step, so all of them are on the pages at once, as 200 people
  would be. The targets are read off this run: picker p99 <= 100 ms and booking p99 <= 250 ms.
- **burst**: every customer at the same instant, no thinking: each GET and each POST queues
  behind all the others (a stress figure, no target).

A booking answers 303 (booked) or 409 (the start was just taken: the picker again with the
nearest alternatives, never an error page); both are answers and their latency counts, 409s are
shown apart. Anything else (a 5xx, a dropped connection) is an error. Per run: picker answers
and p50/p99/max as the clients saw them, bookings (303, 409, errors) and p50/p99/max, the
server's CPU per request (and PostgreSQL's), and the load average before and after: the load
generator shares the machine's cores with the server (and, on a shared machine, with everyone
else), so re-run before trusting a figure. Nothing here asserts on time.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import os
import random
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import quote

import numpy as np
from httptools import HttpParserError
from rich.console import Console
from rich.table import Table

from api.db.engine import make_engine, make_session_factory
from api.links import service as links
from api.settings import Environment, Settings
from benchmarks import api_booking
from benchmarks.harness.cli import backend_list
from benchmarks.harness.cpu import Measures, Probe
from benchmarks.harness.databases import PG_BENCH_DB, pg_exclusive, postgres_backends
from benchmarks.harness.load import client_loop_factory
from benchmarks.harness.report import machine_note
from benchmarks.harness.server import serve
from benchmarks.loadclient import KeepAliveClient, Response

TARGET_PICKER_P99_MS = 100.0
TARGET_BOOKING_P99_MS = 250.0
CAPABILITY = api_booking.HOT_CAPABILITY  # billing-en: about 80 of the 200 agents qualify
LINK_ZONE = "Europe/Berlin"
OTHER_ZONE = "America/New_York"
ALONE, PACED, BURST = "alone", "paced", "burst"
BOOKED, TAKEN = "303", "409"
_FAILURES = (OSError, HttpParserError)  # loadclient.ConnectionClosed is an OSError


def backends(text: str) -> list[str]:
    """An argparse type: comma-separated backends, sqlite or postgresql (or postgres)."""
    names = ["postgresql" if b.strip() == "postgres" else b.strip() for b in text.split(",")]
    return backend_list(",".join(names))


# --------------------------------------------------------------------------- setup


def issue_links(
    settings: Settings, tenant_id: str, ticket_ids: Sequence[str], *, now: datetime
) -> list[str]:
    """One link per ticket for :data:`CAPABILITY` in :data:`LINK_ZONE`, through the service
    layer (as ``POST /v1/tickets/{id}/call-links`` issues them); returns their tokens."""
    tokens: list[str] = []
    engine = make_engine(settings)
    try:
        with make_session_factory(engine)() as session:
            for n, ticket_id in enumerate(ticket_ids, 1):
                _, token = links.create(
                    session=session,
                    tenant_id=tenant_id,
                    ticket_id=ticket_id,
                    data=links.NewLink(capability_id=CAPABILITY, timezone=LINK_ZONE),
                    now=now,
                    actor="benchmark-seed",
                    default_expiry=timedelta(days=7),
                )
                tokens.append(token)
                if n % 200 == 0:
                    session.commit()
            session.commit()
    finally:
        engine.dispose()
    return tokens


def prepare(
    backend: str,
    workdir: Path,
    *,
    n_agents: int,
    n_links: int,
    now: datetime,
    pg_database: str = PG_BENCH_DB,
) -> tuple[str, list[str]]:
    """A migrated database of ``backend`` seeded as ``benchmarks.api_booking`` seeds it, plus
    ``n_links`` links, each for its own ticket: (its URL, the links' tokens)."""
    url, setup = api_booking.prepare(
        backend, workdir, n_agents=n_agents, n_tickets=n_links, now=now, pg_database=pg_database
    )
    settings = Settings(database_url=url, environment=Environment.TEST)
    tokens = issue_links(settings, setup.seeded.tenant_id, setup.seeded.ticket_ids, now=now)
    return url, tokens


# --------------------------------------------------------------------------- the picker page


class PickerForm(HTMLParser):
    """What a customer's browser reads off the picker to book: the offered starts (the
    ``start`` radios), the form token and the booking form's time zone."""

    def __init__(self) -> None:
        super().__init__()
        self.starts: list[str] = []
        self.form_token: str | None = None
        self.tz: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag != "input":
            return
        a = dict(attrs)
        name, value = a.get("name"), a.get("value")
        if value is None:
            return
        if name == "start" and a.get("type") == "radio":
            self.starts.append(value)
        elif name == "form_token":
            self.form_token = value
        elif name == "tz" and a.get("type") == "hidden":
            self.tz = value

    @classmethod
    def read(cls, body: bytes) -> PickerForm:
        form = cls()
        form.feed(body.decode("utf-8", "replace"))
        form.close()
        return form


def picker_path(token: str, tz: str) -> str:
    return f"/c/{token}?tz={quote(tz, safe='')}"


# --------------------------------------------------------------------------- one run


@dataclass
class RunResult:
    backend: str
    mode: str
    customers: int
    picker_ms: list[float] = field(default_factory=list)  # of the 200s
    booking_ms: list[float] = field(default_factory=list)  # of the 303s and 409s
    picker: Counter[str] = field(default_factory=Counter)
    booking: Counter[str] = field(default_factory=Counter)
    samples: dict[str, str] = field(default_factory=dict)  # an error kind -> its first answer
    elapsed_s: float = 0.0
    cpu: Measures | None = None
    load_before: tuple[float, float, float] = (0.0, 0.0, 0.0)
    load_after: tuple[float, float, float] = (0.0, 0.0, 0.0)

    @staticmethod
    def _pct(values: list[float], q: float) -> float:
        return float(np.percentile(values, q)) if values else float("nan")

    def picker_pct(self, q: float) -> float:
        return self._pct(self.picker_ms, q)

    def booking_pct(self, q: float) -> float:
        return self._pct(self.booking_ms, q)

    @property
    def booked(self) -> int:
        return int(self.booking.get(BOOKED, 0))

    @property
    def taken(self) -> int:
        return int(self.booking.get(TAKEN, 0))

    @property
    def errors(self) -> int:
        picker = sum(n for k, n in self.picker.items() if k != "200")
        return picker + sum(n for k, n in self.booking.items() if k not in (BOOKED, TAKEN))

    def failures(self) -> str:
        """The errors by kind (``picker 503: 2, booking ConnectionClosed: 1``), or "none"."""
        bad = [(f"picker {k}", n) for k, n in self.picker.items() if k != "200"]
        bad += [(f"booking {k}", n) for k, n in self.booking.items() if k not in (BOOKED, TAKEN)]
        return ", ".join(f"{k}: {n}" for k, n in sorted(bad)) or "none"

    @property
    def requests(self) -> int:
        return len(self.picker_ms) + len(self.booking_ms)

    def cpu_ms_per_request(self, part: str) -> float:
        if self.cpu is None or not self.requests:
            return float("nan")
        return float(getattr(self.cpu, part)) / self.requests * 1000.0

    @property
    def meets_target(self) -> bool:
        return (
            self.errors == 0
            and self.picker_pct(99) <= TARGET_PICKER_P99_MS
            and self.booking_pct(99) <= TARGET_BOOKING_P99_MS
        )


def _excerpt(body: bytes, n: int = 240) -> str:
    return " ".join(body[:n].decode("utf-8", "replace").split())


async def customer(
    base: str,
    token: str,
    result: RunResult,
    *,
    arrive: float,
    think: float,
    views: int,
    rng: random.Random,
) -> None:
    """One customer: after ``arrive`` seconds, ``views`` picker views (every other one in
    :data:`OTHER_ZONE`), then a booking at a random offered start; ``think`` seconds on
    average (exponential) before each step after the first."""

    async def pause() -> None:
        if think > 0:
            await asyncio.sleep(rng.expovariate(1.0 / think))

    async with KeepAliveClient(base) as client:
        await asyncio.sleep(arrive)
        form: PickerForm | None = None
        for view in range(views):
            if view:
                await pause()
            tz = LINK_ZONE if view % 2 == 0 else OTHER_ZONE
            t0 = time.perf_counter()
            try:
                page: Response = await client.get(picker_path(token, tz))
            except _FAILURES as exc:
                result.picker[type(exc).__name__] += 1
                continue
            took = (time.perf_counter() - t0) * 1000.0
            result.picker[str(page.status_code)] += 1
            if page.status_code == 200:
                result.picker_ms.append(took)
                form = PickerForm.read(page.body)
            else:
                result.samples.setdefault(f"picker {page.status_code}", _excerpt(page.body))
        if form is None or not form.starts or form.form_token is None:
            result.booking["no start offered" if form is not None else "no picker"] += 1
            return
        await pause()
        body = {
            "start": rng.choice(form.starts),
            "tz": form.tz or LINK_ZONE,
            "form_token": form.form_token,
        }
        t0 = time.perf_counter()
        try:
            answer = await client.post(f"/c/{token}/book", form=body)
        except _FAILURES as exc:
            result.booking[type(exc).__name__] += 1
            return
        took = (time.perf_counter() - t0) * 1000.0
        result.booking[str(answer.status_code)] += 1
        if answer.status_code in (303, 409):
            result.booking_ms.append(took)
        else:
            result.samples.setdefault(f"booking {answer.status_code}", _excerpt(answer.body))


async def run_customers(
    base: str,
    tokens: Sequence[str],
    *,
    backend: str,
    mode: str,
    ramp: float,
    think: float,
    views: int,
    seed: int = 11,
    probe: Probe | None = None,
) -> RunResult:
    """Every token's customer at once (arriving over ``ramp`` seconds, thinking ``think``), or
    one after another when ``mode`` is :data:`ALONE`."""
    rng = random.Random(seed)
    result = RunResult(backend, mode, len(tokens))
    arrivals = [rng.uniform(0.0, ramp) if ramp > 0 else 0.0 for _ in tokens]
    # As in benchmarks.harness.load.drive: a full collection of this process's heap would stop
    # every in-flight clock for 100-200 ms, a pause the p99 would blame on the server.
    gc.collect()
    gc.freeze()
    result.load_before = os.getloadavg()
    if probe is not None:
        probe.start()
    started = time.perf_counter()
    try:
        customers = (
            customer(
                base,
                token,
                result,
                arrive=arrive,
                think=think,
                views=views,
                rng=random.Random(rng.random()),
            )
            for token, arrive in zip(tokens, arrivals, strict=True)
        )
        if mode == ALONE:
            for one in customers:
                await one
        else:
            await asyncio.gather(*customers)
    finally:
        gc.unfreeze()
    result.elapsed_s = time.perf_counter() - started
    result.cpu = probe.stop() if probe is not None else None
    result.load_after = os.getloadavg()
    return result


async def warm_up(base: str, token: str) -> None:
    """One picker view on a link of its own, so the first customer does not pay for the
    booking cache's first build (nor the first connection to the database)."""
    async with KeepAliveClient(base) as client:
        page = await client.get(picker_path(token, LINK_ZONE))
        if page.status_code != 200:
            raise RuntimeError(f"the picker answered {page.status_code}: {page.body[:300]!r}")


def run_backend(
    backend: str,
    *,
    workers: int,
    n_agents: int,
    customers: int,
    modes: Sequence[str],
    ramp: float,
    think: float,
    views: int,
    workdir: Path,
    console: Console,
    pg_database: str = PG_BENCH_DB,
) -> list[RunResult]:
    """Seed ``backend``, start the service in a subprocess and run each mode's customers."""
    now = datetime.now(UTC)
    t0 = time.perf_counter()
    url, tokens = prepare(
        backend,
        workdir / backend,
        n_agents=n_agents,
        n_links=customers * len(modes) + 1,
        now=now,
        pg_database=pg_database,
    )
    console.print(
        f"[bold]{backend}[/]: migrated and seeded {n_agents} agents and {len(tokens)} links in "
        f"{time.perf_counter() - t0:.1f} s"
    )
    results = []
    log = workdir / f"server-{backend}.log"
    with serve(url, workers=workers, log=log) as (base, server_pid):
        db_pids = postgres_backends(url) if backend == "postgresql" else None
        with asyncio.Runner(loop_factory=client_loop_factory()) as runner:
            runner.run(warm_up(base, tokens[-1]))
            for i, mode in enumerate(modes):
                batch = tokens[i * customers : (i + 1) * customers]
                paced = mode == PACED
                result = runner.run(
                    run_customers(
                        base,
                        batch,
                        backend=backend,
                        mode=mode,
                        ramp=ramp if paced else 0.0,
                        think=think if paced else 0.0,
                        views=views,
                        probe=Probe(server_pid, db_pids),
                    )
                )
                console.print(f"  {line(result)}")
                results.append(result)
    return results


# --------------------------------------------------------------------------- reporting


def _ms(x: float) -> str:
    return "-" if x != x else f"{x:.1f}"  # NaN: nothing measured


def _load(load: tuple[float, float, float]) -> str:
    return f"{load[0]:.1f}"


def line(r: RunResult) -> str:
    verdict = ("met" if r.meets_target else "missed") if r.mode == PACED else "no target"
    return (
        f"{r.backend} {r.mode}, {r.customers} customers: picker p50/p99 "
        f"{_ms(r.picker_pct(50))}/{_ms(r.picker_pct(99))} ms ({len(r.picker_ms)} views), "
        f"booking p50/p99 {_ms(r.booking_pct(50))}/{_ms(r.booking_pct(99))} ms "
        f"({r.booked} booked, {r.taken} x 409, errors: {r.failures()}) in {r.elapsed_s:.1f} s, "
        f"load average {_load(r.load_before)} -> {_load(r.load_after)}; target {verdict}"
    )


def results_table(results: Sequence[RunResult]) -> Table:
    table = Table(title="The customer's pages over HTTP (picker GET, booking POST)")
    columns = (
        "backend",
        "run",
        "customers",
        "views",
        "picker p50",
        "picker p99",
        "picker max",
        "booked",
        "409",
        "errors",
        "booking p50",
        "booking p99",
        "booking max",
        "server CPU ms",
        "PG CPU ms",
        "load avg",
        "target",
    )
    for name in columns:
        table.add_column(name, justify="left" if name in ("backend", "run", "target") else "right")
    for r in results:
        if r.mode == PACED:
            verdict = "[green]met[/]" if r.meets_target else "[red]missed[/]"
        else:
            verdict = ""
        table.add_row(
            r.backend,
            r.mode,
            str(r.customers),
            str(len(r.picker_ms)),
            _ms(r.picker_pct(50)),
            _ms(r.picker_pct(99)),
            _ms(r.picker_pct(100)),
            str(r.booked),
            str(r.taken),
            str(r.errors),
            _ms(r.booking_pct(50)),
            _ms(r.booking_pct(99)),
            _ms(r.booking_pct(100)),
            f"{r.cpu_ms_per_request('server'):.2f}",
            f"{r.cpu_ms_per_request('database'):.2f}" if r.backend == "postgresql" else "-",
            f"{_load(r.load_before)} → {_load(r.load_after)}",
            verdict,
        )
    return table


LEGEND = (
    "Milliseconds as the customers' connections saw them. alone: one customer after another "
    "(the service time); paced: customers arrive over the ramp and think between steps (all on "
    "the pages at once); burst: all at the same instant, no thinking. booked = 303, 409 = the "
    "start was just taken (answered with alternatives). "
    f"Targets (paced run): picker p99 <= {TARGET_PICKER_P99_MS:.0f} ms, booking p99 <= "
    f"{TARGET_BOOKING_P99_MS:.0f} ms, no errors. server / PG CPU ms: per request (views and "
    "bookings together). load avg: 1-minute, before -> after the run."
)


# --------------------------------------------------------------------------- main


def modes_list(text: str) -> list[str]:
    """An argparse type: comma-separated runs: alone, paced, burst."""
    modes = [m.strip() for m in text.split(",") if m.strip()]
    for m in modes:
        if m not in (ALONE, PACED, BURST):
            raise argparse.ArgumentTypeError(f"unknown run {m!r}: {ALONE}, {PACED} or {BURST}")
    return modes


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.waiting_room", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--backends",
        default="sqlite,postgresql",
        type=backends,
        help="comma-separated: sqlite, postgresql (or postgres)",
    )
    parser.add_argument("--customers", default=200, type=int, help="customers at once, per run")
    parser.add_argument("--agents", default=200, type=int)
    parser.add_argument(
        "--runs", default="alone,paced,burst", type=modes_list, help="alone, paced, burst"
    )
    parser.add_argument("--ramp", default=5.0, type=float, help="paced: arrivals over N seconds")
    parser.add_argument("--think", default=5.0, type=float, help="paced: mean seconds per step")
    parser.add_argument("--views", default=2, type=int, help="picker views before booking")
    parser.add_argument("--workers", default=1, type=int, help="uvicorn worker processes")
    parser.add_argument(
        "--pg-database", default=PG_BENCH_DB, help="PostgreSQL database to (re)create and use"
    )
    args = parser.parse_args(argv)
    if args.customers < 1 or args.views < 1:
        parser.error("--customers and --views must be at least 1")

    console = Console(width=None if sys.stdout.isatty() else 170)
    console.print(machine_note())
    results: list[RunResult] = []
    with contextlib.ExitStack() as stack:
        if "postgresql" in args.backends:
            stack.enter_context(pg_exclusive(dbname=args.pg_database))
        workdir = Path(
            stack.enter_context(tempfile.TemporaryDirectory(prefix="switchboard-bench-room-"))
        )
        for backend in args.backends:
            results += run_backend(
                backend,
                workers=args.workers,
                n_agents=args.agents,
                customers=args.customers,
                modes=args.runs,
                ramp=args.ramp,
                think=args.think,
                views=args.views,
                workdir=workdir,
                console=console,
                pg_database=args.pg_database,
            )
    console.print(results_table(results))
    console.print(LEGEND)
    for r in results:
        console.print(line(r))
        for kind, body in r.samples.items():
            console.print(f"  first {kind} of {r.backend} {r.mode}: {body}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
