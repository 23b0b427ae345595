"""The worker: claims due jobs, runs each kind's handler, records the outcome.

    worker = Worker(session_factory, handlers, clock=clock)
    worker.run_once()        # claim and run at most one job (tests call this: no sleeping)
    worker.start()           # a background thread polling until stop() (the service lifespan)
    worker.housekeep()       # one housekeeping pass now (the loop runs one every interval)

A handler is ``handler(ctx) -> result dict``. It does its work with its own sessions
(``ctx.session_factory``) and may finish the job *inside its last transaction* with
``ctx.complete(session, result)``, so its effects and the job's success commit together or not
at all (a claim lost meanwhile raises :class:`~api.jobs.queue.LeaseLost` and rolls both back).
If the handler returns without doing so, the worker completes the job with what it returned.

While a handler runs, a heartbeat thread renews the lease every third of it; a worker that dies
stops renewing, and any worker's :func:`~api.jobs.queue.recover_stale` pass re-queues the job.
The loop also runs ``housekeeping`` (:mod:`api.jobs.housekeeping`) every ``housekeeping_seconds``
(±10 %, so many processes spread out), and again right after the next poll when a pass says it
left work behind.
A handler that raises is retried with exponential backoff until its attempts are used up;
:class:`PermanentJobError`, bad input (``ServiceError``) and the solver's ``ProblemError`` fail the
job at once, since running it again would fail the same way.

While the database is away the loop backs off (the poll interval doubling up to
``MAX_BACKOFF_SECONDS``) and logs one line per kind of failure every few seconds, not a traceback
per poll; the first round that works again resets it and says so (:meth:`Worker.poll` is one
round, so tests drive it without sleeping).
"""

from __future__ import annotations

import logging
import os
import random
import socket
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from api.db.jobs import Job, JobStatus
from api.db.outage import Backoff, ThrottledLog, classify
from api.errors import ServiceError
from api.jobs import queue
from solver.errors import ProblemError

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]


class PermanentJobError(Exception):
    """A handler's way to say "retrying cannot help": the job fails with this message."""


@dataclass
class JobContext:
    """What a handler gets: its job, sessions, the clock, and the way to finish atomically."""

    job: queue.ClaimedJob
    session_factory: sessionmaker[Session]
    clock: Clock
    lost: threading.Event = field(default_factory=threading.Event)
    completed: bool = False

    @property
    def tenant_id(self) -> str:
        return self.job.tenant_id

    @property
    def payload(self) -> dict[str, Any]:
        return self.job.payload

    def now(self) -> datetime:
        return self.clock()

    def still_owned(self, session: Session) -> bool:
        """Whether this claim still holds the job (not cancelled, lease not taken over)."""
        return not self.lost.is_set() and queue.still_owned(session=session, job=self.job)

    def complete(self, session: Session, result: dict[str, Any]) -> None:
        """Mark the job succeeded in ``session``'s transaction (the caller commits)."""
        queue.complete(session=session, job=self.job, now=self.clock(), result=result)
        self.completed = True


Handler = Callable[[JobContext], dict[str, Any] | None]
FinishHook = Callable[[str, str, float], None]
# Given "now", one housekeeping pass; True when it left nothing to do.
Housekeeping = Callable[[datetime], bool]
# The longest wait between polls while the database fails (a recovering database is not
# hammered, and the worker is back within this long once it answers).
MAX_BACKOFF_SECONDS = 30.0


@dataclass(frozen=True, slots=True)
class JobRun:
    """What one ``run_once`` did: the job, and its status afterwards (None: claim lost)."""

    job_id: str
    kind: str
    status: JobStatus | None
    error: str | None = None


def default_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class Worker:
    """Claims and runs jobs of the kinds in ``handlers``; see the module docstring."""

    def __init__(
        self,
        session_factory: sessionmaker[Session],
        handlers: Mapping[str, Handler],
        *,
        clock: Clock,
        worker_id: str | None = None,
        lease_seconds: float = 60.0,
        poll_seconds: float = 1.0,
        retry_base_seconds: float = 5.0,
        retry_max_seconds: float = 300.0,
        on_finish: FinishHook | None = None,
        housekeeping: Housekeeping | None = None,
        housekeeping_seconds: float = 300.0,
    ) -> None:
        if lease_seconds <= 0 or poll_seconds <= 0:
            raise ValueError("lease_seconds and poll_seconds must be positive")
        if housekeeping is not None and housekeeping_seconds <= 0:
            raise ValueError("housekeeping_seconds must be positive")
        self.session_factory = session_factory
        self.handlers = dict(handlers)
        self.clock = clock
        self.worker_id = worker_id or default_worker_id()
        self.lease = timedelta(seconds=lease_seconds)
        self.poll_seconds = poll_seconds
        self.retry_base_seconds = retry_base_seconds
        self.retry_max_seconds = retry_max_seconds
        self.on_finish = on_finish
        self.housekeeping = housekeeping
        self.housekeeping_seconds = housekeeping_seconds
        self._next_housekeeping = float("-inf")  # time.monotonic(): the first loop runs one
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_recovery = float("-inf")
        self._busy = False  # the last run_once ran a job: claim without asking first
        self._backoff = Backoff(poll_seconds, MAX_BACKOFF_SECONDS)
        self._outage_log = ThrottledLog(log)

    def _log_failure(self, what: str, exc: Exception) -> None:
        """A database outage in one throttled line; anything else (a bug) with its traceback."""
        found = classify(exc)
        if found is not None:
            self._outage_log.outage(f"job worker: {what}", found)
        else:
            log.error("job worker %s: %s failed", self.worker_id, what, exc_info=exc)

    # ------------------------------------------------------------------ one job
    def _due_exists(self) -> bool:
        # A plain read first: an idle poll then never takes SQLite's write lock.
        with self.session_factory() as session:
            found = session.scalar(
                select(Job.id)
                .where(
                    Job.status == JobStatus.QUEUED,
                    Job.run_after <= self.clock(),
                    Job.kind.in_(list(self.handlers)),
                )
                .limit(1)
            )
        return found is not None

    def recover(self) -> int:
        n = queue.recover_stale(session_factory=self.session_factory, now=self.clock())
        if n:
            log.warning("recovered %d job(s) whose worker stopped renewing its lease", n)
        self._last_recovery = time.monotonic()
        return n

    def run_once(self, *, recover: bool = True) -> JobRun | None:
        """Recover stale leases (optionally), then claim and run at most one due job."""
        if recover:
            self.recover()
        # The plain "anything due?" read keeps an idle poll off SQLite's write lock; right
        # after a job ran, another is likely due (a queue being drained), and the claim is
        # itself the check: the read would only add a transaction per job.
        busy, self._busy = self._busy, False
        if not self.handlers or (not busy and not self._due_exists()):
            return None
        job = queue.claim(
            session_factory=self.session_factory,
            worker_id=self.worker_id,
            now=self.clock(),
            lease=self.lease,
            kinds=list(self.handlers),
        )
        if job is None:
            return None
        run = self._run(job)
        self._busy = True
        return run

    def run_until_idle(self, *, max_jobs: int = 10_000) -> list[JobRun]:
        """Run due jobs until none is left (or ``max_jobs`` ran)."""
        runs: list[JobRun] = []
        self.recover()
        while len(runs) < max_jobs:
            run = self.run_once(recover=False)
            if run is None:
                break
            runs.append(run)
        return runs

    def _run(self, job: queue.ClaimedJob) -> JobRun:
        ctx = JobContext(job=job, session_factory=self.session_factory, clock=self.clock)
        beat_stop = threading.Event()
        beat = threading.Thread(
            target=self._heartbeat,
            args=(ctx, beat_stop),
            name=f"job-heartbeat-{job.id[:8]}",
            daemon=True,
        )
        beat.start()
        started = time.perf_counter()
        try:
            result = self.handlers[job.kind](ctx)
            if not ctx.completed:
                with self.session_factory() as session:
                    ctx.complete(session, result or {})
                    session.commit()
            run = JobRun(job.id, job.kind, JobStatus.SUCCEEDED)
        except queue.LeaseLost as exc:
            log.warning("job %s (%s): %s; its effects were rolled back", job.id, job.kind, exc)
            run = JobRun(job.id, job.kind, None, str(exc))
        except Exception as exc:
            run = self._failed(job, exc)
        finally:
            beat_stop.set()
            beat.join()
        if self.on_finish is not None:
            status = run.status.value if run.status is not None else "lost"
            self.on_finish(job.kind, status, time.perf_counter() - started)
        return run

    def _failed(self, job: queue.ClaimedJob, exc: Exception) -> JobRun:
        permanent = isinstance(exc, PermanentJobError | ServiceError | ProblemError)
        found = classify(exc)
        # Never the text of a database error: it holds the SQL (stored in the job, too).
        message = (
            f"{type(exc).__name__}: {exc}"
            if found is None
            else f"database unavailable: {found.kind}: {found.reason}"
        )
        if permanent:
            log.info("job %s (%s) failed: %s", job.id, job.kind, message)
            retry_at = None
        else:
            if found is None:
                log.exception("job %s (%s) attempt %d failed", job.id, job.kind, job.attempts)
            else:
                self._outage_log.outage("job worker: running a job", found)
            delay = min(self.retry_max_seconds, self.retry_base_seconds * 2 ** (job.attempts - 1))
            retry_at = self.clock() + timedelta(seconds=delay)
        status = queue.fail(
            session_factory=self.session_factory,
            job=job,
            now=self.clock(),
            error=message,
            retry_at=retry_at,
        )
        return JobRun(job.id, job.kind, status, message)

    def _heartbeat(self, ctx: JobContext, stop: threading.Event) -> None:
        interval = self.lease.total_seconds() / 3
        while not stop.wait(interval):
            try:
                ok = queue.renew(
                    session_factory=self.session_factory,
                    job=ctx.job,
                    now=self.clock(),
                    lease=self.lease,
                )
            except Exception as exc:
                self._log_failure("renewing a lease", exc)
                continue
            if not ok:
                ctx.lost.set()
                return

    # ------------------------------------------------------------------ housekeeping
    def housekeep(self) -> bool | None:
        """Run one housekeeping pass now and schedule the next: after ``housekeeping_seconds``
        (±10 %; also when this one failed), or right after the next poll when this one left work
        behind. Returns whether it finished (None: this worker has no housekeeping)."""
        if self.housekeeping is None:
            return None
        try:
            done = self.housekeeping(self.clock())
        except Exception as exc:
            # The database may be briefly unreachable: try again at the next interval.
            self._log_failure("housekeeping", exc)
            done = True
        delay = self.housekeeping_seconds * random.uniform(0.9, 1.1) if done else 0.0
        self._next_housekeeping = time.monotonic() + delay
        return done

    def _housekeeping_due(self) -> bool:
        return self.housekeeping is not None and time.monotonic() >= self._next_housekeeping

    # ------------------------------------------------------------------ the loop
    def notify(self) -> None:
        """Wake the polling thread now (a job was just enqueued in this process)."""
        self._wake.set()

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("worker already started")
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._loop, name=f"job-worker-{self.worker_id}", daemon=True
        )
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop polling and wait for the job in hand (if any) to finish."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def run_forever(self) -> None:
        """Poll in the calling thread until :meth:`stop` (the ``switchboard worker`` command)."""
        self._stop.clear()
        self._loop()

    def poll(self) -> float:
        """One round of the loop: housekeeping when due, then at most one job. Returns the
        seconds to wait before the next round (0 after a job: there may be more)."""
        ran: JobRun | None = None
        if self._housekeeping_due():
            self.housekeep()
        try:
            recover = time.monotonic() - self._last_recovery >= self.lease.total_seconds() / 2
            ran = self.run_once(recover=recover)
        except Exception as exc:
            # The database may be unreachable: keep the loop alive, and wait longer each time.
            self._log_failure("polling", exc)
            return self._backoff.failed()
        failures = self._backoff.succeeded()
        if failures:
            self._outage_log.recovered(f"job worker {self.worker_id}", failures)
        return 0.0 if ran is not None else self.poll_seconds

    def _loop(self) -> None:
        log.info("job worker %s polling every %.1f s", self.worker_id, self.poll_seconds)
        while not self._stop.is_set():
            wait = self.poll()
            if wait > 0:
                self._wake.wait(wait)
                self._wake.clear()
