"""Tickets, keyed by the helpdesk's id, and their append-only history.

``upsert`` is what ``PUT /v1/tickets/{id}`` does: create the ticket or bring it to the state the
helpdesk describes, recording one history event per kind of change (created, assigned,
reassigned, status_changed, updated). Later services (assignment, escalation, bookings) record
their own events with :func:`record_event`; every change of hands goes through
:mod:`api.tickets.owner` (this module's :func:`set_owner` too), so it lands the same way.
"""

from __future__ import annotations

import builtins
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from api import mapping
from api.common import merge_patch
from api.common import service as common
from api.db.locks import lock_tenant
from api.db.models import Ticket, TicketEvent, TicketSkill
from api.enums import TicketEventKind, TicketPriority, TicketStatus
from api.errors import Conflict, FieldError, InvalidInput, validation_field_errors
from api.policies import service as policies
from api.tickets import calls, owner, sla
from api.tickets.history import record_event
from api.tickets.schemas import TicketIn, TicketOut

WHAT = "ticket"
# Fields whose change is recorded as a plain "updated" event (owner, team and status have
# their own event kinds).
_PLAIN_FIELDS = (
    "required_skills",
    "priority",
    "created_at",
    "first_response_due",
    "resolution_due",
    "effort_minutes",
    "previous_agent",
    "requester",
    "channel",
)


def get(*, session: Session, tenant_id: str, ticket_id: str) -> Ticket | None:
    return common.get(session, Ticket, tenant_id, ticket_id)


def get_or_raise(*, session: Session, tenant_id: str, ticket_id: str) -> Ticket:
    return common.get_or_raise(session, Ticket, tenant_id, ticket_id, WHAT)


def _snapshot(row: Ticket) -> dict[str, Any]:
    return {
        "required_skills": {s.skill_id: s.level for s in row.required_skills},
        "priority": row.priority,
        "created_at": row.created_at,
        "first_response_due": row.first_response_due,
        "resolution_due": row.resolution_due,
        "effort_minutes": row.effort_minutes,
        "previous_agent": row.previous_agent_id,
        "requester": row.requester,
        "channel": row.channel,
    }


def set_required_skills(row: Ticket, tenant_id: str, levels: Mapping[str, int]) -> None:
    """Make the ticket's required skills equal ``levels`` (in place; see common.sync_levels)."""
    common.sync_levels(
        row.required_skills,
        levels,
        lambda skill_id, level: TicketSkill(
            tenant_id=tenant_id, ticket_id=row.id, skill_id=skill_id, level=level
        ),
    )


def _validate(
    session: Session, tenant_id: str, data: TicketIn, created_at: datetime
) -> builtins.list[FieldError]:
    errors = common.unknown_team(session, tenant_id, data.team)
    errors += common.unknown_skills(session, tenant_id, data.required_skills, "required_skills")
    if data.owner_agent is not None:
        errors += common.unknown_agent(session, tenant_id, data.owner_agent, "owner_agent")
    errors += policies.unknown_channels(session, tenant_id, [("channel", data.channel)])
    for name in ("first_response_due", "resolution_due"):
        due = getattr(data, name)
        if due is not None and due < created_at:
            errors.append(FieldError(name, "must not be before created_at"))
    if (
        data.first_response_due is not None
        and data.resolution_due is not None
        and data.resolution_due < data.first_response_due
    ):
        errors.append(FieldError("resolution_due", "must not be before first_response_due"))
    return errors


def set_owner(
    *,
    session: Session,
    row: Ticket,
    team: str,
    agent: str | None,
    now: datetime,
    actor: str | None,
    reason: str | None = None,
) -> TicketEventKind | None:
    """Move the ticket to ``team``/``agent`` as the helpdesk says, through the owner writer
    (written at once; no webhook event, the helpdesk made the change). Returns the kind
    recorded, or None if neither changes. Callers have already checked that the team and agent
    exist."""
    session.flush()  # the row and the events before this one first: the history keeps order
    writer = owner.OwnerWriter(row.tenant_id, now)
    kind = writer.move(row, agent=agent, team=team, actor=actor, source=None, note=reason)
    writer.write(session)
    return kind


def set_status(
    *,
    session: Session,
    row: Ticket,
    status: TicketStatus,
    now: datetime,
    actor: str | None,
    reason: str | None = None,
) -> TicketEvent | None:
    if status == row.status:
        return None
    if row.owner_agent_id is not None and status.is_done and not row.status.is_done:
        owner.note_freed(session, row.tenant_id, row.owner_agent_id)
    event = record_event(
        session=session,
        tenant_id=row.tenant_id,
        ticket_id=row.id,
        kind=TicketEventKind.STATUS_CHANGED,
        now=now,
        actor=actor,
        reason=reason,
        from_status=row.status.value,
        to_status=status.value,
    )
    row.status = status
    row.updated_at = now
    return event


def _read_only_errors(
    row: Ticket | None, ticket_id: str, data: TicketIn
) -> tuple[builtins.list[FieldError], builtins.list[FieldError]]:
    """The read-only fields ``data`` sends that are not the ticket's current values: the ones
    that are the body's fault (a 422: another id, a field of a ticket that does not exist yet)
    and the ones that say the representation is stale (a 409)."""
    invalid: builtins.list[FieldError] = []
    stale: builtins.list[FieldError] = []
    if data.id is not None and data.id != ticket_id:
        invalid.append(FieldError("id", f"read-only: must be the path's id {ticket_id!r}"))
    sent = {name: getattr(data, name) for name in ("owner", "received_at", "updated_at")}
    sent = {name: value for name, value in sent.items() if value is not None}
    if row is None:
        invalid += [FieldError(name, "read-only: omit it when creating a ticket") for name in sent]
        return invalid, stale
    current = {
        "owner": mapping.owner_of(row).as_json(),
        "received_at": row.received_at,
        "updated_at": row.updated_at,
    }
    for name, value in sent.items():
        mine = value.model_dump(mode="json") if name == "owner" else value
        if mine != current[name]:
            stale.append(FieldError(name, "read-only: the ticket has changed since it was read"))
    return invalid, stale


def upsert(
    *,
    session: Session,
    tenant_id: str,
    ticket_id: str,
    data: TicketIn,
    now: datetime,
    actor: str | None,
) -> tuple[Ticket, bool]:
    """Create or update the ticket; returns it and whether it was created.

    A ticket that becomes solved or closed acts on its open calls by the tenant's
    ``calls_on_done`` (:mod:`api.tickets.calls`) in this unit of work, which then takes the
    tenant lock first, as every write to booked calls does (a caller that has already opened
    its unit of work — e.g. read the ticket to merge a PATCH — must have taken it itself)."""
    if data.status.is_done and not session.in_transaction():
        lock_tenant(session, tenant_id)
    row = get(session=session, tenant_id=tenant_id, ticket_id=ticket_id)
    created_at = data.created_at or (row.created_at if row is not None else now)
    invalid, stale = _read_only_errors(row, ticket_id, data)
    common.raise_if(invalid + _validate(session, tenant_id, data, created_at))
    if stale:
        raise Conflict(
            "the ticket has changed since this representation was read: read it again",
            errors=stale,
        )
    if row is None:
        return _create(session, tenant_id, ticket_id, data, created_at, now, actor), True

    clocks = sla.Before.of(row)
    before = _snapshot(row)
    set_owner(
        session=session,
        row=row,
        team=data.team,
        agent=data.owner_agent,
        now=now,
        actor=actor,
        reason=data.reason,
    )
    if (
        set_status(
            session=session, row=row, status=data.status, now=now, actor=actor, reason=data.reason
        )
        is not None
        and data.status.is_done
    ):
        session.flush()  # the status step first: the history keeps order
        calls.on_done(
            session=session,
            tenant_id=tenant_id,
            ticket_id=ticket_id,
            status=data.status,
            now=now,
            actor=actor,
        )
    row.priority = data.priority
    row.created_at = created_at
    sla.take_sent(row, data.first_response_due, data.resolution_due)
    row.effort_minutes = data.effort_minutes
    row.previous_agent_id = data.previous_agent
    row.requester = data.requester
    row.channel = data.channel
    set_required_skills(row, tenant_id, data.required_skills)
    after = _snapshot(row)
    changed = [name for name in _PLAIN_FIELDS if before[name] != after[name]]
    if changed:
        record_event(
            session=session,
            tenant_id=tenant_id,
            ticket_id=ticket_id,
            kind=TicketEventKind.UPDATED,
            now=now,
            actor=actor,
            reason=data.reason,
            data={"changed": changed},
        )
        row.updated_at = now
    sla.settle(session=session, row=row, before=clocks, now=now, actor=actor, reason=data.reason)
    session.flush()
    return row, False


def representation(row: Ticket) -> dict[str, Any]:
    """The ticket as a ``TicketIn`` (JSON), without ``reason`` and the read-only fields: what a
    merge patch applies to."""
    out = TicketOut.from_row(row).model_dump(mode="json")
    names = TicketIn.model_fields.keys() - {"reason", *TicketIn.READ_ONLY}
    return {name: out[name] for name in names}


def patch(
    *,
    session: Session,
    tenant_id: str,
    ticket_id: str,
    changes: Mapping[str, Any],
    now: datetime,
    actor: str | None,
) -> Ticket:
    """Apply a JSON Merge Patch (RFC 7396) to the ticket's representation, validate the result
    as a whole and write it as :func:`upsert` would a PUT of it.

    ``null`` removes a member: an optional field is cleared, ``owner_agent`` hands the ticket
    to its team's queue, a skill inside ``required_skills`` is dropped; a required field
    removed is a 422 naming it. An unknown ticket is a 404 (a patch never creates one)."""
    if changes.get("status") in (TicketStatus.SOLVED.value, TicketStatus.CLOSED.value):
        # Done acts on the ticket's calls (see upsert): the tenant lock comes first in the unit.
        lock_tenant(session, tenant_id)
    row = get_or_raise(session=session, tenant_id=tenant_id, ticket_id=ticket_id)
    merged = merge_patch.apply(representation(row), dict(changes))
    if not isinstance(merged, dict):  # pragma: no cover - the route takes objects only
        raise InvalidInput.one("body", "must be a JSON object")
    for name in TicketIn.REQUIRED_NULLABLE:
        merged.setdefault(name, None)
    try:
        data = TicketIn.model_validate(merged)
    except ValidationError as exc:
        raise InvalidInput(validation_field_errors(exc.errors())) from None
    updated, _ = upsert(
        session=session, tenant_id=tenant_id, ticket_id=ticket_id, data=data, now=now, actor=actor
    )
    return updated


def _create(
    session: Session,
    tenant_id: str,
    ticket_id: str,
    data: TicketIn,
    created_at: datetime,
    now: datetime,
    actor: str | None,
) -> Ticket:
    row = Ticket(
        tenant_id=tenant_id,
        id=ticket_id,
        team_id=data.team,
        priority=data.priority,
        status=data.status,
        first_response_due=data.first_response_due,
        resolution_due=data.resolution_due,
        effort_minutes=data.effort_minutes,
        owner_agent_id=None,
        previous_agent_id=data.previous_agent,
        requester=data.requester,
        channel=data.channel,
        created_at=created_at,
        received_at=now,
        updated_at=now,
        required_skills=[],
    )
    set_required_skills(row, tenant_id, data.required_skills)
    session.add(row)
    record_event(
        session=session,
        tenant_id=tenant_id,
        ticket_id=ticket_id,
        kind=TicketEventKind.CREATED,
        now=now,
        actor=actor,
        reason=data.reason,
        to_team=data.team,
        to_status=data.status.value,
        data={"priority": data.priority.value},
    )
    if data.owner_agent is not None:
        set_owner(
            session=session,
            row=row,
            team=data.team,
            agent=data.owner_agent,
            now=now,
            actor=actor,
            reason=data.reason,
        )
    sla.settle(
        session=session,
        row=row,
        before=sla.Before.of(None),
        now=now,
        actor=actor,
        reason=data.reason,
    )
    session.flush()
    return row


def history(
    *, session: Session, tenant_id: str, ticket_id: str, cursor: str | None, limit: int
) -> tuple[Sequence[TicketEvent], str | None]:
    """The ticket's events, oldest first. A ticket of another tenant is not found."""
    get_or_raise(session=session, tenant_id=tenant_id, ticket_id=ticket_id)
    stmt = select(TicketEvent).where(
        TicketEvent.tenant_id == tenant_id, TicketEvent.ticket_id == ticket_id
    )
    return common.paginate(session, stmt, TicketEvent.seq, cursor, limit)


def list(
    *,
    session: Session,
    tenant_id: str,
    cursor: str | None,
    limit: int,
    status: Sequence[TicketStatus] = (),
    team: str | None = None,
    owner_agent: str | None = None,
    priority: TicketPriority | None = None,
    channel: Sequence[str] = (),
    updated_since: datetime | None = None,
) -> tuple[Sequence[Ticket], str | None]:
    stmt = select(Ticket).where(Ticket.tenant_id == tenant_id)
    if status:
        stmt = stmt.where(Ticket.status.in_(status))
    if team is not None:
        stmt = stmt.where(Ticket.team_id == team)
    if owner_agent is not None:
        stmt = stmt.where(Ticket.owner_agent_id == owner_agent)
    if priority is not None:
        stmt = stmt.where(Ticket.priority == priority)
    if channel:
        stmt = stmt.where(Ticket.channel.in_(channel))
    return common.paginate_since(
        session, stmt, Ticket.id, Ticket.updated_at, updated_since, cursor, limit
    )
