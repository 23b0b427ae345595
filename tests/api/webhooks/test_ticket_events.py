"""An event for every ticket step: each kind of history step has its webhook event type
(``ticket.<kind>``), written in the same unit of work as the history row, with the payload its
documented schema describes. Through HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import jsonschema_rs
import pytest
from fastapi import FastAPI
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from api import events
from api.db.models import TicketEvent
from api.db.webhooks import WebhookEvent
from api.enums import TicketEventKind
from api.main import create_app
from api.settings import Environment, Settings
from api.tickets import service as tickets
from api.webhooks.delivery import message_body
from tests.api.assignment import test_assign as assign_org
from tests.api.bookings import test_bookings as booking_org
from tests.api.conftest import As, FakeClock, TenantCtx

TICKET_TYPES = [t.value for t in events.TICKET_STEP_EVENTS.values()]
DOC = create_app(Settings(database_url="sqlite://", environment=Environment.TEST)).openapi()


def _message_schema(event_type: str) -> dict[str, Any]:
    """The documented body of an ``event_type`` delivery, as a self-contained JSON Schema."""
    body = DOC["webhooks"][event_type]["post"]["requestBody"]["content"]["application/json"]
    return {**body["schema"], "components": DOC["components"]}


def assert_documented(event: WebhookEvent) -> None:
    """The body the deliverer would send for ``event`` validates against the OpenAPI
    document's schema of its type (JSON Schema 2020-12, as OpenAPI 3.1 says)."""
    body = json.loads(message_body(event.type, event.created_at, event.data))
    jsonschema_rs.Draft202012Validator(_message_schema(event.type)).validate(body)


def test_every_event_type_is_documented_in_openapi_webhooks() -> None:
    assert DOC["openapi"].startswith("3.1")
    assert set(DOC["webhooks"]) == {t.value for t in events.EventType}
    for t in events.EventType:
        operation = DOC["webhooks"][t.value]["post"]
        assert operation["summary"] and operation["description"]
        schema = _message_schema(t.value)
        assert schema["$ref"].endswith("Message")
        message = DOC["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
        assert message["properties"]["type"]["const"] == t.value
        assert set(message["required"]) == {"type", "timestamp", "data"}
        headers = {p["name"] for p in operation["parameters"] if p["in"] == "header"}
        assert headers == {"webhook-id", "webhook-timestamp", "webhook-signature"}


def test_a_payload_off_its_schema_is_refused_by_the_document_too() -> None:
    """The check has teeth: a body missing a documented field does not validate."""
    with pytest.raises(jsonschema_rs.ValidationError):
        jsonschema_rs.Draft202012Validator(_message_schema("ticket.created")).validate(
            {"type": "ticket.created", "timestamp": "2026-03-02T08:00:00+00:00", "data": {}}
        )
    with pytest.raises(jsonschema_rs.ValidationError):
        jsonschema_rs.Draft202012Validator(_message_schema("queue.optimized")).validate(
            {"type": "ticket.created", "timestamp": "2026-03-02T08:00:00+00:00", "data": {}}
        )


def test_every_history_kind_has_its_event_type_and_payload_model() -> None:
    assert set(events.TICKET_STEP_EVENTS) == set(TicketEventKind)
    for kind, event_type in events.TICKET_STEP_EVENTS.items():
        assert event_type.value == f"ticket.{kind.value}"
        assert event_type in events.PAYLOADS
    # Distinct: no two kinds share a type.
    assert len(set(events.TICKET_STEP_EVENTS.values())) == len(TicketEventKind)
    assert set(events.PAYLOADS) == set(events.EventType)


def _steps_and_events(db: Engine, tenant_id: str) -> list[str]:
    """Check that every history row has exactly one ``ticket.*`` event saying the same step,
    each valid against its type's schema; returns the history's kinds in order."""
    with Session(db) as session:
        history = list(
            session.scalars(
                select(TicketEvent)
                .where(TicketEvent.tenant_id == tenant_id)
                .order_by(TicketEvent.seq)
            )
        )
        outbox = [
            e
            for e in session.scalars(
                select(WebhookEvent).where(WebhookEvent.tenant_id == tenant_id)
            )
            if e.type.startswith("ticket.")
        ]
        for every in session.scalars(
            select(WebhookEvent).where(WebhookEvent.tenant_id == tenant_id)
        ):
            assert_documented(every)
    for e in outbox:
        assert e.type == f"ticket.{e.data['step']}"
        events.PAYLOADS[events.EventType(e.type)].model_validate(e.data)
    said = Counter(
        (h.ticket_id, h.kind.value, events.normalize_data({"at": h.at})["at"], h.reason)
        for h in history
    )
    sent = Counter(
        (e.data["ticket_id"], e.data["step"], e.data["at"], e.data["reason"]) for e in outbox
    )
    assert said == sent
    return [h.kind.value for h in history]


def test_each_step_through_the_api_emits_its_event(a: As, db: Engine, tenant_a: TenantCtx) -> None:
    assign_org.org(a)
    assign_org.subscribe(db, tenant_a.id, *TICKET_TYPES)
    assign_org.put_ticket(a, "T1")  # created
    assert a.post("/v1/tickets/T1/assign", json={}).status_code == 200  # assigned
    assign_org.put_ticket(a, "T1", owner_agent="ana", priority="urgent")  # reassigned, updated
    assign_org.put_ticket(a, "T1", owner_agent="ana", priority="urgent", status="open")
    r = a.post("/v1/tickets/T1/escalate", json={"required_skills": {"tier:2": 2}, "reason": "vip"})
    assert r.status_code == 200, r.text  # escalated (and reassigned to cid)
    kinds = _steps_and_events(db, tenant_a.id)
    assert kinds == [
        "created",
        "assigned",
        "reassigned",
        "updated",
        "status_changed",
        "escalated",
        "reassigned",
    ]
    sent = {
        (t, d["step"]): d for t, d in assign_org.outbox(db, tenant_a.id) if t.startswith("ticket.")
    }
    created = sent[("ticket.created", "created")]
    assert created["to_team_id"] == "support" and created["to_status"] == "new"
    assert created["actor"] is not None and created["actor"] != "system"  # the API key's id
    updated = sent[("ticket.updated", "updated")]
    assert updated["details"] == {"changed": ["priority"]}
    status = sent[("ticket.status_changed", "status_changed")]
    assert (status["from_status"], status["to_status"]) == ("new", "open")
    escalated = sent[("ticket.escalated", "escalated")]
    assert escalated["reason"] == "vip"
    assert escalated["details"]["to_required_skills"] == {"billing": 2, "tier:2": 2}


def test_a_booked_call_emits_its_ticket_step_beside_the_booking_event(
    a: As, db: Engine, tenant_a: TenantCtx
) -> None:
    assign_org.subscribe(db, tenant_a.id, *TICKET_TYPES, "booking.created", "booking.cancelled")
    booking_org.org(a)
    r = booking_org.book(a)
    assert r.status_code == 201, r.text
    assert a.post(f"/v1/bookings/{r.json()['id']}/cancel", json={}).status_code == 200
    kinds = _steps_and_events(db, tenant_a.id)
    # A cancellation is a step of its own kind (the reason says who: requested here).
    assert kinds.count("call_booked") == 1 and kinds.count("call_cancelled") == 1
    sent = assign_org.outbox(db, tenant_a.id)
    types = [t for t, _ in sent]
    assert types.count("ticket.call_booked") == 1 and types.count("ticket.call_cancelled") == 1
    assert "booking.created" in types and "booking.cancelled" in types
    actions = {t: d["details"]["action"] for t, d in sent if t.startswith("ticket.call_")}
    assert actions == {"ticket.call_booked": "booked", "ticket.call_cancelled": "cancelled"}
    cancelled = next(d for t, d in sent if t == "booking.cancelled")
    assert cancelled["reason"] == "requested"


@pytest.mark.parametrize("kind", list(TicketEventKind))
def test_the_history_writer_emits_every_kind_in_the_same_unit_of_work(
    a: As, app: FastAPI, db: Engine, tenant_a: TenantCtx, clock: FakeClock, kind: TicketEventKind
) -> None:
    """The steps other use cases write (call cancelled or flagged, breach risk, due dates set)
    go through the same writer, so their events flow as soon as those writers exist."""
    assign_org.org(a)
    assign_org.subscribe(db, tenant_a.id, *TICKET_TYPES)
    assign_org.put_ticket(a, "K1")
    [(created, _)] = assign_org.outbox(db, tenant_a.id)
    assert created == "ticket.created"
    details: dict[str, Any] = {"note": "from the test"}

    def record(session: Session) -> None:
        tickets.record_event(
            session=session,
            tenant_id=tenant_a.id,
            ticket_id="K1",
            kind=kind,
            now=clock.now,
            actor="system",
            reason=f"a {kind.value} step",
            data=details,
        )

    with app.state.session_factory() as session:
        record(session)
        session.rollback()  # no history row, no event
    assert [t for t, _ in assign_org.outbox(db, tenant_a.id)] == ["ticket.created"]
    with app.state.session_factory() as session:
        record(session)
        session.commit()
    sent = assign_org.outbox(db, tenant_a.id)
    sent.remove(next(e for e in sent if e[0] == "ticket.created" and e[1]["reason"] is None))
    [(type_, data)] = sent
    assert type_ == f"ticket.{kind.value}"
    assert data["step"] == kind.value and data["actor"] == "system"
    assert data["reason"] == f"a {kind.value} step"
    if kind not in (TicketEventKind.ASSIGNED, TicketEventKind.REASSIGNED):
        assert data["details"] == details
    _steps_and_events(db, tenant_a.id)
