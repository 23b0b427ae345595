"""/v1/agents: the people who take tickets and calls."""

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
from api.enums import AgentStatus
from api.routes.assignment import RealtimeCacheDep
from api.schemas.agents import AgentCreate, AgentOut, AgentUpdate
from api.schemas.common import ImportResult, Page, PathId
from api.schemas.problem import PROBLEM_RESPONSES
from api.services import agents, assignment, bulk

router = APIRouter(prefix="/v1/agents", tags=["agents"], responses=PROBLEM_RESPONSES)


@router.post("", status_code=201, summary="Create an agent")
def create_agent(
    body: AgentCreate, session: SessionDep, auth: PlannerAuth, now: NowDep
) -> AgentOut:
    row = agents.create(session=session, tenant_id=auth.tenant_id, data=body, now=now)
    session.commit()
    return AgentOut.from_row(row)


@router.post(
    "/import",
    status_code=201,
    summary="Import agents (JSON, or CSV with skills as 'billing=3;lang:de=5'), all or nothing",
    openapi_extra=IMPORT_OPENAPI,
)
def import_agents(
    rows: ImportRowsDep,
    session: SessionDep,
    auth: PlannerAuth,
    now: NowDep,
    settings: SettingsDep,
) -> ImportResult:
    ids = bulk.import_rows(
        rows,
        AgentCreate,
        lambda data: agents.create(session=session, tenant_id=auth.tenant_id, data=data, now=now),
        key=lambda row: row.id,
        max_rows=settings.bulk_max_rows,
    )
    session.commit()
    return ImportResult(imported=len(ids), ids=ids)


@router.get("", summary="List agents (ordered by id)")
def list_agents(
    session: SessionDep,
    auth: ReadAuth,
    page: PageDep,
    team: Annotated[str | None, Query(description="Only this team's agents")] = None,
    status: Annotated[AgentStatus | None, Query(description="Only agents in this status")] = None,
) -> Page[AgentOut]:
    rows, cursor = agents.list(
        session=session,
        tenant_id=auth.tenant_id,
        cursor=page.cursor,
        limit=page.limit,
        team=team,
        status=status,
    )
    return Page(items=[AgentOut.from_row(r) for r in rows], next_cursor=cursor)


@router.get("/{agent_id}", summary="Read an agent")
def read_agent(agent_id: PathId, session: SessionDep, auth: ReadAuth) -> AgentOut:
    row = agents.get_or_raise(session=session, tenant_id=auth.tenant_id, agent_id=agent_id)
    return AgentOut.from_row(row)


@router.patch("/{agent_id}", summary="Update an agent (skills, when given, replace the map)")
def update_agent(
    agent_id: PathId,
    body: AgentUpdate,
    session: SessionDep,
    auth: PlannerAuth,
    now: NowDep,
    settings: SettingsDep,
    cache: RealtimeCacheDep,
) -> AgentOut:
    row = agents.update(
        session=session, tenant_id=auth.tenant_id, agent_id=agent_id, data=body, now=now
    )
    session.commit()
    if body.status in (AgentStatus.AWAY, AgentStatus.OFFLINE):
        # Their unstarted tickets follow the default policy (POST /v1/agents/{id}/status
        # chooses one explicitly and reports what moved).
        assignment.reroute_agent(
            session=session, cache=cache, tenant_id=auth.tenant_id, agent_id=agent_id,
            now=now, actor=auth.key_id, policy=settings.reroute_policy,
        )
        session.commit()
    return AgentOut.from_row(row)


@router.delete("/{agent_id}", status_code=204, summary="Delete an agent with shifts and busy time")
def delete_agent(agent_id: PathId, session: SessionDep, auth: PlannerAuth) -> Response:
    agents.delete(session=session, tenant_id=auth.tenant_id, agent_id=agent_id)
    session.commit()
    return Response(status_code=204)
