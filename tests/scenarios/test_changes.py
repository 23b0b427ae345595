"""Every change kind on a small world; keep_paid_hours to the minute; the baseline untouched."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scenarios.changes import (
    AddAgents,
    ChangeSkills,
    MoveAgents,
    RemoveAgents,
    ReshapeVolume,
    ScaleVolume,
    SetRouting,
    apply,
    keep_paid_hours,
)
from scenarios.model import (
    AgentPlan,
    Break,
    Demand,
    ShiftPattern,
    TicketSpec,
    VolumeRow,
    World,
    shift_intervals,
)
from solver.errors import ProblemError
from solver.problem import Skill, Team

BERLIN = ZoneInfo("Europe/Berlin")
WEEK = (0, 1, 2, 3, 4)
DAY = ShiftPattern(WEEK, time(8), time(16, 30), (Break(time(12), 30),))


def world() -> World:
    start = datetime(2026, 3, 23, tzinfo=BERLIN)
    return World(
        name="small",
        start=start,
        days=7,
        skills=(Skill("net"), Skill("de"), Skill("fr")),
        teams=(Team("t1"), Team("t2")),
        agents=(
            AgentPlan("a1", "t1", {"net": 2}, (DAY,), "Europe/Berlin", shrinkage=0.3),
            AgentPlan("a2", "t2", {"net": 3, "fr": 2}, (DAY,), "Europe/Berlin"),
            AgentPlan(
                "a3",
                "t2",
                {"de": 4},
                (ShiftPattern((0, 1, 2), time(9), time(13)),),
                "Europe/Berlin",
            ),
        ),
        demand=Demand(
            history=(
                TicketSpec("h1", start + timedelta(hours=9), "t1", "email"),
                TicketSpec("h2", start + timedelta(hours=10), "t2", "chat"),
            ),
            volume=(
                VolumeRow("t1", "phone", 9, 4.0),
                VolumeRow("t2", "chat", 10, 2.0),
                VolumeRow("t2", "phone", 11, 1.0),
            ),
        ),
        timezone="Europe/Berlin",
    )


def test_add_agents_copies_like_with_new_unique_ids_and_overrides() -> None:
    base = world()
    out = apply(base, [AddAgents(2, "a1", id_prefix="a1-new", team="t2", skills={"de": 3})])
    new = out.agents[3:]
    assert [a.id for a in new] == ["a1-new-1", "a1-new-2"]
    assert all(a.team == "t2" and dict(a.skills) == {"net": 2, "de": 3} for a in new)
    assert all(a.shifts == (DAY,) and a.shrinkage == 0.3 for a in new)
    again = apply(out, [AddAgents(2, "a1", id_prefix="a1-new")])
    assert [a.id for a in again.agents[5:]] == ["a1-new-3", "a1-new-4"]
    assert [a.id for a in apply(base, [AddAgents(1, "a2")]).agents[3:]] == ["a2-new-1"]
    assert apply(base, [AddAgents(0, "a2")]) == base
    assert len(base.agents) == 3  # the baseline is never changed


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (AddAgents(1, "zz"), "like"),
        (AddAgents(1, "a1", team="t9"), "team"),
        (AddAgents(1, "a1", skills={"klingon": 2}), "skills.klingon"),
        (RemoveAgents(("a1", "zz")), "agents[1]"),
        (MoveAgents(("zz",), (DAY,)), "agents[0]"),
        (ChangeSkills(("a1",), {"xx": 1}), "set.xx"),
        (ChangeSkills(("a1",), remove=("xx",)), "remove.xx"),
        (ScaleVolume(1.2, team="t9"), "team"),
        (ScaleVolume(1.2, channel="fax"), "channel"),
        (ScaleVolume(80), "factor"),
    ],
)
def test_impossible_changes_name_their_field(change: object, field: str) -> None:
    base = world()
    if isinstance(change, ScaleVolume) and change.factor == 80:
        base = apply(base, [ScaleVolume(2)])
    with pytest.raises(ProblemError) as caught:
        apply(base, [change])  # type: ignore[list-item]
    assert caught.value.field == field


def test_changes_are_validated_when_made() -> None:
    with pytest.raises(ProblemError, match="count"):
        AddAgents(-1, "a1")
    with pytest.raises(ProblemError, match="agents"):
        RemoveAgents(())
    with pytest.raises(ProblemError, match="policy"):
        SetRouting(policy="fastest")
    with pytest.raises(ProblemError, match="max_moves"):
        SetRouting(max_moves=-1)
    with pytest.raises(ProblemError, match="factor"):
        ScaleVolume(0)
    with pytest.raises(ProblemError, match="hours"):
        ReshapeVolume({24: 1.0})
    with pytest.raises(ProblemError, match=r"set\.de"):
        ChangeSkills(("a1",), {"de": 6})
    change = RemoveAgents(("a1",))
    with pytest.raises(AttributeError):
        change.agents = ("a2",)  # type: ignore[misc]


def test_remove_and_change_skills() -> None:
    out = apply(world(), [RemoveAgents(("a1", "a3"))])
    assert [a.id for a in out.agents] == ["a2"]
    out = apply(world(), [ChangeSkills(("a1", "a2"), {"de": 2}, ("fr", "net"))])
    assert [dict(a.skills) for a in out.agents[:2]] == [{"de": 2}, {"de": 2}]


def test_scale_volume_globally_and_per_team_and_channel() -> None:
    base = world()
    out = apply(base, [ScaleVolume(1.3), ScaleVolume(2)])
    assert out.demand.scale == pytest.approx(2.6)
    assert out.demand.volume == base.demand.volume
    out = apply(base, [ScaleVolume(1.5, team="t2")])
    assert [v.per_hour for v in out.demand.volume] == [4.0, 3.0, 1.5]
    assert out.demand.scale == 1.0
    assert out.demand.history_factor("t2", "chat") == 1.5
    assert out.demand.history_factor("t1", "email") == 1.0
    out = apply(base, [ScaleVolume(2, team="t2", channel="phone")])
    assert [v.per_hour for v in out.demand.volume] == [4.0, 2.0, 2.0]
    assert out.demand.history_scale == ()  # no t2 phone tickets in the history
    out = apply(base, [ScaleVolume(2, channel="chat"), ScaleVolume(1.5)])
    assert out.demand.history_factor("t2", "chat") == 3.0


def test_reshape_volume_composes_hour_by_hour() -> None:
    out = apply(world(), [ReshapeVolume({9: 1.5, 10: 2}), ReshapeVolume({9: 2})])
    assert dict(out.demand.shape) == {9: 3.0, 10: 2.0}


def test_routing_changes_only_the_fields_given() -> None:
    out = apply(world(), [SetRouting(policy="optimizer", dispatch_minutes=10)])
    assert (out.routing.policy, out.routing.dispatch_minutes) == ("optimizer", 10)
    assert out.routing.reoptimize_minutes == world().routing.reoptimize_minutes
    budgeted = apply(out, [SetRouting(max_moves=2)])
    assert budgeted.routing.max_moves == 2 and budgeted.routing.policy == "optimizer"
    assert apply(budgeted, [SetRouting(time_limit_s=2.0)]).routing.max_moves == 2


LATE = ShiftPattern(WEEK, time(13), time(21), (Break(time(17), 30),))


def test_move_agents_with_and_without_keeping_paid_hours() -> None:
    out = apply(world(), [MoveAgents(("a1",), (LATE,))])
    assert out.agents[0].shifts == (LATE,)
    assert out.agents[0].paid_minutes_per_week == 5 * 450
    out = apply(world(), [MoveAgents(("a1", "a2"), (LATE,), keep_paid_hours=True)])
    for agent in out.agents[:2]:
        assert agent.paid_minutes_per_week == 2400  # 5 x (8:30 - 0:30)
        assert agent.shifts == (ShiftPattern(WEEK, time(13), time(21, 30), LATE.breaks),)
    # a part-timer (3 x 4 h = 720 minutes) moved to five evenings keeps 720: 2:24 each
    evening = ShiftPattern(WEEK, time(13), time(21))
    out = apply(world(), [MoveAgents(("a3",), (evening,), keep_paid_hours=True)])
    assert out.agents[2].paid_minutes_per_week == 720
    assert out.agents[2].shifts == (ShiftPattern(WEEK, time(13), time(15, 24)),)
    with pytest.raises(ProblemError, match="before one of its breaks"):
        apply(world(), [MoveAgents(("a3",), (LATE,), keep_paid_hours=True)])


def test_keep_paid_hours_splits_a_pattern_for_the_last_minutes() -> None:
    shifts = keep_paid_hours((ShiftPattern((0, 2, 4), time(22), time(6)),), 3 * 480 + 2)
    assert shifts == (
        ShiftPattern((0, 2), time(22), time(6, 1)),
        ShiftPattern((4,), time(22), time(6)),
    )
    assert sum(s.paid_minutes_per_week for s in shifts) == 3 * 480 + 2


def test_keep_paid_hours_refuses_what_cannot_be_done() -> None:
    short = ShiftPattern((0,), time(9), time(10))
    with pytest.raises(ProblemError, match="24 hours"):
        apply(world(), [MoveAgents(("a1",), (short,), keep_paid_hours=True)])
    with pytest.raises(ProblemError, match="before one of its breaks"):
        apply(world(), [MoveAgents(("a3",), (DAY, DAY), keep_paid_hours=True)])


@settings(max_examples=30, deadline=None)
@given(
    start=st.integers(0, 23 * 60),
    length=st.integers(60, 10 * 60),
    days=st.lists(st.integers(0, 6), min_size=1, max_size=7, unique=True),
    target=st.integers(600, 3000),
)
def test_keep_paid_hours_is_exact(start: int, length: int, days: list[int], target: int) -> None:
    end = (start + length) % 1440
    pattern = ShiftPattern(tuple(days), time(start // 60, start % 60), time(end // 60, end % 60))
    try:
        shifts = keep_paid_hours((pattern,), target)
    except ProblemError:
        assert -(-target // len(days)) > 24 * 60
        return
    assert sum(s.paid_minutes_per_week for s in shifts) == target
    assert all(s.start == pattern.start for s in shifts)
    assert sorted(d for s in shifts for d in s.weekdays) == sorted(days)


def test_a_moved_shift_across_the_spring_change_keeps_its_local_time() -> None:
    """Berlin springs forward on Sunday 29 March 2026 at 02:00: the late shift the agent moves
    to starts at 13:00 local on both sides of it (12:00 UTC before, 11:00 UTC after)."""
    late = ShiftPattern(tuple(range(7)), time(13), time(21), (Break(time(17), 30),))
    out = apply(world(), [MoveAgents(("a1",), (late,), keep_paid_hours=True)])
    agent = out.agents[0]
    start = datetime(2026, 3, 27, tzinfo=UTC)
    spans = list(shift_intervals(agent, start, start + timedelta(days=4)))
    starts = [s.start for s in spans if s.start.astimezone(BERLIN).hour == 13]
    assert [s.astimezone(BERLIN).time() for s in starts] == [time(13)] * 4
    assert [s.hour for s in starts] == [12, 12, 11, 11]
    # 2400 paid minutes over 7 days: 342 or 343 a day (+30 break): ends 19:12 or 19:13 local
    ends = [s.end.astimezone(BERLIN).time() for s in spans if s.end.astimezone(BERLIN).hour == 19]
    assert set(ends) <= {time(19, 12), time(19, 13)} and len(ends) == 4
