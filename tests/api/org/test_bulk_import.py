"""Bulk imports at size, on SQLite and PostgreSQL (issue 8, defect 10: 10,000 agents took 33 s
on SQLite and 94 s on PostgreSQL, one ORM flush and several lookups per row).

- all or nothing when only the last of 2,000 rows is bad, and every failure named by its row
  and field (validation, unknown references, ids taken in the database or earlier in the same
  import), as the row-by-row path named them;
- a bounded number of SQL statements whatever the row count;
- what an import writes reads back exactly as the same row created by a single POST (on
  PostgreSQL the rows go by COPY);
- the side effects a sequence of creates has: the organisation version moves (the cached
  assignment index sees the change at once) and an agent change re-checks booked calls;
- two imports of the same rows at once: one 201, one 422 naming every row (the tenant lock);
  a row the database refuses raises what an INSERT would (so a 409, never a 500);
- PostgreSQL: after a first import the foreign-key check of each link uses the primary key.

The import's speed itself is measured by ``python -m benchmarks.imports``, not timed here.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, event, func, select, text
from sqlalchemy.exc import IntegrityError

from api.common import service as common
from api.db import inserts
from api.db.engine import make_session_factory
from api.db.models import Agent, AgentSkill, BusyInterval, Capability, OrgVersion, Shift
from api.errors import MAX_LISTED_ERRORS
from tests.api.assignment.test_assign import org as assign_org
from tests.api.assignment.test_assign import put_ticket
from tests.api.bookings.test_bookings import DAY, book, org
from tests.api.conftest import As, TenantCtx, assert_problem, postgres_only

MON = "2026-03-02"
N = 2000


def seed(c: As) -> None:
    for skill in ("billing", "lang:de"):
        assert c.post("/v1/skills", json={"id": skill}).status_code == 201
    assert c.post("/v1/teams", json={"id": "support"}).status_code == 201


def agents(n: int) -> list[dict[str, Any]]:
    return [
        {"id": f"ag-{i:05d}", "team": "support", "skills": {"billing": 1 + i % 5, "lang:de": 3}}
        for i in range(n)
    ]


def count(db: Engine, model: type[Any], tenant_id: str) -> int:
    with db.connect() as conn:
        return int(conn.scalar(select(func.count()).where(model.tenant_id == tenant_id)) or 0)


def org_version(db: Engine, tenant_id: str) -> int:
    with db.connect() as conn:
        found = conn.scalar(select(OrgVersion.version).where(OrgVersion.tenant_id == tenant_id))
        return int(found or 0)


@contextmanager
def statements(engine: Engine) -> Iterator[list[str]]:
    """The SQL statements ``engine`` sends meanwhile (an executemany counts once)."""
    seen: list[str] = []

    def note(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", note)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", note)


def test_a_bad_last_row_refuses_the_whole_large_import(
    a: As, tenant_a: TenantCtx, db: Engine
) -> None:
    seed(a)
    rows = agents(N)
    rows[-1] = rows[-1] | {"team": "ghost"}
    body = assert_problem(a.post("/v1/agents/import", json=rows), 422)
    assert [(e["row"], e["field"]) for e in body["errors"]] == [(N - 1, "team")]
    assert body["errors"][0]["reason"] == "unknown team 'ghost'"
    assert "nothing was imported" in body["detail"]
    assert count(db, Agent, tenant_a.id) == 0 and count(db, AgentSkill, tenant_a.id) == 0

    rows[-1] = rows[-1] | {"team": "support"}
    r = a.post("/v1/agents/import", json=rows)
    assert r.status_code == 201, r.text
    assert r.json() == {"imported": N, "ids": [row["id"] for row in rows]}
    assert count(db, Agent, tenant_a.id) == N and count(db, AgentSkill, tenant_a.id) == 2 * N
    got = a.get("/v1/agents/ag-01997").json()
    assert got["skills"] == {"billing": 3, "lang:de": 3} and got["team"] == "support"
    assert got["created_at"] == got["updated_at"] and got["capacity"] == 1


def test_every_failure_is_named_by_row_and_field(a: As, tenant_a: TenantCtx, db: Engine) -> None:
    seed(a)
    assert a.post("/v1/agents", json={"id": "taken", "team": "support"}).status_code == 201
    rows = agents(N)
    rows[5] = rows[5] | {"capacity": -1}  # the schema refuses it
    rows[700] = rows[700] | {"skills": {"cooking": 2, "billing": 1, "knitting": 1}}
    rows[701] = rows[701] | {"team": "ghost", "skills": {"cooking": 2}}  # both named, in order
    rows[1200] = rows[1200] | {"id": "taken"}  # in the database already
    rows[1500] = rows[1500] | {"id": rows[3]["id"]}  # taken by an earlier row of this import
    # An id whose first row failed was never created, so its second row is no duplicate.
    rows[1600] = rows[1600] | {"id": "second-chance", "team": "ghost"}
    rows[1601] = rows[1601] | {"id": "second-chance"}
    body = assert_problem(a.post("/v1/agents/import", json=rows), 422)
    got = [(e["row"], e["field"], e["reason"]) for e in body["errors"]]
    assert got == [
        (5, "capacity", "Input should be greater than or equal to 0"),
        (700, "skills.cooking", "unknown skill 'cooking'"),
        (700, "skills.knitting", "unknown skill 'knitting'"),
        (701, "team", "unknown team 'ghost'"),
        (701, "skills.cooking", "unknown skill 'cooking'"),
        (1200, "id", "agent 'taken' already exists"),
        (1500, "id", "agent 'ag-00003' already exists"),
        (1600, "team", "unknown team 'ghost'"),
    ], got
    assert body["detail"] == "8 problem(s); nothing was imported"
    assert count(db, Agent, tenant_a.id) == 1 and count(db, AgentSkill, tenant_a.id) == 0


def test_a_large_import_sends_a_bounded_number_of_statements(
    a: As, tenant_a: TenantCtx, db: Engine, app: FastAPI
) -> None:
    """The work of an import does not grow in round trips with its rows: one lookup per
    referenced table, inserts in batches. (Per row, it took about five statements.)"""
    seed(a)
    with statements(app.state.engine) as sent:
        r = a.post("/v1/agents/import", json=agents(N))
    assert r.status_code == 201, r.text
    assert len(sent) <= 30, f"{len(sent)} statements for {N} agents: {sent[:8]}"
    shifts = [
        {"agent": f"ag-{i:05d}", "start": f"{MON}T08:00:00Z", "end": f"{MON}T16:00:00Z"}
        for i in range(N)
    ]
    with statements(app.state.engine) as sent:
        r = a.post("/v1/shifts/import", json=shifts)
    assert r.status_code == 201, r.text
    assert len(sent) <= 30, f"{len(sent)} statements for {N} shifts: {sent[:8]}"
    ids = r.json()["ids"]
    assert len(set(ids)) == N and all(i.startswith("shf_") for i in ids)
    assert count(db, Shift, tenant_a.id) == N


def test_every_import_moves_the_organisation_version_as_a_create_would(
    a: As, tenant_a: TenantCtx, db: Engine
) -> None:
    """The real-time cache is keyed by the organisation version: an import must move it, once
    per import (one transaction), exactly where a single create moves it (capabilities are
    not part of the real-time organisation)."""
    before = org_version(db, tenant_a.id)
    shift = {"agent": "ag-00000", "start": f"{MON}T08:00:00Z", "end": f"{MON}T16:00:00Z"}
    busy = {"agent": "ag-00001", "start": f"{MON}T09:00:00Z", "end": f"{MON}T10:00:00Z"}
    imports = [
        ("/v1/skills/import", [{"id": "billing"}, {"id": "lang:de"}], 1),
        ("/v1/teams/import", [{"id": "support"}], 1),
        ("/v1/agents/import", agents(3), 1),
        ("/v1/shifts/import", [shift], 1),
        ("/v1/busy/import", [busy], 1),
        ("/v1/capabilities/import", [{"id": "c", "requirements": {"billing": 2}}], 0),
    ]
    for path, rows, moves in imports:
        r = a.post(path, json=rows)
        assert r.status_code == 201, (path, r.text)
        after = org_version(db, tenant_a.id)
        assert after - before == moves, path
        before = after
    assert count(db, BusyInterval, tenant_a.id) == 1 and count(db, Capability, tenant_a.id) == 1
    # A refused import changes nothing, the version included.
    assert_problem(a.post("/v1/agents/import", json=agents(3)), 422)
    assert org_version(db, tenant_a.id) == before


def test_a_busy_import_re_checks_booked_calls(a: As, app: FastAPI) -> None:
    """As a single POST /v1/busy does (test_bookings), an import of busy time queues the
    bookings job in the same commit, and its run moves the call off the agent now busy."""
    org(a)
    call = book(a).json()["id"]
    first = a.post("/v1/bookings/bind").json()["bound"][0]["agent"]
    worker = app.state.job_worker
    while worker.run_once() is not None:  # the job queued by the booking itself
        pass
    busy = [{"agent": first, "start": f"{DAY}08:45:00Z", "end": f"{DAY}09:15:00Z"}]
    assert a.post("/v1/busy/import", json=busy).status_code == 201
    run = worker.run_once()
    assert run is not None and run.kind == "bookings.bind"
    assert a.get(f"/v1/bookings/{call}").json()["agent"] not in (None, first)
    assert worker.run_once() is None  # one import, one run


def test_an_imported_row_reads_back_as_a_created_one(a: As) -> None:
    """Whatever path an import writes by (PostgreSQL: COPY), each resource's row reads back
    exactly as the same row created by a single POST: time zones converted to UTC, enums,
    floats, defaults, generated ids, skill and requirement links."""
    seed(a)
    mid = "2026-03-02T09:30:00.250000+05:30"  # an offset and microseconds to convert
    resources = [
        ("skills", {"name": "German", "kind": "language"}),
        ("teams", {"name": 'Tier 2 — Außendienst\t\\N, a \\ and "quotes"'}),  # COPY escapes
        ("agents", {"team": "support", "skills": {"billing": 2}, "status": "away"}),
        ("agents", {"team": "support", "timezone": "Asia/Kolkata", "capacity": 0}),
        ("shifts", {"agent": "ana-2", "start": mid, "end": "2026-03-02T18:00:00Z"}),
        ("busy", {"agent": "ana-2", "start": mid, "end": "2026-03-02T11:00:00Z", "source": "ics"}),
        ("capabilities", {"requirements": {"billing": 2, "lang:de": 4}, "reserve_share": 0.35}),
    ]
    for n, (resource, fields) in enumerate(resources):
        single = a.post(f"/v1/{resource}", json=fields | {"id": f"ana-{n}"})
        assert single.status_code == 201, single.text
        if resource == "shifts":  # one agent's shifts never overlap: the single makes room
            assert a.delete(f"/v1/shifts/ana-{n}").status_code == 204
        imported = a.post(f"/v1/{resource}/import", json=[fields | {"id": f"imp-{n}"}])
        assert imported.status_code == 201, imported.text
        assert imported.json()["ids"] == [f"imp-{n}"]
        read = a.get(f"/v1/{resource}/imp-{n}")
        assert read.status_code == 200, read.text
        assert read.json() | {"id": None} == single.json() | {"id": None}, resource
    # Without an id, an interval gets a generated one, as from a single create.
    r = a.post(
        "/v1/busy/import", json=[{"agent": "ana-3", "start": mid, "end": mid[:11] + "23:00:00Z"}]
    )
    assert r.status_code == 201, r.text
    ident = r.json()["ids"][0]
    assert ident.startswith("busy_") and a.get(f"/v1/busy/{ident}").json()["agent"] == "ana-3"


def test_two_imports_of_the_same_rows_at_once_one_wins_the_other_is_told(
    a: As, tenant_a: TenantCtx, db: Engine, app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both imports are inside the service at once (each pauses after reading which ids are
    taken): the tenant lock makes the second read after the first committed, so it answers
    the 422 naming every row, not a primary-key violation (a 409 without rows) or a 503."""
    seed(a)
    real = common.refuse_rows
    entered: list[float] = []

    def slow_refuse_rows(*args: Any, **kwargs: Any) -> None:
        entered.append(time.monotonic())
        time.sleep(0.3)
        real(*args, **kwargs)

    monkeypatch.setattr(common, "refuse_rows", slow_refuse_rows)
    rows = agents(200)
    clients = [a, As(TestClient(app), tenant_a.admin_key)]
    barrier = threading.Barrier(2)
    answers: list[Any] = [None, None]

    def planner(i: int) -> None:
        barrier.wait()
        answers[i] = clients[i].post("/v1/agents/import", json=rows)

    threads = [threading.Thread(target=planner, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(r.status_code for r in answers) == [201, 422], [r.text for r in answers]
    refused = next(r for r in answers if r.status_code == 422).json()
    # Every row is refused; an answer lists the first MAX_LISTED_ERRORS and counts them all.
    assert [e["row"] for e in refused["errors"]] == list(range(MAX_LISTED_ERRORS))
    assert f"({MAX_LISTED_ERRORS} of 200 errors listed)" in refused["detail"]
    assert len(entered) == 2 and entered[1] - entered[0] >= 0.25  # the second waited
    assert count(db, Agent, tenant_a.id) == 200


def test_a_row_the_database_refuses_raises_what_an_insert_would(
    tenant_a: TenantCtx, db: Engine
) -> None:
    """A bulk insert the database refuses (an agent skill of no agent) raises SQLAlchemy's
    IntegrityError on either backend, COPY included, so the error map answers it with a 409
    like any other write, never a 500; the session can roll back and go on."""
    link = {"tenant_id": tenant_a.id, "agent_id": "ghost", "skill_id": "ghost", "level": 3}
    with make_session_factory(db)() as session:
        with pytest.raises(IntegrityError):
            inserts.insert_many(session, AgentSkill.__table__, [link])
            session.flush()
        session.rollback()
        assert session.scalar(select(func.count()).select_from(Agent)) == 0


@postgres_only
@pytest.mark.new_tables
def test_after_a_first_import_the_database_checks_each_link_by_primary_key(
    a: As, tenant_a: TenantCtx, db: Engine
) -> None:
    """PostgreSQL checks every agent-skill link's foreign key with a query on ``agents``.
    On a table without statistics (a new database; here emptied by TRUNCATE) it plans that
    query on the (tenant, team) index, scanning all the tenant's agents per link: the links of
    3,000 agents took 2.3 s, of 10,000 (planned differently) 0.3 s. An import analyzes such a
    table before writing rows that refer to it, so the check uses the primary key."""
    seed(a)
    assert a.post("/v1/agents/import", json=agents(N)).status_code == 201
    check = (
        "EXPLAIN SELECT 1 FROM ONLY agents x "
        f"WHERE tenant_id = '{tenant_a.id}' AND id = 'ag-00005' FOR KEY SHARE OF x"
    )
    with db.connect() as conn:
        plan = "\n".join(conn.execute(text(check)).scalars())
    assert "pk_agents" in plan, plan


def test_an_import_reaches_the_cached_assignment_index(a: As, app: FastAPI) -> None:
    """The real-time index is cached per organisation version (test_assign): busy time that
    arrives by import takes cid out of the next decision at once, as a POST /v1/busy would."""
    assign_org(a)
    put_ticket(a, "X1", required_skills={"lang:de": 4}, team="tier2")
    assert a.post("/v1/tickets/X1/assign", json={"dry_run": True}).json()["agent"] == "cid"
    builds = app.state.realtime_cache.builds
    busy = [{"agent": "cid", "start": f"{DAY}07:00:00Z", "end": f"{DAY}17:00:00Z"}]
    assert a.post("/v1/busy/import", json=busy).status_code == 201
    r = a.post("/v1/tickets/X1/assign", json={"dry_run": True})
    assert r.status_code == 200, r.text
    assert r.json()["agent"] != "cid" and app.state.realtime_cache.builds == builds + 1
