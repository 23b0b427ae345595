"""Liveness and readiness probes for load balancers (no authentication).

``/healthz`` says the process is up and never waits on anything: it runs on the event loop
(not in a worker thread) and touches no database, so it answers while every worker thread is
stuck on a database that does not answer — restarting the process would not help then.
``/readyz`` says whether this process can serve: the database must answer a ``SELECT 1``
within ``db_ready_timeout_seconds``. The check runs in a worker thread of its own small pool,
so neither a busy request pool nor a hung database can make the probe itself hang.

``/metrics`` is the Prometheus text format. Not tenant-authenticated, so it carries no tenant
data: only counts by route template and outcome (see :mod:`api.http.metrics`).
"""

from __future__ import annotations

import logging
from typing import Any

import anyio
import anyio.to_thread
from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import Engine, text
from sqlalchemy.exc import SQLAlchemyError

from api.db import outage
from api.errors import PROBLEM_JSON, RETRY_AFTER_DOWN, Unavailable, problem_body

router = APIRouter(tags=["health"])
# /metrics: registered after every other route, which is its place in the OpenAPI document.
metrics_router = APIRouter(tags=["health"])
log = logging.getLogger(__name__)

# Probes waiting on a dead database at once; more just answer "unavailable" when they time out.
_READY_THREADS = 2

_UNAVAILABLE_DOC: dict[int | str, dict[str, Any]] = {
    503: {
        "description": "The database did not answer in time (problem+json, with Retry-After)",
        "content": {PROBLEM_JSON: {"schema": {"type": "object"}}},
    }
}


@router.get("/healthz", summary="The process is up")
async def healthz() -> dict[str, str]:
    """Liveness: answers at once while the process runs, without touching the database."""
    return {"status": "ok"}


def _database_answers(engine: Engine, state: Any) -> bool:
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except SQLAlchemyError as exc:
        found = outage.classify(exc)
        if found is not None:
            state.db_outage_log.outage("readiness", found)
        else:
            log.warning("readiness check failed: %s", type(exc).__name__)
        return False
    return True


@router.get(
    "/readyz",
    summary="The database answers",
    response_model=dict[str, str],
    responses=_UNAVAILABLE_DOC,
)
async def readyz(request: Request) -> Response | dict[str, str]:
    """Readiness: 200 while the database answers in time, else a 503 problem."""
    state = request.app.state
    limiter = getattr(state, "ready_limiter", None)
    if limiter is None:
        limiter = state.ready_limiter = anyio.CapacityLimiter(_READY_THREADS)
    ready = False
    with anyio.move_on_after(state.settings.db_ready_timeout_seconds):
        # Abandoned on timeout: the thread ends by itself within the engine's own timeouts.
        ready = await anyio.to_thread.run_sync(
            _database_answers, state.engine, state, limiter=limiter, abandon_on_cancel=True
        )
    if ready:
        return {"status": "ready"}
    error = Unavailable("the database is not answering", retry_after=RETRY_AFTER_DOWN)
    body = problem_body(
        status=error.status,
        title=error.title,
        slug=error.slug,
        detail=error.detail,
        instance=request.url.path,
    )
    body["database"] = "unavailable"
    return JSONResponse(body, status_code=503, media_type=PROBLEM_JSON, headers=error.headers())


@metrics_router.get(
    "/metrics",
    summary="Prometheus metrics (no tenant data)",
    response_class=Response,
    responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
)
def metrics(request: Request) -> Response:
    """The Prometheus text format: counts by route template and outcome, no tenant data."""
    registry = request.app.state.metrics.registry
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
