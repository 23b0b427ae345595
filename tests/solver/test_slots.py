"""Capability slots and booking: the coverability rule, its edge cases and its explanations."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from solver.capability import BookingState, Call, Capability
from solver.errors import ProblemError
from solver.problem import AgentStatus, Interval
from solver.slots import (
    BookingIndex,
    advance,
    at_risk,
    book,
    find_slots,
    index_of,
    open_slots,
    validate_calls,
    witness,
)
from tests.solver.test_booking_factories import (
    MONDAY,
    agent,
    at,
    brute_force_cover,
    cap,
    shift,
    with_call,
)

BERLIN = ZoneInfo("Europe/Berlin")


def starts(slots: list) -> list[datetime]:  # type: ignore[type-arg]
    return [s.start.astimezone(UTC) for s in slots]


def test_a_slot_is_open_while_a_qualified_agent_is_free_and_closes_when_taken() -> None:
    a = agent("a", {"net": 3}, [shift(0, 9, 10)])
    state = BookingState(at(0, 8), (a,), (cap("net", {"net": 2}, call_minutes=30),))
    assert starts(open_slots(state, "net", at(0, 8), at(0, 12))) == [
        at(0, 9),
        at(0, 9.25),
        at(0, 9.5),
    ]
    result = book(state, "net", at(0, 9.25), "T1")
    assert result.booked and result.state is not None
    assert result.call is not None and result.call.bound_agent is None  # nobody is named
    assert open_slots(result.state, "net", at(0, 8), at(0, 12)) == []


def test_slots_never_name_an_agent() -> None:
    a = agent("a", {"net": 3}, [shift(0, 9, 10)])
    state = BookingState(at(0, 8), (a,), (cap("net", {"net": 2}),))
    slot = open_slots(state, "net", at(0, 8), at(0, 12))[0]
    assert set(slot.__slots__) == {"capability_id", "start", "end"}


def test_zero_qualified_agents_means_no_slots_and_a_clear_reason() -> None:
    a = agent("a", {"billing": 5}, [shift(0, 9, 17)])
    state = BookingState(at(0, 8), (a,), (cap("net", {"net": 2, "lang:de": 3}),))
    answer = find_slots(state, "net", at(0, 8), at(1, 0))
    assert answer.slots == ()
    assert answer.reason is not None and answer.reason.rule == "no_qualified_agents"
    assert "lang:de ≥ 3" in answer.reason.detail and "net ≥ 2" in answer.reason.detail
    refused = book(state, "net", at(0, 10))
    assert not refused.booked and refused.reason is not None
    assert refused.reason.rule == "no_qualified_agents"


def test_a_call_straddling_a_shift_boundary_needs_one_agent_for_all_of_it() -> None:
    early = agent("early", {"net": 3}, [shift(0, 8, 12)])
    late = agent("late", {"net": 3}, [shift(0, 12, 16)])
    state = BookingState(at(0, 7), (early, late), (cap("net", {"net": 1}, call_minutes=30),))
    offered = set(starts(open_slots(state, "net", at(0, 11), at(0, 13))))
    assert at(0, 11.5) in offered and at(0, 12) in offered
    assert at(0, 11.75) not in offered  # 11:45-12:15: each agent covers only half
    refused = book(state, "net", at(0, 11.75))
    assert refused.reason is not None and refused.reason.rule == "no_agent_working"
    assert at(0, 11.5) in starts(list(refused.alternatives))


def test_the_buffer_keeps_calls_apart_and_must_fit_in_the_shift() -> None:
    a = agent("a", {"net": 3}, [shift(0, 9, 11)])
    c = cap("net", {"net": 1}, call_minutes=30, buffer_minutes=15)
    state = BookingState(at(0, 8), (a,), (c,))
    offered = starts(open_slots(state, "net", at(0, 8), at(0, 12)))
    assert offered[-1] == at(0, 10.25)  # 10:15-10:45 + 15 min wrap-up ends at the shift end
    state = book(state, "net", at(0, 9)).state
    assert state is not None
    offered = starts(open_slots(state, "net", at(0, 8), at(0, 12)))
    assert at(0, 9.5) not in offered  # inside the first call's wrap-up
    assert offered[0] == at(0, 9.75)


def test_min_notice_and_horizon_bound_the_offer() -> None:
    a = agent("a", {"net": 3}, [shift(d, 0, 24) for d in range(5)])
    c = cap("net", {"net": 1}, min_notice=timedelta(hours=2), horizon=timedelta(days=2))
    state = BookingState(at(0, 8), (a,), (c,))
    offered = starts(open_slots(state, "net", at(0, 0), at(5, 0)))
    assert offered[0] == at(0, 10) and offered[-1] == at(2, 7.75)
    refused = book(state, "net", at(0, 9))
    assert refused.reason is not None and refused.reason.rule == "outside_booking_window"
    assert refused.alternatives and refused.alternatives[0].start == at(0, 10)
    assert find_slots(state, "net", at(3, 0), at(4, 0)).reason.rule == "outside_booking_window"  # type: ignore[union-attr]


def test_spring_forward_in_the_customer_zone_gives_23_hours_of_local_starts() -> None:
    a = agent("a", {"net": 3}, [Interval(at(5, 0), at(8, 0))])  # Sat-Mon, around 29 March
    state = BookingState(at(0, 0), (a,), (cap("net", {"net": 1}, call_minutes=15),))
    sunday = datetime(2026, 3, 29, tzinfo=BERLIN)
    slots = open_slots(state, "net", sunday, sunday + timedelta(days=1), BERLIN)
    assert len(slots) == 23 * 4
    assert all(s.start.tzinfo == BERLIN and s.start.minute % 15 == 0 for s in slots)
    local = [s.start.strftime("%H:%M") for s in slots]
    assert "01:45" in local and "02:00" not in local and "03:00" in local
    assert slots[0].start.utcoffset() == timedelta(hours=1)
    assert slots[-1].start.utcoffset() == timedelta(hours=2)


def test_fall_back_in_the_customer_zone_offers_the_repeated_hour_twice() -> None:
    now = datetime(2026, 10, 20, tzinfo=UTC)
    a = agent("a", {"net": 3}, [Interval(now, now + timedelta(days=10))])
    state = BookingState(now, (a,), (cap("net", {"net": 1}, call_minutes=15),))
    sunday = datetime(2026, 10, 25, tzinfo=BERLIN)
    slots = open_slots(state, "net", sunday, sunday + timedelta(days=1), BERLIN)
    assert len(slots) == 25 * 4
    twice = [s for s in slots if s.start.strftime("%H:%M") == "02:30"]
    assert len(twice) == 2 and twice[0].start.astimezone(UTC) != twice[1].start.astimezone(UTC)


def test_an_agent_in_another_time_zone_is_matched_in_utc() -> None:
    tokyo = ZoneInfo("Asia/Tokyo")
    shift_tokyo = Interval(
        datetime(2026, 3, 24, 9, tzinfo=tokyo), datetime(2026, 3, 24, 17, tzinfo=tokyo)
    )
    a = agent("tokyo", {"net": 3}, [shift_tokyo], timezone="Asia/Tokyo")
    state = BookingState(at(0, 0), (a,), (cap("net", {"net": 1}, call_minutes=60),))
    slots = open_slots(state, "net", at(0, 0), at(2, 0), BERLIN)
    # 09:00-17:00 Tokyo (UTC+9) is 01:00-09:00 Berlin (UTC+1) on Tuesday.
    assert slots[0].start == datetime(2026, 3, 24, 1, 0, tzinfo=BERLIN)
    assert slots[-1].start == datetime(2026, 3, 24, 8, 0, tzinfo=BERLIN)


def test_reserve_keeps_a_share_of_the_team_for_ticket_work() -> None:
    team = [agent(f"a{i}", {"net": 3}, [shift(0, 9, 17)]) for i in range(4)]
    c = cap("net", {"net": 1}, call_minutes=60, reserve=0.25)
    state = BookingState(at(0, 8), tuple(team), (c,))
    for i in range(3):
        result = book(state, "net", at(0, 10), f"T{i}")
        assert result.booked, i
        assert result.state is not None
        state = result.state
    refused = book(state, "net", at(0, 10), "T3")
    assert refused.reason is not None and refused.reason.rule == "reserve"
    # Without the reserve the fourth agent takes it.
    plain = BookingState(at(0, 8), tuple(team), (cap("net", {"net": 1}, call_minutes=60),))
    for i in range(4):
        r = book(plain, "net", at(0, 10), f"T{i}")
        assert r.booked and r.state is not None
        plain = r.state


def test_a_team_reserve_set_on_the_state_applies_too() -> None:
    team = [agent(f"a{i}", {"net": 3}, [shift(0, 9, 17)], team="net") for i in range(2)]
    state = BookingState(
        at(0, 8), tuple(team), (cap("net", {"net": 1}),), team_reserve={"net": 0.5}
    )
    state = book(state, "net", at(0, 10)).state
    assert state is not None
    assert at(0, 10) not in starts(open_slots(state, "net", at(0, 9), at(0, 11)))


def test_moment_by_moment_matching_is_not_enough_agents_cannot_swap_mid_call() -> None:
    a = agent("a", {"x": 1, "y": 1}, [shift(0, 0, 23)])
    b = agent("b", {"x": 1}, [shift(0, 0, 23)])
    caps = (cap("x", {"x": 1}, call_minutes=60), cap("y", {"y": 1}, call_minutes=60))
    state = BookingState(at(0, 0), (a, b), caps)
    state = with_call(state, "y", at(0, 1), "w")
    state = state.with_call(Call("x1", "x", at(0, 1), at(0, 3)))
    state = state.with_call(Call("x2", "x", at(0, 2), at(0, 4)))
    # At every moment of 03:00-04:00 the two calls could be matched to a and b ...
    assert at(0, 3) not in starts(open_slots(state, "y", at(0, 0), at(0, 6)))
    refused = book(state, "y", at(0, 3))
    assert not refused.booked and refused.reason is not None
    assert refused.reason.rule == "fully_booked"
    assert brute_force_cover(with_call(state, "y", at(0, 3))) is None  # ... and it is right


def test_bound_calls_stay_with_their_agent() -> None:
    a = agent("a", {"x": 1, "y": 1}, [shift(0, 9, 17)])
    b = agent("b", {"x": 1}, [shift(0, 9, 17)])
    caps = (cap("x", {"x": 1}), cap("y", {"y": 1}))
    bound = Call("c", "x", at(0, 10), at(0, 10.5), bound_agent="a")
    state = BookingState(at(0, 8), (a, b), caps, (bound,))
    assert at(0, 10) not in starts(open_slots(state, "y", at(0, 9), at(0, 11)))
    unbound = BookingState(at(0, 8), (a, b), caps, (Call("c", "x", at(0, 10), at(0, 10.5)),))
    assert at(0, 10) in starts(open_slots(unbound, "y", at(0, 9), at(0, 11)))
    result = book(unbound, "y", at(0, 10))
    assert result.state is not None
    assert witness(result.state) == {"c": "b", result.call.id: "a"}  # type: ignore[union-attr]


def test_capabilities_sharing_agents_are_never_overbooked() -> None:
    both = agent("both", {"net": 3, "de": 3}, [shift(0, 9, 17)])
    net = agent("net", {"net": 3}, [shift(0, 9, 17)])
    caps = (cap("net-de", {"net": 2, "de": 2}), cap("net", {"net": 2}))
    state = BookingState(at(0, 8), (both, net), caps)
    state = book(state, "net", at(0, 10)).state  # tentatively on `net`, keeping `both` free
    assert state is not None
    state = book(state, "net-de", at(0, 10)).state
    assert state is not None
    for c in ("net", "net-de"):
        assert at(0, 10) not in starts(open_slots(state, c, at(0, 9), at(0, 11)))
    assert validate_calls(state, witness(state)) == []


def test_every_offered_slot_can_be_booked_right_after() -> None:
    agents = [
        agent("a", {"x": 2, "y": 1}, [shift(0, 9, 13)]),
        agent("b", {"x": 1}, [shift(0, 10, 14)], busy=[shift(0, 11, 11.5)]),
        agent("c", {"y": 3}, [shift(0, 8, 12)], team="u"),
    ]
    caps = (
        cap("x", {"x": 1}, call_minutes=45, buffer_minutes=15),
        cap("y", {"y": 1}, call_minutes=30, granularity_minutes=30),
    )
    state = BookingState(at(0, 7), tuple(agents), caps)
    for t, c in ((9, "x"), (10, "y"), (9.5, "x"), (11, "x")):
        r = book(state, c, at(0, t))
        if r.state is not None:
            state = r.state
    for c in ("x", "y"):
        for slot in open_slots(state, c, at(0, 7), at(1, 0)):
            r = book(state, c, slot.start.astimezone(UTC), alternatives=0)
            assert r.booked, (c, slot)
            assert r.state is not None
            cover = witness(r.state)
            assert validate_calls(r.state, cover) == []
            state = r.state  # the index moved on: keep booking from the newest state
            break


def test_away_agents_offer_nothing() -> None:
    a = agent("a", {"net": 3}, [shift(0, 9, 17)], status=AgentStatus.AWAY)
    state = BookingState(at(0, 8), (a,), (cap("net", {"net": 1}),))
    answer = find_slots(state, "net", at(0, 8), at(1, 0))
    assert answer.slots == () and answer.reason is not None
    assert answer.reason.rule == "no_agent_working"


def test_an_empty_window_says_why() -> None:
    a = agent("a", {"net": 3}, [shift(0, 9, 10)])
    state = BookingState(at(0, 8), (a,), (cap("net", {"net": 1}, call_minutes=60),))
    assert find_slots(state, "net", at(0, 12), at(0, 20)).reason.rule == "no_agent_working"  # type: ignore[union-attr]
    full = book(state, "net", at(0, 9)).state
    assert full is not None
    assert find_slots(full, "net", at(0, 9), at(0, 10)).reason.rule == "fully_booked"  # type: ignore[union-attr]
    # One working agent and a 50 % reserve: that one is kept for tickets.
    kept = BookingState(at(0, 8), (a,), (cap("net", {"net": 1}, call_minutes=60, reserve=0.5),))
    assert find_slots(kept, "net", at(0, 9), at(0, 10)).reason.rule == "reserve"  # type: ignore[union-attr]


def test_a_stale_binding_is_re_covered_or_reported_at_risk() -> None:
    a = agent("a", {"net": 3}, [shift(0, 9, 17)])
    b = agent("b", {"net": 3}, [shift(0, 12, 17)])
    caps = (cap("net", {"net": 1}),)
    gone = Call("c", "net", at(0, 10), at(0, 10.5), bound_agent="someone-who-left")
    state = BookingState(at(0, 8), (a, b), caps, (gone,))
    assert witness(state) == {"c": "a"}
    assert at_risk(state) == []
    orphan = Call("d", "net", at(0, 18), at(0, 18.5))
    state = BookingState(at(0, 8), (a, b), caps, (gone, orphan))
    assert at_risk(state) == ["d"]


def test_the_index_moves_to_the_state_a_booking_derives() -> None:
    a = agent("a", {"net": 3}, [shift(0, 9, 17)])
    state = BookingState(at(0, 8), (a,), (cap("net", {"net": 1}),))
    assert state.booking_index is None  # built on first use, by index_of
    idx = index_of(state)
    assert state.booking_index is idx and index_of(state) is idx
    new = book(state, "net", at(0, 10)).state
    assert new is not None and index_of(new) is idx
    assert new.booking_index is idx and state.booking_index is None  # handed over
    assert "_index" not in repr(new) and new.with_now(new.now).booking_index is None
    # The old state still answers correctly: it rebuilds its own index.
    assert at(0, 10) in starts(open_slots(state, "net", at(0, 9), at(0, 11)))
    assert at(0, 10) not in starts(open_slots(new, "net", at(0, 9), at(0, 11)))


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"call_minutes": 0}, "call_minutes"),
        ({"horizon": timedelta(0)}, "horizon"),
        ({"min_notice": timedelta(hours=-1)}, "min_notice"),
        ({"buffer_minutes": -5}, "buffer_minutes"),
        ({"granularity_minutes": 0}, "granularity_minutes"),
        ({"reserve": 1.5}, "reserve"),
        ({"requirements": {"net": 9}}, "requirements.net"),
    ],
)
def test_capabilities_are_validated(kwargs: dict, field: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(ProblemError) as err:
        Capability("c", **kwargs)
    assert err.value.field == field


def test_states_and_calls_are_validated() -> None:
    a = agent("a", {"net": 3})
    with pytest.raises(ProblemError, match=r"calls\[0\]\.capability_id"):
        BookingState(MONDAY, (a,), (), (Call("c", "nope", at(0, 1), at(0, 2)),))
    with pytest.raises(ProblemError, match="end"):
        Call("c", "net", at(0, 2), at(0, 1))
    with pytest.raises(ProblemError, match="timezone-aware"):
        Call("c", "net", datetime(2026, 3, 23, 9), at(0, 1))  # noqa: DTZ001
    with pytest.raises(ProblemError, match="duplicate"):
        BookingState(MONDAY, (a, a), ())
    state = BookingState(MONDAY, (a,), (cap("net", {"net": 1}),))
    with pytest.raises(ProblemError, match="unknown capability"):
        open_slots(state, "nope", at(0, 0), at(1, 0))
    with pytest.raises(ProblemError, match="tz"):
        open_slots(state, "net", at(0, 0), at(1, 0), "Mars/Olympus")


def test_a_stored_cover_is_rebuilt_exactly_and_survives_cancellations() -> None:
    agents = [agent(n, {"x": 1}, [shift(0, 8, 18)]) for n in ("a", "b", "c")]
    state = BookingState(at(0, 7), tuple(agents), (cap("x", {"x": 1}, call_minutes=60),))
    for h in (9, 9, 9.5, 10, 11):
        r = book(state, "x", at(0, h))
        assert r.state is not None
        state = r.state
    cover = {c: a for c, a in witness(state).items() if a is not None}
    # Moved around on purpose: a valid cover other than the one the engine would search for.
    moved = {c: {"a": "c", "b": "a", "c": "b"}[a] for c, a in cover.items()}
    again = BookingState(state.now, state.agents, state.capabilities, state.calls, cover=moved)
    assert witness(again) == moved
    first = state.calls[0].id
    fewer = again.without_calls([first])
    assert witness(fewer) == {c: a for c, a in moved.items() if c != first}
    # A stale hint is only a hint: a call it cannot hold is covered by the search instead.
    wrong = BookingState(
        state.now, state.agents, state.capabilities, state.calls, cover={first: "zed"}
    )
    assert validate_calls(wrong, witness(wrong)) == []


def test_a_query_past_the_grid_rebuilds_it_with_the_same_cover() -> None:
    agents = [agent(n, {"x": 1}, [shift(d, 8, 18) for d in range(45)]) for n in ("a", "b")]
    c = cap("x", {"x": 1}, call_minutes=60, horizon=timedelta(days=30))
    state = BookingState(at(0, 7), tuple(agents), (c,))
    for h in (9, 9, 10):
        r = book(state, "x", at(12, h))
        assert r.state is not None
        state = r.state
    moved = {k: {"a": "b", "b": "a"}[v] for k, v in witness(state).items() if v is not None}
    state = BookingState(state.now, state.agents, state.capabilities, state.calls, cover=moved)
    idx = index_of(state)
    later = advance(state, at(10, 7))  # the index moves along with the clock ...
    assert index_of(later) is idx
    assert open_slots(later, "x", at(38, 0), at(39, 0))  # ... until a query reaches past it
    assert index_of(later) is not idx
    assert witness(later) == moved  # rebuilt from the cover it had, not searched afresh
    bare = BookingState(state.now, state.agents, state.capabilities, state.calls)  # no cover
    assert BookingIndex(bare).witness() != moved  # a fresh search finds another one ...
    assert BookingIndex(bare, hint=moved).witness() == moved  # ... the live cover is kept
