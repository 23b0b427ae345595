"""API keys: minted once, stored as a sha256 hash, found by a short public prefix; listed and
revoked by a tenant's admin.

Checking a presented key and caching its principal is :mod:`api.auth`; revoking a key here
forgets it there at once (and again after the commit).
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime

from sqlalchemy import event, select
from sqlalchemy.orm import Session

from api.auth import KEY_PREFIX, hash_key, principal_cache
from api.db.models import ApiKey
from api.enums import Scope
from api.errors import InvalidInput, NotFound


def _parse_scopes(scopes: Iterable[Scope | str]) -> frozenset[Scope]:
    out: set[Scope] = set()
    for s in scopes:
        try:
            out.add(Scope(s))
        except ValueError:
            allowed = ", ".join(x.value for x in Scope)
            raise InvalidInput.one("scopes", f"unknown scope {s!r}; allowed: {allowed}") from None
    if not out:
        raise InvalidInput.one("scopes", "at least one scope is required")
    return frozenset(out)


def create(
    *,
    session: Session,
    tenant_id: str,
    name: str,
    scopes: Iterable[Scope | str],
    now: datetime,
) -> tuple[ApiKey, str]:
    """Mint a key; returns the row and the plaintext, which is never stored nor shown again."""
    parsed = _parse_scopes(scopes)
    prefix = secrets.token_hex(6)
    plaintext = f"{KEY_PREFIX}_{prefix}_{secrets.token_urlsafe(32)}"
    row = ApiKey(
        id=f"key_{uuid.uuid4().hex[:20]}",
        tenant_id=tenant_id,
        name=name,
        prefix=prefix,
        key_hash=hash_key(plaintext),
        scopes=" ".join(sorted(s.value for s in parsed)),
        created_at=now,
        revoked_at=None,
    )
    session.add(row)
    session.flush()
    return row, plaintext


def list(*, session: Session, tenant_id: str) -> Sequence[ApiKey]:
    return session.scalars(
        select(ApiKey).where(ApiKey.tenant_id == tenant_id).order_by(ApiKey.created_at, ApiKey.id)
    ).all()


def get_or_raise(*, session: Session, tenant_id: str, key_id: str) -> ApiKey:
    row = session.scalars(
        select(ApiKey).where(ApiKey.tenant_id == tenant_id, ApiKey.id == key_id)
    ).first()
    if row is None:
        raise NotFound("api key", key_id)
    return row


def revoke(*, session: Session, tenant_id: str, key_id: str, now: datetime) -> ApiKey:
    row = get_or_raise(session=session, tenant_id=tenant_id, key_id=key_id)
    if row.revoked_at is None:
        row.revoked_at = now
        session.flush()
    # Forget it now, and again once committed: a request that read the key before the commit
    # may have put it back meanwhile.
    principal_cache.forget(key_id)
    event.listen(session, "after_commit", lambda _s: principal_cache.forget(key_id), once=True)
    return row
