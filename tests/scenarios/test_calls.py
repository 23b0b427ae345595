"""The booking engine inside the simulation (scenarios.calls): what a customer is offered books,
booked calls are bound just in time to a qualified working agent, an absence re-binds or reports
at risk, nobody is ever on two calls at once, and a seed decides everything.

Worlds are small (a few agents, one or two days) so the whole file runs in seconds."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, time, timedelta

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scenarios.calls import (
    JIT_SOLVER_PARAMS,
    Absence,
    CallDesk,
    Request,
    booking_agents,
    drive,
)
from scenarios.model import AgentPlan, Break, Demand, ShiftPattern, World
from scenarios.results import CALL_COLUMNS, frame
from solver import jit, slots
from solver.capability import BookingState, Capability
from solver.jit.model import DEFAULT_SOLVER_PARAMS
from solver.problem import AgentStatus, Skill, Team

MONDAY = datetime(2026, 3, 23, tzinfo=UTC)  # a week with a DST change in Europe (29 March)
DAY = (0, 1, 2, 3, 4, 5, 6)


def _world(
    agents: list[AgentPlan], caps: list[Capability], *, days: int = 1, tz: str = "UTC"
) -> World:
    return World(
        "calls",
        MONDAY,
        days,
        (Skill("net"), Skill("de")),
        (Team("t1"), Team("t2")),
        tuple(agents),
        Demand(),
        capabilities=tuple(caps),
        timezone=tz,
    )


def _agent(
    i: int, level: int = 1, start: int = 8, hours: int = 8, team: str = "t1", de: bool = False
) -> AgentPlan:
    end = time((start + hours) % 24)
    brk = (Break(time((start + hours // 2) % 24), 30),) if hours >= 6 else ()
    skills = {"net": level, **({"de": 1} if de else {})}
    return AgentPlan(f"a{i}", team, skills, (ShiftPattern(DAY, time(start), end, brk),))


def _cap(
    cid: str = "net",
    level: int = 1,
    call: int = 30,
    buffer: int = 5,
    notice: int = 60,
    horizon_days: int = 2,
    reserve: float = 0.0,
    de: bool = False,
) -> Capability:
    return Capability(
        cid,
        requirements={"net": level, **({"de": 1} if de else {})},
        call_minutes=call,
        buffer_minutes=buffer,
        min_notice=timedelta(minutes=notice),
        horizon=timedelta(days=horizon_days),
        reserve=reserve,
    )


def _desk(world: World, seed: int = 0, **kw: object) -> CallDesk:
    return CallDesk(
        world,
        booking_agents(world),
        now=world.start,
        rng=np.random.default_rng(seed),
        **kw,  # type: ignore[arg-type]
    )


def _at(hours: float) -> datetime:
    return MONDAY + timedelta(hours=hours)


def _works(desk: CallDesk, agent: str, start: datetime, end: datetime) -> bool:
    """The agent works (in the engine's latest view: absences cut out) over [start, end)."""
    a = desk.state.agent(agent)
    return any(iv.start <= start and end <= iv.end for iv in a.shifts) and not any(
        b.start < end and start < b.end for b in a.busy
    )


def test_the_engines_solver_parameters_are_the_ones_the_desk_copies() -> None:
    assert dict(JIT_SOLVER_PARAMS) == dict(DEFAULT_SOLVER_PARAMS)


def test_every_offered_slot_books() -> None:
    """Whatever the book holds, each start the engine offers can be booked in that state."""
    world = _world([_agent(i, level=1 + i % 2) for i in range(3)], [_cap(), _cap("x", level=2)])
    desk = _desk(world, seed=3)
    for i in range(25):  # fill the first day
        desk.request(f"t{i}", "net" if i % 3 else "x", _at(0))
    assert desk.stats.refused == 0
    state = desk.state
    for cap in ("net", "x"):
        offered = slots.find_slots(state, cap, state.now, state.now + timedelta(days=2)).slots
        assert offered
        for slot in offered:
            assert slots.book(state, cap, slot.start, "probe", alternatives=0).booked, slot


def test_the_customer_takes_one_of_the_first_few_and_earliest_when_asked() -> None:
    world = _world([_agent(0), _agent(1)], [_cap(horizon_days=1)])
    first = _desk(world, pick_among=1)
    call = first.request("t0", "net", _at(0))
    assert call is not None
    (row,) = first.rows()
    # 08:00 shift, an hour's notice from midnight: the first start of the day.
    assert row[CALL_COLUMNS.index("start")] == _at(8)
    chosen = set()
    for seed in range(12):
        desk = _desk(world, seed=seed, pick_among=3)
        desk.request("t0", "net", _at(0))
        chosen.add(desk.rows()[0][CALL_COLUMNS.index("start")])
    # both agents are free: the first three starts are 08:00, 08:15, 08:30
    assert chosen == {_at(8), _at(8.25), _at(8.5)}


def test_no_slot_is_counted_and_draws_stay_aligned() -> None:
    """Nobody qualifies: no call, counted; the customer's draw is consumed all the same, so a
    scenario offering fewer slots does not shift the next customers' choices (common random
    numbers)."""
    world = _world([_agent(0, level=1)], [_cap("hard", level=2), _cap()])
    rng = np.random.default_rng(5)
    desk = CallDesk(world, booking_agents(world), now=MONDAY, rng=rng)
    assert desk.request("t0", "hard", _at(0)) is None
    assert desk.stats.no_slot == 1 and desk.stats.requests == 1
    assert rng.bit_generator.state == _drawn(5, 1)
    with pytest.raises(ValueError, match="unknown capability"):
        desk.request("t1", "nope", _at(0))


def _drawn(seed: int, n: int) -> object:
    rng = np.random.default_rng(seed)
    rng.random(n)
    return rng.bit_generator.state


def test_a_booked_call_is_bound_just_in_time_to_a_qualified_working_agent() -> None:
    world = _world(
        [_agent(0, level=1), _agent(1, level=2, start=10), _agent(2, level=2, start=4, hours=4)],
        [_cap("x", level=2, notice=0), _cap("y", level=2, notice=240)],
    )
    desk = _desk(world, pick_among=1)
    call = desk.request("t0", "x", _at(5))
    assert call is not None
    start = desk.state.call(call).start
    assert start == _at(5)  # a2 works 04:00-08:00 and nobody else qualifies that early
    due = desk.next_due()
    assert due == desk.now  # inside the lead time already: bind at once
    (binding,) = desk.bind_due(due)
    assert binding[:3] == (call, "a2", start)
    assert binding[3] == start + timedelta(minutes=35)  # occupancy: call + buffer
    assert desk.busy_for("a2") == [(start, binding[3])]
    assert desk.last_changed == ["a2"]
    assert desk.next_due() is None

    # Booked with notice: bound at the lead time before its start, not a minute earlier.
    later = desk.request("t1", "y", _at(5.5))
    assert later is not None
    s = desk.state.call(later).start
    assert s == _at(10)  # four hours' notice: a2 has gone home at 08:00, a1 starts at 10:00
    due = desk.next_due()
    assert due == s - jit.DEFAULT_LEAD + timedelta(minutes=1)
    assert desk.bind_due(due - timedelta(minutes=1)) == []
    assert desk.next_due() == due
    (b,) = desk.bind_due(due)
    assert b[0] == later and b[2] == s
    assert b[1] == "a1" and _works(desk, b[1], s, b[3])
    assert desk.next_due() is None
    ix = {name: k for k, name in enumerate(CALL_COLUMNS)}
    row = desk.rows()[1]
    assert (row[ix["call_id"]], row[ix["bound_agent"]], row[ix["bound_at"]]) == (later, b[1], due)


def test_an_absence_rebinds_the_call_to_another_qualified_agent() -> None:
    world = _world([_agent(0, level=2), _agent(1, level=2)], [_cap()])
    desk = _desk(world, pick_among=1)
    call = desk.request("t0", "net", _at(5))
    assert call is not None and desk.state.call(call).start == _at(8)
    (binding,) = desk.bind_due(desk.next_due() or desk.now)
    holder = binding[1]
    other = "a1" if holder == "a0" else "a0"
    assert desk.agent_away(holder, _at(7), _at(24), _at(6.5)) == []
    occupied = (_at(8), _at(8) + timedelta(minutes=35))
    assert desk.last_rebound == [(call, other, *occupied)]
    assert desk.last_changed == [holder, other]
    assert desk.busy_for(holder) == [] and desk.busy_for(other) == [occupied]
    drive(desk, [], [], world.end)
    ix = {name: k for k, name in enumerate(CALL_COLUMNS)}
    (row,) = desk.rows()
    assert (row[ix["bound_agent"]], row[ix["rebinds"]], row[ix["held"]]) == (other, 1, True)
    assert row[ix["at_risk_at"]] is None
    assert desk.stats.rebinds == 1 and desk.stats.disruptions == 1


def test_an_absence_nobody_can_cover_reports_the_call_at_risk() -> None:
    world = _world([_agent(0, level=2), _agent(1, level=2)], [_cap(notice=0)])
    desk = _desk(world, pick_among=1)
    first = desk.request("t0", "net", _at(8))
    second = desk.request("t1", "net", _at(8))
    assert first and second
    bound = {b[0]: b[1] for b in desk.bind_due(_at(8))}
    assert set(bound) == {first, second} and set(bound.values()) == {"a0", "a1"}
    # Both 08:00 calls are under way: the first's agent finishes it (and its wrap-up), then goes.
    assert desk.agent_away(bound[first], _at(8), _at(24), _at(8)) == []
    assert desk.last_rebound == []
    assert desk.busy_for(bound[first]) == [(_at(8), _at(8) + timedelta(minutes=35))]
    assert _works(desk, bound[first], _at(8), _at(8) + timedelta(minutes=35))
    assert not _works(desk, bound[first], _at(8) + timedelta(minutes=35), _at(9))
    # One agent left, on a call until 08:35: the next start on the 15-minute grid is 08:45.
    third = desk.request("t2", "net", _at(8) + timedelta(minutes=10))
    assert third is not None and desk.state.call(third).start == _at(8.75)
    (b3,) = desk.bind_due(desk.next_due() or desk.now)
    assert b3[:2] == (third, bound[second])
    # ... and that agent falls ill from 08:40: nobody can take the 08:45 call any more.
    learnt = _at(8) + timedelta(minutes=20)
    assert desk.agent_away(bound[second], _at(8) + timedelta(minutes=40), _at(24), learnt) == [
        third
    ]
    assert desk.busy_for(bound[second]) == [(_at(8), _at(8) + timedelta(minutes=35))]
    assert desk.last_rebound == [] and desk.last_changed == [bound[second]]
    assert desk.next_due() == desk.now  # unbound inside the lead time: binding retries at once
    assert desk.bind_due(desk.now) == []
    drive(desk, [], [], world.end)
    ix = {name: k for k, name in enumerate(CALL_COLUMNS)}
    row = next(r for r in desk.rows() if r[0] == third)
    assert row[ix["at_risk_at"]] == learnt and row[ix["held"]] is False
    assert row[ix["bound_agent"]] == bound[second]  # the last agent it was bound to
    assert desk.stats.lost == 1 and desk.stats.at_risk == 1
    assert third not in {c.id for c in desk.state.calls}  # it never happened


def test_time_only_moves_forward() -> None:
    desk = _desk(_world([_agent(0)], [_cap()]))
    desk.request("t0", "net", _at(2))
    with pytest.raises(ValueError, match="forward"):
        desk.bind_due(_at(1))


# --- the properties, over small random worlds ----------------------------------------------


@st.composite
def _floors(draw: st.DrawFn) -> tuple[World, list[Request], list[Absence], int]:
    n = draw(st.integers(2, 5))
    agents = [
        _agent(
            i,
            level=draw(st.integers(1, 2)),
            start=draw(st.integers(0, 14)),
            hours=draw(st.integers(4, 10)),
            team=draw(st.sampled_from(["t1", "t2"])),
            de=draw(st.booleans()),
        )
        for i in range(n)
    ]
    caps = [
        _cap(
            f"c{j}",
            level=draw(st.integers(1, 2)),
            call=draw(st.sampled_from([15, 30, 45, 60])),
            buffer=draw(st.sampled_from([0, 5, 10])),
            notice=draw(st.sampled_from([0, 30, 60, 240])),
            horizon_days=draw(st.integers(1, 2)),
            reserve=draw(st.sampled_from([0.0, 0.0, 0.25, 0.5])),
            de=draw(st.booleans()),
        )
        for j in range(draw(st.integers(1, 2)))
    ]
    world = _world(agents, caps, tz=draw(st.sampled_from(["UTC", "Europe/Berlin"])))
    times = draw(st.lists(st.integers(0, 24 * 60 - 1), min_size=1, max_size=40))
    requests = [
        Request(
            MONDAY + timedelta(minutes=m),
            f"t{i:03d}",
            caps[draw(st.integers(0, len(caps) - 1))].id,
            owner=draw(st.sampled_from([None, "a0", "a1"])),
        )
        for i, m in enumerate(times)
    ]
    absences = []
    for _ in range(draw(st.integers(0, 4))):
        start = draw(st.integers(0, 24 * 60 - 30))
        length = draw(st.integers(30, 12 * 60))
        known = draw(st.integers(max(0, start - 180), start))
        absences.append(
            Absence(
                MONDAY + timedelta(minutes=known),
                f"a{draw(st.integers(0, n - 1))}",
                MONDAY + timedelta(minutes=start),
                MONDAY + timedelta(minutes=start + length),
            )
        )
    return world, requests, absences, draw(st.integers(0, 2**16))


@settings(max_examples=20, deadline=None)
@given(_floors())
def test_nobody_is_double_booked_and_every_held_call_had_a_qualified_working_agent(
    floor: tuple[World, list[Request], list[Absence], int],
) -> None:
    world, requests, absences, seed = floor
    desk = _desk(
        world,
        seed=seed,
        jit_method="greedy" if seed % 2 else "cpsat",
        on_risk="rebook" if seed % 3 == 0 else "keep",
    )
    # Six hours at a time, checking the engine's whole book against the booking rules (written
    # from the rules, not the engine's grid) between: overlaps, shifts, skills, team reserves.
    for k in range(1, 5):
        lo, hi = world.start + timedelta(hours=6 * (k - 1)), world.start + timedelta(hours=6 * k)
        drive(
            desk,
            [r for r in requests if lo <= r.at < hi],
            [a for a in absences if lo <= a.known_at < hi],
            hi,
        )
        cover = {c: a for c, a in slots.witness(desk.state).items() if a is not None}
        assert slots.validate_calls(desk.state, cover) == [
            f"{c}: nobody covers it"
            for c in (call.id for call in desk.state.calls)
            if c not in cover and call_end(desk, c) > desk.now
        ]
        _offered_starts_book(desk, cover)
        for req in requests[k - 1 :: 4]:  # tickets change hands: binding follows the owner
            desk.owner_changed(req.ticket, f"a{k % len(world.agents)}")
    stats = desk.stats
    assert stats.refused == 0  # every offered start booked
    assert stats.booked - stats.rebooked + stats.no_slot == stats.requests == len(requests)
    caps = {c.id: c for c in world.capabilities}
    spans: dict[str, list[tuple[datetime, datetime]]] = {}
    ix = {name: k for k, name in enumerate(CALL_COLUMNS)}
    for row in desk.rows():
        start, end = row[ix["start"]], row[ix["end"]]
        assert isinstance(start, datetime) and isinstance(end, datetime)
        if not row[ix["held"]]:
            continue
        agent = row[ix["bound_agent"]]
        assert isinstance(agent, str)
        cap = caps[str(row[ix["capability"]])]
        occ_end = end + timedelta(minutes=cap.buffer_minutes)
        assert desk.state.agent(agent).qualifies(cap.requirements)
        assert _works(desk, agent, start, occ_end), (row, desk.state.agent(agent).shifts)
        bound_at = row[ix["bound_at"]]
        assert isinstance(bound_at, datetime) and bound_at <= start
        spans.setdefault(agent, []).append((start, occ_end))
    for agent, occupied in spans.items():
        occupied.sort()
        assert set(occupied) <= set(desk.busy_for(agent))
        for (_s1, e1), (s2, _e2) in itertools.pairwise(occupied):
            assert e1 <= s2, (agent, occupied)
    for agent in (a.id for a in world.agents):  # what the simulation sees as busy, too
        busy = desk.busy_for(agent)
        for (_s1, e1), (s2, _e2) in itertools.pairwise(busy):
            assert e1 <= s2, (agent, busy)


def _offered_starts_book(desk: CallDesk, cover: dict[str, str]) -> None:
    """On a copy of the desk's book (the engine rebuilt from the same cover), each of the
    first starts offered for each capability in the coming day books."""
    now = desk.now
    for cap in desk.state.capabilities:
        copy = BookingState(now, desk.state.agents, desk.state.capabilities, desk.state.calls,
                            cover=cover)  # fmt: skip
        for slot in slots.find_slots(copy, cap.id, now, now + timedelta(days=1)).slots[:8]:
            again = BookingState(now, copy.agents, copy.capabilities, copy.calls, cover=cover)
            assert slots.book(again, cap.id, slot.start, alternatives=0).booked, slot


def call_end(desk: CallDesk, call_id: str) -> datetime:
    return desk.state.call(call_id).end


def _day(seed: int) -> tuple[World, list[Request], list[Absence]]:
    world = _world(
        [_agent(i, level=1 + i % 2, start=6 + 2 * (i % 4), de=i % 3 == 0) for i in range(6)],
        [_cap(reserve=0.2), _cap("de", level=2, call=45, buffer=10, de=True, notice=120)],
        days=2,
        tz="Europe/Berlin",
    )
    rng = np.random.default_rng(seed)
    minutes = np.sort(rng.integers(0, 2 * 24 * 60, 60))
    requests = [
        Request(MONDAY + timedelta(minutes=int(m)), f"t{i:03d}", "net" if i % 4 else "de")
        for i, m in enumerate(minutes)
    ]
    absences = [
        Absence(_at(7), "a1", _at(7), _at(20)),
        Absence(_at(30), "a3", _at(32), _at(40)),
    ]
    return world, requests, absences


def test_the_same_seed_gives_the_same_calls_and_another_seed_other_choices() -> None:
    world, requests, absences = _day(11)
    runs = []
    for seed in (4, 4, 5):
        desk = _desk(world, seed=seed)
        drive(desk, requests, absences, world.end)
        runs.append(frame(desk.rows(), CALL_COLUMNS).to_csv(index=False))
        assert desk.stats.bound > 0
    assert runs[0] == runs[1]
    assert runs[0] != runs[2]


def test_over_calls_leave_the_state_and_the_rows_keep_them() -> None:
    world, requests, absences = _day(2)
    desk = _desk(world, seed=1)
    drive(desk, requests, absences, world.end)
    rows = desk.rows()
    assert len(rows) == desk.stats.booked
    live = {c.id for c in desk.state.calls}
    cut = world.end - timedelta(hours=13)
    ends = {r[0]: r[CALL_COLUMNS.index("end")] for r in rows}
    over = [c for c, end in ends.items() if isinstance(end, datetime) and end < cut]
    assert over and not live & set(over)
    held = sum(bool(r[CALL_COLUMNS.index("held")]) for r in rows)
    assert held > 0
    df = frame(rows, CALL_COLUMNS)
    assert list(df.columns) == list(CALL_COLUMNS)
    assert df["start"].is_monotonic_increasing


def test_a_calendar_event_moves_the_call_and_a_status_change_too() -> None:
    world = _world([_agent(0, level=2), _agent(1, level=2), _agent(2, level=2)], [_cap()])
    desk = _desk(world, pick_among=1)
    call = desk.request("t0", "net", _at(5))
    assert call is not None
    (binding,) = desk.bind_due(desk.next_due() or desk.now)
    first = binding[1]
    assert desk.agent_busy(first, _at(7.5), _at(9), _at(6.5)) == []
    (moved,) = desk.last_rebound
    assert moved[0] == call and moved[1] != first
    assert desk.agent_status(moved[1], AgentStatus.AWAY, _at(6.75)) == []
    (again,) = desk.last_rebound
    assert again[1] not in (first, moved[1])
    assert desk.busy_for(again[1]) == [(again[2], again[3])]
    assert desk.agent_status(again[1], AgentStatus.OFFLINE, _at(7)) == [call]
    assert desk.stats.rebinds == 2 and desk.stats.at_risk == 1


def test_with_rebooking_the_customer_of_an_at_risk_call_takes_another_time() -> None:
    world = _world([_agent(0, level=2), _agent(1, level=2)], [_cap(notice=0)], days=2)
    desk = _desk(world, pick_among=1, on_risk="rebook")
    call = desk.request("t0", "net", _at(7.5))
    assert call is not None and desk.state.call(call).start == _at(8)
    desk.bind_due(desk.now)
    assert desk.agent_away("a0", _at(8), _at(24), _at(7.75)) == []
    assert desk.agent_away("a1", _at(8), _at(24), _at(7.75)) == [call]
    assert desk.stats.at_risk == 1
    ((old, new),) = desk.last_rebooked
    assert old == call and new is not None
    assert desk.state.call(new).start == _at(32)  # nobody works again before 08:00 tomorrow
    assert call not in {c.id for c in desk.state.calls}
    drive(desk, [], [], world.end)
    ix = {name: k for k, name in enumerate(CALL_COLUMNS)}
    rows = {r[0]: r for r in desk.rows()}
    assert rows[call][ix["at_risk_at"]] == _at(7.75) and rows[call][ix["held"]] is False
    assert rows[new][ix["ticket"]] == "t0" and rows[new][ix["held"]] is True
    assert rows[new][ix["booked_at"]] == _at(7.75)
    st = desk.stats
    assert (st.rebooked, st.dropped, st.lost, st.booked, st.requests) == (1, 0, 0, 2, 1)


def test_across_the_dst_change_slots_follow_local_time() -> None:
    """Berlin moves to summer time on Sunday 29 March: a Monday 09:00 local shift starts at
    07:00 UTC, not 08:00, and the customer's first slot is there."""
    weekdays = ShiftPattern((0, 1, 2, 3, 4), time(9), time(17))
    plans = [AgentPlan(f"a{i}", "t1", {"net": 2}, (weekdays,), "Europe/Berlin") for i in range(2)]
    world = World(
        "dst",
        MONDAY + timedelta(days=5),  # Saturday 28 March
        3,
        (Skill("net"), Skill("de")),
        (Team("t1"), Team("t2")),
        tuple(plans),
        Demand(),
        capabilities=(_cap(horizon_days=3),),
        timezone="Europe/Berlin",
    )
    desk = _desk(world, pick_among=1)
    call = desk.request("t0", "net", world.start + timedelta(hours=20))
    assert call is not None
    assert desk.state.call(call).start == datetime(2026, 3, 30, 7, 0, tzinfo=UTC)
    drive(desk, [], [], world.end)
    (row,) = desk.rows()
    assert row[CALL_COLUMNS.index("held")] is True
    assert row[CALL_COLUMNS.index("bound_at")] == datetime(2026, 3, 30, 5, 1, tzinfo=UTC)


def test_binding_prefers_the_tickets_owner_as_it_is_when_binding() -> None:
    world = _world([_agent(0, level=2), _agent(1, level=2)], [_cap()])

    def bound_to(owner_at_booking: str | None, owner_later: str | None) -> str:
        desk = _desk(world, pick_among=1)
        assert desk.request("t0", "net", _at(5), owner=owner_at_booking) is not None
        if owner_later is not None:
            desk.owner_changed("t0", owner_later)
        desk.owner_changed("unknown-ticket", "a0")  # no call: nothing to tell the engine
        (binding,) = desk.bind_due(desk.next_due() or desk.now)
        return binding[1]

    default = bound_to(None, None)
    other = "a1" if default == "a0" else "a0"
    assert bound_to(other, None) == other
    assert bound_to(None, other) == other
    assert bound_to(default, other) == other
