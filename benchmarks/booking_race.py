"""The raw booking race over HTTP: ``python -m benchmarks.booking_race --backends sqlite,postgres``.

For each backend (a SQLite temp file; PostgreSQL database ``switchboard_bench``, dropped and
re-created under the same guard as the other HTTP benchmarks) it migrates the database, creates
a tenant (service layer) and starts the real service in a subprocess
(:func:`benchmarks.harness.server.serve`, one worker). Through the API it adds ``--agents``
agents (10 by default) who can all cover one start and nobody else, a capability, and one ticket
per customer. Then ``--customers`` customers (200) each open a keep-alive connection, wait for
one release and post, at once, a booking of their own ticket for that one start: exactly
``--agents`` of them can win.

Printed per backend: how many answers of each status (201, 409 with alternatives, anything
else), p50/p99/max latency from the release (all answers, then winners and refusals apart), when
the last winner and the first refusal were heard, and whether any agent holds two calls (an SQL
query over the calls table). Nothing here asserts: the test of the same race is
``tests/api/bookings/test_race.py``; this prints the figures (the load generator shares the
machine's cores with the server; re-run before trusting a figure).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
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
from rich.console import Console
from rich.table import Table
from sqlalchemy import Engine, text

from api.db import migrate
from api.db.engine import make_engine, make_session_factory
from api.keys import tenants
from api.settings import Environment, Settings
from benchmarks.harness.databases import pg_exclusive, reset_postgres, sqlite_url
from benchmarks.harness.load import client_loop_factory
from benchmarks.harness.report import machine_note
from benchmarks.harness.routes import HEALTH_PATH
from benchmarks.harness.server import serve
from benchmarks.loadclient import KeepAliveClient

PG_DATABASE = "switchboard_bench"
CAPABILITY = "net"
TZ = "Europe/Berlin"


# --------------------------------------------------------------------------- the organisation


def race_start(now: datetime) -> datetime:
    """The start everybody wants: the first whole hour at least three hours ahead (past the
    capability's hour of notice, with time for the set-up)."""
    return (now + timedelta(hours=3)).replace(minute=0, second=0, microsecond=0, tzinfo=UTC)


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def org_requests(
    start: datetime, *, agents: int, customers: int
) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """The API requests (method, path, body) that set the race up: ``agents`` agents with
    ``networking`` on shift from an hour before ``start`` to three hours after, nobody else;
    capability ``net`` (30-minute calls on a 30-minute grid, an hour's notice, no reserve); one
    ticket per customer (``RACE-1``...). Exactly ``agents`` calls fit at ``start``."""
    yield "POST", "/v1/skills", {"id": "networking"}
    yield "POST", "/v1/teams", {"id": "support"}
    for i in range(agents):
        agent = f"agent-{i:03d}"
        body = {"id": agent, "team": "support", "skills": {"networking": 3}}
        yield "POST", "/v1/agents", body
        shift = {"agent": agent, "start": _iso(start - timedelta(hours=1))}
        yield "POST", "/v1/shifts", {**shift, "end": _iso(start + timedelta(hours=3))}
    yield (
        "POST",
        "/v1/capabilities",
        {
            "id": CAPABILITY,
            "requirements": {"networking": 2},
            "call_minutes": 30,
            "granularity_minutes": 30,
            "min_notice_minutes": 60,
            "reserve_share": 0.0,
        },
    )
    ticket = {
        "team": "support",
        "required_skills": {"networking": 2},
        "priority": "normal",
        "status": "new",
        "effort_minutes": 30,
        "owner_agent": None,
    }
    for n in range(1, customers + 1):
        yield "PUT", f"/v1/tickets/{ticket_id(n)}", ticket


def ticket_id(n: int) -> str:
    return f"RACE-{n}"


def booking_body(n: int, start: datetime) -> dict[str, Any]:
    return {
        "capability_id": CAPABILITY,
        "ticket_id": ticket_id(n),
        "start": start.isoformat(),
        "tz": TZ,
    }


# --------------------------------------------------------------------------- the race


@dataclass(frozen=True)
class Answer:
    customer: int
    status: int
    seconds: float  # from the release
    body: dict[str, Any]


async def race(base: str, key: str, start: datetime, customers: int) -> list[Answer]:
    """``customers`` customers, each on their own connection (opened and used once before),
    post their own ticket's booking for ``start`` at one release; their answers in the order
    heard, each with its latency from the release."""
    headers = {"Authorization": f"Bearer {key}"}
    # The lean client: the generator shares the cores with the server (benchmarks.loadclient).
    clients = [KeepAliveClient(base, headers) for _ in range(customers)]
    go = asyncio.Event()
    ready = [0]
    released = [0.0]
    heard: list[Answer] = []

    async def customer(n: int, client: KeepAliveClient) -> None:
        r = await client.get(HEALTH_PATH)  # the connection is open before the release
        if r.status_code != 200:
            raise RuntimeError(f"warm-up: {r.status_code} {r.body!r}")
        ready[0] += 1
        await go.wait()
        r = await client.post("/v1/bookings", json=booking_body(n, start))
        seconds = time.perf_counter() - released[0]
        try:
            body = r.json()
        except ValueError:
            body = {"text": r.body.decode(errors="replace")}
        heard.append(Answer(n, r.status_code, seconds, body))

    try:
        tasks = [asyncio.create_task(customer(n, c)) for n, c in enumerate(clients, start=1)]
        while ready[0] < customers:
            failed = [t for t in tasks if t.done()]
            if failed:
                await failed[0]  # raises what went wrong in the warm-up
            await asyncio.sleep(0.02)
        released[0] = time.perf_counter()
        go.set()
        await asyncio.gather(*tasks)
    finally:
        await asyncio.gather(*(c.aclose() for c in clients))
    return heard


WON_BY_LINK = 303  # the booking form answers a booking with a redirect to the link's page


async def race_links(base: str, tokens: Sequence[str], start: datetime) -> list[Answer]:
    """The same race through the customers' own call links (``/c/{token}``): each customer
    first opens their link's picker on their own connection (which also hands them the form's
    anti-forgery token), then, at the release, posts the booking form for ``start``. A booking
    answers 303 (to the link's page); a refusal 409, the picker again with the nearest open
    starts first (``body["starts"]``) and ``body["taken"]`` when it says the time was just
    taken. ``customer`` numbers the links from 1."""
    from benchmarks.waiting_room import PickerForm

    clients = [KeepAliveClient(base) for _ in tokens]
    go = asyncio.Event()
    ready = [0]
    released = [0.0]
    heard: list[Answer] = []
    value = start.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    async def customer(n: int, token: str, client: KeepAliveClient) -> None:
        page = await client.get(f"/c/{token}")
        form = PickerForm.read(page.body)
        if page.status_code != 200 or form.form_token is None:
            raise RuntimeError(f"picker: {page.status_code} {page.body[:300]!r}")
        if value not in form.starts:
            raise RuntimeError(f"picker: {value} is not offered to customer {n}")
        ready[0] += 1
        await go.wait()
        body = {"start": value, "tz": form.tz or TZ, "form_token": form.form_token}
        r = await client.post(f"/c/{token}/book", form=body)
        seconds = time.perf_counter() - released[0]
        text_ = r.body.decode("utf-8", "replace")
        answer = PickerForm.read(r.body)
        heard.append(
            Answer(
                n,
                r.status_code,
                seconds,
                {"starts": answer.starts, "taken": 'id="taken"' in text_, "text": text_[:300]},
            )
        )

    try:
        tasks = [
            asyncio.create_task(customer(n, t, c))
            for n, (t, c) in enumerate(zip(tokens, clients, strict=True), start=1)
        ]
        while ready[0] < len(tokens):
            failed = [t for t in tasks if t.done()]
            if failed:
                await failed[0]  # raises what went wrong before the release
            await asyncio.sleep(0.02)
        released[0] = time.perf_counter()
        go.set()
        await asyncio.gather(*tasks)
    finally:
        await asyncio.gather(*(c.aclose() for c in clients))
    return heard


def issue_links(base: str, key: str, customers: int) -> list[str]:
    """One call link per race ticket, issued through the helpdesk API: their tokens."""
    out = []
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}) as c:
        for n in range(1, customers + 1):
            r = c.post(
                f"/v1/tickets/{ticket_id(n)}/call-links",
                json={"capability_id": CAPABILITY, "timezone": TZ},
            )
            if r.status_code != 201:
                raise SystemExit(f"link for {ticket_id(n)}: {r.status_code} {r.text}")
            out.append(r.json()["url"].rsplit("/", 1)[1])
    return out


def double_booked(engine: Engine, tenant_id: str) -> list[tuple[str, str, str]]:
    """Pairs of booked calls one agent holds at once (bound agent, else the engine's cover),
    over ``[start_at, occupied_until)``: what must never exist."""
    query = text(
        "SELECT coalesce(x.bound_agent, x.cover_agent), x.id, y.id FROM calls x JOIN calls y "
        "ON x.tenant_id = y.tenant_id AND x.id < y.id "
        "AND coalesce(x.bound_agent, x.cover_agent) = coalesce(y.bound_agent, y.cover_agent) "
        "AND x.start_at < y.occupied_until AND y.start_at < x.occupied_until "
        "WHERE x.tenant_id = :t AND x.status IN ('booked', 'completed') "
        "AND y.status IN ('booked', 'completed')"
    )
    with engine.connect() as conn:
        return [(str(a), str(b), str(c)) for a, b, c in conn.execute(query, {"t": tenant_id})]


# --------------------------------------------------------------------------- figures


@dataclass
class Figures:
    backend: str
    answers: list[Answer]
    doubles: list[tuple[str, str, str]] = field(default_factory=list)
    uncovered: int = 0

    @property
    def statuses(self) -> Counter[int]:
        return Counter(a.status for a in self.answers)

    def of(self, status: int | None = None) -> np.ndarray:
        return np.array(
            [a.seconds for a in self.answers if status is None or a.status == status], dtype=float
        )


def _q(x: np.ndarray, q: float) -> str:
    return f"{np.quantile(x, q) * 1000:.0f}" if x.size else "–"


def _max(x: np.ndarray) -> str:
    return f"{x.max() * 1000:.0f}" if x.size else "–"


def table(runs: Sequence[Figures]) -> Table:
    t = Table(title="Booking race: every customer posts at one release (ms from the release)")
    for col in ("backend", "answers", "201", "409 w/ alts", "other", "p50", "p99", "max"):
        t.add_column(col, justify="right")
    for col in ("201 max", "409 p50", "409 max", "double-booked"):
        t.add_column(col, justify="right")
    for r in runs:
        st = r.statuses
        with_alts = sum(1 for a in r.answers if a.status == 409 and a.body.get("alternatives"))
        other = sum(n for s, n in st.items() if s not in (201, 409))
        every = r.of()
        t.add_row(
            r.backend,
            str(len(r.answers)),
            str(st.get(201, 0)),
            str(with_alts),
            str(other),
            _q(every, 0.5),
            _q(every, 0.99),
            _max(every),
            _max(r.of(201)),
            _q(r.of(409), 0.5),
            _max(r.of(409)),
            str(len(r.doubles)),
        )
    return t


# --------------------------------------------------------------------------- running


def prepare(backend: str, workdir: Path, pg_database: str) -> tuple[str, str, str]:
    """A migrated database of ``backend`` with one tenant: (URL, tenant id, admin key)."""
    workdir.mkdir(parents=True, exist_ok=True)
    url = sqlite_url(workdir) if backend == "sqlite" else reset_postgres(dbname=pg_database)
    migrate.upgrade(url)
    engine = make_engine(Settings(database_url=url, environment=Environment.TEST))
    try:
        with make_session_factory(engine)() as session:
            tenant, key = tenants.create(session=session, name="race", now=datetime.now(UTC))
            session.commit()
    finally:
        engine.dispose()
    return url, tenant.id, key


def set_up(base: str, key: str, start: datetime, *, agents: int, customers: int) -> None:
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}) as c:
        for method, path, body in org_requests(start, agents=agents, customers=customers):
            r = c.request(method, path, json=body)
            if r.status_code >= 300:
                raise SystemExit(f"set-up {method} {path}: {r.status_code} {r.text}")


def run_backend(
    backend: str,
    code: Path | None = None,
    *,
    agents: int,
    customers: int,
    workdir: Path,
    pg_database: str,
    log: Callable[[str], None],
    via: str = "api",
) -> Figures:
    url, tenant_id, key = prepare(backend, workdir / backend, pg_database)
    start = race_start(datetime.now(UTC))
    log_path = workdir / f"server-{backend}-{'base' if code else 'this'}.log"
    with serve(url, workers=1, log=log_path, code=code) as (base, _pid):
        t0 = time.perf_counter()
        set_up(base, key, start, agents=agents, customers=customers)
        tokens = issue_links(base, key, customers) if via == "links" else []
        log(f"[bold]{backend}[/]: set up in {time.perf_counter() - t0:.1f} s; racing via {via}")
        with asyncio.Runner(loop_factory=client_loop_factory()) as runner:
            if via == "links":
                answers = runner.run(race_links(base, tokens, start))
                # The customers' pages say 303 for a booking: counted as the API's 201.
                answers = [
                    Answer(
                        x.customer, 201 if x.status == WON_BY_LINK else x.status, x.seconds, x.body
                    )
                    for x in answers
                ]
            else:
                answers = runner.run(race(base, key, start, customers))
    engine = make_engine(Settings(database_url=url, environment=Environment.TEST))
    try:
        doubles = double_booked(engine, tenant_id)
        with engine.connect() as conn:
            uncovered = conn.execute(
                text(
                    "SELECT count(*) FROM calls WHERE tenant_id = :t AND status = 'booked' "
                    "AND bound_agent IS NULL AND cover_agent IS NULL"
                ),
                {"t": tenant_id},
            ).scalar_one()
    finally:
        engine.dispose()
    label = backend if code is None else f"{backend} ({code.name})"
    label = f"{label} via {via}"
    return Figures(label, answers, doubles, int(uncovered))


def _backends(text_: str) -> list[str]:
    out = []
    for b in (x.strip() for x in text_.split(",") if x.strip()):
        if b in ("postgres", "postgresql"):
            out.append("postgresql")
        elif b == "sqlite":
            out.append("sqlite")
        else:
            raise argparse.ArgumentTypeError(f"unknown backend {b!r}: sqlite or postgres")
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.booking_race", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--backends", default="sqlite,postgres", type=_backends)
    parser.add_argument("--agents", default=10, type=int, help="agents who can cover the start")
    parser.add_argument("--customers", default=200, type=int)
    parser.add_argument("--pg-database", default=PG_DATABASE)
    parser.add_argument(
        "--via",
        default="api",
        type=lambda t: [v.strip() for v in t.split(",") if v.strip()],
        help="api (POST /v1/bookings with the helpdesk's key), links (each customer posts "
        "their own call link's booking form), or both: api,links",
    )
    parser.add_argument(
        "--before",
        type=Path,
        default=None,
        help="also race a checkout of an earlier commit (served from that tree), interleaved",
    )
    args = parser.parse_args(argv)
    console = Console(width=None if sys.stdout.isatty() else 170)
    console.print(machine_note())
    runs = []
    with contextlib.ExitStack() as stack:
        if "postgresql" in args.backends:
            stack.enter_context(pg_exclusive(dbname=args.pg_database))
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="sb-race-")))
        for backend in args.backends:
            for via in args.via:
                for code in (args.before, None) if args.before else (None,):
                    runs.append(
                        run_backend(
                            backend,
                            code,
                            agents=args.agents,
                            customers=args.customers,
                            workdir=workdir / via,
                            pg_database=args.pg_database,
                            log=console.print,
                            via=via,
                        )
                    )
    console.print(table(runs))
    for r in runs:
        st = r.statuses
        console.print(
            f"{r.backend}: {st.get(201, 0)} × 201, {st.get(409, 0)} × 409, "
            f"{sum(n for s, n in st.items() if s >= 500)} × 5xx; p50 {_q(r.of(), 0.5)} ms, "
            f"p99 {_q(r.of(), 0.99)} ms, max {_max(r.of())} ms from the release; last winner "
            f"{_max(r.of(201))} ms; {len(r.doubles)} agents double-booked, "
            f"{r.uncovered} booked calls without cover"
        )
    console.print(machine_note())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
