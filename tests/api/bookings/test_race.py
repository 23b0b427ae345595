"""The raw booking race, on SQLite and PostgreSQL, through a real server: 200 customers, each on
their own connection to uvicorn on 127.0.0.1, post their own ticket's booking for one start that
exactly 10 agents can cover, all at one release. Exactly 10 get a 201, the other 190 a 409 with
alternatives, none a 5xx, and afterwards no agent holds two calls (an SQL query over the calls
table). Each answer's latency from the release is recorded and the winners must all be among
the answers; how fast is for ``python -m benchmarks.booking_race`` to print (no wall time is
asserted here: the machine is shared).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter

from fastapi import FastAPI
from sqlalchemy import Engine, text

from benchmarks import booking_race as br
from tests.api.conftest import T0, As, TenantCtx
from tests.live_server import uvicorn_thread

AGENTS = 10
CUSTOMERS = 200


def _uvicorn(app: FastAPI) -> contextlib.AbstractContextManager[str]:
    """The app under uvicorn in a thread. The test client already ran its lifespan (the app's
    engine and caches exist), so uvicorn does not run it again."""
    return uvicorn_thread(app, lifespan="off", join_seconds=30)


def test_200_customers_race_for_10_agents(
    a: As, tenant_a: TenantCtx, app: FastAPI, db: Engine
) -> None:
    start = br.race_start(T0)
    for method, path, body in br.org_requests(start, agents=AGENTS, customers=CUSTOMERS):
        r = a.request(method, path, json=body)
        assert r.status_code in (200, 201), (path, r.text)
    with _uvicorn(app) as base:
        answers = asyncio.run(br.race(base, tenant_a.admin_key, start, CUSTOMERS))

    assert len(answers) == CUSTOMERS
    assert sorted({x.customer for x in answers}) == list(range(1, CUSTOMERS + 1))
    statuses = Counter(x.status for x in answers)
    assert statuses == {201: AGENTS, 409: CUSTOMERS - AGENTS}, [
        x.body for x in answers if x.status not in (201, 409)
    ][:3]
    winners = [x for x in answers if x.status == 201]
    assert len(winners) == AGENTS and all(x.seconds > 0 for x in answers)
    for x in answers:
        if x.status == 409:
            assert x.body["reason"]["rule"] == "fully_booked", x.body
            assert x.body["alternatives"], x.body  # somewhere else to go
            assert start.isoformat() not in [s["start"] for s in x.body["alternatives"]]

    # The database agrees: ten calls at that start, each on its own agent, no agent twice.
    assert br.double_booked(db, tenant_a.id) == []
    with db.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT ticket_id, cover_agent, bound_agent FROM calls "
                "WHERE tenant_id = :t AND status = 'booked'"
            ),
            {"t": tenant_a.id},
        ).all()
    assert len(rows) == AGENTS
    assert {r.ticket_id for r in rows} == {x.body["ticket_id"] for x in winners}
    holders = [r.bound_agent or r.cover_agent for r in rows]
    assert None not in holders and len(set(holders)) == AGENTS
    # Binding them names ten different agents.
    bound = a.post("/v1/bookings/bind", json={"lead_minutes": 7 * 24 * 60}).json()["bound"]
    assert len({b["agent"] for b in bound}) == AGENTS
    assert br.double_booked(db, tenant_a.id) == []
