"""Imports you can run twice: upsert mode, shifts that never overlap for one agent (within an
import, against stored shifts, and for single POST/PATCH), and rows named as the client's own
tools number them. Through HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from api.org.intervals.service import Planned
from tests.api.conftest import As, assert_problem
from tests.api.org.test_resources import MON, make_agent, seed_org

CSV = {"Content-Type": "text/csv"}


def at(hour: int) -> str:
    return f"{MON}T{hour:02d}:00:00Z"


def shifts(a: As) -> list[dict[str, Any]]:
    r = a.get("/v1/shifts", params={"limit": 500})
    assert r.status_code == 200, r.text
    items: list[dict[str, Any]] = r.json()["items"]
    return items


def org(a: As) -> None:
    seed_org(a)
    make_agent(a, "ana")
    make_agent(a, "ben")


def test_a_reimport_of_shifts_is_refused_naming_every_row(a: As) -> None:
    org(a)
    rows = [
        {"agent": "ana", "start": at(8), "end": at(12)},
        {"agent": "ana", "start": at(13), "end": at(17)},
        {"agent": "ben", "start": at(8), "end": at(16)},
    ]
    assert a.post("/v1/shifts/import", json=rows).status_code == 201
    body = assert_problem(a.post("/v1/shifts/import", json=rows), 422)
    assert [(e["row"], e["field"]) for e in body["errors"]] == [
        (0, "start"),
        (1, "start"),
        (2, "start"),
    ]
    assert all("duplicates stored shift" in e["reason"] for e in body["errors"]), body
    assert "nothing was imported" in body["detail"]
    assert len(shifts(a)) == 3  # not doubled


def test_overlaps_within_a_csv_import_name_both_spreadsheet_rows(a: As) -> None:
    org(a)
    csv_text = (
        "agent,start,end\n"  # row 1
        f"ana,{at(8)},{at(12)}\n"  # row 2
        f"ben,{at(8)},{at(12)}\n"  # row 3: another agent, the same time: fine
        f"ana,{at(12)},{at(16)}\n"  # row 4: touches row 2: fine ([start, end))
        f"ana,{at(15)},{at(18)}\n"  # row 5: overlaps row 4
    )
    r = a.post("/v1/shifts/import", content=csv_text, headers=CSV)
    body = assert_problem(r, 422)
    assert [(e["row"], e["field"]) for e in body["errors"]] == [(4, "start"), (5, "start")]
    assert "overlaps another shift of agent 'ana'" in body["errors"][0]["reason"]
    assert f"{MON}T15:00:00+00:00" in body["errors"][0]["reason"]  # names the other's time
    assert shifts(a) == []
    ok = csv_text.replace(f"ana,{at(15)},{at(18)}\n", f"ana,{at(16)},{at(18)}\n")
    assert a.post("/v1/shifts/import", content=ok, headers=CSV).status_code == 201
    assert len(shifts(a)) == 4


def test_csv_rows_are_numbered_as_a_spreadsheet_shows_them(a: As) -> None:
    org(a)
    csv_text = f"agent,start,end\nghost,{at(8)},{at(9)}\nana,{at(9)},{at(8)}\n"
    body = assert_problem(a.post("/v1/shifts/import", content=csv_text, headers=CSV), 422)
    assert [(e["row"], e["field"]) for e in body["errors"]] == [(2, "agent"), (3, "end")]
    # The same rows as a JSON array: the elements' 0-based indexes.
    rows = [
        {"agent": "ghost", "start": at(8), "end": at(9)},
        {"agent": "ana", "start": at(9), "end": at(8)},
    ]
    body = assert_problem(a.post("/v1/shifts/import", json=rows), 422)
    assert [(e["row"], e["field"]) for e in body["errors"]] == [(0, "agent"), (1, "end")]


def test_single_shift_post_and_patch_refuse_an_overlap(a: As) -> None:
    org(a)
    r = a.post("/v1/shifts", json={"id": "s1", "agent": "ana", "start": at(8), "end": at(12)})
    assert r.status_code == 201, r.text
    r = a.post("/v1/shifts", json={"id": "s2", "agent": "ana", "start": at(11), "end": at(14)})
    body = assert_problem(r, 422, "start")
    assert "overlaps stored shift 's1'" in body["errors"][0]["reason"]
    assert "row" not in body["errors"][0]
    r = a.post("/v1/shifts", json={"id": "s2", "agent": "ana", "start": at(12), "end": at(14)})
    assert r.status_code == 201, r.text
    # Moving s1 within its own old time is no overlap with itself; into s2 is.
    assert a.patch("/v1/shifts/s1", json={"start": at(9)}).status_code == 200
    body = assert_problem(a.patch("/v1/shifts/s1", json={"end": at(13)}), 422, "start")
    assert "'s2'" in body["errors"][0]["reason"]
    # Moving s2 to ben: no overlap there.
    assert a.patch("/v1/shifts/s2", json={"agent": "ben", "start": at(10)}).status_code == 200
    # Busy intervals may overlap (a meeting during a call is one busy stretch).
    for _ in range(2):
        r = a.post("/v1/busy", json={"agent": "ana", "start": at(9), "end": at(10)})
        assert r.status_code == 201, r.text


def test_upsert_replaces_stored_shifts_and_creates_the_rest(a: As) -> None:
    org(a)
    rows = [
        {"id": "s1", "agent": "ana", "start": at(8), "end": at(12)},
        {"id": "s2", "agent": "ana", "start": at(12), "end": at(16)},
    ]
    assert a.post("/v1/shifts/import", json=rows).status_code == 201
    before = {s["id"]: s for s in shifts(a)}
    # Every shift an hour later: each overlaps the *old* time of another, which it replaces.
    later = [
        {"id": "s1", "agent": "ana", "start": at(9), "end": at(13)},
        {"id": "s2", "agent": "ana", "start": at(13), "end": at(17)},
        {"id": "s3", "agent": "ben", "start": at(8), "end": at(12)},
    ]
    assert_problem(a.post("/v1/shifts/import", json=later), 422)  # create mode: ids taken
    r = a.post("/v1/shifts/import", params={"mode": "upsert"}, json=later)
    assert r.status_code == 201, r.text
    assert r.json() == {"imported": 3, "ids": ["s1", "s2", "s3"]}
    after = {s["id"]: s for s in shifts(a)}
    assert {k: (v["agent"], v["start"], v["end"]) for k, v in after.items()} == {
        "s1": ("ana", f"{MON}T09:00:00Z", f"{MON}T13:00:00Z"),
        "s2": ("ana", f"{MON}T13:00:00Z", f"{MON}T17:00:00Z"),
        "s3": ("ben", f"{MON}T08:00:00Z", f"{MON}T12:00:00Z"),
    }
    assert after["s1"]["created_at"] == before["s1"]["created_at"]
    # Upsert still refuses overlaps and repeated ids, all or nothing.
    bad = [
        {"id": "s1", "agent": "ana", "start": at(6), "end": at(8)},  # fine alone
        {"id": "s4", "agent": "ben", "start": at(11), "end": at(14)},  # overlaps stored s3
        {"id": "s1", "agent": "ana", "start": at(18), "end": at(19)},
    ]
    body = assert_problem(a.post("/v1/shifts/import", params={"mode": "upsert"}, json=bad), 422)
    assert [(e["row"], e["field"]) for e in body["errors"]] == [(1, "start"), (2, "id")]
    assert {s["id"]: s["start"] for s in shifts(a)}["s1"] == f"{MON}T09:00:00Z"


def test_upsert_of_agents_replaces_each_whole_row_all_or_nothing(a: As) -> None:
    org(a)
    assert a.patch("/v1/agents/ana", json={"capacity": 4, "name": "Ana"}).status_code == 200
    csv_text = "id,team,skills,capacity\nana,support,billing=2,\ncid,support,tier:2=3,2\n"
    r = a.post("/v1/agents/import", params={"mode": "upsert"}, content=csv_text, headers=CSV)
    assert r.status_code == 201, r.text
    assert r.json() == {"imported": 2, "ids": ["ana", "cid"]}
    ana = a.get("/v1/agents/ana").json()
    # A full replacement: what the row leaves out takes the create's default.
    assert ana["skills"] == {"billing": 2} and ana["capacity"] == 1
    assert a.get("/v1/agents/cid").json()["capacity"] == 2
    bad = "id,team,skills\nana,support,billing=5\nben,ghost,\nned,support,cooking=1\n"
    r = a.post("/v1/agents/import", params={"mode": "upsert"}, content=bad, headers=CSV)
    body = assert_problem(r, 422)
    assert [(e["row"], e["field"]) for e in body["errors"]] == [(3, "team"), (4, "skills.cooking")]
    assert a.get("/v1/agents/ana").json()["skills"] == {"billing": 2}  # nothing written
    assert a.get("/v1/agents/ned").status_code == 404
    # Skills and teams upsert the same way.
    r = a.post(
        "/v1/teams/import", params={"mode": "upsert"}, json=[{"id": "support", "name": "Help"}]
    )
    assert r.status_code == 201, r.text
    assert a.get("/v1/teams/support").json()["name"] == "Help"
    caps = [{"id": "cap", "requirements": {"billing": 2}}]
    assert a.post("/v1/capabilities/import", json=caps).status_code == 201
    caps[0]["requirements"] = {"tier:2": 1}
    r = a.post("/v1/capabilities/import", params={"mode": "upsert"}, json=caps)
    assert r.status_code == 201, r.text
    assert a.get("/v1/capabilities/cap").json()["requirements"] == {"tier:2": 1}
    skills = [{"id": "billing", "name": "Invoices"}, {"id": "new-skill"}]
    r = a.post("/v1/skills/import", params={"mode": "upsert"}, json=skills)
    assert r.status_code == 201, r.text
    assert a.get("/v1/skills/billing").json()["name"] == "Invoices"


def test_an_unknown_mode_is_a_422_naming_it(a: As) -> None:
    r = a.post("/v1/teams/import", params={"mode": "merge"}, json=[{"id": "t"}])
    assert_problem(r, 422, "query.mode")
    assert a.get("/v1/teams").json()["items"] == []


def _brute_force(planned: list[Planned]) -> set[int]:
    bad: set[int] = set()
    for i, (_, agent, start, end) in enumerate(planned):
        for j, (_, other, o_start, o_end) in enumerate(planned):
            if i != j and agent == other and start < o_end and o_start < end:
                bad.add(i)
    return bad


T0 = datetime(2026, 3, 2, tzinfo=UTC)
intervals = st.tuples(st.sampled_from(["ana", "ben"]), st.integers(0, 40), st.integers(1, 12)).map(
    lambda t: (t[0], T0 + timedelta(hours=t[1]), T0 + timedelta(hours=t[1] + t[2]))
)


@settings(max_examples=150, deadline=None)
@given(st.lists(intervals, max_size=12))
def test_the_sweep_finds_exactly_the_overlapping_rows(
    rows: list[tuple[str, datetime, datetime]],
) -> None:
    """For every set of intervals, the rows the sweep refuses are exactly those that overlap
    another of the same agent (checked pair by pair), with no stored rows in the way."""
    from sqlalchemy import create_engine
    from sqlalchemy.orm import Session

    from api.db.base import Base
    from api.db.models import Shift
    from api.org.intervals.service import overlap_errors

    planned: list[Planned] = [(f"s{i}", agent, s, e) for i, (agent, s, e) in enumerate(rows)]
    engine = _ENGINE.get("e")
    if engine is None:
        engine = _ENGINE["e"] = create_engine("sqlite://")
        Base.metadata.create_all(engine)
    with Session(engine) as session:
        found = {e.row for e in overlap_errors(session, Shift, "shift", "t", planned)}
    assert found == _brute_force(planned)


_ENGINE: dict[str, Any] = {}


def test_csv_with_any_line_ends_is_read_not_a_500(a: As) -> None:
    """A lone CR (old Mac files, or a CR inside a row) was a 500 from the csv module's
    "new-line character seen in unquoted field" (found by schemathesis)."""
    r = a.post("/v1/teams/import", content="id,name\rt1,One\rt2,Two\r", headers=CSV)
    assert r.status_code == 201, r.text
    assert r.json()["ids"] == ["t1", "t2"]
    r = a.post("/v1/teams/import", content='id,name\r\nt3,"Three\r\nlines"\r\n', headers=CSV)
    assert r.status_code == 201, r.text
    assert a.get("/v1/teams/t3").json()["name"] == "Three\r\nlines"


def test_a_single_shift_write_holds_the_tenant_lock(a: As, monkeypatch: pytest.MonkeyPatch) -> None:
    """POST and PATCH check for overlaps under the tenant's write lock, so two requests cannot
    both find the same time free."""
    from api.org.intervals import service

    org(a)
    taken: list[str] = []
    real = service.lock_tenant

    def spy(session: Any, tenant_id: str) -> None:
        taken.append(tenant_id)
        real(session, tenant_id)

    monkeypatch.setattr(service, "lock_tenant", spy)
    r = a.post("/v1/shifts", json={"id": "s1", "agent": "ana", "start": at(8), "end": at(9)})
    assert r.status_code == 201, r.text
    assert a.patch("/v1/shifts/s1", json={"end": at(10)}).status_code == 200
    assert len(taken) == 2
