"""The service through a PostgreSQL outage: ``python -m benchmarks.db_faults``.

The app (default timeouts, as a user runs it) talks to PostgreSQL through a TCP proxy
(:mod:`benchmarks.harness.tcp_proxy`) in a database of its own (``switchboard_bench_faults``,
dropped and re-created each run). ``--clients`` threads send
requests back to back (alternately a ticket read and a ticket write), a probe reads
``/healthz`` every 100 ms and ``/readyz`` every second, while the proxy goes through phases:
forward, refuse (the server went away), forward, black hole (a partition: accepted, nothing
forwarded), forward. Each request is counted in the phase it started in (so a few 503s under
"forward" are requests in flight when the proxy switched to "refuse").

Per phase: requests, answers by status, latency p50/p99/max, the slowest ``/healthz`` and the
``/readyz`` answers; then warning lines logged over the whole run (and how many carry SQL), and
how long after each outage the first write succeeded. The issue measured before the fixes:
requests hung 30 s and more, 500s for a full pool, 133,864 log lines in a 140 s outage.
In-process (``TestClient``), so latencies include no network; nothing here asserts on time.
"""

from __future__ import annotations

import argparse
import logging
import os
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from fastapi.testclient import TestClient
from psycopg import OperationalError
from sqlalchemy.engine import make_url

from api.db import migrate
from api.db.engine import make_engine, make_session_factory
from api.keys import tenants
from api.main import create_app
from api.settings import Environment, Settings
from benchmarks.harness.databases import pg_exclusive, reset_postgres
from benchmarks.harness.tcp_proxy import TcpProxy

PHASES = ("forward", "refuse", "recovered", "blackhole", "healed")
SQL_WORDS = ("SELECT", "INSERT", "UPDATE ", "DELETE ")


@dataclass
class Record:
    phase: str
    status: int
    seconds: float


@dataclass
class Run:
    requests: list[Record] = field(default_factory=list)
    health: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    ready: dict[str, list[tuple[int, float]]] = field(default_factory=lambda: defaultdict(list))
    first_write_ok: dict[str, float] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)


class CountingHandler(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.lines = 0
        self.with_sql = 0

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage() + (self.format(record) if record.exc_info else "")
        self.lines += 1
        self.with_sql += any(word in text for word in SQL_WORDS)


def ticket() -> dict[str, Any]:
    now = datetime.now(UTC)
    return {
        "team": "support",
        "required_skills": {},
        "priority": "high",
        "status": "new",
        "owner_agent": None,
        "first_response_due": (now + timedelta(hours=1)).isoformat(),
        "resolution_due": (now + timedelta(hours=8)).isoformat(),
        "effort_minutes": 30,
        "requester": "customer@example.com",
    }


FAULTS_DB = "switchboard_bench_faults"  # its own database: a run drops and re-creates it


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--phase-seconds", type=float, default=10.0)
    args = parser.parse_args()
    try:
        with pg_exclusive(dbname=FAULTS_DB):
            url = reset_postgres(dbname=FAULTS_DB)
            migrate.upgrade(url)
            u = make_url(url)
            with TcpProxy(u.host or "127.0.0.1", u.port or 5432) as proxy:
                run = measure(url, proxy, args.clients, args.phase_seconds)
    except OperationalError as exc:
        raise SystemExit(f"PostgreSQL not reachable at 127.0.0.1:5432: {exc}") from None
    report(run, args)


def measure(url: str, proxy: TcpProxy, clients: int, phase_seconds: float) -> Run:
    direct = make_engine(Settings(database_url=url, environment=Environment.TEST))
    with make_session_factory(direct)() as session:
        _tenant, key = tenants.create(session=session, name="faults", now=datetime.now(UTC))
        session.commit()
    direct.dispose()
    proxied = make_url(url).set(host="127.0.0.1", port=proxy.port)
    settings = Settings(
        database_url=proxied.render_as_string(hide_password=False),
        environment=Environment.TEST,
    )
    counter = CountingHandler()
    logging.getLogger().addHandler(counter)
    run = Run()
    phase = PHASES[0]
    changed_at = time.perf_counter()
    stop = threading.Event()
    auth = {"Authorization": f"Bearer {key}"}
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        assert client.post("/v1/teams", json={"id": "support"}, headers=auth).status_code == 201

        def worker(n: int) -> None:
            i = 0
            while not stop.is_set():
                i += 1
                started_in, t0 = phase, time.perf_counter()
                if i % 2:
                    r = client.get(f"/v1/tickets/T-{n}-{i - 1}", headers=auth)
                else:
                    r = client.put(f"/v1/tickets/T-{n}-{i}", json=ticket(), headers=auth)
                t1 = time.perf_counter()
                with run.lock:
                    run.requests.append(Record(started_in, r.status_code, t1 - t0))
                    if not i % 2 and r.status_code < 300 and phase not in run.first_write_ok:
                        run.first_write_ok[phase] = t1 - changed_at

        def probe() -> None:
            k = 0
            while not stop.wait(0.1):
                t0 = time.perf_counter()
                client.get("/healthz")
                run.health[phase].append(time.perf_counter() - t0)
                k += 1
                if k % 10 == 0:
                    t0 = time.perf_counter()
                    r = client.get("/readyz")
                    run.ready[phase].append((r.status_code, time.perf_counter() - t0))

        threads = [threading.Thread(target=worker, args=(n,)) for n in range(clients)]
        threads.append(threading.Thread(target=probe))
        for t in threads:
            t.start()
        for name in PHASES:
            phase, changed_at = name, time.perf_counter()
            {"refuse": proxy.refuse, "blackhole": proxy.blackhole}.get(name, proxy.forward)()
            time.sleep(phase_seconds)
        stop.set()
        for t in threads:
            t.join()
    logging.getLogger().removeHandler(counter)
    run.health["log lines"] = [float(counter.lines), float(counter.with_sql)]
    return run


def report(run: Run, args: argparse.Namespace) -> None:
    load = os.getloadavg()
    print(
        f"db_faults: {args.clients} clients, {args.phase_seconds:g} s per phase, "
        f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
    )
    print(
        f"{'phase':<10} {'requests':>8}  {'answers':<28} {'p50 ms':>8} {'p99 ms':>8} "
        f"{'max ms':>8} {'healthz max ms':>14}  readyz (status: max ms)"
    )
    for name in PHASES:
        rows = [r for r in run.requests if r.phase == name]
        if not rows:
            continue
        seconds = np.array([r.seconds for r in rows]) * 1000
        statuses = Counter(r.status for r in rows)
        answers = ", ".join(f"{n}×{s}" for s, n in sorted(statuses.items()))
        health = max(run.health.get(name, [0.0])) * 1000
        ready: dict[int, float] = {}
        for status, took in run.ready.get(name, []):
            ready[status] = max(ready.get(status, 0.0), took * 1000)
        ready_text = ", ".join(f"{s}: {ms:.0f}" for s, ms in sorted(ready.items()))
        print(
            f"{name:<10} {len(rows):>8}  {answers:<28} {np.percentile(seconds, 50):>8.1f} "
            f"{np.percentile(seconds, 99):>8.1f} {seconds.max():>8.1f} {health:>14.1f}  "
            f"{ready_text}"
        )
    lines, with_sql = run.health["log lines"]
    print(f"warning lines logged: {lines:.0f} ({with_sql:.0f} with SQL)")
    for name in ("recovered", "healed"):
        first_ok = run.first_write_ok.get(name)
        print(
            f"first successful write after '{name}' began: "
            + (f"{first_ok:.2f} s" if first_ok is not None else "none")
        )


if __name__ == "__main__":
    main()
