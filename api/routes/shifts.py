"""/v1/shifts: when agents work."""

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
from api.schemas.intervals import ShiftCreate, ShiftOut, ShiftUpdate
from api.schemas.problem import PROBLEM_RESPONSES
from api.services import bulk, shifts

router = APIRouter(prefix="/v1/shifts", tags=["shifts"], responses=PROBLEM_RESPONSES)


@router.post("", status_code=201, summary="Create a shift")
def create_shift(
    body: ShiftCreate, session: SessionDep, auth: PlannerAuth, now: NowDep
) -> ShiftOut:
    row = shifts.create(session=session, tenant_id=auth.tenant_id, data=body, now=now)
    session.commit()
    return ShiftOut.from_row(row)


@router.post(
    "/import",
    status_code=201,
    summary="Import shifts (JSON or CSV: agent,start,end), all or nothing",
    openapi_extra=IMPORT_OPENAPI,
)
def import_shifts(
    rows: ImportRowsDep,
    session: SessionDep,
    auth: PlannerAuth,
    now: NowDep,
    settings: SettingsDep,
) -> ImportResult:
    ids = bulk.import_rows(
        rows,
        ShiftCreate,
        lambda data: shifts.create(session=session, tenant_id=auth.tenant_id, data=data, now=now),
        key=lambda row: row.id,
        max_rows=settings.bulk_max_rows,
    )
    session.commit()
    return ImportResult(imported=len(ids), ids=ids)


@router.get("", summary="List shifts (ordered by id), optionally of one agent or a window")
def list_shifts(
    session: SessionDep,
    auth: ReadAuth,
    page: PageDep,
    agent: Annotated[str | None, Query(description="Only this agent's shifts")] = None,
    start: Annotated[Timestamp | None, Query(description="Overlapping [start, end)")] = None,
    end: Annotated[Timestamp | None, Query(description="Overlapping [start, end)")] = None,
) -> Page[ShiftOut]:
    rows, cursor = shifts.list(
        session=session,
        tenant_id=auth.tenant_id,
        cursor=page.cursor,
        limit=page.limit,
        agent=agent,
        start=start,
        end=end,
    )
    return Page(items=[ShiftOut.from_row(r) for r in rows], next_cursor=cursor)


@router.get("/{shift_id}", summary="Read a shift")
def read_shift(shift_id: PathId, session: SessionDep, auth: ReadAuth) -> ShiftOut:
    row = shifts.get_or_raise(session=session, tenant_id=auth.tenant_id, shift_id=shift_id)
    return ShiftOut.from_row(row)


@router.patch("/{shift_id}", summary="Update a shift")
def update_shift(
    shift_id: PathId, body: ShiftUpdate, session: SessionDep, auth: PlannerAuth, now: NowDep
) -> ShiftOut:
    row = shifts.update(
        session=session, tenant_id=auth.tenant_id, shift_id=shift_id, data=body, now=now
    )
    session.commit()
    return ShiftOut.from_row(row)


@router.delete("/{shift_id}", status_code=204, summary="Delete a shift")
def delete_shift(shift_id: PathId, session: SessionDep, auth: PlannerAuth) -> Response:
    shifts.delete(session=session, tenant_id=auth.tenant_id, shift_id=shift_id)
    session.commit()
    return Response(status_code=204)
