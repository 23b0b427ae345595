"""Team schemas. A team owns tickets nobody can take yet (its queue)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from api.common.schemas import Id, Name, Patch, Schema, Timestamp
from api.db.models import Team
from api.enums import TeamScope

_SCOPE = (
    "Who may work the team's tickets: ``team_only`` (its own agents) or ``borrow`` (other "
    "teams' agents too, when none of its own can; the reasons name the lending team). "
    "null follows the tenant's ``team_scope`` policy (``/v1/policies``)."
)


class TeamCreate(Schema):
    id: Id
    name: Name = ""
    scope: TeamScope | None = Field(default=None, description=_SCOPE)


class TeamUpdate(Patch):
    """Not nullable: a team without a name has ``name`` ``""`` (send that to clear it).
    ``scope`` null returns the team to the tenant's policy."""

    NULLABLE: ClassVar[frozenset[str]] = frozenset({"scope"})

    name: Name | None = None
    scope: TeamScope | None = Field(default=None, description=_SCOPE)


class TeamOut(Schema):
    id: str
    name: str
    scope: TeamScope | None = Field(description=_SCOPE)
    created_at: Timestamp
    updated_at: Timestamp

    @classmethod
    def from_row(cls, row: Team) -> TeamOut:
        return cls(
            id=row.id,
            name=row.name,
            scope=row.scope,
            created_at=row.created_at,
            updated_at=row.updated_at,
        )
