"""SLA clocks through the API (:mod:`api.tickets.sla`), on SQLite and PostgreSQL: deadlines
computed from the tenant's policy in Berlin business hours across a holiday and the 2026-03-29
clock change, paused while pending, restarted on reopen; the helpdesk's own deadlines win."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from tests.api.conftest import As, FakeClock, assert_problem, ticket_body

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday")
POLICY = {
    "schedule": {
        "timezone": "Europe/Berlin",
        "hours": {day: [{"start": "09:00", "end": "17:00"}] for day in WEEKDAYS},
        "holidays": ["2026-03-27"],
    },
    "targets": {
        "high": {"first_response_minutes": 120, "resolution_minutes": 960},
        "low": {"resolution_minutes": 2400},
    },
}
THU = datetime(2026, 3, 26, 15, tzinfo=UTC)  # Thursday 16:00 CET, an hour before closing


def setup(a: As, clock: FakeClock) -> None:
    clock.now = THU
    assert a.post("/v1/teams", json={"id": "support"}).status_code == 201
    r = a.patch("/v1/policies", json={"sla": POLICY})
    assert r.status_code == 200, r.text


class Ticket:
    def __init__(self, a: As, clock: FakeClock, tid: str, **body: Any) -> None:
        self.a, self.clock, self.tid = a, clock, tid
        self.body: dict[str, Any] = {"team": "support", "priority": "high"} | body

    def put(self, at: datetime, **change: Any) -> dict[str, Any]:
        self.clock.now = at
        self.body |= change
        r = self.a.put(f"/v1/tickets/{self.tid}", json=ticket_body(self.body))
        assert r.status_code in (200, 201), r.text
        return dict(r.json())

    def due_steps(self) -> list[dict[str, Any]]:
        r = self.a.get(f"/v1/tickets/{self.tid}/history")
        return [e for e in r.json()["items"] if e["kind"] == "due_dates_set"]


def test_computed_paused_resumed_solved_and_reopened(a: As, clock: FakeClock) -> None:
    setup(a, clock)
    t = Ticket(a, clock, "T1")
    created = t.put(THU)
    # First response, 2 h: Thursday 16-17 CET; Friday 27th is a holiday; the clocks go forward
    # on Sunday; Monday 09:00-10:00 CEST. 10:00 CEST is 08:00 UTC.
    assert created["first_response_due"] == "2026-03-30T08:00:00Z"
    # Resolution, 16 h: Thursday 1 h, Monday 8 h, Tuesday 09:00-16:00 CEST (14:00 UTC).
    assert created["resolution_due"] == "2026-03-31T14:00:00Z"
    [step] = t.due_steps()
    assert step["data"]["rule"] == "computed"
    assert step["data"]["computed"] == ["first_response_due", "resolution_due"]

    # Writes that leave the deadlines out keep the computed ones (no new step).
    again = t.put(datetime(2026, 3, 30, 7, 30, tzinfo=UTC), status="open")
    assert again["resolution_due"] == "2026-03-31T14:00:00Z" and len(t.due_steps()) == 1

    # Pending from Monday 10:00 CEST to Tuesday 10:00 CEST: 7 + 1 = 8 business hours paused.
    t.put(datetime(2026, 3, 30, 8, tzinfo=UTC), status="pending")
    resumed = t.put(datetime(2026, 3, 31, 8, tzinfo=UTC), status="open")
    # Tuesday 16:00 CEST + 8 h: Tuesday 1 h, Wednesday 09:00-16:00 CEST (14:00 UTC).
    assert resumed["resolution_due"] == "2026-04-01T14:00:00Z"
    assert resumed["first_response_due"] == "2026-03-30T08:00:00Z"  # met already: not moved
    step = t.due_steps()[-1]
    assert step["data"]["rule"] == "resumed" and step["data"]["paused_minutes"] == 480

    solved = t.put(datetime(2026, 4, 1, 7, tzinfo=UTC), status="solved")
    assert solved["resolution_due"] == "2026-04-01T14:00:00Z" and len(t.due_steps()) == 2

    # Reopened Thursday 09:00 CEST: the resolution clock restarts with the full 16 h, which end
    # Friday 17:00 CEST (15:00 UTC).
    reopened = t.put(datetime(2026, 4, 2, 7, tzinfo=UTC), status="open")
    assert reopened["resolution_due"] == "2026-04-03T15:00:00Z"
    assert t.due_steps()[-1]["data"]["rule"] == "reopened"


def test_the_helpdesks_deadline_wins_and_is_never_moved(a: As, clock: FakeClock) -> None:
    setup(a, clock)
    t = Ticket(a, clock, "T2", resolution_due="2026-03-27T12:00:00Z")
    created = t.put(THU)
    assert created["resolution_due"] == "2026-03-27T12:00:00Z"  # sent: kept, holiday or not
    assert created["first_response_due"] == "2026-03-30T08:00:00Z"  # left out: computed
    assert t.due_steps()[0]["data"]["computed"] == ["first_response_due"]
    t.put(datetime(2026, 3, 30, 7, tzinfo=UTC), status="pending")
    back = t.put(datetime(2026, 3, 31, 7, tzinfo=UTC), status="open")
    assert back["resolution_due"] == "2026-03-27T12:00:00Z"
    # Sending a first-response deadline replaces the computed one.
    sent = t.put(datetime(2026, 3, 31, 7, tzinfo=UTC), first_response_due="2026-03-26T16:00:00Z")
    assert sent["first_response_due"] == "2026-03-26T16:00:00Z"


def test_a_get_put_round_trip_keeps_computed_deadlines_computed(a: As, clock: FakeClock) -> None:
    setup(a, clock)
    t = Ticket(a, clock, "T3")
    got = t.put(THU, status="open")
    t.put(THU, resolution_due=got["resolution_due"], first_response_due=got["first_response_due"])
    t.put(datetime(2026, 3, 30, 7, tzinfo=UTC), status="pending")  # Monday 09:00 CEST
    back = t.put(datetime(2026, 3, 30, 9, tzinfo=UTC), status="open")  # 11:00: 2 h paused
    # Tuesday 16:00 CEST + 2 h: Tuesday 1 h, Wednesday 09:00-10:00 CEST (08:00 UTC).
    assert back["resolution_due"] == "2026-04-01T08:00:00Z"


def test_priority_change_recomputes_and_no_target_means_no_deadline(
    a: As, clock: FakeClock
) -> None:
    setup(a, clock)
    t = Ticket(a, clock, "T4")
    t.put(THU)
    low = t.put(THU, priority="low")
    # Low: no first-response target; resolution 40 h: Thu 1 + Mon 8 + Tue 8 + Wed 8 + Thu 8
    # (2 April) + Fri 7 h -> Friday 3 April 16:00 CEST = 14:00 UTC.
    assert low["first_response_due"] is None
    assert low["resolution_due"] == "2026-04-03T14:00:00Z"
    assert t.due_steps()[-1]["data"]["rule"] == "recomputed"
    normal = t.put(THU, priority="normal")  # no target for normal at all
    assert normal["first_response_due"] is None and normal["resolution_due"] is None


def test_without_a_policy_nothing_is_computed(a: As, clock: FakeClock) -> None:
    clock.now = THU
    assert a.post("/v1/teams", json={"id": "support"}).status_code == 201
    created = Ticket(a, clock, "T5").put(THU)
    assert created["first_response_due"] is None and created["resolution_due"] is None


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"schedule": {**POLICY["schedule"], "timezone": "Mars/Olympus"}}, "sla.schedule.timezone"),
        (
            {
                "schedule": {
                    "timezone": "UTC",
                    "hours": {"monday": [{"start": "17:00", "end": "09:00"}]},
                }
            },
            "sla.schedule.hours.monday[0]",
        ),
        (
            {"schedule": {"timezone": "UTC", "hours": {"funday": []}}},
            "sla.schedule.hours.funday.[key]",
        ),
        ({"schedule": {"timezone": "UTC", "hours": {}}}, "sla.schedule"),
        ({"targets": {"high": {"resolution_minutes": 0}}}, "sla.targets.high.resolution_minutes"),
        ({"targets": {"critical": {"resolution_minutes": 5}}}, "sla.targets.critical.[key]"),
        (
            {
                "schedule": {
                    "timezone": "UTC",
                    "hours": {"monday": [{"start": "09:00", "end": "09:01"}]},
                },
                "targets": {"high": {"resolution_minutes": 500}},
            },
            "sla",
        ),
        (  # overlapping ranges count once: one minute a week, whatever the repetition
            {
                "schedule": {
                    "timezone": "UTC",
                    "hours": {"monday": [{"start": "09:00", "end": "09:01"}] * 5},
                },
                "targets": {"high": {"resolution_minutes": 1000}},
            },
            "sla",
        ),
    ],
)
def test_a_bad_policy_is_refused_naming_the_field(
    a: As, change: dict[str, Any], field: str
) -> None:
    r = a.put("/v1/policies", json={"sla": POLICY | change})
    problem = assert_problem(r, 422, field)
    assert a.get("/v1/policies").json()["sla"] is None, problem  # nothing written


def test_a_team_with_its_own_sla(a: As, clock: FakeClock) -> None:
    setup(a, clock)
    assert a.post("/v1/teams", json={"id": "vip"}).status_code == 201
    round_the_clock = {
        "schedule": {
            "timezone": "UTC",
            "hours": {
                day: [{"start": "00:00", "end": "24:00"}]
                for day in (*WEEKDAYS, "saturday", "sunday")
            },
        },
        "targets": {"high": {"first_response_minutes": 30}},
    }
    r = a.patch("/v1/policies", json={"sla": {"teams": {"vip": round_the_clock}}})
    assert r.status_code == 200, r.text
    t = Ticket(a, clock, "T6", team="vip")
    created = t.put(THU)
    assert created["first_response_due"] == "2026-03-26T15:30:00Z"  # the team's SLA
    assert created["resolution_due"] is None  # the team's targets have none for high
    # Moved to support (the tenant's SLA): computed afresh from created_at.
    moved = t.put(THU, team="support")
    assert moved["first_response_due"] == "2026-03-30T08:00:00Z"
    assert moved["resolution_due"] == "2026-03-31T14:00:00Z"
    assert t.due_steps()[-1]["data"]["rule"] == "recomputed"
    # A team the tenant does not have is refused, and nothing is written.
    before = a.get("/v1/policies").json()
    r = a.patch("/v1/policies", json={"sla": {"teams": {"nope": round_the_clock}}})
    assert_problem(r, 422, "sla.teams.nope")
    assert a.get("/v1/policies").json() == before
