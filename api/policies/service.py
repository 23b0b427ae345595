"""Read and write one tenant's policies document."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.common import merge_patch
from api.common import service as common
from api.db.models import Agent, TenantPolicies, Ticket
from api.enums import Channel
from api.errors import Conflict, FieldError, InvalidInput, validation_field_errors
from api.policies.schemas import Policies

DEFAULTS = Policies()
BUILT_IN_CHANNELS = frozenset(c.value for c in Channel)


def row(session: Session, tenant_id: str) -> TenantPolicies | None:
    return session.get(TenantPolicies, tenant_id)


def load(session: Session, tenant_id: str) -> Policies:
    """The tenant's policies: what it wrote, the defaults for anything it did not."""
    stored = row(session, tenant_id)
    return DEFAULTS if stored is None else Policies.model_validate(stored.document)


def channel_live(session: Session, tenant_id: str) -> dict[str, bool]:
    """Every channel the tenant's tickets may name, and whether it is live."""
    return load(session, tenant_id).channel_live()


def unknown_channels(
    session: Session, tenant_id: str, channels: Iterable[tuple[str, str]]
) -> list[FieldError]:
    """A 422's field errors for each ``(field, channel)`` naming no channel of the tenant. The
    policies are read only when a channel is not a built-in one."""
    wanted = [(f, c) for f, c in channels if c not in BUILT_IN_CHANNELS]
    if not wanted:
        return []
    known = channel_live(session, tenant_id)
    return [
        FieldError(
            f,
            f"unknown channel {c!r}; use email, web_form, chat, messaging, phone or a channel "
            "declared in the policies' channels",
        )
        for f, c in wanted
        if c not in known
    ]


def _refuse_removing_used_channels(
    session: Session, tenant_id: str, before: Policies, after: Policies
) -> None:
    """A 409 when a channel the document drops is still named by a ticket or an agent."""
    removed = {c.id for c in before.channels} - {c.id for c in after.channels}
    if not removed:
        return
    used = set(
        session.scalars(
            select(Ticket.channel)
            .where(Ticket.tenant_id == tenant_id, Ticket.channel.in_(sorted(removed)))
            .distinct()
        )
    )
    caps: Iterable[Mapping[str, int]] = session.scalars(
        select(Agent.channel_capacity).where(Agent.tenant_id == tenant_id)
    )
    for cap in caps:
        used |= removed & set(cap or {})
    if used:
        raise Conflict(
            f"channel(s) {', '.join(sorted(used))} are still named by tickets or agents' "
            "channel_capacity; change those first"
        )


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
    _refuse_removing_used_channels(session, tenant_id, load(session, tenant_id), data)
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
