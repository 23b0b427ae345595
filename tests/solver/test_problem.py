"""Domain types refuse bad input with an error that names the field."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from solver.errors import ProblemError
from solver.problem import Agent, AgentStatus, Interval, Priority, Problem, Skill, Team, Ticket

NOW = datetime(2026, 3, 27, 8, 0, tzinfo=UTC)


def ticket(**kw: object) -> Ticket:
    base: dict[str, object] = {"id": "t1", "team": "net", "created_at": NOW}
    base.update(kw)
    return Ticket(**base)  # type: ignore[arg-type]


def test_naive_datetime_is_refused_naming_the_field() -> None:
    with pytest.raises(ProblemError) as err:
        ticket(created_at=datetime(2026, 3, 27, 8, 0))  # noqa: DTZ001 - the point of the test
    assert err.value.field == "created_at"
    assert "timezone-aware" in err.value.reason


def test_shift_that_ends_before_it_starts_names_its_position() -> None:
    with pytest.raises(ProblemError) as err:
        Agent(
            "a1", "net", shifts=[(NOW, NOW + timedelta(hours=8)), (NOW, NOW - timedelta(hours=1))]
        )
    assert err.value.field == "shifts[1].end"


def test_negative_or_zero_effort_is_refused() -> None:
    with pytest.raises(ProblemError) as err:
        ticket(effort_minutes=-5)
    assert err.value.field == "effort_minutes"


def test_deadline_before_creation_is_refused() -> None:
    with pytest.raises(ProblemError) as err:
        ticket(resolution_due=NOW - timedelta(minutes=1))
    assert err.value.field == "resolution_due"
    assert "before the ticket was created" in err.value.reason


def test_resolution_before_first_response_is_refused() -> None:
    with pytest.raises(ProblemError) as err:
        ticket(first_response_due=NOW + timedelta(hours=2), resolution_due=NOW + timedelta(hours=1))
    assert err.value.field == "resolution_due"


def test_unknown_skill_is_refused_where_it_is_used() -> None:
    with pytest.raises(ProblemError) as err:
        Problem(
            now=NOW,
            skills=(Skill("net"),),
            teams=(Team("net"),),
            agents=(Agent("a1", "net", skills={"net": 3}),),
            tickets=(ticket(required_skills={"dns": 2}),),
        )
    assert err.value.field == "tickets[0].required_skills.dns"


def test_unknown_team_and_duplicate_ids_are_refused() -> None:
    with pytest.raises(ProblemError) as err:
        Problem(now=NOW, teams=(Team("net"),), agents=(Agent("a1", "billing"),), tickets=())
    assert err.value.field == "agents[0].team"
    with pytest.raises(ProblemError) as err:
        Problem(now=NOW, agents=(Agent("a1", "net"), Agent("a1", "net")), tickets=())
    assert err.value.field == "agents[1].id"


@pytest.mark.parametrize("level", [0, 6, "3", True])
def test_skill_levels_run_from_one_to_five(level: object) -> None:
    with pytest.raises(ProblemError) as err:
        Agent("a1", "net", skills={"net": level})  # type: ignore[dict-item]
    assert err.value.field == "skills.net"


def test_bad_enums_and_zones_list_the_allowed_values() -> None:
    with pytest.raises(ProblemError, match="urgent"):
        ticket(priority=9)
    with pytest.raises(ProblemError, match="available"):
        Agent("a1", "net", status="sleeping")  # type: ignore[arg-type]
    with pytest.raises(ProblemError) as err:
        Agent("a1", "net", timezone="Mars/Olympus")
    assert err.value.field == "timezone"


def test_times_are_normalised_to_utc_at_the_edge() -> None:
    berlin = timezone(timedelta(hours=2))
    t = ticket(created_at=datetime(2026, 6, 1, 10, 0, tzinfo=berlin))
    assert t.created_at == datetime(2026, 6, 1, 8, 0, tzinfo=UTC)
    assert t.created_at.tzinfo is UTC
    assert t.priority is Priority.NORMAL


def test_horizon_must_follow_now() -> None:
    with pytest.raises(ProblemError) as err:
        Problem(now=NOW, agents=(), tickets=(), horizon_end=NOW)
    assert err.value.field == "horizon_end"


def test_status_and_intervals_round_trip() -> None:
    a = Agent("a1", "net", status="away", shifts=[Interval(NOW, NOW + timedelta(hours=1))])  # type: ignore[arg-type]
    assert a.status is AgentStatus.AWAY
    assert a.on_shift(NOW) and not a.on_shift(NOW + timedelta(hours=1))


PLUS_5 = timezone(timedelta(hours=5))
MINUS_5 = timezone(timedelta(hours=-5))


@pytest.mark.parametrize(
    ("kw", "field"),
    [
        ({"created_at": datetime(1, 1, 1, tzinfo=PLUS_5)}, "created_at"),
        ({"resolution_due": datetime(9999, 12, 31, 23, 59, tzinfo=MINUS_5)}, "resolution_due"),
        ({"first_response_due": datetime(2200, 1, 1, 0, 1, tzinfo=UTC)}, "first_response_due"),
        ({"created_at": datetime(1969, 12, 31, 23, 59, tzinfo=UTC)}, "created_at"),
    ],
)
def test_datetimes_outside_the_supported_range_name_the_field(
    kw: dict[str, object], field: str
) -> None:
    # Near year 1 or 9999 converting to UTC overflowed: a ProblemError, not an OverflowError.
    with pytest.raises(ProblemError) as err:
        ticket(**kw)
    assert err.value.field == field
    assert "1970-01-01T00:00:00Z and 2200-01-01T00:00:00Z" in err.value.reason


def test_problem_times_outside_the_range_name_the_field() -> None:
    late = datetime(9999, 12, 31, 23, 0, tzinfo=UTC)
    with pytest.raises(ProblemError) as err:
        Problem(now=late, agents=(), tickets=())
    assert err.value.field == "now"
    with pytest.raises(ProblemError) as err:
        Problem(now=NOW, agents=(), tickets=(), horizon_end=late)
    assert err.value.field == "horizon_end"
    with pytest.raises(ProblemError) as err:
        Interval(datetime(1, 1, 1, tzinfo=PLUS_5), NOW)
    assert err.value.field == "start"
    # The edges themselves are in range, and a default horizon may run past the last one.
    edge = datetime(2200, 1, 1, tzinfo=UTC)
    assert Problem(now=edge, agents=(), tickets=()).horizon_end == edge + timedelta(days=7)
    assert ticket(created_at=datetime(1970, 1, 1, tzinfo=UTC)).created_at.year == 1970
