"""The per-tenant write lock: one helper for every write that must not race.

Capabilities share agents, so booking a slot, consuming a link or binding an agent must be
serialized per *tenant* (a per-capability lock would let two bookings take the same last agent).
Call :func:`lock_tenant` as the first statement of the unit of work, re-check feasibility inside
the lock, then commit; the lock is released by the commit or rollback.

- PostgreSQL: ``pg_advisory_xact_lock`` on a key derived from the tenant id (transaction-scoped).
- SQLite: ``BEGIN IMMEDIATE`` takes the database's write lock up front (SQLite has one writer,
  so this serializes all tenants, which is the best SQLite can do). SQLAlchemy's
  ``with_for_update()`` is silently a no-op on SQLite, so it is not used.
"""

from __future__ import annotations

import hashlib

from sqlalchemy import text
from sqlalchemy.orm import Session

from api.db.engine import SQLITE_BEGIN_OPTION

# Namespaces the advisory-lock space so our keys cannot collide with another application's.
_LOCK_NAMESPACE = 0x5B0A  # "SwitchBoArd"
_ADVISORY_LOCK = text("SELECT pg_advisory_xact_lock(:ns, :key)")
# session.info key: (tenant, the transaction) whose unit of work holds the tenant's lock,
# so a step of that unit of work (an import's create_many inside its upsert) may ask again.
_HELD = "switchboard.tenant_lock"


def _advisory_key(tenant_id: str) -> int:
    digest = hashlib.blake2b(tenant_id.encode(), digest_size=4).digest()
    return int.from_bytes(digest, "big", signed=True)


def begin_write(session: Session) -> bool:
    """Open the unit of work for a read-then-write: on SQLite with ``BEGIN IMMEDIATE`` (its
    write lock up front; a read transaction that later writes fails with SQLITE_BUSY once
    another writer committed in between). True on PostgreSQL, where row locks (``FOR UPDATE
    SKIP LOCKED``) do the serializing instead; nothing is executed there."""
    if session.get_bind().dialect.name == "sqlite":
        session.connection(execution_options={SQLITE_BEGIN_OPTION: "IMMEDIATE"})
        return False
    return True


def lock_tenant(session: Session, tenant_id: str) -> None:
    """Serialize this transaction against every other locked write of ``tenant_id``.

    Must open the unit of work: a transaction that already read may hold a stale snapshot
    (SQLite) or decisions based on unlocked reads, so that is refused as a bug — unless this
    very transaction took the lock for the same tenant first (then it is held: a no-op).
    """
    if session.in_transaction():
        held = session.info.get(_HELD)
        if held is not None and held[0] == tenant_id and held[1] is session.get_transaction():
            return  # this unit of work took it first thing: a step of it asks again
        raise RuntimeError("lock_tenant() must be the first statement of a unit of work")
    if begin_write(session):
        # On the connection, not through the ORM's execute: the assignment path takes this
        # lock once per batch.
        session.connection().execute(
            _ADVISORY_LOCK, {"ns": _LOCK_NAMESPACE, "key": _advisory_key(tenant_id)}
        )
    else:
        session.connection()  # BEGIN IMMEDIATE ran: the transaction exists
    # The transaction itself, not its id(): a later transaction could reuse a freed id.
    session.info[_HELD] = (tenant_id, session.get_transaction())
