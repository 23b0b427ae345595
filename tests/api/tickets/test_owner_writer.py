"""Every change of owner goes through one writer (:class:`api.tickets.owner.OwnerWriter`).

Drives the five use cases that move tickets — assign, escalate, re-route (an agent's status
with a policy), an agent's status PATCH, the re-optimization job — and holds, for each, that
every assigned/reassigned history row written was recorded by the writer (a path that wrote its
own rows would leave rows the writer never saw), that its kind is the one definition
(:func:`api.tickets.owner.change_kind`), and that the history row and the webhook outbox row
have the same shape on every path. Through HTTP on SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy import Engine, select

from api import events
from api.db.engine import make_session_factory
from api.db.models import TicketEvent
from api.db.webhooks import WebhookEvent
from api.enums import TicketEventKind
from api.tickets import owner
from solver.plan import Reason
from tests.api.assignment.test_assign import org, put_ticket, subscribe
from tests.api.conftest import As, TenantCtx

OWNER_KINDS = (TicketEventKind.ASSIGNED, TicketEventKind.REASSIGNED)
# What every use case's history data and webhook payload hold; the extras are the use case's own.
HISTORY_KEYS = {"source", "reasons"}
HISTORY_EXTRAS = {"realtime": {"score", "alternatives"}, "optimizer": {"job_id"}}
STEP_KEYS = set(events.TicketStepData.model_fields)
PAYLOAD_KEYS = STEP_KEYS | {"agent_id", "team_id", "source", "reasons"}


class Spy:
    """Wraps :meth:`OwnerWriter.move`, recording (ticket, source, kind) of each change."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.moves: list[tuple[str, str | None, TicketEventKind]] = []
        real = owner.OwnerWriter.move

        def move(writer: owner.OwnerWriter, ticket: Any, **kwargs: Any) -> Any:
            kind = real(writer, ticket, **kwargs)
            if kind is not None:
                self.moves.append((ticket.id, kwargs["source"], kind))
            return kind

        monkeypatch.setattr(owner.OwnerWriter, "move", move)


def _rows(db: Engine, tenant_id: str) -> tuple[list[TicketEvent], list[WebhookEvent]]:
    with make_session_factory(db)() as session:
        history = list(
            session.scalars(
                select(TicketEvent)
                .where(TicketEvent.tenant_id == tenant_id, TicketEvent.kind.in_(OWNER_KINDS))
                .order_by(TicketEvent.seq)
            )
        )
        outbox = list(
            session.scalars(
                select(WebhookEvent)
                .where(
                    WebhookEvent.tenant_id == tenant_id,
                    WebhookEvent.type.in_(["ticket.assigned", "ticket.reassigned"]),
                )
                .order_by(WebhookEvent.id)
            )
        )
        session.expunge_all()
        return history, outbox


def _drive(
    a: As, app: FastAPI, db: Engine, tenant_id: str, spy: Spy, source: str, act: Callable[[], None]
) -> list[TicketEventKind]:
    """Run ``act``; check the owner rows it wrote against the writer's record; their kinds."""
    before_history, before_outbox = _rows(db, tenant_id)
    spy.moves.clear()
    act()
    history, outbox = _rows(db, tenant_id)
    new_history = history[len(before_history) :]
    seen = {e.id for e in before_outbox}
    # Outbox ids sort by the millisecond only: match the new rows to the history by ticket.
    new_outbox = {e.data["ticket_id"]: e for e in outbox if e.id not in seen}
    assert new_history, f"{source}: no owner change written"
    # Every owner row written was the writer's, and the writer's record is what was written.
    assert [(e.ticket_id, e.data.get("source"), e.kind) for e in new_history] == spy.moves
    assert len(new_outbox) == len(new_history)
    for event in new_history:
        sent = new_outbox[event.ticket_id]
        assert event.data["source"] == source
        assert event.kind is owner.change_kind(
            event.from_team or "", event.from_agent, event.to_team or "", event.to_agent
        )
        assert set(event.data) == HISTORY_KEYS | HISTORY_EXTRAS.get(source, set())
        assert event.reason is not None and f"{source}: " in event.reason
        assert sent.type == owner.event_type(event.kind).value
        assert set(sent.data) == PAYLOAD_KEYS | ({"job_id"} if source == "optimizer" else set())
        reasons = [Reason(r["rule"], r["detail"], r["value"]) for r in event.data["reasons"]]
        # The payload is the history row said again, built by the one builder.
        _, step = events.ticket_step_notice(
            {
                c: getattr(event, c)
                for c in (
                    "ticket_id",
                    "kind",
                    "at",
                    "actor",
                    "reason",
                    "from_agent",
                    "to_agent",
                    "from_team",
                    "to_team",
                    "from_status",
                    "to_status",
                    "data",
                )
            }
        )
        assert sent.data["details"] == {
            k: v for k, v in event.data.items() if k not in ("source", "reasons", "job_id")
        }
        assert sent.data == events.normalize_data(
            step
            | events.ticket_owner_payload(
                ticket_id=event.ticket_id,
                agent_id=event.to_agent,
                team_id=event.to_team or "",
                from_agent_id=event.from_agent,
                from_team_id=event.from_team or "",
                source=source,
                reasons=reasons,
                job_id=event.data.get("job_id"),
            )
        )
    return [e.kind for e in new_history]


def test_every_use_case_changes_owners_through_the_one_writer(
    a: As, app: FastAPI, db: Engine, tenant_a: TenantCtx, monkeypatch: pytest.MonkeyPatch
) -> None:
    org(a, capacity=3)
    subscribe(db, tenant_a.id, "ticket.assigned", "ticket.reassigned")
    spy = Spy(monkeypatch)
    put_ticket(a, "A1")
    put_ticket(a, "E1", owner_agent="ana")
    put_ticket(a, "R1", owner_agent="ben", required_skills={})
    put_ticket(a, "P1", owner_agent="cid", team="tier2", required_skills={})
    put_ticket(a, "O1", team="tier2", required_skills={"lang:de": 4})
    # The helpdesk's own PUTs went through the writer too, with no source; their events say
    # so (source null) and name the helpdesk's key as the actor.
    assert [(t, s) for t, s, _ in spy.moves] == [("E1", None), ("R1", None), ("P1", None)]
    put_events = _rows(db, tenant_a.id)[1]
    assert sorted(e.data["ticket_id"] for e in put_events) == ["E1", "P1", "R1"]
    for e in put_events:
        assert e.type == "ticket.assigned" and e.data["source"] is None
        assert e.data["reasons"] == [] and e.data["actor"] is not None
        assert set(e.data) == PAYLOAD_KEYS

    def assign() -> None:
        r = a.post("/v1/tickets/A1/assign", json={})
        assert r.status_code == 200 and r.json()["event"] == "assigned", r.text

    def escalate() -> None:
        # Another team, the same agent (ana still qualifies): the team is part of the owner,
        # so this is a reassignment.
        r = a.post("/v1/tickets/E1/escalate", json={"team": "tier2", "reason": "vip"})
        assert r.status_code == 200, r.text
        assert r.json()["owner"] == {"kind": "agent", "id": "ana"}

    def reroute() -> None:
        r = a.post("/v1/agents/ben/status", json={"status": "away", "reroute": "queue"})
        assert r.status_code == 200 and "R1" in [c["ticket"] for c in r.json()["rerouted"]]

    def agent_status() -> None:
        r = a.patch("/v1/agents/cid", json={"status": "offline"})
        assert r.status_code == 200, r.text

    def optimize() -> None:
        body = {"team": "tier2", "time_limit_s": 2.0, "seed": 3}
        r = a.post("/v1/queue/optimize", json=body)
        assert r.status_code == 202, r.text
        app.state.job_worker.run_once()
        result = a.get(r.headers["location"]).json()["result"]
        assert "O1" in [c["ticket"] for c in result["changes"]], result

    assert _drive(a, app, db, tenant_a.id, spy, "realtime", assign) == [TicketEventKind.ASSIGNED]
    assert _drive(a, app, db, tenant_a.id, spy, "escalation", escalate) == [
        TicketEventKind.REASSIGNED
    ]
    assert set(_drive(a, app, db, tenant_a.id, spy, "reroute", reroute)) == {
        TicketEventKind.REASSIGNED
    }
    assert set(_drive(a, app, db, tenant_a.id, spy, "reroute", agent_status)) == {
        TicketEventKind.REASSIGNED
    }
    # Only cid speaks German: back at work, the optimizer gives O1 to them.
    assert a.patch("/v1/agents/cid", json={"status": "available"}).status_code == 200
    assert TicketEventKind.ASSIGNED in _drive(a, app, db, tenant_a.id, spy, "optimizer", optimize)


@pytest.mark.parametrize(
    ("change", "kind"),
    [
        (("support", None, "support", "ana"), TicketEventKind.ASSIGNED),
        (("support", "ana", "support", "ben"), TicketEventKind.REASSIGNED),
        (("support", "ana", "support", None), TicketEventKind.REASSIGNED),
        (("support", "ana", "tier2", "ana"), TicketEventKind.REASSIGNED),
        (("support", None, "tier2", None), TicketEventKind.REASSIGNED),
        (("support", None, "tier2", "cid"), TicketEventKind.REASSIGNED),
        (("support", "ana", "support", "ana"), None),
        (("support", None, "support", None), None),
    ],
)
def test_the_one_definition_of_assigned_and_reassigned(
    change: tuple[str, str | None, str, str | None], kind: TicketEventKind | None
) -> None:
    assert owner.change_kind(*change) is kind
