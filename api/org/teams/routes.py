"""/v1/teams: the tenant's teams; each owns the tickets no agent has taken yet."""

from __future__ import annotations

from api.org.crud import Summaries, crud_router
from api.org.teams import service as teams
from api.org.teams.schemas import TeamCreate, TeamOut, TeamUpdate

router = crud_router(
    prefix="/v1/teams",
    tag="teams",
    noun="team",
    nouns="teams",
    service=teams,
    create=TeamCreate,
    update=TeamUpdate,
    out=TeamOut,
    summaries=Summaries(
        create="Create a team",
        import_="Import teams (JSON or CSV), all or nothing",
        list="List teams (ordered by id)",
        read="Read a team",
        update="Update a team",
        delete="Delete a team without agents or tickets",
    ),
)
