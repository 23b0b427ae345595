"""/v1/teams: the tenant's teams; each owns the tickets no agent has taken yet."""

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
from api.schemas.common import ImportResult, Page, PathId
from api.schemas.problem import PROBLEM_RESPONSES
from api.schemas.teams import TeamCreate, TeamOut, TeamUpdate
from api.services import bulk, teams

router = APIRouter(prefix="/v1/teams", tags=["teams"], responses=PROBLEM_RESPONSES)


@router.post("", status_code=201, summary="Create a team")
def create_team(body: TeamCreate, session: SessionDep, auth: PlannerAuth, now: NowDep) -> TeamOut:
    row = teams.create(session=session, tenant_id=auth.tenant_id, data=body, now=now)
    session.commit()
    return TeamOut.from_row(row)


@router.post(
    "/import",
    status_code=201,
    summary="Import teams (JSON or CSV), all or nothing",
    openapi_extra=IMPORT_OPENAPI,
)
def import_teams(
    rows: ImportRowsDep,
    session: SessionDep,
    auth: PlannerAuth,
    now: NowDep,
    settings: SettingsDep,
) -> ImportResult:
    ids = bulk.import_rows(
        rows,
        TeamCreate,
        lambda data: teams.create(session=session, tenant_id=auth.tenant_id, data=data, now=now),
        key=lambda row: row.id,
        max_rows=settings.bulk_max_rows,
    )
    session.commit()
    return ImportResult(imported=len(ids), ids=ids)


@router.get("", summary="List teams (ordered by id)")
def list_teams(session: SessionDep, auth: ReadAuth, page: PageDep) -> Page[TeamOut]:
    rows, cursor = teams.list(
        session=session, tenant_id=auth.tenant_id, cursor=page.cursor, limit=page.limit
    )
    return Page(items=[TeamOut.from_row(r) for r in rows], next_cursor=cursor)


@router.get("/{team_id}", summary="Read a team")
def read_team(team_id: PathId, session: SessionDep, auth: ReadAuth) -> TeamOut:
    row = teams.get_or_raise(session=session, tenant_id=auth.tenant_id, team_id=team_id)
    return TeamOut.from_row(row)


@router.patch("/{team_id}", summary="Update a team")
def update_team(
    team_id: PathId, body: TeamUpdate, session: SessionDep, auth: PlannerAuth, now: NowDep
) -> TeamOut:
    row = teams.update(
        session=session, tenant_id=auth.tenant_id, team_id=team_id, data=body, now=now
    )
    session.commit()
    return TeamOut.from_row(row)


@router.delete("/{team_id}", status_code=204, summary="Delete a team without agents or tickets")
def delete_team(team_id: PathId, session: SessionDep, auth: PlannerAuth) -> Response:
    teams.delete(session=session, tenant_id=auth.tenant_id, team_id=team_id)
    session.commit()
    return Response(status_code=204)
