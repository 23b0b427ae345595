"""Hypothesis strategies: small, valid organisations and queues.

Small on purpose (a handful of agents and tickets) so that every property runs in
milliseconds per example, but with what makes scheduling subtle: agents in several time zones
with shifts built in local time (across Europe's March DST change), busy intervals, scarce
skills, owners, previous agents, deadlines already close.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import strategies as st

from solver.problem import Agent, AgentStatus, Interval, Priority, Problem, Skill, Team, Ticket

NOW = datetime(2026, 3, 28, 6, 0, tzinfo=UTC)  # a day before Europe's spring DST change
ZONES = ("Europe/Berlin", "America/New_York", "Asia/Tokyo", "UTC")
SKILLS = ("net", "billing", "dns", "lang:de", "lang:en", "tier:2")
TEAMS = ("core", "edge")
CHANNELS = ("email", "chat", "phone", "acme:portal")


@st.composite
def shifts(draw: st.DrawFn, zone: str) -> list[Interval]:
    tz = ZoneInfo(zone)
    out: list[Interval] = []
    local_now = NOW.astimezone(tz)
    for day in draw(st.sets(st.integers(0, 3), max_size=3)):
        start_h = draw(st.integers(0, 16))
        length = draw(st.integers(2, 8))
        start = datetime(local_now.year, local_now.month, local_now.day, start_h, tzinfo=tz)
        start += timedelta(days=day)
        out.append(Interval(start, start + timedelta(hours=length)))
    return out


@st.composite
def agents(draw: st.DrawFn, index: int) -> Agent:
    zone = draw(st.sampled_from(ZONES))
    sh = draw(shifts(zone))
    busy: list[Interval] = []
    for s in sh:
        if draw(st.booleans()):
            b0 = s.start + timedelta(minutes=draw(st.integers(0, 120)))
            busy.append(Interval(b0, b0 + timedelta(minutes=draw(st.integers(15, 90)))))
    skills = draw(
        st.dictionaries(st.sampled_from(SKILLS), st.integers(1, 5), min_size=1, max_size=4)
    )
    capacity = draw(st.integers(0, 4))
    open_tickets = draw(st.integers(0, capacity))
    # Some agents cap a channel or two (within or above the total); some already hold some.
    channel_capacity = draw(
        st.dictionaries(st.sampled_from(CHANNELS), st.integers(0, 3), max_size=2)
    )
    channel_open = {
        c: draw(st.integers(0, min(cap, open_tickets))) for c, cap in channel_capacity.items()
    }
    return Agent(
        id=f"a{index}",
        team=draw(st.sampled_from(TEAMS)),
        skills=skills,
        capacity=capacity,
        shifts=tuple(sh),
        busy=tuple(busy),
        open_tickets=open_tickets,
        channel_capacity=channel_capacity,
        channel_open=channel_open,
        backlog_minutes=draw(st.integers(0, 120)),
        recent_assignments=draw(st.integers(0, 5)),
        timezone=zone,
        # One agent in ten is away or offline: they must never receive work.
        status=draw(st.sampled_from(list(AgentStatus)))
        if draw(st.integers(0, 9)) == 0
        else AgentStatus.AVAILABLE,
    )


@st.composite
def tickets(draw: st.DrawFn, index: int, agent_ids: list[str]) -> Ticket:
    created = NOW - timedelta(minutes=draw(st.integers(0, 600)))
    fr = created + timedelta(minutes=draw(st.integers(5, 600)))
    res = fr + timedelta(minutes=draw(st.integers(0, 3000)))
    maybe_agent = st.none() | st.sampled_from(agent_ids) if agent_ids else st.none()
    return Ticket(
        id=f"t{index}",
        team=draw(st.sampled_from(TEAMS)),
        created_at=created,
        required_skills=draw(
            st.dictionaries(st.sampled_from(SKILLS), st.integers(1, 5), max_size=2)
        ),
        priority=draw(st.sampled_from(Priority)),
        first_response_due=fr if draw(st.booleans()) else None,
        resolution_due=res if draw(st.integers(0, 4)) else None,
        effort_minutes=draw(st.integers(5, 240)),
        owner_agent=draw(maybe_agent),
        previous_agent=draw(maybe_agent),
        channel=draw(st.sampled_from(CHANNELS)),
    )


@st.composite
def problems(draw: st.DrawFn, max_agents: int = 6, max_tickets: int = 12) -> Problem:
    n_agents = draw(st.integers(0, max_agents))
    ags = [draw(agents(i)) for i in range(n_agents)]
    ids = [a.id for a in ags]
    n_tickets = draw(st.integers(0, max_tickets))
    tks = [draw(tickets(i, ids)) for i in range(n_tickets)]
    return Problem(
        now=NOW,
        agents=tuple(ags),
        tickets=tuple(tks),
        skills=tuple(Skill(s) for s in SKILLS),
        teams=tuple(Team(t) for t in TEAMS),
        horizon_end=NOW + timedelta(days=4),
    )
