"""API key schemas. The plaintext key appears in exactly one response: the one creating it."""

from __future__ import annotations

from pydantic import Field

from api.common.schemas import Name, Schema, Timestamp
from api.db.models import ApiKey
from api.enums import Scope


class ApiKeyCreate(Schema):
    name: Name = ""
    scopes: list[Scope] = Field(min_length=1, description="helpdesk, planner and/or admin")


class ApiKeyOut(Schema):
    id: str
    name: str
    prefix: str = Field(description="The public part of the key, to recognise it in logs")
    scopes: list[Scope]
    created_at: Timestamp
    revoked_at: Timestamp | None

    @classmethod
    def from_row(cls, row: ApiKey) -> ApiKeyOut:
        return cls(
            id=row.id,
            name=row.name,
            prefix=row.prefix,
            scopes=sorted(row.scope_set()),
            created_at=row.created_at,
            revoked_at=row.revoked_at,
        )


class ApiKeyCreated(ApiKeyOut):
    key: str = Field(description="The secret key. Shown once; only its hash is stored.")
