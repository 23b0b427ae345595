"""/v1/capabilities: bookable requirement sets; calls are booked against these, never a person."""

from __future__ import annotations

from fastapi import APIRouter, Response

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
from api.schemas.capabilities import CapabilityCreate, CapabilityOut, CapabilityUpdate
from api.schemas.common import ImportResult, Page, PathId
from api.schemas.problem import PROBLEM_RESPONSES
from api.services import bulk, capabilities

router = APIRouter(prefix="/v1/capabilities", tags=["capabilities"], responses=PROBLEM_RESPONSES)


@router.post("", status_code=201, summary="Create a capability")
def create_capability(
    body: CapabilityCreate, session: SessionDep, auth: PlannerAuth, now: NowDep
) -> CapabilityOut:
    row = capabilities.create(session=session, tenant_id=auth.tenant_id, data=body, now=now)
    session.commit()
    return CapabilityOut.from_row(row)


@router.post(
    "/import",
    status_code=201,
    summary="Import capabilities (CSV requirements: 'billing=3;lang:de=4'), all or nothing",
    openapi_extra=IMPORT_OPENAPI,
)
def import_capabilities(
    rows: ImportRowsDep,
    session: SessionDep,
    auth: PlannerAuth,
    now: NowDep,
    settings: SettingsDep,
) -> ImportResult:
    ids = bulk.import_rows(
        rows,
        CapabilityCreate,
        lambda data: capabilities.create(
            session=session, tenant_id=auth.tenant_id, data=data, now=now
        ),
        key=lambda row: row.id,
        max_rows=settings.bulk_max_rows,
    )
    session.commit()
    return ImportResult(imported=len(ids), ids=ids)


@router.get("", summary="List capabilities (ordered by id)")
def list_capabilities(session: SessionDep, auth: ReadAuth, page: PageDep) -> Page[CapabilityOut]:
    rows, cursor = capabilities.list(
        session=session, tenant_id=auth.tenant_id, cursor=page.cursor, limit=page.limit
    )
    return Page(items=[CapabilityOut.from_row(r) for r in rows], next_cursor=cursor)


@router.get("/{capability_id}", summary="Read a capability")
def read_capability(capability_id: PathId, session: SessionDep, auth: ReadAuth) -> CapabilityOut:
    row = capabilities.get_or_raise(
        session=session, tenant_id=auth.tenant_id, capability_id=capability_id
    )
    return CapabilityOut.from_row(row)


@router.patch("/{capability_id}", summary="Update a capability")
def update_capability(
    capability_id: PathId,
    body: CapabilityUpdate,
    session: SessionDep,
    auth: PlannerAuth,
    now: NowDep,
) -> CapabilityOut:
    row = capabilities.update(
        session=session, tenant_id=auth.tenant_id, capability_id=capability_id, data=body, now=now
    )
    session.commit()
    return CapabilityOut.from_row(row)


@router.delete("/{capability_id}", status_code=204, summary="Delete a capability")
def delete_capability(capability_id: PathId, session: SessionDep, auth: PlannerAuth) -> Response:
    capabilities.delete(session=session, tenant_id=auth.tenant_id, capability_id=capability_id)
    session.commit()
    return Response(status_code=204)
