"""Domain errors and the one map that turns every error into RFC 9457 problem+json.

Services raise these; routes never build error responses themselves and nothing below
``routes/`` raises ``HTTPException``::

    ServiceError                 (base; carries status, title and a problem type slug)
     ├── InvalidInput       422  bad input, one FieldError per offending field
     │    └── IdempotencyMismatch 422  same Idempotency-Key, different request
     ├── NotFound           404  also for another tenant's object: never confirm it exists
     ├── Conflict           409  the request clashes with stored state (duplicate id, in use)
     │    ├── IdempotencyInProgress  the first request with this key is still running
     │    └── IdempotencyUnreadable  its stored response can no longer be decrypted
     ├── Unauthenticated    401  missing, malformed, unknown or revoked API key
     ├── Forbidden          403  the key lacks the scope (for the caller's own tenant only)
     ├── PayloadTooLarge    413  the request body is longer than its route's limit (http/gate.py)
     ├── TooManyRequests    429  the tenant's rate limit or solve cap; says when to retry
     ├── Overloaded         503  a shared resource (the solve pool) is full; says when to retry
     └── Unavailable        503  the database cannot serve now (with Retry-After)

Request validation errors (pydantic), the solver's ``ProblemError``, integrity errors the
database catches and unknown routes all come out in the same shape: ``type``, ``title``,
``status``, ``detail``, ``instance`` and, for bad input, ``errors: [{field, reason}]`` — at
most :data:`MAX_LISTED_ERRORS` of them, the detail saying how many there were.
Bad input is always a 4xx; a 500 means a bug and says nothing about internals. A database that
does not answer (unreachable, connection lost, pool exhausted, lock or statement timeout) is a
503 with ``Retry-After`` wherever it surfaces: :func:`database_error` is the one place that
decides what a database failure answers, for the handlers here and for middleware below them.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import iter_route_contexts
from pydantic_core import ErrorDetails
from sqlalchemy.exc import DataError, DBAPIError, DisconnectionError, IntegrityError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.db import outage
from solver.errors import ProblemError

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
PROBLEM_BASE = "/problems/"
# An answer lists this many field errors at most: listing all of an import's bad rows makes an
# answer several times the import's size (figures: benchmarks/README.md, Hostile bodies). The
# first hundred show the pattern; the detail gives the total.
MAX_LISTED_ERRORS = 100


@dataclass(frozen=True, slots=True)
class FieldError:
    """One offending field: a dotted path (``skills.billing``, ``query.limit``) and why.

    ``row`` is set by bulk imports: services give the 0-based index of the row in what they
    were given; :func:`api.common.bulk.import_rows` turns it into the row the client sees
    (CSV: the spreadsheet's row number).
    """

    field: str
    reason: str
    row: int | None = None

    def at_row(self, row: int) -> FieldError:
        return FieldError(self.field, self.reason, row)

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"field": self.field, "reason": self.reason}
        if self.row is not None:
            out["row"] = self.row
        return out


class ServiceError(Exception):
    status: int = 400
    title: str = "Bad request"
    slug: str = "bad-request"

    def __init__(self, detail: str, *, errors: Sequence[FieldError] = ()) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = tuple(errors)

    def headers(self) -> dict[str, str]:
        return {}


class InvalidInput(ServiceError):
    status = 422
    title = "Invalid input"
    slug = "invalid-input"

    def __init__(self, errors: Iterable[FieldError], detail: str | None = None) -> None:
        errs = tuple(errors)
        if detail is None:
            detail = "; ".join(f"{e.field}: {e.reason}" for e in errs[:5]) or "invalid input"
        super().__init__(detail, errors=errs)

    @classmethod
    def one(cls, field: str, reason: str) -> InvalidInput:
        return cls([FieldError(field, reason)])


class IdempotencyMismatch(InvalidInput):
    title = "Idempotency key reused with a different request"
    slug = "idempotency-mismatch"


class NotFound(ServiceError):
    status = 404
    title = "Not found"
    slug = "not-found"

    def __init__(self, resource: str, ident: str) -> None:
        super().__init__(f"{resource} {ident!r} not found")
        self.resource = resource
        self.ident = ident


class Conflict(ServiceError):
    status = 409
    title = "Conflict"
    slug = "conflict"


class IdempotencyInProgress(Conflict):
    slug = "idempotency-in-progress"


class IdempotencyUnreadable(Conflict):
    slug = "idempotency-unreadable"


class Unauthenticated(ServiceError):
    status = 401
    title = "Unauthenticated"
    slug = "unauthenticated"

    def headers(self) -> dict[str, str]:
        return {"WWW-Authenticate": 'Bearer realm="switchboard"'}


class Forbidden(ServiceError):
    status = 403
    title = "Forbidden"
    slug = "forbidden"


class _RetryLater(ServiceError):
    """An answer that says when to come back: ``Retry-After`` in whole seconds (at least 1),
    plus whatever else the limit advertises (the ``RateLimit`` fields, api/http/ratelimit.py)."""

    def __init__(self, detail: str, *, retry_after: int, headers: dict[str, str] | None = None):
        super().__init__(detail)
        self.retry_after = max(1, retry_after)
        self._headers = {"Retry-After": str(self.retry_after), **(headers or {})}

    def headers(self) -> dict[str, str]:
        return self._headers


class TooManyRequests(_RetryLater):
    """The tenant is over one of its own limits (its rate, its concurrent solves)."""

    status = 429
    title = "Too many requests"
    slug = "rate-limited"


class Overloaded(_RetryLater):
    """Capacity shared by every tenant is used up: not the caller's doing, so a 503."""

    status = 503
    title = "Service unavailable"
    slug = "overloaded"


class Unavailable(ServiceError):
    status = 503
    title = "Service unavailable"
    slug = "unavailable"

    def __init__(self, detail: str, *, retry_after: int) -> None:
        super().__init__(detail)
        self.retry_after = retry_after

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}


# Seconds a client should wait: a busy database frees up in a moment, an unreachable one not.
RETRY_AFTER_BUSY = 1
RETRY_AFTER_DOWN = 5


def database_unavailable_problem(exc: BaseException, *, state: Any = None) -> Unavailable | None:
    """The 503 to answer when ``exc`` means the database cannot serve now, or None.

    Pass the app's ``state`` to log the outage there: one line per kind of failure every few
    seconds, naming the exception and the driver's first line, never the SQL or its parameters.
    Middleware that touches the database (idempotency) calls this with what it caught.
    """
    found = outage.classify(exc)
    if found is None:
        return None
    if state is not None:
        throttled = getattr(state, "db_outage_log", None)
        if throttled is not None:
            throttled.outage("requests", found)
    if found.busy:
        return Unavailable("the database is busy; retry shortly", retry_after=RETRY_AFTER_BUSY)
    return Unavailable("the database is not answering; retry shortly", retry_after=RETRY_AFTER_DOWN)


class PayloadTooLarge(ServiceError):
    status = 413
    title = "Payload too large"
    slug = "payload-too-large"

    def __init__(self, limit: int) -> None:
        reason = f"must be at most {limit} bytes"
        super().__init__(f"body: {reason}", errors=[FieldError("body", reason)])


class UnsupportedMediaType(ServiceError):
    """A body in a media type the operation does not take (a JSON body sent as text/plain, or
    with no Content-Type at all): names the types it does take."""

    status = 415
    title = "Unsupported media type"
    slug = "unsupported-media-type"

    def __init__(self, accepted: Sequence[str], *, sent: str | None, patch: bool = False) -> None:
        listed = ", ".join(accepted)
        said = f"'{sent}'" if sent else "no Content-Type"
        reason = f"send one of: {listed}"
        super().__init__(
            f"this operation takes {listed}; the request sent {said}",
            errors=[FieldError("header.content-type", reason)],
        )
        self.accepted = tuple(accepted)
        self.patch = patch

    def headers(self) -> dict[str, str]:
        # RFC 5789: a PATCH refused for its media type says which it accepts.
        return {"Accept-Patch": ", ".join(self.accepted)} if self.patch else {}


def problem_response(
    request: Request,
    *,
    status: int,
    title: str,
    slug: str,
    detail: str,
    errors: Sequence[FieldError] = (),
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body = problem_body(
        status=status,
        title=title,
        slug=slug,
        detail=detail,
        instance=request.url.path,
        errors=errors,
    )
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def problem_body(
    *,
    status: int,
    title: str,
    slug: str,
    detail: str,
    instance: str,
    errors: Sequence[FieldError] = (),
) -> dict[str, Any]:
    """The RFC 9457 document every error answer carries (also written by ASGI middleware,
    which has no ``Request``)."""
    body: dict[str, Any] = {
        "type": PROBLEM_BASE + slug,
        "title": title,
        "status": status,
        "detail": detail,
        "instance": instance,
    }
    if errors:
        listed = errors[:MAX_LISTED_ERRORS]
        body["errors"] = [e.as_dict() for e in listed]
        if len(listed) < len(errors):
            body["detail"] = f"{detail} ({len(listed)} of {len(errors)} errors listed)"
    return body


def _loc_to_field(loc: Sequence[str | int]) -> str:
    """``("body", "skills", "billing")`` -> ``skills.billing``; ``("body", 3, "id")`` -> ``[3].id``.

    Body fields are named bare (they are what a client sends most); query, path and header
    parameters keep their source as a prefix (``query.limit``).
    """
    parts = list(loc)
    if parts and parts[0] == "body":
        parts = parts[1:]
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "body"


def _reason(err: ErrorDetails) -> str:
    msg = str(err.get("msg", "invalid"))
    # pydantic prefixes errors raised by our validators with "Value error, "; drop the noise.
    for prefix in ("Value error, ", "Assertion failed, "):
        if msg.startswith(prefix):
            msg = msg[len(prefix) :]
    return msg


def validation_field_errors(errors: Iterable[ErrorDetails]) -> list[FieldError]:
    out: list[FieldError] = []
    for err in errors:
        loc = list(err.get("loc", ()))
        # A union/tagged type adds the member's name to the path: it is not a field.
        loc = [p for p in loc if not (isinstance(p, str) and p.startswith("function-"))]
        if err.get("type") == "json_invalid":
            # FastAPI puts the character offset in the path: ("body", 17) is not a field "[17]".
            out.append(FieldError("body", f"{_reason(err)} at character {loc[-1]}"))
            continue
        out.append(FieldError(_loc_to_field(loc), _reason(err)))
    return out


async def _service_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ServiceError)
    return problem_response(
        request,
        status=exc.status,
        title=exc.title,
        slug=exc.slug,
        detail=exc.detail,
        errors=exc.errors,
        headers=exc.headers() or None,
    )


async def _request_validation(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = validation_field_errors(exc.errors())
    return problem_response(
        request,
        status=422,
        title=InvalidInput.title,
        slug=InvalidInput.slug,
        detail="; ".join(f"{e.field}: {e.reason}" for e in errors[:5]),
        errors=errors,
    )


async def _solver_problem(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ProblemError)
    return problem_response(
        request,
        status=422,
        title=InvalidInput.title,
        slug=InvalidInput.slug,
        detail=str(exc),
        errors=[FieldError(exc.field, exc.reason)],
    )


def database_error(exc: BaseException, *, state: Any = None) -> ServiceError | None:
    """What a request that met ``exc`` from the database answers, or None when ``exc`` is no
    database failure a client can act on (a bug): one map for the exception handlers below and
    for the idempotency middleware, which commits beneath them. ``state`` (the app's) lets an
    outage be logged, throttled (:func:`database_unavailable_problem`)."""
    if isinstance(exc, IntegrityError):
        # Services check references and uniqueness first; reaching here means a concurrent
        # writer won a race (or a constraint we did not pre-check, or a deferred one at
        # commit). Either way it is the client's conflict.
        log.info("integrity error turned into 409: %s", exc.__class__.__name__)
        return Conflict("the request conflicts with the current state; retry or reload")
    if isinstance(exc, DataError):
        # The database refused a value the schemas let through (PostgreSQL: a NUL character in
        # text, a number out of range). It is the input's fault, so a 422, never a 500.
        log.info("database refused a value: %s", exc.__class__.__name__)
        return InvalidInput(
            [], detail="a value cannot be stored (for example it contains a NUL character)"
        )
    # A lock wait timed out, the server is away, the pool is exhausted: retryable.
    return database_unavailable_problem(exc, state=state)


async def _database(request: Request, exc: Exception) -> JSONResponse:
    error = database_error(exc, state=request.app.state)
    if error is None:  # not the database's state nor the input's: a bug
        return await _unhandled(request, exc)
    return await _service_error(request, error)


async def _http_exception(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 400:
        # Nothing of ours raises HTTPException: a 400 is FastAPI failing to parse the body (not
        # UTF-8, a broken form). That is bad input like any other, so it is the documented 422
        # naming the body, not an undocumented 400 (found by tests/api/test_schemathesis.py).
        return problem_response(
            request,
            status=422,
            title=InvalidInput.title,
            slug=InvalidInput.slug,
            detail=f"body: {exc.detail}",
            errors=[FieldError("body", "could not be parsed: send UTF-8 JSON")],
        )
    headers = dict(exc.headers) if exc.headers else {}
    if exc.status_code == 405:
        headers["Allow"] = _allowed_methods(request)
    titles = {404: "Not found", 405: "Method not allowed", 413: "Payload too large"}
    slugs = {404: "not-found", 405: "method-not-allowed", 413: "payload-too-large"}
    return problem_response(
        request,
        status=exc.status_code,
        title=titles.get(exc.status_code, "HTTP error"),
        slug=slugs.get(exc.status_code, "http-error"),
        detail=str(exc.detail),
        headers=headers or None,
    )


def _allowed_methods(request: Request) -> str:
    """Every method some route of the app answers on this path, for a 405's ``Allow``.

    The router answers 405 from the first route whose path matches and names only that route's
    methods; a path served by several routes (GET list and POST create) needs them all.
    """
    # Routes match the path below the app's root path (as the router does).
    path, root = request.scope["path"], request.scope.get("root_path", "")
    path = path[len(root) :] if root and path.startswith(root) else path
    methods: set[str] = set()
    for route in iter_route_contexts(request.app.routes):
        regex = getattr(route, "path_regex", None)
        if regex is not None and route.methods and regex.match(path):
            methods |= route.methods
    return ", ".join(sorted(methods))


async def _unhandled(request: Request, exc: Exception) -> JSONResponse:
    # Middleware outside the routes' handlers (idempotency) lets database errors end up here.
    unavailable = database_unavailable_problem(exc, state=request.app.state)
    if unavailable is not None:
        return await _service_error(request, unavailable)
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return problem_response(
        request,
        status=500,
        title="Internal server error",
        slug="internal",
        detail="an unexpected error occurred; it has been logged",
    )


def install(app: FastAPI) -> None:
    """Register the error map on ``app``."""
    app.add_exception_handler(ServiceError, _service_error)
    app.add_exception_handler(RequestValidationError, _request_validation)
    app.add_exception_handler(ProblemError, _solver_problem)
    app.state.db_outage_log = outage.ThrottledLog(log)
    # DBAPIError covers IntegrityError, DataError, OperationalError and InterfaceError.
    for database_failure in (DBAPIError, DisconnectionError, PoolTimeout):
        app.add_exception_handler(database_failure, _database)
    app.add_exception_handler(StarletteHTTPException, _http_exception)
    app.add_exception_handler(Exception, _unhandled)
