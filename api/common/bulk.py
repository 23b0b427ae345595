"""Bulk import: many rows in one transaction, all or nothing.

Rows come as a JSON array or CSV. Each row is validated with the resource's create schema, then
the valid ones are created together by the service's ``create_many``, which refuses what its
single ``create`` would (ids taken, unknown references) with one query per table it looks in,
and inserts in batches. Every failure is collected (row, field, reason) and if there is any,
nothing is written and the client gets them all at once in one 422.

CSV cells are strings: a CSV row (a :class:`CsvRow`) is validated with pydantic's
``model_validate_strings``, which parses ``"3"`` as the integer 3 even where the schema's
integers are strict, as JSON bodies are (there ``true`` and ``"3"`` are no integer). A
``{skill: level}`` column is written ``billing=3;lang:de=5``. Empty cells are omitted, so the
schema's default applies. Errors name rows as :data:`ROW_MEANING` says (CSV: the spreadsheet's
row number). A cell longer than :data:`MAX_CSV_CELL` characters is refused naming
its row and column; a JSON body nested deeper than ``api.common.json_depth.MAX_DEPTH`` is refused
before it is parsed.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from api.common import json_depth
from api.errors import FieldError, InvalidInput, validation_field_errors

S = TypeVar("S", bound=BaseModel)

# Rows are named as the client's own tools show them. CSV: as a spreadsheet numbers its lines,
# the header being row 1, so the first data row is row 2 (a record whose quoted cell spans
# lines is still one row). A JSON array: the element's 0-based index (``.[row]`` in jq).
CSV_FIRST_ROW = 2
ROW_MEANING = (
    "Bulk imports: the offending row. CSV: the row as a spreadsheet numbers it (the header is "
    "row 1, the first data row is row 2). JSON array: the element's 0-based index."
)

LEVEL_COLUMNS = frozenset({"skills", "requirements", "required_skills", "channel_capacity"})
# The csv module's own default field limit (128 KiB), checked here rather than by the reader:
# the reader's ``_csv.Error`` past it would be a 500 naming neither the row nor the column.
MAX_CSV_CELL = 131_072
# What the reader itself is let through: any cell of a body the gate admitted (api/http/gate.py
# caps bodies at tens of MiB), so a long cell reaches our check with its row and column.
_CSV_READER_FIELD_LIMIT = 2**31 - 1
# Column names are echoed in every error of their column, once per row: a long one would turn
# a small body into a long answer.
MAX_CSV_COLUMN_NAME = 100


def parse_json_rows(body: bytes) -> list[dict[str, Any]]:
    json_depth.check(body)  # the gate checked JSON bodies; an uploaded .json file it did not
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
            pair = "channel=count" if column == "channel_capacity" else "skill=level"
            return FieldError(column, f"expected {pair} pairs separated by ';', got {part!r}", row)
        out[skill.strip()] = level.strip()
    return out


class CsvRow(dict[str, Any]):
    """A row read from CSV: its values are strings (or ``{skill: "level"}`` maps) to be parsed
    as the schema's types, not JSON values to be taken as they are."""


def _records(
    reader: csv.DictReader[str],
) -> Iterator[tuple[int, dict[str | Any, str | Any] | csv.Error]]:
    """(spreadsheet row, record) of each data record; a malformed one ends it with its error."""
    i = CSV_FIRST_ROW
    while True:
        try:
            raw = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield i, exc
            return
        yield i, raw
        i += 1


def parse_csv_rows(body: bytes) -> list[dict[str, Any]]:
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InvalidInput.one("body", "CSV must be UTF-8") from None
    # The limit is process-wide (the csv module has no per-reader one); raising it only lets
    # longer cells through to the check below, and every caller wants the same value.
    csv.field_size_limit(_CSV_READER_FIELD_LIMIT)
    # newline="": the csv module reads line ends itself (\n, \r\n, a lone \r, and those inside
    # quoted cells), as its documentation asks of every file it is given.
    reader = csv.DictReader(io.StringIO(text, newline=""))
    try:
        fieldnames = reader.fieldnames
    except csv.Error as exc:
        raise InvalidInput.one("body", f"not valid CSV in the header row ({exc})") from None
    if not fieldnames:
        raise InvalidInput.one("body", "CSV needs a header row naming the columns")
    for position, name in enumerate(fieldnames):
        if len(name) > MAX_CSV_COLUMN_NAME:
            raise InvalidInput.one(
                "body", f"header column {position} is longer than {MAX_CSV_COLUMN_NAME} characters"
            )
    rows: list[dict[str, Any]] = []
    errors: list[FieldError] = []
    for i, raw in _records(reader):
        if isinstance(raw, csv.Error):
            errors.append(FieldError("body", f"not valid CSV ({raw})", i))
            break  # the reader cannot go on past a malformed record
        if None in raw:
            errors.append(FieldError("body", "more cells than header columns", i))
            continue
        row = CsvRow()
        for column, cell in raw.items():
            if cell is None or cell.strip() == "":
                continue
            if len(cell) > MAX_CSV_CELL:
                errors.append(FieldError(column, f"must be at most {MAX_CSV_CELL} characters", i))
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
            if isinstance(raw, CsvRow):
                valid.append(schema.model_validate_strings(raw))
            else:
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
        if rows and isinstance(rows[0], CsvRow):
            errors = [e if e.row is None else e.at_row(e.row + CSV_FIRST_ROW) for e in errors]
        raise InvalidInput(errors, detail=f"{len(errors)} problem(s); nothing was imported")
    return ids
