"""Unknown query parameters are refused, not ignored.

FastAPI reads the query parameters an operation declares and silently drops the rest, so a
client that sends ``?timezone=Europe/Berlin`` to an operation that has no such parameter gets an
answer in UTC and no hint that it was not understood. :func:`reject_unknown_query` (an app-wide
dependency, installed by ``create_app``) answers such a request with a 422 naming every unknown
parameter and listing the ones the operation takes.

What an operation takes is read from the app's own OpenAPI document, once per app: the document
is what clients are told, so the server accepts exactly that (a test holds the two equal). The
rule is the API's (``/v1/...``): the probes and ``/metrics`` serve load balancers and scrapers,
which may add a cache-busting parameter and must never be refused for it.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request

from api.errors import FieldError, InvalidInput

API_PREFIX = "/v1/"

Operation = tuple[str, str]
"""(HTTP method, path template), e.g. ``("GET", "/v1/agents/{agent_id}")``."""


def documented_query_names(app: FastAPI) -> dict[Operation, frozenset[str]]:
    """Every operation's query parameter names, as the app's OpenAPI document lists them."""
    names: dict[Operation, frozenset[str]] | None = getattr(app.state, "query_names", None)
    if names is None:
        names = {}
        for path, operations in app.openapi().get("paths", {}).items():
            for method, operation in operations.items():
                parameters: list[dict[str, Any]] = operation.get("parameters", [])
                names[(method.upper(), path)] = frozenset(
                    p["name"] for p in parameters if p.get("in") == "query"
                )
        app.state.query_names = names
    return names


async def reject_unknown_query(request: Request) -> None:
    """Refuse a request carrying a query parameter its operation does not document."""
    if not request.scope.get("query_string"):
        return  # the common case, the assignment's hot path included: nothing to check
    route = request.scope.get("route")
    template = getattr(route, "path", None)
    if template is None or not template.startswith(API_PREFIX):
        return
    method = "GET" if request.method == "HEAD" else request.method
    known = documented_query_names(request.app).get((method, template))
    if known is None:
        return  # an operation left out of the document (the docs pages): nothing to hold it to
    unknown = sorted(set(request.query_params) - known)
    if unknown:
        takes = ", ".join(sorted(known)) if known else "no query parameters"
        raise InvalidInput(
            [
                FieldError(f"query.{name}", f"unknown query parameter; this takes {takes}")
                for name in unknown
            ]
        )
