"""Dependencies as ``Annotated`` aliases, so routes read like plain code::

    @router.get("/{agent_id}")
    def read(agent_id: str, session: SessionDep, auth: ReadAuth) -> AgentOut: ...

Auth aliases check the key's scopes (``admin`` passes every check):

    ReadAuth       any valid key of the tenant
    HelpdeskAuth   helpdesk or admin: tickets, assignment, bookings, agents' presence
    PlannerAuth    planner or admin: what-if planning (/v1/planning: baseline export, runs)
    AdminAuth      admin: API keys, the organisation (skills, teams, agents, shifts, ...),
                   policies, calendar connections

A planner key reads the live organisation and tickets (``ReadAuth``) but never changes them:
the only routes that admit it to write are its own planning runs (and the stateless
``/v1/solve``, which stores nothing). ``tests/api/planning/test_read_only.py`` walks every
route to hold that.

A missing or bad key is a 401; a valid key without the scope is a 403 (it only ever concerns
the caller's own tenant, so it reveals nothing about others).

The cheap dependencies (settings, clock, now, paging, authentication, scopes) are ``async``: FastAPI
runs a plain ``def`` dependency in its thread pool, a hop of tens of microseconds (more under
load) per dependency per request. Authentication reads the process's short-lived key cache
(:class:`api.auth.PrincipalCache`) and only goes to the database, in a worker
thread, on a miss.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

import anyio.to_thread
from fastapi import Depends, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from api import auth
from api.auth import Principal
from api.enums import Scope
from api.errors import Forbidden, InvalidInput, Unauthenticated, UnsupportedMediaType
from api.http import ratelimit
from api.idempotency import middleware as idempotency
from api.settings import PAGE_SIZE_LIMIT, Settings

Clock = Callable[[], datetime]

SECURITY_SCHEME = "ApiKey"
_bearer = HTTPBearer(
    auto_error=False,
    scheme_name=SECURITY_SCHEME,
    description=(
        "An API key of your tenant: `Authorization: Bearer sb_...`. A key holds scopes "
        "(helpdesk, planner, admin; admin passes every check): each operation's security "
        "requirement lists the scopes that admit it, none meaning any valid key."
    ),
)


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_clock(request: Request) -> Clock:
    clock: Clock = request.app.state.clock
    return clock


async def get_now(request: Request) -> datetime:
    """The request's "now", read once so every row a request writes agrees on it."""
    now: datetime = request.app.state.clock()
    return now


# Methods whose units of work only read: the rest take SQLite's write lock up front.
_READ_ONLY = frozenset({"GET", "HEAD", "OPTIONS"})


def get_session(request: Request) -> Iterator[Session]:
    """The request's unit of work. Routes commit explicitly; leaving the block rolls back
    anything uncommitted. Writing requests begin with SQLite's write lock
    (:func:`api.db.engine.writer_engine`); a POST with an Idempotency-Key gets the session its
    answer will be stored with (:mod:`api.idempotency.middleware`), which the middleware closes."""
    state = request.app.state
    bind = state.engine if request.method in _READ_ONLY else state.write_engine
    pending = idempotency.keyed(request)
    if pending is not None:
        yield pending.session(bind)
        return
    with state.session_factory(bind=bind) as session:
        yield session


def principal_for(app_state: Any, plaintext: str) -> Principal | None:
    """The key's principal from the process cache, or None when it is not cached (yet)."""
    return auth.principal_cache.get(_database_of(app_state), plaintext)


def load_principal(app_state: Any, plaintext: str) -> Principal | None:
    """The key's principal, read from the database on a cache miss (blocking: call it from a
    worker thread). A short session of its own: the request's unit of work stays unopened, so a
    route can still begin it with the tenant lock (api.db.locks.lock_tenant)."""
    return auth.authenticate_cached(
        session_factory=app_state.session_factory,
        database=_database_of(app_state),
        plaintext=plaintext,
    )


def _database_of(app_state: Any) -> str:
    """The key cache's scope: the app's database (set once in the lifespan, ``api.main``)."""
    database: str = app_state.auth_cache_scope
    return database


async def authenticate(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    cached = getattr(request.state, "principal", None)
    if isinstance(cached, Principal):
        return cached
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthenticated("send an API key as 'Authorization: Bearer <key>'")
    app_state = request.app.state
    plaintext = credentials.credentials
    principal = principal_for(app_state, plaintext)
    if principal is None:
        principal = await anyio.to_thread.run_sync(load_principal, app_state, plaintext)
    if principal is None:
        raise Unauthenticated("unknown or revoked API key")
    request.state.principal = principal
    return principal


Authorizer = Callable[[Request, HTTPAuthorizationCredentials | None], Awaitable[Principal]]
"""An auth dependency: FastAPI passes the request and the bearer credentials, if any."""


def require(*scopes: Scope) -> Authorizer:
    """A dependency admitting keys that hold any of ``scopes`` (admin always passes).

    It authenticates itself rather than depending on :func:`authenticate`: one level less of
    FastAPI's dependency solving on every request."""

    async def check(
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ) -> Principal:
        principal = await authenticate(request, credentials)
        # Per-tenant rate limit (api/http/ratelimit.py): right after the key is known, before the
        # scope check, so a key's forbidden calls count against its tenant too.
        await ratelimit.check(request, principal)
        if scopes and not any(principal.allows(s) for s in scopes):
            wanted = " or ".join(s.value for s in scopes)
            raise Forbidden(f"this API key lacks the {wanted} scope")
        # Only now, authorized, may a keyed POST claim (or replay) its Idempotency-Key.
        await idempotency.claim(request, principal)
        return principal

    check.required_scopes = scopes  # type: ignore[attr-defined]  # read by required_scopes()
    return check


def required_scopes(call: object) -> tuple[Scope, ...] | None:
    """The scopes an auth dependency made by :func:`require` admits (() for any valid key), or
    None when ``call`` is no such dependency (api/http/security.py documents them)."""
    scopes = getattr(call, "required_scopes", None)
    return None if scopes is None else tuple(scopes)


@dataclass(frozen=True, slots=True)
class PageParams:
    cursor: str | None
    limit: int


async def get_page(
    request: Request,
    cursor: Annotated[
        str | None, Query(max_length=512, description="`next_cursor` of the previous page")
    ] = None,
    limit: Annotated[
        int | None,
        Query(
            ge=1,
            le=PAGE_SIZE_LIMIT,
            description=(
                f"Page size (default 50; at most {PAGE_SIZE_LIMIT}, or less where the "
                "server's operator set a lower maximum)"
            ),
        ),
    ] = None,
) -> PageParams:
    settings: Settings = request.app.state.settings
    if limit is None:
        limit = settings.page_size_default
    if limit > settings.page_size_max:
        raise InvalidInput.one("query.limit", f"must be at most {settings.page_size_max}")
    return PageParams(cursor=cursor, limit=limit)


async def get_import_rows(request: Request) -> list[dict[str, Any]]:
    """The rows of a bulk import: a JSON array, a CSV body, or a CSV file in a form upload."""
    from api.common import bulk

    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "multipart/form-data":
        # The context manager closes the spooled upload files (else a ResourceWarning).
        async with request.form() as form:
            upload = form.get("file")
            if upload is None or isinstance(upload, str):
                raise InvalidInput.one("file", "upload the CSV (or JSON) as the form field 'file'")
            body = await upload.read()
            is_json = (upload.filename or "").lower().endswith(".json")
        return bulk.parse_json_rows(body) if is_json else bulk.parse_csv_rows(body)
    body = await request.body()
    if content_type in ("text/csv", "application/csv"):
        return bulk.parse_csv_rows(body)
    if content_type == "application/json":
        return bulk.parse_json_rows(body)
    # The gate refuses a body in any other type (api.http.gate); this is an empty one.
    raise UnsupportedMediaType(tuple(IMPORT_OPENAPI["requestBody"]["content"]), sent=content_type)


SettingsDep = Annotated[Settings, Depends(get_settings)]
ClockDep = Annotated[Clock, Depends(get_clock)]
NowDep = Annotated[datetime, Depends(get_now)]
SessionDep = Annotated[Session, Depends(get_session)]
ReadAuth = Annotated[Principal, Depends(require())]
HelpdeskAuth = Annotated[Principal, Depends(require(Scope.HELPDESK))]
PlannerAuth = Annotated[Principal, Depends(require(Scope.PLANNER))]
AdminAuth = Annotated[Principal, Depends(require(Scope.ADMIN))]
PageDep = Annotated[PageParams, Depends(get_page)]
ImportRowsDep = Annotated[list[dict[str, Any]], Depends(get_import_rows)]

# The request body of every import endpoint, documented for clients and schemathesis.
IMPORT_OPENAPI: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": (
            "The rows: a JSON array of objects, or CSV with a header row (sent as the body or "
            "as an uploaded file). A refusal names each bad row in `errors[].row`: for CSV the "
            "row as a spreadsheet numbers it (the header is row 1, the first data row is 2), "
            "for a JSON array the element's 0-based index."
        ),
        "content": {
            "application/json": {"schema": {"type": "array", "items": {"type": "object"}}},
            "text/csv": {"schema": {"type": "string"}},
            "application/csv": {"schema": {"type": "string"}},
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {"file": {"type": "string", "format": "binary"}},
                    "required": ["file"],
                }
            },
        },
    }
}
