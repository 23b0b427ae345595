"""A query parameter an API operation does not take is a 422 naming it (issue 10): before,
FastAPI ignored it, so ``GET /v1/kpis?timezone=Europe/Berlin`` answered in UTC as if it had been
read (``timezone`` is a parameter of the KPIs now; ``tz`` is not). What an operation takes is
what the OpenAPI document lists for it, so the two cannot disagree. The probes and ``/metrics``
are left alone (cache-busters)."""

from __future__ import annotations

import re

from fastapi import FastAPI

from tests.api.assignment.test_assign import org, put_ticket
from tests.api.conftest import As, assert_problem


def test_an_unknown_query_parameter_is_named(a: As) -> None:
    r = a.get("/v1/kpis", params={"tz": "Europe/Berlin"})
    body = assert_problem(r, 422, "query.tz")
    assert "team" in body["errors"][0]["reason"]  # says what the operation does take
    r = a.get("/v1/agents", params={"limit": 5, "sort": "name", "colour": "red"})
    body = assert_problem(r, 422, "query.sort", "query.colour")
    assert {e["field"] for e in body["errors"]} == {"query.sort", "query.colour"}


def test_known_parameters_and_none_at_all_are_served(a: As) -> None:
    org(a)
    assert a.get("/v1/agents", params={"limit": 1, "team": "support"}).status_code == 200
    assert a.get("/v1/agents").status_code == 200
    assert a.get("/v1/kpis", params={"team": "support"}).status_code == 200


def test_operations_without_query_parameters_refuse_any(a: As) -> None:
    org(a)
    put_ticket(a, "T1")
    r = a.post("/v1/tickets/T1/assign?dry_run=true", json={})
    assert_problem(r, 422, "query.dry_run")  # dry_run belongs in the body
    assert a.get("/v1/tickets/T1").json()["owner"] == {"kind": "team", "id": "support"}
    assert a.post("/v1/tickets/T1/assign", json={"dry_run": True}).status_code == 200
    assert_problem(a.get("/v1/teams/support?verbose=1"), 422, "query.verbose")


def test_probes_and_metrics_take_any_query_string(a: As) -> None:
    """Load balancers and scrapers may add a cache-buster: a probe must not fail for it."""
    assert a.get("/healthz?ts=1733500000").json() == {"status": "ok"}
    assert a.get("/metrics?ts=1").status_code == 200


def test_every_documented_parameter_is_taken_and_nothing_else(app: FastAPI, a: As) -> None:
    """For every GET of the API: sending each query parameter its OpenAPI entry lists is never
    called unknown (its value may still be refused), and one more parameter always is."""
    checked = 0
    for path, operations in app.openapi()["paths"].items():
        operation = operations.get("get")
        if operation is None or not path.startswith("/v1/"):
            continue
        url = re.sub(r"{[^}]+}", "x", path)
        documented = [p["name"] for p in operation.get("parameters", []) if p["in"] == "query"]
        r = a.get(url, params={name: "1" for name in documented})
        answer = r.json()
        errors = answer.get("errors", []) if isinstance(answer, dict) else []
        unknown = [e for e in errors if "unknown query" in e["reason"]]
        assert unknown == [], (path, unknown)
        r = a.get(url, params={**{name: "1" for name in documented}, "zzz": "1"})
        body = assert_problem(r, 422, "query.zzz")
        for name in documented:
            assert name in body["errors"][0]["reason"], (path, name, body)
        checked += 1
    assert checked >= 15
