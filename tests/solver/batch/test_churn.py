"""The churn guard: owned tickets change hands only to save an SLA, within ``max_moves``.

A move is an owned ticket in its owner's keep set (:func:`solver.batch.moves.keep_set`) that ends
with someone else or the queue; forced moves (the owner cannot hold it) are not counted.
"""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from solver.batch import BatchParams, optimize
from solver.batch.data import build
from solver.batch.moves import keep_set
from solver.plan import Plan
from solver.problem import Agent, Interval, Priority, Problem, Skill, Team, Ticket
from solver.validation import check_plan, evaluate
from tests.solver.batch.test_factories import NOW, random_problem

FAST = BatchParams(
    time_limit_s=1.0,
    neighbourhood_time_s=0.2,
    neighbourhood_dtime=0.05,
    max_neighbourhoods=4,
    workers=1,
)
DAY = Interval(NOW, NOW + timedelta(hours=8))


def support_queue(agents: tuple[Agent, ...], tickets: tuple[Ticket, ...], days: int = 1) -> Problem:
    """One team, ``support``, with the skills ``billing`` and ``chat``, over ``days`` days."""
    return Problem(
        now=NOW,
        agents=agents,
        tickets=tickets,
        skills=(Skill("billing"), Skill("chat")),
        teams=(Team("support"),),
        horizon_end=NOW + timedelta(days=days),
    )


def owned_problem(seed: int, share_owned: float = 0.6) -> Problem:
    """A tight random queue where most tickets already have a qualified owner."""
    p = random_problem(seed, n_agents=6, n_tickets=24, tight=True, days=1)
    holders = list(p.agents)
    tickets = []
    for i, t in enumerate(p.tickets):
        owner = None
        if (i * 7919 + seed) % 100 < share_owned * 100:
            qualified = [
                a.id
                for a in holders
                if all(a.skills.get(s, 0) >= lvl for s, lvl in t.required_skills.items())
            ]
            if qualified:
                owner = qualified[(i + seed) % len(qualified)]
        tickets.append(replace(t, owner_agent=owner))
    return replace(p, tickets=tuple(tickets))


def moved(p: Problem, plan: Plan, params: BatchParams) -> int:
    """Owned tickets of the keep set not with their owner (the moves a budget counts)."""
    data = build(p, params.weights)
    keep, _ = keep_set(data)
    where = {a.ticket_id: a.agent_id for a in plan.assignments}
    return sum(where.get(p.tickets[t].id) != p.tickets[t].owner_agent for t in keep.tolist())


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000), budget=st.integers(0, 4))
def test_any_budget_is_met_and_the_plan_stays_valid(seed: int, budget: int) -> None:
    p = owned_problem(seed)
    params = BatchParams(
        time_limit_s=1.0,
        neighbourhood_time_s=0.2,
        neighbourhood_dtime=0.05,
        max_neighbourhoods=4,
        workers=1,
        max_moves=budget,
        seed=seed,
    )
    plan = optimize(p, params)
    assert check_plan(p, plan) == []
    assert plan.stats.objective == evaluate(p, plan, params.weights).objective
    assert moved(p, plan, params) <= budget


def test_every_kept_move_names_the_sla_it_saves() -> None:
    p = owned_problem(3, share_owned=0.9)
    plan = optimize(p, replace(FAST, move_saving=1))  # keep every move that saves anything
    assert check_plan(p, plan) == []
    checked = 0
    owners = {t.id: t.owner_agent for t in p.tickets}
    data = build(p, FAST.weights)
    keep, _ = keep_set(data)
    keepable = {p.tickets[t].id for t in keep.tolist()}
    for a in plan.assignments:
        if a.ticket_id in keepable and a.agent_id != owners[a.ticket_id]:
            churn = [r for r in a.reasons if r.rule == "churn"]
            assert churn and "saves" in churn[0].detail, churn
            checked += 1
    assert checked > 0


def test_a_move_that_saves_no_sla_is_reverted() -> None:
    # bob owns t1 and has room and time; ann is free. Load balance alone (bob already has open
    # work) would pay for moving t1 to ann, but no deadline is at stake: t1 stays with bob.
    ann = Agent("ann", "support", skills={"billing": 3}, capacity=9, shifts=(DAY,))
    bob = Agent("bob", "support", skills={"billing": 3}, capacity=9, shifts=(DAY,), open_tickets=7)
    t1 = Ticket(
        "t1",
        "support",
        required_skills={"billing": 3},
        created_at=NOW - timedelta(hours=1),
        owner_agent="bob",
    )
    p = support_queue((ann, bob), (t1,))
    plan = optimize(p, FAST)
    assert check_plan(p, plan) == []
    assert plan.assignments[0].agent_id == "bob"


def test_a_move_that_saves_its_own_sla_is_kept_and_explained() -> None:
    # bob owns t1 but is buried in backlog: urgent t1 would breach with him (8 x (120 + 210 min)
    # = 2,640 of SLA cost, above the 2,000 a move must save) and is on time with ann.
    ann = Agent("ann", "support", skills={"billing": 3}, capacity=9, shifts=(DAY,))
    bob = Agent(
        "bob", "support", skills={"billing": 3}, capacity=9, shifts=(DAY,), backlog_minutes=300
    )
    t1 = Ticket(
        "t1",
        "support",
        required_skills={"billing": 3},
        created_at=NOW - timedelta(hours=1),
        resolution_due=NOW + timedelta(hours=2),
        effort_minutes=30,
        priority=Priority.URGENT,
        owner_agent="bob",
    )
    p = support_queue((ann, bob), (t1,))
    plan = optimize(p, FAST)
    assert plan.assignments[0].agent_id == "ann"
    churn = next(r for r in plan.assignments[0].reasons if r.rule == "churn")
    assert "saves" in churn.detail and "its own SLA" in churn.detail
    # With no budget for moves it stays with bob, late, and the plan is still valid.
    plan0 = optimize(p, BatchParams(time_limit_s=1.0, max_neighbourhoods=2, max_moves=0))
    assert check_plan(p, plan0) == []
    assert plan0.assignments[0].agent_id == "bob"
    # Nor does it move when a move must save more than it does.
    plan_hi = optimize(p, BatchParams(time_limit_s=1.0, max_neighbourhoods=2, move_saving=3000))
    assert plan_hi.assignments[0].agent_id == "bob"


def bob_ann_cid(cid_starts: timedelta, u_due: timedelta | None, days: int) -> Problem:
    """bob owns t1 and has one slot, now holding u; t1 went to ann, whose shift starts too late
    for t1's deadline; cid takes u's skill, with a shift ``cid_starts`` after bob's."""
    later = Interval(DAY.start + timedelta(hours=4), DAY.end + timedelta(hours=4))
    far = Interval(DAY.start + cid_starts, DAY.end + cid_starts)
    bob = Agent("bob", "support", skills={"billing": 3, "chat": 1}, capacity=1, shifts=(DAY,))
    ann = Agent("ann", "support", skills={"billing": 3}, capacity=9, shifts=(later,))
    cid = Agent("cid", "support", skills={"chat": 1}, capacity=9, shifts=(far,))
    t1 = Ticket(
        "t1",
        "support",
        required_skills={"billing": 3},
        created_at=NOW - timedelta(hours=1),
        resolution_due=NOW + timedelta(hours=2),
        effort_minutes=30,
        owner_agent="bob",
    )
    u = Ticket(
        "u",
        "support",
        required_skills={"chat": 1},
        created_at=NOW - timedelta(hours=1),
        resolution_due=None if u_due is None else NOW + u_due,
        effort_minutes=30,
        priority=Priority.LOW,
    )
    return support_queue((bob, ann, cid), (t1, u), days)


def test_a_revert_sends_the_ticket_it_evicts_to_an_agent_with_room_not_the_queue() -> None:
    # Undoing the move of t1 puts it back on bob and evicts u. Before, u went to the team
    # queue (a low-priority seat, 2,000, minus t1's lateness saved: under what a move must
    # save, so the revert ran and the plan lost a seat); cid has room for u.
    from solver.batch.moves import guard

    data = build(bob_ann_cid(timedelta(0), None, 1), FAST.weights)
    guarded = guard(data, {0: [1], 1: [0]}, None, None, FAST.min_move_saving())
    assert guarded is not None
    assert guarded.sequences == {0: [0], 2: [1]}
    assert guarded.reverted == 1 and guarded.moved == 0


def test_a_guard_past_its_give_up_time_returns_nothing_rather_than_overrun() -> None:
    """Pricing every move cannot be cut short usefully: past ``give_up`` the guard returns None
    (the optimizer then keeps the unguarded plan and says so) instead of overrunning."""
    import time

    from solver.batch.flow import solve_flow
    from solver.batch.moves import guard
    from solver.batch.seed import list_schedule

    p = owned_problem(11, share_owned=0.9)
    data = build(p, FAST.weights)
    sequences, _ = list_schedule(data, solve_flow(data, 0).agent_of)
    past = time.perf_counter() - 1.0
    assert guard(data, sequences, None, None, FAST.min_move_saving(), give_up=past) is None
    assert guard(data, sequences, None, None, FAST.min_move_saving(), give_up=None) is not None


def test_with_seats_first_a_revert_does_not_queue_a_ticket_another_agent_has_room_for() -> None:
    # As above, but cid's shift starts three days later: u would be ~72 h late there, dearer
    # than the queue. Without seat_first the revert queues u (a seat traded for a move); with
    # it (the optimizer's keep_seated default) the queue is no option while cid has room, so
    # the move of t1 to ann stands and u keeps its seat on bob.
    from solver.batch.moves import guard

    data = build(bob_ann_cid(timedelta(days=3), timedelta(hours=1), 4), FAST.weights)
    plain = guard(data, {0: [1], 1: [0]}, None, None, FAST.min_move_saving())
    assert plain is not None and plain.sequences == {0: [0]}  # u queued
    seats = guard(data, {0: [1], 1: [0]}, None, None, FAST.min_move_saving(), seat_first=True)
    assert seats is not None and seats.sequences == {0: [1], 1: [0]}
    assert seats.moved == 1


def four_agents(dee_starts: timedelta, t1_priority: Priority) -> Problem:
    """bob owns t1 and has one slot, now holding u (chat); t1 went to ann, whose shift starts
    too late for it; cid, the only other agent with chat, is full with w (phone); dee takes
    phone work, with a shift ``dee_starts`` after everyone's, and has room."""
    later = Interval(DAY.start + timedelta(hours=4), DAY.end + timedelta(hours=4))
    far = Interval(DAY.start + dee_starts, DAY.end + dee_starts)
    bob = Agent("bob", "support", skills={"billing": 3, "chat": 1}, capacity=1, shifts=(DAY,))
    ann = Agent("ann", "support", skills={"billing": 3}, capacity=9, shifts=(later,))
    cid = Agent("cid", "support", skills={"chat": 1, "phone": 1}, capacity=1, shifts=(DAY,))
    dee = Agent("dee", "support", skills={"phone": 1}, capacity=9, shifts=(far,))

    def ticket(name: str, skill: str, priority: Priority, due_hours: int | None) -> Ticket:
        due = None if due_hours is None else NOW + timedelta(hours=due_hours)
        return Ticket(
            name,
            "support",
            required_skills={skill: 1},
            created_at=NOW - timedelta(hours=1),
            resolution_due=due,
            effort_minutes=30,
            priority=priority,
        )

    t1 = replace(ticket("t1", "billing", t1_priority, 2), owner_agent="bob")
    u = ticket("u", "chat", Priority.LOW, None)
    w = ticket("w", "phone", Priority.LOW, 1)
    return Problem(
        now=NOW,
        agents=(bob, ann, cid, dee),
        tickets=(t1, u, w),
        skills=(Skill("billing"), Skill("chat"), Skill("phone")),
        teams=(Team("support"),),
        horizon_end=NOW + timedelta(days=4),
    )


def test_with_seats_first_a_revert_makes_room_by_an_ejection_rather_than_queue() -> None:
    # Undoing the move of t1 (urgent, late on ann) evicts u from bob, and nobody else with
    # chat has room: cid is full with w. Without seat_first u goes to the queue (and w on dee,
    # two days late, costs more than u's seat, so it stays queued). With it, u goes to cid
    # and w to dee: the move is undone and no seat is lost. Before revert-by-ejection, a
    # seat_first revert queued u here too.
    from solver.batch.moves import guard

    data = build(four_agents(timedelta(days=2), Priority.URGENT), FAST.weights)
    plan = {0: [1], 1: [0], 2: [2]}  # bob: u, ann: t1, cid: w
    plain = guard(data, plan, None, None, FAST.min_move_saving())
    assert plain is not None and plain.sequences == {0: [0], 2: [2]}  # u queued
    seats = guard(data, plan, None, None, FAST.min_move_saving(), seat_first=True)
    assert seats is not None and seats.sequences == {0: [0], 2: [1], 3: [2]}
    assert seats.moved == 0 and seats.reverted == 1


def test_with_seats_first_a_move_whose_seat_keeping_revert_costs_too_much_stands() -> None:
    # As above with t1 of normal priority and dee three days out: undoing the move without
    # losing a seat costs w three days of lateness, more than the move must save, so the move
    # stands (every ticket seated), priced at that seat-keeping revert; without seat_first
    # the revert queues u.
    from solver.batch.moves import guard

    data = build(four_agents(timedelta(days=3), Priority.NORMAL), FAST.weights)
    plan = {0: [1], 1: [0], 2: [2]}
    plain = guard(data, plan, None, None, FAST.min_move_saving())
    assert plain is not None and plain.sequences == {0: [0], 2: [2]}
    seats = guard(data, plan, None, None, FAST.min_move_saving(), seat_first=True)
    assert seats is not None and seats.sequences == plan
    assert seats.moved == 1 and seats.moves[0].value >= FAST.min_move_saving()


def test_tickets_queued_before_the_guard_take_the_room_its_reverts_free() -> None:
    # bob_ann_cid as in the first revert test, ann now with one slot, and q (billing, no
    # deadline) queued by the plan the guard is given: undoing t1's move frees ann's slot,
    # and seating q there costs less than the queue, so the guard's last pass seats it.
    from solver.batch.moves import guard

    p = bob_ann_cid(timedelta(0), None, 1)
    ann = replace(p.agents[1], capacity=1)
    q = replace(p.tickets[0], id="q", owner_agent=None, resolution_due=None)
    data = build(
        replace(p, agents=(p.agents[0], ann, p.agents[2]), tickets=(*p.tickets, q)), FAST.weights
    )
    guarded = guard(data, {0: [1], 1: [0]}, None, None, FAST.min_move_saving(), seat_first=True)
    assert guarded is not None
    assert guarded.sequences == {0: [0], 1: [2], 2: [1]}
    assert guarded.moved == 0


def test_a_revert_queues_without_an_ejection_when_a_queued_ticket_can_take_the_freed_slot() -> None:
    # four_agents as in the ejection test, ann now with one slot, and q (billing) queued: the
    # slot t1 leaves on ann can seat q, so queueing u loses no seat and costs no ejection
    # (w stays on cid, dee idle); the guard's last pass seats q on ann.
    from solver.batch.moves import guard

    p = four_agents(timedelta(days=2), Priority.URGENT)
    ann = replace(p.agents[1], capacity=1)
    q = replace(p.tickets[0], id="q", owner_agent=None, resolution_due=None)
    agents = (p.agents[0], ann, *p.agents[2:])
    data = build(replace(p, agents=agents, tickets=(*p.tickets, q)), FAST.weights)
    seats = guard(
        data, {0: [1], 1: [0], 2: [2]}, None, None, FAST.min_move_saving(), seat_first=True
    )
    assert seats is not None
    assert seats.sequences == {0: [0], 1: [3], 2: [2]}
    assert seats.moved == 0


def test_a_greedy_guard_reverts_as_it_prices_and_leaves_what_it_did_not_reach_unweighed() -> None:
    """The optimizer's fallback when the whole guard does not fit: one pass that stops at its
    deadline anywhere, the moves it did not reach standing unpriced (and said to be)."""
    import time

    from solver.batch.flow import solve_flow
    from solver.batch.moves import guard
    from solver.batch.reasons import churn
    from solver.batch.seed import list_schedule

    data = build(bob_ann_cid(timedelta(0), None, 1), FAST.weights)
    whole = guard(data, {0: [1], 1: [0]}, None, None, FAST.min_move_saving())
    greedy = guard(data, {0: [1], 1: [0]}, None, None, FAST.min_move_saving(), greedy=True)
    assert whole is not None and greedy is not None
    assert greedy.sequences == whole.sequences == {0: [0], 2: [1]}
    assert greedy.unpriced == 0

    p = owned_problem(11, share_owned=0.9)
    data = build(p, FAST.weights)
    sequences, _ = list_schedule(data, solve_flow(data, 0).agent_of)
    past = time.perf_counter() - 1.0
    late = guard(data, sequences, None, past, FAST.min_move_saving(), past, greedy=True)
    assert late is not None and late.reverted == 0
    assert late.sequences == {a: s for a, s in sequences.items() if s}
    assert late.moved > 0 and late.unpriced == late.moved
    t, move = next(iter(late.moves.items()))
    assert not move.priced
    reason = churn(data, t, move.agent, late)
    assert reason is not None and "not weighed" in reason.detail


def test_when_the_guard_cannot_fit_whole_the_optimizer_still_guards_greedily(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A guard predicted far beyond the time left used to mean no guard (every move kept);
    now the search and a greedy guard share the time, and the plan says how far it got."""
    import solver.batch.solve as solve

    p = owned_problem(11, share_owned=0.9)
    monkeypatch.setattr(solve, "_GUARD_SECONDS_PER_MOVE", 1_000.0)
    plan = optimize(p, FAST)
    assert check_plan(p, plan) == []
    notes = " ".join(plan.stats.notes)
    assert "no time left to price" not in notes and "owned ticket(s) moved" in notes
    assert plan.stats.phases["guard"] > 0
    reverted = re.search(r"\((\d+) move\(s\) reverted", notes)
    assert reverted is not None and int(reverted.group(1)) > 0, notes
