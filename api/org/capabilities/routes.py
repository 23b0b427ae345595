"""/v1/capabilities: bookable requirement sets; calls are booked against these, never a person."""

from __future__ import annotations

from api.org.capabilities import service as capabilities
from api.org.capabilities.schemas import CapabilityCreate, CapabilityOut, CapabilityUpdate
from api.org.crud import Summaries, crud_router

router = crud_router(
    prefix="/v1/capabilities",
    tag="capabilities",
    noun="capability",
    nouns="capabilities",
    service=capabilities,
    create=CapabilityCreate,
    update=CapabilityUpdate,
    out=CapabilityOut,
    summaries=Summaries(
        create="Create a capability",
        import_="Import capabilities (CSV requirements: 'billing=3;lang:de=4'), all or nothing",
        list="List capabilities (ordered by id)",
        read="Read a capability",
        update="Update a capability",
        delete="Delete a capability",
    ),
)
