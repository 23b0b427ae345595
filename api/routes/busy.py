"""/v1/busy: when agents cannot work (only when, never what)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from api.deps import (
    IMPORT_OPENAPI,
    ImportRowsDep,
    NowDep,
    PageDep,
    PlannerAuth,
    ReadAuth,
    SessionDep,
    SettingsDep,
)
from api.schemas.common import ImportResult, Page, PathId, Timestamp
from api.schemas.intervals import BusyCreate, BusyOut, BusyUpdate
from api.schemas.problem import PROBLEM_RESPONSES
from api.services import bulk, busy

router = APIRouter(prefix="/v1/busy", tags=["busy"], responses=PROBLEM_RESPONSES)


@router.post("", status_code=201, summary="Create a busy interval")
def create_busy(body: BusyCreate, session: SessionDep, auth: PlannerAuth, now: NowDep) -> BusyOut:
    row = busy.create(session=session, tenant_id=auth.tenant_id, data=body, now=now)
    session.commit()
    return BusyOut.from_row(row)


@router.post(
    "/import",
    status_code=201,
    summary="Import busy intervals (JSON or CSV: agent,start,end,source), all or nothing",
    openapi_extra=IMPORT_OPENAPI,
)
def import_busy(
    rows: ImportRowsDep,
    session: SessionDep,
    auth: PlannerAuth,
    now: NowDep,
    settings: SettingsDep,
) -> ImportResult:
    ids = bulk.import_rows(
        rows,
        BusyCreate,
        lambda data: busy.create(session=session, tenant_id=auth.tenant_id, data=data, now=now),
        key=lambda row: row.id,
        max_rows=settings.bulk_max_rows,
    )
    session.commit()
    return ImportResult(imported=len(ids), ids=ids)


@router.get("", summary="List busy intervals (ordered by id), optionally of one agent or a window")
def list_busy(
    session: SessionDep,
    auth: ReadAuth,
    page: PageDep,
    agent: Annotated[str | None, Query(description="Only this agent's busy time")] = None,
    start: Annotated[Timestamp | None, Query(description="Overlapping [start, end)")] = None,
    end: Annotated[Timestamp | None, Query(description="Overlapping [start, end)")] = None,
) -> Page[BusyOut]:
    rows, cursor = busy.list(
        session=session,
        tenant_id=auth.tenant_id,
        cursor=page.cursor,
        limit=page.limit,
        agent=agent,
        start=start,
        end=end,
    )
    return Page(items=[BusyOut.from_row(r) for r in rows], next_cursor=cursor)


@router.get("/{busy_id}", summary="Read a busy interval")
def read_busy(busy_id: PathId, session: SessionDep, auth: ReadAuth) -> BusyOut:
    row = busy.get_or_raise(session=session, tenant_id=auth.tenant_id, busy_id=busy_id)
    return BusyOut.from_row(row)


@router.patch("/{busy_id}", summary="Update a busy interval")
def update_busy(
    busy_id: PathId, body: BusyUpdate, session: SessionDep, auth: PlannerAuth, now: NowDep
) -> BusyOut:
    row = busy.update(
        session=session, tenant_id=auth.tenant_id, busy_id=busy_id, data=body, now=now
    )
    session.commit()
    return BusyOut.from_row(row)


@router.delete("/{busy_id}", status_code=204, summary="Delete a busy interval")
def delete_busy(busy_id: PathId, session: SessionDep, auth: PlannerAuth) -> Response:
    busy.delete(session=session, tenant_id=auth.tenant_id, busy_id=busy_id)
    session.commit()
    return Response(status_code=204)
