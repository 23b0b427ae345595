"""/v1/tickets: tickets keyed by the helpdesk's own id (PUT upserts) and their history."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Annotated, Any, Protocol

from fastapi import APIRouter, Body, Depends, Path, Query, Request, Response
from pydantic import StringConstraints
from sqlalchemy.orm import Session

from api.common import merge_patch
from api.common.problem import PROBLEM_RESPONSES
from api.common.schemas import ID_PATTERN, UPDATED_SINCE_DESCRIPTION, Page, TimestampIn
from api.db.models import ID_LENGTH, Ticket
from api.db.unit import commit_with_retry
from api.enums import TicketPriority, TicketStatus
from api.http.deps import HelpdeskAuth, NowDep, PageDep, ReadAuth, SessionDep
from api.tickets import service as tickets
from api.tickets.owner import take_freed
from api.tickets.schemas import TicketEventOut, TicketIn, TicketOut, merge_patch_schema

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
    summary="Create or replace a ticket (201 when created, 200 when replaced)",
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
    """A full replacement: required fields missing are a 422 naming each, optional ones omitted
    are cleared (see TicketIn); a GET answer can be sent back as it is."""
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
    _offer_freed(session, auth.tenant_id, auth.key_id, now, agents_freed, row)
    return TicketOut.from_row(row)


def _offer_freed(
    session: Session,
    tenant_id: str,
    actor: str,
    now: datetime,
    agents_freed: AgentsFreed | None,
    row: Ticket,
) -> None:
    """After a committed write that solved, closed or moved a ticket away from an agent: a live
    channel waiting in the queue gets them now (api.assignment.live says why after the commit,
    in this request)."""
    freed = take_freed(session, tenant_id)
    if freed and agents_freed is not None:
        offered = agents_freed(tenant_id=tenant_id, agents=freed, now=now, actor=actor)
        if row.id in offered:
            session.refresh(row)  # this very ticket was live and went to someone just now


@router.patch(
    "/{ticket_id}",
    summary="Change some of a ticket's fields (JSON Merge Patch, RFC 7396)",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                media: {"schema": {"$ref": "#/components/schemas/TicketMergePatch"}}
                for media in (merge_patch.MEDIA_TYPE, "application/json")
            },
        }
    },
)
def patch_ticket(
    ticket_id: TicketId,
    body: Annotated[dict[str, Any], Body()],
    session: SessionDep,
    auth: HelpdeskAuth,
    now: NowDep,
    agents_freed: AgentsFreedDep,
) -> TicketOut:
    """Merges the patch into the ticket as GET shows it, validates the whole and writes it as
    a PUT would; null removes a member (clears it); an unknown ticket is a 404."""
    row = commit_with_retry(
        session,
        lambda: tickets.patch(
            session=session,
            tenant_id=auth.tenant_id,
            ticket_id=ticket_id,
            changes=body,
            now=now,
            actor=auth.key_id,
        ),
    )
    _offer_freed(session, auth.tenant_id, auth.key_id, now, agents_freed, row)
    return TicketOut.from_row(row)


# Documented in components for the PATCH above (referenced, not a model FastAPI sees).
EXTRA_SCHEMAS: dict[str, dict[str, Any]] = {"TicketMergePatch": merge_patch_schema()}


@router.get("", summary="List tickets (ordered by id; with updated_since, by last change)")
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
    updated_since: Annotated[
        TimestampIn | None,
        Query(description=UPDATED_SINCE_DESCRIPTION.format(nouns="tickets")),
    ] = None,
) -> Page[TicketOut]:
    """One page of the tenant's tickets, narrowed by the filters given."""
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
        updated_since=updated_since,
    )
    return Page(items=[TicketOut.from_row(r) for r in rows], next_cursor=cursor)


@router.get("/{ticket_id}", summary="Read a ticket")
def read_ticket(ticket_id: TicketId, session: SessionDep, auth: ReadAuth) -> TicketOut:
    """The ticket as stored now, with who is accountable for it."""
    row = tickets.get_or_raise(session=session, tenant_id=auth.tenant_id, ticket_id=ticket_id)
    return TicketOut.from_row(row)


@router.get("/{ticket_id}/history", summary="The ticket's history, oldest first")
def ticket_history(
    ticket_id: TicketId, session: SessionDep, auth: ReadAuth, page: PageDep
) -> Page[TicketEventOut]:
    """Every step the ticket went through (created, assigned, status changes, ...), in order."""
    rows, cursor = tickets.history(
        session=session,
        tenant_id=auth.tenant_id,
        ticket_id=ticket_id,
        cursor=page.cursor,
        limit=page.limit,
    )
    return Page(items=[TicketEventOut.from_row(r) for r in rows], next_cursor=cursor)
