"""Call links: issued by the helpdesk for one ticket, used by its customer to book one call.

A link carries its policy (capability, booking window, expiry, reschedules allowed) and the
customer's hints (time zone, locale, display name). Its URL token is shown once, when it is
issued; only the token's SHA-256 is stored (:mod:`api.links.tokens`).

**One booking.** A link books once: :func:`book` takes the tenant lock, re-reads the link
inside it, and refuses (409 ``link-used``) when a call was booked through it meanwhile, so 50
simultaneous posts on one link book exactly one call. After that the link is the customer's
handle for that call only: they see it, download it as .ics, reschedule it within the link's
policy (:func:`reschedule`: the old call is cancelled and the new one booked in one
transaction under the lock, so either both happen or neither), cancel it, and wait to be
admitted (:func:`view` says what the waiting room shows).

**Lifetime.** An unused link books until ``expires_at``; a revoked one is gone at once. A link
that booked a call stays the customer's handle until a day after the call's end
(:data:`AFTER_CALL`), whatever its ``expires_at``: the customer must reach the waiting room of a
call booked a month ahead. Gone links answer 410 (:class:`LinkGone`), unknown ones 404 saying
nothing more (:class:`LinkUnknown`). Reads never change a link.

**The ticket stays the truth.** Issuing and revoking a link are ``call_link_created`` /
``call_link_revoked`` steps on the ticket's history with their ``call_link.*`` webhooks; a
reschedule is one ``call_rescheduled`` step (``booking.rescheduled``); booking and cancelling
go through :mod:`api.bookings.service` and are told as every booking is.
"""

from __future__ import annotations

import builtins
import enum
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from api import events
from api.bookings import service as bookings
from api.bookings.cache import BookingCache
from api.calendar_sync import writeback
from api.common import service as common
from api.db.locks import lock_tenant
from api.db.models import Agent as AgentRow
from api.db.models import Call as CallRow
from api.db.models import CallLink, CallNote, CallStatus
from api.db.models import Capability as CapabilityRow
from api.db.models import Ticket as TicketRow
from api.enums import TicketEventKind
from api.errors import Conflict, FieldError, InvalidInput, NotFound, ServiceError
from api.links import tokens
from api.policies import service as policies
from api.policies.schemas import Admission, CallRoom
from api.tickets import history
from solver.capability import SlotAnswer

WHAT = "call link"
AFTER_CALL = timedelta(days=1)  # a booked link stays the customer's handle this long after
MAX_WINDOW = bookings.MAX_SLOT_WINDOW  # the picker shows at most this much at once
MAX_RESCHEDULES = 20


class LinkStatus(enum.StrEnum):
    ACTIVE = "active"
    """Not used yet: the customer can book through it."""
    BOOKED = "booked"
    """A call was booked through it: it is the customer's handle for that call."""
    EXPIRED = "expired"
    """Not used before ``expires_at`` (or its call is over by more than a day)."""
    REVOKED = "revoked"
    """Revoked by the helpdesk: it opens nothing any more."""


class LinkUnknown(ServiceError):
    """No link has this token (or the token is malformed). Says nothing more, on purpose:
    another tenant's token, a mistyped one and a random one look the same."""

    status = 404
    title = "Not found"
    slug = "not-found"

    def __init__(self) -> None:
        super().__init__("no such link")


class LinkGone(ServiceError):
    status = 410
    title = "Link no longer valid"
    slug = "link-gone"

    def __init__(self, why: LinkStatus) -> None:
        words = "was revoked" if why is LinkStatus.REVOKED else "has expired"
        super().__init__(f"this link {words}")
        self.why = why


class LinkUsed(Conflict):
    title = "Link already used"
    slug = "link-used"


# --------------------------------------------------------------------------- status


def status_of(link: CallLink, now: datetime, call: CallRow | None = None) -> LinkStatus:
    """The link's status at ``now``; ``call`` (its booking, when it has one) decides how long
    a booked link lives (until :data:`AFTER_CALL` after the call's end)."""
    if link.revoked_at is not None:
        return LinkStatus.REVOKED
    if link.booking_id is None:
        return LinkStatus.ACTIVE if now < link.expires_at else LinkStatus.EXPIRED
    if call is not None and now >= max(call.end_at + AFTER_CALL, link.expires_at):
        return LinkStatus.EXPIRED
    return LinkStatus.BOOKED


# --------------------------------------------------------------------------- helpdesk side


@dataclass(frozen=True, slots=True)
class NewLink:
    capability_id: str
    not_before: datetime | None = None
    not_after: datetime | None = None
    expires_at: datetime | None = None
    reschedules_allowed: int = 1
    timezone: str = "UTC"
    locale: str = "en"
    display_name: str | None = None


def create(
    *,
    session: Session,
    tenant_id: str,
    ticket_id: str,
    data: NewLink,
    now: datetime,
    actor: str | None,
    default_expiry: timedelta,
) -> tuple[CallLink, str]:
    """Issue a link for ``ticket_id``; answers the row and the token (the only time it exists
    outside the customer's URL)."""
    ticket = common.get(session, TicketRow, tenant_id, ticket_id)
    if ticket is None:
        raise NotFound("ticket", ticket_id)
    if ticket.status.is_done:
        raise Conflict(
            f"ticket {ticket_id!r} is {ticket.status.value}: links are issued for open work only",
            errors=[FieldError("ticket_id", f"ticket is {ticket.status.value}; reopen it first")],
        )
    if common.get(session, CapabilityRow, tenant_id, data.capability_id) is None:
        raise InvalidInput.one("capability_id", f"unknown capability {data.capability_id!r}")
    expires_at = data.expires_at or now + default_expiry
    errors: builtins.list[FieldError] = []
    if expires_at <= now:
        errors.append(FieldError("expires_at", "must be in the future"))
    if data.not_after is not None and data.not_after <= now:
        errors.append(FieldError("not_after", "must be in the future"))
    if (
        data.not_before is not None
        and data.not_after is not None
        and data.not_after <= data.not_before
    ):
        errors.append(FieldError("not_after", "must be after not_before"))
    if errors:
        raise InvalidInput(errors)
    token = tokens.new_token()
    row = CallLink(
        tenant_id=tenant_id,
        id=events.new_id("link", now),
        ticket_id=ticket_id,
        capability_id=data.capability_id,
        token_hash=tokens.token_hash(token),
        form_key=tokens.new_form_key(),
        not_before=data.not_before,
        not_after=data.not_after,
        expires_at=expires_at,
        reschedules_allowed=data.reschedules_allowed,
        reschedules_used=0,
        timezone=data.timezone,
        locale=data.locale,
        display_name=data.display_name,
        booking_id=None,
        sequence=0,
        revoked_at=None,
        created_by=actor,
        created_at=now,
        updated_at=now,
    )
    session.add(row)
    _tell(session, row, now=now, actor=actor, kind=TicketEventKind.CALL_LINK_CREATED)
    session.flush()
    return row, token


def _tell(
    session: Session, row: CallLink, *, now: datetime, actor: str | None, kind: TicketEventKind
) -> None:
    created = kind is TicketEventKind.CALL_LINK_CREATED
    payload = link_payload(row)
    history.record_event(
        session=session,
        tenant_id=row.tenant_id,
        ticket_id=row.ticket_id,
        kind=kind,
        now=now,
        actor=actor,
        reason=f"call link {row.id} {'issued' if created else 'revoked'} ({row.capability_id})",
        data=events.normalize_data(payload),
    )
    events.emit(
        session=session,
        tenant_id=row.tenant_id,
        type=events.EventType.CALL_LINK_CREATED if created else events.EventType.CALL_LINK_REVOKED,
        data=payload,
        now=now,
    )


def link_payload(row: CallLink) -> dict[str, Any]:
    """What the ``call_link.*`` events and history steps say of a link (never its token)."""
    return {
        "link_id": row.id,
        "ticket_id": row.ticket_id,
        "capability_id": row.capability_id,
        "expires_at": row.expires_at,
        "not_before": row.not_before,
        "not_after": row.not_after,
        "reschedules_allowed": row.reschedules_allowed,
        "timezone": row.timezone,
        "locale": row.locale,
    }


def get_or_raise(*, session: Session, tenant_id: str, link_id: str) -> CallLink:
    return common.get_or_raise(session, CallLink, tenant_id, link_id, WHAT)


def list(
    *,
    session: Session,
    tenant_id: str,
    now: datetime,
    cursor: str | None,
    limit: int,
    ticket_id: str | None = None,
    status: LinkStatus | None = None,
) -> tuple[Sequence[CallLink], str | None]:
    """The tenant's links in creation order, filtered by ticket and by status (as
    :func:`status_of` says it, except that a booked link counts as booked until it is
    revoked: its call's end is not read here)."""
    stmt = select(CallLink).where(CallLink.tenant_id == tenant_id)
    if ticket_id is not None:
        stmt = stmt.where(CallLink.ticket_id == ticket_id)
    if status is LinkStatus.REVOKED:
        stmt = stmt.where(CallLink.revoked_at.is_not(None))
    elif status is LinkStatus.BOOKED:
        stmt = stmt.where(CallLink.revoked_at.is_(None), CallLink.booking_id.is_not(None))
    elif status is LinkStatus.ACTIVE:
        stmt = stmt.where(
            CallLink.revoked_at.is_(None),
            CallLink.booking_id.is_(None),
            CallLink.expires_at > now,
        )
    elif status is LinkStatus.EXPIRED:
        stmt = stmt.where(
            CallLink.revoked_at.is_(None),
            CallLink.booking_id.is_(None),
            CallLink.expires_at <= now,
        )
    return common.paginate(session, stmt, CallLink.id, cursor, limit)


def revoke(
    *, session: Session, tenant_id: str, link_id: str, now: datetime, actor: str | None
) -> CallLink:
    """Revoke a link: it opens nothing any more (410). Revoking twice is harmless. A call
    booked through it stays booked: cancel it through ``/v1/bookings`` if it should go too."""
    lock_tenant(session, tenant_id)
    row = get_or_raise(session=session, tenant_id=tenant_id, link_id=link_id)
    if row.revoked_at is not None:
        return row
    row.revoked_at = now
    row.updated_at = now
    _tell(session, row, now=now, actor=actor, kind=TicketEventKind.CALL_LINK_REVOKED)
    session.flush()
    return row


# --------------------------------------------------------------------------- customer side


def _by_token(session: Session, token: str) -> CallLink | None:
    if not tokens.plausible(token):
        return None
    digest = tokens.token_hash(token)
    row = session.scalars(select(CallLink).where(CallLink.token_hash == digest)).first()
    if row is None or not tokens.same_hash(row.token_hash, token):
        return None
    return row


def call_of(session: Session, link: CallLink) -> CallRow | None:
    if link.booking_id is None:
        return None
    return common.get(session, CallRow, link.tenant_id, link.booking_id)


def calls_of(session: Session, rows: Sequence[CallLink]) -> dict[str, CallRow]:
    """The calls booked through ``rows`` (links of one tenant), by link id, in one read."""
    booked = {r.booking_id: r.id for r in rows if r.booking_id is not None}
    if not booked:
        return {}
    found = session.scalars(
        select(CallRow).where(
            CallRow.tenant_id == rows[0].tenant_id, CallRow.id.in_(sorted(booked))
        )
    )
    return {booked[c.id]: c for c in found}


@dataclass(frozen=True, slots=True)
class Resolved:
    link: CallLink
    call: CallRow | None  # the call booked through it (the latest, after reschedules)

    def known(self) -> Known:
        return Known(self.link.tenant_id, self.link.id, self.link.token_hash)


def resolve(session: Session, token: str, now: datetime) -> Resolved:
    """The link a token opens, and its call. Raises :class:`LinkUnknown` (404) or
    :class:`LinkGone` (410). Reads only."""
    link = _by_token(session, token)
    if link is None:
        raise LinkUnknown()
    call = call_of(session, link)
    status = status_of(link, now, call)
    if status in (LinkStatus.REVOKED, LinkStatus.EXPIRED):
        raise LinkGone(status)
    return Resolved(link, call)


@dataclass(frozen=True, slots=True)
class Known:
    """Which link a token opens, as a read just before the write found it (the customer's
    pages look the link up first): the write then starts with the tenant's lock, with no read
    before it (on SQLite a read in a write unit of work already waits for the writers)."""

    tenant_id: str
    link_id: str
    token_hash: str


def _relock(session: Session, token: str, now: datetime, known: Known | None = None) -> Resolved:
    """For a write: find the link's tenant (or take it from ``known``), end that read, take
    the tenant's lock, and read the link and its call again inside it (another request may
    have used it meanwhile)."""
    if known is None or not tokens.same_hash(known.token_hash, token):
        found = resolve(session, token, now)
        tenant_id, link_id = found.link.tenant_id, found.link.id
        session.rollback()
    else:
        tenant_id, link_id = known.tenant_id, known.link_id
    lock_tenant(session, tenant_id)
    link = session.scalars(
        select(CallLink)
        .where(CallLink.tenant_id == tenant_id, CallLink.id == link_id)
        .execution_options(populate_existing=True)
    ).one()
    call = call_of(session, link)
    if link.booking_id is not None and call is not None:
        session.refresh(call)
    status = status_of(link, now, call)
    if status in (LinkStatus.REVOKED, LinkStatus.EXPIRED):
        raise LinkGone(status)
    return Resolved(link, call)


def window(link: CallLink, now: datetime) -> tuple[datetime, datetime]:
    """The starts the link's picker offers: from now (or ``not_before``) to ``not_after`` (or
    a week), at most :data:`MAX_WINDOW`."""
    lo = max(now, link.not_before) if link.not_before is not None else now
    hi = link.not_after if link.not_after is not None else lo + bookings.DEFAULT_SLOT_WINDOW
    hi = min(hi, lo + MAX_WINDOW)
    return lo, max(lo, hi)


def open_slots(
    *,
    session: Session,
    link: CallLink,
    now: datetime,
    tz: str,
    cache: BookingCache | None = None,
) -> SlotAnswer:
    """The open starts of the link's capability in its window, in ``tz`` (the customer's).

    A customer's answer: it never says which agents were left out or why (an agent whose
    calendar cannot be trusted only makes fewer starts open), so ``excluded`` is dropped."""
    lo, hi = window(link, now)
    if hi <= lo:
        return SlotAnswer((), None)
    answer = bookings.open_slots(
        session=session,
        tenant_id=link.tenant_id,
        capability_id=link.capability_id,
        now=now,
        start=lo,
        end=hi,
        tz=tz,
        cache=cache,
    )
    return replace(answer, excluded=()) if answer.excluded else answer


def _check_in_window(link: CallLink, start: datetime, tz: str) -> None:
    if link.not_before is not None and start < link.not_before:
        raise InvalidInput.one(
            "start", f"must not be before {_words(link.not_before, tz)} (the link's window)"
        )
    if link.not_after is not None and start > link.not_after:
        raise InvalidInput.one(
            "start", f"must not be after {_words(link.not_after, tz)} (the link's window)"
        )


def _words(at: datetime, tz: str) -> str:
    from solver.slots import zone

    return at.astimezone(zone(tz)).strftime(f"%a %d %b %Y %H:%M ({tz})")


def _check_form(link: CallLink, form_token: str | None) -> None:
    if not tokens.check_form_token(link.form_key, link.id, form_token):
        raise InvalidInput.one(
            "form_token", "missing or not this link's: reload the page and try again"
        )


def book(
    *,
    session: Session,
    token: str,
    start: datetime,
    tz: str,
    form_token: str | None,
    now: datetime,
    cache: BookingCache | None = None,
    known: Known | None = None,
) -> bookings.Booked:
    """Book the link's one call at ``start`` (the customer's pick, on the slot grid in ``tz``).

    Raises :class:`LinkUsed` when a call was booked through the link already (it books once),
    :class:`~api.bookings.service.BookingRefused` (with the nearest alternatives) when the
    start was just taken, and the booking service's errors otherwise. The caller commits.
    """
    found = _relock(session, token, now, known)
    link = found.link
    _check_form(link, form_token)
    if link.booking_id is not None:
        raise LinkUsed(
            "a call was already booked through this link",
            errors=[FieldError("start", "this link already booked its call")],
        )
    _check_in_window(link, start, tz)
    done = _book_call(session, link, start, tz, now, cache, announce=True)
    link.booking_id = done.row.id
    link.updated_at = now
    session.flush()
    return done


def _book_call(
    session: Session,
    link: CallLink,
    start: datetime,
    tz: str,
    now: datetime,
    cache: BookingCache | None,
    *,
    announce: bool,
) -> bookings.Booked:
    """The link's call at ``start``, through the booking service (inside the lock the caller
    holds), recorded as booked through the link by it."""
    return bookings.book(
        session=session,
        tenant_id=link.tenant_id,
        data=bookings.NewBooking(
            capability_id=link.capability_id, ticket_id=link.ticket_id, start=start, tz=tz
        ),
        now=now,
        actor=f"link:{link.id}",
        cache=cache,
        link_id=link.id,
        announce=announce,
    )


def reschedulable(link: CallLink, call: CallRow | None, now: datetime) -> bool:
    """Whether the customer may move the call now: it is booked and has not started, and the
    link allows another reschedule — or the call is at risk (nobody can take it: moving it is
    not the customer's doing and costs them nothing)."""
    if call is None or call.status is not CallStatus.BOOKED or call.start_at <= now:
        return False
    return call.at_risk_since is not None or link.reschedules_used < link.reschedules_allowed


def cancellable(call: CallRow | None, now: datetime) -> bool:
    return call is not None and call.status is CallStatus.BOOKED and call.start_at > now


def reschedule(
    *,
    session: Session,
    token: str,
    start: datetime,
    tz: str,
    form_token: str | None,
    now: datetime,
    cache: BookingCache | None = None,
    known: Known | None = None,
) -> bookings.Booked:
    """Move the link's call to ``start``: the old call is cancelled (reason ``rescheduled``)
    and the new one booked in this one transaction, under the tenant lock; when the new start
    is refused nothing changes (the caller rolls back). One ``call_rescheduled`` step and one
    ``booking.rescheduled`` event tell it."""
    found = _relock(session, token, now, known)
    link, old = found.link, found.call
    _check_form(link, form_token)
    if old is None:
        raise Conflict(
            "nothing booked through this link yet: book a call first",
            errors=[FieldError("start", "no call to reschedule")],
        )
    if not reschedulable(link, old, now):
        raise Conflict(
            "this call can no longer be moved through this link",
            errors=[
                FieldError(
                    "start",
                    "the call has started, is over or cancelled, or the link's reschedules "
                    f"({link.reschedules_allowed}) are used up",
                )
            ],
        )
    _check_in_window(link, start, tz)
    at_risk = old.at_risk_since is not None
    old.status = CallStatus.CANCELLED
    old.cancelled_at = now
    old.cancel_reason = CallNote.RESCHEDULED
    old.cover_agent = None
    old.updated_at = now
    writeback.queue_writeback(session, link.tenant_id, old.id, now)  # off the agent's calendar
    session.flush()
    done = _book_call(session, link, start, tz, now, cache, announce=False)
    new = done.row
    link.booking_id = new.id
    link.sequence += 1
    if not at_risk:
        link.reschedules_used += 1
    link.updated_at = now
    extra = {
        "link_id": link.id,
        "previous_booking_id": old.id,
        "previous_start": old.start_at,
        "previous_end": old.end_at,
    }
    history.record_event(
        session=session,
        tenant_id=link.tenant_id,
        ticket_id=link.ticket_id,
        kind=TicketEventKind.CALL_RESCHEDULED,
        now=now,
        actor=f"link:{link.id}",
        reason=f"call {old.id} moved to {new.start_at.isoformat()} by the customer ({new.id})",
        data=events.normalize_data({**events.booking_payload(new), **extra}),
        from_agent=old.bound_agent,
    )
    events.emit(
        session=session,
        tenant_id=link.tenant_id,
        type=events.EventType.BOOKING_RESCHEDULED,
        data={**events.booking_event_data(session, new), **extra},
        now=now,
    )
    session.flush()
    return done


def cancel(
    *,
    session: Session,
    token: str,
    form_token: str | None,
    now: datetime,
    known: Known | None = None,
) -> CallRow:
    """The customer cancels the link's call (reason ``customer``). The link then shows the
    cancelled call; it books nothing more."""
    found = _relock(session, token, now, known)
    link, call = found.link, found.call
    _check_form(link, form_token)
    if call is None or not cancellable(call, now):
        raise Conflict(
            "there is no upcoming call to cancel through this link",
            errors=[FieldError("booking", "nothing upcoming is booked through this link")],
        )
    row = bookings.cancel(
        session=session,
        tenant_id=link.tenant_id,
        booking_id=call.id,
        now=now,
        actor=f"link:{link.id}",
        reason="cancelled by the customer through their link",
        note=CallNote.CUSTOMER,
    )
    link.sequence += 1
    link.updated_at = now
    session.flush()
    return row


# --------------------------------------------------------------------------- what the page shows


class Phase(enum.StrEnum):
    PICK = "pick"
    """Nothing booked yet: the slot picker."""
    BOOKED = "booked"
    """Booked, the waiting room not open yet: the confirmation."""
    WAITING = "waiting"
    """The waiting room is open; the customer has not been admitted."""
    ADMITTED = "admitted"
    """Admitted: the join URL (and, if the tenant allows, the agent's name) is shown."""
    AT_RISK = "at_risk"
    """Nobody can take the call any more: the customer is offered new times."""
    CANCELLED = "cancelled"
    OVER = "over"
    CLOSED = "closed"
    """Nothing booked, and the ticket was solved or closed meanwhile: no call to book."""


@dataclass(frozen=True, slots=True)
class View:
    """Everything a customer page may show of a link, and nothing else: no agent's identity
    or calendar unless admitted and the tenant allows the name."""

    link: CallLink
    call: CallRow | None
    phase: Phase
    ticket_ref: str
    capability_name: str
    call_minutes: int
    room_opens_at: datetime | None
    join_url: str | None
    agent_name: str | None
    can_reschedule: bool
    can_cancel: bool
    cancel_reason: CallNote | None


def admitted(call: CallRow, room: CallRoom, now: datetime) -> bool:
    """Whether the customer is let in: the bound agent admitted them, or the tenant admits
    by itself at the call's start."""
    if call.admitted_at is not None:
        return True
    return room.admission is Admission.AUTO and now >= call.start_at


def view(session: Session, found: Resolved, now: datetime) -> View:
    """What the link's page shows at ``now``."""
    link, call = found.link, found.call
    # Two columns, not the row: the row loads its requirements too (a picker page's CPU).
    cap = session.execute(
        select(CapabilityRow.name, CapabilityRow.call_minutes).where(
            CapabilityRow.tenant_id == link.tenant_id, CapabilityRow.id == link.capability_id
        )
    ).first()
    room = policies.load(session, link.tenant_id).call_room
    name = (cap.name if cap is not None else "") or link.capability_id
    minutes = cap.call_minutes if cap is not None else 0
    join_url = agent_name = None
    opens = None
    cancel_reason = None
    if call is None:
        status = session.scalar(
            select(TicketRow.status).where(
                TicketRow.tenant_id == link.tenant_id, TicketRow.id == link.ticket_id
            )
        )
        phase = Phase.CLOSED if status is None or status.is_done else Phase.PICK
    else:
        opens = call.start_at - timedelta(minutes=room.opens_minutes_before)
        if call.status is CallStatus.CANCELLED:
            phase = Phase.CANCELLED
            cancel_reason = call.cancel_reason
        elif call.status in (CallStatus.COMPLETED, CallStatus.NO_SHOW) or call.end_at <= now:
            phase = Phase.OVER
        elif call.at_risk_since is not None and call.admitted_at is None:
            phase = Phase.AT_RISK
        elif admitted(call, room, now):
            phase = Phase.ADMITTED
            template = room.template_for(call.capability_id)
            if template is not None:
                join_url = template.format(
                    booking_id=call.id,
                    ticket_id=call.ticket_id,
                    capability_id=call.capability_id,
                    link_id=link.id,
                )
            if room.show_agent_name:
                who = call.admitted_by or call.bound_agent
                agent = common.get(session, AgentRow, link.tenant_id, who) if who else None
                agent_name = (agent.name or None) if agent is not None else None
        elif now >= opens:
            phase = Phase.WAITING
        else:
            phase = Phase.BOOKED
    return View(
        link=link,
        call=call,
        phase=phase,
        ticket_ref=link.ticket_id,
        capability_name=name,
        call_minutes=minutes,
        room_opens_at=opens,
        join_url=join_url,
        agent_name=agent_name,
        can_reschedule=reschedulable(link, call, now),
        can_cancel=cancellable(call, now),
        cancel_reason=cancel_reason,
    )


# --------------------------------------------------------------------------- calendar file


def ics(view: View, *, url: str, now: datetime) -> bytes:
    """The call as an RFC 5545 calendar (one VEVENT). Its UID is the link's, so a reschedule
    replaces the event in the customer's calendar (SEQUENCE counts the changes); a cancelled
    call is STATUS:CANCELLED with METHOD:CANCEL. Names no agent."""
    import icalendar

    call = view.call
    if call is None:
        raise Conflict("nothing is booked through this link yet")
    cal = icalendar.Calendar()
    cal.add("prodid", "-//Switchboard//call links//EN")
    cal.add("version", "2.0")
    cancelled = call.status is CallStatus.CANCELLED
    cal.add("method", "CANCEL" if cancelled else "PUBLISH")
    event = icalendar.Event()
    event.add("uid", f"{view.link.id}@switchboard")
    event.add("sequence", view.link.sequence)
    event.add("dtstamp", now.astimezone(UTC))
    event.add("dtstart", call.start_at.astimezone(UTC))
    event.add("dtend", call.end_at.astimezone(UTC))
    event.add("summary", f"Support call: {view.capability_name} (ticket {view.ticket_ref})")
    event.add(
        "description",
        f"Your call about ticket {view.ticket_ref}. Open this link a few minutes before the "
        f"call to wait until you are let in, or to reschedule or cancel: {url}",
    )
    event.add("url", url)
    event.add("status", "CANCELLED" if cancelled else "CONFIRMED")
    event.add("transp", "OPAQUE")
    cal.add_component(event)
    return bytes(cal.to_ical())
