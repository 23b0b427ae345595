"""/v1/bookings and /v1/capabilities/{id}/slots: customers' calls against capability pools.

Slots and bookings never name an agent until just-in-time binding has fixed one; after that
the helpdesk sees the bound agent (``agent``) so it can act on it. A refused booking is a 409
problem+json carrying the engine's ``reason`` and the nearest open ``alternatives``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date as Date
from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import Field, StringConstraints
from sqlalchemy.orm import Session

from api import mapping
from api.auth import Principal
from api.bookings import service as bookings
from api.bookings.cache import BookingCache
from api.bookings.schemas import (
    AgentActionIn,
    AgentCallOut,
    AgentCallsOut,
    AgentCallTicketOut,
    BindIn,
    BindOut,
    BookedOut,
    BookingConflict,
    BookingIn,
    BookingOut,
    BookingReasonOut,
    RebalanceIn,
    RebalanceOut,
    SlotOut,
    SlotsOut,
)
from api.bookings.service import BookingRefused
from api.common.problem import PROBLEM_RESPONSES, ProblemDetails
from api.common.schemas import NO_NUL, Id, LocalTimestampIn, Page, PathId, Schema, TimeZone
from api.db.models import Call, CallStatus
from api.errors import PROBLEM_BASE, PROBLEM_JSON
from api.http.deps import HelpdeskAuth, NowDep, PageDep, ReadAuth, SessionDep

router = APIRouter(tags=["bookings"], responses=PROBLEM_RESPONSES)


def booking_cache(app: FastAPI) -> BookingCache:
    """The app's cache of the booking engine's organisation (one per app, made with it)."""
    cache: BookingCache = app.state.booking_cache
    return cache


async def _cache_dep(request: Request) -> BookingCache:
    return booking_cache(request.app)


CacheDep = Annotated[BookingCache, Depends(_cache_dep)]

From = Annotated[
    LocalTimestampIn | None,
    Query(alias="from", description="Window start, ISO 8601 with offset (default: now)"),
]
To = Annotated[
    LocalTimestampIn | None,
    Query(description="Window end, ISO 8601 with offset (default: a week after 'from')"),
]
Tz = Annotated[TimeZone, Query(description="The customer's IANA time zone")]


# The length on the bare str (before NO_NUL), so it is checked and said in characters.
CancelReason = Annotated[
    str, StringConstraints(max_length=1000), NO_NUL, Field(description="For the ticket's history")
]


class CancelIn(Schema):
    reason: CancelReason | None = None


@router.get(
    "/v1/capabilities/{capability_id}/slots",
    summary="Open slots of a capability, in the customer's time zone (never names an agent)",
)
def list_slots(
    capability_id: PathId,
    session: SessionDep,
    auth: ReadAuth,
    now: NowDep,
    cache: CacheDep,
    start: From = None,
    to: To = None,
    tz: Tz = "UTC",
) -> SlotsOut:
    """The capability's open slots in a window, in the customer's time zone, naming no agent."""
    answer = bookings.open_slots(
        session=session,
        tenant_id=auth.tenant_id,
        capability_id=capability_id,
        now=now,
        start=start,
        end=to,
        tz=tz,
        cache=cache,
    )
    return SlotsOut.model_validate(
        {
            "capability_id": capability_id,
            "tz": tz,
            "slots": [mapping.slot_json(s) for s in answer.slots],
            "reason": None if answer.reason is None else mapping.reason_brief(answer.reason),
            "excluded": mapping.reasons_brief(answer.excluded),
        }
    )


@router.post(
    "/v1/bookings",
    status_code=201,
    summary="Book a call for a ticket (re-checked against the latest state, per tenant lock)",
    responses={
        409: {
            "model": BookingConflict | ProblemDetails,
            "description": "The slot is no longer open: the reason and the nearest open starts "
            "(`reason`, `alternatives`); or the ticket is solved or closed (`errors` names "
            "`ticket_id`)",
        }
    },
)
async def create_booking(
    body: BookingIn,
    response: Response,
    session: SessionDep,
    auth: HelpdeskAuth,
    now: NowDep,
    cache: CacheDep,
) -> BookedOut:
    """Book a call: one live call per ticket unless `allow_additional`; skills must be covered."""
    # The service blocks (the tenant lock, the database): a worker thread runs it. The route is
    # async so that what follows — validating and writing the answer — runs on the event loop:
    # a sync route would wait for a worker thread again for it, behind every request queued in
    # a burst, and the winners of a race would be heard last.
    return await run_in_threadpool(_create_booking, body, response, session, auth, now, cache)


def _create_booking(
    body: BookingIn,
    response: Response,
    session: Session,
    auth: Principal,
    now: datetime,
    cache: BookingCache,
) -> BookedOut:
    wanted = bookings.NewBooking(
        capability_id=body.capability_id,
        ticket_id=body.ticket_id,
        start=body.start,
        tz=body.tz,
        allow_additional=body.allow_additional,
    )
    booked = bookings.book(
        session=session,
        tenant_id=auth.tenant_id,
        data=wanted,
        now=now,
        actor=auth.key_id,
        cache=cache,
    )
    session.commit()
    row = booked.row
    response.headers["Location"] = f"/v1/bookings/{row.id}"
    return BookedOut.model_validate(
        {**_out(row, now).model_dump(), "warnings": list(booked.warnings)}
    )


def _out(row: Call, now: datetime) -> BookingOut:
    """The booking as shown at ``now``: a booked call whose end has passed reads as completed
    even before the bookings job has stored that (``bookings.shown_status``)."""
    out = BookingOut.from_row(row)
    out.status = bookings.shown_status(row, now)
    return out


@router.get("/v1/bookings", summary="List bookings (creation order), with filters")
def list_bookings(
    session: SessionDep,
    auth: ReadAuth,
    page: PageDep,
    now: NowDep,
    status: Annotated[
        CallStatus | None,
        Query(description="As shown: a booked call whose end has passed is completed"),
    ] = None,
    capability_id: Annotated[Id | None, Query()] = None,
    ticket_id: Annotated[Id | None, Query()] = None,
    agent: Annotated[Id | None, Query(description="Bound to this agent")] = None,
    start: From = None,
    to: Annotated[LocalTimestampIn | None, Query(description="Calls starting before this")] = None,
) -> Page[BookingOut]:
    """One page of the tenant's bookings in creation order, narrowed by the filters given."""
    rows, cursor = bookings.list(
        session=session,
        tenant_id=auth.tenant_id,
        cursor=page.cursor,
        limit=page.limit,
        status=status,
        capability_id=capability_id,
        ticket_id=ticket_id,
        agent=agent,
        start_from=start,
        start_to=to,
        now=now,
    )
    return Page(items=[_out(r, now) for r in rows], next_cursor=cursor)


def _run(
    step: Callable[..., bookings.BindOutcome],
    body: BindIn,
    session: Session,
    auth: Principal,
    now: datetime,
    cache: BookingCache,
) -> bookings.BindOutcome:
    """``bookings.bind`` or ``bookings.rebalance`` with the body's lead time and time limit,
    committed."""
    out = step(
        session=session,
        tenant_id=auth.tenant_id,
        now=now,
        actor=auth.key_id,
        lead=timedelta(minutes=body.lead_minutes),
        time_limit=body.time_limit_s,
        cache=cache,
    )
    session.commit()
    return out


@router.post(
    "/v1/bookings/bind",
    summary="Just-in-time binding now: calls starting within the lead time get their agent",
)
def bind_due(
    session: SessionDep,
    auth: HelpdeskAuth,
    now: NowDep,
    cache: CacheDep,
    body: BindIn | None = None,
) -> BindOut:
    """Binds an agent now to every call starting within the lead time."""
    out = _run(bookings.bind, body or BindIn(), session, auth, now, cache)
    return BindOut.model_validate(
        {
            "bound": [mapping.binding_json(b) for b in (*out.bound, *out.rebound)],
            "at_risk": [mapping.at_risk_json(r) for r in out.at_risk],
            "completed": out.completed,
            "due": out.due,
            "wall_seconds": out.wall_seconds,
        }
    )


@router.post(
    "/v1/bookings/rebalance",
    summary="Re-check every future call after agent changes: re-bind, bind due, report at risk",
)
def rebalance(
    session: SessionDep,
    auth: HelpdeskAuth,
    now: NowDep,
    cache: CacheDep,
    body: RebalanceIn | None = None,
) -> RebalanceOut:
    """Re-checks every future call: re-binds, binds what is due, reports calls at risk."""
    out = _run(bookings.rebalance, body or RebalanceIn(), session, auth, now, cache)
    return RebalanceOut.model_validate(
        {
            "rebound": [mapping.binding_json(b) for b in out.rebound],
            "bound": [mapping.binding_json(b) for b in out.bound],
            "at_risk": [mapping.at_risk_json(r) for r in out.at_risk],
            "checked": out.checked,
            "completed": out.completed,
            "wall_seconds": out.wall_seconds,
        }
    )


@router.get("/v1/bookings/{booking_id}", summary="Read a booking")
def read_booking(
    booking_id: PathId, session: SessionDep, auth: ReadAuth, now: NowDep
) -> BookingOut:
    """One booking by its id, with its agent once bound."""
    row = bookings.get_or_raise(session=session, tenant_id=auth.tenant_id, booking_id=booking_id)
    return _out(row, now)


@router.post(
    "/v1/bookings/{booking_id}/cancel",
    summary="Cancel a booking (frees its capacity; cancelling twice is harmless)",
)
def cancel_booking(
    booking_id: PathId,
    session: SessionDep,
    auth: HelpdeskAuth,
    now: NowDep,
    body: CancelIn | None = None,
) -> BookingOut:
    """Cancels the booking and frees its capacity; cancelling twice is harmless."""
    row = bookings.cancel(
        session=session,
        tenant_id=auth.tenant_id,
        booking_id=booking_id,
        now=now,
        actor=auth.key_id,
        reason=body.reason if body else None,
    )
    session.commit()
    return _out(row, now)


# --------------------------------------------------------------------------- agents


def _act(
    action: Callable[..., Call],
    booking_id: str,
    body: AgentActionIn,
    session: Session,
    auth: Principal,
    now: datetime,
) -> BookingOut:
    row = action(
        session=session,
        tenant_id=auth.tenant_id,
        booking_id=booking_id,
        agent_id=body.agent_id,
        now=now,
        actor=auth.key_id,
    )
    session.commit()
    return _out(row, now)


_BY_AGENT: dict[int | str, dict[str, Any]] = {
    409: {
        "model": ProblemDetails,
        "description": "Not the call's bound agent, or no agent is bound (`errors` names "
        "`agent_id`); or not at this moment of the call (the detail says when)",
    }
}


@router.post(
    "/v1/bookings/{booking_id}/admit",
    summary="The bound agent lets the waiting customer in (from the room's opening to the end)",
    responses=_BY_AGENT,
)
def admit_booking(
    booking_id: PathId, body: AgentActionIn, session: SessionDep, auth: HelpdeskAuth, now: NowDep
) -> BookingOut:
    """Admits the customer: their waiting room shows the join URL. Twice is harmless."""
    return _act(bookings.admit, booking_id, body, session, auth, now)


@router.post(
    "/v1/bookings/{booking_id}/no-show",
    summary="The bound agent marks that the customer did not come (after the start)",
    responses=_BY_AGENT,
)
def no_show_booking(
    booking_id: PathId, body: AgentActionIn, session: SessionDep, auth: HelpdeskAuth, now: NowDep
) -> BookingOut:
    """Marks the call a no-show: only after its start, never once admitted. Twice is harmless."""
    return _act(bookings.mark_no_show, booking_id, body, session, auth, now)


@router.post(
    "/v1/bookings/{booking_id}/complete",
    summary="The bound agent completes the call (after admission or after the start)",
    responses=_BY_AGENT,
)
def complete_booking(
    booking_id: PathId, body: AgentActionIn, session: SessionDep, auth: HelpdeskAuth, now: NowDep
) -> BookingOut:
    """Completes the call once the customer was admitted or it has started. Twice is harmless."""
    return _act(bookings.complete, booking_id, body, session, auth, now)


@router.get(
    "/v1/agents/{agent_id}/calls",
    summary="An agent's calls on one local day, with each ticket's context",
    response_model_by_alias=True,
)
def agent_calls(
    agent_id: PathId,
    session: SessionDep,
    auth: ReadAuth,
    now: NowDep,
    day: Annotated[
        Date | None,
        Query(alias="date", description="The local day, YYYY-MM-DD (default: today in `tz`)"),
    ] = None,
    tz: Annotated[
        TimeZone | None,
        Query(description="The IANA time zone the day is cut in (default: the agent's)"),
    ] = None,
    include_cancelled: Annotated[
        bool, Query(description="Also the cancelled calls that were bound to the agent")
    ] = False,
) -> AgentCallsOut:
    """The calls bound to the agent that start on the day, by start, each with its ticket."""
    found = bookings.agent_day(
        session=session,
        tenant_id=auth.tenant_id,
        agent_id=agent_id,
        now=now,
        day=day,
        tz=tz,
        include_cancelled=include_cancelled,
    )
    opens = timedelta(minutes=found.opens_minutes_before)
    calls = [
        AgentCallOut(
            **_out(call, now).model_dump(),
            room_opens_at=call.start_at - opens,
            ticket=AgentCallTicketOut.from_row(ticket),
        )
        for call, ticket in found.calls
    ]
    return AgentCallsOut(
        agent_id=found.agent_id,
        date=found.day,
        tz=found.tz,
        start=found.start,
        end=found.end,
        calls=calls,
    )


async def booking_refused(request: Request, exc: Exception) -> JSONResponse:
    """The 409 of a refused booking, with the problem's extension members ``reason`` and
    ``alternatives`` (registered in ``api.main``)."""
    assert isinstance(exc, BookingRefused)
    body = {
        "type": PROBLEM_BASE + exc.slug,
        "title": exc.title,
        "status": exc.status,
        "detail": exc.detail,
        "instance": request.url.path,
        "reason": BookingReasonOut.model_validate(mapping.reason_brief(exc.reason)).model_dump(
            mode="json"
        ),
        "alternatives": [
            SlotOut.model_validate(mapping.slot_json(s)).model_dump(mode="json")
            for s in exc.alternatives
        ],
        "excluded": [
            BookingReasonOut.model_validate(r).model_dump(mode="json")
            for r in mapping.reasons_brief(exc.excluded)
        ],
    }
    if exc.errors:
        body["errors"] = [e.as_dict() for e in exc.errors]
    return JSONResponse(body, status_code=exc.status, media_type=PROBLEM_JSON)
