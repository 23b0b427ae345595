"""Teams of one tenant."""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from api.common import service as common
from api.db import inserts
from api.db.base import table_of
from api.db.locks import lock_tenant
from api.db.models import Agent, Team, Ticket
from api.errors import Conflict
from api.org.teams.schemas import TeamCreate, TeamUpdate

WHAT = "team"


def get(*, session: Session, tenant_id: str, team_id: str) -> Team | None:
    return common.get(session, Team, tenant_id, team_id)


def get_or_raise(*, session: Session, tenant_id: str, team_id: str) -> Team:
    return common.get_or_raise(session, Team, tenant_id, team_id, WHAT)


def create(*, session: Session, tenant_id: str, data: TeamCreate, now: datetime) -> Team:
    common.refuse_duplicate(session, Team, tenant_id, data.id, WHAT)
    row = Team(
        tenant_id=tenant_id,
        id=data.id,
        name=data.name,
        scope=data.scope,
        created_at=now,
        updated_at=now,
    )
    return common.insert(session, row)


def create_many(
    *, session: Session, tenant_id: str, rows: Sequence[TeamCreate], now: datetime
) -> builtins.list[str]:
    """The import of ``rows``; the contract is :mod:`api.common.service`'s."""
    lock_tenant(session, tenant_id)
    ids = [r.id for r in rows]
    taken = common.existing_ids(session, Team, tenant_id, ids)
    common.refuse_rows(ids, taken, WHAT, lambda _i: [])
    values = [
        {
            "tenant_id": tenant_id,
            "id": r.id,
            "name": r.name,
            "scope": r.scope,
            "created_at": now,
            "updated_at": now,
        }
        for r in rows
    ]
    inserts.insert_many(session, table_of(Team), values)
    return ids


def update(
    *, session: Session, tenant_id: str, team_id: str, data: TeamUpdate, now: datetime
) -> Team:
    row = get_or_raise(session=session, tenant_id=tenant_id, team_id=team_id)
    common.save_changes(session, row, data.changes(), now)
    return row


def delete(*, session: Session, tenant_id: str, team_id: str) -> None:
    row = get_or_raise(session=session, tenant_id=tenant_id, team_id=team_id)
    users = common.references(
        session, tenant_id, team_id, ((Agent.team_id, "agents"), (Ticket.team_id, "tickets"))
    )
    if users:
        raise Conflict(f"team {team_id!r} still has {', '.join(users)}")
    common.remove(session, row)


def list(
    *,
    session: Session,
    tenant_id: str,
    cursor: str | None,
    limit: int,
    updated_since: datetime | None = None,
) -> tuple[Sequence[Team], str | None]:
    stmt = select(Team).where(Team.tenant_id == tenant_id)
    return common.paginate_since(
        session, stmt, Team.id, Team.updated_at, updated_since, cursor, limit
    )
