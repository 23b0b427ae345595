"""Smoke test of ``benchmarks.api_booking``, so the booking benchmark cannot rot unnoticed: a
tiny tenant on SQLite, the real app under uvicorn in a thread, every phase with the benchmark's
own code and client, then the report. No timing is asserted; what is asserted is what the
figures mean: warm runs never rebuild the booking cache, each cold query does once, and the
bookings counted are the rows written."""

from __future__ import annotations

import asyncio
import contextlib
import os
from datetime import UTC, datetime
from pathlib import Path

from fastapi import FastAPI
from sqlalchemy import func, select

from api.bookings.routes import booking_cache
from api.db.engine import make_engine
from api.db.models import Call, Capability
from api.main import create_app
from api.settings import Environment, Settings
from benchmarks import api_booking as bb
from tests.live_server import uvicorn_thread


def _uvicorn(app: FastAPI) -> contextlib.AbstractContextManager[str]:
    return uvicorn_thread(app, join_seconds=10)


def test_every_phase_against_the_real_service(tmp_path: Path) -> None:
    # 16 agents: the first with the narrow capability's skills is agent-0015 (seed 7).
    url, setup = bb.prepare("sqlite", tmp_path, n_agents=16, n_tickets=12, now=datetime.now(UTC))
    assert setup.capability_ids == tuple(c.id for c in bb.CAPABILITIES)
    settings = Settings(database_url=url, environment=Environment.TEST)
    app = create_app(settings)
    cache = booking_cache(app)
    with _uvicorn(app) as base:
        run = asyncio.run(
            bb.measure(
                base,
                setup,
                backend="sqlite",
                n_calls=8,
                n_bookings=4,
                n_cold=3,
                duration=0.3,
                concurrencies=(1, 2),
                server_pid=os.getpid(),  # in-process: the "server" is this process too
            )
        )
    by = {(r.measure, r.clients): r for r in run.results}
    assert set(by) == {(bb.WARM, 1), (bb.WARM, 2), (bb.CHANGE, 1), (bb.COLD, 1), (bb.BOOK, 1)}

    # Set-up bookings went through (a 409 would be a race, impossible with one client).
    assert run.prebooked["201"] == 8 and run.prebooked.total() == 8, run.prebooked
    for key in ((bb.WARM, 1), (bb.WARM, 2)):
        warm = by[key]
        assert warm.ok > 0 and warm.errors == 0 and set(warm.statuses) == {"200"}
        assert warm.latencies_ms.size == warm.ok and warm.throughput > 0
        assert warm.cpu is not None and warm.cpu.client > 0
    cold, changed, booked = by[(bb.COLD, 1)], by[(bb.CHANGE, 1)], by[(bb.BOOK, 1)]
    assert cold.ok == changed.ok == 3 and cold.errors == changed.errors == 0
    assert cold.elapsed_s is None and cold.cpu is not None and cold.cpu.client > 0
    assert booked.answered == 4 and booked.errors == 0 and booked.latencies_ms.size == booked.ok

    # Warm means built before the run: one build for the set-up bookings, one after each warm
    # run's change (by its priming query), one per cold query (the last one also serves the
    # timed bookings). Nothing else: no warm query and no booking rebuilt.
    assert cache.builds == 1 + 2 + 3, cache.builds
    assert cache.hits >= by[(bb.WARM, 1)].ok + by[(bb.WARM, 2)].ok + 2 * booked.answered

    engine = make_engine(settings)
    try:
        with engine.connect() as conn:
            assert conn.scalar(select(func.count()).select_from(Capability)) == 2
            assert conn.scalar(select(func.count()).select_from(Call)) == 8 + booked.ok
    finally:
        engine.dispose()

    table = bb.results_table([run], agents=16, calls=8)
    assert table.row_count == 5
    line = bb.summary_line([run], agents=16, calls=8)
    assert line.startswith("Booking over HTTP (16 agents, 8 calls booked): sqlite:")
    assert "slots warm 1c" in line and "slots warm 2c" in line and "POST booking" in line
    assert "x" in bb.ratio_line(run) and bb.cold_ratio(run)[0] > 0


def test_org_changes_cycle_through_away_busy_available() -> None:
    agents = [f"agent-{i:04d}" for i in range(10)]
    made = [bb.org_change(i, agents) for i in range(6)]
    assert [(m, p) for m, p, _ in made[:3]] == [
        ("PATCH", "/v1/agents/agent-0000"),
        ("POST", "/v1/busy"),
        ("PATCH", "/v1/agents/agent-0000"),
    ]
    assert made[0][2] == {"status": "away"} and made[2][2] == {"status": "available"}
    busy = made[1][2]
    assert busy["agent"] == "agent-0000"
    start, end = datetime.fromisoformat(busy["start"]), datetime.fromisoformat(busy["end"])
    assert start.tzinfo is not None and (end - start).total_seconds() == 1800
    assert made[3][1] == "/v1/agents/agent-0007"  # the next cycle takes another agent
