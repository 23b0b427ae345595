"""Skills and teams through HTTP: CRUD, validation, conflicts and pagination."""

from __future__ import annotations

from tests.api.conftest import T0, As, assert_problem, ticket_body


def test_skill_crud(a: As) -> None:
    r = a.post("/v1/skills", json={"id": "lang:de", "name": "German", "kind": "language"})
    assert r.status_code == 201, r.text
    assert r.json()["kind"] == "language"
    assert r.json()["created_at"] == T0.isoformat().replace("+00:00", "Z")  # the clock, in UTC
    assert a.get("/v1/skills/lang:de").json()["name"] == "German"
    r = a.patch("/v1/skills/lang:de", json={"name": "Deutsch"})
    assert r.status_code == 200 and r.json()["name"] == "Deutsch" and r.json()["kind"] == "language"
    assert a.delete("/v1/skills/lang:de").status_code == 204
    assert_problem(a.get("/v1/skills/lang:de"), 404)


def test_duplicate_skill_is_conflict(a: As) -> None:
    assert a.post("/v1/skills", json={"id": "billing"}).status_code == 201
    assert_problem(a.post("/v1/skills", json={"id": "billing"}), 409)


def test_bad_skill_input_names_fields(a: As) -> None:
    assert_problem(a.post("/v1/skills", json={"id": "", "kind": "wizardry"}), 422, "id", "kind")
    assert_problem(a.post("/v1/skills", json={"id": "x", "colour": "red"}), 422, "colour")
    assert_problem(a.patch("/v1/skills/x", json={"name": "y"}), 404)
    a.post("/v1/skills", json={"id": "x"})
    assert_problem(a.patch("/v1/skills/x", json={"kind": None}), 422, "kind")


def test_pagination_is_stable_and_complete(a: As) -> None:
    ids = [f"s{i:03d}" for i in range(23)]
    for i in reversed(ids):
        assert a.post("/v1/skills", json={"id": i}).status_code == 201
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params = {"limit": 5} | ({"cursor": cursor} if cursor else {})
        page = a.get("/v1/skills", params=params).json()
        seen += [s["id"] for s in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == ids and pages == 5
    assert_problem(a.get("/v1/skills", params={"cursor": "garbage!"}), 422, "query.cursor")
    assert_problem(a.get("/v1/skills", params={"limit": 0}), 422, "query.limit")
    assert_problem(a.get("/v1/skills", params={"limit": 100000}), 422, "query.limit")


def test_team_delete_refused_while_used(a: As) -> None:
    assert a.post("/v1/teams", json={"id": "t1", "name": "Tier 1"}).status_code == 201
    assert a.post("/v1/teams", json={"id": "t2"}).status_code == 201
    assert a.get("/v1/teams").json()["items"][0]["name"] == "Tier 1"
    assert a.post("/v1/agents", json={"id": "ana", "team": "t1"}).status_code == 201
    assert a.put("/v1/tickets/T-1", json=ticket_body({"team": "t1"})).status_code == 201
    body = assert_problem(a.delete("/v1/teams/t1"), 409)
    assert "agents" in body["detail"] and "tickets" in body["detail"]
    assert a.patch("/v1/agents/ana", json={"team": "t2"}).status_code == 200
    body = assert_problem(a.delete("/v1/teams/t1"), 409)  # the ticket still names it
    assert "agents" not in body["detail"] and "tickets" in body["detail"]
    assert a.put("/v1/tickets/T-1", json=ticket_body({"team": "t2"})).status_code == 200
    assert a.delete("/v1/teams/t1").status_code == 204
    assert_problem(a.get("/v1/teams/t1"), 404)


def test_hostile_strings_are_4xx_not_5xx(a: As) -> None:
    assert_problem(a.post("/v1/teams", json={"id": "t", "name": "nul\u0000byte"}), 422, "name")
    assert_problem(a.get("/v1/teams/nul%00byte"), 422, "path.team_id")
    assert_problem(a.get("/v1/teams/" + "x" * 200), 422, "path.team_id")
    a.post("/v1/teams", json={"id": "t"})
    r = a.put("/v1/tickets/T-1", json=ticket_body({"team": "t", "requester": "x\u0000"}))
    assert_problem(r, 422, "requester")
    assert a.put("/v1/tickets/T-1", json=ticket_body({"team": "t"})).status_code == 201
    huge = "eyJrIjogOTk5OTk5OTk5OTk5OTk5OTk5OTk5OTk5OTl9"  # {"k": 99999999999999999999999}
    assert_problem(a.get("/v1/tickets/T-1/history", params={"cursor": huge}), 422)
    assert_problem(
        a.post("/v1/teams", content=b"{", headers={"Content-Type": "application/json"}), 422
    )
