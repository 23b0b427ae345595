"""Migrations from empty, on both backends: upgrade head, downgrade base, upgrade again.

After the upgrade the database must match the rows the code declares (autogenerate finds no
difference), so a model changed without a migration fails here.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect

import api.db.models
import api.db.planning  # noqa: F401  (scenario runs)
from api.db import migrate
from api.db.base import Base
from tests.api.conftest import BACKENDS, PgSchema


@contextmanager
def empty_database(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.db'}"
        return
    with PgSchema(request.getfixturevalue("pg_url")) as schema:
        yield schema.url


def tables(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def drift(url: str) -> list[object]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            diffs = compare_metadata(context, Base.metadata)
    finally:
        engine.dispose()
    known = set(Base.metadata.tables)
    # Tables other packages add by their own migrations are not this metadata's business.
    return [d for d in diffs if _table_of(d) in known]


def _table_of(diff: object) -> str | None:
    if isinstance(diff, list):  # modify_* ops: [(op, schema, table, column, ...), ...]
        return str(diff[0][2])
    assert isinstance(diff, tuple)
    op, obj = diff[0], diff[1]
    if op in ("add_column", "remove_column"):
        return str(diff[2])
    if op.endswith("_table"):
        return str(obj.name)
    if op.endswith("_fk"):
        return str(obj.parent.name)
    return str(obj.table.name)  # indexes and constraints


@pytest.mark.parametrize("backend", BACKENDS)
def test_upgrade_downgrade_upgrade_from_empty(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    with empty_database(backend, tmp_path, request) as url:
        migrate.upgrade(url)
        declared = set(Base.metadata.tables)
        assert declared <= tables(url)
        assert drift(url) == []
        migrate.downgrade(url, "base")
        assert tables(url) <= {"alembic_version"}
        migrate.upgrade(url)
        assert declared <= tables(url)
        assert drift(url) == []
