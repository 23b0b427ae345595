"""Teams of one tenant."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from api.db.models import Agent, Team, Ticket
from api.errors import Conflict
from api.schemas.teams import TeamCreate, TeamUpdate
from api.services import common

WHAT = "team"


def get(*, session: Session, tenant_id: str, team_id: str) -> Team | None:
    return common.get(session, Team, tenant_id, team_id)


def get_or_raise(*, session: Session, tenant_id: str, team_id: str) -> Team:
    return common.get_or_raise(session, Team, tenant_id, team_id, WHAT)


def create(*, session: Session, tenant_id: str, data: TeamCreate, now: datetime) -> Team:
    if get(session=session, tenant_id=tenant_id, team_id=data.id) is not None:
        raise Conflict(f"team {data.id!r} already exists")
    row = Team(tenant_id=tenant_id, id=data.id, name=data.name, created_at=now, updated_at=now)
    session.add(row)
    session.flush()
    return row


def update(
    *, session: Session, tenant_id: str, team_id: str, data: TeamUpdate, now: datetime
) -> Team:
    row = get_or_raise(session=session, tenant_id=tenant_id, team_id=team_id)
    for name, value in data.changes().items():
        setattr(row, name, value)
    row.updated_at = now
    session.flush()
    return row


def delete(*, session: Session, tenant_id: str, team_id: str) -> None:
    row = get_or_raise(session=session, tenant_id=tenant_id, team_id=team_id)
    users = []
    for model, label in ((Agent, "agents"), (Ticket, "tickets")):
        n = session.scalar(
            select(func.count()).where(model.tenant_id == tenant_id, model.team_id == team_id)
        )
        if n:
            users.append(f"{n} {label}")
    if users:
        raise Conflict(f"team {team_id!r} still has {', '.join(users)}")
    session.delete(row)
    session.flush()


def list(
    *, session: Session, tenant_id: str, cursor: str | None, limit: int
) -> tuple[Sequence[Team], str | None]:
    stmt = select(Team).where(Team.tenant_id == tenant_id)
    return common.paginate(session, stmt, Team.id, cursor, limit)
