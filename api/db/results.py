"""What a statement's result says beyond its rows."""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import CursorResult, Result


def affected_rows(result: Result[Any]) -> int:
    """The rows an UPDATE or DELETE without RETURNING changed (what a compare-and-set reads).

    ``Session.execute`` is typed as returning a ``Result``, since it cannot promise a cursor
    for every statement it runs; for such a statement it returns a ``CursorResult``, as
    SQLAlchemy documents, and the cast says so.
    """
    return cast(CursorResult[Any], result).rowcount
