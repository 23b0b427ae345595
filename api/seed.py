"""The demo tenant behind ``switchboard serve --demo``: a small, realistic organisation.

Created through the same services the API uses (so it obeys the same validation), with shifts
laid in each agent's own time zone from today on, some busy time, a bookable capability and a
few open tickets. Prints the keys once, with curl commands a person can paste.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from api.db.engine import make_engine, make_session_factory
from api.enums import Scope, SkillKind, TicketPriority, TicketStatus
from api.keys import service as api_keys
from api.keys import tenants
from api.org.agents import service as agents
from api.org.agents.schemas import AgentCreate
from api.org.capabilities import service as capabilities
from api.org.capabilities.schemas import CapabilityCreate
from api.org.intervals.schemas import BusyCreate, ShiftCreate
from api.org.intervals.service import busy, shifts
from api.org.skills import service as skills
from api.org.skills.schemas import SkillCreate
from api.org.teams import service as teams
from api.org.teams.schemas import TeamCreate
from api.settings import Settings
from api.tickets import service as tickets
from api.tickets.schemas import TicketIn

SKILLS = [
    ("billing", "Billing", SkillKind.SKILL),
    ("technical", "Technical support", SkillKind.SKILL),
    ("integrations", "Integrations", SkillKind.SKILL),
    ("lang:en", "English", SkillKind.LANGUAGE),
    ("lang:de", "German", SkillKind.LANGUAGE),
    ("lang:es", "Spanish", SkillKind.LANGUAGE),
    ("tier:2", "Second tier", SkillKind.TIER),
]
TEAMS = [
    ("emea", "Support EMEA", "Europe/Berlin"),
    ("amer", "Support Americas", "America/New_York"),
]
NAMES = ["Ana", "Ben", "Chloe", "Dev", "Elif", "Femi", "Gus", "Hana", "Ivo", "Jun", "Kai", "Lena"]
DEMO_DAYS = 3


@dataclass(frozen=True)
class Demo:
    tenant_id: str
    admin_key: str
    helpdesk_key: str
    planner_key: str


def _work_day(day: datetime, zone: str) -> tuple[datetime, datetime]:
    tz = ZoneInfo(zone)
    local = day.astimezone(tz).date()
    start = datetime.combine(local, time(9), tzinfo=tz)
    return start, datetime.combine(local, time(17), tzinfo=tz)


def seed_demo(settings: Settings, *, now: datetime, seed: int = 7) -> Demo:
    """Create the demo tenant in ``settings``' database and return its keys."""
    rng = random.Random(seed)
    engine = make_engine(settings)
    try:
        with make_session_factory(engine)() as session:
            tenant, admin_key = tenants.create(session=session, name="Demo Support Co", now=now)
            tid = tenant.id
            _, helpdesk_key = api_keys.create(
                session=session,
                tenant_id=tid,
                name="demo helpdesk",
                scopes=[Scope.HELPDESK],
                now=now,
            )
            _, planner_key = api_keys.create(
                session=session,
                tenant_id=tid,
                name="demo planner",
                scopes=[Scope.PLANNER],
                now=now,
            )
            for ident, name, kind in SKILLS:
                data = SkillCreate(id=ident, name=name, kind=kind)
                skills.create(session=session, tenant_id=tid, data=data, now=now)
            for ident, name, _zone in TEAMS:
                teams.create(
                    session=session, tenant_id=tid, data=TeamCreate(id=ident, name=name), now=now
                )
            for i, name in enumerate(NAMES):
                team, _, zone = TEAMS[i % len(TEAMS)]
                lang = "lang:de" if team == "emea" else "lang:es"
                levels = {
                    "lang:en": 5,
                    rng.choice(["billing", "technical", "integrations"]): rng.randint(2, 5),
                    lang: rng.randint(1, 5),
                }
                if i % 4 == 0:
                    levels["tier:2"] = 3
                agent_id = name.lower()
                agents.create(
                    session=session,
                    tenant_id=tid,
                    data=AgentCreate(
                        id=agent_id,
                        name=name,
                        team=team,
                        skills=levels,
                        capacity=rng.randint(3, 6),
                        timezone=zone,
                    ),
                    now=now,
                )
                for d in range(DEMO_DAYS):
                    start, end = _work_day(now + timedelta(days=d), zone)
                    shifts.create(
                        session=session,
                        tenant_id=tid,
                        data=ShiftCreate(agent=agent_id, start=start, end=end),
                        now=now,
                    )
                    if rng.random() < 0.5:
                        meeting = start + timedelta(hours=rng.randint(1, 6))
                        busy.create(
                            session=session,
                            tenant_id=tid,
                            data=BusyCreate(
                                agent=agent_id, start=meeting, end=meeting + timedelta(minutes=45)
                            ),
                            now=now,
                        )
            capabilities.create(
                session=session,
                tenant_id=tid,
                data=CapabilityCreate(
                    id="billing-call-de",
                    name="Billing call in German",
                    requirements={"billing": 3, "lang:de": 4},
                ),
                now=now,
            )
            _seed_tickets(session, tid, now, rng)
            session.commit()
    finally:
        engine.dispose()
    return Demo(tid, admin_key, helpdesk_key, planner_key)


# The demo's mix of priorities (drawn uniformly: "normal" twice as often as each other).
_PRIORITIES = [
    TicketPriority.LOW,
    TicketPriority.NORMAL,
    TicketPriority.NORMAL,
    TicketPriority.HIGH,
    TicketPriority.URGENT,
]


def _seed_tickets(session: Session, tenant_id: str, now: datetime, rng: random.Random) -> None:
    topics = ["billing", "technical", "integrations"]
    for n in range(1, 21):
        team = "emea" if n % 2 else "amer"
        created = now - timedelta(minutes=rng.randint(5, 600))
        data = TicketIn(
            team=team,
            required_skills={rng.choice(topics): rng.randint(1, 4), "lang:en": 3},
            priority=rng.choice(_PRIORITIES),
            status=TicketStatus.NEW,
            created_at=created,
            first_response_due=created + timedelta(hours=4),
            resolution_due=created + timedelta(hours=24),
            effort_minutes=rng.choice([15, 30, 45, 60, 90]),
            owner_agent=None,
            requester=f"customer-{rng.randint(1, 9)}@example.com",
        )
        tickets.upsert(
            session=session,
            tenant_id=tenant_id,
            ticket_id=f"DEMO-{n}",
            data=data,
            now=now,
            actor="demo-seed",
        )


def print_demo_instructions(demo: Demo, *, base_url: str) -> None:
    due = (datetime.now(UTC) + timedelta(hours=8)).isoformat(timespec="seconds")
    print(
        f"""
Demo tenant {demo.tenant_id} is ready. These keys are shown once:

  admin     {demo.admin_key}
  helpdesk  {demo.helpdesk_key}
  planner   {demo.planner_key}

Try it (API docs at {base_url}/docs):

  export SB={demo.helpdesk_key}

  # Assign one ticket now: the answer names the agent, the reasons and the alternatives.
  curl -s -X POST {base_url}/v1/tickets/DEMO-1/assign -H "Authorization: Bearer $SB"

  # Re-optimize the whole queue as a job, then follow the job's URL from the answer.
  curl -s -X POST {base_url}/v1/queue/optimize -H "Authorization: Bearer $SB" \
       -H 'Content-Type: application/json' -d '{{"time_limit_s": 5}}'

  # More: the organisation, the open queue, upserting a ticket, its history.
  curl -s {base_url}/v1/agents -H "Authorization: Bearer $SB"
  curl -s "{base_url}/v1/tickets?status=new" -H "Authorization: Bearer $SB"
  curl -s -X PUT {base_url}/v1/tickets/HD-1001 -H "Authorization: Bearer $SB" \\
       -H 'Content-Type: application/json' \\
       -d '{{"team": "emea", "required_skills": {{"billing": 3, "lang:de": 3}},
            "priority": "high", "status": "new", "effort_minutes": 30,
            "owner_agent": null, "resolution_due": "{due}"}}'
  curl -s {base_url}/v1/tickets/HD-1001/history -H "Authorization: Bearer $SB"
"""
    )
