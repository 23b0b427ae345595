"""A planner key reads the live organisation and tickets but never changes them (issue 13).

Two proofs over every route the app has (``app.routes``, so a route added later is checked
too): the scopes its auth dependency admits (what the OpenAPI document says), and what a
planner key really gets when it calls it (403 before anything runs).
"""

from __future__ import annotations

import re

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, iter_route_contexts

from api.enums import Scope
from api.http.deps import required_scopes
from tests.api.conftest import TenantCtx, assert_problem

MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# What a planner may write: its own planning runs, and the stateless solve (stores nothing).
PLANNER_WRITES = ("/v1/planning/", "/v1/solve")
# Mutating routes that take no API key at all: customers' link pages (the link's token is the
# credential) and calendar providers' push notifications (the channel's token is). A planner
# key adds nothing there; a new keyless route must be added here on purpose.
KEYLESS = ("/c/", "/v1/calendar-push/")


def _scopes(dependant: Dependant) -> tuple[Scope, ...] | None:
    for dep in dependant.dependencies:
        found = required_scopes(dep.call)
        if found is None:
            found = _scopes(dep)
        if found is not None:
            return found
    return None


def mutating_routes(app: FastAPI) -> list[tuple[str, str, tuple[Scope, ...] | None]]:
    out = []
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        if not isinstance(route, APIRoute):
            continue
        path = context.path_format or route.path_format
        for method in sorted(set(context.methods or route.methods or ()) & MUTATING):
            out.append((method, path, _scopes(route.dependant)))
    return out


def test_no_live_route_admits_a_planner_to_write(app: FastAPI) -> None:
    routes = mutating_routes(app)
    assert len(routes) > 50  # the walk found the app's routes (a router mounted lazily, too)
    planning = [(m, p) for m, p, _ in routes if p.startswith("/v1/planning/")]
    assert ("POST", "/v1/planning/runs") in planning
    assert ("POST", "/v1/planning/sweeps") in planning
    for method, path, scopes in routes:
        if path.startswith(KEYLESS):
            assert scopes is None, (method, path)
            continue
        assert scopes is not None, f"{method} {path} has no auth dependency"
        admits_planner = not scopes or Scope.PLANNER in scopes
        assert admits_planner == path.startswith(PLANNER_WRITES), (method, path, scopes)


def test_a_planner_key_is_refused_by_every_live_write(app: FastAPI, tenant_a: TenantCtx) -> None:
    planner = tenant_a.key("planner")
    tried = 0
    for method, path, _ in mutating_routes(app):
        if path.startswith(PLANNER_WRITES + KEYLESS):
            continue
        url = re.sub(r"\{[^}]+\}", "x", path)
        body: object = [] if path.endswith("/import") else {}  # imports parse rows first
        assert_problem(planner.request(method, url, json=body), 403)
        tried += 1
    assert tried > 50
    # ...while it reads them.
    for url in ("/v1/agents", "/v1/teams", "/v1/skills", "/v1/tickets", "/v1/policies"):
        assert planner.get(url).status_code == 200, url
