"""/v1/shifts: when agents work."""

from __future__ import annotations

from api.routes.crud import Summaries, crud_router
from api.routes.intervals import window_filters
from api.schemas.intervals import ShiftCreate, ShiftOut, ShiftUpdate
from api.services.intervals import shifts

router = crud_router(
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
