"""Prometheus metrics of one app: HTTP requests by route template, assignments, jobs.

Each app gets its own :class:`~prometheus_client.CollectorRegistry` (tests build many apps; the
global registry would refuse the second). Labels never carry a tenant, an id or a raw path:
requests are labelled by the *route template* (``/v1/tickets/{ticket_id}/assign``), unmatched
paths by ``<unmatched>``, so ``/metrics`` can be scraped without authentication and still shows
nothing of any tenant. The job queue's depth is read from the database at scrape time.
"""

from __future__ import annotations

import time
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# Milliseconds matter here: the assignment target is p99 <= 50 ms.
LATENCY_BUCKETS = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)


class Metrics:
    def __init__(self, app_state: Any) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "switchboard_http_requests",
            "HTTP requests by method, route template and status code",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "switchboard_http_request_duration_seconds",
            "HTTP request latency by method and route template",
            ["method", "route"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.assignments = Counter(
            "switchboard_assignments",
            "Real-time assignments by outcome (agent or team queue)",
            ["outcome"],
            registry=self.registry,
        )
        self.jobs_finished = Counter(
            "switchboard_jobs_finished",
            "Background job runs by kind and outcome",
            ["kind", "status"],
            registry=self.registry,
        )
        self.job_seconds = Histogram(
            "switchboard_job_duration_seconds",
            "Background job run time by kind",
            ["kind"],
            buckets=(0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600),
            registry=self.registry,
        )

    def assignment(self, *, queued: bool) -> None:
        self.assignments.labels("team_queue" if queued else "agent").inc()

    def job_finished(self, kind: str, status: str, seconds: float) -> None:
        self.jobs_finished.labels(kind, status).inc()
        self.job_seconds.labels(kind).observe(seconds)


class MetricsMiddleware:
    """Counts and times every HTTP request under its route template (pure ASGI: cheap)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics
        # (method, route, status) -> its counter and histogram children: ``labels()`` takes a
        # lock and builds its key on every call; the set of keys is small and fixed.
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    def _record(self, method: str, template: str, status: int, seconds: float) -> None:
        key = (method, template, status)
        children = self._children.get(key)
        if children is None:
            children = (
                self.metrics.requests.labels(method, template, str(status)),
                self.metrics.latency.labels(method, template),
            )
            self._children[key] = children
        count, latency = children
        count.inc()
        latency.observe(seconds)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def capture(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, capture)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "<unmatched>"
            self._record(
                scope.get("method", "GET"), template, status, time.perf_counter() - started
            )


def install(app: Any) -> Metrics:
    metrics = Metrics(app.state)
    app.state.metrics = metrics
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    return metrics
