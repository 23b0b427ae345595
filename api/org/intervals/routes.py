"""/v1/shifts (when agents work) and /v1/busy (when they cannot: only when, never what).

Both are lists of one agent's ``[start, end)`` with the same filters (one agent's, overlapping a
window), built by the CRUD factory over :mod:`api.org.intervals.service`.

No ``from __future__ import annotations``: the query descriptions are the factory's argument.
"""

from collections.abc import Callable
from typing import Annotated

from fastapi import Query

from api.common.schemas import TimestampIn
from api.org.crud import Filters, Summaries, crud_router
from api.org.intervals.schemas import (
    BusyCreate,
    BusyOut,
    BusyUpdate,
    ShiftCreate,
    ShiftOut,
    ShiftUpdate,
)
from api.org.intervals.service import busy, shifts


def window_filters(agent_description: str) -> Callable[..., Filters]:
    """A dependency reading ``agent``, ``start`` and ``end`` for ``intervals.list_``."""

    def filters(
        agent: Annotated[str | None, Query(description=agent_description)] = None,
        start: Annotated[TimestampIn | None, Query(description="Overlapping [start, end)")] = None,
        end: Annotated[TimestampIn | None, Query(description="Overlapping [start, end)")] = None,
    ) -> Filters:
        return {"agent": agent, "start": start, "end": end}

    return filters


shifts_router = crud_router(
    prefix="/v1/shifts",
    tag="shifts",
    noun="shift",
    nouns="shifts",
    service=shifts,
    create=ShiftCreate,
    update=ShiftUpdate,
    out=ShiftOut,
    summaries=Summaries(
        create="Create a shift",
        import_="Import shifts (JSON or CSV: agent,start,end), all or nothing",
        list="List shifts (ordered by id), optionally of one agent or a window",
        read="Read a shift",
        update="Update a shift",
        delete="Delete a shift",
    ),
    list_filters=window_filters("Only this agent's shifts"),
)

busy_router = crud_router(
    prefix="/v1/busy",
    tag="busy",
    noun="busy",
    nouns="busy",
    label=("busy interval", "busy intervals"),
    service=busy,
    create=BusyCreate,
    update=BusyUpdate,
    out=BusyOut,
    summaries=Summaries(
        create="Create a busy interval",
        import_="Import busy intervals (JSON or CSV: agent,start,end,source), all or nothing",
        list="List busy intervals (ordered by id), optionally of one agent or a window",
        read="Read a busy interval",
        update="Update a busy interval",
        delete="Delete a busy interval",
    ),
    list_filters=window_filters("Only this agent's busy time"),
)
