"""The simulated production router decides as the service does: one organisation state
(``tests/scenarios/shared_state.py``) loaded into the service through HTTP and into the
simulation, the same ticket assigned by both, the same agent chosen (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import timedelta

from scenarios.sim import route_one
from tests.api.conftest import As, FakeClock, ticket_body
from tests.scenarios import shared_state as state


def load(c: As) -> None:
    """The shared state through the service's own endpoints."""
    for skill in state.SKILLS:
        assert c.post("/v1/skills", json={"id": skill}).status_code == 201
    r = c.post("/v1/teams", json={"id": state.TEAM})
    assert r.status_code == 201, r.text
    start, end = state.SHIFT
    day = state.NOW.date().isoformat()
    for agent, (skills, capacity, caps) in state.AGENTS.items():
        body = {
            "id": agent,
            "team": state.TEAM,
            "skills": skills,
            "capacity": capacity,
            "channel_capacity": caps,
        }
        r = c.post("/v1/agents", json=body)
        assert r.status_code == 201, r.text
        shift = {
            "agent": agent,
            "start": f"{day}T{start:%H:%M}:00Z",
            "end": f"{day}T{end:%H:%M}:00Z",
        }
        assert c.post("/v1/shifts", json=shift).status_code == 201
    for agent, specs in state.held_specs().items():
        for spec in specs:
            body = {
                "team": spec.team,
                "channel": spec.channel,
                "required_skills": dict(spec.required_skills),
                "priority": "normal",
                "status": "open",
                "effort_minutes": spec.effort_minutes,
                "owner_agent": agent,
                "created_at": spec.created_at.isoformat(),
            }
            r = c.put(f"/v1/tickets/{spec.id}", json=ticket_body(body))
            assert r.status_code == 201, r.text
    new = state.NEW
    body = {
        "team": new.team,
        "channel": new.channel,
        "required_skills": dict(new.required_skills),
        "priority": "high",
        "effort_minutes": new.effort_minutes,
        "created_at": new.created_at.isoformat(),
        "first_response_due": (
            new.created_at + timedelta(minutes=state.FIRST_RESPONSE_MINUTES)
        ).isoformat(),
        "resolution_due": (
            new.created_at + timedelta(minutes=state.RESOLUTION_MINUTES)
        ).isoformat(),
    }
    r = c.put(f"/v1/tickets/{new.id}", json=ticket_body(body))
    assert r.status_code == 201, r.text


def test_the_simulated_router_picks_the_agent_the_service_picks(a: As, clock: FakeClock) -> None:
    clock.now = state.NOW
    load(a)
    r = a.post(f"/v1/tickets/{state.NEW.id}/assign", json={})
    assert r.status_code == 200, r.text
    served = r.json()
    simulated = route_one(
        state.world(), at=state.NOW, held=state.held_specs(), ticket=state.NEW, top_k=3
    )
    assert served["agent"] is not None
    assert simulated.agent_id == served["agent"]
    # Not a tie broken the same way by luck: the runners-up and their order agree too.
    assert [x.agent_id for x in simulated.alternatives] == [
        x["agent"] for x in served["alternatives"]
    ]
    assert abs(simulated.score - served["score"]) < 1e-6
