"""Skill schemas. Languages and tiers are skills with another ``kind``."""

from __future__ import annotations

from api.common.schemas import Id, Name, Patch, Schema, Timestamp
from api.db.models import Skill
from api.enums import SkillKind


class SkillCreate(Schema):
    id: Id
    name: Name = ""
    kind: SkillKind = SkillKind.SKILL


class SkillUpdate(Patch):
    """Not nullable: ``name`` is cleared with ``""`` and every skill has a ``kind``."""

    name: Name | None = None
    kind: SkillKind | None = None


class SkillOut(Schema):
    id: str
    name: str
    kind: SkillKind
    created_at: Timestamp
    updated_at: Timestamp

    @classmethod
    def from_row(cls, row: Skill) -> SkillOut:
        return cls(
            id=row.id,
            name=row.name,
            kind=row.kind,
            created_at=row.created_at,
            updated_at=row.updated_at,
        )
