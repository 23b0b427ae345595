"""The rows-to-solver mapping: what the solver sees of a tenant, and nothing of another."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import Engine

from api.db.engine import make_session_factory
from api.errors import NotFound
from api.solver_input import build_problem, capabilities
from solver.policies import least_loaded
from solver.problem import AgentStatus, Priority
from solver.validation import check_plan
from tests.api.conftest import T0, As, FakeClock, TenantCtx, ticket_body

D = "2026-03-02T"


def org(c: As) -> None:
    for skill in ("billing", "lang:de"):
        assert c.post("/v1/skills", json={"id": skill}).status_code == 201
    for team in ("support", "tier2"):
        assert c.post("/v1/teams", json={"id": team}).status_code == 201
    agents = [
        {"id": "ana", "team": "support", "skills": {"billing": 4, "lang:de": 5}, "capacity": 3},
        {"id": "ben", "team": "support", "skills": {"billing": 2}, "capacity": 2},
        {"id": "cy", "team": "tier2", "skills": {"billing": 5}, "status": "away"},
    ]
    assert c.post("/v1/agents/import", json=agents).status_code == 201
    shifts = [
        {"agent": "ana", "start": f"{D}07:00:00Z", "end": f"{D}15:00:00Z"},
        {"agent": "ana", "start": "2026-03-20T07:00:00Z", "end": "2026-03-20T15:00:00Z"},
        {"agent": "ben", "start": f"{D}00:00:00Z", "end": f"{D}09:00:00Z"},
        {"agent": "ben", "start": "2026-03-01T07:00:00Z", "end": "2026-03-01T15:00:00Z"},
    ]
    assert c.post("/v1/shifts/import", json=shifts).status_code == 201
    busy = {"agent": "ana", "start": f"{D}10:00:00Z", "end": f"{D}11:00:00Z"}
    assert c.post("/v1/busy", json=busy).status_code == 201


def put(c: As, ident: str, **extra: object) -> None:
    body = {
        "team": "support",
        "required_skills": {"billing": 2},
        "created_at": f"{D}07:00:00Z",
        "resolution_due": f"{D}12:00:00Z",
        "effort_minutes": 30,
    } | extra
    r = c.put(f"/v1/tickets/{ident}", json=ticket_body(body))
    assert r.status_code in (200, 201), r.text


def test_problem_maps_agents_tickets_and_held_work(
    tenant_a: TenantCtx, b: As, db: Engine, clock: FakeClock
) -> None:
    a = tenant_a.admin
    org(a)
    put(a, "new-1", priority="urgent")
    put(a, "open-ana", status="open", owner_agent="ana", effort_minutes=45)
    put(a, "pending-ana", status="pending", owner_agent="ana", effort_minutes=60)
    put(a, "solved-ana", status="solved", owner_agent="ana")
    put(a, "tier2-1", team="tier2")
    # Tenant B's look-alike data must not leak into A's problem.
    org(b)
    put(b, "b-ticket", owner_agent="ana")

    with make_session_factory(db)() as session:
        problem = build_problem(session=session, tenant_id=tenant_a.id, now=clock())
        assert [t.id for t in problem.tickets] == ["new-1", "open-ana", "tier2-1"]
        ana, ben, cy = problem.agents
        assert (ana.id, ben.id, cy.id) == ("ana", "ben", "cy")
        assert dict(ana.skills) == {"billing": 4, "lang:de": 5}
        # open-ana is planned (so not held twice); pending-ana is held: capacity, no backlog.
        assert ana.open_tickets == 1 and ana.backlog_minutes == 0
        assert len(ana.shifts) == 1 and len(ana.busy) == 1  # the 20th is past the 7-day horizon
        assert len(ben.shifts) == 1  # yesterday's shift is gone, the night shift still runs
        assert cy.status is AgentStatus.AWAY
        assert ana.recent_assignments == 3  # three tickets were just assigned to her
        new1 = problem.ticket("new-1")
        assert new1.priority is Priority.URGENT and new1.team == "support"
        assert problem.ticket("open-ana").owner_agent == "ana"
        assert {s.id for s in problem.skills} == {"billing", "lang:de"}

        # One team's queue; exactly named tickets (held work adjusts to what is planned).
        team_only = build_problem(session=session, tenant_id=tenant_a.id, now=clock(), team="tier2")
        assert [t.id for t in team_only.tickets] == ["tier2-1"]
        assert team_only.agent("ana").open_tickets == 2
        assert team_only.agent("ana").backlog_minutes == 45
        named = build_problem(
            session=session, tenant_id=tenant_a.id, now=clock(), ticket_ids=["pending-ana"]
        )
        assert [t.id for t in named.tickets] == ["pending-ana"]
        assert named.agent("ana").open_tickets == 1
        with pytest.raises(NotFound):
            build_problem(
                session=session, tenant_id=tenant_a.id, now=clock(), ticket_ids=["b-ticket"]
            )
        only_tier2 = build_problem(
            session=session, tenant_id=tenant_a.id, now=clock(), agent_team="tier2"
        )
        assert [ag.id for ag in only_tier2.agents] == ["cy"]

        # Fairness counts only recent assignments.
        later = build_problem(
            session=session, tenant_id=tenant_a.id, now=clock() + timedelta(hours=9)
        )
        assert later.agent("ana").recent_assignments == 0

        # The problem is one the solver accepts and plans validly.
        plan = least_loaded(problem)
        assert check_plan(problem, plan) == []


def test_capabilities_map_to_the_booking_type(a: As, tenant_a: TenantCtx, db: Engine) -> None:
    org(a)
    body = {
        "id": "de-billing",
        "requirements": {"billing": 3, "lang:de": 4},
        "horizon_days": 10,
        "min_notice_minutes": 90,
        "reserve_share": 0.25,
    }
    assert a.post("/v1/capabilities", json=body).status_code == 201
    with make_session_factory(db)() as session:
        (cap,) = capabilities(session=session, tenant_id=tenant_a.id)
    assert dict(cap.requirements) == {"billing": 3, "lang:de": 4}
    assert cap.horizon == timedelta(days=10) and cap.min_notice == timedelta(minutes=90)
    assert cap.reserve == pytest.approx(0.25)


def test_empty_tenant_is_an_empty_problem(tenant_a: TenantCtx, db: Engine) -> None:
    with make_session_factory(db)() as session:
        problem = build_problem(session=session, tenant_id=tenant_a.id, now=T0)
    assert problem.agents == () and problem.tickets == ()
