"""Agents, shifts, busy intervals and capabilities through HTTP: CRUD, validation and import."""

from __future__ import annotations

import pytest

from tests.api.conftest import As, assert_problem

MON = "2026-03-02"


def seed_org(c: As) -> None:
    for skill in ("billing", "lang:de", "tier:2"):
        assert c.post("/v1/skills", json={"id": skill}).status_code == 201
    assert c.post("/v1/teams", json={"id": "support"}).status_code == 201


def make_agent(c: As, ident: str = "ana", **extra: object) -> dict[str, object]:
    body = {"id": ident, "team": "support", "skills": {"billing": 4, "lang:de": 5}} | extra
    r = c.post("/v1/agents", json=body)
    assert r.status_code == 201, r.text
    return r.json()


def test_agent_crud_and_skill_replacement(a: As) -> None:
    seed_org(a)
    out = make_agent(a, capacity=3, timezone="Europe/Berlin")
    assert out["skills"] == {"billing": 4, "lang:de": 5} and out["status"] == "available"
    r = a.patch("/v1/agents/ana", json={"skills": {"billing": 2, "tier:2": 1}, "status": "away"})
    assert r.status_code == 200, r.text
    assert r.json()["skills"] == {"billing": 2, "tier:2": 1}
    assert r.json()["status"] == "away" and r.json()["timezone"] == "Europe/Berlin"
    assert a.get("/v1/agents", params={"status": "away"}).json()["items"][0]["id"] == "ana"
    assert a.get("/v1/agents", params={"status": "available"}).json()["items"] == []
    # A skill in use cannot be deleted; once the agent is gone, it can.
    assert_problem(a.delete("/v1/skills/billing"), 409)
    assert a.delete("/v1/agents/ana").status_code == 204
    assert a.delete("/v1/skills/billing").status_code == 204


def test_agent_validation_names_each_field(a: As) -> None:
    seed_org(a)
    r = a.post(
        "/v1/agents",
        json={"id": "x", "team": "support", "timezone": "Mars/Olympus", "skills": {"billing": 9}},
    )
    assert_problem(r, 422, "timezone", "skills.billing")
    r = a.post("/v1/agents", json={"id": "x", "team": "nope", "skills": {"cooking": 3}})
    body = assert_problem(r, 422, "team", "skills.cooking")
    assert any("unknown team" in e["reason"] for e in body["errors"])
    make_agent(a, "x")
    assert_problem(a.patch("/v1/agents/x", json={"team": "nope"}), 422, "team")
    assert_problem(a.patch("/v1/agents/x", json={"timezone": "local"}), 422, "timezone")
    assert_problem(a.patch("/v1/agents/x", json={"capacity": -1}), 422, "capacity")


def test_shift_and_busy_validation(a: As) -> None:
    seed_org(a)
    make_agent(a)
    ok = {"agent": "ana", "start": f"{MON}T08:00:00+01:00", "end": f"{MON}T16:00:00+01:00"}
    r = a.post("/v1/shifts", json=ok)
    assert r.status_code == 201, r.text
    shift = r.json()
    assert shift["start"].startswith(f"{MON}T07:00:00") and shift["id"].startswith("shf_")
    backwards = ok | {"end": f"{MON}T07:00:00+01:00"}
    assert_problem(a.post("/v1/shifts", json=backwards), 422, "end")
    naive = ok | {"start": f"{MON}T08:00:00"}
    body = assert_problem(a.post("/v1/shifts", json=naive), 422, "start")
    assert "timezone" in body["errors"][0]["reason"]
    assert_problem(a.post("/v1/shifts", json=ok | {"agent": "ghost"}), 422, "agent")
    # PATCH checks the merged interval.
    r = a.patch(f"/v1/shifts/{shift['id']}", json={"end": f"{MON}T06:00:00Z"})
    assert_problem(r, 422, "end")
    r = a.patch(f"/v1/shifts/{shift['id']}", json={"end": f"{MON}T17:00:00Z"})
    assert r.status_code == 200 and r.json()["end"].startswith(f"{MON}T17:00:00")

    busy = ok | {"id": "mtg-1", "source": "google"}
    r = a.post("/v1/busy", json=busy)
    assert r.status_code == 201 and r.json()["source"] == "google"
    assert_problem(a.post("/v1/busy", json=busy), 409)
    window = {"start": f"{MON}T12:00:00Z", "end": f"{MON}T13:00:00Z"}
    assert [b["id"] for b in a.get("/v1/busy", params=window).json()["items"]] == ["mtg-1"]
    later = {"start": f"{MON}T20:00:00Z"}
    assert a.get("/v1/busy", params=later).json()["items"] == []
    assert_problem(a.get("/v1/busy", params={"start": f"{MON}T20:00:00"}), 422, "query.start")
    # Deleting the agent takes their shifts and busy time with them.
    assert a.delete("/v1/agents/ana").status_code == 204
    assert a.get("/v1/shifts").json()["items"] == []
    assert a.get("/v1/busy").json()["items"] == []


def test_capability_crud_and_validation(a: As) -> None:
    seed_org(a)
    r = a.post("/v1/capabilities", json={"id": "de-billing", "requirements": {"billing": 3}})
    assert r.status_code == 201, r.text
    assert r.json()["call_minutes"] == 30 and r.json()["reserve_share"] == pytest.approx(0.2)
    r = a.patch(
        "/v1/capabilities/de-billing",
        json={"requirements": {"billing": 4, "lang:de": 4}, "buffer_minutes": 10},
    )
    assert r.status_code == 200 and r.json()["requirements"] == {"billing": 4, "lang:de": 4}
    bad = {"id": "c2", "requirements": {}, "reserve_share": 1.0, "granularity_minutes": 1}
    assert_problem(
        a.post("/v1/capabilities", json=bad),
        422,
        "requirements",
        "reserve_share",
        "granularity_minutes",
    )
    r = a.post("/v1/capabilities", json={"id": "c3", "requirements": {"knitting": 2}})
    assert_problem(r, 422, "requirements.knitting")
    assert a.delete("/v1/capabilities/de-billing").status_code == 204


def test_json_import_is_all_or_nothing(a: As) -> None:
    seed_org(a)
    rows = [
        {"id": "a1", "team": "support", "skills": {"billing": 3}},
        {"id": "a2", "team": "ghost-team"},
        {"id": "a3", "team": "support", "timezone": "Nowhere/Land"},
        {"id": "a4", "team": "support"},
    ]
    body = assert_problem(a.post("/v1/agents/import", json=rows), 422)
    got = {(e["row"], e["field"]) for e in body["errors"]}
    assert got == {(1, "team"), (2, "timezone")}
    assert a.get("/v1/agents").json()["items"] == []  # nothing written
    good = [rows[0], rows[3]]
    r = a.post("/v1/agents/import", json=good)
    assert r.status_code == 201 and r.json() == {"imported": 2, "ids": ["a1", "a4"]}
    # Importing again conflicts on every row and again writes nothing.
    body = assert_problem(a.post("/v1/agents/import", json=good), 422)
    assert {e["row"] for e in body["errors"]} == {0, 1}


def test_csv_import_with_levels_column_and_upload(a: As) -> None:
    seed_org(a)
    csv_text = (
        "id,name,team,skills,capacity,timezone\n"
        "b1,Bea,support,billing=4;lang:de=2,3,Europe/Vienna\n"
        "b2,Ben,support,,,\n"
    )
    r = a.post("/v1/agents/import", content=csv_text, headers={"Content-Type": "text/csv"})
    assert r.status_code == 201, r.text
    b1 = a.get("/v1/agents/b1").json()
    assert b1["skills"] == {"billing": 4, "lang:de": 2} and b1["capacity"] == 3
    assert a.get("/v1/agents/b2").json()["capacity"] == 1  # empty cells take defaults
    shifts_csv = (
        f"agent,start,end\nb1,{MON}T08:00:00Z,{MON}T16:00:00Z\nb2,{MON}T16:00:00Z,{MON}T08:00:00Z\n"
    )
    r = a.post("/v1/shifts/import", files={"file": ("shifts.csv", shifts_csv, "text/csv")})
    body = assert_problem(r, 422)
    # Spreadsheet rows: the header is row 1, the bad second data row is row 3.
    assert [(e["row"], e["field"]) for e in body["errors"]] == [(3, "end")]
    assert a.get("/v1/shifts").json()["items"] == []
    bad_cell = "id,team,skills\nb3,support,billing:4\n"
    r = a.post("/v1/agents/import", content=bad_cell, headers={"Content-Type": "text/csv"})
    assert_problem(r, 422, "skills")
    r = a.post(
        "/v1/agents/import", content="not json", headers={"Content-Type": "application/json"}
    )
    assert_problem(r, 422, "body")


def test_scopes_are_enforced(tenant_a: object, a: As) -> None:
    from tests.api.conftest import TenantCtx

    assert isinstance(tenant_a, TenantCtx)
    helpdesk = tenant_a.key("helpdesk")
    planner = tenant_a.key("planner")
    assert_problem(helpdesk.post("/v1/teams", json={"id": "t"}), 403)
    # A planner reads the organisation but never changes it (issue 13): admin keys do.
    assert_problem(planner.post("/v1/teams", json={"id": "t"}), 403)
    assert a.post("/v1/teams", json={"id": "t"}).status_code == 201
    assert planner.get("/v1/teams/t").status_code == 200
    assert helpdesk.get("/v1/teams/t").status_code == 200  # everyone reads the organisation
    assert_problem(planner.get("/v1/api-keys"), 403)
    no_key = a.client.get("/v1/teams")
    assert_problem(no_key, 401)
    assert no_key.headers["www-authenticate"].startswith("Bearer")
    assert_problem(a.client.get("/v1/teams", headers={"Authorization": "Bearer sb_x_y"}), 401)
