"""The benchmark tenant: one tenant with agents on shift now and a pool of unassigned tickets,
seeded through the same services the API uses; and putting the pool back to unassigned between
runs, so every run assigns fresh tickets."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine, update
from sqlalchemy.orm import Session

from api.db import migrate
from api.db.engine import make_engine, make_session_factory
from api.db.models import Ticket
from api.enums import Scope, SkillKind, TicketPriority, TicketStatus
from api.keys import service as api_keys
from api.keys import tenants
from api.org.agents import service as agents
from api.org.agents.schemas import AgentCreate
from api.org.intervals.schemas import ShiftCreate
from api.org.intervals.service import shifts
from api.org.skills import service as skills
from api.org.skills.schemas import SkillCreate
from api.org.teams import service as teams
from api.org.teams.schemas import TeamCreate
from api.settings import Environment, Settings
from api.tickets import service as tickets
from api.tickets.schemas import TicketIn
from benchmarks.harness.databases import PG_BENCH_DB, reset_postgres, sqlite_url

PRODUCTS = ("billing", "technical", "integrations", "mobile", "security", "reporting")
LANGUAGES = ("lang:en", "lang:de", "lang:es", "lang:fr")
TIERS = ("tier:2",)
TEAM_IDS = ("emea", "amer", "apac", "enterprise", "smb")


@dataclass(frozen=True)
class Seeded:
    tenant_id: str
    helpdesk_key: str
    ticket_ids: tuple[str, ...]
    agents: int


def seed_tenant(
    settings: Settings,
    *,
    now: datetime,
    n_agents: int = 200,
    n_tickets: int = 6000,
    seed: int = 7,
    batch: int = 500,
) -> Seeded:
    """One tenant with ``n_agents`` agents on shift at ``now`` and ``n_tickets`` unassigned,
    active tickets, written through the same services the API uses.

    Capacity is sized so the whole pool fits (every assignment in a run can go to an agent
    rather than overflow into a team queue), and effort is small enough that backlogs stay
    within the shifts.
    """
    rng = random.Random(seed)
    capacity = max(5, -(-n_tickets // n_agents) + 10)
    engine = make_engine(settings)
    try:
        factory = make_session_factory(engine)
        with factory() as session:
            tenant, _ = tenants.create(session=session, name="Benchmark Co", now=now)
            _, helpdesk_key = api_keys.create(
                session=session,
                tenant_id=tenant.id,
                name="benchmark helpdesk",
                scopes=[Scope.HELPDESK],
                now=now,
            )
            tid = tenant.id
            for ident in PRODUCTS:
                _skill(session, tid, ident, SkillKind.SKILL, now)
            for ident in LANGUAGES:
                _skill(session, tid, ident, SkillKind.LANGUAGE, now)
            for ident in TIERS:
                _skill(session, tid, ident, SkillKind.TIER, now)
            for ident in TEAM_IDS:
                teams.create(
                    session=session, tenant_id=tid, data=TeamCreate(id=ident, name=ident), now=now
                )
            for i in range(n_agents):
                agent_id = f"agent-{i:04d}"
                levels = {
                    "lang:en": rng.randint(3, 5),
                    rng.choice(LANGUAGES[1:]): rng.randint(1, 5),
                }
                for product in rng.sample(PRODUCTS, 3):
                    levels[product] = rng.randint(1, 5)
                if i % 5 == 0:
                    levels["tier:2"] = 3
                agents.create(
                    session=session,
                    tenant_id=tid,
                    data=AgentCreate(
                        id=agent_id,
                        name=f"Agent {i}",
                        team=TEAM_IDS[i % len(TEAM_IDS)],
                        skills=levels,
                        capacity=capacity,
                    ),
                    now=now,
                )
                # Today's shift started an hour ago; two more days follow.
                for day in range(3):
                    start = now - timedelta(hours=1) + timedelta(days=day)
                    shifts.create(
                        session=session,
                        tenant_id=tid,
                        data=ShiftCreate(
                            agent=agent_id, start=start, end=start + timedelta(hours=10)
                        ),
                        now=now,
                    )
            session.commit()
            ticket_ids = []
            for n in range(n_tickets):
                ticket_id = f"BENCH-{n:06d}"
                created = now - timedelta(minutes=rng.randint(1, 240))
                required = {rng.choice(PRODUCTS): rng.randint(1, 3), "lang:en": rng.randint(1, 3)}
                tickets.upsert(
                    session=session,
                    tenant_id=tid,
                    ticket_id=ticket_id,
                    data=TicketIn(
                        team=rng.choice(TEAM_IDS),
                        required_skills=required,
                        priority=rng.choice(list(TicketPriority)),
                        status=TicketStatus.NEW,
                        created_at=created,
                        first_response_due=created + timedelta(hours=rng.randint(1, 8)),
                        resolution_due=created + timedelta(days=rng.randint(1, 3)),
                        effort_minutes=rng.randint(3, 12),
                        owner_agent=None,
                        requester=f"customer-{rng.randint(1, 500)}@example.com",
                    ),
                    now=now,
                    actor="benchmark-seed",
                )
                ticket_ids.append(ticket_id)
                if (n + 1) % batch == 0:
                    session.commit()
            session.commit()
    finally:
        engine.dispose()
    return Seeded(tid, helpdesk_key, tuple(ticket_ids), n_agents)


def _skill(session: Session, tenant_id: str, ident: str, kind: SkillKind, now: datetime) -> None:
    skills.create(
        session=session, tenant_id=tenant_id, data=SkillCreate(id=ident, kind=kind), now=now
    )


def reset_assignments(engine: Engine, tenant_id: str) -> None:
    """Every ticket of the tenant back to new and unassigned, so each run assigns fresh ones.

    A bulk UPDATE, not the API: the history keeps growing across runs (as it would in
    production) but loads start from zero each time.
    """
    with Session(engine) as session:
        session.execute(
            update(Ticket)
            .where(Ticket.tenant_id == tenant_id)
            .values(owner_agent_id=None, status=TicketStatus.NEW)
        )
        session.commit()
    # The UPDATE leaves a dead version of every ticket behind. A production database has
    # autovacuum to clear them (this machine's PostgreSQL runs with it off) and fresh statistics;
    # without this, each run measures the previous runs' bloat (the loads query scanned 170k
    # dead rows, 9 ms instead of 0.6) and plans made for an empty table.
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM ANALYZE tickets, ticket_skills, ticket_events, agents")


def prepare(
    backend: str,
    workdir: Path,
    *,
    n_agents: int,
    n_tickets: int,
    now: datetime,
    pg_database: str = PG_BENCH_DB,
) -> tuple[str, Seeded]:
    """A migrated, seeded database of ``backend``: (its URL, what was seeded)."""
    workdir.mkdir(parents=True, exist_ok=True)
    url = sqlite_url(workdir) if backend == "sqlite" else reset_postgres(dbname=pg_database)
    migrate.upgrade(url)
    settings = Settings(database_url=url, environment=Environment.TEST)
    return url, seed_tenant(settings, now=now, n_agents=n_agents, n_tickets=n_tickets)
