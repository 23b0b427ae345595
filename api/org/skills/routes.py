"""/v1/skills: the tenant's skill catalogue (skills, languages, tiers)."""

from __future__ import annotations

from api.org.crud import Summaries, crud_router
from api.org.skills import service as skills
from api.org.skills.schemas import SkillCreate, SkillOut, SkillUpdate

router = crud_router(
    prefix="/v1/skills",
    tag="skills",
    noun="skill",
    nouns="skills",
    service=skills,
    create=SkillCreate,
    update=SkillUpdate,
    out=SkillOut,
    summaries=Summaries(
        create="Create a skill",
        import_="Import skills (JSON or CSV), all or nothing",
        list="List skills (ordered by id)",
        read="Read a skill",
        update="Update a skill",
        delete="Delete a skill no one requires",
    ),
)
