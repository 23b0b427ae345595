"""/v1/calendar-connections: agents' calendar accounts, for admins only.

Create, list, read, change (new credentials after a dead one), pause, resume, resync and delete
a connection. No answer ever carries credentials or a push channel's token; reads show the
connection's health (status, lag, last error, whether it blocks its agent and why).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from api.calendar_sync import service
from api.calendar_sync.schemas import (
    ConnectionCreate,
    ConnectionOut,
    ConnectionUpdate,
    Provider,
    Status,
)
from api.common.problem import PROBLEM_RESPONSES
from api.common.schemas import Page, PathId
from api.db.models import CalendarConnection
from api.http.deps import AdminAuth, NowDep, PageDep, SessionDep, SettingsDep
from api.jobs.schemas import JobOut
from api.settings import Settings

router = APIRouter(
    prefix="/v1/calendar-connections", tags=["calendar connections"], responses=PROBLEM_RESPONSES
)


def _out(row: CalendarConnection, now: datetime, settings: Settings) -> ConnectionOut:
    staleness = timedelta(seconds=settings.calendar_max_staleness_seconds)
    return ConnectionOut.from_row(row, now=now, max_staleness=staleness)


def _notify_worker(request: Request) -> None:
    worker = getattr(request.app.state, "job_worker", None)
    if worker is not None:
        worker.notify()


@router.post(
    "",
    status_code=201,
    summary="Connect an agent's calendars (the credentials are stored encrypted, never shown)",
)
def create_connection(
    body: ConnectionCreate,
    request: Request,
    session: SessionDep,
    auth: AdminAuth,
    now: NowDep,
    settings: SettingsDep,
) -> ConnectionOut:
    """Checks the settings and credentials with the provider's rules, stores the credentials
    encrypted and queues the first (full) sync. Until it succeeds the agent is unavailable for
    new calls (fail closed)."""
    row, _ = service.create(
        session=session, tenant_id=auth.tenant_id, data=body, now=now, settings=settings
    )
    session.commit()
    _notify_worker(request)
    return _out(row, now, settings)


@router.get("", summary="List calendar connections (never their credentials)")
def list_connections(
    session: SessionDep,
    auth: AdminAuth,
    page: PageDep,
    now: NowDep,
    settings: SettingsDep,
    agent_id: Annotated[str | None, Query(max_length=128, description="Only this agent's")] = None,
    provider: Annotated[Provider | None, Query(description="Only this provider's")] = None,
    status: Annotated[Status | None, Query(description="Only connections in this state")] = None,
) -> Page[ConnectionOut]:
    """One page of the tenant's connections (ordered by id) with their health."""
    rows, cursor = service.list_connections(
        session=session,
        tenant_id=auth.tenant_id,
        agent_id=agent_id,
        provider=provider,
        status=status,
        cursor=page.cursor,
        limit=page.limit,
    )
    return Page(items=[_out(r, now, settings) for r in rows], next_cursor=cursor)


@router.get("/{connection_id}", summary="Read a calendar connection and its health")
def read_connection(
    connection_id: PathId, session: SessionDep, auth: AdminAuth, now: NowDep, settings: SettingsDep
) -> ConnectionOut:
    """One connection: its calendars and settings, status, lag, last error, and whether (and
    why) it makes its agent unavailable."""
    row = service.get_or_raise(
        session=session, tenant_id=auth.tenant_id, connection_id=connection_id
    )
    return _out(row, now, settings)


@router.patch(
    "/{connection_id}",
    summary="Replace a connection's calendars, settings or credentials",
)
def update_connection(
    connection_id: PathId,
    body: ConnectionUpdate,
    request: Request,
    session: SessionDep,
    auth: AdminAuth,
    now: NowDep,
    settings: SettingsDep,
) -> ConnectionOut:
    """Replaces the parts given (an omitted one is unchanged), checked like a new connection.
    New settings or credentials (after `invalid_grant`) make a failed connection active again
    and queue a full sync."""
    row = service.update_connection(
        session=session,
        tenant_id=auth.tenant_id,
        connection_id=connection_id,
        data=body,
        now=now,
        settings=settings,
    )
    session.commit()
    _notify_worker(request)
    return _out(row, now, settings)


@router.post("/{connection_id}/pause", summary="Stop syncing a connection")
def pause_connection(
    connection_id: PathId, session: SessionDep, auth: AdminAuth, now: NowDep, settings: SettingsDep
) -> ConnectionOut:
    """Stops syncing; the agent is no longer blocked by this connection, and the busy time
    already mirrored stays."""
    row = service.pause(
        session=session, tenant_id=auth.tenant_id, connection_id=connection_id, now=now
    )
    session.commit()
    return _out(row, now, settings)


@router.post("/{connection_id}/resume", summary="Sync a paused or failed connection again")
def resume_connection(
    connection_id: PathId,
    request: Request,
    session: SessionDep,
    auth: AdminAuth,
    now: NowDep,
    settings: SettingsDep,
) -> ConnectionOut:
    """Makes the connection active and queues a sync now."""
    row = service.resume(
        session=session, tenant_id=auth.tenant_id, connection_id=connection_id, now=now
    )
    session.commit()
    _notify_worker(request)
    return _out(row, now, settings)


@router.post(
    "/{connection_id}/resync",
    status_code=202,
    summary="Read every calendar of a connection afresh (a full sync), as a job",
    responses={202: {"description": "Accepted: the sync job and its status URL (Location)"}},
)
def resync_connection(
    connection_id: PathId,
    request: Request,
    response: Response,
    session: SessionDep,
    auth: AdminAuth,
    now: NowDep,
) -> JobOut:
    """Drops the connection's sync cursors and queues a full sync now; the answer is the job."""
    job = service.resync(
        session=session, tenant_id=auth.tenant_id, connection_id=connection_id, now=now
    )
    session.commit()
    _notify_worker(request)
    response.headers["Location"] = f"/v1/jobs/{job.id}"
    return JobOut.from_row(job)


@router.delete(
    "/{connection_id}",
    status_code=204,
    summary="Delete a connection and the busy time mirrored from it",
)
def delete_connection(
    connection_id: PathId, session: SessionDep, auth: AdminAuth, now: NowDep
) -> Response:
    """Deletes the connection, its encrypted credentials and every busy interval mirrored from
    it, in one transaction."""
    service.delete_connection(
        session=session, tenant_id=auth.tenant_id, connection_id=connection_id, now=now
    )
    session.commit()
    return Response(status_code=204)
