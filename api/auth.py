"""Who is calling: an API key presented on a request, checked, and its principal cached.

A key looks like ``sb_<prefix>_<secret>``; the 256-bit secret makes a plain sha256 safe (there is
nothing to brute-force, so a slow password hash would only cost latency on every request).

Every request authenticates, so valid keys are cached in the process for
:data:`AUTH_CACHE_SECONDS` (:class:`PrincipalCache`): the hot path pays a dictionary lookup instead
of a database round trip. Revocation latency: a key revoked through this process stops working
at once (:func:`api.keys.service.revoke` forgets it, again after its commit); in *other*
service processes it keeps working for at most :data:`AUTH_CACHE_SECONDS`. Unknown or revoked
keys are never cached.

Below the HTTP edge (:mod:`api.http.deps`, the gate, rate limits, idempotency) and the keys' own
service (:mod:`api.keys.service`, which mints and revokes them): both use it, it uses
neither.
"""

from __future__ import annotations

import hashlib
import hmac
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from api.db.models import ApiKey
from api.enums import Scope

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
    return Principal(tenant_id=row.tenant_id, key_id=row.id, scopes=row.scope_set())


# How long a process trusts a key it has checked: the longest a revocation made through another
# process takes to be seen here.
AUTH_CACHE_SECONDS = 5.0
_CACHE_MAX_ENTRIES = 10_000


class PrincipalCache:
    """(database, sha256 of the key) -> the key's principal, for a few seconds. Thread-safe.

    The database is part of the entry so that one process serving several databases (tests do)
    never lets a key checked against one pass against another."""

    def __init__(
        self,
        ttl_seconds: float = AUTH_CACHE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl_seconds = ttl_seconds
        self.clock = clock
        self._entries: dict[tuple[str, str], tuple[Principal, float]] = {}
        self._lock = threading.Lock()

    def get(self, database: str, plaintext: str) -> Principal | None:
        found = self._entries.get((database, hash_key(plaintext)))
        if found is None:
            return None
        principal, expires = found
        if self.clock() >= expires:
            return None
        return principal

    def put(self, database: str, plaintext: str, principal: Principal) -> None:
        now = self.clock()
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
