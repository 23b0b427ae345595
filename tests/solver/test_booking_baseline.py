"""solver.booking_baseline: the market's rule (any free qualified host; bind the least recently
booked one at once; no reserve, no re-shuffling), checked on examples and against a brute-force
reading of that rule."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import event, given
from hypothesis import strategies as st

from solver.booking_baseline import baseline_book, baseline_disrupt, baseline_open_slots
from solver.capability import BookingState, Capability, StatusChanged
from solver.problem import Agent, AgentStatus
from solver.slots import open_slots, validate_calls
from tests.solver.test_booking_factories import agent, at, cap, shift

NET = cap("net", {"net": 2}, call_minutes=30)


def state_of(*agents: Agent, capability: Capability = NET, **kw: object) -> BookingState:
    return BookingState(at(0, 8), agents, (capability,), **kw)  # type: ignore[arg-type]


def book_all(state: BookingState, *hours: float) -> tuple[BookingState, list[str | None]]:
    """Book a call at each hour on day 0; the new state and who was bound (None: refused)."""
    who: list[str | None] = []
    for h in hours:
        result = baseline_book(state, "net", at(0, h))
        if result.state is None:
            who.append(None)
            continue
        assert result.call is not None
        state = result.state
        who.append(result.call.bound_agent)
    return state, who


def starts(slots: list) -> list[datetime]:  # type: ignore[type-arg]
    return [s.start.astimezone(UTC) for s in slots]


# ---------------------------------------------------------------------------- booking
def test_round_robin_binds_the_least_recently_booked_free_host() -> None:
    day = [shift(0, 9, 17)]
    hosts = (agent("a", {"net": 3}, day), agent("b", {"net": 2}, day), agent("c", {"net": 5}, day))
    state, who = book_all(state_of(*hosts), 10, 11, 12, 13, 14)
    assert who == ["a", "b", "c", "a", "b"]  # never-booked first, in roster order
    assert all(c.bound_agent is not None for c in state.calls)  # every baseline call is bound


def test_a_host_holding_a_call_is_passed_over_and_nobody_free_is_fully_booked() -> None:
    day = [shift(0, 9, 17)]
    state, who = book_all(state_of(agent("a", {"net": 3}, day), agent("b", {"net": 3}, day)), 10)
    assert who == ["a"]
    state, who = book_all(state, 10.25)  # overlaps a's 10:00-10:30
    assert who == ["b"]
    refused = baseline_book(state, "net", at(0, 10))
    assert not refused.booked and refused.reason is not None
    assert refused.reason.rule == "fully_booked"


def test_unqualified_away_or_off_shift_hosts_are_never_bound() -> None:
    _, who = book_all(
        state_of(
            agent("novice", {"net": 1}, [shift(0, 9, 17)]),
            agent("away", {"net": 3}, [shift(0, 9, 17)], status=AgentStatus.AWAY),
            agent("evening", {"net": 3}, [shift(0, 17, 22)]),
        ),
        10,
        18,
    )
    assert who == [None, "evening"]


def test_the_booking_window_is_enforced() -> None:
    state = state_of(agent("a", {"net": 3}, [shift(d, 0, 24) for d in range(3)]))
    early = cap("net", {"net": 2}, min_notice=timedelta(hours=2), horizon=timedelta(days=1))
    state = state_of(*state.agents, capability=early)
    for start in (at(0, 9), at(1, 8)):  # 1 h notice; exactly one day ahead
        refused = baseline_book(state, "net", start)
        assert refused.reason is not None and refused.reason.rule == "outside_booking_window"
    assert baseline_book(state, "net", at(0, 10)).booked


# ---------------------------------------------------------------------------- open slots
def test_open_slots_need_one_free_host_and_respect_the_wrap_up_buffer() -> None:
    buffered = cap("net", {"net": 2}, call_minutes=30, buffer_minutes=15)
    state = state_of(agent("a", {"net": 3}, [shift(0, 9, 11)]), capability=buffered)
    assert starts(baseline_open_slots(state, "net", at(0, 8), at(0, 12)))[-1] == at(0, 10.25)
    state = baseline_book(state, "net", at(0, 9)).state
    assert state is not None
    offered = starts(baseline_open_slots(state, "net", at(0, 8), at(0, 12)))
    assert at(0, 9.5) not in offered and offered[0] == at(0, 9.75)


def test_the_baseline_keeps_no_reserve_for_ticket_work() -> None:
    # Two people, half kept for tickets: our engine offers one call at a time, the market two.
    day = [shift(0, 9, 12)]
    state = state_of(
        agent("a", {"net": 3}, day), agent("b", {"net": 3}, day), team_reserve={"t": 0.5}
    )
    state, who = book_all(state, 10)
    assert who == ["a"]
    assert at(0, 10) in starts(baseline_open_slots(state, "net", at(0, 9), at(0, 12)))
    assert at(0, 10) not in starts(open_slots(state, "net", at(0, 9), at(0, 12)))


def test_slots_are_answered_in_the_customers_zone() -> None:
    state = state_of(agent("a", {"net": 3}, [shift(0, 9, 10)]))
    [first, *_] = baseline_open_slots(state, "net", at(0, 8), at(0, 12), tz="Asia/Kolkata")
    assert first.start.utcoffset() == timedelta(hours=5, minutes=30)
    assert first.start == at(0, 9) and first.end - first.start == timedelta(minutes=30)


# ---------------------------------------------------------------------------- disruption
def test_a_host_going_away_hands_each_call_to_a_free_host_or_puts_it_at_risk() -> None:
    day = [shift(0, 9, 17)]
    state, who = book_all(
        state_of(agent("a", {"net": 3}, day), agent("b", {"net": 3}, day)), 10, 10, 12
    )
    assert who == ["a", "b", "a"]
    report = baseline_disrupt(state, StatusChanged("a", AgentStatus.AWAY))
    # a's 12:00 call goes to b; a's 10:00 call finds b busy and is lost.
    assert [(r.agent_id, r.previous_agent) for r in report.rebound] == [("b", "a")]
    assert [(r.reason.rule, r.previous_agent) for r in report.at_risk] == [("uncoverable", "a")]
    assert len(report.affected) == 2 and report.moved_unbound == 0
    held = sorted((c.start, str(c.bound_agent)) for c in report.state.calls)
    assert held == [(at(0, 10), "None"), (at(0, 10), "b"), (at(0, 12), "b")]


def test_a_change_that_touches_no_call_changes_nothing() -> None:
    day = [shift(0, 9, 17)]
    state, _ = book_all(state_of(agent("a", {"net": 3}, day), agent("b", {"net": 3}, day)), 10)
    report = baseline_disrupt(state, StatusChanged("b", AgentStatus.OFFLINE))
    assert report.rebound == () and report.at_risk == () and report.affected == ()
    assert [c.bound_agent for c in report.state.calls] == ["a"]


# ---------------------------------------------------------------------------- property
def _free(state: BookingState, host: Agent, start: datetime, end: datetime) -> bool:
    """The rule read literally: on one shift, not busy, available, holding no call then."""
    buffer = timedelta(minutes=NET.buffer_minutes)
    on = any(s.start <= start and end <= s.end for s in host.shifts)
    busy = any(b.start < end and start < b.end for b in host.busy)
    held = any(
        c.bound_agent == host.id and c.start < end and start < c.end + buffer for c in state.calls
    )
    return host.status is AgentStatus.AVAILABLE and on and not busy and not held


HOURS = st.integers(9 * 4, 17 * 4 - 1).map(lambda q: q / 4)


@given(
    shifts=st.lists(st.tuples(st.integers(8, 12), st.integers(13, 18)), min_size=1, max_size=3),
    bookings=st.lists(HOURS, max_size=8),
)
def test_property_open_slots_follow_the_rule_and_every_offer_books(
    shifts: list[tuple[int, int]], bookings: list[float]
) -> None:
    hosts = tuple(agent(f"h{i}", {"net": 3}, [shift(0, s, e)]) for i, (s, e) in enumerate(shifts))
    state, _ = book_all(state_of(*hosts), *bookings)
    event(f"calls held: {min(len(state.calls), 4)}")
    # Every call is bound and the binding keeps the booking rules (no reserve is set).
    assert validate_calls(state, {c.id: c.bound_agent for c in state.calls}) == []
    lo, hi = at(0, 8), at(0, 19)
    offered = starts(baseline_open_slots(state, "net", lo, hi))
    call = timedelta(minutes=NET.call_minutes)
    expected = [
        m
        for m in (lo + timedelta(minutes=15 * k) for k in range(44))
        if any(_free(state, h, m, m + call) for h in hosts)
    ]
    assert offered == expected
    for start in offered:
        assert baseline_book(state, "net", start).booked
