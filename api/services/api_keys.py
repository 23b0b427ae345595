"""API keys: minted once, stored as a sha256 hash, found by a short public prefix.

A key looks like ``sb_<prefix>_<secret>``; the 256-bit secret makes a plain sha256 safe (there is
nothing to brute-force, so a slow password hash would only cost latency on every request).

Every request authenticates, so valid keys are cached in the process for
:data:`AUTH_CACHE_SECONDS` (:class:`PrincipalCache`): the hot path pays a dictionary lookup instead
of a database round trip. Revocation latency: a key revoked through this process stops working
at once (:func:`revoke` forgets it, again after its commit); in *other* service processes it keeps
working for at most :data:`AUTH_CACHE_SECONDS`. Unknown or revoked keys are never cached.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import event, select
from sqlalchemy.orm import Session, sessionmaker

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
    return row.scope_set()


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


# How long a process trusts a key it has checked: the longest a revocation made through another
# process takes to be seen here.
AUTH_CACHE_SECONDS = 5.0
_CACHE_MAX_ENTRIES = 10_000


class PrincipalCache:
    """(database, sha256 of the key) -> the key's principal, for a few seconds. Thread-safe.

    The database is part of the entry so that one process serving several databases (tests do)
    never lets a key checked against one pass against another."""

    def __init__(self, ttl_seconds: float = AUTH_CACHE_SECONDS) -> None:
        self.ttl_seconds = ttl_seconds
        self._entries: dict[tuple[str, str], tuple[Principal, float]] = {}
        self._lock = threading.Lock()

    def get(self, database: str, plaintext: str) -> Principal | None:
        found = self._entries.get((database, hash_key(plaintext)))
        if found is None:
            return None
        principal, expires = found
        if time.monotonic() >= expires:
            return None
        return principal

    def put(self, database: str, plaintext: str, principal: Principal) -> None:
        now = time.monotonic()
        with self._lock:
            if len(self._entries) >= _CACHE_MAX_ENTRIES:
                self._entries = {k: v for k, v in self._entries.items() if v[1] > now}
                if len(self._entries) >= _CACHE_MAX_ENTRIES:
                    self._entries.clear()
            self._entries[(database, hash_key(plaintext))] = (principal, now + self.ttl_seconds)

    def forget(self, key_id: str) -> None:
        with self._lock:
            self._entries = {k: v for k, v in self._entries.items() if v[0].key_id != key_id}

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


principal_cache = PrincipalCache()


def authenticate_cached(
    *, session_factory: sessionmaker[Session], database: str, plaintext: str
) -> Principal | None:
    """:func:`authenticate` through :data:`principal_cache` (a session only on a miss)."""
    principal = principal_cache.get(database, plaintext)
    if principal is None:
        with session_factory() as session:
            principal = authenticate(session=session, plaintext=plaintext)
        if principal is not None:
            principal_cache.put(database, plaintext, principal)
    return principal


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
