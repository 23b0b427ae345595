"""What a refusal says is true: the booking window in words, and, when every qualified agent
is taken, whether the engine proved it (each holds a call bound to them) or only gave up within
its bounded search (a cover may exist: the exhaustive checker finds one here)."""

from __future__ import annotations

from datetime import timedelta

from solver.capability import BookingState, Call
from solver.slots import book, find_slots
from tests.solver.test_booking_factories import agent, at, brute_force_cover, cap, shift, with_call


def test_the_booking_window_is_said_in_words_with_its_first_and_last_start() -> None:
    c = cap("net", {"net": 1}, min_notice=timedelta(hours=2), horizon=timedelta(days=14))
    state = BookingState(at(0, 8), (agent("a", {"net": 1}, [shift(0, 9, 17)]),), (c,))
    refused = book(state, "net", at(0, 9))
    assert refused.reason is not None and refused.reason.rule == "outside_booking_window"
    assert refused.reason.detail == (
        "calls of net can be booked from 2 hours to 14 days ahead: "
        "starting between Mon 23 Mar 10:00 and Mon 6 Apr 07:59 UTC"
    )
    odd = cap("x", {"net": 1}, min_notice=timedelta(0), horizon=timedelta(days=1, minutes=90))
    state = BookingState(at(0, 8), state.agents, (odd,))
    answer = find_slots(state, "x", at(3, 0), at(4, 0))
    assert answer.reason is not None
    assert answer.reason.detail.startswith(
        "calls of x can be booked from now to 1 day 1 hour 30 minutes ahead"
    )


def test_a_refusal_by_bound_calls_says_they_are_bound() -> None:
    c = cap("net", {"net": 1}, call_minutes=30)
    call = Call("c1", "net", at(0, 10), at(0, 10.5), bound_agent="a")
    state = BookingState(at(0, 8), (agent("a", {"net": 1}, [shift(0, 9, 17)]),), (c,), (call,))
    refused = book(state, "net", at(0, 10))
    assert refused.reason is not None and refused.reason.rule == "fully_booked"
    assert "already bound to them" in refused.reason.detail
    assert brute_force_cover(with_call(state, "net", at(0, 10))) is None


def test_a_refusal_by_the_bounded_search_says_so_not_that_everybody_is_needed() -> None:
    """A chain three moves deep (new -> a, X1 a -> b, X2 b -> c, X3 c -> d) is past the
    search's depth: refused, yet a cover exists, so the text must not claim all are needed."""
    caps = (
        cap("new", {"p": 1}),
        cap("c1", {"q": 1}),
        cap("c2", {"r": 1}),
        cap("c3", {"s": 1}),
    )
    on = [shift(0, 9, 17)]
    agents = (
        agent("a", {"p": 1, "q": 1}, on),
        agent("b", {"q": 1, "r": 1}, on),
        agent("c", {"r": 1, "s": 1}, on),
        agent("d", {"s": 1}, on),
    )
    calls = tuple(
        Call(f"x{i}", f"c{i}", at(0, 10), at(0, 10.5), ticket_id=f"T{i}") for i in (1, 2, 3)
    )
    state = BookingState(at(0, 8), agents, caps, calls, cover={"x1": "a", "x2": "b", "x3": "c"})
    refused = book(state, "new", at(0, 10))
    assert not refused.booked and refused.reason is not None
    assert refused.reason.rule == "fully_booked"
    assert "could not confirm cover" in refused.reason.detail
    assert "search limit" in refused.reason.detail
    assert "all needed" not in refused.reason.detail
    assert brute_force_cover(with_call(state, "new", at(0, 10))) is not None  # it was feasible
