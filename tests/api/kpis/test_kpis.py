"""KPIs from a hand-built ticket history, checked against arithmetic done by hand, on SQLite and
PostgreSQL; plus windows, team filters, isolation and bad input."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from tests.api.assignment.test_assign import org
from tests.api.conftest import T0, As, FakeClock, assert_problem, ticket_body

DAY = f"{T0.date().isoformat()}T"  # T0 is 08:00 UTC


def at(hhmm: str) -> str:
    return f"{DAY}{hhmm}:00Z"


def build_history(a: As, clock: FakeClock) -> None:
    org(a)
    tickets: dict[str, dict[str, Any]] = {
        "K1": {
            "created_at": at("08:00"),
            "first_response_due": at("08:30"),
            "resolution_due": at("10:30"),
        },
        "K2": {
            "created_at": at("08:00"),
            "first_response_due": at("08:15"),
            "resolution_due": at("09:00"),
        },
        "K3": {"created_at": at("07:00"), "first_response_due": at("09:00")},
        "K4": {"created_at": at("08:00")},
    }

    def put(tid: str, **change: Any) -> None:
        tickets[tid] |= change
        body = {"team": "support", "effort_minutes": 30} | tickets[tid]
        r = a.put(f"/v1/tickets/{tid}", json=ticket_body(body))
        assert r.status_code in (200, 201), r.text

    def at_clock(hhmm: str) -> None:
        h, m = map(int, hhmm.split(":"))
        clock.now = T0.replace(hour=h, minute=m)

    # Yesterday's ticket, solved yesterday: outside every figure of today's window.
    clock.now = T0 - timedelta(days=1)
    tickets["OLD"] = {"created_at": (T0 - timedelta(days=1)).isoformat()}
    put("OLD")
    put("OLD", status="solved")

    at_clock("08:00")
    for tid in ("K1", "K2", "K3", "K4"):
        put(tid)
    at_clock("08:10")
    put("K1", owner_agent="ben")  # assigned
    at_clock("08:20")
    put("K1", status="open")  # first response after 20 min: due 08:30, met
    at_clock("08:40")
    put("K2", status="open")  # 40 min: due 08:15, breached
    at_clock("09:00")
    put("K4", owner_agent="ana")  # assigned
    at_clock("09:30")
    put("K4", owner_agent="ben")  # reassigned
    at_clock("09:45")
    put("K4", owner_agent=None)  # reassigned, back to the team queue
    at_clock("10:00")
    put("K1", status="solved")  # resolved after 120 min: due 10:30, met
    at_clock("11:00")
    put("K2", status="solved")  # 180 min: due 09:00, breached
    at_clock("11:30")
    r = a.post(
        "/v1/tickets/K4/escalate",
        json={"required_skills": {"billing": 3}, "reassign": False, "reason": "hard one"},
    )
    assert r.status_code == 200, r.text
    at_clock("12:30")
    put("K4", owner_agent="ana")  # after the window: not counted


def test_kpi_arithmetic_on_a_hand_built_history(a: As, clock: FakeClock) -> None:
    build_history(a, clock)
    r = a.get("/v1/kpis", params={"team": "support", "from": at("08:00"), "to": at("12:00")})
    assert r.status_code == 200, r.text
    k = r.json()
    assert k["team"] == "support" and k["from"] == at("08:00") and k["to"] == at("12:00")
    assert k["tickets_created"] == 3  # K1, K2, K4 (K3 was created at 07:00)
    assert k["tickets_resolved"] == 2
    # First responses 20 and 40 min: p50 30, p90 20 + 0.9 * 20 = 38 (linear).
    assert k["first_response_minutes"] == {"count": 2, "p50": 30.0, "p90": 38.0, "mean": 30.0}
    # Resolutions 120 and 180 min.
    assert k["resolution_minutes"] == {"count": 2, "p50": 150.0, "p90": 174.0, "mean": 150.0}
    assert k["backlog"] == 2  # K3 and K4 are still new at 12:00
    assert k["open_unassigned"] == 2  # K3 never assigned; K4 went back to the queue at 09:45
    sla = k["sla"]
    # First response: K1 met; K2 late; K3 never answered and its 09:00 deadline passed.
    assert sla["first_response"] == {"met": 1, "breached": 2, "compliance": pytest.approx(1 / 3)}
    assert sla["resolution"] == {"met": 1, "breached": 1, "compliance": 0.5}
    assert sla["overall"] == {"met": 2, "breached": 3, "compliance": 0.4}
    assert (k["assignments"], k["reassignments"], k["escalations"]) == (2, 2, 1)


def test_a_narrower_window_and_other_teams(a: As, clock: FakeClock) -> None:
    build_history(a, clock)
    k = a.get("/v1/kpis", params={"from": at("09:00"), "to": at("12:00")}).json()
    assert k["team"] is None and k["tickets_created"] == 0
    assert k["first_response_minutes"] == {"count": 0, "p50": None, "p90": None, "mean": None}
    # Deadlines inside [09:00, 12:00): K3's first response (breached); K2's (09:00, breached)
    # and K1's (10:30, met) resolutions.
    assert k["sla"]["first_response"] == {"met": 0, "breached": 1, "compliance": 0.0}
    assert k["sla"]["resolution"] == {"met": 1, "breached": 1, "compliance": 0.5}
    assert (k["assignments"], k["reassignments"], k["escalations"]) == (1, 2, 1)
    empty = a.get("/v1/kpis", params={"team": "tier2", "from": at("08:00"), "to": at("12:00")})
    assert empty.json()["backlog"] == 0 and empty.json()["sla"]["overall"]["compliance"] is None


def test_defaults_to_the_last_seven_days(a: As, clock: FakeClock) -> None:
    build_history(a, clock)
    k = a.get("/v1/kpis").json()  # clock is 12:30: the window is the week before it
    week_before = T0.replace(hour=12, minute=30) - timedelta(days=7)
    assert k["to"] == at("12:30") and k["from"] == week_before.isoformat().replace("+00:00", "Z")
    # OLD is in; the window is half-open, so ana's assignment at exactly 12:30 is not.
    assert k["tickets_created"] == 5 and k["tickets_resolved"] == 3 and k["assignments"] == 2


def test_kpis_are_tenant_isolated_and_validate_input(a: As, b: As, clock: FakeClock) -> None:
    build_history(a, clock)
    org(b)
    k = b.get("/v1/kpis", params={"from": at("08:00"), "to": at("12:00")}).json()
    assert (k["tickets_created"], k["backlog"], k["assignments"]) == (0, 0, 0)
    assert_problem(
        a.get("/v1/kpis", params={"from": "2026-03-02T08:00:00", "to": at("12:00")}),
        422,
        "query.from",
    )
    assert_problem(
        a.get("/v1/kpis", params={"from": at("12:00"), "to": at("08:00")}), 422, "query.from"
    )
    assert_problem(a.get("/v1/kpis", params={"team": "nope"}), 422, "query.team")
    assert_problem(a.get("/v1/kpis", params={"to": "0001-01-02T00:00:00Z"}), 422, "query.to")


def test_trend_per_local_hour_sums_to_the_window(a: As, clock: FakeClock) -> None:
    build_history(a, clock)
    params = {"team": "support", "from": at("08:00"), "to": at("12:00"), "interval": "hour"}
    k = a.get("/v1/kpis", params=params | {"timezone": "America/New_York"}).json()
    assert (k["interval"], k["timezone"]) == ("hour", "America/New_York")
    trend = k["trend"]
    assert [b["from"] for b in trend] == [at("08:00"), at("09:00"), at("10:00"), at("11:00")]
    assert trend[0]["local_start"] == "2026-03-02T03:00:00-05:00"
    assert [b["tickets_created"] for b in trend] == [3, 0, 0, 0]
    assert [b["tickets_resolved"] for b in trend] == [0, 0, 1, 1]
    # Met when answered (K1 08:20), breached when the deadline passed (K2 08:15, K3 09:00).
    assert [
        (b["sla"]["first_response"]["met"], b["sla"]["first_response"]["breached"]) for b in trend
    ] == [
        (1, 1),
        (0, 1),
        (0, 0),
        (0, 0),
    ]
    # Resolution: K2's 09:00 deadline passed unresolved; K1 solved 10:00 (due 10:30).
    assert [(b["sla"]["resolution"]["met"], b["sla"]["resolution"]["breached"]) for b in trend] == [
        (0, 0),
        (0, 1),
        (1, 0),
        (0, 0),
    ]
    assert [b["assignments"] for b in trend] == [1, 1, 0, 0]
    assert [b["reassignments"] for b in trend] == [0, 2, 0, 0]
    assert [b["escalations"] for b in trend] == [0, 0, 0, 1]
    assert [b["backlog"] for b in trend] == [4, 4, 3, 2]
    # Half-hour zones: the local hours start at :30 UTC; the first and last are clipped.
    india = a.get("/v1/kpis", params=params | {"timezone": "Asia/Kolkata"}).json()["trend"]
    assert [b["from"] for b in india] == [
        at("08:00"),
        at("08:30"),
        at("09:30"),
        at("10:30"),
        at("11:30"),
    ]
    assert india[-1]["to"] == at("12:00") and india[0]["local_start"] == "2026-03-02T13:30:00+05:30"
    # Without an interval there is no trend.
    plain = a.get("/v1/kpis", params={"from": at("08:00"), "to": at("12:00")}).json()
    assert plain["trend"] == [] and plain["interval"] is None and plain["timezone"] == "UTC"


def test_reopens_counted_from_the_history(a: As, clock: FakeClock) -> None:
    build_history(a, clock)
    clock.now = T0.replace(hour=12, minute=40)
    body = {"team": "support", "effort_minutes": 30, "created_at": at("08:00")}
    # K1 was solved at 10:00.
    r = a.put("/v1/tickets/K1", json=ticket_body(body | {"status": "open"}))
    assert r.status_code == 200, r.text
    k = a.get("/v1/kpis", params={"from": at("12:00"), "to": at("13:00")}).json()
    assert k["reopens"] == 1 and k["backlog"] == 3


def test_bad_trend_parameters(a: As, clock: FakeClock) -> None:
    build_history(a, clock)
    assert_problem(a.get("/v1/kpis", params={"timezone": "Mars/Base"}), 422, "query.timezone")
    assert_problem(a.get("/v1/kpis", params={"interval": "fortnight"}), 422, "query.interval")
    long = {"from": "2026-01-01T00:00:00Z", "to": "2026-03-01T00:00:00Z", "interval": "hour"}
    assert_problem(a.get("/v1/kpis", params=long), 422, "query.interval")
