"""The production simulator agrees with Erlang C and Erlang A where both apply (one skill,
FIFO, Poisson arrivals, exponential handling; patience for Erlang A).

Here a simulated week of the worked example (about 33,600 calls, seeds fixed, so the figures are
fixed too); ``python -m benchmarks.scenarios --erlang`` checks the same at 300,000 calls (figures
in benchmarks/README.md). 0.02 is the issue's tolerance; across seeds a week's service level
spreads by about 0.01 (one standard deviation)."""

from __future__ import annotations

import pytest

from scenarios import erlang
from scenarios.queue_check import erlang_world, measure

WEEK = 200 * 24 * 7


@pytest.mark.slow
def test_erlang_c_the_worked_example_on_the_production_simulator() -> None:
    world = erlang_world(14, 200, 180, calls=WEEK)
    got = measure(world, target_s=20, seed=1)
    assert got.calls > 33_000
    assert got.abandoned == 0
    assert got.service_level == pytest.approx(
        erlang.service_level(14, 100, 1800, 180, 20), abs=0.02
    )
    assert got.asa_s == pytest.approx(erlang.asa(14, 100, 1800, 180), abs=2.0)


@pytest.mark.slow
def test_erlang_a_with_callers_who_hang_up_on_the_production_simulator() -> None:
    world = erlang_world(13, 200, 180, calls=WEEK, patience_s=60)
    got = measure(world, target_s=20, seed=1)
    want = erlang.erlang_a(13, 100, 1800, 180, 60, 20)
    assert got.service_level == pytest.approx(want.service_level, abs=0.02)
    assert got.abandoned == pytest.approx(want.abandonment, abs=0.01)


def test_the_world_is_the_queue_the_formulas_describe() -> None:
    world = erlang_world(3, 10, 120, calls=500, patience_s=30)
    assert world.days == 3  # whole days holding at least 500 calls at 240 a day
    assert all(a.capacity == 1 and a.skills == {"phone": 1} for a in world.agents)
    assert {v.effort_distribution for v in world.demand.volume} == {"exponential"}
    assert world.routing.policy == "realtime" and world.routing.patience_minutes == 0.5
    with pytest.raises(ValueError, match="positive"):
        erlang_world(0, 10, 120, calls=5)
