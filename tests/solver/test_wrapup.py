"""The wrap-up buffer protects the agent after the call ends: a call holds its agent from its
start to its end plus its capability's buffer, in the engine (slots, booking, just-in-time
binding, disruption repair) and in the independent validator, also once the call is over.

A call that ended but is still in wrap-up has happened: it keeps the agent who took it (bound,
else its last cover) and is never moved, whatever that agent's shift says now.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from solver.capability import BookingState, Call, ShiftRemoved
from solver.jit import assign_due, disrupt
from solver.slots import at_risk, book, index_of, open_slots, validate_calls, witness
from tests.solver.test_booking_factories import agent, at, cap, shift
from tests.solver.test_booking_props import organisations, requests, run_stream

NET = cap("net", {"net": 1}, call_minutes=30, buffer_minutes=15, granularity_minutes=5)
# 09:00-09:30 call; its wrap-up runs to 09:45.
CALL = Call("c1", "net", at(0, 9), at(0, 9.5), ticket_id="T1")


def starts(slots: list) -> list[datetime]:  # type: ignore[type-arg]
    return [s.start.astimezone(UTC) for s in slots]


def _state(now: datetime, *agents_: str, bound: str | None = "ana", **kw: object) -> BookingState:
    who = [agent(a, {"net": 2}, [shift(0, 8, 17)]) for a in agents_]
    call = Call(CALL.id, CALL.capability_id, CALL.start, CALL.end, "T1", bound_agent=bound)
    return BookingState(now, tuple(who), (NET,), (call,), **kw)  # type: ignore[arg-type]


def test_an_agent_in_wrap_up_is_offered_only_once_it_ends() -> None:
    state = _state(at(0, 9.5) + timedelta(minutes=1), "ana")  # 09:31: the call is over
    offered = starts(open_slots(state, "net", at(0, 9.5), at(0, 10.5)))
    assert at(0, 9.5) + timedelta(minutes=5) not in offered  # 09:35: inside the wrap-up
    assert at(0, 9.5) + timedelta(minutes=10) not in offered
    assert offered[0] == at(0, 9.75)  # 09:45: the wrap-up is over
    refused = book(state, "net", at(0, 9.5) + timedelta(minutes=10))
    assert not refused.booked and refused.reason is not None
    assert refused.reason.rule == "fully_booked"
    assert at(0, 9.75) in starts(list(refused.alternatives))
    assert witness(state) == {"c1": "ana"}  # it keeps its agent; it is not "at risk"
    assert at_risk(state) == []


def test_an_unbound_call_in_wrap_up_keeps_its_last_cover() -> None:
    state = _state(at(0, 9.6), "ana", "ben", bound=None, cover={"c1": "ben"})
    result = book(state, "net", at(0, 9.5) + timedelta(minutes=10), call_id="c2")
    assert result.booked and result.state is not None
    assert witness(result.state) == {"c1": "ben", "c2": "ana"}  # not onto ben's wrap-up
    assert validate_calls(result.state, witness(result.state)) == []


def test_after_the_wrap_up_the_call_is_over() -> None:
    state = _state(at(0, 9.75), "ana")  # 09:45 exactly
    assert witness(state) == {}
    assert book(state, "net", at(0, 9.75)).booked


def test_jit_does_not_bind_onto_an_agent_in_wrap_up_even_the_owner() -> None:
    state = _state(at(0, 9.55), "ana", "ben")
    new = Call("c2", "net", at(0, 9.6), at(0, 10.1), "T2", owner_agent="ana")
    state = BookingState(state.now, state.agents, state.capabilities, (*state.calls, new))
    result = assign_due(state, lead=timedelta(hours=2))
    assert [(b.call_id, b.agent_id) for b in result.bindings] == [("c2", "ben")]
    assert validate_calls(result.state, witness(result.state)) == []


def test_a_disruption_during_the_wrap_up_moves_nothing() -> None:
    state = _state(at(0, 9.55), "ana", "ben")
    report = disrupt(state, ShiftRemoved("ana", at(0, 9.5), at(0, 17)))
    assert report.rebound == () and report.at_risk == ()
    assert witness(report.state) == {"c1": "ana"}
    assert index_of(report.state).pinned == {0}


def test_the_validator_sees_a_call_overlapping_a_wrap_up() -> None:
    state = _state(at(0, 9.55), "ana", "ben")
    new = Call("c2", "net", at(0, 9.6), at(0, 10.1), "T2")
    state = BookingState(state.now, state.agents, state.capabilities, (*state.calls, new))
    assert validate_calls(state, {"c1": "ana", "c2": "ana"}) == [
        "ana: calls c1 and c2 overlap (with buffer)"
    ]
    assert validate_calls(state, {"c1": "ana", "c2": "ben"}) == []
    # Wrap-up is not checked against the agent's shift: the call has happened.
    gone = BookingState(
        state.now,
        (agent("ana", {"net": 2}, [shift(0, 8, 9.5)]), state.agents[1]),
        state.capabilities,
        state.calls,
    )
    assert validate_calls(gone, {"c1": "ana", "c2": "ben"}) == []


def _holders(state: BookingState) -> dict[str, str]:
    cover = witness(state)
    out = {c.id: c.bound_agent for c in state.calls if c.bound_agent is not None}
    out.update({c: a for c, a in cover.items() if a is not None and c not in out})
    return out


def _overlaps(
    calls: dict[str, Call], buffers: dict[str, int], holder: dict[str, str], now: datetime
) -> list[str]:
    """Pairs of calls one agent holds at once. A call not over at ``now`` may have been moved
    then (it was unbound): its holder holds it from ``now``."""
    spans: dict[str, list[tuple[datetime, datetime, str]]] = {}
    for cid, a in holder.items():
        c = calls[cid]
        end = c.end + timedelta(minutes=buffers[c.capability_id])
        start = c.start if c.end <= now else max(c.start, now)
        spans.setdefault(a, []).append((start, end, cid))
    bad = []
    for a, lst in spans.items():
        lst.sort()
        for i, (_s1, e1, c1) in enumerate(lst):
            bad += [f"{a}: {c1}/{c2}" for s2, _e2, c2 in lst[i + 1 :] if s2 < e1]
    return bad


soon = st.lists(
    st.tuples(st.integers(0, 2), st.integers(0, 6), st.integers(0, 50)), min_size=1, max_size=8
)


@settings(max_examples=80, deadline=None)
@given(organisations(), requests, soon, st.integers(0, 50), st.integers(0, 14), st.integers(1, 12))
def test_no_agent_is_ever_given_a_call_overlapping_another_calls_wrap_up(
    state: BookingState,
    first: list[tuple[int, int, int]],
    later: list[tuple[int, int, int]],
    pick: int,
    into: int,
    lead_h: int,
) -> None:
    """Book, bind, let time pass to just after one call's end (into its wrap-up), rebuild the
    state as a service does (stored cover), book around then and bind again: no agent ever
    holds two calls whose start..end+buffer overlap — checked over every call ever booked,
    including those that are over."""
    buffers = {c.id: c.buffer_minutes for c in state.capabilities}
    state = run_stream(state, first)
    state = assign_due(state, lead=timedelta(hours=lead_h)).state
    assert validate_calls(state, witness(state)) == []
    ever = dict(_holders(state))
    ended = sorted(c.end for c in state.calls) or [state.now + timedelta(hours=3)]
    now = ended[pick % len(ended)] + timedelta(minutes=into)
    cover = {c: a for c, a in witness(state).items() if a is not None}
    state = BookingState(now, state.agents, state.capabilities, state.calls, cover=cover)
    kept = _holders(state)
    for cid, a in kept.items():  # a call in wrap-up kept whoever held it
        if state.call(cid).end <= now:
            assert ever.get(cid) == a
    ever.update(kept)
    for cap_i, q, _p in later:  # straight after `now`: inside the wrap-ups
        cap_id = state.capabilities[cap_i % len(state.capabilities)].id
        result = book(state, cap_id, now + timedelta(minutes=5 * q), alternatives=0)
        state = result.state or state
    assert validate_calls(state, witness(state)) == []
    state = assign_due(state, lead=timedelta(hours=lead_h)).state
    assert validate_calls(state, witness(state)) == []
    for cid, a in _holders(state).items():
        if state.call(cid).end > now or cid not in ever:
            ever[cid] = a  # calls not yet over may move; those over keep their first holder
    calls = {c.id: c for c in state.calls}
    assert _overlaps(calls, buffers, ever, now) == []
