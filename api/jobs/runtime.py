"""Wiring the job worker and the real-time cache into an app (``create_app`` calls these).

``install(app)`` runs when the app is built (no I/O); ``start(app)`` and ``stop(app)`` run in its
lifespan, after the engine exists. The worker thread starts only when the settings ask for it
(``jobs_worker``; by default everywhere except the test environment, where tests call
``app.state.job_worker.run_once()`` themselves, without sleeping). The worker's loop also runs
housekeeping (:mod:`api.jobs.housekeeping`) every ``housekeeping_interval_seconds``; tests call
``app.state.job_worker.housekeep()``.
"""

from __future__ import annotations

from fastapi import FastAPI

from api.jobs import housekeeping
from api.jobs.registry import default_handlers
from api.jobs.worker import FinishHook, Worker
from api.services import realtime_cache
from api.settings import Environment, Settings


def worker_enabled(settings: Settings) -> bool:
    if settings.jobs_worker is not None:
        return settings.jobs_worker
    return settings.environment is not Environment.TEST


def install(app: FastAPI) -> None:
    realtime_cache.install()
    app.state.realtime_cache = realtime_cache.RealtimeCache()
    app.state.job_worker = None


def start(app: FastAPI, *, on_finish: FinishHook | None = None) -> Worker:
    """Build the app's worker; start its thread if the settings say so. Returned either way,
    so tests (and ``/metrics``) can use it."""
    settings: Settings = app.state.settings
    worker = Worker(
        app.state.session_factory,
        default_handlers(),
        clock=app.state.clock,
        lease_seconds=settings.jobs_lease_seconds,
        poll_seconds=settings.jobs_poll_seconds,
        on_finish=on_finish,
        housekeeping=housekeeping.for_worker(app.state.session_factory, settings),
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
