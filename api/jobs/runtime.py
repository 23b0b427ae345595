"""Running the job worker in an app (``create_app`` calls these).

``start(app, handlers)`` and ``stop(app)`` run in its lifespan, after the engine exists; the
handlers come from :func:`api.wiring.job_handlers`. The worker thread starts only when the
settings ask for it (``jobs_worker``; by default everywhere except the test environment, where
tests call ``app.state.job_worker.run_once()`` themselves, without sleeping). The worker's loop
also runs housekeeping (:mod:`api.jobs.housekeeping`) every ``housekeeping_interval_seconds``;
tests call ``app.state.job_worker.housekeep()``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import Any

from fastapi import FastAPI
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from api.db.outage import classify
from api.jobs import housekeeping, queue
from api.jobs.worker import FinishHook, Handler, Worker
from api.settings import Environment, Settings

log = logging.getLogger(__name__)


def worker_enabled(settings: Settings) -> bool:
    if settings.jobs_worker is not None:
        return settings.jobs_worker
    return settings.environment is not Environment.TEST


def start(
    app: FastAPI,
    handlers: dict[str, Handler],
    *,
    on_finish: FinishHook | None = None,
    passes: Sequence[housekeeping.Pass] = (),
) -> Worker:
    """Build the app's worker; start its thread if the settings say so. Returned either way,
    so tests (and ``/metrics``) can use it."""
    settings: Settings = app.state.settings
    worker = Worker(
        app.state.session_factory,
        handlers,
        clock=app.state.clock,
        lease_seconds=settings.jobs_lease_seconds,
        poll_seconds=settings.jobs_poll_seconds,
        on_finish=on_finish,
        housekeeping=housekeeping.for_worker(app.state.session_factory, settings, passes),
        housekeeping_seconds=settings.housekeeping_interval_seconds,
    )
    app.state.job_worker = worker
    if worker_enabled(settings):
        worker.start()
    return worker


def stop(app: FastAPI) -> None:
    worker: Worker | None = getattr(app.state, "job_worker", None)
    if worker is not None:
        worker.stop()


class JobDepth(Collector):
    """The ``switchboard_jobs`` gauge: jobs waiting or running, read from the queue at each
    scrape (registered on the app's metrics by ``create_app``)."""

    def __init__(self, app_state: Any) -> None:
        self.app_state = app_state

    def collect(self) -> Iterable[Metric]:
        gauge = GaugeMetricFamily(
            "switchboard_jobs", "Background jobs waiting or running", labels=["status"]
        )
        factory = getattr(self.app_state, "session_factory", None)
        if factory is None:
            return [gauge]
        try:
            with factory() as session:
                depth = queue.depth(session=session)
        except Exception as exc:  # a scrape must not fail because the database is briefly away
            found = classify(exc)
            throttled = getattr(self.app_state, "db_outage_log", None)
            if found is not None and throttled is not None:
                throttled.outage("metrics", found)  # one line per kind, not one per scrape
            else:
                log.warning("could not read the job queue depth", exc_info=True)
            return [gauge]
        for status, n in depth.items():
            gauge.add_metric([status], n)
        return [gauge]
