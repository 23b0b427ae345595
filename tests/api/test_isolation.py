"""Tenant isolation: tenant A's key never reads, lists, changes or infers tenant B's data.

Every resource gets the same treatment: B creates an object; A's GET, PATCH and DELETE of it
are 404 (the same answer as for an id nobody uses, so existence cannot be inferred); A's list
does not show it; A can create an object with the same id (ids are per tenant, so a conflict
cannot leak either); references from A to B's objects are "unknown"; B's object is unchanged.

Bookings (calls) are checked on their own terms: A cannot read, list, filter for, cancel, bind or
rebalance B's calls; B's capabilities and tickets are exactly as unknown to A's slot queries and
bookings as ids nobody uses; and B's calls and agent changes never show in the slots A is
offered (each tenant has its own engine state and cache entry).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from tests.api.bookings.test_bookings import BERLIN_10, TICKET, book, call_events, slots
from tests.api.bookings.test_bookings import org as booking_org
from tests.api.conftest import As, TenantCtx, assert_problem, ticket_body

MON = "2026-03-02"


def org(c: As) -> None:
    assert c.post("/v1/skills", json={"id": "billing"}).status_code == 201
    assert c.post("/v1/teams", json={"id": "support"}).status_code == 201
    r = c.post("/v1/agents", json={"id": "ana", "team": "support", "skills": {"billing": 3}})
    assert r.status_code == 201


@dataclass(frozen=True)
class Resource:
    path: str
    body: dict[str, Any]
    patch: dict[str, Any]
    ident: str


RESOURCES = [
    Resource("skills", {"id": "secret-skill", "name": "B"}, {"name": "pwned"}, "secret-skill"),
    Resource("teams", {"id": "secret-team", "name": "B"}, {"name": "pwned"}, "secret-team"),
    Resource(
        "agents",
        {"id": "secret-agent", "team": "support", "skills": {"billing": 2}},
        {"capacity": 9},
        "secret-agent",
    ),
    Resource(
        "shifts",
        {"id": "s1", "agent": "ana", "start": f"{MON}T08:00:00Z", "end": f"{MON}T16:00:00Z"},
        {"end": f"{MON}T18:00:00Z"},
        "s1",
    ),
    Resource(
        "busy",
        {"id": "b1", "agent": "ana", "start": f"{MON}T10:00:00Z", "end": f"{MON}T11:00:00Z"},
        {"end": f"{MON}T12:00:00Z"},
        "b1",
    ),
    Resource(
        "capabilities",
        {"id": "secret-cap", "requirements": {"billing": 2}},
        {"call_minutes": 60},
        "secret-cap",
    ),
]


@pytest.mark.parametrize("res", RESOURCES, ids=[r.path for r in RESOURCES])
def test_other_tenants_objects_are_invisible(a: As, b: As, res: Resource) -> None:
    org(a)
    org(b)
    r = b.post(f"/v1/{res.path}", json=res.body)
    assert r.status_code == 201, r.text
    original = r.json()
    url = f"/v1/{res.path}/{res.ident}"
    unused = f"/v1/{res.path}/never-used-anywhere"

    missing = assert_problem(a.get(unused), 404)
    hidden = assert_problem(a.get(url), 404)
    # Same answer as for an id nobody uses (only the id differs in the text).
    assert hidden["title"] == missing["title"] and hidden["type"] == missing["type"]
    assert_problem(a.patch(url, json=res.patch), 404)
    assert_problem(a.delete(url), 404)
    listed = a.get(f"/v1/{res.path}", params={"limit": 500}).json()["items"]
    assert res.ident not in {item["id"] for item in listed}

    # The same id is free in A: a conflict would have told A that B uses it.
    assert a.post(f"/v1/{res.path}", json=res.body).status_code == 201
    assert a.delete(url).status_code == 204
    # B's object is untouched by all of it.
    assert b.get(url).json() == original


def test_references_across_tenants_are_unknown(a: As, b: As) -> None:
    org(b)
    assert b.post("/v1/teams", json={"id": "b-team"}).status_code == 201
    assert b.post("/v1/skills", json={"id": "b-skill"}).status_code == 201
    assert a.post("/v1/teams", json={"id": "support"}).status_code == 201
    r = a.post("/v1/agents", json={"id": "x", "team": "b-team", "skills": {"b-skill": 2}})
    assert_problem(r, 422, "team", "skills.b-skill")
    shift = {"agent": "ana", "start": f"{MON}T08:00:00Z", "end": f"{MON}T09:00:00Z"}
    assert_problem(a.post("/v1/shifts", json=shift), 422, "agent")
    assert_problem(a.post("/v1/busy", json=shift), 422, "agent")
    cap = {"id": "c", "requirements": {"b-skill": 1}}
    assert_problem(a.post("/v1/capabilities", json=cap), 422, "requirements.b-skill")
    # Filtering by an agent id that exists in B shows A nothing of B.
    assert b.post("/v1/shifts", json=shift | {"id": "bs"}).status_code == 201
    assert a.get("/v1/shifts", params={"agent": "ana"}).json()["items"] == []


def test_api_keys_are_per_tenant(tenant_a: TenantCtx, tenant_b: TenantCtx) -> None:
    b_keys = tenant_b.admin.get("/v1/api-keys").json()
    assert len(b_keys) == 1
    b_key_id = b_keys[0]["id"]
    assert_problem(tenant_a.admin.delete(f"/v1/api-keys/{b_key_id}"), 404)
    assert b_key_id not in {k["id"] for k in tenant_a.admin.get("/v1/api-keys").json()}
    assert tenant_b.admin.get("/v1/teams").status_code == 200  # still valid


def _each_list(c: As) -> dict[str, Callable[[], list[Any]]]:
    return {p: (lambda p=p: c.get(f"/v1/{p}").json()["items"]) for p in [r.path for r in RESOURCES]}


def test_lists_of_a_fresh_tenant_are_empty(a: As, b: As) -> None:
    org(b)
    for res in RESOURCES:
        assert b.post(f"/v1/{res.path}", json=res.body).status_code == 201
    for path, read in _each_list(a).items():
        assert read() == [], path


# --------------------------------------------------------------------------- bookings


def _same_problem(got: Any, unknown: Any, status: int, *fields: str) -> None:
    """``got`` (about another tenant's object) says exactly what ``unknown`` (about an id
    nobody uses) says, apart from the id itself."""
    a, b = assert_problem(got, status, *fields), assert_problem(unknown, status, *fields)
    assert (a["type"], a["title"]) == (b["type"], b["title"])
    assert [e["field"] for e in a.get("errors", [])] == [e["field"] for e in b.get("errors", [])]


def test_other_tenants_bookings_are_invisible_and_untouchable(a: As, b: As) -> None:
    booking_org(a)
    booking_org(b)
    theirs = book(b, ticket="ZD-1")
    assert theirs.status_code == 201, theirs.text
    call = theirs.json()["id"]
    original = b.get(f"/v1/bookings/{call}").json()

    _same_problem(a.get(f"/v1/bookings/{call}"), a.get("/v1/bookings/call_nobody"), 404)
    _same_problem(
        a.post(f"/v1/bookings/{call}/cancel"), a.post("/v1/bookings/call_nobody/cancel"), 404
    )
    assert a.get("/v1/bookings").json()["items"] == []
    for query in ({"ticket_id": "ZD-1"}, {"capability_id": "net"}, {"status": "booked"}):
        assert a.get("/v1/bookings", params=query).json()["items"] == [], query
    # Binding and rebalancing in A see none of B's calls, and leave them alone.
    bound = a.post("/v1/bookings/bind", json={"lead_minutes": 24 * 60}).json()
    assert bound["bound"] == [] and bound["due"] == 0
    assert a.post("/v1/bookings/rebalance").json()["checked"] == 0
    assert b.get(f"/v1/bookings/{call}").json() == original
    assert [e["data"]["action"] for e in call_events(b, "ZD-1")] == ["booked"]
    assert call_events(a, "ZD-1") == []


def test_other_tenants_capabilities_and_tickets_are_unknown_to_bookings(a: As, b: As) -> None:
    booking_org(b)
    r = b.post("/v1/capabilities", json={"id": "b-only", "requirements": {"networking": 1}})
    assert r.status_code == 201, r.text
    booking_org(a)  # the same ids: "net" and ZD-1..ZD-4 exist in both
    # Slots of B's capability: the same 404 as a capability nobody has.
    _same_problem(
        a.get("/v1/capabilities/b-only/slots"), a.get("/v1/capabilities/nobody/slots"), 404
    )
    # Booking against B's capability or for B's ticket: the same 422 as for unknown ones.
    _same_problem(
        book(a, capability_id="b-only"), book(a, capability_id="nobody"), 422, "capability_id"
    )
    assert b.put("/v1/tickets/B-ONLY", json=ticket_body(TICKET)).status_code == 201
    _same_problem(book(a, ticket="B-ONLY"), book(a, ticket="NOBODY-1"), 422, "ticket_id")
    assert a.get("/v1/bookings").json()["items"] == []
    assert b.get("/v1/bookings").json()["items"] == []


def test_other_tenants_calls_cannot_be_inferred_from_slots(a: As, b: As) -> None:
    """Two tenants with the same organisation and ids: B filling its pool (and changing its
    agents) changes nothing in what A is offered, or can book."""
    booking_org(a)
    booking_org(b)
    offered = slots(a).json()
    assert offered == slots(b).json()
    for ticket in ("ZD-1", "ZD-2"):
        assert book(b, ticket=ticket).status_code == 201
    assert BERLIN_10 not in [s["start"] for s in slots(b).json()["slots"]]  # B is full at 10:00
    busy = {"agent": "ana", "start": f"{MON}T12:00:00Z", "end": f"{MON}T13:00:00Z"}
    assert b.post("/v1/busy", json=busy).status_code == 201
    assert b.post("/v1/bookings/rebalance").status_code == 200
    assert slots(a).json() == offered
    for ticket in ("ZD-1", "ZD-2"):
        assert book(a, ticket=ticket).status_code == 201  # both of A's agents are A's alone
