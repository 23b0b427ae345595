"""Tickets and calls are one workload: properties over generated organisations, booking streams
and ticket queues.

The service gives ticket planning each booked call's *hold* as busy time
(``solver.problem.with_busy``): the bound agent, else the booking engine's own cover (its
witness), from the call's start to its end plus buffer. Checked here with code that shares
nothing with the planners (minute-by-minute interval arithmetic) and with the booking engine's
own checks:

- no planned ticket works a minute inside a hold of its agent (real-time and batch);
- ticket work added to the agents' calendars as busy time leaves every booked call coverable
  (``validate_calls`` on the same cover, and the engine's ``at_risk``).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from solver.batch import BatchParams, optimize
from solver.capability import BookingState
from solver.jit import assign_due
from solver.plan import Assignment
from solver.problem import Interval, Priority, Problem, Ticket, with_busy
from solver.realtime import RealtimeIndex
from solver.slots import at_risk, validate_calls, witness
from tests.solver.test_booking_props import SKILLS, organisations, requests, run_stream

MINUTE = timedelta(minutes=1)


def holds_of(state: BookingState) -> tuple[dict[str, str], dict[str, list[Interval]]]:
    """Each live call's holder (bound agent, else the engine's cover) and the busy time that
    adds per agent: start to end plus buffer (``occupied_until``)."""
    cover = witness(state)
    caps = {c.id: c for c in state.capabilities}
    holder: dict[str, str] = {}
    busy: dict[str, list[Interval]] = {}
    for call in state.calls:
        who = call.bound_agent or cover.get(call.id)
        if who is None or call.end <= state.now:
            continue
        holder[call.id] = who
        until = call.end + timedelta(minutes=caps[call.capability_id].buffer_minutes)
        busy.setdefault(who, []).append(Interval(call.start, until))
    return holder, busy


tickets = st.lists(
    st.tuples(
        st.sampled_from([None, *SKILLS]),
        st.integers(1, 2),
        st.integers(10, 150),
        st.sampled_from(list(Priority)),
        st.integers(0, 30 * 4),
    ),
    min_size=1,
    max_size=10,
)


def ticket_problem(
    state: BookingState, specs: list[tuple[str | None, int, int, Priority, int]]
) -> Problem:
    agents = tuple(replace(a, capacity=4) for a in state.agents)
    queue = tuple(
        Ticket(
            f"t{i}",
            "red",
            created_at=state.now,
            required_skills={} if skill is None else {skill: level},
            priority=priority,
            effort_minutes=effort,
            resolution_due=state.now + timedelta(minutes=15 * due_q + effort),
        )
        for i, (skill, level, effort, priority, due_q) in enumerate(specs)
    )
    return Problem(state.now, agents, queue, horizon_end=state.now + timedelta(days=3))


def free_minutes(problem: Problem, agent_id: str, start: datetime, end: datetime) -> list[datetime]:
    """The minutes of ``[start, end)`` the agent works: on shift, not busy (brute force)."""
    agent = problem.agent(agent_id)
    out = []
    t = start
    while t < end:
        if agent.on_shift(t) and not agent.busy_at(t):
            out.append(t)
        t += MINUTE
    return out


def check_work(
    problem: Problem,
    planned: list[Assignment],
    holds: dict[str, list[Interval]],
) -> dict[str, list[Interval]]:
    """Every planned ticket works exactly its effort in free minutes of its agent, none of them
    inside a hold or another ticket's work; returns the work as busy intervals per agent."""
    assert problem.horizon_end is not None
    work: dict[str, list[Interval]] = {}
    taken: set[tuple[str, datetime]] = set()
    for x in planned:
        assert x.start is not None and x.end is not None
        inside_end = min(x.end, problem.horizon_end)
        minutes = free_minutes(problem, x.agent_id, x.start, inside_end)
        beyond = max(0, int((x.end - inside_end) / MINUTE))  # extrapolated past the horizon
        assert len(minutes) + beyond == problem.ticket(x.ticket_id).effort_minutes, x
        for m in minutes:
            assert not any(h.contains(m) for h in holds.get(x.agent_id, ())), (x, m)
            assert (x.agent_id, m) not in taken, (x, m)
            taken.add((x.agent_id, m))
            spans = work.setdefault(x.agent_id, [])
            if spans and spans[-1].end == m:
                spans[-1] = Interval(spans[-1].start, m + MINUTE)
            else:
                spans.append(Interval(m, m + MINUTE))
    return work


def still_coverable(
    state: BookingState, holder: dict[str, str], work: dict[str, list[Interval]]
) -> None:
    """The booking rules hold for the holders (reserve included), and with the ticket work
    added to the agents' calendars as busy time the same cover still gives every call a
    distinct qualified agent free for its whole occupancy, and the engine finds no call at
    risk. The second check leaves the teams' reserves out: the reserve *is* the room kept for
    ticket work, so an agent working a ticket still counts in their team's headcount (as
    calendar busy time they would not, and calls would seem to break the reserve)."""
    assert validate_calls(state, holder) == []
    agents = tuple(replace(a, busy=(*a.busy, *work.get(a.id, ()))) for a in state.agents)
    caps = tuple(replace(c, reserve=0.0) for c in state.capabilities)
    cover = {c: a for c, a in holder.items() if state.call(c).bound_agent is None}
    after = BookingState(state.now, agents, caps, state.calls, {}, cover)
    assert validate_calls(after, holder) == []
    assert at_risk(after) == []


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(organisations(), requests, st.integers(0, 36), tickets)
def test_batch_plans_no_ticket_work_in_a_call_and_every_call_stays_coverable(
    state: BookingState,
    stream: list[tuple[int, int, int]],
    lead_h: int,
    specs: list[tuple[str | None, int, int, Priority, int]],
) -> None:
    state = run_stream(state, stream)
    state = assign_due(state, lead=timedelta(hours=lead_h)).state  # some calls bound
    holder, holds = holds_of(state)
    problem = with_busy(ticket_problem(state, specs), holds)
    plan = optimize(problem, BatchParams(time_limit_s=0.5, use_sequencing=False, seed=1))
    work = check_work(problem, list(plan.assignments), holds)
    still_coverable(state, holder, work)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(organisations(), requests, st.integers(0, 36), tickets, st.integers(0, 20 * 4))
def test_real_time_plans_no_ticket_work_in_a_call_and_every_call_stays_coverable(
    state: BookingState,
    stream: list[tuple[int, int, int]],
    lead_h: int,
    specs: list[tuple[str | None, int, int, Priority, int]],
    later_q: int,
) -> None:
    state = run_stream(state, stream)
    state = assign_due(state, lead=timedelta(hours=lead_h)).state
    holder, holds = holds_of(state)
    base = ticket_problem(state, specs)
    problem = with_busy(base, holds)
    # The service's way (the organisation's index, then the holds on it) decides exactly like
    # an index built from the problem with the holds as busy time.
    index = RealtimeIndex.build(base).with_busy(holds)
    fresh = RealtimeIndex.build(problem)
    now = problem.now + timedelta(minutes=15 * later_q)  # tickets arrive during the day
    planned = []
    for ticket in problem.tickets:
        decision = index.assign(ticket, now=now)
        assert decision == fresh.assign(ticket, now=now)
        if decision.agent_id is None:
            continue
        index.commit(decision, ticket)
        fresh.commit(decision, ticket)
        planned.append(
            Assignment(
                ticket.id, decision.agent_id, 0, decision.expected_start, decision.expected_end
            )
        )
    work = check_work(problem, planned, holds)
    still_coverable(state, holder, work)


def test_with_busy_adds_busy_time_to_the_named_agents_only() -> None:
    from tests.solver.test_booking_factories import agent, at, shift

    problem = Problem(
        at(0, 8),
        (agent("a", {}, [shift(0, 8, 12)]), agent("b", {}, [shift(0, 8, 12)])),
        (),
    )
    call = Interval(at(0, 9), at(0, 9.5))
    out = with_busy(problem, {"a": [call], "gone": [call]})
    assert out.agent("a").busy == (call,)
    assert out.agent("b") is problem.agent("b")
    assert with_busy(problem, {}) is problem
