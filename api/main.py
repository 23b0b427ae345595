"""The FastAPI application factory: ``create_app(settings) -> FastAPI``.

Nothing is built at import time. The engine and session factory are created in the lifespan
and disposed of when the app stops, so every test (and every worker process) owns its own.
``clock`` is injectable so tests can pin "now"; production uses the aware UTC wall clock.
"""

from __future__ import annotations

import gc
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

from fastapi import Depends, FastAPI

from api import errors
from api.db.engine import make_engine, make_session_factory, writer_engine
from api.http import docs, gate, links, metrics, query, ratelimit, security
from api.http.deps import Clock
from api.idempotency import keys as idempotency_keys
from api.idempotency.middleware import IdempotencyMiddleware, Replay, replay_response
from api.jobs import runtime as jobs_runtime
from api.settings import Environment, Settings
from api.solve.pool import SolvePool

API_TITLE = "Switchboard"
API_DESCRIPTION = (
    "Scheduling and routing optimization for support teams. Authenticate with "
    "`Authorization: Bearer <api key>`. Errors are RFC 9457 problem+json."
)


IDEMPOTENCY_PARAMETER: dict[str, Any] = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "description": (
        "Makes a retry safe: the request runs at most once, and its first response is stored "
        "with its effects (in one transaction) and replayed to the same API key for the same "
        "request; the same key with a different request is a 422, and while the first is still "
        "running a 409. Keys are per API key: another key's requests never see them. Printable "
        "ASCII, at most 255 characters (a UUID is a good key)."
    ),
    # Exactly what the server accepts (api.idempotency.keys: one definition for both).
    "schema": {
        "type": "string",
        "minLength": 1,
        "maxLength": idempotency_keys.MAX_LENGTH,
        "pattern": idempotency_keys.PATTERN,
    },
}


UNSUPPORTED_MEDIA_TYPE_RESPONSE: dict[str, Any] = {
    "description": (
        "The body's Content-Type is not one this operation takes (`errors` names "
        "`header.content-type` and the types it takes)"
    ),
    "content": {errors.PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/ProblemDetails"}}},
}


def _wall_clock() -> datetime:
    return datetime.now(UTC)


def create_app(settings: Settings | None = None, *, clock: Clock | None = None) -> FastAPI:
    """Build the service. ``settings`` defaults to reading the environment *now*."""
    settings = Settings() if settings is None else settings

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = make_engine(settings)
        app.state.engine = engine
        app.state.write_engine = writer_engine(engine)
        # Keys cached in this process are valid for this database only (api.http.deps).
        app.state.auth_cache_scope = engine.url.render_as_string(hide_password=True)
        app.state.session_factory = make_session_factory(engine)
        from api.webhooks.delivery import start_background

        stop_webhooks = start_background(app.state.session_factory, settings, clock=app.state.clock)
        from api import wiring

        jobs_runtime.start(
            app,
            wiring.job_handlers(settings, calendar_metrics=app.state.calendar_metrics),
            on_finish=app.state.metrics.job_finished,
            passes=wiring.housekeeping_passes(),
        )
        # Per-tenant rate limits and the bounded solve pool (api/http/ratelimit.py,
        # api/solve/pool.py).
        app.state.rate_limiter = ratelimit.build(settings, app.state.clock)
        app.state.solve_pool = SolvePool.from_settings(settings)
        app.state.solve_pool.warm()
        if settings.environment is not Environment.TEST:
            # The objects of a started service (modules, models, routes) never die, yet every
            # full collection walks them: pauses long enough to set the assign endpoint's p99
            # (figures: benchmarks/README.md, Figures behind design choices). Frozen,
            # collections only look at what requests allocate. (Tests build hundreds of apps
            # in one process: there the heap is left alone.)
            gc.collect()
            gc.freeze()
        try:
            yield
        finally:
            app.state.solve_pool.shutdown()
            if app.state.rate_limiter is not None:
                await app.state.rate_limiter.aclose()
            jobs_runtime.stop(app)
            stop_webhooks()
            engine.dispose()

    from api import __version__

    app = FastAPI(
        title=API_TITLE,
        description=API_DESCRIPTION,
        version=__version__,
        lifespan=lifespan,
        # Served by api.http.docs from the installed package, not FastAPI's CDN pages.
        docs_url=None,
        redoc_url=None,
        # A query parameter an operation does not take is a 422, not ignored (api/http/query.py).
        dependencies=[Depends(query.reject_unknown_query)],
    )
    app.state.settings = settings
    app.state.clock = clock or _wall_clock
    # Failed call-link lookups per client address (api/links/limiter.py).
    from api.links.limiter import LookupLimiter

    app.state.link_limiter = LookupLimiter.from_settings(settings)
    errors.install(app)
    app.add_exception_handler(Replay, replay_response)
    app.add_middleware(IdempotencyMiddleware)
    # Outside the idempotency middleware: a tenant over its rate is refused before any body
    # is read (api/http/ratelimit.py).
    app.add_middleware(ratelimit.RateLimitMiddleware)
    gate.install(app)  # outside both: the key and the body's size before anything reads a body
    # Outside the gate: its answers under /c (a 413, a 415) carry the pages' headers too.
    from api.customer import headers as customer_headers

    customer_headers.install(app)
    _wire(app)
    metrics.install(app)  # outermost: times every request, replays included
    app.state.metrics.registry.register(jobs_runtime.JobDepth(app.state))
    from api.calendar_sync import metrics as calendar_metrics

    app.state.calendar_metrics = calendar_metrics.install(app.state, app.state.metrics.registry)
    _include_routers(app)
    docs.install(app)
    _document_openapi(app)
    return app


def _document_openapi(app: FastAPI) -> None:
    """Say in the OpenAPI document what middleware and the error map do: errors are
    application/problem+json, and every POST accepts an ``Idempotency-Key``; and add the links
    between operations."""
    base = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = base()
        for path in schema.get("paths", {}).values():
            for method, operation in path.items():
                if method == "post":
                    operation.setdefault("parameters", []).append(IDEMPOTENCY_PARAMETER)
                if "requestBody" in operation:  # the gate's 415 (api/http/gate.py)
                    operation["responses"].setdefault("415", UNSUPPORTED_MEDIA_TYPE_RESPONSE)
                for status, response in operation.get("responses", {}).items():
                    content = response.get("content", {})
                    if str(status)[:1] in "45" and "application/json" in content:
                        content[errors.PROBLEM_JSON] = content.pop("application/json")
        # What we send: the receiver's answer is any 2xx (or a retry), never FastAPI's 422 for
        # a body it did not validate; with those gone, so are their unreferenced schemas.
        for hook in schema.get("webhooks", {}).values():
            for operation in hook.values():
                operation.get("responses", {}).pop("422", None)
        if "HTTPValidationError" not in json.dumps(schema.get("paths", {})):
            for name in ("HTTPValidationError", "ValidationError"):
                schema.get("components", {}).get("schemas", {}).pop(name, None)
        from api.tickets.routes import EXTRA_SCHEMAS

        schema.setdefault("components", {}).setdefault("schemas", {}).update(EXTRA_SCHEMAS)
        security.add_security(app, schema)  # each operation's scopes, from its auth dependency
        links.add_links(schema)  # create -> read/update/delete/use flows (api/http/links.py)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def _include_routers(app: FastAPI) -> None:
    from api.assignment import routes as assignment
    from api.bookings import routes as bookings
    from api.bookings import service as booking_service
    from api.calendar_push import routes as calendar_push
    from api.calendar_sync import routes as calendar_connections
    from api.jobs import routes as jobs
    from api.keys import routes as api_keys
    from api.kpis import routes as kpis
    from api.links import routes as links
    from api.ops import routes as health
    from api.org.agents import routes as agents
    from api.org.capabilities import routes as capabilities
    from api.org.intervals import routes as intervals
    from api.org.skills import routes as skills
    from api.org.teams import routes as teams
    from api.planning import routes as planning
    from api.policies import routes as policies
    from api.problems import routes as problems
    from api.solve import routes as solve
    from api.tickets import routes as tickets
    from api.webhooks import routes as webhooks

    # The assignment routes first: FastAPI matches a request against the routes in order (a
    # regex each), and POST /v1/tickets/{id}/assign is the hot path: registered among the last,
    # matching would be a large share of its HTTP CPU (figures: benchmarks/README.md, Figures
    # behind design choices). No other route matches its paths, so order changes nothing.
    for router in (
        assignment.router,
        health.router,
        api_keys.router,
        skills.router,
        teams.router,
        agents.router,
        intervals.shifts_router,
        intervals.busy_router,
        capabilities.router,
        policies.router,
        tickets.router,
        solve.router,
        webhooks.router,
        calendar_connections.router,
        jobs.router,
        kpis.router,
        planning.router,
        health.metrics_router,
        bookings.router,
        links.router,
        problems.router,
        calendar_push.router,
    ):
        app.include_router(router)
    from api.customer import routes as customer

    customer.install(app)  # the customer's pages under /c (HTML, no API key), and their files
    app.webhooks.include_router(webhooks.events_router)  # OpenAPI's ``webhooks``: what we send
    app.add_exception_handler(booking_service.BookingRefused, bookings.booking_refused)


def _wire(app: FastAPI) -> None:
    """The listeners and per-process caches (:mod:`api.wiring`); the job worker is built in the
    lifespan, once the engine exists."""
    from api import wiring

    wiring.install_listeners()
    wiring.install_caches(app.state)
    app.state.job_worker = None
