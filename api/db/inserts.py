"""Many new rows into one table, fast, in the session's transaction: the write path of bulk
imports (``create_many`` of each organisation service).

PostgreSQL gets ``COPY ... FROM STDIN``, faster than psycopg's pipelined executemany (each
row there is still a statement the server parses and executes) and than SQLAlchemy's batched
multi-row ``VALUES ... RETURNING`` (figures: benchmarks/README.md, Bulk import).
Values go through each column type's own bind processing first (UTC datetimes, enum values),
so COPY stores exactly what an INSERT would, and a driver error is raised as the SQLAlchemy
exception an INSERT would have raised (``IntegrityError``, ``DataError``,
``OperationalError``...), which ``api.errors`` answers with a 409, 422 or 503 as for any
write. SQLite gets ``executemany``, which its driver runs in C.

Each foreign key of a copied row is checked by a query on the table it refers to, planned once per
connection. On a table without statistics (never analyzed, or analyzed while empty: a new database)
PostgreSQL 15 plans ``agents``' check on the (tenant, team) index instead of the primary key and
scans all the tenant's agents per row, seconds for the skill links of a few thousand new agents
against a fraction of a second once ``agents`` has any statistics (figures: benchmarks/README.md,
Bulk import). So before copying, a referred table with none is analyzed (in this transaction:
ANALYZE counts its uncommitted rows too; it holds a lock that makes a second such ANALYZE wait for
this commit, which happens only until the first import has committed; a role that does not own the
table gets a warning and no statistics, as before).

These rows pass no ORM flush, so the flush listeners that notice organisation changes would
not see them; such a listener registers a hook with :func:`on_insert` (in its ``install()``)
and is told of every :func:`insert_many` before the rows are written.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import Table, bindparam, insert, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

Rows = Sequence[Mapping[str, Any]]
InsertHook = Callable[[Session, Table, Rows], None]

# Rows per executemany on SQLite: bounds the parameter list built for one call.
BATCH = 5000

_hooks: list[InsertHook] = []


def on_insert(hook: InsertHook) -> None:
    """Call ``hook(session, table, rows)`` before every :func:`insert_many` (idempotent)."""
    if hook not in _hooks:
        _hooks.append(hook)


def insert_many(session: Session, table: Table, rows: Rows) -> None:
    """INSERT ``rows`` (dicts of column values, all with the same keys) into ``table``."""
    if not rows:
        return
    for hook in _hooks:
        hook(session, table, rows)
    if session.get_bind().dialect.name == "postgresql":
        _analyze_unplanned(session, {fk.column.table.name for fk in table.foreign_keys})
        _copy(session, table, rows)
        return
    stmt = insert(table)
    for start in range(0, len(rows), BATCH):
        session.execute(stmt, list(rows[start : start + BATCH]))


_NO_STATISTICS = text(
    "SELECT c.relname FROM pg_class c "
    "WHERE c.oid = ANY(ARRAY(SELECT to_regclass(n) FROM unnest(:names) AS n)) "
    "AND c.reltuples <= 0"
).bindparams(bindparam("names", type_=postgresql.ARRAY(postgresql.TEXT)))


def _analyze_unplanned(session: Session, names: set[str]) -> None:
    """ANALYZE those of the tables ``names`` that have no statistics (see the module doc)."""
    if not names:
        return
    quote = session.get_bind().dialect.identifier_preparer.quote
    for name in sorted(session.scalars(_NO_STATISTICS, {"names": sorted(names)})):
        session.execute(text(f"ANALYZE {quote(name)}"))


def _copy(session: Session, table: Table, rows: Rows) -> None:
    from psycopg import sql

    connection = session.connection()
    dialect = connection.dialect
    columns = list(rows[0])
    processors = [
        table.c[name].type.dialect_impl(dialect).bind_processor(dialect) for name in columns
    ]
    statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
        sql.Identifier(table.name), sql.SQL(", ").join(map(sql.Identifier, columns))
    )
    driver = connection.connection.driver_connection
    assert driver is not None
    pairs = list(zip(columns, processors, strict=True))
    try:
        with driver.cursor() as cursor, cursor.copy(statement) as copy:
            for row in rows:
                copy.write_row([row[c] if p is None else p(row[c]) for c, p in pairs])
    except dialect.loaded_dbapi.Error as exc:
        # What SQLAlchemy does with an error of a statement it ran itself; no parameters (rows
        # may hold customer data, and the error map logs the exception).
        raise DBAPIError.instance(
            statement.as_string(driver),
            None,
            exc,
            dialect.loaded_dbapi.Error,
            hide_parameters=True,
            dialect=dialect,
        ) from exc
