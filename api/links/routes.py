"""/v1/tickets/{ticket_id}/call-links and /v1/call-links: the helpdesk issues, lists, reads
and revokes the single-use links its customers book calls through."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Query, Response

from api.common.problem import PROBLEM_RESPONSES
from api.common.schemas import Id, Page, PathId
from api.db.models import CallLink
from api.http.deps import HelpdeskAuth, NowDep, PageDep, ReadAuth, SessionDep, SettingsDep
from api.links import service as links
from api.links.schemas import CallLinkCreatedOut, CallLinkIn, CallLinkOut
from api.links.service import LinkStatus

router = APIRouter(tags=["call links"], responses=PROBLEM_RESPONSES)

CUSTOMER_PREFIX = "/c"  # the customer's pages (api/customer) live under it


def customer_url(base: str, token: str) -> str:
    return f"{base.rstrip('/')}{CUSTOMER_PREFIX}/{token}"


def _out(session: SessionDep, row: CallLink, now: datetime) -> CallLinkOut:
    return CallLinkOut.from_row(row, links.status_of(row, now, links.call_of(session, row)))


@router.post(
    "/v1/tickets/{ticket_id}/call-links",
    status_code=201,
    summary="Issue a single-use call link for a ticket (its URL is shown this once)",
)
def create_link(
    ticket_id: PathId,
    body: CallLinkIn,
    response: Response,
    session: SessionDep,
    auth: HelpdeskAuth,
    now: NowDep,
    settings: SettingsDep,
) -> CallLinkCreatedOut:
    """Issues a link the ticket's customer books one call through; answers its URL once."""
    row, token = links.create(
        session=session,
        tenant_id=auth.tenant_id,
        ticket_id=ticket_id,
        data=links.NewLink(
            capability_id=body.capability_id,
            not_before=body.not_before,
            not_after=body.not_after,
            expires_at=body.expires_at,
            reschedules_allowed=body.reschedules_allowed,
            timezone=body.timezone,
            locale=body.locale,
            display_name=body.display_name,
        ),
        now=now,
        actor=auth.key_id,
        default_expiry=timedelta(hours=settings.link_default_expiry_hours),
    )
    session.commit()
    response.headers["Location"] = f"/v1/call-links/{row.id}"
    out = CallLinkOut.from_row(row, LinkStatus.ACTIVE)
    return CallLinkCreatedOut(**out.model_dump(), url=customer_url(settings.public_base_url, token))


@router.get("/v1/call-links", summary="List call links (creation order), by ticket and status")
def list_links(
    session: SessionDep,
    auth: ReadAuth,
    page: PageDep,
    now: NowDep,
    ticket_id: Annotated[Id | None, Query(description="Links of this ticket")] = None,
    status: Annotated[LinkStatus | None, Query(description="Links in this status")] = None,
) -> Page[CallLinkOut]:
    """One page of the tenant's call links, narrowed by ticket and status."""
    rows, cursor = links.list(
        session=session,
        tenant_id=auth.tenant_id,
        now=now,
        cursor=page.cursor,
        limit=page.limit,
        ticket_id=ticket_id,
        status=status,
    )
    calls = links.calls_of(session, rows)  # one read for the page, not one per link
    items = [CallLinkOut.from_row(r, links.status_of(r, now, calls.get(r.id))) for r in rows]
    return Page(items=items, next_cursor=cursor)


@router.get("/v1/call-links/{link_id}", summary="Read a call link (never its URL or token)")
def read_link(link_id: PathId, session: SessionDep, auth: ReadAuth, now: NowDep) -> CallLinkOut:
    """One call link by its id: its policy, status and the call booked through it."""
    row = links.get_or_raise(session=session, tenant_id=auth.tenant_id, link_id=link_id)
    return _out(session, row, now)


@router.post(
    "/v1/call-links/{link_id}/revoke",
    summary="Revoke a call link (it opens nothing any more; its call, if any, stays booked)",
)
def revoke_link(
    link_id: PathId, session: SessionDep, auth: HelpdeskAuth, now: NowDep
) -> CallLinkOut:
    """Revokes the link at once; revoking twice is harmless. Cancel its call separately."""
    row = links.revoke(
        session=session, tenant_id=auth.tenant_id, link_id=link_id, now=now, actor=auth.key_id
    )
    session.commit()
    return _out(session, row, now)
