"""/v1/agents: the people who take tickets and calls.

The common operations come from :func:`api.org.crud.crud_router`; PATCH is written out here
because an agent who goes away or offline has their unstarted tickets re-routed.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Query

from api.assignment import live, reroute
from api.assignment.routes import RealtimeCacheDep
from api.common.schemas import PathId
from api.db.locks import lock_tenant
from api.enums import AgentStatus
from api.http.deps import AdminAuth, NowDep, SessionDep, SettingsDep
from api.org.agents import service as agents
from api.org.agents.schemas import AgentCreate, AgentOut, AgentUpdate
from api.org.crud import Filters, Summaries, crud_router


def agent_filters(
    team: Annotated[str | None, Query(description="Only this team's agents")] = None,
    status: Annotated[AgentStatus | None, Query(description="Only agents in this status")] = None,
) -> Filters:
    return {"team": team, "status": status}


def update_agent(  # PATCH /v1/agents/{agent_id}, registered by crud_router below
    agent_id: PathId,
    body: AgentUpdate,
    session: SessionDep,
    auth: AdminAuth,
    now: NowDep,
    settings: SettingsDep,
    cache: RealtimeCacheDep,
) -> AgentOut:
    changes = body.changes()
    # Back at work, or room for more: the live channels' queue is offered to them in this unit
    # of work (api.assignment.live), which must hold the tenant lock from its start.
    frees = body.status is AgentStatus.AVAILABLE or bool(
        {"capacity", "channel_capacity"} & set(changes)
    )
    if body.status in (AgentStatus.AWAY, AgentStatus.OFFLINE):
        # Their unstarted tickets follow the default policy (POST /v1/agents/{id}/status
        # chooses one explicitly and reports what moved). One unit of work with the rest of the
        # update, so an error answer means nothing was applied: re-routing takes the tenant
        # lock, which must open the transaction, so it goes first and sets the status itself.
        reroute.reroute_agent(
            session=session,
            cache=cache,
            tenant_id=auth.tenant_id,
            agent_id=agent_id,
            now=now,
            actor=auth.key_id,
            policy=settings.reroute_policy,
            status=body.status,
        )
    elif frees:
        lock_tenant(session, auth.tenant_id)
    row = agents.update(
        session=session, tenant_id=auth.tenant_id, agent_id=agent_id, data=body, now=now
    )
    if frees and row.status is AgentStatus.AVAILABLE:
        live.offer(
            session=session,
            cache=cache,
            tenant_id=auth.tenant_id,
            agents=[agent_id],
            now=now,
            actor=auth.key_id,
        )
    session.commit()
    return AgentOut.from_row(row)


router = crud_router(
    prefix="/v1/agents",
    tag="agents",
    noun="agent",
    nouns="agents",
    service=agents,
    create=AgentCreate,
    update=AgentUpdate,
    out=AgentOut,
    summaries=Summaries(
        create="Create an agent",
        import_="Import agents (JSON, or CSV with skills as 'billing=3;lang:de=5'), all or nothing",
        list="List agents (ordered by id)",
        read="Read an agent",
        update="Update an agent (skills, when given, replace the map)",
        delete="Delete an agent with shifts and busy time",
    ),
    list_filters=agent_filters,
    update_endpoint=update_agent,
)
