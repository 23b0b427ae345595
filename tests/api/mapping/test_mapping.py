"""api.mapping: every source of a solver type maps to the same value, and every
document of a solver result is what its response schema writes (validated and dumped again,
it comes back unchanged). Rows are built in memory, except for the last test, which holds the
three reads of a stored ticket equal."""

from __future__ import annotations

import ast
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel
from sqlalchemy import Engine

from api import mapping
from api.assignment import claims
from api.assignment import service as assignment
from api.assignment.schemas import AssignmentOut
from api.assignment.service import TicketView
from api.bookings.schemas import AtRiskOut, BindingOut, SlotOut
from api.db.engine import make_session_factory
from api.db.models import Agent as AgentRow
from api.db.models import AgentSkill, CapabilitySkill, TicketSkill
from api.db.models import Call as CallRow
from api.db.models import Capability as CapabilityRow
from api.db.models import Ticket as TicketRow
from api.enums import AgentStatus, SkillKind, TicketPriority, TicketStatus
from api.errors import InvalidInput
from api.kpis.schemas import KpiOut
from api.kpis.service import Compliance, Durations, Report
from api.mapping import Owner
from api.solve.schemas import SolveAgent, SolveRequest, SolveResponse, SolveTicket
from api.solve.service import solve
from api.solver_input import build_problem
from solver.capability import AtRisk, Binding, Slot
from solver.plan import Alternative, Decision, Reason
from solver.policies import PolicyParams
from solver.problem import Interval, Priority, Problem
from tests.api.conftest import FakeClock, TenantCtx
from tests.api.mapping.test_solver_input import D, org, put

BERLIN = timezone(timedelta(hours=2))
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
T0_BERLIN = T0.astimezone(BERLIN)  # the same moment, written with another offset


def _roundtrip(model: type[BaseModel], doc: dict[str, Any]) -> None:
    """The document is the schema's: validated and dumped as JSON, it is unchanged."""
    assert model.model_validate(doc).model_dump(mode="json", by_alias=False) == doc


# --------------------------------------------------------------------------- tickets


def _ticket_row(**over: Any) -> TicketRow:
    fields: dict[str, Any] = {
        "tenant_id": "t",
        "id": "T-1",
        "team_id": "support",
        "priority": TicketPriority.HIGH,
        "status": TicketStatus.OPEN,
        "created_at": T0_BERLIN,
        "first_response_due": T0_BERLIN + timedelta(hours=1),
        "resolution_due": None,
        "effort_minutes": 45,
        "owner_agent_id": "ana",
        "previous_agent_id": "ben",
        "requester": "cust@example.com",
        "channel": "chat",
        "required_skills": [
            TicketSkill(tenant_id="t", ticket_id="T-1", skill_id="billing", level=3),
            TicketSkill(tenant_id="t", ticket_id="T-1", skill_id="tier", level=2),
        ],
    }
    fields.update(over)
    return TicketRow(**fields)


def _view(row: TicketRow) -> TicketView:
    return TicketView(
        tenant_id=row.tenant_id,
        id=row.id,
        team_id=row.team_id,
        priority=row.priority,
        status=row.status,
        created_at=row.created_at,
        first_response_due=row.first_response_due,
        resolution_due=row.resolution_due,
        effort_minutes=row.effort_minutes,
        owner_agent_id=row.owner_agent_id,
        previous_agent_id=row.previous_agent_id,
        requester=row.requester,
        channel=row.channel,
        required={s.skill_id: s.level for s in row.required_skills},
    )


def _solve_ticket(row: TicketRow) -> SolveTicket:
    return SolveTicket.model_validate(
        {
            "id": row.id,
            "team": row.team_id,
            "created_at": row.created_at.isoformat(),
            "required_skills": {s.skill_id: s.level for s in row.required_skills},
            "priority": row.priority.value,
            "first_response_due": row.first_response_due and row.first_response_due.isoformat(),
            "resolution_due": row.resolution_due and row.resolution_due.isoformat(),
            "effort_minutes": row.effort_minutes,
            "owner_agent": row.owner_agent_id,
            "previous_agent": row.previous_agent_id,
            "requester": row.requester,
            "channel": row.channel,
        }
    )


def test_a_ticket_row_maps_every_field_with_aware_utc_times() -> None:
    t = mapping.ticket_from_row(_ticket_row())
    assert (t.id, t.team, t.priority, t.effort_minutes) == ("T-1", "support", Priority.HIGH, 45)
    assert dict(t.required_skills) == {"billing": 3, "tier": 2}
    assert (t.owner_agent, t.previous_agent, t.requester) == ("ana", "ben", "cust@example.com")
    assert t.channel == "chat"
    assert t.created_at == T0 and t.created_at.utcoffset() == timedelta(0)
    assert t.first_response_due == T0 + timedelta(hours=1)
    assert t.first_response_due is not None and t.first_response_due.utcoffset() == timedelta(0)
    assert t.resolution_due is None


@pytest.mark.parametrize(
    "over",
    [
        {},
        {"required_skills": [], "owner_agent_id": None, "previous_agent_id": None},
        {
            "priority": TicketPriority.LOW,
            "requester": None,
            "resolution_due": T0_BERLIN + timedelta(hours=2),
        },
        {"priority": TicketPriority.URGENT, "first_response_due": None},
    ],
    ids=["full", "no-skills-no-owner", "low", "urgent"],
)
def test_a_ticket_is_the_same_from_a_row_the_hot_path_view_and_a_request(
    over: dict[str, Any],
) -> None:
    row = _ticket_row(**over)
    from_row = mapping.ticket_from_row(row)
    assert _view(row).to_solver() == from_row
    assert mapping.ticket_from_request(_solve_ticket(row)) == from_row


def test_a_ticket_without_required_skills_needs_none() -> None:
    t = mapping.ticket_from_row(_ticket_row(required_skills=[]))
    assert dict(t.required_skills) == {}


@pytest.mark.parametrize("priority", list(TicketPriority))
def test_every_priority_maps_to_the_solver_s_by_name(priority: TicketPriority) -> None:
    t = mapping.ticket_from_row(_ticket_row(priority=priority))
    assert t.priority is Priority[priority.name]


# --------------------------------------------------------------------------- agents


def _agent_row(**over: Any) -> AgentRow:
    fields: dict[str, Any] = {
        "tenant_id": "t",
        "id": "ana",
        "team_id": "support",
        "capacity": 4,
        "timezone": "Europe/Berlin",
        "status": AgentStatus.AWAY,
        "skills": [
            AgentSkill(tenant_id="t", agent_id="ana", skill_id="billing", level=5),
            AgentSkill(tenant_id="t", agent_id="ana", skill_id="tier", level=1),
        ],
    }
    fields.update(over)
    return AgentRow(**fields)


def test_an_agent_row_maps_skills_time_and_loads() -> None:
    shift = Interval(T0_BERLIN, T0_BERLIN + timedelta(hours=8))
    busy = Interval(T0 + timedelta(hours=1), T0 + timedelta(hours=2))
    a = mapping.agent_from_row(
        _agent_row(), [shift], [busy], open_tickets=2, backlog_minutes=60, recent_assignments=3
    )
    assert (a.id, a.team, a.capacity, a.timezone) == ("ana", "support", 4, "Europe/Berlin")
    assert a.status is AgentStatus.AWAY
    assert dict(a.skills) == {"billing": 5, "tier": 1}
    assert a.shifts == (Interval(T0, T0 + timedelta(hours=8)),)
    assert a.shifts[0].start.utcoffset() == timedelta(0)
    assert a.busy == (busy,)
    assert (a.open_tickets, a.backlog_minutes, a.recent_assignments) == (2, 60, 3)


def test_an_agent_without_skills_or_time_has_none_and_no_load() -> None:
    a = mapping.agent_from_row(_agent_row(skills=[]))
    assert dict(a.skills) == {}
    assert (a.shifts, a.busy) == ((), ())
    assert (a.open_tickets, a.backlog_minutes, a.recent_assignments) == (0, 0, 0)


def test_an_agent_is_the_same_from_a_row_and_a_request() -> None:
    shift = Interval(T0, T0 + timedelta(hours=8))
    row = mapping.agent_from_row(_agent_row(), [shift], open_tickets=1)
    posted = SolveAgent.model_validate(
        {
            "id": "ana",
            "team": "support",
            "skills": {"billing": 5, "tier": 1},
            "capacity": 4,
            "shifts": [
                {
                    "start": T0_BERLIN.isoformat(),
                    "end": (T0_BERLIN + timedelta(hours=8)).isoformat(),
                }
            ],
            "open_tickets": 1,
            "timezone": "Europe/Berlin",
            "status": "away",
        }
    )
    assert mapping.agent_from_request(posted) == row


# --------------------------------------------------------------------------- the rest inward


def test_a_capability_row_maps_its_calendar_rules() -> None:
    row = CapabilityRow(
        tenant_id="t",
        id="onboarding",
        name="Onboarding call",
        call_minutes=45,
        horizon_days=10,
        min_notice_minutes=90,
        buffer_minutes=15,
        granularity_minutes=30,
        reserve_share=0.25,
        requirements=[
            CapabilitySkill(tenant_id="t", capability_id="onboarding", skill_id="tier", level=2)
        ],
    )
    c = mapping.capability_from_row(row)
    assert (c.id, c.name, c.call_minutes, c.buffer_minutes) == (
        "onboarding",
        "Onboarding call",
        45,
        15,
    )
    assert dict(c.requirements) == {"tier": 2}
    assert c.horizon == timedelta(days=10)
    assert c.min_notice == timedelta(minutes=90)
    assert (c.granularity_minutes, c.reserve) == (30, 0.25)


def test_a_call_row_carries_its_ticket_s_owner() -> None:
    row = CallRow(
        tenant_id="t",
        id="call-1",
        capability_id="onboarding",
        ticket_id="T-1",
        start_at=T0,
        end_at=T0 + timedelta(minutes=45),
        bound_agent=None,
    )
    c = mapping.call(row, "ana")
    assert (c.id, c.capability_id, c.ticket_id) == ("call-1", "onboarding", "T-1")
    assert (c.start, c.end) == (T0, T0 + timedelta(minutes=45))
    assert (c.owner_agent, c.bound_agent) == ("ana", None)


def _request(**over: Any) -> SolveRequest:
    body: dict[str, Any] = {
        "now": T0_BERLIN.isoformat(),
        "skills": [{"id": "billing", "kind": "skill"}, {"id": "tier", "kind": "tier"}],
        "teams": [{"id": "support", "name": "Support"}],
        "agents": [
            {
                "id": "ana",
                "team": "support",
                "skills": {"billing": 3, "tier": 2},
                "capacity": 2,
                "shifts": [{"start": T0.isoformat(), "end": (T0 + timedelta(hours=8)).isoformat()}],
            }
        ],
        "tickets": [
            {
                "id": "T-1",
                "team": "support",
                "created_at": (T0 - timedelta(hours=1)).isoformat(),
                "required_skills": {"billing": 2},
                "first_response_due": (T0 + timedelta(hours=1)).isoformat(),
            },
            {"id": "T-2", "team": "support", "created_at": T0.isoformat()},
        ],
        "policy": "least-loaded",
    }
    body.update(over)
    return SolveRequest.model_validate(body)


def test_a_posted_problem_maps_skills_teams_agents_and_tickets() -> None:
    p = mapping.problem_from_request(_request())
    assert p.now == T0 and p.now.utcoffset() == timedelta(0)
    assert [(s.id, s.kind) for s in p.skills] == [
        ("billing", SkillKind.SKILL),
        ("tier", SkillKind.TIER),
    ]
    assert [(t.id, t.name) for t in p.teams] == [("support", "Support")]
    assert [a.id for a in p.agents] == ["ana"]
    assert [t.id for t in p.tickets] == ["T-1", "T-2"]
    assert dict(p.tickets[1].required_skills) == {}


def test_a_posted_problem_the_solver_refuses_names_the_field() -> None:
    bad_agent = {"id": "ana", "team": "nowhere"}
    with pytest.raises(InvalidInput) as info:
        mapping.problem_from_request(_request(agents=[bad_agent]))
    [error] = info.value.errors
    assert error.field.startswith("agents[0]")


# --------------------------------------------------------------------------- outward


def test_a_reason_keeps_its_value_as_a_float_and_the_brief_drops_it() -> None:
    assert mapping.reason_json(Reason("load_balance", "load 1/4", 5)) == {
        "rule": "load_balance",
        "detail": "load 1/4",
        "value": 5.0,
    }
    assert isinstance(mapping.reason_json(Reason("x", "y", 5))["value"], float)
    assert mapping.reasons_json([]) == []
    assert mapping.reasons_brief([Reason("uncoverable", "nobody", 1.5)]) == [
        {"rule": "uncoverable", "detail": "nobody"}
    ]


def test_the_owner_is_the_agent_else_the_team() -> None:
    assert mapping.owner_of(_ticket_row()) == Owner("agent", "ana")
    assert mapping.owner_of(_ticket_row(owner_agent_id=None)) == Owner("team", "support")
    assert mapping.owner_of(_ticket_row(owner_agent_id="")) == Owner("team", "support")
    assert Owner("team", "support").as_json() == {"kind": "team", "id": "support"}


def test_utc_text_writes_any_offset_as_utc_with_z() -> None:
    assert mapping.utc_text(T0_BERLIN) == "2026-03-02T09:00:00Z"
    assert mapping.utc_text(T0 + timedelta(microseconds=250)) == "2026-03-02T09:00:00.000250Z"
    assert mapping.utc_text(None) is None


@pytest.mark.parametrize("agent", ["ana", None])
def test_a_decision_document_is_the_assignment_schema_s(agent: str | None) -> None:
    decision = Decision(
        ticket_id="T-1",
        agent_id=agent,
        team_id="support",
        score=None if agent is None else 12.5,
        reasons=(Reason("first_response", "due in 1 h", 0), Reason("load_balance", "1/4", 5)),
        alternatives=(Alternative("ben", 14, (Reason("fairness", "2 recent", 2.0),)),),
        expected_start=None if agent is None else T0_BERLIN,
        expected_end=None if agent is None else T0 + timedelta(minutes=45),
    )
    doc = mapping.decision_json(
        decision, previous=Owner("team", "support"), changed=True, event="assigned", dry_run=False
    )
    expected_owner = {"kind": "agent", "id": agent} if agent else {"kind": "team", "id": "support"}
    assert doc["owner"] == expected_owner
    assert doc["alternatives"] == [
        {
            "agent": "ben",
            "score": 14.0,
            "reasons": [{"rule": "fairness", "detail": "2 recent", "value": 2.0}],
        }
    ]
    assert doc["expected_start"] == (None if agent is None else "2026-03-02T09:00:00Z")
    _roundtrip(AssignmentOut, doc)


def test_a_plan_document_is_the_solve_schema_s() -> None:
    problem: Problem = mapping.problem_from_request(_request())
    solved = solve(problem=problem, policy="least-loaded", params=PolicyParams())
    doc = mapping.plan_json(solved.plan, evaluation=solved.evaluation, violations=solved.violations)
    assert [a["ticket_id"] for a in doc["assignments"]] or doc["queued"]
    assert doc["violations"] == []
    assert doc["stats"]["policy"] == solved.plan.stats.policy
    assert doc["stats"]["status"] == solved.plan.stats.status.value
    _roundtrip(SolveResponse, doc)


def test_booking_documents_are_their_schemas() -> None:
    local = Slot("onboarding", T0_BERLIN, T0_BERLIN + timedelta(minutes=30))
    assert mapping.slot_json(local) == {
        "start": "2026-03-02T11:00:00+02:00",
        "end": "2026-03-02T11:30:00+02:00",
    }
    _roundtrip(SlotOut, mapping.slot_json(local))
    utc = Slot("onboarding", T0, T0 + timedelta(minutes=30))
    assert mapping.slot_json(utc)["start"] == "2026-03-02T09:00:00Z"
    _roundtrip(SlotOut, mapping.slot_json(utc))
    binding = Binding("call-1", "ana", "ben", (Reason("owner", "owns the ticket", 1.0),))
    assert mapping.binding_json(binding)["reasons"] == [
        {"rule": "owner", "detail": "owns the ticket"}
    ]
    _roundtrip(BindingOut, mapping.binding_json(binding))
    _roundtrip(BindingOut, mapping.binding_json(Binding("call-2", "ana")))
    risk = AtRisk("call-1", Reason("uncoverable", "nobody is free"), "ana")
    _roundtrip(AtRiskOut, mapping.at_risk_json(risk))


def test_a_kpi_document_is_the_kpi_schema_s_and_answers_from_and_to() -> None:
    report = Report(
        team=None,
        start=T0_BERLIN - timedelta(days=7),
        end=T0_BERLIN,
        created=3,
        first_response=Durations.of([10.0, 20.0, 30.0, 40.0]),
        sla_first_response=Compliance(1, 1),
        sla_resolution=Compliance(2, 0),
    )
    doc = mapping.kpis_json(report)
    assert doc["start"] == "2026-02-23T09:00:00Z"
    assert doc["first_response_minutes"]["p50"] == 25.0
    assert doc["resolution_minutes"] == {"count": 0, "p50": None, "p90": None, "mean": None}
    assert doc["sla"]["overall"] == {"met": 3, "breached": 1, "compliance": 0.75}
    _roundtrip(KpiOut, doc)
    answered = KpiOut.model_validate(doc).model_dump(mode="json", by_alias=True)
    assert (answered["from"], answered["to"]) == (doc["start"], doc["end"])


# --------------------------------------------------------------------------- stored tickets


def test_the_three_reads_of_a_stored_ticket_map_to_the_same_solver_ticket(
    tenant_a: TenantCtx, db: Engine, clock: FakeClock
) -> None:
    """The planner's ORM read (build_problem), the locked ORM read (escalate, reroute) and the
    hot path's Core read (one statement per batch) all become the same solver ticket, with
    offsets given to the API stored and answered as aware UTC."""
    a = tenant_a.admin
    org(a)
    put(a, "plain", required_skills={})
    put(
        a,
        "full",
        status="open",
        priority="high",
        required_skills={"billing": 3, "lang:de": 1},
        owner_agent="ana",
        previous_agent="ben",
        requester="cust@example.com",
        created_at=f"{D}08:30:00+02:00",
        first_response_due=f"{D}10:00:00+02:00",
        resolution_due=f"{D}12:00:00Z",
    )
    ids = ["full", "plain"]
    with make_session_factory(db)() as session:
        planned = build_problem(session=session, tenant_id=tenant_a.id, now=clock(), ticket_ids=ids)
        locked = [
            mapping.ticket_from_row(
                claims.lock_ticket(session=session, tenant_id=tenant_a.id, ticket_id=i)
            )
            for i in ids
        ]
        views = assignment._read_tickets(session, tenant_a.id, ids)
        hot = [views[i].to_solver() for i in ids]
    assert list(planned.tickets) == locked == hot
    full = planned.tickets[0]
    assert full.created_at == datetime(2026, 3, 2, 6, 30, tzinfo=UTC)
    assert full.created_at.utcoffset() == timedelta(0)
    assert dict(full.required_skills) == {"billing": 3, "lang:de": 1}
    assert (full.owner_agent, full.previous_agent, full.priority) == ("ana", "ben", Priority.HIGH)
    assert dict(planned.tickets[1].required_skills) == {}


# --------------------------------------------------------------------------- once, and only here

# The solver's entity types: a row or a request becomes one of these in mapping.py alone.
_ENTITIES = frozenset({"Agent", "Ticket", "Capability", "Call", "Skill", "Team"})
_API = Path(__file__).resolve().parents[3] / "api"


def _solver_entity_constructions(path: Path) -> list[str]:
    """``Name(...)`` calls in ``path`` of a solver entity type, however it was imported."""
    tree = ast.parse(path.read_text(), str(path))
    local: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("solver"):
            for alias in node.names:
                if alias.name in _ENTITIES:
                    local[alias.asname or alias.name] = alias.name
    return [
        f"{path.relative_to(_API.parent)}:{node.lineno} {local[node.func.id]}"
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in local
    ]


def test_only_the_mapping_builds_solver_entities_in_api() -> None:
    found = [c for p in sorted(_API.rglob("*.py")) for c in _solver_entity_constructions(p)]
    assert found, "the scan finds the mapping's own constructions"
    elsewhere = [c for c in found if not c.startswith("api/mapping.py:")]
    assert elsewhere == [], "map rows and requests in api/mapping.py"
