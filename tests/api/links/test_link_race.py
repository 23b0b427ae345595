"""The booking race through the customers' own links, on SQLite and PostgreSQL, through a real
server: 200 customers, each with their own call link on their own connection to uvicorn, open
their picker, then at one release post its booking form for the one start exactly 10 agents can
cover. Exactly 10 are booked (303 to their link's page), the other 190 get the picker again
(409) saying the time was just taken and offering the nearest open starts, none a 5xx, and
afterwards no agent holds two calls (SQL over the calls table) and every link booked at most
once. How fast is for ``python -m benchmarks.booking_race --via links`` to print."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest
from fastapi import FastAPI
from sqlalchemy import Engine, text

from api.links import service as links_service
from benchmarks import booking_race as br
from tests.api.bookings.test_race import _uvicorn
from tests.api.conftest import T0, As, TenantCtx

AGENTS = 10
CUSTOMERS = 200


def test_200_customers_race_through_their_own_links_for_10_agents(
    a: As, tenant_a: TenantCtx, app: FastAPI, db: Engine
) -> None:
    start = br.race_start(T0)
    for method, path, body in br.org_requests(start, agents=AGENTS, customers=CUSTOMERS):
        r = a.request(method, path, json=body)
        assert r.status_code in (200, 201), (path, r.text)
    tokens = []
    for n in range(1, CUSTOMERS + 1):
        r = a.post(
            f"/v1/tickets/{br.ticket_id(n)}/call-links",
            json={"capability_id": br.CAPABILITY, "timezone": br.TZ},
        )
        assert r.status_code == 201, r.text
        tokens.append(r.json()["url"].rsplit("/", 1)[1])
    with _uvicorn(app) as base:
        answers = asyncio.run(br.race_links(base, tokens, start))

    assert sorted(x.customer for x in answers) == list(range(1, CUSTOMERS + 1))
    statuses = Counter(x.status for x in answers)
    assert statuses == {303: AGENTS, 409: CUSTOMERS - AGENTS}, [
        x.body["text"] for x in answers if x.status not in (303, 409)
    ][:3]
    wanted = start.strftime("%Y-%m-%dT%H:%M:%SZ")
    for x in answers:
        if x.status == 409:
            assert x.body["taken"], x.body["text"]
            assert x.body["starts"] and wanted not in x.body["starts"]  # elsewhere to go

    assert br.double_booked(db, tenant_a.id) == []
    with db.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT c.ticket_id, c.link_id, coalesce(c.bound_agent, c.cover_agent) AS agent "
                "FROM calls c WHERE c.tenant_id = :t AND c.status = 'booked'"
            ),
            {"t": tenant_a.id},
        ).all()
        used = conn.execute(
            text("SELECT count(*) FROM call_links WHERE tenant_id = :t AND booking_id IS NOT NULL"),
            {"t": tenant_a.id},
        ).scalar_one()
    assert len(rows) == AGENTS and used == AGENTS
    assert len({r.link_id for r in rows}) == AGENTS and None not in {r.link_id for r in rows}
    assert len({r.agent for r in rows}) == AGENTS and None not in {r.agent for r in rows}
    winners = {tokens[x.customer - 1] for x in answers if x.status == 303}
    assert len(winners) == AGENTS


def test_a_start_already_refused_in_this_state_is_refused_without_the_lock(
    a: As, app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    from benchmarks.waiting_room import PickerForm
    from tests.api.bookings.test_bookings import org
    from tests.api.links.test_links import issue, token_of

    org(a, agents=("ana",))  # one agent: 09:00 holds one call
    locks: list[str] = []
    real = links_service.lock_tenant
    monkeypatch.setattr(links_service, "lock_tenant", lambda s, t: (locks.append(t), real(s, t))[1])
    client = a.client

    forms = {}
    for ticket in ("ZD-1", "ZD-2", "ZD-3"):  # each reads the picker before anyone books
        token = token_of(issue(a, ticket))
        form = PickerForm.read(client.get(f"/c/{token}").content)
        assert "2026-03-02T09:00:00Z" in form.starts
        forms[ticket] = (token, form)

    def post(ticket: str) -> int:
        token, form = forms[ticket]
        body = {"start": "2026-03-02T09:00:00Z", "tz": form.tz, "form_token": form.form_token}
        r = client.post(f"/c/{token}/book", data=body, follow_redirects=False)
        if r.status_code == 409:
            assert 'id="taken"' in r.text and "2026-03-02T09:30:00Z" in r.text
        return r.status_code

    assert post("ZD-1") == 303 and len(locks) == 1
    assert post("ZD-2") == 409 and len(locks) == 2  # the engine refuses it, under the lock
    assert post("ZD-3") == 409 and len(locks) == 2  # known refused in this state: no lock
