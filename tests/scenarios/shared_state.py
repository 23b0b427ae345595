"""One organisation state, as plain data, that the service and the simulation both load: the
fixture of the router parity test (``tests/api/assignment/test_sim_parity.py``), which asks the
service to assign :data:`NEW` through HTTP and the simulation's router
(:func:`scenarios.sim.route_one`) for the same state, and expects the same agent.

Three agents of one team on shift 07:00-17:00 UTC, unequal loads (tickets and their effort, one
capped channel), skill levels above and at what the ticket needs: the router has to weigh load,
waiting time, channel capacity and expertise waste, so agreeing is not a matter of ties.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

from scenarios.model import AgentPlan, Demand, ShiftPattern, SlaTarget, TicketSpec, World
from solver.problem import Priority, Skill, Team, TeamScope

NOW = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)  # tests/api's T0: a Monday morning
SHIFT = (time(7), time(17))
SKILLS = ("billing", "lang:de")
TEAM = "support"
# id -> (skills, capacity, channel capacity)
AGENTS: dict[str, tuple[dict[str, int], int, dict[str, int]]] = {
    "ana": ({"billing": 4, "lang:de": 2}, 4, {}),
    "ben": ({"billing": 2}, 4, {"chat": 1}),
    "cid": ({"billing": 3}, 3, {}),
}
# What each agent holds now: (ticket id, channel, effort minutes), all open.
HELD: dict[str, list[tuple[str, str, int]]] = {
    "ana": [("H1", "email", 20)],
    "ben": [("H2", "chat", 15), ("H3", "email", 60)],
    "cid": [("H4", "email", 30), ("H5", "email", 45)],
}
FIRST_RESPONSE_MINUTES = 60
RESOLUTION_MINUTES = 240
NEW = TicketSpec(
    id="N1",
    created_at=NOW - timedelta(minutes=20),
    team=TEAM,
    channel="email",
    required_skills={"billing": 2},
    priority=Priority.HIGH,
    effort_minutes=25,
)


def world() -> World:
    """The state as the simulation's world (one day from midnight, the same shifts)."""
    start, end = SHIFT
    return World(
        name="parity",
        start=NOW.replace(hour=0),
        days=1,
        skills=tuple(Skill(s) for s in SKILLS),
        teams=(Team(TEAM, scope=TeamScope.TEAM_ONLY),),
        agents=tuple(
            AgentPlan(
                id=agent,
                team=TEAM,
                skills=skills,
                shifts=(ShiftPattern(tuple(range(7)), start, end),),
                capacity=capacity,
                channel_capacity=caps,
            )
            for agent, (skills, capacity, caps) in AGENTS.items()
        ),
        demand=Demand(),
        sla=(SlaTarget(Priority.HIGH, FIRST_RESPONSE_MINUTES, RESOLUTION_MINUTES),),
    )


def held_specs() -> dict[str, list[TicketSpec]]:
    """:data:`HELD` as tickets (what :func:`scenarios.sim.route_one` takes)."""
    return {
        agent: [
            TicketSpec(
                id=tid,
                created_at=NOW - timedelta(hours=1),
                team=TEAM,
                channel=channel,
                required_skills={"billing": 1},
                effort_minutes=effort,
            )
            for tid, channel, effort in tickets
        ]
        for agent, tickets in HELD.items()
    }
