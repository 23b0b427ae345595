"""The wrap-up buffer keeps the agent taken after the call ends, through HTTP on SQLite and
PostgreSQL: the bookings job stores ``completed`` at the call's end, yet until
``occupied_until`` (end + buffer) nobody books or re-binds a call onto that agent; and on
PostgreSQL the exclusion constraint covers completed rows too.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError

from api import solver_input
from api.db.engine import make_session_factory
from api.db.models import CallStatus
from tests.api.bookings.test_bookings import DAY, _call, book, org
from tests.api.conftest import T0, As, FakeClock, TenantCtx, assert_problem, postgres_only

AFTER_END = T0 + timedelta(hours=1, minutes=31)  # 09:31 UTC: the 09:00-09:30 call is over
IN_WRAPUP = f"{DAY}10:40:00+01:00"  # 09:40 UTC: before 09:45, when its 15-minute wrap-up ends


def _setup(a: As, agents: tuple[str, ...]) -> str:
    """``net`` with a 15-minute wrap-up, bookable at once on a 5-minute grid; the 09:00 UTC
    call booked and bound (to ana, the only agent free then if ``agents`` starts with her)."""
    org(a, agents=agents)
    r = a.patch(
        "/v1/capabilities/net",
        json={"buffer_minutes": 15, "min_notice_minutes": 0, "granularity_minutes": 5},
    )
    assert r.status_code == 200, r.text
    r = book(a)
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def _bound(a: As, booking: str) -> str | None:
    r = a.get(f"/v1/bookings/{booking}")
    assert r.status_code == 200, r.text
    agent = r.json()["agent"]
    return None if agent is None else str(agent["id"] if isinstance(agent, dict) else agent)


def test_an_agent_in_wrap_up_is_not_booked_after_the_call_is_completed(
    a: As, clock: FakeClock
) -> None:
    first = _setup(a, ("ana",))
    assert a.post("/v1/bookings/bind").status_code == 200
    clock.now = AFTER_END
    out = a.post("/v1/bookings/rebalance")
    assert out.status_code == 200, out.text
    assert a.get(f"/v1/bookings/{first}").json()["status"] == "completed"
    r = a.get(
        "/v1/capabilities/net/slots",
        params={"from": f"{DAY}09:30:00Z", "to": f"{DAY}10:30:00Z", "tz": "UTC"},
    )
    assert r.status_code == 200, r.text
    offered = [s["start"] for s in r.json()["slots"]]
    assert offered[0] == f"{DAY}09:45:00Z", offered  # not 09:35 or 09:40: ana is in wrap-up
    refused = book(a, start=IN_WRAPUP, ticket="ZD-2")
    problem = assert_problem(refused, 409)
    assert problem["reason"]["rule"] == "fully_booked"
    assert f"{DAY}10:45:00+01:00" in [s["start"] for s in problem["alternatives"]]


def test_a_booking_in_someones_wrap_up_goes_to_somebody_else(a: As, clock: FakeClock) -> None:
    first = _setup(a, ("ana", "ben"))
    assert a.post("/v1/bookings/bind").status_code == 200
    holder = _bound(a, first)
    assert holder in ("ana", "ben")
    clock.now = AFTER_END
    assert a.post("/v1/bookings/rebalance").status_code == 200  # completes the first call
    second = book(a, start=IN_WRAPUP, ticket="ZD-2")
    assert second.status_code == 201, second.text
    bound = a.post("/v1/bookings/bind").json()["bound"]
    assert [b["agent"] for b in bound] == [{"ana": "ben", "ben": "ana"}[holder]]


def test_a_call_is_not_re_bound_onto_an_agent_in_wrap_up(a: As, clock: FakeClock) -> None:
    """ana takes 09:00-09:30 (wrap-up to 09:45), ben 09:40. ben goes offline at 09:31: the
    09:40 call cannot go to ana (still in wrap-up), so it is reported at risk, not re-bound."""
    first = _setup(a, ("ana", "ben"))
    assert a.post("/v1/bookings/bind").status_code == 200
    holder = _bound(a, first)
    other = {"ana": "ben", "ben": "ana"}[str(holder)]
    second = book(a, start=IN_WRAPUP, ticket="ZD-2")
    assert second.status_code == 201, second.text
    assert [b["agent"] for b in a.post("/v1/bookings/bind").json()["bound"]] == [other]
    clock.now = AFTER_END
    assert a.patch(f"/v1/agents/{other}", json={"status": "offline"}).status_code == 200
    out = a.post("/v1/bookings/rebalance").json()
    assert out["rebound"] == []
    assert [x["booking_id"] for x in out["at_risk"]] == [second.json()["id"]]
    assert _bound(a, first) == holder  # the completed call kept its agent


@postgres_only  # the exclusion constraint is PostgreSQL's (SQLite relies on the tenant lock)
def test_postgres_refuses_a_call_bound_into_a_completed_calls_wrap_up(
    a: As, tenant_a: TenantCtx, db: Engine
) -> None:
    assert db.dialect.name == "postgresql"
    org(a)
    factory = make_session_factory(db)
    nine = T0 + timedelta(hours=1)  # 09:00-09:30, occupied until 09:40
    with factory() as s:
        s.add(_call(tenant_a.id, "c1", "ana", nine, status=CallStatus.COMPLETED))
        s.add(_call(tenant_a.id, "c2", "ben", nine + timedelta(minutes=35)))  # another agent
        s.commit()
    with factory() as s:
        s.add(_call(tenant_a.id, "c3", "ana", nine + timedelta(minutes=35)))  # in c1's wrap-up
        with pytest.raises(IntegrityError, match="ex_calls_agent_no_overlap"):
            s.commit()
    with factory() as s:
        s.add(_call(tenant_a.id, "c4", "ana", nine + timedelta(minutes=40)))  # touches only
        s.add(_call(tenant_a.id, "c5", "ben", nine, status=CallStatus.CANCELLED))  # holds nobody
        s.commit()


def test_a_completed_call_in_wrap_up_is_still_busy_time_for_ticket_work(
    a: As, tenant_a: TenantCtx, db: Engine, clock: FakeClock
) -> None:
    """The assignment paths read calls as busy time (``solver_input.call_holds``): a call
    completed at its end still holds its agent until ``occupied_until``, then nobody."""
    first = _setup(a, ("ana",))
    assert a.post("/v1/bookings/bind").status_code == 200
    clock.now = AFTER_END
    assert a.post("/v1/bookings/rebalance").status_code == 200
    assert a.get(f"/v1/bookings/{first}").json()["status"] == "completed"
    wrap_end = T0 + timedelta(hours=1, minutes=45)
    with make_session_factory(db)() as s:
        holds = solver_input.call_holds(s, tenant_a.id, AFTER_END, AFTER_END + timedelta(hours=1))
        assert holds == (("ana", T0 + timedelta(hours=1), wrap_end),)
        assert (
            solver_input.call_holds(s, tenant_a.id, wrap_end, wrap_end + timedelta(hours=1)) == ()
        )
