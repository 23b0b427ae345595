"""Which handler runs which kind of job. Imported lazily: handlers pull in the solver."""

from __future__ import annotations

from api.jobs.worker import Handler


def default_handlers() -> dict[str, Handler]:
    """Every job kind the service knows, by name."""
    from api.services import assignment, bookings

    return {
        assignment.OPTIMIZE_JOB: assignment.run_optimize_job,
        bookings.BIND_JOB: bookings.run_bind_job,
    }
