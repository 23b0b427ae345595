"""Team schemas. A team owns tickets nobody can take yet (its queue)."""

from __future__ import annotations

from api.common.schemas import Id, Name, Patch, Schema, Timestamp
from api.db.models import Team


class TeamCreate(Schema):
    id: Id
    name: Name = ""


class TeamUpdate(Patch):
    """Not nullable: a team without a name has ``name`` ``""`` (send that to clear it)."""

    name: Name | None = None


class TeamOut(Schema):
    id: str
    name: str
    created_at: Timestamp
    updated_at: Timestamp

    @classmethod
    def from_row(cls, row: Team) -> TeamOut:
        return cls(id=row.id, name=row.name, created_at=row.created_at, updated_at=row.updated_at)
