"""``updated_since`` on list operations: incremental sync, with pagination stable under it.

Tickets and every organisation resource (the crud factory) take it; with it, a list holds only
rows changed at or after the moment, ordered by (updated_at, id), keyset-paged on both, so a
page never skips a row and a row changed while a client pages is seen again at the end.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from tests.api.conftest import T0, As, FakeClock, assert_problem, ticket_body


def _all(c: As, url: str, **params: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        query = dict(params, **({"cursor": cursor} if cursor else {}))
        r = c.get(url, params=query)
        assert r.status_code == 200, r.text
        page = r.json()
        items += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            return items


def _tickets(a: As, *ids: str) -> None:
    for ident in ids:
        r = a.put(f"/v1/tickets/{ident}", json=ticket_body({"team": "support"}))
        assert r.status_code in (200, 201), r.text


def test_tickets_changed_since_in_change_order(a: As, clock: FakeClock) -> None:
    assert a.post("/v1/teams", json={"id": "support"}).status_code == 201
    _tickets(a, "T-1", "T-2", "T-3", "T-4", "T-5")
    clock.advance(minutes=10)
    since = clock.now.isoformat()
    r = a.patch("/v1/tickets/T-4", json={"priority": "high"})
    assert r.status_code == 200, r.text
    clock.advance(minutes=1)
    assert a.patch("/v1/tickets/T-2", json={"priority": "low"}).status_code == 200
    got = _all(a, "/v1/tickets", updated_since=since, limit=1)
    assert [t["id"] for t in got] == ["T-4", "T-2"]
    # Inclusive: the last item's updated_at as the next "since" repeats it, never misses one.
    again = _all(a, "/v1/tickets", updated_since=got[-1]["updated_at"])
    assert [t["id"] for t in again] == ["T-2"]
    # Other filters still apply, and a time in another offset means the same moment.
    plus_one = (clock.now - timedelta(minutes=11)).astimezone().isoformat()
    low = _all(a, "/v1/tickets", updated_since=plus_one, priority="low")
    assert [t["id"] for t in low] == ["T-2"]
    assert _all(a, "/v1/tickets", updated_since=(T0 + timedelta(days=1)).isoformat()) == []


def test_a_row_changed_while_paging_is_seen_again_and_none_is_skipped(
    a: As, clock: FakeClock
) -> None:
    assert a.post("/v1/teams", json={"id": "support"}).status_code == 201
    since = clock.now.isoformat()
    _tickets(a, "T-1", "T-2", "T-3", "T-4")
    first = a.get("/v1/tickets", params={"updated_since": since, "limit": 2}).json()
    assert [t["id"] for t in first["items"]] == ["T-1", "T-2"]
    clock.advance(minutes=1)
    assert a.patch("/v1/tickets/T-1", json={"priority": "urgent"}).status_code == 200
    assert a.patch("/v1/tickets/T-3", json={"priority": "urgent"}).status_code == 200
    rest = _all(a, "/v1/tickets", updated_since=since, limit=2, cursor=first["next_cursor"])
    assert [t["id"] for t in rest] == ["T-4", "T-1", "T-3"]
    assert rest[-1]["priority"] == "urgent"  # its latest state


RESOURCES = [
    ("/v1/skills", lambda n: {"id": f"s{n}"}, {"name": "renamed"}),
    ("/v1/teams", lambda n: {"id": f"t{n}"}, {"name": "renamed"}),
    ("/v1/agents", lambda n: {"id": f"a{n}", "team": "base"}, {"capacity": 3}),
    (
        "/v1/shifts",
        lambda n: {"id": f"sh{n}", "agent": "ana", "start": _at(n), "end": _at(n + 1)},
        {"agent": "bo"},  # a longer shift would overlap the next: overlaps are refused
    ),
    (
        "/v1/busy",
        lambda n: {"id": f"b{n}", "agent": "ana", "start": _at(n), "end": _at(n + 1)},
        {"end": "2026-03-09T12:00:00Z"},
    ),
    (
        "/v1/capabilities",
        lambda n: {"id": f"c{n}", "requirements": {"base-skill": 1}},
        {"name": "renamed"},
    ),
]


def _at(n: int) -> str:
    return (T0 + timedelta(days=7, hours=n)).isoformat()


@pytest.mark.parametrize(("url", "new", "change"), RESOURCES, ids=[r[0] for r in RESOURCES])
def test_every_organisation_list_takes_updated_since(
    a: As, clock: FakeClock, url: str, new: Any, change: dict[str, Any]
) -> None:
    assert a.post("/v1/teams", json={"id": "base"}).status_code == 201
    assert a.post("/v1/skills", json={"id": "base-skill"}).status_code == 201
    assert a.post("/v1/agents", json={"id": "ana", "team": "base"}).status_code == 201
    assert a.post("/v1/agents", json={"id": "bo", "team": "base"}).status_code == 201
    ids = []
    for n in range(3):
        r = a.post(url, json=new(n))
        assert r.status_code == 201, r.text
        ids.append(r.json()["id"])
    clock.advance(minutes=5)
    since = clock.now.isoformat()
    r = a.patch(f"{url}/{ids[2]}", json=change)
    assert r.status_code == 200, r.text
    clock.advance(minutes=1)
    r = a.patch(f"{url}/{ids[0]}", json=change)
    assert r.status_code == 200, r.text
    got = _all(a, url, updated_since=since, limit=1)
    assert [item["id"] for item in got] == [ids[2], ids[0]]


def test_cursors_of_one_order_are_refused_by_the_other(a: As) -> None:
    for n in range(3):
        assert a.post("/v1/teams", json={"id": f"t{n}"}).status_code == 201
    by_id = a.get("/v1/teams", params={"limit": 1}).json()["next_cursor"]
    since = T0.isoformat()
    by_change = a.get("/v1/teams", params={"limit": 1, "updated_since": since}).json()
    r = a.get("/v1/teams", params={"updated_since": since, "cursor": by_id})
    assert_problem(r, 422, "query.cursor")
    r = a.get("/v1/teams", params={"cursor": by_change["next_cursor"]})
    assert_problem(r, 422, "query.cursor")


def test_updated_since_must_carry_an_offset(a: As) -> None:
    assert_problem(a.get("/v1/tickets", params={"updated_since": "2026-03-02T08:00:00"}), 422)
    r = a.get("/v1/agents", params={"updated_since": "yesterday"})
    assert_problem(r, 422, "query.updated_since")
