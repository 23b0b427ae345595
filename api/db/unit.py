"""Unit-of-work helpers for routes: commit, and retry once when a concurrent writer won a race.

A PUT-upsert of a new id can race another PUT of the same id (helpdesks retry webhooks): both
see "absent", both insert, one commit fails on the primary key. Re-running the work after a
rollback sees the winner's row and turns into an update, which is what the client meant.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

T = TypeVar("T")


def commit_with_retry(session: Session, work: Callable[[], T], *, attempts: int = 2) -> T:
    for attempt in range(1, attempts + 1):
        try:
            result = work()
            session.commit()
            return result
        except IntegrityError:
            session.rollback()
            if attempt == attempts:
                raise
    raise AssertionError("unreachable")  # pragma: no cover
