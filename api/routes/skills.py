"""/v1/skills: the tenant's skill catalogue (skills, languages, tiers)."""

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
from api.schemas.skills import SkillCreate, SkillOut, SkillUpdate
from api.services import bulk, skills

router = APIRouter(prefix="/v1/skills", tags=["skills"], responses=PROBLEM_RESPONSES)


@router.post("", status_code=201, summary="Create a skill")
def create_skill(
    body: SkillCreate, session: SessionDep, auth: PlannerAuth, now: NowDep
) -> SkillOut:
    row = skills.create(session=session, tenant_id=auth.tenant_id, data=body, now=now)
    session.commit()
    return SkillOut.from_row(row)


@router.post(
    "/import",
    status_code=201,
    summary="Import skills (JSON or CSV), all or nothing",
    openapi_extra=IMPORT_OPENAPI,
)
def import_skills(
    rows: ImportRowsDep,
    session: SessionDep,
    auth: PlannerAuth,
    now: NowDep,
    settings: SettingsDep,
) -> ImportResult:
    ids = bulk.import_rows(
        rows,
        SkillCreate,
        lambda data: skills.create(session=session, tenant_id=auth.tenant_id, data=data, now=now),
        key=lambda row: row.id,
        max_rows=settings.bulk_max_rows,
    )
    session.commit()
    return ImportResult(imported=len(ids), ids=ids)


@router.get("", summary="List skills (ordered by id)")
def list_skills(session: SessionDep, auth: ReadAuth, page: PageDep) -> Page[SkillOut]:
    rows, cursor = skills.list(
        session=session, tenant_id=auth.tenant_id, cursor=page.cursor, limit=page.limit
    )
    return Page(items=[SkillOut.from_row(r) for r in rows], next_cursor=cursor)


@router.get("/{skill_id}", summary="Read a skill")
def read_skill(skill_id: PathId, session: SessionDep, auth: ReadAuth) -> SkillOut:
    row = skills.get_or_raise(session=session, tenant_id=auth.tenant_id, skill_id=skill_id)
    return SkillOut.from_row(row)


@router.patch("/{skill_id}", summary="Update a skill")
def update_skill(
    skill_id: PathId, body: SkillUpdate, session: SessionDep, auth: PlannerAuth, now: NowDep
) -> SkillOut:
    row = skills.update(
        session=session, tenant_id=auth.tenant_id, skill_id=skill_id, data=body, now=now
    )
    session.commit()
    return SkillOut.from_row(row)


@router.delete("/{skill_id}", status_code=204, summary="Delete a skill no one requires")
def delete_skill(skill_id: PathId, session: SessionDep, auth: PlannerAuth) -> Response:
    skills.delete(session=session, tenant_id=auth.tenant_id, skill_id=skill_id)
    session.commit()
    return Response(status_code=204)
