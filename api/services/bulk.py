"""Bulk import: many rows in one transaction, all or nothing.

Rows come as a JSON array or CSV. Each row is validated with the resource's create schema, then
the valid ones are created together by the service's ``create_many``, which refuses what its
single ``create`` would (ids taken, unknown references) with one query per table it looks in,
and inserts in batches. Every failure is collected (row, field, reason) and if there is any,
nothing is written and the client gets them all at once in one 422.

CSV cells are strings; pydantic's lax mode turns ``"3"`` into 3 and ISO strings into datetimes.
A ``{skill: level}`` column is written ``billing=3;lang:de=5``. Empty cells are omitted, so the
schema's default applies.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from api.errors import FieldError, InvalidInput, validation_field_errors

S = TypeVar("S", bound=BaseModel)

LEVEL_COLUMNS = frozenset({"skills", "requirements", "required_skills"})


def parse_json_rows(body: bytes) -> list[dict[str, Any]]:
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise InvalidInput.one("body", "not valid JSON") from None
    if not isinstance(data, list):
        raise InvalidInput.one("body", "must be a JSON array of objects")
    bad = [
        FieldError("body", "must be an object", i)
        for i, r in enumerate(data)
        if not isinstance(r, dict)
    ]
    if bad:
        raise InvalidInput(bad)
    return data


def _levels_cell(cell: str, row: int, column: str) -> dict[str, Any] | FieldError:
    out: dict[str, Any] = {}
    for part in filter(None, (p.strip() for p in cell.split(";"))):
        skill, sep, level = part.rpartition("=")
        if not sep or not skill.strip():
            return FieldError(
                column, f"expected skill=level pairs separated by ';', got {part!r}", row
            )
        out[skill.strip()] = level.strip()
    return out


def parse_csv_rows(body: bytes) -> list[dict[str, Any]]:
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InvalidInput.one("body", "CSV must be UTF-8") from None
    reader = csv.DictReader(io.StringIO(text))
    if not reader.fieldnames:
        raise InvalidInput.one("body", "CSV needs a header row naming the columns")
    rows: list[dict[str, Any]] = []
    errors: list[FieldError] = []
    for i, raw in enumerate(reader):
        if None in raw:
            errors.append(FieldError("body", "more cells than header columns", i))
            continue
        row: dict[str, Any] = {}
        for column, cell in raw.items():
            if cell is None or cell.strip() == "":
                continue
            if column in LEVEL_COLUMNS:
                parsed = _levels_cell(cell, i, column)
                if isinstance(parsed, FieldError):
                    errors.append(parsed)
                    continue
                row[column] = parsed
            else:
                row[column] = cell.strip()
        rows.append(row)
    if errors:
        raise InvalidInput(errors)
    return rows


def import_rows(
    rows: Iterable[dict[str, Any]],
    schema: type[S],
    create_many: Callable[[list[S]], list[str]],
    *,
    max_rows: int,
) -> list[str]:
    """Create every row or raise :class:`InvalidInput` listing all failures, in row order
    (nothing written survives: the caller rolls back). Returns the ids created, in input order.

    ``create_many(valid)`` creates the rows that passed the schema, all or nothing, returning
    their ids or raising :class:`InvalidInput` whose errors carry the index in ``valid``. It
    runs even when some rows failed the schema, so one answer names every problem; its
    effects are then rolled back with the rest.
    """
    rows = list(rows)
    if not rows:
        raise InvalidInput.one("body", "no rows to import")
    if len(rows) > max_rows:
        raise InvalidInput.one("body", f"at most {max_rows} rows per import, got {len(rows)}")
    errors: list[FieldError] = []
    valid: list[S] = []
    positions: list[int] = []  # valid[k] is row positions[k] of the import
    for i, raw in enumerate(rows):
        try:
            valid.append(schema.model_validate(raw))
        except ValidationError as exc:
            errors.extend(e.at_row(i) for e in validation_field_errors(exc.errors()))
            continue
        positions.append(i)
    ids: list[str] = []
    if valid:
        try:
            ids = create_many(valid)
        except InvalidInput as exc:
            errors.extend(e if e.row is None else e.at_row(positions[e.row]) for e in exc.errors)
    if errors:
        # Stable: a row's own errors keep their order. (An error of no row comes first.)
        errors.sort(key=lambda e: -1 if e.row is None else e.row)
        raise InvalidInput(errors, detail=f"{len(errors)} problem(s); nothing was imported")
    return ids
