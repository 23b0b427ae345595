"""Tenants: the bootstrap path (CLI) creates one together with its first admin key."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy.orm import Session

from api.db.models import Tenant
from api.enums import Scope
from api.errors import InvalidInput, NotFound
from api.keys import service as api_keys


def create(*, session: Session, name: str, now: datetime) -> tuple[Tenant, str]:
    """A new tenant and the plaintext of its first admin key (shown once)."""
    name = name.strip()
    if not name:
        raise InvalidInput.one("name", "must not be empty")
    tenant = Tenant(id=str(uuid.uuid4()), name=name[:200], created_at=now)
    session.add(tenant)
    session.flush()
    _, plaintext = api_keys.create(
        session=session,
        tenant_id=tenant.id,
        name="admin (bootstrap)",
        scopes=[Scope.ADMIN],
        now=now,
    )
    return tenant, plaintext


def get_or_raise(*, session: Session, tenant_id: str) -> Tenant:
    tenant = session.get(Tenant, tenant_id)
    if tenant is None:
        raise NotFound("tenant", tenant_id)
    return tenant
