"""Batched assignment (group commit), on SQLite and PostgreSQL: a batch decides in request
order on one read of the loads, answers each request on its own (a 404 or 409 fails nobody
else), and concurrent HTTP requests share transactions without ever over-filling an agent."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta, timezone
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import Engine

from api import mapping
from api.assignment import service as assignment
from api.assignment.routes import assignment_json
from api.assignment.schemas import AssignmentOut
from api.assignment.service import AssignRequest, AssignResult
from api.errors import Conflict, NotFound
from api.mapping import Owner
from solver.plan import Alternative, Decision, Reason
from tests.api.assignment.test_assign import history, org, outbox, put_ticket, subscribe
from tests.api.conftest import T0, As, TenantCtx


def _batch(app: FastAPI, tenant_id: str, ids: list[str], **kw: Any) -> list[Any]:
    with app.state.session_factory() as session:
        out = assignment.assign_many(
            session=session,
            cache=app.state.realtime_cache,
            tenant_id=tenant_id,
            requests=[AssignRequest(tid, T0, "test", **kw) for tid in ids],
        )
        session.commit()
    return out


def test_a_batch_decides_in_order_and_answers_each_request(
    a: As, app: FastAPI, tenant_a: TenantCtx, db: Engine
) -> None:
    org(a, capacity=1)
    subscribe(db, tenant_a.id, "ticket.assigned")
    for i in range(5):
        put_ticket(a, f"B{i}")
    put_ticket(a, "DONE", status="solved")
    out = _batch(app, tenant_a.id, ["B0", "nope", "B1", "DONE", "B2", "B3", "B4"])
    assert isinstance(out[1], NotFound) and isinstance(out[3], Conflict)
    results = [r for r in out if isinstance(r, AssignResult)]
    agents = [r.decision.agent_id for r in results]
    # Capacity 1 each: the first three in request order get the three agents, the rest queue.
    assert sorted(agents[:3]) == ["ana", "ben", "cid"] and agents[3:] == [None, None]
    assert [r.event for r in results] == ["assigned"] * 3 + [None, None]
    # What each answer says is what was written: owner, history, outbox.
    for tid, agent in zip(["B0", "B1", "B2", "B3", "B4"], agents, strict=True):
        assert a.get(f"/v1/tickets/{tid}").json()["owner_agent"] == agent
        kinds = [e["kind"] for e in history(a, tid)]
        assert kinds == (["created", "assigned"] if agent else ["created"])
    assert sorted(d["ticket_id"] for _, d in outbox(db, tenant_a.id)) == ["B0", "B1", "B2"]
    # The same ticket twice is refused: a batch decides each ticket once.
    with pytest.raises(ValueError, match="once"):
        _batch(app, tenant_a.id, ["B3", "B3"])


def test_a_batch_re_decides_owned_tickets_without_counting_them_twice(
    a: As, app: FastAPI, tenant_a: TenantCtx
) -> None:
    """Tickets already held are left out of their owner's load while decided: with capacity 1,
    re-assigning ana's and ben's tickets in one batch keeps each with its owner."""
    org(a, capacity=1)
    put_ticket(a, "H1", owner_agent="ana", status="open")
    put_ticket(a, "H2", owner_agent="ben", status="open")
    out = _batch(app, tenant_a.id, ["H1", "H2"])
    assert [r.decision.agent_id for r in out] == ["ana", "ben"]
    assert [r.event for r in out] == [None, None]


def test_concurrent_http_requests_share_batches_and_never_overfill(
    a: As, app: FastAPI, tenant_a: TenantCtx
) -> None:
    """24 requests at once over 3 agents with capacity 2 (one of them twice, one unknown):
    six get an agent, nobody holds more than two, every request gets its own answer, and the
    batcher answered them in fewer transactions than requests."""
    org(a, capacity=2)
    ids = [f"C{i}" for i in range(21)]
    for tid in ids:
        put_ticket(a, tid)

    async def fire() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        headers = {"Authorization": f"Bearer {a.key}"}
        async with httpx.AsyncClient(
            transport=transport, base_url="http://t", headers=headers
        ) as client:
            paths = [f"/v1/tickets/{tid}/assign" for tid in [*ids, "C0", "C1", "missing"]]
            return await asyncio.gather(*(client.post(p) for p in paths))

    responses = asyncio.run(fire())
    assert [r.status_code for r in responses] == [200] * 23 + [404]
    assert responses[-1].headers["content-type"] == "application/problem+json"
    owners = [a.get(f"/v1/tickets/{tid}").json()["owner_agent"] for tid in ids]
    assert {agent: owners.count(agent) for agent in ("ana", "ben", "cid")} == {
        "ana": 2,
        "ben": 2,
        "cid": 2,
    }
    assigned = [r.json() for r in responses[:21] if r.json()["agent"] is not None]
    assert len(assigned) == 6 and all(x["event"] == "assigned" for x in assigned)
    # The repeats of C0 and C1 ran after their first request committed: no second event.
    for tid in ("C0", "C1"):
        kinds = [e["kind"] for e in history(a, tid)]
        assert kinds.count("assigned") <= 1 and "reassigned" not in kinds
    batcher = app.state.assign_batcher
    assert batcher.requests == 24 and batcher.batches < 24


@pytest.mark.parametrize(
    "decision",
    [
        Decision(
            ticket_id="T-1",
            agent_id="ana",
            team_id="support",
            score=12.5,
            reasons=(
                Reason("first_response", "due in 1 h; can start now", 0.0),
                Reason("load", "load 1/4", 5),
            ),
            alternatives=(Alternative("ben", 14.0, (Reason("fairness", "2 recent", 2.0),)),),
            expected_start=T0.astimezone(timezone(timedelta(hours=2))),
            expected_end=T0 + timedelta(minutes=30, microseconds=250),
        ),
        Decision(
            ticket_id="T-2",
            agent_id=None,
            team_id="support",
            score=None,
            reasons=(Reason("qualified", "nobody has billing 5"), Reason("team_queue", "queued")),
        ),
    ],
)
def test_the_hand_written_json_is_the_schema_s_document(decision: Decision) -> None:
    previous = Owner(kind="agent", id="cid")
    for event, dry_run in (("reassigned", False), (None, True)):
        fast = json.loads(
            assignment_json(
                decision,
                previous=previous,
                changed=event is not None,
                event=event,
                dry_run=dry_run,
            )
        )
        model = AssignmentOut.model_validate(
            mapping.decision_json(
                decision, previous=previous, changed=event is not None, event=event, dry_run=dry_run
            )
        )
        assert fast == json.loads(model.model_dump_json())
        assert AssignmentOut.model_validate(fast) == model


def test_requests_arriving_together_build_the_index_once(a: As, app: FastAPI) -> None:
    org(a)
    put_ticket(a, "D1")
    cache = app.state.realtime_cache
    cache.invalidate()
    builds = cache.builds

    async def fire() -> list[httpx.Response]:
        headers = {"Authorization": f"Bearer {a.key}"}
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://t", headers=headers
        ) as client:
            return await asyncio.gather(
                *(client.post("/v1/tickets/D1/assign", json={"dry_run": True}) for _ in range(8))
            )

    responses = asyncio.run(fire())
    assert {r.json()["agent"] for r in responses} == {"ben"}
    assert cache.builds == builds + 1
