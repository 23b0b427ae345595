"""Unknown query parameters are refused, not ignored.

FastAPI reads the query parameters an operation declares and silently drops the rest, so a
client that sends ``?timezone=Europe/Berlin`` to an operation that has no such parameter gets an
answer in UTC and no hint that it was not understood. :func:`reject_unknown_query` (an app-wide
dependency, installed by ``create_app``) answers such a request with a 422 naming every unknown
parameter and listing the ones the operation takes.

What an operation takes is what FastAPI reads for it: the query parameters of the route's own
dependant and of every dependency below it (the ones the OpenAPI document lists; a test holds
the two equal), found once per route and kept. The rule is the API's (``/v1/...``): the probes
and ``/metrics`` serve load balancers and scrapers, which may add a cache-busting parameter and
must never be refused for it.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request

from api.errors import FieldError, InvalidInput

API_PREFIX = "/v1/"

# (path template, methods) -> the query parameter names of that operation. The same operation
# has the same parameters in every app of the process (tests build many), so the key is the
# operation, not the route object.
_known: dict[tuple[str, tuple[str, ...]], frozenset[str]] = {}


def query_names(dependant: Any) -> frozenset[str]:
    """The query parameter names (as sent: aliases) a FastAPI dependant and its dependencies
    read."""
    names = {param.alias for param in dependant.query_params}
    for sub in dependant.dependencies:
        names |= query_names(sub)
    return frozenset(names)


async def reject_unknown_query(request: Request) -> None:
    """Refuse a ``/v1`` request carrying a query parameter its operation does not take."""
    if not request.scope.get("query_string"):
        return  # the common case, the assignment's hot path included: nothing to check
    route = request.scope.get("route")
    dependant = getattr(route, "dependant", None)
    path = str(getattr(route, "path", ""))
    if dependant is None or not path.startswith(API_PREFIX):
        return
    key = (path, tuple(sorted(getattr(route, "methods", None) or ())))
    known = _known.get(key)
    if known is None:
        known = _known.setdefault(key, query_names(dependant))
    unknown = sorted(set(request.query_params) - known)
    if unknown:
        takes = ", ".join(sorted(known)) if known else "no query parameters"
        reason = f"unknown query parameter; this takes {takes}"
        raise InvalidInput([FieldError(f"query.{name}", reason) for name in unknown])
