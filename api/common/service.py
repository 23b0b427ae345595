"""Helpers every resource service shares: tenant-scoped lookups, keyset pagination, the
reference checks that turn "unknown team" into a 422 naming the field, and the steps of create,
PATCH and delete that read the same in every resource (duplicate id, save changes, what still
refers to a row, a ``{skill: level}`` link set).

Bulk imports create many rows at once (each service's ``create_many``) with the same checks as
``create`` made row by row, but with one query per table they look in (:func:`existing_ids`),
the checks in memory (:func:`refuse_rows`) and bulk inserts (:mod:`api.db.inserts`): an
import of agents by per-row ``create`` would send five statements per row (three lookups, a
flush of two INSERTs), tens of seconds for 10,000 agents (figures: benchmarks/README.md, Bulk
import).

What every ``create_many(session=, tenant_id=, rows=, now=)`` promises: :func:`create` for every
row, all or nothing, returning the ids. It refuses what ``create`` would, row by row in order (an
id taken, earlier in the import too; an unknown reference) with :class:`~api.errors.InvalidInput`
naming each row by its index in ``rows``, and then writes nothing. The unit of work must not
have begun: ``create_many`` opens it with the tenant's write lock
(:func:`api.db.locks.lock_tenant`), so a concurrent import of the same ids waits and then gets
its 422 instead of a primary-key violation.

Every query here takes ``tenant_id``: there is no way to look a row up without it.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from collections.abc import (
    Callable,
    Collection,
    Iterable,
    Mapping,
    MutableSequence,
    Sequence,
)
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

from sqlalchemy import Select, String, any_, bindparam, func, select
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import InstrumentedAttribute, Session

from api.db.models import Agent, Skill, Team
from api.errors import Conflict, FieldError, InvalidInput, NotFound
from solver.timegrid import in_range

R = TypeVar("R")

# A column pages are ordered by: unique within the tenant, a string id or an integer sequence.
KeyColumn = InstrumentedAttribute[str] | InstrumentedAttribute[int]

# Ids per ``IN (...)`` lookup on SQLite: far below its bound-parameter limit (32,766), few
# enough round trips for 10,000 rows.
IN_CHUNK = 1000


def get(session: Session, model: type[R], tenant_id: str, ident: str) -> R | None:
    """The row of ``model`` with primary key ``(tenant_id, ident)``, or None."""
    return session.get(model, (tenant_id, ident))


def get_or_raise(session: Session, model: type[R], tenant_id: str, ident: str, what: str) -> R:
    row = get(session, model, tenant_id, ident)
    if row is None:
        raise NotFound(what, ident)
    return row


def refuse_duplicate(
    session: Session, model: type[Any], tenant_id: str, ident: str, what: str
) -> None:
    """A create's 409 when the tenant already has a ``model`` row with this id."""
    if get(session, model, tenant_id, ident) is not None:
        raise Conflict(f"{what} {ident!r} already exists")


def insert(session: Session, row: R) -> R:
    """Add a new row and flush, so a constraint it breaks surfaces here."""
    session.add(row)
    session.flush()
    return row


def save_changes(session: Session, row: Any, changes: Mapping[str, Any], now: datetime) -> None:
    """Set the columns a PATCH named (already checked, keyed by attribute) and stamp the row."""
    for name, value in changes.items():
        setattr(row, name, value)
    row.updated_at = now
    session.flush()


def remove(session: Session, row: Any) -> None:
    session.delete(row)
    session.flush()


def references(
    session: Session,
    tenant_id: str,
    ident: str,
    columns: Iterable[tuple[InstrumentedAttribute[Any], str]],
) -> list[str]:
    """``["3 agents", ...]``: for each (foreign-key column, label), how many of the tenant's rows
    point at ``ident`` (labels of none are left out), for a delete's 409."""
    found = []
    for column, label in columns:
        n = session.scalar(
            select(func.count()).where(column.class_.tenant_id == tenant_id, column == ident)
        )
        if n:
            found.append(f"{n} {label}")
    return found


class LevelLink(Protocol):
    """A row linking an owner to a skill at a level (AgentSkill, CapabilitySkill)."""

    skill_id: str
    level: int


L = TypeVar("L", bound=LevelLink)


def sync_levels(
    links: MutableSequence[L], levels: Mapping[str, int], new_link: Callable[[str, int], L]
) -> None:
    """Make a ``{skill: level}`` link collection (agents' skills, capabilities' requirements)
    equal ``levels``.

    In place rather than replacing the collection: a delete and an insert of the same
    (tenant, owner, skill) key in one flush would be ordered insert-first and collide.
    """
    current = {link.skill_id: link for link in links}
    for skill_id, link in current.items():
        if skill_id not in levels:
            links.remove(link)
        else:
            link.level = levels[skill_id]
    for skill_id, level in levels.items():
        if skill_id not in current:
            links.append(new_link(skill_id, level))


def new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:16]}"


def encode_cursor(last_key: str | int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"k": last_key}).encode()).decode().rstrip("=")


def decode_cursor(cursor: str, key_type: type[str] | type[int] = str) -> str | int:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode()))
        key = data["k"]
        if type(key) is not key_type or "u" in data:  # "u": a cursor of paginate_since
            raise TypeError
        if isinstance(key, int) and not -(2**63) <= key < 2**63:
            raise ValueError
        return key
    except (binascii.Error, ValueError, KeyError, TypeError, UnicodeDecodeError):
        raise InvalidInput.one("query.cursor", "not a cursor this API returned") from None


def encode_time_cursor(created_at: datetime, row_id: str) -> str:
    """The cursor after a row of a list ordered by ``(created_at, id)``, newest first."""
    return encode_cursor(f"{created_at.isoformat()}|{row_id}")


def decode_time_cursor(cursor: str | None) -> tuple[datetime, str] | None:
    """What :func:`encode_time_cursor` wrote (None: the first page); anything else is a 422
    naming ``query.cursor``, a forged moment near year 1 or 9999 included (it would overflow
    where the database driver converts it)."""
    if cursor is None:
        return None
    key = decode_cursor(cursor)
    assert isinstance(key, str)
    at, _, row_id = key.partition("|")
    try:
        moment: datetime | None = datetime.fromisoformat(at)
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None or in_range(moment) is None or not row_id:
        raise InvalidInput.one("query.cursor", "not a cursor this API returned")
    return moment, row_id


def paginate(
    session: Session,
    stmt: Select[R],
    key_column: KeyColumn,
    cursor: str | None,
    limit: int,
) -> tuple[Sequence[R], str | None]:
    """Keyset pagination in ``key_column`` order (stable: the key is unique within the tenant).

    Fetches one row more than asked to learn whether a next page exists.
    """
    key_type = int if key_column.type.python_type is int else str
    if cursor is not None:
        stmt = stmt.where(key_column > decode_cursor(cursor, key_type))
    rows = session.scalars(stmt.order_by(key_column).limit(limit + 1)).all()
    if len(rows) > limit:
        rows = rows[:limit]
        return rows, encode_cursor(_key_of(rows[-1], key_column))
    return rows, None


def paginate_since(
    session: Session,
    stmt: Select[R],
    key_column: InstrumentedAttribute[str],
    updated_column: InstrumentedAttribute[datetime],
    updated_since: datetime | None,
    cursor: str | None,
    limit: int,
) -> tuple[Sequence[R], str | None]:
    """:func:`paginate`, or with ``updated_since`` only the rows changed at or after it, in
    (``updated_column``, ``key_column``) order, keyset-paged on both.

    Stable for incremental sync: ``updated_at`` only grows, so a row is never skipped; one
    changed while a client pages moves past the cursor and is seen again, with its new state.
    Its cursors are not :func:`paginate`'s (and the reverse): one used with the other is a 422.
    """
    if updated_since is None:
        return paginate(session, stmt, key_column, cursor, limit)
    stmt = stmt.where(updated_column >= updated_since)
    if cursor is not None:
        after_at, after_key = _decode_since_cursor(cursor)
        stmt = stmt.where(
            (updated_column > after_at) | ((updated_column == after_at) & (key_column > after_key))
        )
    rows = session.scalars(stmt.order_by(updated_column, key_column).limit(limit + 1)).all()
    if len(rows) > limit:
        rows = rows[:limit]
        last = rows[-1]
        at: datetime = getattr(last, updated_column.key)
        return rows, _encode({"u": at.astimezone(UTC).isoformat(), "k": _key_of(last, key_column)})
    return rows, None


def _encode(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


def _decode_since_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode()))
        key, at = data["k"], datetime.fromisoformat(data["u"])
        if type(key) is not str or at.tzinfo is None:
            raise TypeError
        return at, key
    except (binascii.Error, ValueError, KeyError, TypeError, UnicodeDecodeError):
        raise InvalidInput.one(
            "query.cursor", "not a cursor this API returned for a list with updated_since"
        ) from None


def _key_of(row: object, key_column: KeyColumn) -> str | int:
    key: str | int = getattr(row, key_column.key)
    return key


def unknown_skills(
    session: Session, tenant_id: str, levels: Mapping[str, int], field: str
) -> list[FieldError]:
    if not levels:
        return []
    return unknown_skills_of(levels, existing_ids(session, Skill, tenant_id, levels), field)


def unknown_skills_of(
    levels: Mapping[str, int], known: Collection[str], field: str
) -> list[FieldError]:
    """:func:`unknown_skills` against skill ids already read (``known``)."""
    return [
        FieldError(f"{field}.{skill}", f"unknown skill {skill!r}")
        for skill in levels
        if skill not in known
    ]


def unknown_of(ident: str, known: Collection[str], field: str, what: str) -> list[FieldError]:
    """The 422 of a reference to a ``what`` not among ``known`` (ids already read)."""
    if ident not in known:
        return [FieldError(field, f"unknown {what} {ident!r}")]
    return []


def _unknown(
    session: Session, model: type[Any], tenant_id: str, ident: str, field: str, what: str
) -> list[FieldError]:
    if get(session, model, tenant_id, ident) is None:
        return [FieldError(field, f"unknown {what} {ident!r}")]
    return []


def unknown_team(
    session: Session, tenant_id: str, team: str, field: str = "team"
) -> list[FieldError]:
    return _unknown(session, Team, tenant_id, team, field, "team")


def unknown_agent(
    session: Session, tenant_id: str, agent: str, field: str = "agent"
) -> list[FieldError]:
    return _unknown(session, Agent, tenant_id, agent, field, "agent")


def raise_if(errors: Iterable[FieldError]) -> None:
    errs = list(errors)
    if errs:
        raise InvalidInput(errs)


# --------------------------------------------------------------------------- many rows at once


def existing_ids(
    session: Session, model: type[Any], tenant_id: str, ids: Iterable[str]
) -> set[str]:
    """Which of ``ids`` the tenant has a ``model`` row for.

    PostgreSQL: one query, the ids sent as one array parameter (``= ANY``), which is faster
    than ``IN`` chunks of 1,000 bound parameters (figures: benchmarks/README.md, Bulk import).
    SQLite: one ``IN`` query per :data:`IN_CHUNK` ids.
    """
    wanted = sorted(set(ids))
    if not wanted:
        return set()
    if session.get_bind().dialect.name == "postgresql":
        ids_param = bindparam("ids", wanted, type_=postgresql.ARRAY(String))
        stmt = select(model.id).where(model.tenant_id == tenant_id, model.id == any_(ids_param))
        return set(session.scalars(stmt))
    found: set[str] = set()
    for start in range(0, len(wanted), IN_CHUNK):
        chunk = wanted[start : start + IN_CHUNK]
        found.update(
            session.scalars(
                select(model.id).where(model.tenant_id == tenant_id, model.id.in_(chunk))
            )
        )
    return found


def refuse_rows(
    ids: Sequence[str],
    taken: Collection[str],
    what: str,
    problems: Callable[[int], list[FieldError]],
) -> None:
    """Raise :class:`InvalidInput` naming every row (by index) that ``create`` would refuse,
    had the rows been created one after another in one transaction, or return.

    Row ``i`` with id ``ids[i]`` is refused with a conflict on ``id`` when the id is in
    ``taken`` (the database) or an earlier row of these was created with it; otherwise with
    ``problems(i)`` (its unknown references), if any. A refused row is not created, so a later
    row may take its id, as it could after a failed single create.
    """
    errors: list[FieldError] = []
    created: set[str] = set()
    for i, ident in enumerate(ids):
        if ident in taken or ident in created:
            errors.append(FieldError("id", f"{what} {ident!r} already exists", i))
            continue
        found = problems(i)
        if found:
            errors.extend(e.at_row(i) for e in found)
            continue
        created.add(ident)
    raise_if(errors)
