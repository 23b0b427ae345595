"""Smoke test of ``benchmarks.api``'s setup and measurement code (``benchmarks.harness``), so the
load benchmark cannot rot unnoticed: seed a tiny tenant on SQLite, assign through the app in-process
with the benchmark's own driver, reset, and report. No server process and no timing is asserted."""

from __future__ import annotations

import asyncio
import os
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import httpx
import numpy as np
from sqlalchemy import func, select

from api.db import migrate
from api.db.engine import make_engine
from api.db.models import Agent, Shift, Ticket
from api.main import create_app
from api.settings import Environment, Settings
from benchmarks.harness.cpu import Measures, Probe, bucket_percentile
from benchmarks.harness.databases import sqlite_url
from benchmarks.harness.load import (
    ASSIGNED,
    QUEUED,
    SUCCESS,
    TARGET_CONCURRENCY,
    TARGET_RATE,
    RunResult,
    drive,
)
from benchmarks.harness.report import baseline_table, results_table, target_line
from benchmarks.harness.routes import BASELINE_PATH
from benchmarks.harness.seed import TEAM_IDS, reset_assignments, seed_tenant

NOW = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)


def test_seed_drive_reset_and_report(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path)
    migrate.upgrade(url)
    settings = Settings(database_url=url, environment=Environment.TEST)
    seeded = seed_tenant(settings, now=NOW, n_agents=6, n_tickets=10, batch=4)
    assert len(seeded.ticket_ids) == len(set(seeded.ticket_ids)) == 10

    engine = make_engine(settings)
    try:
        with engine.connect() as conn:
            assert conn.scalar(select(func.count()).select_from(Agent)) == 6
            assert conn.scalar(select(func.count()).select_from(Shift)) == 6 * 3
            # Shifts cover "now": otherwise every assignment would fall back to a team queue.
            assert (
                conn.scalar(select(func.count()).where(Shift.start_at <= NOW, Shift.end_at > NOW))
                == 6
            )

        app = create_app(settings, clock=lambda: NOW)

        async def run() -> tuple[np.ndarray, float, Counter[str], Measures | None]:
            async with app.router.lifespan_context(app):
                return await drive(
                    "http://bench",
                    seeded.helpdesk_key,
                    seeded.ticket_ids[:6],
                    concurrency=2,
                    duration=30.0,
                    warmup=2,
                    transport=httpx.ASGITransport(app=app),
                    probe=Probe(os.getpid()),
                )

        latencies, elapsed, outcomes, cpu = asyncio.run(run())
        # In-process the "server" is this process too (read in /proc clock ticks, so coarser).
        assert cpu is not None and cpu.client > 0 and cpu.server >= 0 and cpu.machine > 0
        assert set(outcomes) <= set(SUCCESS) and outcomes.total() == 6, outcomes
        assert latencies.shape == (6,) and elapsed > 0
        with engine.connect() as conn:
            owned = conn.scalar(select(func.count()).where(Ticket.owner_agent_id.is_not(None)))
            # What the driver counted as taken by an agent is what the database holds.
            assert owned == outcomes[ASSIGNED] > 0

        reset_assignments(engine, seeded.tenant_id)
        with engine.connect() as conn:
            assert conn.scalar(select(func.count()).where(Ticket.owner_agent_id.is_not(None))) == 0
    finally:
        engine.dispose()

    result = RunResult("postgresql", 1, TARGET_CONCURRENCY, latencies, 0.001, outcomes, cpu)
    assert result.ok == 6 and result.errors == 0 and result.queued == outcomes[QUEUED]
    assert result.throughput == 6000.0
    line = target_line([result])
    assert ("MET" in line) is result.meets_target
    assert results_table([result]).row_count == 1
    assert result.cpu_ms_per_request("client") > 0
    assert result.cpu_ceiling() > 0


def test_bucket_percentile_interpolates_the_server_histogram() -> None:
    cumulative = {0.01: 50.0, 0.05: 100.0, float("inf"): 100.0}
    assert bucket_percentile(cumulative, 50) == 10.0
    assert abs(bucket_percentile(cumulative, 99) - 49.2) < 1e-9
    # Beyond the last finite bucket only a lower bound is known.
    assert bucket_percentile({0.01: 0.0, float("inf"): 4.0}, 50) == 10.0
    assert np.isnan(bucket_percentile({}, 50))


def test_open_loop_sends_at_the_offered_rate(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path)
    migrate.upgrade(url)
    settings = Settings(database_url=url, environment=Environment.TEST)
    seeded = seed_tenant(settings, now=NOW, n_agents=4, n_tickets=40, batch=40)
    app = create_app(settings, clock=lambda: NOW)

    async def run() -> tuple[np.ndarray, float, Counter[str], Measures | None]:
        async with app.router.lifespan_context(app):
            return await drive(
                "http://bench",
                seeded.helpdesk_key,
                seeded.ticket_ids,
                concurrency=4,
                duration=0.5,
                rate=20.0,
                transport=httpx.ASGITransport(app=app),
            )

    latencies, elapsed, outcomes, _ = asyncio.run(run())
    # 20/s for half a second: ten requests fall due (at 0, 50, ..., 450 ms), no more.
    assert outcomes.total() == 10 and set(outcomes) <= set(SUCCESS), outcomes
    assert elapsed >= 0.45 and latencies.shape == (10,)
    result = RunResult("postgresql", 1, 4, latencies, elapsed, outcomes, None, 20.0)
    assert not result.meets_target  # 20/s is not the target rate, however fast


def test_target_line_reports_closed_and_open_loop_side_by_side() -> None:
    fast = np.full(1000, 20.0)
    slow = np.full(1000, 80.0)
    ok: Counter[str] = Counter({ASSIGNED: 1000})
    closed = RunResult("postgresql", 1, TARGET_CONCURRENCY, fast, 1.0, ok)
    opened = RunResult("postgresql", 1, TARGET_CONCURRENCY, slow, 2.0, ok, None, TARGET_RATE)
    assert closed.meets_target and not opened.meets_target
    assert (closed.load, opened.load) == ("closed", "500/s open")
    line = target_line([closed, opened])
    assert "closed loop MET (best: 1 worker(s), 1000/s, p99 20.0 ms)" in line
    assert "open loop at 500/s MISSED (best: 1 worker(s), 500/s, p99 80.0 ms)" in line
    assert results_table([closed, opened]).row_count == 2


def test_baseline_get_is_driven_and_reported_as_ratios(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path)
    migrate.upgrade(url)
    settings = Settings(database_url=url, environment=Environment.TEST)
    seeded = seed_tenant(settings, now=NOW, n_agents=2, n_tickets=2, batch=2)
    app = create_app(settings, clock=lambda: NOW)

    async def run() -> tuple[np.ndarray, float, Counter[str], Measures | None]:
        async with app.router.lifespan_context(app):
            return await drive(
                "http://bench",
                seeded.helpdesk_key,
                (),
                concurrency=2,
                duration=0.3,
                warmup=2,
                transport=httpx.ASGITransport(app=app),
                get_path=BASELINE_PATH.format(team_id=TEAM_IDS[0]),
            )

    latencies, elapsed, outcomes, _ = asyncio.run(run())
    # Every GET read the seeded team (a 200), none counted as a queued assignment.
    assert set(outcomes) == {ASSIGNED} and latencies.shape == (outcomes.total(),)
    assert outcomes.total() > 0 and elapsed >= 0.3

    ok: Counter[str] = Counter({ASSIGNED: 100})
    cpu = Measures(server=0.2, database=0.0, client=0.01, machine=0.5)
    get = RunResult("sqlite", 1, 8, np.full(400, 1.0), 1.0, Counter({"200": 400}), cpu)
    assign = RunResult("sqlite", 1, 8, np.full(100, 4.0), 1.0, ok, cpu, baseline=get)
    # 2 ms of server CPU per assignment against 0.5 ms per GET; 100/s against 400/s.
    assert assign.cpu_ratio() == 4.0 and assign.throughput_ratio() == 0.25
    alone = RunResult("sqlite", 1, 8, np.full(100, 4.0), 1.0, ok, cpu)
    assert np.isnan(alone.cpu_ratio()) and np.isnan(alone.throughput_ratio())
    assert baseline_table([assign, alone]).row_count == 1
