"""solver.batch.edf, the EDF demand bound, checked against trying every order.

The oracle knows nothing of work-time deadlines: it runs each order of the tickets on the agent's
clock (wall start and finish of each ticket after the backlog) and asks whether every first
response starts by its due minute and every resolution finishes by its due minute — the same
"on time" as ``BatchData.late_cost`` and validation.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import numpy as np
from hypothesis import event, given
from hypothesis import strategies as st

from solver.batch.data import BatchData, build
from solver.batch.edf import edf_order, feasible, slack, work_deadlines
from solver.objective import ObjectiveWeights
from solver.problem import Agent, Interval, Priority, Problem, Ticket

NOW = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
MIN = timedelta(minutes=1)
# Two breaks: work is counted across them, which is where wall and work time part.
SHIFTS = ((0, 120), (150, 240), (300, 480))


def data_for(
    tickets: list[tuple[int, int | None, int | None, Priority]],
    backlog: int = 0,
    shifts: tuple[tuple[int, int], ...] = SHIFTS,
) -> BatchData:
    """One agent on ``shifts`` (minutes from NOW); tickets as (effort, fr due, res due, prio)."""
    agent = Agent(
        "a",
        "core",
        skills={"net": 1},
        capacity=len(tickets) + 1,
        backlog_minutes=backlog,
        shifts=tuple(Interval(NOW + s * MIN, NOW + e * MIN) for s, e in shifts),
    )
    work = tuple(
        Ticket(
            f"t{i}",
            "core",
            NOW - 60 * MIN,
            {"net": 1},
            priority=prio,
            first_response_due=None if fr is None else NOW + fr * MIN,
            resolution_due=None if res is None else NOW + res * MIN,
            effort_minutes=effort,
        )
        for i, (effort, fr, res, prio) in enumerate(tickets)
    )
    problem = Problem(NOW, (agent,), work, horizon_end=NOW + 8 * 60 * MIN)
    return build(problem, ObjectiveWeights())


def on_time_in_order(data: BatchData, order: list[int]) -> bool:
    """Whether agent 0, working ``order`` one after the other after its backlog, starts every
    first response and finishes every resolution by its due minute, within its working time."""
    clock = data.clock
    a = np.zeros(1, dtype=np.int64)
    pos, total = int(data.backlog[0]), int(data.total[0])
    if pos > total:
        return False
    for t in order:
        effort = int(data.effort[t])
        if pos + effort > total:
            return False
        start = clock.start(a, np.array([pos]))
        finish = clock.finish(a, np.array([pos + effort]))
        if int(data.late_cost(np.array([t]), start, finish)[0]) > 0:
            return False
        pos += effort
    return True


def on_time_in_some_order(data: BatchData, tickets: list[int]) -> bool:
    return any(on_time_in_order(data, list(p)) for p in itertools.permutations(tickets))


# ---------------------------------------------------------------------------- examples
def test_without_tickets_the_slack_is_the_free_working_time() -> None:
    data = data_for([], backlog=40)
    assert int(data.total[0]) == 120 + 90 + 180
    assert slack(data, 0, []) == 390 - 40
    assert feasible(data, 0, [])


def test_a_deadline_just_met_has_zero_slack_and_one_minute_less_breaks_it() -> None:
    # 30 min of backlog, then 60 min of work: done at minute 90.
    met = data_for([(60, None, 90, Priority.NORMAL)], backlog=30)
    assert slack(met, 0, [0]) == 0 and feasible(met, 0, [0])
    missed = data_for([(60, None, 89, Priority.NORMAL)], backlog=30)
    assert slack(missed, 0, [0]) == -1 and not feasible(missed, 0, [0])


def test_work_is_counted_across_a_break() -> None:
    # 100 min after a 90 min backlog: 30 before the 120-150 break, 70 after it -> done at 220.
    assert feasible(data_for([(100, None, 220, Priority.NORMAL)], backlog=90), 0, [0])
    assert not feasible(data_for([(100, None, 219, Priority.NORMAL)], backlog=90), 0, [0])


def test_a_first_response_is_due_when_the_work_starts() -> None:
    # The backlog ends at work minute 120 = the break: work starts at wall minute 150.
    assert feasible(data_for([(10, 150, None, Priority.NORMAL)], backlog=120), 0, [0])
    assert not feasible(data_for([(10, 149, None, Priority.NORMAL)], backlog=120), 0, [0])


def test_a_deadline_already_past_is_never_met() -> None:
    data = data_for([(5, -10, None, Priority.NORMAL)])
    assert not feasible(data, 0, [0])


def test_edf_order_is_by_deadline_then_priority_then_shorter_then_position() -> None:
    data = data_for(
        [
            (30, None, 400, Priority.LOW),  # t0: latest deadline
            (20, None, 200, Priority.LOW),  # t1
            (10, None, 200, Priority.URGENT),  # t2: same deadline as t1, more urgent
            (40, None, None, Priority.URGENT),  # t3: no deadline at all
            (20, None, 200, Priority.URGENT),  # t4: ties t2 but longer
            (10, None, 200, Priority.URGENT),  # t5: ties t2 exactly: position decides
        ]
    )
    assert edf_order(data, 0, [0, 1, 2, 3, 4, 5]) == [2, 5, 4, 1, 0, 3]
    deadlines = work_deadlines(data, 0, [0, 3])
    assert int(deadlines[0]) == 400 - 30 - 60  # wall minute 400, less the two breaks
    assert int(deadlines[1]) > 10**15  # no deadline: later than any work


def test_the_earlier_of_the_two_deadlines_binds() -> None:
    # First response by 100 means the 30 min must be done by 130 in work time; resolution by
    # 300 would allow far more.
    data = data_for([(30, 100, 300, Priority.NORMAL)])
    assert int(work_deadlines(data, 0, [0])[0]) == 100 + 30
    assert slack(data, 0, [0]) == 100


def test_work_that_does_not_fit_in_the_horizon_is_infeasible_without_deadlines() -> None:
    data = data_for([(200, None, None, Priority.NORMAL), (200, None, None, Priority.NORMAL)])
    assert slack(data, 0, [0, 1]) == 390 - 400
    assert not feasible(data, 0, [0, 1])
    assert feasible(data, 0, [0])


# ---------------------------------------------------------------------------- property
DUE = st.one_of(st.none(), st.integers(-20, 520))
TICKET = st.tuples(
    st.integers(1, 90), DUE, DUE, st.sampled_from([Priority.LOW, Priority.NORMAL, Priority.URGENT])
).map(  # a resolution is never due before the first response
    lambda t: (t[0], t[1], t[2] if t[1] is None or t[2] is None else max(t[1], t[2]), t[3])
)


@given(tickets=st.lists(TICKET, min_size=0, max_size=5), backlog=st.integers(0, 200))
def test_property_feasible_iff_some_order_meets_every_deadline(
    tickets: list[tuple[int, int | None, int | None, Priority]], backlog: int
) -> None:
    data = data_for(tickets, backlog=backlog)
    ids = list(range(len(tickets)))
    ok = feasible(data, 0, ids)
    event(f"feasible: {ok}")
    assert ok == on_time_in_some_order(data, ids)
    # Whenever some order is on time, the EDF order is one.
    assert ok == on_time_in_order(data, edf_order(data, 0, ids))
