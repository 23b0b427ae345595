"""API keys: minted once, stored as a sha256 hash, found by a short public prefix.

A key looks like ``sb_<prefix>_<secret>``; the 256-bit secret makes a plain sha256 safe (there is
nothing to brute-force, so a slow password hash would only cost latency on every request).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from api.db.models import ApiKey
from api.enums import Scope
from api.errors import InvalidInput, NotFound

KEY_PREFIX = "sb"


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: a tenant, through one key, with some scopes."""

    tenant_id: str
    key_id: str
    scopes: frozenset[Scope]

    def allows(self, scope: Scope) -> bool:
        return Scope.ADMIN in self.scopes or scope in self.scopes


def hash_key(plaintext: str) -> str:
    return hashlib.sha256(plaintext.encode()).hexdigest()


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


def scopes_of(row: ApiKey) -> frozenset[Scope]:
    return frozenset(Scope(s) for s in row.scopes.split())


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


def authenticate(*, session: Session, plaintext: str) -> Principal | None:
    """The principal for a presented key, or None for anything unknown, malformed or revoked."""
    parts = plaintext.split("_", 2)
    if len(parts) != 3 or parts[0] != KEY_PREFIX:
        return None
    row = session.scalars(select(ApiKey).where(ApiKey.prefix == parts[1])).first()
    if row is None or row.revoked_at is not None:
        return None
    if not hmac.compare_digest(row.key_hash, hash_key(plaintext)):
        return None
    return Principal(tenant_id=row.tenant_id, key_id=row.id, scopes=scopes_of(row))


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
    return row
