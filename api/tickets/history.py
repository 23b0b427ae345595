"""The ticket's history: one step appended, and its webhook event emitted with it.

With :class:`api.tickets.owner.OwnerWriter` (owner changes), :func:`record_event` is the one way
a history row is written, so every step has its ``ticket.<kind>`` event
(:func:`api.events.ticket_step_notice`). A module of its own so that whatever writes steps
(the ticket service, the calls a done ticket acts on, bookings, breach risk) can use it without
importing the ticket service.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from api import events
from api.db.models import TicketEvent
from api.enums import TicketEventKind

__all__ = ["record_event"]


def record_event(
    *,
    session: Session,
    tenant_id: str,
    ticket_id: str,
    kind: TicketEventKind,
    now: datetime,
    actor: str | None,
    reason: str | None = None,
    data: Mapping[str, Any] | None = None,
    **changes: str | None,
) -> TicketEvent:
    """Append one history step and emit its webhook event (``ticket.<kind>``, in the same unit
    of work); ``changes`` are the typed from/to columns (from_agent=..., ...). With
    :class:`api.tickets.owner.OwnerWriter`, the one way a history row is written."""
    step: dict[str, Any] = {
        "ticket_id": ticket_id,
        "kind": kind,
        "at": now,
        "actor": actor,
        "reason": reason,
        "data": dict(data or {}),
        **changes,
    }
    event = TicketEvent(tenant_id=tenant_id, **step)
    session.add(event)
    event_type, payload = events.ticket_step_notice(step)
    events.emit(session=session, tenant_id=tenant_id, type=event_type, data=payload, now=now)
    return event
