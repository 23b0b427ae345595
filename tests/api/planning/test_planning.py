"""/v1/planning: the live tenant as a baseline, runs as jobs, their results (issue 13).

A tiny tenant: two agents on Monday's early shift, five e-mail tickets that morning. Runs are
simulated by the app's own job worker (``run_once``: no sleeping), on one day, two
replications and the real-time router (the production mix's periodic re-optimization would
spend its CP-SAT time limit per call; the routing is the scenario's to choose anyway).
"""

from __future__ import annotations

import io
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi import FastAPI

from api.db.jobs import JobStatus
from scenarios.inputs import load_baseline
from tests.api.conftest import (
    BACKENDS,
    T0,
    As,
    FakeClock,
    TenantCtx,
    assert_problem,
    ticket_body,
)

MONDAY = T0.replace(hour=0)  # 2026-03-02T00:00Z
SCENARIO = """\
name: one more
seed: 3
replications: 2
changes:
  - add_agents: {count: 1, like: ana, id_prefix: new}
"""


def seed_tenant(a: As) -> None:
    assert a.post("/v1/skills", json={"id": "billing"}).status_code == 201
    assert a.post("/v1/teams", json={"id": "support"}).status_code == 201
    for agent in ("ana", "ben"):
        body = {"id": agent, "team": "support", "skills": {"billing": 3}, "capacity": 3}
        assert a.post("/v1/agents", json=body).status_code == 201
        shift = {
            "agent": agent,
            "start": (MONDAY + timedelta(hours=8)).isoformat(),
            "end": (MONDAY + timedelta(hours=16)).isoformat(),
        }
        assert a.post("/v1/shifts", json=shift).status_code == 201
    for i in range(5):
        body = ticket_body(
            {
                "team": "support",
                "required_skills": {"billing": 1},
                "effort_minutes": 20,
                "created_at": (MONDAY + timedelta(hours=8, minutes=40 * i)).isoformat(),
                "requester": f"customer{i}@example.com",
            }
        )
        assert a.put(f"/v1/tickets/T-{i}", json=body).status_code in (200, 201)


@pytest.fixture
def planner(tenant_a: TenantCtx, clock: FakeClock) -> As:
    seed_tenant(tenant_a.admin)
    clock.now = MONDAY + timedelta(days=1, hours=8)
    return tenant_a.key("planner")


# The run end to end goes through both backends; the further simulations (a sweep, progress
# and cancels) only through SQLite: a simulation is the same on both, and each costs seconds.
sqlite_only = pytest.mark.parametrize("db_url", BACKENDS[:1], indirect=True, scope="session")

WINDOW = {"days": 1, "tickets_since": MONDAY.isoformat()}


def export(planner: As, accept: str = "application/yaml") -> Any:
    r = planner.get("/v1/planning/baseline", params=WINDOW, headers={"Accept": accept})
    assert r.status_code == 200, r.text
    return r


def test_export_round_trips_through_load_baseline(planner: As, tmp_path: Path) -> None:
    r = export(planner)
    assert r.headers["content-type"].startswith("application/yaml")
    assert "example.com" not in r.text and "T-0" not in r.text  # no requester, no helpdesk ids
    path = tmp_path / "live.yaml"
    path.write_text(r.text)
    world = load_baseline(path)
    assert [a.id for a in world.agents] == ["ana", "ben"]
    (pattern,) = world.agents[0].shifts
    assert (pattern.weekdays, str(pattern.start), str(pattern.end)) == (
        (0,),
        "08:00:00",
        "16:00:00",
    )
    assert len(world.demand.history) == 5 and world.days == 1
    as_json = export(planner, "application/json")
    assert as_json.headers["content-type"].startswith("application/json")
    assert as_json.json() == yaml.safe_load(r.text)


def test_export_errors_name_the_query_field(planner: As) -> None:
    empty = {"days": 1, "tickets_since": (MONDAY - timedelta(days=3)).isoformat()}
    assert_problem(planner.get("/v1/planning/baseline", params=empty), 422, "query.tickets_since")
    assert_problem(planner.get("/v1/planning/baseline", params={"days": 32}), 422, "query.days")


def run_jobs(app: FastAPI) -> int:
    ran = 0
    while (run := app.state.job_worker.run_once()) is not None:
        assert run.status is JobStatus.SUCCEEDED, run
        ran += 1
    return ran


def inline_baseline(planner: As) -> dict[str, Any]:
    document: dict[str, Any] = export(planner, "application/json").json()
    document["routing"]["policy"] = "realtime"
    return document


def test_a_run_end_to_end(app: FastAPI, planner: As, tenant_b: TenantCtx) -> None:
    body = {"scenario": SCENARIO, "baseline": inline_baseline(planner)}
    r = planner.post("/v1/planning/runs", json=body)
    assert r.status_code == 202, r.text
    run = r.json()
    assert r.headers["location"] == f"/v1/planning/runs/{run['id']}"
    assert run["status"] == "queued" and run["kind"] == "run" and run["name"] == "one more"
    assert_problem(planner.get(f"/v1/planning/runs/{run['id']}/report"), 404)
    assert run_jobs(app) == 1
    done = planner.get(run["links"]["self"]).json()
    assert done["status"] == "succeeded" and done["progress"] == 1.0, done
    summary = done["summary"]
    assert set(summary["worlds"]) == {"baseline", "one more"}
    created = summary["worlds"]["baseline"]["kpis"]["tickets_created"]
    assert created["mean"] == 5 and created["n"] == 2
    delta = summary["deltas"]["one more"]["tickets_created"]
    assert delta["delta_mean"] == 0  # common random numbers: the same arrivals
    job = planner.get(done["links"]["job"]).json()
    assert job["kind"] == "scenario.run" and job["status"] == "succeeded"

    report = planner.get(done["links"]["report"])
    assert report.status_code == 200 and report.headers["content-type"].startswith("text/html")
    assert "<html" in report.text.lower()
    kpis = planner.get(done["links"]["exports"]["kpis.csv"])
    assert kpis.headers["content-type"].startswith("text/csv")
    assert "tickets_created" in kpis.text
    intervals = planner.get(done["links"]["exports"]["intervals.csv"])
    assert intervals.headers["content-type"].startswith("text/csv")
    xlsx = planner.get(done["links"]["exports"]["report.xlsx"])
    assert xlsx.headers["content-type"].startswith("application/vnd.openxmlformats")
    assert io.BytesIO(xlsx.content).read(2) == b"PK"  # a zip, as .xlsx is
    assert [i["id"] for i in planner.get("/v1/planning/runs").json()["items"]] == [run["id"]]

    # Another tenant sees none of it.
    other = tenant_b.key("planner")
    for url in (done["links"]["self"], done["links"]["report"], *done["links"]["exports"].values()):
        assert_problem(other.get(url), 404)
    assert other.get("/v1/planning/runs").json()["items"] == []
    assert_problem(tenant_b.admin.get(done["links"]["self"]), 404)


def test_bad_scenarios_are_422_naming_line_and_field(planner: As) -> None:
    bad = SCENARIO.replace("like: ana", "like: nobody")
    r = planner.post("/v1/planning/runs", json={"scenario": bad})
    problem = assert_problem(r, 422)
    (error,) = problem["errors"]
    assert error["field"].startswith("scenario.changes") and error["row"] == 5, error
    assert "line 5" in error["reason"]
    toml = 'name = "x"\nreplications = "many"\n'
    r = planner.post("/v1/planning/runs", json={"scenario": toml, "format": "toml"})
    (error,) = assert_problem(r, 422, "scenario.replications")["errors"]
    assert error["row"] == 2
    too_many = SCENARIO.replace("replications: 2", "replications: 500")
    assert_problem(
        planner.post("/v1/planning/runs", json={"scenario": too_many}), 422, "scenario.replications"
    )
    bomb = "a: &a [x, x]\nb: &b [*a, *a]\n" + SCENARIO  # aliases: refused before composing
    (error,) = assert_problem(planner.post("/v1/planning/runs", json={"scenario": bomb}), 422)[
        "errors"
    ]
    assert error["field"] == "scenario" and error["row"] == 2
    long = SCENARIO.replace("replications: 2", "replications: 2\ndays: 40")
    assert_problem(planner.post("/v1/planning/runs", json={"scenario": long}), 422, "scenario.days")
    deep = {"scenario": "a = " + "[" * 50_000, "format": "toml"}
    assert_problem(planner.post("/v1/planning/runs", json=deep), 422, "scenario")
    broken = {"scenario": SCENARIO, "baseline": {"name": "x"}}
    assert_problem(planner.post("/v1/planning/runs", json=broken), 422)


@sqlite_only
def test_a_sweep_runs_every_grid_point_and_is_bounded(
    app: FastAPI, planner: As, tenant_a: TenantCtx, clock: FakeClock
) -> None:
    sweep = """\
name: staffing
seed: 1
replications: 1
grid:
  add_agents: [{count: 0, like: ana}, {count: 1, like: ana}]
"""
    r = planner.post("/v1/planning/sweeps", json={"scenario": sweep, **_live()})
    assert r.status_code == 202, r.text
    assert r.json()["kind"] == "sweep"
    job = planner.get(r.json()["links"]["job"]).json()
    assert job["kind"] == "scenario.sweep" and job["status"] == "queued"
    # The live one is frozen as it was; this one runs on the real-time router (cheaper).
    assert planner.post(f"/v1/planning/runs/{r.json()['id']}/cancel").status_code == 200
    inline = {"scenario": sweep, "baseline": inline_baseline(planner)}
    clock.advance(minutes=1)
    r = planner.post("/v1/planning/sweeps", json=inline)
    assert run_jobs(app) == 1
    done = planner.get(r.json()["links"]["self"]).json()
    points = ["add_agents=0", "add_agents=1"]
    assert list(done["summary"]["worlds"]) == ["baseline", *points], done["summary"]["worlds"]
    assert list(done["summary"]["deltas"]) == points
    listed = planner.get("/v1/planning/runs", params={"limit": 1}).json()
    assert [i["id"] for i in listed["items"]] == [done["id"]]  # newest first
    older = planner.get("/v1/planning/runs", params={"cursor": listed["next_cursor"]}).json()
    assert [i["status"] for i in older["items"]] == ["cancelled"]
    points = "[" + ", ".join(f"{{count: {n}, like: ana}}" for n in range(13)) + "]"
    huge = sweep.replace("[{count: 0, like: ana}, {count: 1, like: ana}]", points)
    r = planner.post("/v1/planning/sweeps", json={"scenario": huge, **_live()})
    assert_problem(r, 422, "scenario.grid")
    # A helpdesk key cannot plan.
    helpdesk = tenant_a.key("helpdesk")
    assert_problem(helpdesk.post("/v1/planning/sweeps", json={"scenario": sweep}), 403)
    assert_problem(helpdesk.get("/v1/planning/runs"), 403)


def _live() -> dict[str, Any]:
    return {"baseline": "live", "baseline_days": 1, "tickets_since": MONDAY.isoformat()}


@sqlite_only
def test_progress_is_written_into_the_job_and_a_cancel_stops_the_run(
    app: FastAPI, planner: As, monkeypatch: pytest.MonkeyPatch
) -> None:
    from api.planning import jobs

    seen: list[float] = []
    write = jobs._Progress.write

    def recording(self: jobs._Progress, value: float, *, force: bool = False) -> None:
        seen.append(value)
        write(self, value, force=True)  # every report reaches the job row

    monkeypatch.setattr(jobs._Progress, "write", recording)
    body = {"scenario": SCENARIO.replace("replications: 2", "replications: 1")}
    first = planner.post("/v1/planning/runs", json=body | {"baseline": inline_baseline(planner)})
    second = planner.post("/v1/planning/runs", json=body | {"baseline": inline_baseline(planner)})
    cancelled = planner.post(f"/v1/planning/runs/{second.json()['id']}/cancel")
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    assert run_jobs(app) == 1  # the cancelled run never starts
    assert seen[0] == 0 and seen == sorted(seen) and 0 < seen[len(seen) // 2] < 1, seen
    done = planner.get(first.json()["links"]["self"]).json()
    assert done["status"] == "succeeded" and done["progress"] == 1.0
    assert_problem(planner.post(f"/v1/planning/runs/{first.json()['id']}/cancel"), 409)

    # A run cancelled while it simulates stops at its next progress report.
    third = planner.post("/v1/planning/runs", json=body | {"baseline": inline_baseline(planner)})

    def cancel_midway(self: jobs._Progress, value: float, *, force: bool = False) -> None:
        if value > 0.2:
            planner.post(f"/v1/planning/runs/{third.json()['id']}/cancel")
        write(self, value, force=True)

    monkeypatch.setattr(jobs._Progress, "write", cancel_midway)
    run = app.state.job_worker.run_once()
    assert run is not None and run.status is None  # the claim was lost: nothing stored
    assert planner.get(third.json()["links"]["self"]).json()["status"] == "cancelled"


def test_a_run_may_simulate_so_many_tickets(app: FastAPI, planner: As) -> None:
    baseline = inline_baseline(planner)  # 5 tickets
    app.state.settings = app.state.settings.model_copy(update={"planning_max_tickets": 6})
    doubled = SCENARIO + "  - scale_volume: 2\n"
    r = planner.post("/v1/planning/runs", json={"scenario": doubled, "baseline": baseline})
    assert "about 10 tickets; at most 6" in assert_problem(r, 422, "scenario")["detail"]
    assert (
        planner.post(
            "/v1/planning/runs", json={"scenario": SCENARIO, "baseline": baseline}
        ).status_code
        == 202
    )
    live = planner.get("/v1/planning/baseline", params=WINDOW)  # the export is bounded too
    assert live.status_code == 200
    app.state.settings = app.state.settings.model_copy(update={"planning_max_tickets": 4})
    assert_problem(planner.get("/v1/planning/baseline", params=WINDOW), 422, "query.tickets_since")
