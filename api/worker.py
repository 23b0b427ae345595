"""``switchboard worker``: run background jobs in a process of their own.

Any number of these (and of service processes running their own worker thread) can share one
database: jobs are claimed atomically, so none runs twice. SIGINT/SIGTERM stop after the job in
hand finishes. It runs housekeeping too (:mod:`api.jobs.housekeeping`), every
``housekeeping_interval_seconds``; ``--once`` runs the due jobs only.
"""

from __future__ import annotations

import argparse
import logging
import signal
from datetime import UTC, datetime
from types import FrameType

from api.db.engine import make_engine, make_session_factory
from api.db.jobs import JobStatus
from api.jobs import housekeeping
from api.jobs.worker import Worker
from api.settings import Settings


def _wall_clock() -> datetime:
    return datetime.now(UTC)


def run_worker(args: argparse.Namespace) -> int:
    url = getattr(args, "database_url", None)
    settings = Settings(database_url=url) if url else Settings()
    logging.basicConfig(level=getattr(args, "log_level", "INFO").upper())
    engine = make_engine(settings)
    from api import wiring  # lazily: the handlers pull in the solver

    wiring.install_listeners()
    session_factory = make_session_factory(engine)
    worker = Worker(
        session_factory,
        wiring.job_handlers(settings),
        clock=_wall_clock,
        lease_seconds=settings.jobs_lease_seconds,
        poll_seconds=args.poll or settings.jobs_poll_seconds,
        housekeeping=housekeeping.for_worker(session_factory, settings),
        housekeeping_seconds=settings.housekeeping_interval_seconds,
    )
    try:
        if args.once:
            runs = worker.run_until_idle()
            failed = [r for r in runs if r.status is JobStatus.FAILED]
            print(f"worker {worker.worker_id}: ran {len(runs)} job(s), {len(failed)} failed")
            return 1 if failed else 0

        def stop(signum: int, _frame: FrameType | None) -> None:
            logging.getLogger(__name__).info("signal %d: stopping after the current job", signum)
            worker.stop()

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        print(f"worker {worker.worker_id} polling every {worker.poll_seconds:g} s (Ctrl-C stops)")
        worker.run_forever()
        return 0
    finally:
        engine.dispose()
