"""PUT /v1/tickets/{id} is a full replacement, PATCH a JSON Merge Patch (RFC 7396).

PUT: the required fields (team, required_skills, priority, status, effort_minutes and
owner_agent, which may be null) missing are a 422 naming each; the optional ones omitted are
cleared; what GET answers goes back unchanged (read-only fields accepted when they are the
ticket's current values, else a 409 naming them). PATCH: the patch merged into the ticket as GET
shows it, validated whole, written as a PUT of it would be.
"""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from api.common import merge_patch
from tests.api.conftest import As, FakeClock, assert_problem
from tests.api.tickets.test_tickets import kinds, org, ticket

MERGE_PATCH = "application/merge-patch+json"
REQUIRED = ("team", "required_skills", "priority", "status", "effort_minutes", "owner_agent")
READ_ONLY = ("id", "owner", "received_at", "updated_at")


def _state(c: As, ticket_id: str) -> dict[str, Any]:
    r = c.get(f"/v1/tickets/{ticket_id}")
    assert r.status_code == 200, r.text
    return r.json()


def _patch(c: As, ticket_id: str, body: Any, media: str = MERGE_PATCH) -> Any:
    return c.patch(f"/v1/tickets/{ticket_id}", json=body, headers={"content-type": media})


def test_put_without_required_fields_is_a_422_naming_each(a: As) -> None:
    org(a)
    body = assert_problem(a.put("/v1/tickets/ZD-1", json={}), 422, *REQUIRED)
    assert {e["field"] for e in body["errors"]} == set(REQUIRED)
    # A partial PUT of an existing ticket is refused too, and changes nothing.
    assert a.put("/v1/tickets/ZD-1", json=ticket(owner_agent="ana")).status_code == 201
    before = _state(a, "ZD-1")
    r = a.put("/v1/tickets/ZD-1", json={"team": "support", "priority": "low"})
    assert_problem(r, 422, "required_skills", "status", "effort_minutes", "owner_agent")
    assert _state(a, "ZD-1") == before


def test_put_clears_the_optional_fields_it_omits_and_keeps_created_at(
    a: As, clock: FakeClock
) -> None:
    org(a)
    assert a.put("/v1/tickets/ZD-1", json=ticket(previous_agent="ben")).status_code == 201
    created = _state(a, "ZD-1")
    clock.advance(minutes=5)
    bare = {name: created[name] for name in REQUIRED}
    r = a.put("/v1/tickets/ZD-1", json=bare)
    assert r.status_code == 200, r.text
    after = r.json()
    for name in ("first_response_due", "resolution_due", "previous_agent", "requester"):
        assert after[name] is None, name
    assert after["created_at"] == created["created_at"]
    assert after["updated_at"] != created["updated_at"]


def test_get_then_put_round_trips_without_a_change(a: As, clock: FakeClock) -> None:
    org(a)
    assert a.put("/v1/tickets/ZD-1", json=ticket(owner_agent="ana")).status_code == 201
    got = _state(a, "ZD-1")
    history = kinds(a, "ZD-1")
    clock.advance(minutes=1)
    r = a.put("/v1/tickets/ZD-1", json=got)
    assert r.status_code == 200, r.text
    assert r.json() == got
    assert kinds(a, "ZD-1") == history
    # The same representation, changed where the client means it: accepted, and written.
    r = a.put("/v1/tickets/ZD-1", json=got | {"priority": "urgent"})
    assert r.status_code == 200, r.text
    assert r.json()["priority"] == "urgent"


def test_a_stale_representation_is_a_409_naming_what_changed(a: As, clock: FakeClock) -> None:
    org(a)
    assert a.put("/v1/tickets/ZD-1", json=ticket()).status_code == 201
    stale = _state(a, "ZD-1")
    clock.advance(minutes=1)
    assert _patch(a, "ZD-1", {"owner_agent": "ben"}).status_code == 200
    now = _state(a, "ZD-1")
    r = a.put("/v1/tickets/ZD-1", json=stale | {"priority": "low"})
    body = assert_problem(r, 409, "updated_at", "owner")
    assert body["type"] == "/problems/conflict"
    assert _state(a, "ZD-1") == now  # nothing written
    # A merge patch that carries updated_at uses it as the same precondition.
    r = _patch(a, "ZD-1", {"priority": "low", "updated_at": stale["updated_at"]})
    assert_problem(r, 409, "updated_at")
    r = _patch(a, "ZD-1", {"priority": "low", "updated_at": now["updated_at"]})
    assert r.status_code == 200 and r.json()["priority"] == "low", r.text


def test_read_only_fields_that_cannot_be_right_are_a_422(a: As) -> None:
    org(a)
    r = a.put("/v1/tickets/ZD-1", json=ticket(id="ZD-2"))
    assert_problem(r, 422, "id")
    r = a.put("/v1/tickets/ZD-1", json=ticket(updated_at="2026-03-02T08:00:00Z"))
    assert_problem(r, 422, "updated_at")
    assert a.get("/v1/tickets/ZD-1").status_code == 404
    assert a.put("/v1/tickets/ZD-1", json=ticket(id="ZD-1")).status_code == 201


def test_merge_patch_changes_only_what_it_names(a: As, clock: FakeClock) -> None:
    org(a)
    assert a.put("/v1/tickets/ZD-1", json=ticket(owner_agent="ana")).status_code == 201
    before = _state(a, "ZD-1")
    clock.advance(minutes=1)
    r = _patch(a, "ZD-1", {"priority": "urgent", "reason": "the CEO asked"})
    assert r.status_code == 200, r.text
    after = r.json()
    changed = {k for k in after if after[k] != before[k]}
    assert changed == {"priority", "updated_at"}
    [*_, last] = a.get("/v1/tickets/ZD-1/history").json()["items"]
    assert last["kind"] == "updated" and last["data"] == {"changed": ["priority"]}
    assert last["reason"] == "the CEO asked"
    # application/json is taken as the same merge patch.
    r = _patch(a, "ZD-1", {"effort_minutes": 90}, media="application/json")
    assert r.status_code == 200 and r.json()["effort_minutes"] == 90, r.text


def test_merge_patch_null_removes_members(a: As) -> None:
    org(a)
    body = ticket(owner_agent="ana", required_skills={"billing": 2, "lang:de": 3})
    assert a.put("/v1/tickets/ZD-1", json=body).status_code == 201
    r = _patch(
        a,
        "ZD-1",
        {"owner_agent": None, "requester": None, "required_skills": {"lang:de": None}},
    )
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["owner_agent"] is None and out["owner"] == {"kind": "team", "id": "support"}
    assert out["requester"] is None
    assert out["required_skills"] == {"billing": 2}
    assert kinds(a, "ZD-1")[-2:] == ["reassigned", "updated"]  # back to the team's queue


def test_merge_patch_validates_the_result_and_writes_nothing_when_refused(a: As) -> None:
    org(a)
    assert a.put("/v1/tickets/ZD-1", json=ticket()).status_code == 201
    before = _state(a, "ZD-1")
    assert_problem(_patch(a, "ZD-1", {"team": None, "priority": "low"}), 422, "team")
    assert_problem(_patch(a, "ZD-1", {"status": None}), 422, "status")
    assert_problem(_patch(a, "ZD-1", {"team": "nope"}), 422, "team")
    assert_problem(_patch(a, "ZD-1", {"required_skills": {"cooking": 2}}), 422)
    late = {"first_response_due": "2026-03-02T18:00:00Z"}  # after resolution_due
    assert_problem(_patch(a, "ZD-1", late), 422, "resolution_due")
    assert_problem(_patch(a, "ZD-1", ["not", "an", "object"]), 422)
    assert _state(a, "ZD-1") == before


def test_merge_patch_of_an_unknown_ticket_is_a_404(a: As, b: As) -> None:
    org(a)
    assert_problem(_patch(a, "nope", {"priority": "low"}), 404)
    assert a.put("/v1/tickets/ZD-1", json=ticket()).status_code == 201
    assert_problem(_patch(b, "ZD-1", {"priority": "low"}), 404)  # another tenant's


def test_put_refuses_the_merge_patch_media_type(a: As) -> None:
    org(a)
    r = a.put("/v1/tickets/ZD-1", json=ticket(), headers={"content-type": MERGE_PATCH})
    body = assert_problem(r, 415, "header.content-type")
    assert "application/json" in body["detail"]


def test_the_document_offers_patch_as_a_merge_patch(app: Any) -> None:
    doc = app.openapi()
    op = doc["paths"]["/v1/tickets/{ticket_id}"]["patch"]
    assert set(op["requestBody"]["content"]) == {MERGE_PATCH, "application/json"}
    patch_schema = doc["components"]["schemas"]["TicketMergePatch"]
    assert "required" not in patch_schema
    assert set(patch_schema["properties"]) >= set(REQUIRED)
    put_schema = doc["components"]["schemas"]["TicketIn"]
    assert set(put_schema["required"]) == set(REQUIRED)
    for name in READ_ONLY:
        assert put_schema["properties"][name]["readOnly"] is True


_CHANGES = st.fixed_dictionaries(
    {},
    optional={
        "priority": st.sampled_from(["low", "normal", "high", "urgent"]),
        "status": st.sampled_from(["new", "open", "pending", "solved", "closed"]),
        "effort_minutes": st.integers(1, 600),
        "owner_agent": st.sampled_from(["ana", "ben", None]),
        "requester": st.one_of(st.none(), st.emails()),
        "previous_agent": st.sampled_from(["ana", None]),
        "required_skills": st.dictionaries(
            st.sampled_from(["billing", "lang:de"]), st.one_of(st.none(), st.integers(1, 5))
        ),
        "resolution_due": st.sampled_from([None, "2026-03-02T17:00:00Z", "2026-03-03T10:00:00Z"]),
    },
)


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(changes=_CHANGES)
def test_a_patch_is_the_merge_of_the_representation_and_the_patch(
    a: As, changes: dict[str, Any]
) -> None:
    """For every patch of valid values: the ticket afterwards is RFC 7396's merge of what GET
    showed and the patch (read-only and derived fields aside)."""
    if a.get("/v1/skills/billing").status_code == 404:
        org(a)
    assert a.put("/v1/tickets/P-1", json=ticket(previous_agent="ben")).status_code in (200, 201)
    before = _state(a, "P-1")
    r = _patch(a, "P-1", changes)
    assert r.status_code == 200, r.text
    after = r.json()
    base = {k: v for k, v in before.items() if k not in (*READ_ONLY,)}
    expected = merge_patch.apply(base, changes)
    expected.setdefault("owner_agent", None)
    for name in ("first_response_due", "resolution_due", "requester", "previous_agent"):
        expected.setdefault(name, None)
    for name, value in expected.items():
        assert after[name] == value, (name, changes, after)
