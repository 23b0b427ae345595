"""Running the job worker in an app (``create_app`` calls these).

``start(app, handlers)`` and ``stop(app)`` run in its lifespan, after the engine exists; the
handlers come from :func:`api.wiring.job_handlers`. The worker thread starts only when the
settings ask for it (``jobs_worker``; by default everywhere except the test environment, where
tests call ``app.state.job_worker.run_once()`` themselves, without sleeping). The worker's loop
also runs housekeeping (:mod:`api.jobs.housekeeping`) every ``housekeeping_interval_seconds``;
tests call ``app.state.job_worker.housekeep()``.
"""

from __future__ import annotations

from fastapi import FastAPI

from api.jobs import housekeeping
from api.jobs.worker import FinishHook, Handler, Worker
from api.settings import Environment, Settings


def worker_enabled(settings: Settings) -> bool:
    if settings.jobs_worker is not None:
        return settings.jobs_worker
    return settings.environment is not Environment.TEST


def start(
    app: FastAPI, handlers: dict[str, Handler], *, on_finish: FinishHook | None = None
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
