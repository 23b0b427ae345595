"""Each operation's OpenAPI ``security``, derived from the auth dependency it really has.

An operation that depends on :func:`api.http.deps.require` (``ReadAuth``, ``HelpdeskAuth``,
``PlannerAuth``, ``AdminAuth``, or the crud factory's ``read_auth``/``write_auth``) gets one
requirement per scope that admits it: ``[{"ApiKey": ["helpdesk"]}, {"ApiKey": ["admin"]}]``
(alternatives, as OpenAPI reads a list of requirements; OpenAPI 3.1 lets a non-OAuth scheme
list role names). Any valid key: ``[{"ApiKey": []}]``. Public operations (probes, problem
pages) have none. A new operation gets its requirement from its dependency: nothing to keep in
step by hand. The description says the same in words, for readers of the rendered docs.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, iter_route_contexts

from api.enums import Scope
from api.http.deps import SECURITY_SCHEME, required_scopes


def _scopes_of(dependant: Dependant) -> tuple[Scope, ...] | None:
    for dep in dependant.dependencies:
        found = required_scopes(dep.call)
        if found is not None:
            return found
        found = _scopes_of(dep)
        if found is not None:
            return found
    return None


def requirement(scopes: tuple[Scope, ...]) -> list[dict[str, list[str]]]:
    if not scopes:
        return [{SECURITY_SCHEME: []}]
    names = [s.value for s in scopes]
    if Scope.ADMIN.value not in names:
        names.append(Scope.ADMIN.value)
    return [{SECURITY_SCHEME: [name]} for name in names]


def _sentence(scopes: tuple[Scope, ...]) -> str:
    if not scopes:
        return "Needs an API key (any scope)."
    wanted = " or ".join(f"`{s.value}`" for s in scopes)
    return f"Needs an API key with the {wanted} scope (`admin` passes too)."


def add_security(app: FastAPI, schema: dict[str, Any]) -> None:
    """Set every operation's ``security`` from its route's auth dependency."""
    paths = schema.get("paths", {})
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        if not isinstance(route, APIRoute) or not route.include_in_schema:
            continue
        operations = paths.get(context.path_format or route.path_format, {})
        scopes = _scopes_of(route.dependant)
        for method in context.methods or route.methods or ():
            operation = operations.get(method.lower())
            if operation is None:
                continue
            if scopes is None:
                operation.pop("security", None)
                continue
            operation["security"] = requirement(scopes)
            description = operation.get("description", "").rstrip()
            operation["description"] = f"{description}\n\n{_sentence(scopes)}".lstrip()
