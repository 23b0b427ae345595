"""Small seeded support organisations for the batch optimizer's tests and profiling.

``random_problem`` builds a Problem with shifts across time zones, busy time, skill levels,
SLA deadlines (some already overdue), owners and previous agents, from an integer seed only.
``tight=True`` sizes the agents' free capacity to about the queue's demand.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np

from solver.problem import Agent, AgentStatus, Interval, Problem, Skill, Team, Ticket

NOW = datetime(2026, 3, 27, 6, 0, tzinfo=UTC)  # a Friday, two days before Europe's DST change
ZONES = ("UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata")
ZONE_OFFSET_H = {"UTC": 0, "Europe/Berlin": -1, "America/New_York": 4, "Asia/Kolkata": -5}


def random_problem(
    seed: int,
    *,
    n_agents: int = 8,
    n_tickets: int = 30,
    n_skills: int = 6,
    n_teams: int = 2,
    tight: bool = False,
    days: int = 3,
) -> Problem:
    rng = np.random.default_rng(seed)
    skills = tuple(Skill(f"s{i}") for i in range(n_skills))
    teams = tuple(Team(f"team{i}") for i in range(n_teams))
    popularity = 1.0 / np.arange(1, n_skills + 1) ** 0.8
    popularity /= popularity.sum()
    agents: list[Agent] = []
    for i in range(n_agents):
        zone = ZONES[int(rng.integers(len(ZONES)))]
        n_sk = int(rng.integers(2, min(6, n_skills) + 1))
        chosen = rng.choice(n_skills, size=n_sk, replace=False, p=popularity)
        levels = {f"s{int(s)}": int(rng.integers(1, 6)) for s in chosen}
        shift_start_h = 8 + ZONE_OFFSET_H[zone] + int(rng.integers(-2, 3))
        shifts = []
        for d in range(days):
            day0 = NOW.replace(hour=0) + timedelta(days=d)
            start = day0 + timedelta(hours=shift_start_h)
            shifts.append(Interval(start, start + timedelta(hours=8)))
        busy = []
        if rng.random() < 0.5:
            b = NOW + timedelta(minutes=int(rng.integers(0, 24 * 60)))
            busy.append(Interval(b, b + timedelta(minutes=int(rng.integers(15, 90)))))
        capacity = int(rng.integers(3, 9))
        status = AgentStatus.AVAILABLE if rng.random() < 0.9 else AgentStatus.AWAY
        agents.append(
            Agent(
                id=f"a{i}",
                team=teams[i % n_teams].id,
                skills=levels,
                capacity=capacity,
                shifts=tuple(shifts),
                busy=tuple(busy),
                open_tickets=int(rng.integers(0, 3)),
                backlog_minutes=int(rng.integers(0, 90)),
                recent_assignments=int(rng.integers(0, 10)),
                timezone=zone,
                status=status,
            )
        )
    if tight:
        free = sum(max(0, a.capacity - a.open_tickets) for a in agents)
        scale = n_tickets / max(1, free)
        agents = [
            Agent(
                id=a.id,
                team=a.team,
                skills=a.skills,
                capacity=a.open_tickets + max(1, round((a.capacity - a.open_tickets) * scale)),
                shifts=a.shifts,
                busy=a.busy,
                open_tickets=a.open_tickets,
                backlog_minutes=a.backlog_minutes,
                recent_assignments=a.recent_assignments,
                timezone=a.timezone,
                status=a.status,
            )
            for a in agents
        ]
    tickets: list[Ticket] = []
    for i in range(n_tickets):
        created = NOW - timedelta(minutes=int(rng.integers(0, 600)))
        n_req = 1 if rng.random() < 0.7 else 2
        req = rng.choice(n_skills, size=n_req, replace=False, p=popularity)
        required = {f"s{int(s)}": int(rng.integers(1, 4)) for s in req}
        fr = created + timedelta(minutes=int(rng.integers(30, 8 * 60)))
        res = fr + timedelta(minutes=int(rng.integers(60, 36 * 60)))
        fr_due = None if rng.random() < 0.3 else fr
        owner = f"a{int(rng.integers(n_agents))}" if rng.random() < 0.2 else None
        prev = f"a{int(rng.integers(n_agents + 2))}" if rng.random() < 0.2 else None
        tickets.append(
            Ticket(
                id=f"t{i}",
                team=teams[int(rng.integers(n_teams))].id,
                created_at=created,
                required_skills=required,
                priority=int(rng.integers(1, 5)),
                first_response_due=fr_due,
                resolution_due=res,
                effort_minutes=int(rng.integers(10, 120)),
                owner_agent=owner,
                previous_agent=prev,
            )
        )
    return Problem(
        now=NOW,
        agents=tuple(agents),
        tickets=tuple(tickets),
        skills=skills,
        teams=teams,
        horizon_end=NOW + timedelta(days=days),
    )


def test_the_factory_is_deterministic_and_valid() -> None:
    a = random_problem(3, n_agents=5, n_tickets=12)
    b = random_problem(3, n_agents=5, n_tickets=12)
    assert a == b
    assert len(a.agents) == 5 and len(a.tickets) == 12


def test_tight_instances_offer_about_as_many_slots_as_tickets() -> None:
    p = random_problem(5, n_agents=20, n_tickets=100, tight=True)
    free = sum(a.capacity - a.open_tickets for a in p.agents)
    assert 80 <= free <= 130
