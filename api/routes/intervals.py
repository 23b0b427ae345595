"""The list filters shifts and busy intervals share: one agent's, overlapping a window.

No ``from __future__ import annotations``: the query descriptions are the factory's argument.
"""

from collections.abc import Callable
from typing import Annotated

from fastapi import Query

from api.routes.crud import Filters
from api.schemas.common import TimestampIn


def window_filters(agent_description: str) -> Callable[..., Filters]:
    """A dependency reading ``agent``, ``start`` and ``end`` for ``intervals.list_``."""

    def filters(
        agent: Annotated[str | None, Query(description=agent_description)] = None,
        start: Annotated[TimestampIn | None, Query(description="Overlapping [start, end)")] = None,
        end: Annotated[TimestampIn | None, Query(description="Overlapping [start, end)")] = None,
    ) -> Filters:
        return {"agent": agent, "start": start, "end": end}

    return filters
