"""The demo tenant behind ``switchboard serve --demo``: a small, realistic organisation.

Created through the same services the API uses (so it obeys the same validation): two teams
working a rota around the clock, laid around the current time in each agent's own time zone,
some busy time, a bookable capability and a few open tickets. Whenever the server starts, the
README's first curl (assign ``DEMO-1``) names an agent, whatever the hour, the weekday or the
clocks changing.

``switchboard serve --demo`` run again reuses the demo tenant (:func:`open_demo`): its data is
kept, the demo agents' shifts from now on are laid afresh around the new current time, and the
demo's keys are minted anew while the previous demo keys are revoked. Keys are stored only as
hashes, so a key that was printed cannot be printed again; the alternative, keeping the
plaintext in a file next to the database, would put live secrets at rest beside the data they
open, has no "next to" on PostgreSQL and drifts when either is copied or deleted. A fresh set
costs only re-pasting ``$SB``, and the old set, printed to some terminal's scroll-back, stops
working. Keys made through the API under other names are left alone.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from api import org_version
from api.db.engine import make_engine, make_session_factory
from api.db.models import Agent, ApiKey, BusyInterval, Shift, Tenant
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
TOPICS = ["billing", "technical", "integrations"]
TEAMS = [
    ("emea", "Support EMEA", "Europe/Berlin"),
    ("amer", "Support Americas", "America/New_York"),
]
NAMES = ["Ana", "Ben", "Chloe", "Dev", "Elif", "Femi", "Gus", "Hana", "Ivo", "Jun", "Kai", "Lena"]
DEMO_TENANT_NAME = "Demo Support Co"
# The demo's keys, by the names they are stored under. "admin (bootstrap)" is the first admin
# key every tenant gets (api.keys.tenants.create): the demo prints it, so it is the demo's too.
ADMIN_KEY_NAME = "admin (bootstrap)"
HELPDESK_KEY_NAME = "demo helpdesk"
PLANNER_KEY_NAME = "demo planner"
DEMO_KEY_NAMES = (ADMIN_KEY_NAME, HELPDESK_KEY_NAME, PLANNER_KEY_NAME)

# The rota: each team's agents are split into ROTA_GROUPS groups; every group works
# SHIFT_HOURS a day, each starting ROTA_STEP_HOURS after the one before, so consecutive groups
# overlap by an hour of wall-clock time and the team is covered around the clock (a clock
# change of up to an hour only shrinks the overlap). Group 0's shift starts an hour before the
# current local hour, so it is on shift now. Laid for DEMO_DAYS days.
DEMO_DAYS = 3
ROTA_GROUPS = 3
ROTA_STEP_HOURS = 8
SHIFT_HOURS = ROTA_STEP_HOURS + 1
MEETING_MINUTES = 45


@dataclass(frozen=True)
class Demo:
    tenant_id: str
    admin_key: str
    helpdesk_key: str
    planner_key: str
    # True when an existing demo tenant was reused (its previous demo keys are revoked).
    reused: bool = False


def _wall_to_utc(wall: datetime, tz: tzinfo) -> datetime:
    """A naive local wall-clock time in ``tz`` as an aware UTC moment. A time the clocks skip
    or repeat is read with the offset in force before the change (``fold=0``)."""
    return wall.replace(tzinfo=tz).astimezone(UTC)


def rota_shifts(
    now: datetime, zone: str, group: int, days: int = DEMO_DAYS
) -> list[tuple[datetime, datetime]]:
    """The UTC ``[start, end)`` shifts of rota ``group`` in ``zone``, one a day for ``days``
    days, at the same local wall-clock time every day (so across a clock change too).

    Group 0's first shift starts an hour before the local hour ``now`` is in and so covers
    ``now``; group ``g`` starts ``g * ROTA_STEP_HOURS`` hours after group 0.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    tz = ZoneInfo(zone)
    anchor = now.astimezone(tz).replace(minute=0, second=0, microsecond=0, tzinfo=None, fold=0)
    out: list[tuple[datetime, datetime]] = []
    for day in range(days):
        start = anchor + timedelta(days=day, hours=group * ROTA_STEP_HOURS - 1)
        out.append(
            (_wall_to_utc(start, tz), _wall_to_utc(start + timedelta(hours=SHIFT_HOURS), tz))
        )
    return out


@dataclass(frozen=True)
class _Member:
    """A demo agent's place in the organisation: team, zone and rota group."""

    agent_id: str
    name: str
    team: str
    zone: str
    index: int  # position in NAMES
    rank: int  # position within the team

    @property
    def group(self) -> int:
        return self.rank % ROTA_GROUPS


def members() -> list[_Member]:
    """Every demo agent, alternating between the teams."""
    out = []
    for i, name in enumerate(NAMES):
        team, _, zone = TEAMS[i % len(TEAMS)]
        out.append(_Member(name.lower(), name, team, zone, i, i // len(TEAMS)))
    return out


def _levels(member: _Member, rng: random.Random) -> dict[str, int]:
    """Skills by rank: ranks 0-1 lead on billing, 2-3 on technical, 4-5 on integrations, each
    with the next topic as a second skill, so every rota group covers every topic."""
    lead = TOPICS[(member.rank // 2) % len(TOPICS)]
    second = TOPICS[(member.rank // 2 + 1) % len(TOPICS)]
    lang = "lang:de" if member.team == "emea" else "lang:es"
    levels = {
        "lang:en": 5,
        lead: rng.randint(3, 5),
        second: rng.randint(1, 3),
        lang: rng.randint(1, 5),
    }
    if member.index % 4 == 0:
        levels["tier:2"] = 3
    return levels


def _lay_rota(
    session: Session,
    tenant_id: str,
    now: datetime,
    rng: random.Random,
    staff: Sequence[tuple[_Member, str]],
) -> None:
    """Shifts for each ``(member, zone)`` around ``now``, and a 45-minute meeting in about half
    of them, never in a shift's first two hours (so nobody on shift now is in one)."""
    for member, zone in staff:
        for start, end in rota_shifts(now, zone, member.group):
            stamp = f"{start:%Y%m%dT%H%MZ}"
            shifts.create(
                session=session,
                tenant_id=tenant_id,
                data=ShiftCreate(
                    id=f"demo-{member.agent_id}-{stamp}",
                    agent=member.agent_id,
                    start=start,
                    end=end,
                ),
                now=now,
            )
            if rng.random() < 0.5:
                meeting = start + timedelta(hours=rng.randint(2, SHIFT_HOURS - 2))
                busy.create(
                    session=session,
                    tenant_id=tenant_id,
                    data=BusyCreate(
                        id=f"demo-meeting-{member.agent_id}-{stamp}",
                        agent=member.agent_id,
                        start=meeting,
                        end=meeting + timedelta(minutes=MEETING_MINUTES),
                    ),
                    now=now,
                )


def seed_demo(settings: Settings, *, now: datetime, seed: int = 7) -> Demo:
    """Create a new demo tenant in ``settings``' database and return its keys."""
    engine = make_engine(settings)
    try:
        with make_session_factory(engine)() as session:
            demo = _create(session, now, random.Random(seed))
            session.commit()
    finally:
        engine.dispose()
    return demo


def open_demo(settings: Settings, *, now: datetime, seed: int = 7) -> Demo:
    """The demo tenant of ``settings``' database, ready around ``now``: created when there is
    none, else reused (fresh keys, the previous demo keys revoked, the rota laid again around
    ``now``). One transaction either way."""
    engine = make_engine(settings)
    try:
        with make_session_factory(engine)() as session:
            tenant_id = find_demo_tenant(session)
            rng = random.Random(seed)
            if tenant_id is None:
                demo = _create(session, now, rng)
            else:
                demo = _reuse(session, tenant_id, now, rng)
            session.commit()
    finally:
        engine.dispose()
    return demo


def find_demo_tenant(session: Session) -> str | None:
    """The id of the demo tenant (the oldest tenant named like the demo that holds a demo
    helpdesk key: only the demo makes both), or None."""
    marked = select(ApiKey.tenant_id).where(ApiKey.name == HELPDESK_KEY_NAME)
    return session.scalars(
        select(Tenant.id)
        .where(Tenant.name == DEMO_TENANT_NAME, Tenant.id.in_(marked))
        .order_by(Tenant.created_at, Tenant.id)
        .limit(1)
    ).first()


def _mint(session: Session, tenant_id: str, now: datetime) -> tuple[str, str]:
    """New helpdesk and planner keys of the demo tenant."""
    _, helpdesk_key = api_keys.create(
        session=session,
        tenant_id=tenant_id,
        name=HELPDESK_KEY_NAME,
        scopes=[Scope.HELPDESK],
        now=now,
    )
    _, planner_key = api_keys.create(
        session=session, tenant_id=tenant_id, name=PLANNER_KEY_NAME, scopes=[Scope.PLANNER], now=now
    )
    return helpdesk_key, planner_key


def _create(session: Session, now: datetime, rng: random.Random) -> Demo:
    tenant, admin_key = tenants.create(session=session, name=DEMO_TENANT_NAME, now=now)
    tid = tenant.id
    helpdesk_key, planner_key = _mint(session, tid, now)
    for ident, name, kind in SKILLS:
        data = SkillCreate(id=ident, name=name, kind=kind)
        skills.create(session=session, tenant_id=tid, data=data, now=now)
    for ident, name, _zone in TEAMS:
        teams.create(session=session, tenant_id=tid, data=TeamCreate(id=ident, name=name), now=now)
    staff = members()
    for member in staff:
        agents.create(
            session=session,
            tenant_id=tid,
            data=AgentCreate(
                id=member.agent_id,
                name=member.name,
                team=member.team,
                skills=_levels(member, rng),
                capacity=rng.randint(3, 6),
                timezone=member.zone,
            ),
            now=now,
        )
    _lay_rota(session, tid, now, rng, [(m, m.zone) for m in staff])
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
    return Demo(tid, admin_key, helpdesk_key, planner_key)


def _reuse(session: Session, tenant_id: str, now: datetime, rng: random.Random) -> Demo:
    """Fresh keys for the demo tenant (the previous demo keys revoked) and its demo agents'
    rota laid again around ``now``; everything else is kept as it is."""
    previous = session.scalars(
        select(ApiKey.id).where(
            ApiKey.tenant_id == tenant_id,
            ApiKey.name.in_(DEMO_KEY_NAMES),
            ApiKey.revoked_at.is_(None),
        )
    ).all()
    for key_id in previous:
        api_keys.revoke(session=session, tenant_id=tenant_id, key_id=key_id, now=now)
    _, admin_key = api_keys.create(
        session=session, tenant_id=tenant_id, name=ADMIN_KEY_NAME, scopes=[Scope.ADMIN], now=now
    )
    helpdesk_key, planner_key = _mint(session, tenant_id, now)

    by_id = {m.agent_id: m for m in members()}
    # The demo agents still there, in the time zone they have now.
    staff = [
        (by_id[agent_id], zone)
        for agent_id, zone in session.execute(
            select(Agent.id, Agent.timezone)
            .where(Agent.tenant_id == tenant_id, Agent.id.in_(by_id))
            .order_by(Agent.id)
        )
    ]
    laid = [s for member, zone in staff for s in rota_shifts(now, zone, member.group)]
    if laid:
        since = min(start for start, _ in laid)
        agent_ids = [member.agent_id for member, _ in staff]
        # Their shifts from the new rota's start on give way to it (a shift still running then
        # would overlap it), and so do the demo's own meetings; busy time from anything else
        # (a booked call, an imported calendar) stays.
        stale: list[Shift | BusyInterval] = [
            *session.scalars(
                select(Shift).where(
                    Shift.tenant_id == tenant_id,
                    Shift.agent_id.in_(agent_ids),
                    Shift.end_at > since,
                )
            ),
            *session.scalars(
                select(BusyInterval).where(
                    BusyInterval.tenant_id == tenant_id,
                    BusyInterval.agent_id.in_(agent_ids),
                    BusyInterval.id.startswith("demo-meeting-"),
                    BusyInterval.end_at > since,
                )
            ),
        ]
        for row in stale:
            session.delete(row)
        session.flush()
    _lay_rota(session, tenant_id, now, rng, staff)
    org_version.bump(session, tenant_id)
    return Demo(tenant_id, admin_key, helpdesk_key, planner_key, reused=True)


# The demo's mix of priorities (drawn uniformly: "normal" twice as often as each other).
_PRIORITIES = [
    TicketPriority.LOW,
    TicketPriority.NORMAL,
    TicketPriority.NORMAL,
    TicketPriority.HIGH,
    TicketPriority.URGENT,
]


def _seed_tickets(session: Session, tenant_id: str, now: datetime, rng: random.Random) -> None:
    """DEMO-1 .. DEMO-20, alternating between the teams. DEMO-1, the README's first curl, is a
    billing ticket in English that the EMEA group on shift now can take."""
    for n in range(1, 21):
        team = "emea" if n % 2 else "amer"
        created = now - timedelta(minutes=rng.randint(5, 600))
        required = {"billing": 2} if n == 1 else {rng.choice(TOPICS): rng.randint(1, 3)}
        data = TicketIn(
            team=team,
            required_skills={**required, "lang:en": 3},
            priority=TicketPriority.HIGH if n == 1 else rng.choice(_PRIORITIES),
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


def demo_instructions(demo: Demo, *, base_url: str, now: datetime) -> str:
    """What ``switchboard serve --demo`` prints once the server accepts connections."""
    due = (now + timedelta(hours=8)).isoformat(timespec="seconds")
    if demo.reused:
        state = (
            "is ready (reused: shifts laid around now, new keys minted, "
            "the previous demo keys are revoked)"
        )
    else:
        state = "is ready"
    return f"""
Demo tenant {demo.tenant_id} {state}. These keys are shown once:

  admin     {demo.admin_key}
  helpdesk  {demo.helpdesk_key}
  planner   {demo.planner_key}

Try it (API docs at {base_url}/docs):

  export SB={demo.helpdesk_key}

  # Assign one ticket now: the answer names the agent, the reasons and the alternatives.
  curl -s -X POST {base_url}/v1/tickets/DEMO-1/assign -H "Authorization: Bearer $SB"

  # Re-optimize the whole queue as a job, then follow the job's URL from the answer.
  curl -s -X POST {base_url}/v1/queue/optimize -H "Authorization: Bearer $SB" \\
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
