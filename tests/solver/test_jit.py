"""Just-in-time binding and disruption repair."""

from __future__ import annotations

from datetime import timedelta

import pytest

from solver.capability import (
    BookingState,
    BusyAdded,
    Call,
    ShiftAdded,
    ShiftRemoved,
    StatusChanged,
)
from solver.jit import assign_due, disrupt
from solver.problem import AgentStatus
from solver.slots import at_risk, book, validate_calls, witness
from tests.solver.test_booking_factories import agent, at, brute_force_cover, cap, shift

METHODS = ["cpsat", "greedy"]


def call(cid: str, cap_id: str, h: float, minutes: int = 30, **kw: object) -> Call:
    return Call(cid, cap_id, at(0, h), at(0, h) + timedelta(minutes=minutes), **kw)  # type: ignore[arg-type]


def bound(state: BookingState) -> dict[str, str | None]:
    return {c.id: c.bound_agent for c in state.calls}


@pytest.mark.parametrize("method", METHODS)
def test_only_calls_within_the_lead_time_are_bound(method: str) -> None:
    a = agent("a", {"x": 1}, [shift(0, 8, 18)])
    calls = (call("soon", "x", 9.5), call("later", "x", 14))
    state = BookingState(at(0, 8), (a,), (cap("x", {"x": 1}),), calls)
    result = assign_due(state, lead=timedelta(hours=2), method=method)
    assert [(b.call_id, b.agent_id) for b in result.bindings] == [("soon", "a")]
    assert bound(result.state) == {"soon": "a", "later": None}
    assert result.at_risk == ()


@pytest.mark.parametrize("method", METHODS)
def test_the_tickets_owner_gets_the_call_when_they_can_take_it(method: str) -> None:
    agents = [agent(n, {"x": 1}, [shift(0, 8, 18)]) for n in ("a", "b", "c")]
    calls = (call("c1", "x", 9, owner_agent="b"), call("c2", "x", 9, owner_agent="zed"))
    state = BookingState(at(0, 8), tuple(agents), (cap("x", {"x": 1}),), calls)
    result = assign_due(state, method=method)
    assert bound(result.state)["c1"] == "b"
    assert {r.rule for b in result.bindings if b.call_id == "c1" for r in b.reasons} >= {"owner"}
    # The owner is busy: somebody else, no harm done.
    busy = BookingState(
        at(0, 8),
        (*agents[:1], agent("b", {"x": 1}, [shift(0, 8, 18)], busy=[shift(0, 9, 10)]), agents[2]),
        (cap("x", {"x": 1}),),
        calls[:1],
    )
    assert bound(assign_due(busy, method=method).state)["c1"] in {"a", "c"}


@pytest.mark.parametrize("method", METHODS)
def test_calls_are_spread_over_the_agents_day(method: str) -> None:
    agents = [agent(n, {"x": 1}, [shift(0, 8, 18)]) for n in ("a", "b")]
    calls = tuple(call(f"c{i}", "x", 9 + i) for i in range(4))
    state = BookingState(at(0, 8), tuple(agents), (cap("x", {"x": 1}),), calls)
    result = assign_due(state, lead=timedelta(hours=8), method=method)
    held = [b.agent_id for b in result.bindings]
    assert sorted(held) == ["a", "a", "b", "b"]


def test_the_day_already_held_counts_too() -> None:
    agents = [agent(n, {"x": 1}, [shift(0, 8, 18)]) for n in ("a", "b")]
    earlier = tuple(call(f"e{i}", "x", 8 + i, bound_agent="a") for i in range(2))
    state = BookingState(
        at(0, 8), tuple(agents), (cap("x", {"x": 1}),), (*earlier, call("n", "x", 12))
    )
    result = assign_due(state, lead=timedelta(hours=6))
    assert bound(result.state)["n"] == "b"


@pytest.mark.parametrize("method", METHODS)
def test_binding_now_never_strands_a_later_call(method: str) -> None:
    # The owner `a` could take c1, but c2 (later, unbound, only `a` qualifies) overlaps it.
    a = agent("a", {"x": 1, "y": 1}, [shift(0, 8, 18)])
    b = agent("b", {"x": 1}, [shift(0, 8, 18)])
    caps = (cap("x", {"x": 1}), cap("y", {"y": 1}))
    calls = (call("c1", "x", 10, owner_agent="a"), call("c2", "y", 10.25))
    state = BookingState(at(0, 8), (a, b), caps, calls)
    result = assign_due(state, lead=timedelta(hours=2, minutes=10), method=method)
    assert bound(result.state) == {"c1": "b", "c2": None}
    assert witness(result.state) == {"c1": "b", "c2": "a"}
    assert at_risk(result.state) == []


@pytest.mark.parametrize("method", METHODS)
def test_earlier_bindings_are_kept(method: str) -> None:
    agents = [agent(n, {"x": 1}, [shift(0, 8, 18)]) for n in ("a", "b")]
    calls = (call("c1", "x", 9, owner_agent="b", bound_agent="a"), call("c2", "x", 9.5))
    state = BookingState(at(0, 8), tuple(agents), (cap("x", {"x": 1}),), calls)
    result = assign_due(state, method=method)
    assert bound(result.state)["c1"] == "a"  # its owner is free, but the binding stands
    assert [b.call_id for b in result.bindings] == ["c2"]
    again = assign_due(result.state, method=method)
    assert again.bindings == () and bound(again.state) == bound(result.state)


@pytest.mark.parametrize("method", METHODS)
def test_a_stale_binding_is_rebound(method: str) -> None:
    agents = [agent("a", {"x": 1}, [shift(0, 8, 18)], status=AgentStatus.AWAY)]
    agents.append(agent("b", {"x": 1}, [shift(0, 8, 18)]))
    calls = (call("c1", "x", 9, bound_agent="a"),)
    state = BookingState(at(0, 8), tuple(agents), (cap("x", {"x": 1}),), calls)
    result = assign_due(state, method=method)
    assert [(b.call_id, b.agent_id, b.previous_agent) for b in result.bindings] == [
        ("c1", "b", "a")
    ]


@pytest.mark.parametrize("method", METHODS)
def test_a_call_nobody_can_take_is_reported_not_bound(method: str) -> None:
    a = agent("a", {"x": 1}, [shift(0, 8, 18)], busy=[shift(0, 9, 10)])
    calls = (call("c1", "x", 9, bound_agent="a"),)
    state = BookingState(at(0, 8), (a,), (cap("x", {"x": 1}),), calls)
    result = assign_due(state, method=method)
    assert [r.call_id for r in result.at_risk] == ["c1"]
    assert result.at_risk[0].reason.rule == "uncoverable"
    assert bound(result.state) == {"c1": None}


def test_buffers_keep_an_agents_calls_apart() -> None:
    a = agent("a", {"x": 1}, [shift(0, 8, 18)])
    b = agent("b", {"x": 1}, [shift(0, 8, 18)])
    caps = (cap("x", {"x": 1}, buffer_minutes=15),)
    calls = (call("c1", "x", 9, owner_agent="a"), call("c2", "x", 9.5, owner_agent="a"))
    state = BookingState(at(0, 8), (a, b), caps, calls)
    result = assign_due(state)
    assert sorted(bound(result.state).values()) == ["a", "b"]  # both want a; the buffer says no
    assert validate_calls(result.state, witness(result.state)) == []


# --- disruption ------------------------------------------------------------------------------


def _bound_state() -> BookingState:
    agents = [agent(n, {"x": 1}, [shift(0, 8, 18)]) for n in ("a", "b", "c")]
    calls = (
        call("c1", "x", 9, bound_agent="a"),
        call("c2", "x", 9, bound_agent="b"),
        call("c3", "x", 13, bound_agent="a"),
        call("u1", "x", 15),
    )
    return BookingState(at(0, 8), tuple(agents), (cap("x", {"x": 1}),), calls)


def test_an_agent_marked_away_loses_only_their_calls() -> None:
    report = disrupt(_bound_state(), StatusChanged("a", AgentStatus.AWAY))
    assert witness(_bound_state())["u1"] == "a"  # the cover had put u1 on a too
    assert sorted(report.affected) == ["c1", "c3", "u1"]
    assert report.moved_unbound == 1  # u1 moved, silently
    moved = {b.call_id: (b.previous_agent, b.agent_id) for b in report.rebound}
    assert set(moved) == {"c1", "c3"}
    assert all(prev == "a" and new != "a" for prev, new in moved.values())
    assert bound(report.state)["c2"] == "b"
    assert report.at_risk == () and report.changes == 2
    assert validate_calls(report.state, witness(report.state)) == []


def test_new_busy_time_moves_only_the_calls_it_hits() -> None:
    report = disrupt(_bound_state(), BusyAdded("a", at(0, 12.5), at(0, 14)))
    assert [(b.call_id, b.previous_agent) for b in report.rebound] == [("c3", "a")]
    assert bound(report.state)["c1"] == "a"


def test_unbound_calls_move_silently_and_make_room() -> None:
    # c1 (bound to a) can only go to b, whose time the unbound u1 holds: u1 moves to d.
    agents = [
        agent("a", {"y": 1}, [shift(0, 8, 18)]),
        agent("b", {"x": 1, "y": 1}, [shift(0, 8, 18)]),
        agent("d", {"x": 1, "z": 1}, [shift(0, 8, 18)]),
    ]
    # d alone serves z, so the cover keeps d free and puts u1 on b.
    caps = (cap("x", {"x": 1}), cap("y", {"y": 1}), cap("z", {"z": 1}))
    calls = (call("c1", "y", 9, bound_agent="a"), call("u1", "x", 9))
    state = BookingState(at(0, 8), tuple(agents), caps, calls)
    assert witness(state)["u1"] == "b"
    report = disrupt(state, ShiftRemoved("a", at(0, 0), at(1, 0)))
    assert [(b.call_id, b.previous_agent, b.agent_id) for b in report.rebound] == [("c1", "a", "b")]
    assert report.moved_unbound == 1 and report.at_risk == ()
    assert witness(report.state) == {"c1": "b", "u1": "d"}


def test_a_lost_call_is_not_rescued_by_dropping_another() -> None:
    # Three calls, two agents left: one is lost either way; moving bindings would only add churn.
    agents = [agent(n, {"x": 1}, [shift(0, 8, 18)]) for n in ("a", "b", "c")]
    calls = (
        call("c1", "x", 9, bound_agent="a"),
        call("c2", "x", 9, bound_agent="c"),
        call("u1", "x", 9),
    )
    state = BookingState(at(0, 8), tuple(agents), (cap("x", {"x": 1}),), calls)
    report = disrupt(state, ShiftRemoved("a", at(0, 0), at(1, 0)))
    assert [r.call_id for r in report.at_risk] == ["c1"]
    assert report.rebound == () and bound(report.state) == {"c1": None, "c2": "c", "u1": None}
    assert witness(report.state)["u1"] == "b"


def test_calls_nobody_can_cover_are_reported_early() -> None:
    a = agent("a", {"x": 1}, [shift(d, 8, 18) for d in range(3)])
    calls = (call("far", "x", 24 + 24 + 10),)  # two days ahead, unbound
    state = BookingState(at(0, 8), (a,), (cap("x", {"x": 1}),), calls)
    report = disrupt(state, ShiftRemoved("a", at(2, 0), at(3, 0)))
    assert [r.call_id for r in report.at_risk] == ["far"]
    assert report.rebound == ()


def test_a_new_shift_rescues_calls_lost_earlier() -> None:
    a = agent("a", {"x": 1}, [shift(0, 8, 12)])
    calls = (call("c", "x", 14),)
    state = BookingState(at(0, 8), (a,), (cap("x", {"x": 1}),), calls)
    assert at_risk(state) == ["c"]
    report = disrupt(state, ShiftAdded("a", at(0, 12), at(0, 18)))
    assert at_risk(report.state) == []


def test_reserve_pushes_calls_to_another_team_when_headcount_drops() -> None:
    # reserve 25 %: four working keep one back (three on calls), three working keep one (two).
    red = [agent(f"r{i}", {"x": 1}, [shift(0, 8, 18)], team="red") for i in range(4)]
    blue = [agent(f"b{i}", {"x": 1}, [shift(0, 8, 18)], team="blue") for i in range(4)]
    c = cap("x", {"x": 1}, reserve=0.25)
    calls = (call("c1", "x", 9, bound_agent="r0"), call("u1", "x", 9), call("u2", "x", 9))
    state = BookingState(at(0, 8), (*red, *blue), (c,), calls)
    assert sorted(witness(state).values()) == ["r0", "r1", "r2"]
    report = disrupt(state, StatusChanged("r3", AgentStatus.AWAY))  # holds no call at all
    on_red = [a for a in witness(report.state).values() if a is not None and a.startswith("r")]
    assert len(on_red) == 2 and "r0" in on_red
    assert report.rebound == () and report.at_risk == () and report.moved_unbound == 1
    assert validate_calls(report.state, witness(report.state)) == []


def test_disruption_keeps_bookings_coverable_for_the_brute_force_checker() -> None:
    agents = [agent(n, {"x": 1}, [shift(0, 8, 18)]) for n in ("a", "b", "c")]
    state = BookingState(at(0, 7), tuple(agents), (cap("x", {"x": 1}, call_minutes=60),))
    for h in (9, 9, 9.5, 11):
        r = book(state, "x", at(0, h))
        assert r.state is not None
        state = r.state
    state = assign_due(state, lead=timedelta(hours=2, minutes=30)).state
    report = disrupt(state, BusyAdded("b", at(0, 9), at(0, 10)))
    lost = [r.call_id for r in report.at_risk]
    assert validate_calls(report.state, witness(report.state)) == [
        f"{cid}: nobody covers it" for cid in lost
    ]
    assert brute_force_cover(report.state) is None  # right: 4 calls, 2 agents free at 9:30
    kept = report.state.with_calls([])
    remaining = [c for c in kept.calls if c.id not in lost]
    assert (
        brute_force_cover(BookingState(kept.now, kept.agents, kept.capabilities, tuple(remaining)))
        is not None
    )
