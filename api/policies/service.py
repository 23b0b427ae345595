"""Read and write one tenant's policies document."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy.orm import Session

from api.common import merge_patch
from api.common import service as common
from api.db.models import TenantPolicies
from api.errors import InvalidInput, validation_field_errors
from api.policies.schemas import Policies

DEFAULTS = Policies()


def row(session: Session, tenant_id: str) -> TenantPolicies | None:
    return session.get(TenantPolicies, tenant_id)


def load(session: Session, tenant_id: str) -> Policies:
    """The tenant's policies: what it wrote, the defaults for anything it did not."""
    stored = row(session, tenant_id)
    return DEFAULTS if stored is None else Policies.model_validate(stored.document)


def _validate(session: Session, tenant_id: str, data: Policies) -> None:
    if data.sla is not None:
        common.raise_if(
            error
            for team in data.sla.teams
            for error in common.unknown_team(session, tenant_id, team, f"sla.teams.{team}")
        )


def replace(*, session: Session, tenant_id: str, data: Policies, now: datetime) -> TenantPolicies:
    """Write ``data`` as the whole document (PUT)."""
    _validate(session, tenant_id, data)
    document = data.model_dump(mode="json")
    stored = row(session, tenant_id)
    if stored is None:
        stored = TenantPolicies(tenant_id=tenant_id, document=document, updated_at=now)
        session.add(stored)
    else:
        stored.document = document
        stored.updated_at = now
    session.flush()
    return stored


def patch(
    *, session: Session, tenant_id: str, changes: dict[str, Any], now: datetime
) -> TenantPolicies:
    """Merge ``changes`` into the document (RFC 7396: ``null`` returns a field to its default),
    validate the result, and write it; an invalid result writes nothing."""
    current = load(session, tenant_id).model_dump(mode="json")
    merged = merge_patch.apply(current, changes)
    try:
        data = Policies.model_validate(merged)
    except ValidationError as exc:
        raise InvalidInput(validation_field_errors(exc.errors())) from None
    return replace(session=session, tenant_id=tenant_id, data=data, now=now)
