"""/v1/busy: when agents cannot work (only when, never what)."""

from __future__ import annotations

from api.routes.crud import Summaries, crud_router
from api.routes.intervals import window_filters
from api.schemas.intervals import BusyCreate, BusyOut, BusyUpdate
from api.services.intervals import busy

router = crud_router(
    prefix="/v1/busy",
    tag="busy",
    noun="busy",
    nouns="busy",
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
