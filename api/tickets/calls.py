"""What a ticket's status change does to its open calls: the ticket stays the truth.

When a ticket becomes solved or closed, each of its *open* calls — booked, and not over yet
(its end is after now) — is acted on by the tenant's policy ``calls_on_done``
(:mod:`api.policies`):

- ``cancel`` (default): the call is cancelled (its capacity is free again) with the
  customer-visible ``cancel_reason`` ``ticket_solved``/``ticket_closed`` on the booking (what the
  customer's pages show), a ``call_cancelled`` step on the ticket's history, and a
  ``booking.cancelled`` webhook event whose ``reason`` says the same.
- ``keep``: the call stays booked and is flagged (``flagged_at``/``flag_reason`` on the
  booking), with a ``call_flagged`` history step and a ``booking.flagged`` webhook event. A
  call already flagged is not flagged again (solved, then closed: one flag).

Reopening a ticket does not un-cancel anything. Runs in the caller's unit of work, which has
taken the tenant lock (cancelling frees capacity the booking engine hands out under it).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from api import events
from api.calendar_sync import writeback
from api.db.models import Call, CallNote, CallStatus
from api.enums import TicketEventKind, TicketStatus
from api.policies import service as policies
from api.policies.schemas import CallsOnDone
from api.tickets import history

_NOTE = {TicketStatus.SOLVED: CallNote.TICKET_SOLVED, TicketStatus.CLOSED: CallNote.TICKET_CLOSED}


def open_calls(session: Session, tenant_id: str, ticket_id: str, now: datetime) -> list[Call]:
    """The ticket's calls still booked and not over at ``now``, earliest first."""
    return list(
        session.scalars(
            select(Call)
            .where(
                Call.tenant_id == tenant_id,
                Call.ticket_id == ticket_id,
                Call.status == CallStatus.BOOKED,
                Call.end_at > now,
            )
            .order_by(Call.start_at, Call.id)
        )
    )


def on_done(
    *,
    session: Session,
    tenant_id: str,
    ticket_id: str,
    status: TicketStatus,
    now: datetime,
    actor: str | None,
) -> Sequence[Call]:
    """Act on the open calls of a ticket that just became ``status`` (solved or closed), by
    the tenant's ``calls_on_done``; returns the calls acted on."""
    note = _NOTE[status]
    policy = policies.load(session, tenant_id).calls_on_done
    acted: list[Call] = []
    for call in open_calls(session, tenant_id, ticket_id, now):
        if policy is CallsOnDone.CANCEL:
            _cancel(session, tenant_id, call, note, now, actor)
        elif call.flagged_at is None:
            _flag(session, tenant_id, call, note, now, actor)
        else:
            continue
        acted.append(call)
    session.flush()
    return acted


def _history(
    session: Session,
    tenant_id: str,
    call: Call,
    kind: TicketEventKind,
    reason: str,
    data: dict[str, object],
    now: datetime,
    actor: str | None,
    from_agent: str | None,
) -> None:
    history.record_event(
        session=session,
        tenant_id=tenant_id,
        ticket_id=call.ticket_id,
        kind=kind,
        now=now,
        actor=actor,
        reason=reason,
        data=events.normalize_data({**events.booking_payload(call), **data}),
        from_agent=from_agent,
    )


def _cancel(
    session: Session, tenant_id: str, call: Call, note: CallNote, now: datetime, actor: str | None
) -> None:
    agent = call.bound_agent
    call.status = CallStatus.CANCELLED
    call.cancelled_at = now
    call.cancel_reason = note
    call.cover_agent = None
    call.updated_at = now
    writeback.queue_writeback(session, tenant_id, call.id, now)
    word = note.value.removeprefix("ticket_")
    _history(
        session,
        tenant_id,
        call,
        TicketEventKind.CALL_CANCELLED,
        f"call {call.id} cancelled: the ticket is {word}",
        {"action": "cancelled", "reason": note, "agent_id": agent},
        now,
        actor,
        agent,
    )
    events.emit(
        session=session,
        tenant_id=tenant_id,
        type=events.EventType.BOOKING_CANCELLED,
        data={**events.booking_event_data(session, call), "agent_id": agent, "reason": note},
        now=now,
    )


def _flag(
    session: Session, tenant_id: str, call: Call, note: CallNote, now: datetime, actor: str | None
) -> None:
    call.flagged_at = now
    call.flag_reason = note
    call.updated_at = now
    word = note.value.removeprefix("ticket_")
    _history(
        session,
        tenant_id,
        call,
        TicketEventKind.CALL_FLAGGED,
        f"call {call.id} kept and flagged: the ticket is {word}",
        {"action": "flagged", "reason": note},
        now,
        actor,
        None,
    )
    events.emit(
        session=session,
        tenant_id=tenant_id,
        type=events.EventType.BOOKING_FLAGGED,
        data={**events.booking_event_data(session, call), "reason": note},
        now=now,
    )
