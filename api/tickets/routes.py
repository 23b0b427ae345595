"""/v1/tickets: tickets keyed by the helpdesk's own id (PUT upserts) and their history."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Annotated, Protocol

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from pydantic import StringConstraints

from api.common.problem import PROBLEM_RESPONSES
from api.common.schemas import ID_PATTERN, Page
from api.db.models import ID_LENGTH
from api.db.unit import commit_with_retry
from api.enums import TicketPriority, TicketStatus
from api.http.deps import HelpdeskAuth, NowDep, PageDep, ReadAuth, SessionDep
from api.tickets import service as tickets
from api.tickets.owner import take_freed
from api.tickets.schemas import TicketEventOut, TicketIn, TicketOut

router = APIRouter(prefix="/v1/tickets", tags=["tickets"], responses=PROBLEM_RESPONSES)


class AgentsFreed(Protocol):
    """Re-offers the live channels' team queue to agents a committed change freed (installed
    by ``api.wiring``: :func:`api.assignment.live.offer_after_commit`)."""

    def __call__(
        self, *, tenant_id: str, agents: Collection[str], now: datetime, actor: str | None
    ) -> list[str]:
        """The ids of the tickets it assigned."""


def get_agents_freed(request: Request) -> AgentsFreed | None:
    hook: AgentsFreed | None = getattr(request.app.state, "on_agents_freed", None)
    return hook


AgentsFreedDep = Annotated[AgentsFreed | None, Depends(get_agents_freed)]

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
    agents_freed: AgentsFreedDep,
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
    freed = take_freed(session, auth.tenant_id)
    if freed and agents_freed is not None:
        # Solved, closed or moved away from an agent: a live channel waiting in the queue
        # gets them now (api.assignment.live says why after the commit, in this request).
        offered = agents_freed(tenant_id=auth.tenant_id, agents=freed, now=now, actor=auth.key_id)
        if ticket_id in offered:
            session.refresh(row)  # this very ticket was live and went to someone just now
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
