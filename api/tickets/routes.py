"""/v1/tickets: tickets keyed by the helpdesk's own id (PUT upserts) and their history."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response
from pydantic import StringConstraints

from api.common.problem import PROBLEM_RESPONSES
from api.common.schemas import ID_PATTERN, Page
from api.db.models import ID_LENGTH
from api.db.unit import commit_with_retry
from api.enums import TicketPriority, TicketStatus
from api.http.deps import HelpdeskAuth, NowDep, PageDep, ReadAuth, SessionDep
from api.tickets import service as tickets
from api.tickets.schemas import TicketEventOut, TicketIn, TicketOut

router = APIRouter(prefix="/v1/tickets", tags=["tickets"], responses=PROBLEM_RESPONSES)

TicketId = Annotated[
    str,
    Path(min_length=1, max_length=ID_LENGTH, pattern=ID_PATTERN, description="The helpdesk's id"),
]


@router.put(
    "/{ticket_id}",
    summary="Create or update a ticket (201 when created, 200 when updated)",
    responses={201: {"model": TicketOut, "description": "Created"}},
)
def put_ticket(
    ticket_id: TicketId,
    body: TicketIn,
    response: Response,
    session: SessionDep,
    auth: HelpdeskAuth,
    now: NowDep,
) -> TicketOut:
    row, created = commit_with_retry(
        session,
        lambda: tickets.upsert(
            session=session,
            tenant_id=auth.tenant_id,
            ticket_id=ticket_id,
            data=body,
            now=now,
            actor=auth.key_id,
        ),
    )
    response.status_code = 201 if created else 200
    return TicketOut.from_row(row)


@router.get("", summary="List tickets (ordered by id)")
def list_tickets(
    session: SessionDep,
    auth: ReadAuth,
    page: PageDep,
    status: Annotated[list[TicketStatus] | None, Query(description="Any of these")] = None,
    team: Annotated[str | None, Query()] = None,
    owner_agent: Annotated[str | None, Query()] = None,
    priority: Annotated[TicketPriority | None, Query()] = None,
    channel: Annotated[
        list[Annotated[str, StringConstraints(max_length=ID_LENGTH)]] | None,
        Query(description="Any of these channels"),
    ] = None,
) -> Page[TicketOut]:
    rows, cursor = tickets.list(
        session=session,
        tenant_id=auth.tenant_id,
        cursor=page.cursor,
        limit=page.limit,
        status=status or (),
        team=team,
        owner_agent=owner_agent,
        priority=priority,
        channel=channel or (),
    )
    return Page(items=[TicketOut.from_row(r) for r in rows], next_cursor=cursor)


@router.get("/{ticket_id}", summary="Read a ticket")
def read_ticket(ticket_id: TicketId, session: SessionDep, auth: ReadAuth) -> TicketOut:
    row = tickets.get_or_raise(session=session, tenant_id=auth.tenant_id, ticket_id=ticket_id)
    return TicketOut.from_row(row)


@router.get("/{ticket_id}/history", summary="The ticket's history, oldest first")
def ticket_history(
    ticket_id: TicketId, session: SessionDep, auth: ReadAuth, page: PageDep
) -> Page[TicketEventOut]:
    rows, cursor = tickets.history(
        session=session,
        tenant_id=auth.tenant_id,
        ticket_id=ticket_id,
        cursor=page.cursor,
        limit=page.limit,
    )
    return Page(items=[TicketEventOut.from_row(r) for r in rows], next_cursor=cursor)
